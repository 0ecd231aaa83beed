"""A fit's InferenceData works with ArviZ's own checks: the posterior predictive sits beside the observed data."""

from __future__ import annotations

import numpy as np

import bayeslaw as bl
from bayeslaw.testing import fake_fit


def test_the_posterior_predictive_replicates_the_observed_log_target(tmp_path):
    fit = fake_fit("chinchilla", sizes=5, discrepancy=False)
    idata = fit.idata
    assert {"posterior_predictive", "observed_data", "log_likelihood"} <= set(idata.groups())
    replicate, observed = idata.posterior_predictive["log_loss"], idata.observed_data["log_loss"]
    assert replicate.dims == ("chain", "draw", "run") and replicate.sizes["run"] == len(fit.runs)
    # each replicate is log f(theta_s; x_i) plus the Student-t noise of draw s
    import xarray as xr

    inputs = {k: xr.DataArray(v, dims="run") for k, v in fit.runs.inputs.items()}
    residual = (replicate - np.log(fit.law.function(fit.posterior, inputs, np))).values
    sigma = fit.posterior["sigma"].values[..., None]
    assert 0.55 < np.median(np.abs(residual / sigma)) < 0.85  # |t_10| has median 0.70
    assert np.abs(np.median(replicate.values, axis=(0, 1)) - observed.values).max() < 0.05
    again = fake_fit("chinchilla", sizes=5, discrepancy=False)
    assert np.array_equal(again.idata.posterior_predictive["log_loss"].values, replicate.values)  # seeded
    loaded = bl.load(fit.save(tmp_path / "fit.nc"))
    assert np.array_equal(loaded.idata.posterior_predictive["log_loss"].values, replicate.values)
    import arviz as az

    axes = az.plot_ppc(loaded.idata, num_pp_samples=20)
    assert np.size(axes) == 1


def test_the_prior_group_holds_draws_from_the_priors(tmp_path):
    """prior: independent draws of every sampled parameter from its prior (checked against the prior's own
    quantiles), published parameters computed from them; prior_predictive beside it; both saved and seeded."""
    fit = fake_fit("chinchilla", sizes=5, discrepancy=False)
    idata = fit.idata
    assert {"prior", "prior_predictive"} <= set(idata.groups())
    prior = idata.prior
    assert set(fit.law.published) <= set(prior.data_vars) and prior.sizes["draw"] == 500
    for name, spec in fit.priors.items():
        draws = prior[name].values.ravel()
        lo, hi = spec.interval(0.9)
        inside = np.mean((draws >= lo) & (draws <= hi))
        assert abs(inside - 0.9) < 4 * np.sqrt(0.9 * 0.1 / draws.size), (name, inside)
    # seeded: the same fit draws the same prior
    assert np.array_equal(fake_fit("chinchilla", sizes=5, discrepancy=False).idata.prior["E"].values,
                          prior["E"].values)
    assert idata.prior_predictive["log_loss"].sizes == {"chain": 1, "draw": 500, "run": len(fit.runs)}
    loaded = bl.load(fit.save(tmp_path / "fit.nc"))
    assert np.array_equal(loaded.idata.prior["alpha"].values, prior["alpha"].values)
    import arviz as az

    axes = az.plot_dist_comparison(loaded.idata, var_names=["alpha"])
    assert np.size(axes) >= 3  # prior, posterior and both together


def test_the_discrepancy_hyperparameters_are_an_arviz_group(tmp_path):
    """The GP's weighted hyperparameter sets as variables along ``hyperset``, equal to the stored JSON's, also
    after saving and loading, and made again for a fit saved before the group existed."""
    from pathlib import Path

    fit = fake_fit("chinchilla", sizes=5)
    group = fit.idata.discrepancy
    sets = fit.discrepancy.hyperparameters()
    assert group.sizes["hyperset"] == len(sets) and list(group.coordinate.values) == list(fit.discrepancy.coordinates)
    assert np.allclose(group["weight"], [s[0] for s in sets]) and np.allclose(group["trend"], [s[4] for s in sets])
    assert np.allclose(group["ell"].values, [s[2] for s in sets])
    loaded = bl.load(fit.save(tmp_path / "fit.nc"))
    assert np.array_equal(loaded.idata.discrepancy["eta"].values, group["eta"].values)
    old = bl.load(Path(__file__).parent / "fixtures" / "fit_before_trend.nc")
    assert "discrepancy" in old.idata.groups() and float(old.idata.discrepancy["trend"].max()) == 0.0


def test_every_law_draws_its_prior_whatever_coordinates_it_samples_in():
    """prior_draws for every registered law (some sample other coordinates, e.g. bnsl-1's log r c_i, whose
    first name is also a law parameter): the law's parameters from their priors, published ones computed."""
    from bayeslaw.data import load_runs
    from bayeslaw.fit import complete_posterior
    from bayeslaw.laws import LAWS
    from bayeslaw.model import data_pivots, model_priors, prior_draws
    from bayeslaw.testing import synthetic_runs

    for name, law in LAWS.items():
        pivots = data_pivots(load_runs(synthetic_runs(law, 30, seed=0), law))
        priors = model_priors(law, "student_t")
        prior = prior_draws(law, priors, pivots, None, 50, np.random.default_rng(0))
        assert set(law.params) <= set(prior.data_vars), name
        for param, spec in priors.items():
            lo, hi = spec.interval(0.999999)
            assert ((prior[param] >= lo) & (prior[param] <= hi)).all(), (name, param)
        with np.errstate(all="ignore"):
            assert set(law.published) <= set(complete_posterior(law, prior, pivots).data_vars), name
