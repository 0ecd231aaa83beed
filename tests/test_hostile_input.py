"""Hostile and careless input (issue 11), property-based: malformed run tables, prior strings, holdout rules,
--at / --column pairs, option values and tampered fit attributes. For every one: the exit code (1 for bad
input, 2 for a usage error), exactly one stderr line naming the column / line / field and the rule, no
traceback, no output file created and any existing output byte-identical. The commands run in process
through ``bayeslaw.cli.main`` (a subprocess per example would cost seconds); nothing here may start NUTS.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import pytest
from conftest import bayeslaw_command as command
from conftest import fake_fit
from conftest import run_cli as run
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bayeslaw.cli import EXIT_ERROR, EXIT_USAGE
from bayeslaw.errors import BayeslawError
from bayeslaw.holdout import Holdout, columns_of, is_default, is_off
from bayeslaw.laws import get_law
from bayeslaw.likelihoods import ALL_LIKELIHOODS
from bayeslaw.model import model_priors
from bayeslaw.priors import DISTRIBUTIONS
from bayeslaw.synthetic import ladder

PROPERTY = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HEADER = ["N", "D", "loss"]
ROWS = [[repr(float(v)) for v in row] for row in ladder("chinchilla", sizes=3, seed=0)[HEADER].to_numpy()]
PREVIOUS = b"a previous output that must survive\n"


@pytest.fixture(autouse=True)
def _no_sampling(monkeypatch):
    """Every input here is invalid: validation must refuse it before any sampling starts."""
    def refuse(*args, **kwargs):
        raise AssertionError("sampling started")

    monkeypatch.setattr(sys.modules["bayeslaw.fit"], "fit", refuse)  # the module: bayeslaw.fit is also the function


def refused(result: tuple[int, str, str], code: int, *parts: str) -> str:
    """Assert the exit code and one 'error:' line on stderr holding every part; return that line."""
    got, _, err = result
    assert got == code, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    for part in parts:
        assert part in lines[0], f"{part!r} not in: {lines[0]}"
    return lines[0]


@contextlib.contextmanager
def output_guard(existing: bool, name: str = "out.nc"):
    """A folder with an output path (holding PREVIOUS when ``existing``); afterwards nothing else is there and the
    output is as before."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / name
        if existing:
            out.write_bytes(PREVIOUS)
        yield out
        assert sorted(p.name for p in Path(folder).iterdir()) == ([name] if existing else [])
        if existing:
            assert out.read_bytes() == PREVIOUS


def csv_text(header: list[str], rows: list[list[str]], newline: str = "\n") -> str:
    return newline.join([",".join(header), *(",".join(r) for r in rows)]) + newline


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    path.write_text(csv_text(HEADER, [list(r) for r in ROWS]))
    return path


@pytest.fixture(scope="module")
def ladder_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ladder") / "ladder.csv"
    ladder("chinchilla", sizes=4, seed=0)[HEADER].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory) -> Path:
    return fake_fit().save(tmp_path_factory.mktemp("fit") / "fit.nc")


# ---- run tables ---------------------------------------------------------------------------------------------------

BAD_CELLS = {  # value class -> (values, the rule the message states)
    "text": (["abc", "12 runs", "0x10", "1_000", "True", "\u0661\u0662", "'5'", "5e"], "not numeric"),
    "thousands": (['"1,000,000"', '"8,061,898.7"', "\"2'500'000\""], "thousands separator"),
    "decimal comma": (['"3,5"', '"2,75"'], "decimal comma"),
    "missing": (["", "nan", "NaN", "N/A", "inf", "-inf", "1e400", "9" * 400, "-1e999"], "missing, NaN or infinite"),
    "not positive": (["0", "-5", "-1e-300", "1e-400", "-0.0"], "zero or negative"),
}


