"""Run tables: column mapping, derivation by the law's convention, and every malformed input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared_data_path
from hypothesis import given, settings
from hypothesis import strategies as st

from bayeslaw.data import load_runs
from bayeslaw.errors import DataError

GOOD = {"N": [1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9, 6.4e9, 1.28e10],
        "D": [2e9, 4e9, 8e9, 1.6e10, 3.2e10, 6.4e10, 1.28e11, 2.56e11],
        "loss": [3.9, 3.6, 3.3, 3.1, 2.9, 2.75, 2.6, 2.5]}


def write(tmp_path, text: str, name: str = "runs.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def good_csv(tmp_path, edit=None):
    frame = pd.DataFrame(GOOD)
    if edit:
        edit(frame)
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    return path


def test_real_chinchilla_table_maps_columns_and_derives_tokens():
    path = shared_data_path("chinchilla_epoch_extracted.csv")
    runs = load_runs(path, "chinchilla")
    raw = pd.read_csv(path)
    assert len(runs) == 245
    assert runs.mapped == {"N": "Model Size", "loss": "loss"}
    assert runs.derived == {"D": "C / (6 N)"}
    expected = raw["Training FLOP"] / (6 * raw["Model Size"])
    np.testing.assert_allclose(runs.frame["D"], expected, rtol=1e-15)
    assert "D derived as C / (6 N)" in runs.notes()
    assert "column 'Model Size' read as N (parameters)" in runs.notes()


def test_aliases_and_explicit_mapping():
    frame = pd.DataFrame({"params": GOOD["N"], "tokens": GOOD["D"], "val-loss": GOOD["loss"]})
    runs = load_runs(frame, "chinchilla")
    assert runs.mapped == {"N": "params", "D": "tokens", "loss": "val-loss"}
    both = frame.assign(loss=np.array(GOOD["loss"]) + 0.1)
    with pytest.raises(DataError, match=r"columns 'loss', 'val-loss' could each be loss.*columns=\{'loss'"):
        load_runs(both, "chinchilla")
    chosen = load_runs(both, "chinchilla", columns={"loss": "val-loss"})
    np.testing.assert_array_equal(chosen.frame["loss"], GOOD["loss"])


def test_flops_per_param_token_changes_the_derivation():
    frame = pd.DataFrame({"N": GOOD["N"], "C": np.array(GOOD["N"]) * np.array(GOOD["D"]) * 8, "loss": GOOD["loss"]})
    runs = load_runs(frame, "chinchilla", flops_per_param_token=8)
    np.testing.assert_allclose(runs.frame["D"], GOOD["D"], rtol=1e-15)
    assert runs.derived == {"D": "C / (8 N)"}


def test_deepseek_model_scale_and_tokens_from_architecture():
    frame = pd.DataFrame({"C": [1e18, 1e19, 1e20, 3e20], "n_layer": [8, 12, 24, 24], "d_model": [512, 768, 1024, 2048],
                          "l_seq": [4096] * 4, "M_opt": [3e8, 9e8, 3e9, 9e9]})
    runs = load_runs(frame, "deepseek-M_opt")
    assert list(runs.frame.columns) == ["C", "M_opt"] and runs.derived == {}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(1e6, 1e13), st.floats(1e15, 1e26)), min_size=8, max_size=20))
def test_derived_tokens_satisfy_the_compute_convention(pairs):
    n, c = map(np.array, zip(*pairs, strict=True))
    runs = load_runs(pd.DataFrame({"N": n, "C": c, "loss": np.full(len(n), 3.0)}), "chinchilla")
    np.testing.assert_allclose(6 * runs.frame["N"] * runs.frame["D"], c, rtol=1e-12)


def test_digest_is_stable_and_sensitive():
    a = load_runs(pd.DataFrame(GOOD), "chinchilla")
    b = load_runs(pd.DataFrame(GOOD), "chinchilla")
    changed = pd.DataFrame(GOOD)
    changed.loc[3, "loss"] += 1e-9
    assert a.digest() == b.digest() != load_runs(changed, "chinchilla").digest()


# ---- malformed input: one test each, checking the column, the rows and the rule ------------------

def test_missing_column(tmp_path):
    path = good_csv(tmp_path, lambda f: f.pop("D"))
    with pytest.raises(DataError, match=r"missing column\(s\) for law 'chinchilla': D; the table has N, loss"):
        load_runs(path, "chinchilla")


def test_non_numeric_values_name_the_lines(tmp_path):
    path = good_csv(tmp_path, lambda f: f.__setitem__("N", f["N"].astype(object)))
    text = path.read_text().splitlines()
    text[3] = "two hundred million," + text[3].split(",", 1)[1]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"column 'N' \(N\): lines 4 are not numbers \(e.g. 'two hundred million'\)"):
        load_runs(path, "chinchilla")


@pytest.mark.parametrize(("value", "rule"), [("nan", "missing, NaN or infinite"), ("inf", "missing, NaN or infinite"),
                                             ("", "missing, NaN or infinite")])
def test_nan_infinite_and_empty_cells(tmp_path, value, rule):
    path = good_csv(tmp_path)
    lines = path.read_text().splitlines()
    cells = lines[5].split(",")
    cells[2] = value
    lines[5] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"column 'loss' \(loss\): lines 6 are {rule}"):
        load_runs(path, "chinchilla")


@pytest.mark.parametrize(("column", "value"), [("N", 0.0), ("D", -1e9), ("loss", 0.0), ("loss", -2.0)])
def test_zero_or_negative_values(column, value):
    frame = pd.DataFrame(GOOD)
    frame.loc[[2, 6], column] = value
    with pytest.raises(DataError, match=rf"column '{column}' \({column}\): rows 2, 6 are zero or negative; "
                                        rf"{column} must be > 0"):
        load_runs(frame, "chinchilla")


def test_negative_compute_is_caught_before_deriving_tokens():
    frame = pd.DataFrame({"Model Size": GOOD["N"], "Training FLOP": 6.0 * np.array(GOOD["N"]) * GOOD["D"],
                          "loss": GOOD["loss"]})
    frame.loc[1, "Training FLOP"] = -5.0
    with pytest.raises(DataError, match=r"column 'Training FLOP' \(C\): rows 1 are zero or negative"):
        load_runs(frame, "chinchilla")


def test_fewer_runs_than_parameters():
    frame = pd.DataFrame(GOOD).iloc[:5]
    with pytest.raises(DataError, match=r"5 runs are fewer than the 7 parameters of law 'chinchilla' \(5 law "
                                        r"parameters plus noise\)"):
        load_runs(frame, "chinchilla")


def test_duplicate_column_names_in_a_file_and_a_frame(tmp_path):
    path = write(tmp_path, "N,D,loss,loss\n1e8,2e9,3.9,3.8\n")
    with pytest.raises(DataError, match="duplicate column names in the header: loss"):
        load_runs(path, "chinchilla")
    frame = pd.DataFrame([[1e8, 2e9, 3.9, 3.8]], columns=["N", "D", "loss", "loss"])
    with pytest.raises(DataError, match="duplicate column names: loss"):
        load_runs(frame, "chinchilla")


@pytest.mark.parametrize("text", ["", "  \n\n "])
def test_empty_file(tmp_path, text):
    with pytest.raises(DataError, match="the file is empty"):
        load_runs(write(tmp_path, text), "chinchilla")


def test_header_without_rows(tmp_path):
    with pytest.raises(DataError, match="has a header but no rows of runs"):
        load_runs(write(tmp_path, "N,D,loss\n"), "chinchilla")


def test_binary_file_is_not_csv(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    with pytest.raises(DataError, match="not a CSV file"):
        load_runs(path, "chinchilla")


def test_prose_file_is_not_a_table(tmp_path):
    path = write(tmp_path, "These are my training runs\nthey went well\n")
    with pytest.raises(DataError, match="not a CSV table of runs: found a single column"):
        load_runs(path, "chinchilla")


def test_ragged_rows_are_not_a_readable_csv(tmp_path):
    path = write(tmp_path, "N,D,loss\n1e8,2e9,3.9\n1e8,2e9,3.9,7,8,9\n")
    with pytest.raises(DataError, match="not a readable CSV file"):
        load_runs(path, "chinchilla")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_runs(tmp_path / "absent.csv", "chinchilla")


def test_explicit_mapping_to_an_absent_column():
    with pytest.raises(DataError, match=r"column 'val_loss' \(given for loss\) is not in the table"):
        load_runs(pd.DataFrame(GOOD), "chinchilla", columns={"loss": "val_loss"})


def test_many_bad_rows_are_summarised():
    frame = pd.DataFrame({k: v * 3 for k, v in GOOD.items()})
    frame["loss"] = -1.0
    with pytest.raises(DataError, match=r"rows 0, 1, 2, 3, 4, 5, 6, 7 and 16 more are zero or negative"):
        load_runs(frame, "chinchilla")
