"""The command line's JSON (one key convention, a metadata object, a schema per command), its one list grammar,
--points/--budgets/--out files, and that `laws`, `--help` and `--version` never import PyMC."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayeslaw import __version__
from bayeslaw.cli import EXIT_ERROR, EXIT_USAGE, app
from bayeslaw.jsondata import KEY, flat_key, key, quantile_name, records, schema
from bayeslaw.laws import LAWS
from bayeslaw.testing import fake_fit

runner = CliRunner()
COMMANDS = ("laws", "models", "fit", "summary", "predict", "plan", "compare", "calibrate", "next")


def validate(command: str, data: dict) -> None:
    """``data`` matches the command's schema, every key anywhere follows the key rule, and meta names the command."""
    jsonschema.validate(data, schema(command), cls=jsonschema.Draft202012Validator)
    assert data["meta"]["command"] == command and data["meta"]["bayeslaw"] == __version__

    def keys(value):
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)
        elif isinstance(value, list):
            for v in value:
                yield from keys(v)

    bad = [k for k in keys(data) if not KEY.match(k)]
    assert not bad, bad


@pytest.fixture(scope="module")
def saved_fit(tmp_path_factory):
    return fake_fit("chinchilla").save(tmp_path_factory.mktemp("json") / "fit.nc")


def run_json(args: list[str], code: int = 0) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_keys_name_quantiles_and_hold_no_spaces_percent_or_rules():
    assert quantile_name(0.05) == "q05" and quantile_name(0.975) == "q97_5" and quantile_name(0.5) == "q50"
    assert flat_key("N_opt 90% lo") == "N_opt_q05" and flat_key("N_opt 90% hi") == "N_opt_q95"  # CSV columns
    assert key("N_opt 90% lo") == "n_opt_q05" and key("N") == "n" and key("D_opt") == "d_opt"
    assert key("90% lo", prefix="loss") == "loss_q05" and key("50% hi", prefix="loss") == "loss_q75"
    assert key("chosen loss 5%") == "chosen_loss_q05" and key("chosen regret 90%") == "chosen_regret_q90"
    assert key("chosen tokens/param") == "chosen_tokens_per_param"
    assert key("chosen P(loss<=2.3)") == "chosen_prob_target"
    assert key("lpd per run") == "lpd_per_run" and key("hdi_3%") == "hdi_3" and key("3 runs") == "x_3_runs"
    assert all(KEY.match(key(k)) for k in ("N", "E", "N_opt 90% lo", "U/D", "3 runs", "_x", "Ä"))


def test_interval_columns_become_one_object_per_level():
    frame = pd.DataFrame({"budget": [1e22], "N_opt median": [2.0], "N_opt 50% lo": [1.5], "N_opt 50% hi": [2.5],
                          "N_opt 90% lo": [1.0], "N_opt 90% hi": [3.0], "chosen loss median": [2.2],
                          "chosen loss 5%": [2.1], "chosen loss 95%": [2.4], "chosen regret 90%": [0.1],
                          "law median": [2.3]})
    assert records(frame) == [{
        "budget": 1e22,
        "n_opt": [{"median": 2.0, "lo": 1.5, "hi": 2.5, "level": 0.5}, {"median": 2.0, "lo": 1.0, "hi": 3.0,
                                                                          "level": 0.9}],
        "chosen_loss": {"median": 2.2, "lo": 2.1, "hi": 2.4, "level": 0.9},
        "chosen_regret_q90": 0.1, "law_median": 2.3}]


def test_a_wrong_key_fails_every_schema():
    """propertyNames holds the key rule in every schema: a capital or a leading digit anywhere fails."""
    laws = run_json(["laws"])
    for where in (laws, laws["meta"], laws["laws"][0]):
        for bad in ("N_opt", "2x", "law median"):
            broken = json.loads(json.dumps(laws))
            target = broken if where is laws else broken["meta"] if where is laws["meta"] else broken["laws"][0]
            target[bad] = 1.0
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(broken, schema("laws"), cls=jsonschema.Draft202012Validator)
    for command in COMMANDS:
        text = json.dumps(schema(command))
        assert text.count('"propertyNames"') >= 2 and "A-Z" not in text, command