@st.composite
def malformed_tables(draw) -> tuple[bytes, int, list[str]]:
    """(file bytes, expected exit code, parts the one error line must hold) for one kind of damage."""
    rows = [list(r) for r in ROWS]
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    kind = draw(st.sampled_from(["cell", "extra field", "missing field", "shifted", "unquoted thousands",
                                 "latin-1", "utf-16", "delimiter", "duplicate header", "header only", "few rows",
                                 "binary", "empty"]))
    row = draw(st.integers(0, len(rows) - 1))
    line = row + 2
    if kind == "cell":
        column = draw(st.sampled_from(HEADER))
        kind_of_value = draw(st.sampled_from(sorted(BAD_CELLS)))
        values, rule = BAD_CELLS[kind_of_value]
        bad_rows = draw(st.sets(st.integers(0, len(rows) - 1), min_size=1, max_size=3))
        for r in bad_rows:
            rows[r][HEADER.index(column)] = draw(st.sampled_from(values))
        lines = sorted(r + 2 for r in bad_rows)
        where = f"line {lines[0]} is" if len(lines) == 1 else f"lines {', '.join(map(str, lines))} are"
        return (bom + csv_text(HEADER, rows, newline)).encode(), EXIT_ERROR, [f"column '{column}' ({column})", where,
                                                                             rule]
    if kind in ("extra field", "missing field", "shifted", "unquoted thousands"):
        if kind == "extra field":
            rows[row].insert(draw(st.integers(0, 3)), draw(st.sampled_from(["", "7", "x"])))
        elif kind == "missing field":
            del rows[row][draw(st.integers(0, 2))]
        elif kind == "shifted":
            rows = [["", *r] for r in rows]
            line = 2
        else:
            n = float(rows[row][0])
            rows[row][0] = f"{int(n) // 1000:,},{int(n) % 1000:03d}"
        fields = len(",".join(rows[line - 2]).split(","))
        return ((bom + csv_text(HEADER, rows, newline)).encode(), EXIT_ERROR,
                [f"line {line} has {fields} fields but the header has 3 (N, D, loss)"])
    if kind == "latin-1":
        rows[row][2] = rows[row][2] + "\u00e9"
        return csv_text(HEADER, rows, newline).encode("latin-1"), EXIT_ERROR, [f"line {line} is not UTF-8 text"]
    if kind == "utf-16":
        return csv_text(HEADER, rows, newline).encode("utf-16"), EXIT_ERROR, ["UTF-16 text", "save it as UTF-8"]
    if kind == "delimiter":
        sep, words = draw(st.sampled_from([(";", "semicolons"), ("\t", "tabs")]))
        text = newline.join(sep.join(r) for r in [HEADER, *rows]) + newline
        return (bom + text).encode(), EXIT_ERROR, [f"separated by {words}"]
    if kind == "duplicate header":
        return (bom + csv_text(["N", "N", "loss"], rows, newline)).encode(), EXIT_ERROR, ["duplicate column names"]
    if kind == "header only":
        return (bom + ",".join(HEADER) + newline).encode(), EXIT_ERROR, ["has a header but no rows"]
    if kind == "few rows":
        return (bom + csv_text(HEADER, rows[:3], newline)).encode(), EXIT_ERROR, ["3 runs are fewer than the"]
    if kind == "binary":
        return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(40)), EXIT_ERROR, ["binary data"]
    return draw(st.sampled_from([b"", b"\n\n", b"  \r\n"])), EXIT_ERROR, ["the file is empty"]


@PROPERTY
@given(table=malformed_tables(), existing=st.booleans())
def test_malformed_run_tables_are_refused_in_one_line(table, existing):
    content, code, parts = table
    with tempfile.TemporaryDirectory() as folder, output_guard(existing) as out:
        path = Path(folder) / "runs.csv"
        path.write_bytes(content)
        refused(run("fit", path, "--out", out, "--chains", "2", "--draws", "10", "--seed", "1"), code, *parts)


# ---- prior strings ------------------------------------------------------------------------------------------------

ARGS = ["mu", "sigma", "nu", "lower", "upper", "value", "lam", "alpha", "beta", "zz"]
BAD_NUMBERS = ["1" + "0" * 400, "nan", "inf", "-1", "0", "'a'", "1j", "[1]", "None", "1e999", "(1, 2)", "mu", "1+1",
               "__import__('os')", "-1e400", "{}", "...", "b'1'"]
PRIOR_TEXT = st.one_of(
    st.text(max_size=40),
    st.builds(lambda d, body: f"{d}({body})", st.sampled_from([*DISTRIBUTIONS, "Foo", "__import__", "eval", "exec"]),
              st.text(alphabet="=,.()-+e0123456789abcxyz_ '\"[]{}*", max_size=30)),
    st.builds(lambda d, pairs: f"{d}({', '.join(f'{k}={v}' for k, v in pairs)})", st.sampled_from(list(DISTRIBUTIONS)),
              st.lists(st.tuples(st.sampled_from(ARGS), st.sampled_from([*BAD_NUMBERS, "1", "0.5", "2"])), max_size=4)),
    st.builds(lambda n: "LogNormal(" * n + ")" * n, st.integers(50, 5000)),
)


