"""PSIS-LOO of a fit, from its stored pointwise log-likelihood or, when the table was too large to store
it, computed on demand in blocks of runs.

PSIS-LOO (Vehtari, Gelman & Gabry 2017, "Practical Bayesian model evaluation using leave-one-out
cross-validation and WAIC", Stat. Comput. 27:1413): elpd_i = log(sum_s w_is p(y_i | theta_s) / sum_s w_is)
with Pareto-smoothed importance weights w_is from 1 / p(y_i | theta_s). Each run's weights use its own
column of log-likelihood values only, so runs can be scored a block at a time: memory stays at one block of
draws x runs (``fit.BLOCK_VALUES`` values), and the result equals ArviZ's on the whole matrix.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from bayeslaw._draws import n_samples


def relative_efficiency(posterior: xr.Dataset) -> float:
    """ArviZ's default r_eff for PSIS: the mean over all the posterior's variables of ESS (mean) / draws."""
    import arviz as az

    if posterior.sizes["chain"] == 1:
        return 1.0
    ess = az.ess(posterior, method="mean")
    return float(np.hstack([np.ravel(ess[v].values) for v in ess.data_vars]).mean() / n_samples(posterior))


def loo(fit: Any) -> Any:
    """PSIS-LOO of ``fit`` as ArviZ's ``ELPDData`` (pointwise: ``loo_i`` and ``pareto_k`` per run)."""
    import arviz as az

    if "log_likelihood" in fit.idata.groups():
        return az.loo(fit.idata, pointwise=True)
    return _blockwise_loo(fit, az)


def _blockwise_loo(fit: Any, az: Any) -> Any:
    from scipy.special import logsumexp

    from bayeslaw.fit import run_blocks
    from bayeslaw.model import log_likelihood

    law, posterior = fit.law, fit.posterior
    reff = relative_efficiency(posterior)
    n_runs, samples = len(fit.runs), n_samples(posterior)
    log_target = np.log(fit.runs.target)
    loo_i, pareto_k, lppd_i, template = [], [], [], None
    for block in run_blocks(n_runs, samples):
        inputs = {k: xr.DataArray(np.asarray(v)[block], dims="run") for k, v in fit.runs.inputs.items()}
        values = log_likelihood(law, fit.likelihood, posterior, inputs, xr.DataArray(log_target[block], dims="run"))
        part = az.InferenceData(log_likelihood=xr.Dataset({f"log_{law.target}": values}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported by the caller, by run
            result = az.loo(part, pointwise=True, reff=reff)
        template = template if template is not None else result
        loo_i.append(np.asarray(result.loo_i))
        pareto_k.append(np.asarray(result.pareto_k))
        flat = values.transpose("chain", "draw", "run").values.reshape(samples, -1)
        lppd_i.append(logsumexp(flat, axis=0) - np.log(samples))
    loo_i, pareto_k, lppd = np.concatenate(loo_i), np.concatenate(pareto_k), np.concatenate(lppd_i).sum()
    result = template.copy()
    run = {"run": np.arange(n_runs)}
    result["elpd_loo"] = float(loo_i.sum())
    result["se"] = float(np.sqrt(n_runs * np.var(loo_i)))
    result["p_loo"] = float(lppd - loo_i.sum())
    result["n_data_points"] = n_runs
    result["loo_i"] = xr.DataArray(loo_i, dims="run", coords=run)
    result["pareto_k"] = xr.DataArray(pareto_k, dims="run", coords=run)
    result["warning"] = bool((pareto_k > result["good_k"]).any())
    return result