def test_every_command_has_a_valid_draft_2020_12_schema():
    for command in COMMANDS:
        jsonschema.Draft202012Validator.check_schema(schema(command))


def test_catalogue_commands_match_their_schemas():
    laws = run_json(["laws"])
    validate("laws", laws)
    assert [row["law"] for row in laws["laws"]] == list(LAWS)
    models = run_json(["models"])
    validate("models", models)
    assert "chinchilla-besiroglu2024" in {row["model"] for row in models["models"]}


def test_summary_predict_and_plan_match_their_schemas(saved_fit):
    summary = run_json(["summary", str(saved_fit)])
    validate("summary", summary)
    assert {row["parameter"] for row in summary["parameters"]} >= {"E", "A", "B", "alpha", "beta"}
    assert summary["meta"]["inputs"] == {"fit": str(saved_fit)}
    from bayeslaw.fit import load

    fitted = load(saved_fit)
    assert summary["meta"]["data_sha256"] == fitted.runs.digest() and summary["meta"]["law"] == "chinchilla"
    assert summary["meta"]["likelihood"] == fitted.likelihood and summary["meta"]["discrepancy"] == "gp"
    assert summary["meta"]["units"] == {"n": "parameters", "d": "tokens", "c": "FLOPs", "loss": "nats/token"}
    e = next(row for row in summary["parameters"] if row["parameter"] == "E")
    assert e["hdi"]["level"] == 0.94 and e["hdi"]["lo"] < e["hdi"]["median"] < e["hdi"]["hi"]
    predicted = run_json(["predict", str(saved_fit), "--N", "1e9,7e10", "--D", "2e10", "--D", "1.4T"])
    validate("predict", predicted)
    rows = predicted["prediction"]
    assert [r["point"] for r in rows] == [0, 1] and [r["d"] for r in rows] == [2e10, 1.4e12]
    assert predicted["meta"]["levels"] == [0.5, 0.9] and predicted["meta"]["compute"] == {"flops_per_param_token": 6.0}
    for r in rows:
        half, ninety = r["loss"]
        assert (half["level"], ninety["level"]) == (0.5, 0.9) and half["median"] == ninety["median"]
        assert ninety["lo"] < half["lo"] < half["median"] < half["hi"] < ninety["hi"]
    planned = run_json(["plan", str(saved_fit), "--budget", "1e22,1e23", "--risk", "cvar:0.9", "--target-loss",
                        "2.3", "--seed", "5"])
    validate("plan", planned)
    assert planned["meta"]["seed"] == 5 and planned["decision"]["risk"] == "cvar:0.9"
    assert planned["plan"][0]["n_opt"]["level"] == 0.9 and planned["meta"]["levels"] == [0.9]
    chosen = planned["decision"]["rows"][0]["chosen_loss"]
    assert chosen["level"] == 0.9 and chosen["lo"] < chosen["median"] < chosen["hi"]
    assert isinstance(planned["notes"], list) and planned["notes"][0].startswith("C = 6 N D")
    assert planned["smallest_budget"]["target_loss"] == 2.3
    published = run_json(["plan", "--model", "chinchilla-besiroglu2024", "--budget", "1e24"])
    validate("plan", published)
    assert published["meta"]["model"] == "chinchilla-besiroglu2024" and published["meta"]["inputs"] == {}
    assert published["meta"]["data_sha256"] is None and published["meta"]["law"] == "chinchilla"
    assert published["at_published_estimates"][0]["n_opt"] == pytest.approx(9.6e10, rel=0.01)  # README's table


