"""Calibration check: held-out coverage with and without model discrepancy, its refusals, its command;
and the must-show on the real Chinchilla runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bayeslaw.calibrate import calibrate, nominal_gap
from bayeslaw.cli import app
from bayeslaw.demo import DEFAULT_BUDGETS, chinchilla_sweep
from bayeslaw.errors import BayeslawError

QUICK = {"chains": 2, "draws": 500}
runner = CliRunner()


@pytest.fixture(scope="module")
def sweep():
    return chinchilla_sweep("besiroglu2024", budgets=(*DEFAULT_BUDGETS, 3e21), noise=0.01, seed=4)


def test_table_has_one_row_per_split_and_model(sweep):
    table = calibrate(sweep, "chinchilla", ["C>5e20", "C>2e21"], seed=1, **QUICK)
    assert list(table.index) == [("C>5e+20", "plain"), ("C>5e+20", "gp"), ("C>2e+21", "plain"), ("C>2e+21", "gp")]
    assert table.loc[("C>5e+20", "gp"), "n_heldout"] == 18 and table.loc[("C>2e+21", "gp"), "n_heldout"] == 9
    for column in ("coverage 50%", "coverage 80%", "coverage 90%", "width 90%", "lpd per run", "median relative error"):
        assert table[column].notna().all(), column
    assert (table["coverage 50%"] <= table["coverage 80%"]).all()
    assert (table["coverage 80%"] <= table["coverage 90%"]).all()
    assert (nominal_gap(table) >= 0).all()


@pytest.mark.parametrize(("rule", "side"), [("C>1e22", "keeps 72 runs to fit and holds out 0"),
                                            ("C>5e17", "keeps 0 runs to fit and holds out 72")])
def test_a_split_with_too_few_runs_on_either_side_is_refused(sweep, rule, side):
    with pytest.raises(BayeslawError, match=rf"{side}; calibration needs at least 7 on each side \(the model's "
                                            r"parameters: E, log_A_at_pivot, log_B_at_pivot, alpha, beta, sigma, nu\)"):
        calibrate(sweep, "chinchilla", ["C>2e21", rule], **QUICK)


def test_refuses_before_fitting_anything(sweep):
    fourth_largest = float(np.sort(sweep["N"])[-4])  # 3 runs above it
    with pytest.raises(BayeslawError, match="holds out 3; calibration needs at least 7"):
        calibrate(sweep, "chinchilla", ["C>1e20", f"N>{fourth_largest!r}"], chains=1, draws=10)
    with pytest.raises(BayeslawError, match=r"give one, e\.g\. 'gp'"):
        calibrate(sweep, "chinchilla", ["C>1e20"], discrepancy=None)


def test_command_prints_json_and_refuses_in_one_line(sweep, tmp_path):
    path = tmp_path / "runs.csv"
    sweep.to_csv(path, index=False)
    result = runner.invoke(app, ["calibrate", str(path), "--law", "chinchilla", "--holdout", "C>5e20",
                                 "--chains", "2", "--draws", "300", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["held-out calibration"]
    assert [(r["holdout"], r["model"]) for r in rows] == [("C>5e+20", "plain"), ("C>5e+20", "gp")]
    bad = runner.invoke(app, ["calibrate", str(path), "--holdout", "C>1e22"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: holdout 'C>1e+22' keeps 72 runs to fit and holds out 0;")
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_real_chinchilla_intervals_hold_out_of_sample(chinchilla_runs):
    """Must-show: fit on C <= 1e20 and C <= 1e21 (default settings), score the runs above."""
    table = calibrate(chinchilla_runs, "chinchilla", ["C>1e20", "C>1e21"], seed=0)
    print("\n" + table.round(4).to_string())
    assert table.loc[("C>1e+20", "gp"), "n_heldout"] == 104 and table.loc[("C>1e+21", "gp"), "n_heldout"] == 23
    for rule in ("C>1e+20", "C>1e+21"):
        row = table.loc[(rule, "gp")]
        assert 0.80 <= row["coverage 90%"] <= 0.97, row
        assert 0.35 <= row["coverage 50%"] <= 0.65, row
        assert row["median relative error"] <= 0.015, row
        plain = table.loc[(rule, "plain")]
        assert row["lpd per run"] > plain["lpd per run"]  # the discrepancy is the better predictive model
