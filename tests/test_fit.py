"""Fits: parameter recovery for every law, the real Chinchilla runs, diagnostics, reproducibility."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
from conftest import SMALL

import bayeslaw as bl
from bayeslaw.errors import BayeslawError, ConvergenceWarning
from bayeslaw.laws import LAWS
from bayeslaw.testing import synthetic_runs  # also imported from here by other test modules

# ridges such as E vs alpha for small exponents need the full default tuning
RECOVERY = {"chains": 2, "draws": 1000, "tune": 1000, "retry": False}


def assert_small_run_converged(result):
    """Convergence bounds for short test runs (R-hat noise at a few hundred draws is about 0.01)."""
    diag = result.diagnostics
    assert diag.max_rhat <= 1.05 and diag.min_ess_bulk >= 100 and diag.divergences == 0, str(diag)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LAWS))
def test_recovers_known_parameters(name):
    """Synthetic data from the law's published constants: every published parameter's 94% HDI covers it."""
    law = LAWS[name]
    n_runs = 30 * len(law.inputs) + 10 * len(law.params)
    runs = synthetic_runs(law, n_runs, noise=0.02, seed=7)
    result = bl.fit(law, runs, seed=12, **RECOVERY)
    assert_small_run_converged(result)
    truth = next(iter(law.presets.values())).values
    hdi = az.hdi(result.posterior[list(law.published)], hdi_prob=0.94)
    for param in law.published:
        lo, hi = hdi[param].values
        assert lo <= truth[param] <= hi, f"{param}: truth {truth[param]} outside 94% HDI [{lo}, {hi}]"


@pytest.mark.slow
def test_real_chinchilla_runs_match_the_replication(chinchilla_runs, shared_fit):
    """Besiroglu et al. 2024 protocol: posterior medians inside the replication's 95% bootstrap intervals (the
    default fit, seed 7, shared with test_decide's real-run decisions)."""
    result = shared_fit("chinchilla", chinchilla_runs, seed=7)
    assert result.runs.derived == {"D": "C / (6 N)"}
    assert len(result.runs) == 240
    median = result.posterior[["E", "alpha", "beta", "a"]].median()
    assert 1.769 <= float(median["E"]) <= 1.871
    assert 0.317 <= float(median["alpha"]) <= 0.373
    assert 0.331 <= float(median["beta"]) <= 0.415
    assert 0.47 <= float(median["a"]) <= 0.56
    assert result.diagnostics.max_rhat <= 1.01
    assert result.diagnostics.divergences == 0
    assert result.diagnostics.min_ess_bulk >= 1000


@pytest.fixture(scope="module")
def small_fit():
    runs = synthetic_runs(LAWS["chinchilla"], 60, noise=0.01, seed=3)
    return bl.fit("chinchilla", runs, seed=5, **SMALL)


def test_inference_data_groups_and_dims(small_fit):
    idata = small_fit.idata
    for group in ("posterior", "log_likelihood", "observed_data", "constant_data", "sample_stats"):
        assert group in idata.groups()
    assert idata.log_likelihood["log_loss"].dims == ("chain", "draw", "run")
    assert idata.log_likelihood["log_loss"].shape == (2, 300, 60)
    assert idata.observed_data["log_loss"].dims == ("run",)
    assert idata.constant_data["N"].dims == ("run",)
    for name in ("E", "A", "B", "alpha", "beta", "a", "b", "G", "sigma", "nu"):
        assert small_fit.posterior[name].dims == ("chain", "draw")
    post = small_fit.posterior
    np.testing.assert_allclose(post["a"], post["beta"] / (post["alpha"] + post["beta"]))
    # the pointwise log likelihood is what PyMC computes for the same model
    assert np.isfinite(idata.log_likelihood["log_loss"]).all()
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)


def test_log_likelihood_matches_pymc(small_fit):
    from bayeslaw.model import build_model

    # the model on the law's own parameters (the fit sampled its coordinates and stored the parameters)
    model = build_model(small_fit.runs, small_fit.priors, small_fit.likelihood, reparameterise=False)
    subset = small_fit.idata.sel(draw=slice(0, 5))
    reference = __import__("pymc").compute_log_likelihood(subset, model=model, extend_inferencedata=False,
                                                          progressbar=False)
    np.testing.assert_allclose(reference["obs_log_loss"].values, subset.log_likelihood["log_loss"].values,
                               rtol=1e-9)


def test_same_seed_gives_same_draws():
    runs = synthetic_runs(LAWS["power-N"], 40, noise=0.02, seed=1)
    first = bl.fit("power-N", runs, seed=42, **SMALL)
    second = bl.fit("power-N", runs, seed=42, **SMALL)
    third = bl.fit("power-N", runs, seed=43, **SMALL)
    np.testing.assert_array_equal(first.posterior["alpha"].values, second.posterior["alpha"].values)
    assert not np.array_equal(first.posterior["alpha"].values, third.posterior["alpha"].values)