def test_fit_json_matches_its_schema_and_keeps_stdout_pure(tmp_path):
    """A real (small) fit of runs drawn from the Chinchilla law: stdout is one JSON document, notes on stderr too."""
    from test_fit import synthetic_runs

    path = tmp_path / "runs.csv"
    synthetic_runs(LAWS["chinchilla"], 40, noise=0.01, seed=2).to_csv(path, index=False)
    result = runner.invoke(app, ["fit", str(path), "--chains", "2", "--draws", "300", "--seed", "1",
                                 "--discrepancy", "none", "--json"])
    assert result.exit_code in (0, 3), result.output
    data = json.loads(result.stdout)
    validate("fit", data)
    assert data["meta"]["seed"] == 1 and data["meta"]["inputs"] == {"runs": str(path)}
    assert data["runs"] == 40 and data["converged"] is (result.exit_code == 0)
    from bayeslaw.data import load_runs

    assert data["meta"]["data_sha256"] == load_runs(path, LAWS["chinchilla"]).digest()
    assert data["meta"]["discrepancy"] is None and data["meta"]["likelihood"] == data["likelihood"]
    alpha = next(row for row in data["parameters"] if row["parameter"] == "alpha")["hdi"]
    assert alpha["lo"] < LAWS["chinchilla"].presets["besiroglu2024"].values["alpha"] < alpha["hi"]


def test_every_key_of_every_command_follows_the_key_rule(saved_fit, tmp_path):
    """The real JSON of each command that needs no sampling (fit, compare and calibrate are walked by
    ``validate`` in their own tests): every key at every depth matches ^[a-z][a-z0-9_]*$, and the --out file too."""
    out = tmp_path / "plan.json"
    outputs = {
        "laws": [run_json(["laws"])], "models": [run_json(["models"])],
        "summary": [run_json(["summary", str(saved_fit)])],
        "predict": [run_json(["predict", str(saved_fit), "--N", "1e9", "--D", "2e10", "--level", "0.5,0.8,0.9"])],
        "plan": [run_json(["plan", str(saved_fit), "--budget", "1e22", "--risk", "quantile:0.9", "--target-loss",
                           "2.3", "--inference-tokens", "1e12", "--level", "0.5,0.9", "--out", str(out)]),
                 run_json(["plan", "--model", "chinchilla-besiroglu2024", "--budget", "1e24"])],
        "next": [run_json(["next", str(saved_fit), "--budget", "1e22", "--spend", "1e20", "--outcomes", "8"])],
    }
    outputs["plan"].append(json.loads(out.read_text()))
    for command, documents in outputs.items():
        for data in documents:
            validate(command, data)
            assert data["meta"]["units"]["n"] == "parameters" and data["meta"]["units"]["loss"] == "nats/token"


def test_list_options_take_repeats_or_commas_alike(saved_fit):
    repeated = run_json(["plan", str(saved_fit), "--budget", "1e22", "--budget", "1e23", "--level", "0.5",
                         "--level", "0.9"])
    commas = run_json(["plan", str(saved_fit), "--budget", "1e22,1e23", "--level", "0.5,0.9"])
    assert repeated["plan"] == commas["plan"] and [i["level"] for i in commas["plan"][0]["n_opt"]] == [0.5, 0.9]