def _valid_prior(name: str, spec: str) -> bool:
    try:
        model_priors(get_law("chinchilla"), "student_t", {name: spec})
    except BayeslawError:
        return False
    return True


@PROPERTY
@given(name=st.sampled_from(["alpha", "E", "sigma", "nu", "log_A_at_pivot", "alfa", "A"]), spec=PRIOR_TEXT)
def test_malformed_priors_are_usage_errors(runs_csv, name, spec):
    assume(spec.strip() and not _valid_prior(name, spec) and "\x00" not in spec)
    line = refused(run("fit", runs_csv, "--prior", f"{name}={spec}"), EXIT_USAGE)
    assert f"'{name}'" in line and ("prior for" in line or "unknown parameter" in line), line
    assert len(line) < 600  # a hostile string is cut, not echoed whole


@PROPERTY
@given(item=st.sampled_from(["alpha", "=LogNormal(mu=0, sigma=1)", "alpha=", " = ", "alpha==", ""]))
def test_prior_without_a_name_and_a_value_is_a_usage_error(runs_csv, item):
    assume(item != "alpha==")
    refused(run("fit", runs_csv, "--prior", item), EXIT_USAGE, "--prior", "must look like NAME=VALUE")


# ---- holdout rules ------------------------------------------------------------------------------------------------

RULES = st.one_of(
    st.text(max_size=30),
    st.builds(lambda c, op, v: f"{c}{op}{v}", st.sampled_from(["C", "N", "D", "loss", "Q", "zz", "_", "C C", "1C"]),
              st.sampled_from([">", ">=", "<", "<=", "=", "==", "=>", "!", "", " > "]),
              st.sampled_from(["1e40", "0", "1e5", "1e30", "abc", "inf", "nan", "1e400", "-", "", "1e21e3", "--1",
                               "9" * 400])),
)


@PROPERTY
@given(rule=RULES)
def test_bad_holdout_rules_are_refused_before_fitting(ladder_csv, rule):
    assume(not is_off(rule) and not is_default(rule))
    try:
        parsed = Holdout.parse(rule)
    except BayeslawError:
        refused(run("compare", ladder_csv, "--law", "chinchilla,power-C", "--holdout", rule), EXIT_USAGE, "holdout")
        return
    from bayeslaw.data import load_runs

    runs = load_runs(ladder_csv, "chinchilla")
    if parsed.column in columns_of(runs):
        held = int(parsed.mask(runs).sum())
        assume(held < 2 or len(runs) - held < 9)  # a split compare could use would start fitting
    refused(run("compare", ladder_csv, "--law", "chinchilla,power-C", "--holdout", rule), EXIT_ERROR, "holdout")


# ---- --at and --column pairs --------------------------------------------------------------------------------------

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
BAD_VALUES = ["abc", "", " ", "nan", "inf", "-inf", "1e400", "1,x", "--", "0x10", "1e", "5 tokens"]


@PROPERTY
@given(case=st.sampled_from(["unused", "repeated", "bad value", "no pair"]), name=NAMES,
       value=st.sampled_from(BAD_VALUES))
def test_bad_at_pairs_are_refused(saved_fit, case, name, value):
    base = ["predict", saved_fit, "--N", "7e10", "--D", "1.4e12"]
    if case == "unused":
        assume(name not in ("N", "D", "S", "experts", "granularity"))
        refused(run(*base, "--at", f"{name}=5"), EXIT_ERROR, f"input {name} is not used by law 'chinchilla'")
    elif case == "repeated":
        refused(run(*base, "--at", "N=5"), EXIT_USAGE, "--at N repeats --N")
    elif case == "bad value":
        assume(name not in ("N", "D"))
        line = refused(run(*base, "--at", f"{name}={value}"), EXIT_USAGE, "--at")
        assert f"--at {name}" in line or f"--at '{name}=" in line, line
    else:
        refused(run(*base, "--at", name), EXIT_USAGE, "--at", "must look like NAME=VALUE")


@PROPERTY
@given(case=st.sampled_from(["unknown name", "absent column", "shared column", "no pair"]), name=NAMES,
       source=st.sampled_from(["val-loss", "params", "x", "Loss ", "N"]), existing=st.booleans())
