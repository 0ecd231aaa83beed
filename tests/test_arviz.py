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