@pytest.mark.parametrize(("args", "message"), [
    (["plot", "--kind", "isoflop", "-o", "x.png", "--budget", "1e22", "1e24", "{fit}"], "unexpected argument '{fit}'"),
    (["report", "{fit}", "-o", "r.html", "--budget", "1e22", "1e24"], "unexpected argument '1e24'"),
    (["plan", "--model", "chinchilla-besiroglu2024", "--budget", "1e22", "1e24"], "'1e24' is not a fit file"),
    (["plan", "{fit}", "--budget", "1e22", "--budgets", "b.csv"], "not both"),
    (["predict", "{fit}", "--N", "1e9", "--points", "p.csv"], "not both"),
    (["predict", "{fit}", "--N", "1e9", "--D", "1e10", "--out", "p.txt"], "use a .csv or .json file name"),
])
def test_a_list_written_with_spaces_is_a_usage_error(saved_fit, tmp_path, args, message):
    result = runner.invoke(app, [a.format(fit=saved_fit) for a in args])
    assert result.exit_code == EXIT_USAGE, result.output
    assert message.format(fit=saved_fit) in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_help_shows_what_to_type_and_the_defaults():
    from typer.main import get_command

    group = get_command(app)
    for name in group.list_commands(None):
        text = runner.invoke(app, [name, "--help"], env={"COLUMNS": "200"}).stdout
        assert not re.search(r"<[\w\[\] ]+>", text), (name, text)  # no <list[float]>, <bool>, <path>
    plan = runner.invoke(app, ["plan", "--help"], env={"COLUMNS": "200"}).stdout
    assert "FLOPS" in plan and "[default: 0]" in plan and "[default: (none: the plan's medians only)]" in plan
    compare = runner.invoke(app, ["compare", "--help"], env={"COLUMNS": "200"}).stdout
    assert "--law " in compare and "--laws" not in compare  # kept as a hidden alias
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.strip() == f"bayeslaw {__version__}"


def test_points_and_budgets_from_files_and_results_to_files(saved_fit, tmp_path):
    points = tmp_path / "points.csv"
    pd.DataFrame({"N": [1e9, 7e10], "D": [2e10, 1.4e12]}).to_csv(points, index=False)
    out = tmp_path / "pred.json"
    shown = run_json(["predict", str(saved_fit), "--points", str(points), "--out", str(out)])
    written = json.loads(out.read_text())
    assert written == shown and written["meta"]["inputs"] == {"fit": str(saved_fit), "points": str(points)}
    assert written["meta"]["outputs"] == {"out": str(out)}
    direct = run_json(["predict", str(saved_fit), "--N", "1e9,7e10", "--D", "2e10,1.4e12"])
    assert [r["loss"][0]["median"] for r in direct["prediction"]] == [r["loss"][0]["median"]
                                                                     for r in shown["prediction"]]
    table = tmp_path / "pred.csv"
    run_json(["predict", str(saved_fit), "--points", str(points), "--out", str(table)])
    assert pd.read_csv(table)["loss_q05"].tolist() == pytest.approx([r["loss"][1]["lo"] for r in shown["prediction"]])
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("budget\n1e22\n1e23\n")
    table = tmp_path / "plan.csv"
    from_file = run_json(["plan", str(saved_fit), "--budgets", str(budgets), "--out", str(table)])
    assert from_file["plan"] == run_json(["plan", str(saved_fit), "--budget", "1e22,1e23"])["plan"]
    frame = pd.read_csv(table)
    assert list(frame["budget"]) == [1e22, 1e23]
    assert frame["N_opt_median"].tolist() == pytest.approx([r["n_opt"]["median"] for r in from_file["plan"]])


def test_bad_point_and_budget_files_name_the_column_and_line(saved_fit, tmp_path):
    points = tmp_path / "points.csv"
    points.write_text("N,Q\n1e9,2\n")
    bad = runner.invoke(app, ["predict", str(saved_fit), "--points", str(points), "--out", str(tmp_path / "o.csv")])
    assert bad.exit_code == EXIT_ERROR and "column 'Q' is not an input of the law; name the columns N, D" in bad.stderr
    assert not (tmp_path / "o.csv").exists()
    budgets = tmp_path / "budgets.csv"
    budgets.write_text("budget\n1e22\nlots\n")
    bad = runner.invoke(app, ["plan", str(saved_fit), "--budgets", str(budgets)])
    assert bad.exit_code == EXIT_ERROR and "column 'budget': line 3 is not a finite number ('lots')" in bad.stderr


@pytest.mark.parametrize("args", [["laws"], ["--help"], ["--version"], ["plan", "--help"]])
def test_listing_help_and_version_import_no_pymc(args):
    code = ("import sys, runpy; sys.argv = ['bayeslaw', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('bayeslaw', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pymc', 'pytensor', 'arviz'}), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
