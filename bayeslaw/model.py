"""The one place that builds a PyMC model from (law, runs, priors, likelihood).

    log y_i ~ Likelihood(mu_i = log f(theta; x_i), sigma[, nu])

f is the law's pure function on its published parameters theta, which are computed from the
sampled coordinates (log terms at the pivots, exponents, E). Inputs and pivots enter as
``pm.Data`` so one compiled graph serves every data set of the same law and priors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayeslaw.data import Runs
from bayeslaw.laws import Law, pivots_of
from bayeslaw.priors import Prior, Support, resolve_priors

LIKELIHOODS = ("student_t", "normal", "laplace")
NOISE_DOC = {
    "sigma": "scale of the residuals on log(target)",
    "nu": "Student-t degrees of freedom (Gamma(2, 0.1), Juarez & Steel 2010)",
}


def check_likelihood(likelihood: str) -> str:
    from bayeslaw.errors import PriorError

    if likelihood not in LIKELIHOODS:
        raise PriorError(f"unknown likelihood '{likelihood}'; allowed: {', '.join(LIKELIHOODS)}")
    return likelihood


def model_priors(law: Law, likelihood: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Prior]:
    """All priors of the model: the law's parameters, the noise scale and (Student-t) nu."""
    check_likelihood(likelihood)
    defaults = law.default_priors | {"sigma": law.noise_prior}
    supports: dict[str, Support] = law.supports | {"sigma": "positive"}
    if likelihood == "student_t":
        defaults["nu"] = Prior("Gamma", alpha=2.0, beta=0.1)
        supports["nu"] = "positive"
    return resolve_priors(defaults, supports, overrides)


def data_pivots(runs: Runs) -> dict[str, float]:
    """Geometric means of the law's inputs and target: where the constants are centred."""
    law = runs.law
    return pivots_of(runs.frame, (*law.inputs, law.target))


def build_model(runs: Runs, priors: Mapping[str, Prior], likelihood: str = "student_t") -> pm.Model:
    """The PyMC model of ``runs.law`` on ``runs``, with published parameters as Deterministics."""
    law = runs.law
    check_likelihood(likelihood)
    coords = {"run": np.arange(len(runs))}
    with pm.Model(coords=coords) as model:
        inputs = {name: pm.Data(name, values, dims="run") for name, values in runs.inputs.items()}
        pivots = {name: pm.Data(f"pivot_{name}", value) for name, value in data_pivots(runs).items()}
        sampled = {name: priors[name].build(name) for name in law.params}
        published = law.to_published(sampled, pivots, pt)
        for name, value in law.published_with_derived(published, pt).items():
            if name not in sampled:
                pm.Deterministic(name, value)
        mu = pt.log(law.function(published, inputs, pt))
        sigma = priors["sigma"].build("sigma")
        observed = pm.Data(f"log_{law.target}", np.log(runs.target), dims="run")
        name = f"obs_log_{law.target}"
        if likelihood == "student_t":
            pm.StudentT(name, nu=priors["nu"].build("nu"), mu=mu, sigma=sigma, observed=observed, dims="run")
        elif likelihood == "normal":
            pm.Normal(name, mu=mu, sigma=sigma, observed=observed, dims="run")
        else:
            pm.Laplace(name, mu=mu, b=sigma, observed=observed, dims="run")
    return model


def log_likelihood(law: Law, likelihood: str, posterior, inputs: Mapping[str, Any], log_target, shift=None):
    """Pointwise log density of log(target) per draw and run, on an xarray posterior (no compile).

    ``shift`` (dims chain, draw, run) is added to mu: a draw of the model discrepancy at new runs.
    """
    import xarray as xr
    from scipy import stats

    mu = np.log(law.function(posterior, inputs, np))
    if shift is not None:
        mu = mu + shift
    extra = [posterior["nu"]] if likelihood == "student_t" else []
    y, mu, sigma, *extra = xr.broadcast(log_target, mu, posterior["sigma"], *extra)
    if likelihood == "student_t":
        values = stats.t.logpdf(y.values, df=extra[0].values, loc=mu.values, scale=sigma.values)
    elif likelihood == "normal":
        values = stats.norm.logpdf(y.values, loc=mu.values, scale=sigma.values)
    else:
        values = stats.laplace.logpdf(y.values, loc=mu.values, scale=sigma.values)
    return y.copy(data=values).transpose("chain", "draw", ...)