def test_bad_column_pairs_are_refused(runs_csv, case, name, source, existing):
    readable = {"N", "D", "loss", "C", "M", "U", "epochs", "n_layer", "d_model", "l_seq"}
    with output_guard(existing) as out:
        base = ["fit", runs_csv, "--out", out]
        if case == "unknown name":
            assume(name not in readable)
            refused(run(*base, "--column", f"{name}={source}"), EXIT_USAGE, f"'{name}' is not a name law 'chinchilla'")
        elif case == "absent column":
            assume(source != "N")
            refused(run(*base, "--column", f"loss={source}"), EXIT_ERROR, f"column '{source.strip()}' (given for loss)")
        elif case == "shared column":
            refused(run(*base, "--column", "loss=N"), EXIT_ERROR, "column 'N' would be read as both N and loss")
        else:
            refused(run(*base, "--column", name), EXIT_USAGE, "--column", "must look like NAME=VALUE")


# ---- option values ------------------------------------------------------------------------------------------------

NUMBER_OPTIONS = {"--budget": "positive", "--max-params": "positive", "--unique-tokens": "positive",
                  "--flops-per-param-token": "positive", "--target-loss": "positive", "--probability": "unit",
                  "--level": "unit", "--seed": "seed"}


def _valid_option(kind: str, text: str) -> bool:
    try:
        value = int(text) if kind == "seed" else float(text)
    except ValueError:
        return False
    if kind == "seed":
        return 0 <= value <= 2**32 - 9
    return math.isfinite(value) and value > 0 and (kind != "unit" or value < 1)


@PROPERTY
@given(option=st.sampled_from(sorted(NUMBER_OPTIONS)),
       value=st.one_of(st.sampled_from(["lots", "1e", "nan", "inf", "-inf", "-1", "0", "1e400", "", "1.5", "2",
                                        "-1e22", "4294967296", "1e22e", "0x10"]), st.text(max_size=12)))
def test_bad_option_values_are_usage_errors(option, value):
    assume(not _valid_option(NUMBER_OPTIONS[option], value) and "\x00" not in value)
    args = ["plan", "--model", "chinchilla-besiroglu2024", *([] if option == "--budget" else ["--budget", "1e22"])]
    line = refused(run(*args, option, value), EXIT_USAGE)
    assert option.lstrip("-").split("-")[0] in line.lower(), line


@PROPERTY
@given(command=st.sampled_from(["plot", "report"]), bad=st.sampled_from([
    ["--budget", "lots"], ["--budget", "-1"], ["--budget", "inf"], ["--budget", "1e22", "nope"], ["--level", "1.5"],
    ["--kind", "bars"], ["--kind", "pairs", "--nope"]]), existing=st.booleans())
def test_bad_figure_and_report_options_leave_outputs_alone(saved_fit, command, bad, existing):
    assume(command == "plot" or ("--kind" not in bad and "--level" not in bad))
    name = "out.png" if command == "plot" else "out.html"
    kind = [] if command == "report" or "--kind" in bad else ["--kind", "frontier"]
    with output_guard(existing, name) as out:
        refused(run(command, saved_fit, *kind, "-o", out, *bad), EXIT_USAGE)


# ---- tampered fit attributes --------------------------------------------------------------------------------------

NOT_OBJECT = st.one_of(st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=3),
                       st.text(max_size=10), st.booleans(), st.none()).map(json.dumps)
WRONG = [None, "x", -1, 1.5, [], [1], {"a": 1}, True]
REQUIRED = {"diagnostics": ["max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "treedepth_fraction", "chains",
                            "draws"],
            "data_notes": ["mapped", "derived"],
            "discrepancy": ["kind", "inputs", "log", "centre", "halfwidth", "eta", "ells", "nugget"]}
CHECKED = {"info": ["seed", "tune", "target_accept", "attempts", "fixed", "priors_given", "notes", "sampler", "retry",
                    "prior_from"],
           "diagnostics": REQUIRED["diagnostics"] + ["slowest", "ridge"], "data_notes": ["mapped", "derived"],
           "discrepancy": REQUIRED["discrepancy"] + ["draws", "weights", "noise", "transform", "capped", "n_runs"]}


