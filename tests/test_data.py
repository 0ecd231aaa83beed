"""Run tables: column mapping, derivation by the law's convention, digests, and every malformed input.

Error tests assert on the message (column, rows or file lines, rule), not only on the exception type.
In CSV files the header is line 1, so the first run is on line 2; DataFrame rows are counted from 0.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from conftest import shared_data_path
from hypothesis import given, settings
from hypothesis import strategies as st

from bayeslaw.data import load_runs
from bayeslaw.errors import DataError, LawError
from bayeslaw.laws import model_scale

# Eight runs: one more than the 7 parameters of "chinchilla" (5 law parameters, sigma, nu).
N = [1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9, 6.4e9, 1.28e10]
D = [2e9, 4e9, 8e9, 1.6e10, 3.2e10, 6.4e10, 1.28e11, 2.56e11]
LOSS = [3.9, 3.6, 3.3, 3.1, 2.9, 2.75, 2.6, 2.5]
C = [6 * n * d for n, d in zip(N, D, strict=True)]


def good_frame(**columns) -> pd.DataFrame:
    """N, D, loss (or the given columns) as a DataFrame."""
    return pd.DataFrame(columns or {"N": N, "D": D, "loss": LOSS})


def csv_lines(**columns) -> list[str]:
    """The lines of a CSV file of runs; ``lines[k - 1]`` is file line k (line 1 is the header)."""
    columns = columns or {"N": N, "D": D, "loss": LOSS}
    rows = zip(*columns.values(), strict=True)
    return [",".join(columns), *(",".join(repr(float(v)) for v in row) for row in rows)]


def set_cell(lines: list[str], line: int, column: str, value: str) -> list[str]:
    """Replace one cell, addressed by file line number and column name."""
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    return lines


def write_csv(tmp_path, lines: list[str], name: str = "runs.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def data_error(source, law: str = "chinchilla", *parts: str, **kwargs) -> str:
    """Load ``source``, expect a DataError whose message contains every one of ``parts``."""
    with pytest.raises(DataError) as info:
        load_runs(source, law, **kwargs)
    message = str(info.value)
    for part in parts:
        assert part in message, f"{part!r} not in the message: {message}"
    return message


# ---- the real Chinchilla table --------------------------------------------------------------------


@pytest.fixture(scope="module")
def chinchilla_csv():
    return shared_data_path("chinchilla_epoch_extracted.csv")


def test_real_chinchilla_table_loads_with_tokens_derived(chinchilla_csv):
    runs = load_runs(chinchilla_csv, "chinchilla")
    raw = pd.read_csv(chinchilla_csv)
    assert len(runs) == len(raw) == 245
    assert list(runs.frame.columns) == ["N", "D", "loss"]
    assert runs.mapped == {"N": "Model Size", "loss": "loss"}
    assert runs.derived == {"D": "C / (6 N)"}
    notes = runs.notes()
    assert "column 'Model Size' read as N (parameters)" in notes
    assert "D derived as C / (6 N)" in notes
    assert not any("'loss' read as" in note for note in notes)  # same name: nothing to say
    # D = C / (6 N) exactly, checked row by row on a few rows
    for row in (0, 1, 100, 244):
        n, c = raw.loc[row, "Model Size"], raw.loc[row, "Training FLOP"]
        assert runs.frame.loc[row, "N"] == n
        assert runs.frame.loc[row, "D"] == c / (6 * n)
        assert 6 * n * runs.frame.loc[row, "D"] == pytest.approx(c, rel=1e-15)
        assert runs.frame.loc[row, "loss"] == raw.loc[row, "loss"]
    np.testing.assert_array_equal(runs.target, raw["loss"].to_numpy())
    assert set(runs.inputs) == {"N", "D"}


def test_real_chinchilla_table_as_a_frame_matches_the_file(chinchilla_csv):
    from_file = load_runs(chinchilla_csv, "chinchilla")
    from_frame = load_runs(pd.read_csv(chinchilla_csv), "chinchilla")
    pd.testing.assert_frame_equal(from_file.frame, from_frame.frame)
    assert from_file.digest() == from_frame.digest()


def test_real_chinchilla_table_for_a_compute_law(chinchilla_csv):
    runs = load_runs(chinchilla_csv, "power-C")
    assert runs.mapped == {"C": "Training FLOP", "loss": "loss"}
    assert runs.derived == {}
    assert "column 'Training FLOP' read as C (FLOPs)" in runs.notes()


def test_shared_data_helper_fails_in_ci_and_skips_elsewhere(monkeypatch):
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match=r"no-such-table\.csv is missing"):
        shared_data_path("no-such-table.csv")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"no-such-table\.csv is missing"):
        shared_data_path("no-such-table.csv")


# ---- column mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "canonical"),
    [
        ("Model Size", "N"), ("model_size", "N"), ("MODEL-SIZE", "N"), ("  Model   Size ", "N"), ("params", "N"),
        ("Params", "N"), ("tokens", "D"), ("Tokens", "D"), ("training_tokens", "D"), ("val-loss", "loss"),
        ("Val_Loss", "loss"), ("VAL LOSS", "loss"), ("loss", "loss"),
    ],
)
def test_column_names_map_whatever_the_case_spacing_and_separators(source, canonical):
    columns = {"N": N, "D": D, "loss": LOSS}
    columns[source] = columns.pop(canonical)
    runs = load_runs(pd.DataFrame(columns), "chinchilla")
    assert runs.mapped[canonical] == source
    np.testing.assert_array_equal(runs.frame[canonical], {"N": N, "D": D, "loss": LOSS}[canonical])


def test_training_flop_maps_to_compute():
    runs = load_runs(pd.DataFrame({"Training FLOP": C, "loss": LOSS}), "power-C")
    assert runs.mapped == {"C": "Training FLOP", "loss": "loss"}
    np.testing.assert_array_equal(runs.frame["C"], C)


def test_aliases_together_in_a_csv_file(tmp_path):
    path = write_csv(tmp_path, csv_lines(params=N, tokens=D, **{"val-loss": LOSS}))
    runs = load_runs(path, "chinchilla")
    assert runs.mapped == {"N": "params", "D": "tokens", "loss": "val-loss"}
    assert "column 'val-loss' read as loss (nats/token)" in runs.notes()
    np.testing.assert_array_equal(runs.frame["loss"], LOSS)


def test_ambiguous_columns_raise_until_one_is_chosen():
    frame = pd.DataFrame({"N": N, "D": D, "loss": LOSS, "val-loss": np.add(LOSS, 0.1)})
    message = data_error(frame, "chinchilla", "'loss'", "'val-loss'", "could each be loss", "columns={'loss'")
    assert "--column loss=NAME" in message
    chosen = load_runs(frame, "chinchilla", columns={"loss": "val-loss"})
    assert chosen.mapped["loss"] == "val-loss"
    np.testing.assert_array_equal(chosen.frame["loss"], np.add(LOSS, 0.1))
    other = load_runs(frame, "chinchilla", columns={"loss": "loss"})
    np.testing.assert_array_equal(other.frame["loss"], LOSS)


def test_explicit_mapping_of_an_unusual_name():
    frame = pd.DataFrame({"width x depth": N, "D": D, "ce": LOSS})
    runs = load_runs(frame, "chinchilla", columns={"N": "width x depth", "loss": "ce"})
    assert runs.mapped == {"N": "width x depth", "D": "D", "loss": "ce"}
    assert "column 'ce' read as loss (nats/token)" in runs.notes()


def test_unknown_law_is_a_law_error():
    with pytest.raises(LawError, match=r"unknown law 'chinchila'; known laws: .*chinchilla"):
        load_runs(good_frame(), "chinchila")


# ---- derivation by the law's compute convention ---------------------------------------------------


def test_tokens_derived_from_compute_and_parameters():
    runs = load_runs(pd.DataFrame({"N": N, "C": C, "loss": LOSS}), "chinchilla")
    assert runs.derived == {"D": "C / (6 N)"}
    np.testing.assert_allclose(runs.frame["D"], D, rtol=1e-15)
    assert "D derived as C / (6 N)" in runs.notes()


def test_flops_per_param_token_changes_the_six():
    c8 = [8 * n * d for n, d in zip(N, D, strict=True)]
    runs = load_runs(pd.DataFrame({"N": N, "C": c8, "loss": LOSS}), "chinchilla", flops_per_param_token=8)
    assert runs.derived == {"D": "C / (8 N)"}
    np.testing.assert_allclose(runs.frame["D"], D, rtol=1e-15)
    default = load_runs(pd.DataFrame({"N": N, "C": c8, "loss": LOSS}), "chinchilla")
    np.testing.assert_allclose(default.frame["D"], np.multiply(D, 8 / 6), rtol=1e-15)


def test_parameters_derived_from_compute_and_tokens():
    runs = load_runs(pd.DataFrame({"D": D, "C": C, "loss": LOSS}), "chinchilla")
    assert runs.derived == {"N": "C / (6 D)"}
    np.testing.assert_allclose(runs.frame["N"], N, rtol=1e-15)


def test_compute_derived_from_parameters_and_tokens():
    runs = load_runs(good_frame(), "power-C")
    assert runs.derived == {"C": "6 N D"}
    np.testing.assert_allclose(runs.frame["C"], C, rtol=1e-15)


def test_given_columns_are_never_replaced_by_derived_ones():
    frame = pd.DataFrame({"N": N, "D": D, "C": np.multiply(C, 2.0), "loss": LOSS})  # C inconsistent on purpose
    runs = load_runs(frame, "chinchilla")
    assert runs.derived == {}
    np.testing.assert_array_equal(runs.frame["D"], D)


def test_deepseek_compute_from_architecture_and_tokens():
    n_layer = [8, 12, 16, 24, 24, 30]
    d_model = [512, 768, 1024, 1536, 2048, 4096]
    l_seq = [4096] * 6
    tokens = [1e10, 2e10, 5e10, 1e11, 2e11, 1e12]
    frame = pd.DataFrame({"n_layer": n_layer, "d_model": d_model, "l_seq": l_seq, "tokens": tokens,
                          "M_opt": [3e8, 9e8, 2e9, 5e9, 9e9, 4e10]})
    runs = load_runs(frame, "deepseek-M_opt")
    assert list(runs.frame.columns) == ["C", "M_opt"]
    assert runs.derived["M"].startswith("72 n_layer d_model^2 + 12 n_layer d_model l_seq")
    assert runs.derived["C"] == "M D"
    m = model_scale(np.array(n_layer, float), np.array(d_model, float), np.array(l_seq, float))
    np.testing.assert_allclose(runs.frame["C"], m * np.array(tokens), rtol=1e-15)
    assert m[0] == 72 * 8 * 512**2 + 12 * 8 * 512 * 4096


def test_deepseek_with_compute_given_derives_nothing():
    frame = pd.DataFrame({"C": [1e18, 3e18, 1e19, 3e19, 1e20], "M_opt": [3e8, 6e8, 1e9, 2e9, 4e9]})
    runs = load_runs(frame, "deepseek-M_opt")
    assert runs.derived == {} and runs.mapped == {"C": "C", "M_opt": "M_opt"}
    assert runs.notes() == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(1.0, 1e15), st.floats(1.0, 1e30)), min_size=8, max_size=30))
def test_derived_tokens_satisfy_c_equals_6_n_d(pairs):
    n, c = (np.array(v) for v in zip(*pairs, strict=True))
    runs = load_runs(pd.DataFrame({"Model Size": n, "Training FLOP": c, "loss": 3.0}), "chinchilla")
    assert runs.derived == {"D": "C / (6 N)"}
    np.testing.assert_allclose(6 * runs.frame["N"] * runs.frame["D"], c, rtol=1e-12)
    np.testing.assert_array_equal(runs.frame["N"], n)


@settings(max_examples=30, deadline=None)
@given(k=st.floats(0.5, 100.0), scale=st.floats(1e-3, 1e3))
def test_derivation_follows_any_flops_per_param_token(k, scale):
    c = np.multiply(C, scale)
    runs = load_runs(pd.DataFrame({"N": N, "C": c, "loss": LOSS}), "chinchilla", flops_per_param_token=k)
    np.testing.assert_allclose(k * runs.frame["N"] * runs.frame["D"], c, rtol=1e-12)
    assert runs.derived == {"D": f"C / ({k:g} N)"}


# ---- digest and reuse -----------------------------------------------------------------------------


def test_digest_is_stable_for_the_same_data(tmp_path):
    a = load_runs(good_frame(), "chinchilla")
    b = load_runs(good_frame(), "chinchilla")
    from_csv = load_runs(write_csv(tmp_path, csv_lines()), "chinchilla")
    assert a.digest() == b.digest() == from_csv.digest()
    assert len(a.digest()) == 64 and int(a.digest(), 16) >= 0
    # columns the law does not use do not enter the digest
    assert load_runs(good_frame().assign(note="x", seed=1), "chinchilla").digest() == a.digest()


def test_digest_changes_when_one_loss_changes():
    base = load_runs(good_frame(), "chinchilla").digest()
    for row in range(len(LOSS)):
        frame = good_frame()
        frame.loc[row, "loss"] = LOSS[row] * (1 + 1e-12)
        assert load_runs(frame, "chinchilla").digest() != base, row


def test_digest_depends_on_the_law_columns():
    frame = pd.DataFrame({"N": N, "D": D, "C": C, "loss": LOSS})
    assert load_runs(frame, "chinchilla").digest() != load_runs(frame, "power-C").digest()


def test_runs_can_be_loaded_again():
    runs = load_runs(good_frame(), "chinchilla")
    again = load_runs(runs, "chinchilla")
    pd.testing.assert_frame_equal(runs.frame, again.frame)
    assert again.digest() == runs.digest()


# ---- malformed input: one test each; the message names the column, the rows and the rule -----------


def test_missing_column(tmp_path):
    path = write_csv(tmp_path, csv_lines(N=N, loss=LOSS))
    message = data_error(path, "chinchilla", "missing column(s) for law 'chinchilla': D", "the table has N, loss",
                         "D (tokens)", "'tokens'", "columns={...}")
    assert "N (" not in message.split("Expected", 1)[1]  # only the missing column is explained


def test_missing_column_that_cannot_be_derived():
    data_error(pd.DataFrame({"N": N, "loss": LOSS}), "power-C", "missing column(s) for law 'power-C': C",
               "C (FLOPs)", "'flops'")


def test_missing_target_column():
    data_error(pd.DataFrame({"N": N, "D": D}), "chinchilla", "missing column(s) for law 'chinchilla': loss",
               "the table has N, D", "loss (nats/token)")


def test_non_numeric_value(tmp_path):
    path = write_csv(tmp_path, set_cell(csv_lines(), 4, "N", "two hundred million"))
    data_error(path, "chinchilla", "column 'N' (N)", "line 4 is not numeric", "'two hundred million'",
               "give numbers (or counts like 2.8B, 1.4T) in parameters")


def test_non_numeric_values_on_several_lines(tmp_path):
    lines = set_cell(set_cell(csv_lines(), 3, "D", "4e9 tokens"), 9, "D", "?")
    data_error(write_csv(tmp_path, lines), "chinchilla", "column 'D' (D)", "lines 3, 9 are not numeric",
               "'4e9 tokens'", "tokens")


def test_non_numeric_value_in_a_frame():
    frame = good_frame()
    frame["loss"] = frame["loss"].astype(object)
    frame.loc[5, "loss"] = "diverged"
    data_error(frame, "chinchilla", "column 'loss' (loss)", "row 5 is not numeric", "'diverged'")


def test_nan_value(tmp_path):
    path = write_csv(tmp_path, set_cell(csv_lines(), 6, "loss", "nan"))
    data_error(path, "chinchilla", "column 'loss' (loss)", "line 6 is missing, NaN or infinite",
               "every run needs a finite value")


def test_nan_value_in_a_frame():
    frame = good_frame()
    frame.loc[[0, 7], "N"] = np.nan
    data_error(frame, "chinchilla", "column 'N' (N)", "rows 0, 7 are missing, NaN or infinite")


@pytest.mark.parametrize("value", ["inf", "-inf", "1e400"])
def test_infinite_value(tmp_path, value):
    path = write_csv(tmp_path, set_cell(csv_lines(), 2, "D", value))
    data_error(path, "chinchilla", "column 'D' (D)", "line 2 is missing, NaN or infinite", "finite value")


def test_empty_cell(tmp_path):
    path = write_csv(tmp_path, set_cell(csv_lines(), 9, "loss", ""))
    data_error(path, "chinchilla", "column 'loss' (loss)", "line 9 is missing, NaN or infinite")


def test_zero_parameters(tmp_path):
    path = write_csv(tmp_path, set_cell(csv_lines(), 5, "N", "0"))
    data_error(path, "chinchilla", "column 'N' (N)", "line 5 is zero or negative", "N must be > 0",
               "takes logs")


def test_negative_tokens(tmp_path):
    path = write_csv(tmp_path, set_cell(set_cell(csv_lines(), 2, "D", "-1e9"), 8, "D", "-5"))
    data_error(path, "chinchilla", "column 'D' (D)", "lines 2, 8 are zero or negative", "D must be > 0")


@pytest.mark.parametrize("value", ["0", "-6e18"])
def test_non_positive_compute_when_tokens_are_derived_from_it(tmp_path, value):
    lines = csv_lines(**{"Model Size": N, "Training FLOP": C, "loss": LOSS})
    path = write_csv(tmp_path, set_cell(lines, 3, "Training FLOP", value))
    data_error(path, "chinchilla", "column 'Training FLOP' (C)", "line 3 is zero or negative", "C must be > 0")


def test_zero_parameters_when_tokens_are_derived_from_them(tmp_path):
    lines = csv_lines(**{"Model Size": N, "Training FLOP": C, "loss": LOSS})
    path = write_csv(tmp_path, set_cell(lines, 7, "Model Size", "0"))
    data_error(path, "chinchilla", "column 'Model Size' (N)", "line 7 is zero or negative", "N must be > 0")


@pytest.mark.parametrize("value", ["0", "0.0", "-2.5"])
def test_non_positive_loss(tmp_path, value):
    path = write_csv(tmp_path, set_cell(csv_lines(), 4, "loss", value))
    data_error(path, "chinchilla", "column 'loss' (loss)", "line 4 is zero or negative", "loss must be > 0")


def test_non_positive_values_in_a_frame_are_counted_from_row_zero():
    frame = good_frame()
    frame.loc[[2, 6], "loss"] = [0.0, -1.0]
    data_error(frame, "chinchilla", "column 'loss' (loss)", "rows 2, 6 are zero or negative")


def test_many_bad_rows_are_summarised():
    frame = pd.DataFrame({"N": N * 3, "D": D * 3, "loss": [-1.0] * 24})
    data_error(frame, "chinchilla", "rows 0, 1, 2, 3, 4, 5, 6, 7 and 16 more are zero or negative")


def test_fewer_runs_than_parameters(tmp_path):
    path = write_csv(tmp_path, csv_lines()[:7])  # 6 runs
    data_error(path, "chinchilla", "6 runs are fewer than the 7 parameters of law 'chinchilla'",
               "5 law parameters plus noise", "at least 7 runs")


def test_fewer_runs_than_parameters_depends_on_the_law():
    frame = pd.DataFrame({"C": C[:5], "loss": LOSS[:5]})
    assert len(load_runs(frame, "power-C")) == 5  # 3 law parameters + sigma + nu
    data_error(frame.iloc[:4], "power-C", "4 runs are fewer than the 5 parameters of law 'power-C'")


def test_duplicate_column_names_in_a_csv_header(tmp_path):
    lines = [f"{line},{line.rsplit(',', 1)[1]}" for line in csv_lines()]  # loss twice
    path = write_csv(tmp_path, lines)
    data_error(path, "chinchilla", str(path), "duplicate column names in the header: loss")


def test_duplicate_column_names_in_a_frame():
    frame = pd.DataFrame(np.column_stack([N, D, LOSS, LOSS]), columns=["N", "D", "loss", "loss"])
    data_error(frame, "chinchilla", "duplicate column names: loss", "rename")


def test_empty_file(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(b"")
    data_error(path, "chinchilla", str(path), "the file is empty", "header row")


def test_whitespace_only_file(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("  \n\n\t \r\n")
    data_error(path, "chinchilla", str(path), "the file is empty")


def test_header_without_rows(tmp_path):
    path = write_csv(tmp_path, ["N,D,loss"])
    data_error(path, "chinchilla", str(path), "has a header but no rows of runs")


def test_png_file_is_not_csv(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00")
    data_error(path, "chinchilla", str(path), "not a CSV file", "binary")


def test_gzip_file_is_not_csv(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(gzip.compress("\n".join(csv_lines()).encode()))
    data_error(path, "chinchilla", str(path), "not a CSV file")


def test_non_utf8_text_is_not_csv(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_bytes(b"N,D,loss\n1e8,2e9,\xe9\xff\xfe\n")
    data_error(path, "chinchilla", str(path), "line 2 is not UTF-8 text (byte 0xe9)", "save the file as UTF-8")


def test_prose_is_not_a_table(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("These are my training runs\nthey went well\n")
    data_error(path, "chinchilla", str(path), "not a CSV table of runs", "single column 'These are my training runs'",
               "comma-separated")


def test_ragged_rows_are_refused_with_their_line(tmp_path):
    path = write_csv(tmp_path, ["N,D,loss", "1e8,2e9,3.9", "1e8,2e9,3.9,7,8,9"])
    data_error(path, "chinchilla", str(path), "line 3 has 6 fields but the header has 3 (N, D, loss)")


def test_path_that_does_not_exist(tmp_path):
    path = tmp_path / "absent.csv"
    data_error(path, "chinchilla", str(path), "no such file")
    data_error(str(path), "chinchilla", "absent.csv: no such file")


def test_directory_is_not_a_file(tmp_path):
    data_error(tmp_path, "chinchilla", f"{tmp_path}: is a directory, not a CSV file")


def test_explicit_mapping_to_an_absent_column():
    data_error(good_frame(), "chinchilla", "column 'val_loss' (given for loss) is not in the table",
               "columns are: N, D, loss", columns={"loss": "val_loss"})


def test_explicit_mapping_to_an_absent_column_in_a_csv(tmp_path):
    path = write_csv(tmp_path, csv_lines())
    data_error(path, "chinchilla", "column 'Params' (given for N) is not in the table", columns={"N": "Params"})


# ---- line numbers point at the right CSV lines ----------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_line_numbers_point_at_the_bad_lines(tmp_path_factory, data):
    n_runs = data.draw(st.integers(8, 40), label="runs")
    bad = data.draw(st.sets(st.integers(0, n_runs - 1), min_size=1, max_size=5), label="bad rows")
    column = data.draw(st.sampled_from(["N", "D", "loss"]), label="column")
    columns = {"N": np.geomspace(1e7, 1e10, n_runs), "D": np.geomspace(1e9, 1e12, n_runs),
               "loss": np.linspace(4.0, 2.0, n_runs)}
    lines = csv_lines(**columns)
    for row in bad:
        set_cell(lines, row + 2, column, "-1")
    path = write_csv(tmp_path_factory.mktemp("lines"), lines)
    with pytest.raises(DataError) as info:
        load_runs(path, "chinchilla")
    expected = ", ".join(str(row + 2) for row in sorted(bad))
    rows = f"lines {expected} are" if len(bad) > 1 else f"line {expected} is"
    assert f"column '{column}' ({column}): {rows} zero or negative" in str(info.value)
    for row in sorted(bad):  # the reported line really holds the bad value
        assert "-1" in path.read_text().splitlines()[row + 2 - 1].split(",")


def test_line_numbers_with_windows_line_endings_and_a_bom(tmp_path):
    path = tmp_path / "runs.csv"
    lines = set_cell(csv_lines(), 7, "loss", "-3")
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    data_error(path, "chinchilla", "column 'loss' (loss): line 7 is zero or negative")


# ---- problems found while writing these tests, now fixed ---------------------------------------------


def test_line_numbers_count_blank_lines(tmp_path):
    lines = csv_lines()
    lines.insert(3, "")  # a blank line 4; the run of old line 4 is now on line 5
    set_cell(lines, 8, "loss", "-3")
    data_error(write_csv(tmp_path, lines), "chinchilla", "column 'loss' (loss): line 8 is zero or negative")


def test_ambiguity_in_a_column_the_law_does_not_need_is_ignored():
    runs = load_runs(good_frame().assign(flops=C, compute=C), "chinchilla")  # two candidates for C, C unused
    assert runs.mapped == {"N": "N", "D": "D", "loss": "loss"}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_derived_tokens_that_overflow_are_refused():
    frame = pd.DataFrame({"N": [1e-300] * 8, "C": [1e300] * 8, "loss": LOSS})
    data_error(frame, "chinchilla", "D", "C / (6 N)", "finite")


def test_fewer_runs_than_parameters_depends_on_the_likelihood():
    """Normal and Laplace noise have no nu: one parameter fewer than the Student-t (issue 12: it was counted
    as two for every likelihood)."""
    frame = pd.DataFrame({"C": C[:4], "loss": LOSS[:4]})
    assert len(load_runs(frame, "power-C", likelihood="normal")) == 4  # 3 law parameters + sigma
    assert len(load_runs(frame, "power-C", likelihood="laplace")) == 4
    with pytest.raises(DataError, match="4 runs are fewer than the 5 parameters of law 'power-C'"):
        load_runs(frame, "power-C")


def test_counts_with_suffixes_are_read_and_written_back():
    from bayeslaw.units import human, parse_count

    assert [parse_count(t) for t in ("2.8B", "1.4T", "350m", "70b", ".5K", " 7 B ")] == [2.8e9, 1.4e12, 3.5e8, 7e10,
                                                                                         500.0, 7e9]
    assert parse_count("2.8") is None and parse_count("2.8 billion") is None and parse_count("B") is None
    assert [human(v) for v in (9.6e10, 1.7e12, 3.5e8, 999.6e9, 1234, 0.5, 1e24)] == ["96B", "1.7T", "350M", "1T",
                                                                                    "1.2K", "0.5", "1e+24"]
    frame = pd.DataFrame({"params": ["70M", "1.4B", "2.8b"] * 3, "tokens": ["1.4B", "28B", "56000000000"] * 3,
                          "loss": [3.1, 2.6, 2.5] * 3})
    runs = load_runs(frame, "chinchilla")
    assert runs.frame["N"].tolist()[:3] == [7e7, 1.4e9, 2.8e9] and runs.frame["D"].tolist()[:3] == [1.4e9, 2.8e10,
                                                                                                   5.6e10]
    frame["loss"] = ["3.1", "2.6K", "2.5"] * 3  # the target is a loss: no suffixes
    with pytest.raises(DataError, match=r"column 'loss' \(loss\): rows 1, 4, 7 are not numeric \(e.g. '2.6K'\); "
                                        r"give numbers in"):
        load_runs(frame, "chinchilla")
    frame["loss"] = [3.1, 2.6, 2.5] * 3
    frame.loc[1, "params"] = "1.4 bn"
    with pytest.raises(DataError, match=r"not numeric \(e.g. '1.4 bn'\); give numbers \(or counts like 2.8B, 1.4T\)"):
        load_runs(frame, "chinchilla")


def test_published_tables_as_distributed_name_their_reader():
    frantar = pd.read_csv(shared_data_path("frantar_t5_sparsity.csv"))
    with pytest.raises(DataError, match=r"this looks like the published table "
                                        r"bayeslaw.datasets.frantar_t5_runs\(path\) reads into runs"):
        load_runs(frantar, "chinchilla")
    raw = pd.read_csv(shared_data_path("datablations_losses.csv"))  # every checkpoint a row: loads, with a note
    runs = load_runs(raw, "chinchilla", columns={"N": "num_params", "D": "token_num"})
    assert runs.published == "datablations_runs" and len(runs) == len(raw)
    assert any("bayeslaw.datasets.datablations_runs(path) applies its paper's protocol" in n for n in runs.notes())
    from bayeslaw.datasets import datablations_runs

    assert load_runs(datablations_runs(shared_data_path("datablations_losses.csv")), "muennighoff").published == ""
