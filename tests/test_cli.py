"""The bayeslaw command: laws, fit, summary, demo; one-line errors with non-zero exits."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import converged_exit
from test_cli_json import validate
from test_fit import synthetic_runs
from typer.testing import CliRunner

from bayeslaw.cli import EXIT_ERROR, EXIT_USAGE, app
from bayeslaw.laws import LAWS

runner = CliRunner()
SHORT = ["--chains", "2", "--draws", "300", "--tune", "1000", "--seed", "1"]


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "runs.csv"
    frame = synthetic_runs(LAWS["chinchilla"], 60, noise=0.01, seed=4)
    frame = frame.rename(columns={"N": "Model Size", "loss": "val-loss"})
    frame["Training FLOP"] = 6 * frame["Model Size"] * frame.pop("D")
    frame.to_csv(path, index=False)
    return path


def test_laws_lists_every_law_with_its_formula():
    result = runner.invoke(app, ["laws"])
    assert result.exit_code == 0
    for name, law in LAWS.items():
        assert name in result.stdout and law.formula in result.stdout


def test_fit_then_summary(runs_csv, tmp_path):
    out = tmp_path / "fit.nc"
    result = runner.invoke(app, ["fit", str(runs_csv), "--law", "chinchilla", "--out", str(out), *SHORT])
    assert converged_exit(result.exit_code, result.stderr), result.output
    assert "column 'Model Size' read as N" in result.stdout
    assert "D derived as C / (6 N)" in result.stdout
    assert out.is_file()
    for name in ("E", "alpha", "beta", "a", "G", "sigma"):
        assert any(line.split()[:1] == [name] for line in result.stdout.splitlines()), name
    assert "diagnostics: R-hat max" in result.stdout
    summary = runner.invoke(app, ["summary", str(out)])
    assert summary.exit_code == result.exit_code
    assert "chinchilla: L = E + A / N^alpha + B / D^beta; 60 runs" in summary.stdout
    table = lambda text: [ln for ln in text.splitlines() if ln.split()[:1] in (["alpha"], ["beta"])]  # noqa: E731
    assert table(summary.stdout) == table(result.stdout)


def test_fit_with_a_prior_override(runs_csv):
    result = runner.invoke(app, ["fit", str(runs_csv), "--prior", "alpha=TruncatedNormal(mu=0.3, sigma=0.001, "
                                 "lower=0, upper=1)", *SHORT])
    assert converged_exit(result.exit_code, result.stderr), result.output
    alpha_line = next(ln for ln in result.stdout.splitlines() if ln.startswith("alpha "))
    assert abs(float(alpha_line.split()[1]) - 0.3) < 0.005


def test_unconverged_fit_exits_3_and_says_why(runs_csv):
    result = runner.invoke(app, ["fit", str(runs_csv), "--chains", "2", "--draws", "10", "--tune", "2"])
    assert result.exit_code == 3
    assert "NOT CONVERGED" in result.stdout and "increase draws" in result.stdout


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["fit", "missing.csv"], "missing.csv: no such file", EXIT_ERROR),
        (["fit", "{runs}", "--law", "nope"], "unknown law 'nope'", EXIT_USAGE),
        (["fit", "{runs}", "--prior", "alpha=Normal(mu=0.3, sigma=1)"], "prior for 'alpha'", EXIT_USAGE),
        (["fit", "{runs}", "--prior", "alpha"], "must look like NAME=VALUE", EXIT_USAGE),
        (["fit", "{runs}", "--column", "loss=nothere"], "column 'nothere'", EXIT_ERROR),
        (["fit", "{bad}"], "column 'val-loss' (loss): line 3 is zero or negative", EXIT_ERROR),
        (["summary", "{runs}"], "not a bayeslaw fit file", EXIT_ERROR),
        (["demo", "--budget", "-1"], "--budget must be finite FLOP counts > 0", EXIT_USAGE),
    ],
)
def test_errors_are_one_line_with_a_non_zero_exit(args, message, code, runs_csv, tmp_path):
    bad = tmp_path / "bad.csv"
    lines = runs_csv.read_text().splitlines()
    cells = lines[2].split(",")
    header = lines[0].split(",")
    cells[header.index("val-loss")] = "-1"
    lines[2] = ",".join(cells)
    bad.write_text("\n".join(lines) + "\n")
    args = [a.format(runs=runs_csv, bad=bad) for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_installed_command_prints_no_traceback(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    proc = subprocess.run([sys.executable, "-m", "bayeslaw", "fit", str(empty)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == EXIT_ERROR
    assert proc.stderr.strip().splitlines() == [f"error: {empty}: the file is empty; expected a CSV with a header "
                                                "row and one row per run"]


def test_demo_runs_on_the_embedded_default():
    result = runner.invoke(app, ["demo", "--chains", "2", "--draws", "300", "--seed", "3"])
    assert converged_exit(result.exit_code, result.stderr), result.output
    assert "63 runs on isoFLOP profiles" in result.stdout
    lines = {ln.split()[0]: ln for ln in result.stdout.splitlines() if ln.strip().startswith(("N_opt", "D_opt"))}
    for key in ("N_opt", "D_opt"):
        parts = lines[key].replace("[", " ").replace("]", " ").replace(",", " ").replace("(", " ").split()
        median, lo, hi, truth = float(parts[2]), float(parts[3]), float(parts[4]), float(parts[6].rstrip(")"))
        assert lo <= truth <= hi and lo < median < hi


@pytest.fixture(scope="module")
def saved_fit(runs_csv, tmp_path_factory):
    """A fake fit of the runs (draws around the constants they were drawn from; bayeslaw.testing): predict and
    plan present a fit, they do not sample (the fit command is tested above)."""
    import pandas as pd

    from bayeslaw.testing import fake_fit

    return fake_fit("chinchilla", runs=pd.read_csv(runs_csv)).save(tmp_path_factory.mktemp("fit") / "fit.nc")


def test_predict_prints_intervals_and_flags_extrapolation(saved_fit):
    inside = runner.invoke(app, ["predict", str(saved_fit), "--N", "1e9", "--D", "2e10"])
    assert inside.exit_code == 0, inside.output
    assert "decades outside" in inside.stdout and "90% hi" in inside.stdout and inside.stderr == ""
    far = runner.invoke(app, ["predict", str(saved_fit), "--N", "1e13", "--D", "1e15"])
    assert "outside the fitted runs" in far.stderr


def test_plan_json_and_csv_are_machine_readable(saved_fit):
    import io
    import json

    import pandas as pd

    result = runner.invoke(app, ["plan", str(saved_fit), "--budget", "1e22,1e23", "--budget", "1e24", "--risk",
                                 "cvar:0.9", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [row["budget"] for row in data["plan"]] == [1e22, 1e23, 1e24]
    assert [row["budget"] for row in data["decision"]["rows"]] == [1e22, 1e23, 1e24]
    assert data["decision"]["risk"] == "cvar:0.9" and data["meta"]["inputs"] == {"fit": str(saved_fit)}
    medians = [row["n_opt"]["median"] for row in data["plan"]]
    assert medians == sorted(medians)
    as_csv = runner.invoke(app, ["plan", str(saved_fit), "--budget", "1e22,1e23", "--csv"])
    frame = pd.read_csv(io.StringIO(as_csv.stdout))
    assert list(frame["budget"]) == [1e22, 1e23] and "tokens_per_param median" in frame.columns


def test_plan_with_target_and_inference_tokens(saved_fit):
    result = runner.invoke(app, ["plan", str(saved_fit), "--budget", "1e23", "--target-loss", "2.3"])
    assert result.exit_code == 0, result.output
    assert "smallest budget:" in result.stdout and "probability 0.9" in result.stdout
    served = runner.invoke(app, ["plan", str(saved_fit), "--budget", "1e23", "--target-loss", "2.3",
                                 "--inference-tokens", "5e12"])
    assert served.exit_code == 0, served.output
    assert "inference-aware:" in served.stdout and "saving median" in served.stdout


def test_predict_from_a_published_fit_with_extra_inputs():
    """Muennighoff et al.'s README test vector through the CLI: L(6.34e9, 242e9, U=25e9) = 2.2256440889984477."""
    import json

    result = runner.invoke(app, ["predict", "--model", "muennighoff2023", "--N", "6.34e9", "--D", "242e9",
                                 "--at", "U=25e9", "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["prediction"][0]
    assert row["law_median"] == pytest.approx(2.2256440889984477, rel=1e-9)
    neither = runner.invoke(app, ["predict", "--N", "1e9"])
    assert neither.exit_code == EXIT_USAGE and "none was given" in neither.stderr


def test_plan_with_a_data_constrained_law_repeats_the_unique_tokens():
    """datablations README: 1e22 FLOPs with 25e9 unique tokens -> about 9.49 epochs on 7.02e9 parameters."""
    import json

    result = runner.invoke(app, ["plan", "--model", "muennighoff2023", "--budget", "1e22", "--unique-tokens", "25e9",
                                 "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["plan"][0]
    assert row["epochs"]["median"] == pytest.approx(9.49, abs=0.02)
    assert row["n_opt"]["median"] == pytest.approx(7.02e9, rel=2e-3)
    missing = runner.invoke(app, ["plan", "--model", "muennighoff2023", "--budget", "1e22"])
    assert missing.exit_code == EXIT_ERROR and "needs the unique tokens available" in missing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--budget", "-1e22"], "--budget must be finite FLOP counts > 0"),
     (["--budget", "1e22", "--risk", "cvar:1.5"], "must lie in (0, 1)"),
     (["--budget", "1e22", "--risk", "worst"], "unknown risk 'worst'"),
     (["--budget", "1e22", "--inference-tokens", "1e12"], "--inference-tokens needs --target-loss"),
     (["--budget", "1e22", "--probability", "1.2"], "--probability must lie in (0, 1)"),
     (["--budget", "1e22,lots"], "--budget must be numbers"),
     (["--budget", "1e22", "lots"], "unexpected argument 'lots': give several values as --budget 1e22,1e24")],
)
def test_plan_refuses_bad_arguments_in_one_line(saved_fit, args, message):
    result = runner.invoke(app, ["plan", str(saved_fit), *args])
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr


@pytest.mark.slow
def test_compare_prints_both_rankings_and_the_verdict(runs_csv):
    """The default split on 60 runs drawn from the Chinchilla law: leave-future-out (the ranking for extrapolation)
    and PSIS-LOO both printed, the verdict line, and exit 3 with the laws named when a fit or refit missed a check."""
    result = runner.invoke(app, ["compare", str(runs_csv), "--law", "chinchilla,kaplan-nd,power", "--chains", "2",
                                 "--draws", "300", "--tune", "1000"])
    assert converged_exit(result.exit_code, result.stderr), result.output
    out = result.stdout
    assert "leave-future-out split: C>" in out and "default: the largest-compute fifth" in out
    assert "each law refitted on 48 runs and scored on the 12 held out" in out
    lfo = out.split("ranking for extrapolation (leave-future-out):\n")[1].split("\n\n")[0].splitlines()
    assert lfo[2].split()[0] == "chinchilla" and {row.split()[0] for row in lfo[2:]} == {"chinchilla", "kaplan-ND",
                                                                                       "power-C"}
    assert "ranking by PSIS-LOO (interpolation):" in out
    assert "PSIS-LOO and leave-future-out agree: chinchilla >" in out or "leave-future-out prefers chinchilla" in out
    if result.exit_code == 3:
        assert "! did not converge" in out and "not converged: " in result.stderr


def test_compare_json_is_plain_data_and_unconverged_fits_exit_3(runs_csv):
    import json
    import re

    result = runner.invoke(app, ["compare", str(runs_csv), "--laws", "chinchilla", "--law", "power", "--chains", "2",
                                 "--draws", "20", "--tune", "20", "--json"])
    assert result.exit_code == 3, result.output
    assert "warning: --laws is now --law" in result.stderr  # the former name still works, for one release
    data = json.loads(result.stdout)
    assert set(data) == {"meta", "split", "extrapolation", "loo", "disagreement", "converged", "problems", "warnings",
                         "influential", "marginal_likelihood"}
    keys = [*data["split"]] + [k for table in ("extrapolation", "loo") for row in data[table] for k in row]
    assert all(re.fullmatch(r"[a-z0-9_]+", k) for k in keys), keys  # snake_case
    validate("compare", data)
    assert set(data["meta"]["laws"]) == {"chinchilla", "power-C"} and data["meta"]["law"] is None
    assert data["meta"]["data_sha256"] is None  # the two laws read different columns of the runs
    assert data["split"]["n_heldout"] == 12 and data["split"]["default"] is True
    assert {row["law"] for row in data["loo"]} == {row["law"] for row in data["extrapolation"]} == {"chinchilla",
                                                                                                   "power-C"}
    assert data["converged"] is False and all(row["converged"] is False for row in data["extrapolation"])
    assert [row["rank"] for row in data["extrapolation"]] == [1, 2]
    problems = {row["law"]: row["checks"] for row in data["problems"]}
    for law in ("chinchilla", "power-C"):
        assert problems[law] and f"not converged: {law}: fit: " in result.stderr


def test_compare_names_a_disagreement_and_marks_unconverged_ranks(capsys):
    """The printed verdict and rank marks for a comparison whose rankings disagree (tables built by hand)."""
    import re

    import pandas as pd

    from bayeslaw.cli import _print_comparison
    from bayeslaw.compare import Comparison, disagreement

    law = pd.Index(["kaplan-ND", "chinchilla"], name="law")
    loo = pd.DataFrame({"rank": [1, 2], "elpd": [60.0, 57.0], "elpd_se": [3.0, 3.0], "elpd_diff": [0.0, 3.0],
                        "diff_se": [0.0, 1.0], "weight": [1.0, 0.0], "n_pareto_k_high": [0, 0],
                        "converged": [True, True]}, index=law)
    lfo = pd.DataFrame({"rank": [1, 2], "n_fit": 16, "n_heldout": 8, "lpd": [24.0, 2.0], "lpd_per_run": [3.0, 0.25],
                        "coverage_50": [0.5, 0.0], "coverage_90": [0.875, 0.0], "median_relative_error": [0.004, 0.017],
                        "fit_converged": True, "refit_converged": [False, True], "converged": [False, True]},
                       index=law[::-1])
    result = Comparison(loo, lfo, {"rule": "C>1e21", "column": "C", "threshold": 1e21, "default": False, "n_fit": 16,
                                   "n_heldout": 8}, disagreement(loo, lfo),
                        {"chinchilla": ["refit: R-hat 1.05 > 1.01"], "kaplan-ND": []})
    _print_comparison(result, None, as_json=False, as_csv=False)
    out = capsys.readouterr().out
    assert "PSIS-LOO prefers kaplan-ND, leave-future-out prefers chinchilla: for extrapolation trust" in out
    assert re.search(r"^chinchilla +1 ! ", out, re.MULTILINE) and re.search(r"^kaplan-ND +2 ", out, re.MULTILINE)
    assert "! did not converge" in out and "leave-future-out split: C>1e21;" in out


BAD_COMPARE = [(["--law", "chinchilla"], "at least two law names", EXIT_USAGE),
               (["--law", "chinchilla,nope"], "unknown law 'nope'", EXIT_USAGE),
               (["--law", "chinchilla,power", "--holdout", "C=1"], "cannot read holdout", EXIT_USAGE),
               (["--law", "chinchilla,power", "--holdout", "C>1e30"], "holds out 0;", EXIT_ERROR),
               (["--law", "chinchilla,power", "--holdout", "Q>1"], "holdout column 'Q'", EXIT_ERROR)]


@pytest.mark.parametrize(("args", "message", "code"), BAD_COMPARE)
def test_compare_refuses_bad_arguments(runs_csv, args, message, code):
    result = runner.invoke(app, ["compare", str(runs_csv), *args])
    assert result.exit_code == code and message in result.stderr and result.stderr.count("\n") == 1