@st.composite
def tampered(draw, attrs: dict[str, str]) -> tuple[str, str]:
    """(attribute, damaged value) that no loader should accept."""
    name = draw(st.sampled_from(["priors", "law_spec", "discrepancy", "diagnostics", "info", "data_notes", "law",
                                 "likelihood", "data_sha256"]))
    old = attrs[name]
    if name in ("law", "likelihood", "data_sha256"):
        value = draw(st.text(max_size=30))
        assume(value != old and (name != "likelihood" or value not in ALL_LIKELIHOODS))
        return name, value
    how = draw(st.sampled_from(["not json", "not an object", "drop", "wrong type"]))
    if how == "not json":
        value = draw(st.text(min_size=1, max_size=40))
        try:
            json.loads(value)
            assume(False)
        except ValueError:
            pass
        return name, value
    if how == "not an object":
        return name, draw(NOT_OBJECT)
    raw = json.loads(old)
    if name == "law_spec":
        raw[draw(st.sampled_from(sorted(raw)))] = draw(st.sampled_from(WRONG[1:]))
    elif name == "priors":
        key = draw(st.sampled_from(sorted(raw)))
        raw[key] = draw(st.sampled_from([{"dist": "Normal", "mu": 0, "sigma": -1}, {"dist": "Foo"}, 5, "x",
                                         {"dist": "HalfNormal"}]))
        raw["zz" if draw(st.booleans()) else key] = raw[key]
    elif how == "drop" and name in REQUIRED:
        del raw[draw(st.sampled_from(REQUIRED[name]))]
    else:
        key = draw(st.sampled_from(CHECKED[name]))
        value = draw(st.sampled_from(WRONG))
        if name == "info" and key in ("fixed", "priors_given") and value in ({"a": 1},):
            value = {"a": "x"}
        assume(not (name == "info" and not value))  # an empty or null record is no record: nothing to misread
        assume(not (key in ("slowest", "ridge", "weights", "draws") and value == []))  # none: as stored by others
        # numbers of the right type are not damage a loader can see (a tampered R-hat of 1.5 reads as 1.5)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        floats = ("target_accept", "max_rhat", "min_ess_bulk", "min_ess_tail", "treedepth_fraction")
        wholes = ("divergences", "chains", "draws")
        assume(not (number and (key in floats or (key in ("eta", "nugget") and value > 0)
                                or (key in wholes and value == -1))) and not (key == "retry" and value is True))
        assume(not (name == "discrepancy" and key in ("weights", "draws") and value is None))
        raw[key] = value
    return name, json.dumps(raw)


@pytest.fixture(scope="module")
def stored_attrs(saved_fit) -> dict[str, str]:
    with h5py.File(saved_fit, "r") as handle:
        return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in handle["posterior"].attrs.items()}


@settings(PROPERTY, max_examples=40)
@given(data=st.data())
def test_tampered_fit_attributes_are_named(saved_fit, stored_attrs, data):
    name, value = data.draw(tampered(stored_attrs))
    assume("\x00" not in value)  # HDF5 strings cannot hold NUL
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "fit.nc"
        shutil.copyfile(saved_fit, copy)
        with h5py.File(copy, "r+") as handle:
            handle["posterior"].attrs[name] = value
        line = refused(run("summary", copy), EXIT_ERROR, str(copy))
        assert f"'{name}'" in line or (name == "law" and "'law_spec'" in line), line


def test_an_untampered_copy_loads(saved_fit):
    code, out, err = run("summary", saved_fit)
    assert code == 0 and err == "" and "chinchilla:" in out


# ---- the installed command ----------------------------------------------------------------------------------------

def test_installed_command_refuses_a_shifted_table_in_one_line(tmp_path):
    table = tmp_path / "runs.csv"
    table.write_text(csv_text(HEADER, [["", *r] for r in ROWS]))
    out = tmp_path / "out.nc"
    out.write_bytes(PREVIOUS)
    proc = command("fit", table, "--out", out)
    assert proc.returncode == EXIT_ERROR and proc.stdout == "" and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"error: {table}: line 2 has 4 fields but the header has 3 (N, D, loss) (and 17 "
                                  "other lines with a different count): a comma inside a number")
    assert "line 2 has 4 fields" in proc.stderr and out.read_bytes() == PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc", "runs.csv"]


def test_module_entry_point_uses_the_same_conventions(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bayeslaw", "plan", "--budget", "lots"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == EXIT_USAGE and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("error: --budget must be numbers, got 'lots'")