@pytest.mark.parametrize("likelihood", ["normal", "laplace"])
def test_other_likelihoods_recover_the_exponents(likelihood):
    law = LAWS["chinchilla"]
    runs = synthetic_runs(law, 80, noise=0.01, seed=9)
    result = bl.fit(law, runs, likelihood=likelihood, seed=1, **SMALL)
    assert "nu" not in result.posterior
    truth = law.presets["hoffmann2022"].values
    hdi = az.hdi(result.posterior[["alpha", "beta", "E"]], hdi_prob=0.94)
    for param in ("alpha", "beta", "E"):
        lo, hi = hdi[param].values
        assert lo <= truth[param] <= hi


def test_pymc_sampler_fallback_agrees_with_nutpie():
    runs = synthetic_runs(LAWS["power-D"], 40, noise=0.02, seed=4)
    nut = bl.fit("power-D", runs, seed=3, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = bl.fit("power-D", runs, seed=3, sampler="pymc", chains=2, draws=500, tune=500)
    assert ref.info["sampler"] == "pymc"
    for param in ("E", "alpha"):
        a, b = nut.posterior[param], ref.posterior[param]
        assert abs(float(a.median() - b.median())) < 0.5 * float(a.std() + b.std())


def test_user_prior_overrides_are_used():
    runs = synthetic_runs(LAWS["power-N"], 40, noise=0.02, seed=1)
    tight = bl.fit("power-N", runs, priors={"alpha": "TruncatedNormal(mu=0.5, sigma=0.001, lower=0, upper=2)"},
                   seed=1, **SMALL)
    assert tight.priors["alpha"].dist == "TruncatedNormal"
    assert float(tight.posterior["alpha"].std()) < 0.002
    assert abs(float(tight.posterior["alpha"].mean()) - 0.5) < 0.005


def test_a_fixed_prior_freezes_the_parameter():
    law = LAWS["power-N"]
    runs = synthetic_runs(law, 40, noise=0.02, seed=1)
    result = bl.fit(law, runs, priors={"alpha": {"dist": "Fixed", "value": 0.34}}, seed=1, **SMALL)
    assert (result.posterior["alpha"] == 0.34).all()
    truth = law.presets["chinchilla2022-infinite-data"].values
    hdi = az.hdi(result.posterior[["E", "A"]], hdi_prob=0.94)
    for param in ("E", "A"):
        lo, hi = hdi[param].values
        assert lo <= truth[param] <= hi
    assert float(result.posterior["A"].std()) / truth["A"] < 0.05  # alpha known: A is pinned down


def test_unconverged_fit_says_so_with_a_remedy():
    runs = synthetic_runs(LAWS["chinchilla"], 40, noise=0.01, seed=2)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        result = bl.fit("chinchilla", runs, chains=2, draws=15, tune=3, seed=1)
    assert not result.converged
    assert any("increase draws" in p or "run longer" in p for p in result.diagnostics.problems)
    assert "NOT CONVERGED" in str(result.diagnostics)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"sampler": "stan"}, "unknown sampler 'stan'"), ({"draws": 0}, "draws must be"),
     ({"target_accept": 1.5}, "target_accept"), ({"likelihood": "cauchy"}, "unknown likelihood 'cauchy'"),
     ({"priors": {"gamma": "Normal(mu=0, sigma=1)"}}, "unknown parameter 'gamma'")],
)
def test_bad_fit_arguments_are_refused_before_sampling(kwargs, message):
    runs = synthetic_runs(LAWS["power-N"], 20, noise=0.02, seed=1)
    with pytest.raises(BayeslawError, match=message):
        bl.fit("power-N", runs, **kwargs)


def test_a_slowly_mixing_law_samples_longer_and_keeps_draws(monkeypatch):
    """A law with ``thin`` k samples k times the draws and keeps every k-th; its second attempt is at least
    twice as long as its first (RETRY_LENGTH for the others)."""
    import dataclasses

    from bayeslaw.fit import RETRY_LENGTH, second_attempt
    from bayeslaw.laws import get_law

    assert get_law("abnar").thin == 2 and get_law("quokka-dc").thin == 2 and get_law("chinchilla").thin == 1
    law = dataclasses.replace(get_law("power-N"), thin=3)
    result = bl.fit(law, synthetic_runs(get_law("power-N"), 20, seed=1), seed=0, chains=2, draws=50, tune=50,
                    retry=False, discrepancy=None)
    assert result.posterior.sizes["draw"] == 50 and result.info["attempts"][0]["thin"] == 3
    assert second_attempt({"tune": 500, "draws": 1000, "thin": 1, "target_accept": 0.9}, None)["thin"] == RETRY_LENGTH
    assert second_attempt({"tune": 500, "draws": 1000, "thin": 3, "target_accept": 0.9}, None)["thin"] == 6


def test_progress_is_on_by_default_in_a_notebook_only(monkeypatch):
    import sys
    import types

    from bayeslaw.fit import in_notebook

    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert not in_notebook()
    kernel = type("ZMQInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: kernel))
    assert in_notebook()
    terminal = type("TerminalInteractiveShell", (), {})()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: terminal))
    assert not in_notebook()


def test_nutpie_without_a_warm_up_is_refused_by_name():
    """nutpie's adaptation windows need a step: tune=0 was a Rust panic ("Poisond sampler state mutex")."""
    runs = synthetic_runs(LAWS["chinchilla"], 30, noise=0.01, seed=4)
    with pytest.raises(BayeslawError, match="tune must be at least 1 with the nutpie sampler"):
        bl.fit("chinchilla", runs, tune=0)
