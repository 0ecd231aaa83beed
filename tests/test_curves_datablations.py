"""Must-show of issue 16 (learning curves) on the datablations C4 runs: predict the final losses of the 8 runs at
8.7B parameters from the 2.8B and 4.2B runs, from their learning curves and from their 16 final checkpoints.

Three fits of the muennighoff law at the package's defaults (4 chains x 500 draws, the second attempt allowed):
about 3.5 minutes natively on the loaded 2 cores (8 through callbacks), in the CI tier, started early.
Measured (seed 0, natively, 28th stop, README "Learning curves"): the curve fit covers 7 of 8 runs with its 90%
intervals, as the finals-only fit does; its median error (1.7%) is not the finals-only fit's (0.41%), and with the
discrepancy on, the independent-checkpoint fit is not overconfident on these runs (lpd 14.3 against 9.8): the two
strict xfails below fail once either starts to hold.
"""

from __future__ import annotations

import warnings

import pytest
from conftest import shared_data_path

import bayeslaw as bl
from bayeslaw.data import load_runs
from bayeslaw.datasets import datablations_curves, datablations_runs
from bayeslaw.holdout import score_heldout, split_runs

pytestmark = [pytest.mark.slow, pytest.mark.early]
LAW = "muennighoff"


@pytest.fixture(scope="module")
def scores() -> dict[str, dict]:
    path = shared_data_path("datablations_losses.csv")
    finals = datablations_runs(path, "c4")[["N", "D", "U", "loss"]]
    every = load_runs(finals, LAW)
    _, heldout = split_runs(every, every.frame["N"].to_numpy() > 5e9)
    curves = datablations_curves(path, "c4")
    curves = curves[curves["N"] < 5e9]
    settings = dict(chains=4, draws=500, seed=0, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {"finals": bl.fit(LAW, finals[finals["N"] < 5e9], **settings),
                "curve": bl.fit(LAW, curves, **settings),
                "independent": bl.fit(LAW, curves, likelihood="curve_independent", **settings)}
    out = {name: score_heldout(result, heldout, seed=0) for name, result in fits.items()}
    for name, result in fits.items():
        out[name]["rows"] = result.info.get("curves", {}).get("checkpoints", len(result.runs))
        out[name]["converged"] = result.converged
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in out[name].items()})
    return out


def test_curve_fit_covers_the_held_out_runs_with_far_more_rows(scores):
    curve = scores["curve"]
    assert curve["n_heldout"] == 8 and curve["rows"] >= 40 * scores["finals"]["rows"]
    assert 6 <= round(8 * curve["coverage_90"]) <= 8
    assert curve["median_relative_error"] < 0.03


@pytest.mark.xfail(strict=True, reason="measured: with the default discrepancy the independent-checkpoint fit "
                   "scores lpd 14.34 against the curve fit's 9.78 (its 50% intervals cover 4 of 8 against 7)")
def test_treating_checkpoints_as_independent_runs_is_overconfident(scores):
    """The same rows without the within-run model, scored on the held-out runs: a worse held-out density."""
    assert scores["independent"]["lpd"] < scores["curve"]["lpd"]


@pytest.mark.xfail(strict=True, reason="measured: median error 1.7% from the curves against 0.41% from the finals")
def test_curve_fit_is_at_least_as_accurate_as_the_finals(scores):
    assert scores["curve"]["median_relative_error"] <= scores["finals"]["median_relative_error"]
