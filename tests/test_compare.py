"""Comparing laws: LOO and leave-future-out rank the true law first; refusals; SMC evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_fit import synthetic_runs

import bayeslaw as bl
from bayeslaw.compare import bayes_factors, compare, marginal_likelihood
from bayeslaw.data import load_runs
from bayeslaw.errors import BayeslawError
from bayeslaw.holdout import Holdout, leave_future_out, score_heldout
from bayeslaw.laws import LAWS

QUICK = {"chains": 2, "draws": 500, "tune": 500}
RIVALS = ["chinchilla", "kaplan-ND", "power-C"]


@pytest.fixture(scope="module")
def chinchilla_data() -> pd.DataFrame:
    """Runs drawn from the Chinchilla law (Besiroglu constants) with 2% log-normal noise."""
    law = LAWS["chinchilla"]
    frame = synthetic_runs(law, 120, noise=0.02, seed=21)
    truth = law.presets["besiroglu2024"].values
    frame["loss"] = law.evaluate(truth, {"N": frame["N"].to_numpy(), "D": frame["D"].to_numpy()}) * np.exp(
        0.02 * np.random.default_rng(5).standard_normal(len(frame)))
    return frame


def test_loo_ranks_the_true_law_first(chinchilla_data):
    fits = {name: bl.fit(name, chinchilla_data, seed=3, **QUICK) for name in RIVALS}
    result = compare(fits)
    table = result.table
    assert table.index[0] == "chinchilla"
    assert table["weight"].iloc[0] > 0.9
    runner_up = table.iloc[1]
    assert runner_up["elpd diff"] > 4 * runner_up["diff se"]  # decisively, not by noise
    assert set(result.influential) == set(RIVALS)


def test_leave_future_out_ranks_the_true_law_first(chinchilla_data):
    c = 6 * chinchilla_data["N"] * chinchilla_data["D"]
    threshold = float(np.quantile(c, 0.8))
    table = leave_future_out(RIVALS, chinchilla_data, f"C>{threshold}", seed=1, **QUICK)
    assert table.index[0] == "chinchilla"
    assert table.loc["chinchilla", "n_heldout"] == int((c > threshold).sum())
    assert 0.6 <= table.loc["chinchilla", "coverage 90%"] <= 1.0  # the true law, noise as fitted
    assert table.loc["chinchilla", "median relative error"] < 0.03


def test_fits_of_different_runs_are_refused(chinchilla_data):
    a = bl.fit("power-N", chinchilla_data, seed=1, **QUICK)
    b = bl.fit("power-N", chinchilla_data.iloc[:-3], seed=1, **QUICK)
    with pytest.raises(BayeslawError, match="were made on different runs"):
        compare({"all": a, "fewer": b})
    with pytest.raises(BayeslawError, match="at least two fits"):
        compare({"one": a})


def test_influential_runs_are_named():
    law = LAWS["power-N"]
    frame = synthetic_runs(law, 40, noise=0.01, seed=2)
    frame.loc[7, "loss"] *= 1.6  # a gross outlier, under a normal likelihood
    fits = {lik: bl.fit(law, frame, likelihood=lik, seed=1, **QUICK) for lik in ("normal", "student_t")}
    with pytest.warns(UserWarning, match=r"runs 7 .*Pareto k > 0.7"):
        result = compare(fits)
    assert result.influential["normal"] == [7]
    assert result.table.index[0] == "student_t"  # the heavy-tailed likelihood explains the outlier


@pytest.mark.parametrize(("spec", "message"), [("C=>1e21", "cannot read holdout"), ("loss>>2", "cannot read"),
                                               ("Q>1e21", "holdout column 'Q'"), ("C>1e40", "holds out 0")])
def test_bad_holdouts_are_refused(spec, message, chinchilla_data):
    runs = load_runs(chinchilla_data, "chinchilla")
    with pytest.raises(BayeslawError, match=message):
        Holdout.parse(spec).split(runs, min_runs=7)


def test_a_holdout_that_leaves_too_few_runs_to_fit_is_refused(chinchilla_data):
    runs = load_runs(chinchilla_data, "chinchilla")
    c = 6 * runs.frame["N"] * runs.frame["D"]
    with pytest.raises(BayeslawError, match=r"keeps 3 runs .* at least 7 kept runs"):
        Holdout("C", ">", float(np.sort(c)[2])).split(runs, min_runs=7)


def test_heldout_scoring_matches_a_direct_computation(chinchilla_data):
    runs = load_runs(chinchilla_data, "power-N")
    kept, held = Holdout.parse("N>3e10").split(runs, min_runs=5)
    result = bl.fit("power-N", kept, seed=2, likelihood="normal", **QUICK)
    scores = score_heldout(result, held, levels=(0.9,))
    post = result.posterior
    mu = np.log(post["E"].values[..., None] + post["A"].values[..., None]
                * held.frame["N"].to_numpy() ** -post["alpha"].values[..., None])
    sigma = post["sigma"].values[..., None]
    logp = -0.5 * ((np.log(held.target) - mu) / sigma) ** 2 - np.log(sigma * np.sqrt(2 * np.pi))
    flat = logp.reshape(-1, len(held))
    expected = np.sum(np.log(np.mean(np.exp(flat - flat.max(0)), axis=0)) + flat.max(0))
    assert scores["lpd"] == pytest.approx(expected, rel=1e-9)
    assert scores["n_heldout"] == len(held)


def test_real_chinchilla_leave_future_out_is_reported(chinchilla_runs):
    """Fit on C <= 1e21, score the 23 larger runs; the figures go in the closing note (not tuned to them)."""
    table = leave_future_out(["chinchilla"], chinchilla_runs, "C>1e21", seed=0)
    row = table.loc["chinchilla"]
    assert row["n_fit"] == 217 and row["n_heldout"] == 23
    assert row["median relative error"] < 0.015
    assert 0 <= row["coverage 50%"] <= row["coverage 80%"] <= row["coverage 90%"] <= 1
    print(f"\nleave-future-out, Chinchilla law, C>1e21: {row.to_dict()}")


@pytest.mark.slow
def test_marginal_likelihood_prefers_the_true_law(chinchilla_data):
    data = chinchilla_data.iloc[:60]
    results = [marginal_likelihood(name, data, repeats=2, draws=1000, seed=4) for name in ("chinchilla", "power-N")]
    table = bayes_factors(results)
    assert table.index[0] == "chinchilla"
    assert all(len(r["estimates"]) == 4 and r["sd"] >= 0 for r in results)
    loser = table.loc["power-N"]
    assert loser["log BF vs best"] < -3 * max(loser["log BF sd"], 1.0)


def test_smc_estimates_are_read_from_both_layouts():
    from bayeslaw.compare import _final_estimates

    per_chain_arrays = np.empty((1, 2), dtype=object)
    per_chain_arrays[0, 0], per_chain_arrays[0, 1] = np.array([1.0, 5.0]), np.array([2.0, 3.0, 6.0])
    assert _final_estimates(per_chain_arrays, 2) == [5.0, 6.0]
    padded = np.array([[1.0, 4.0, np.nan], [2.0, 3.0, 7.0]], dtype=object)
    assert _final_estimates(padded, 2) == [4.0, 7.0]
