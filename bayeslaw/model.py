"""The one place that builds a PyMC model from (law, runs, priors, likelihood).

    log y_i ~ Likelihood(mu_i = log f(theta; x_i), sigma[, nu])     (``bayeslaw.likelihoods``)

f is the law's pure function on its published parameters theta, which are computed from the
sampled coordinates (log terms at the pivots, exponents, E). Inputs and pivots enter as
``pm.Data`` so one compiled graph serves every data set of the same law and priors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from bayeslaw._powers import powers_by_logs
from bayeslaw.curves import CURVE_LIKELIHOODS, Curves, observe_curves
from bayeslaw.data import Runs
from bayeslaw.errors import BayeslawError
from bayeslaw.fixed import Fixing
from bayeslaw.laws import Law, pivots_of
from bayeslaw.laws.base import Coordinates
from bayeslaw.likelihoods import LIKELIHOODS, REGISTRY, get_likelihood  # noqa: F401 (LIKELIHOODS: re-exported)
from bayeslaw.priors import Prior, Support, log_abs_jacobian, resolve_priors

if TYPE_CHECKING:  # PyMC is imported where a model is built: 1.5 s that commands which do not fit need not pay
    import pymc as pm

NOISE_DOC = {name: text for family in REGISTRY.values() for name, text in family.doc.items()}


def check_likelihood(likelihood: str) -> str:
    """``likelihood`` when the registry has it; a PriorError naming the allowed ones otherwise."""
    return get_likelihood(likelihood).name


def model_priors(law: Law, likelihood: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Prior]:
    """All priors of the model: the law's parameters, then the likelihood's noise parameters (sigma, nu)."""
    family = get_likelihood(likelihood)
    defaults = law.default_priors | family.default_priors(law)
    supports: dict[str, Support] = law.supports | family.supports()
    return resolve_priors(defaults, supports, overrides)


def model_parameters(priors: Mapping[str, Any]) -> list[str]:
    """The sampled parameters of a model (law and noise): its priors that are not Fixed."""
    return [name for name, prior in priors.items() if getattr(prior, "dist", None) != "Fixed"]


def data_pivots(runs: Runs) -> dict[str, float]:
    """Geometric means of the law's inputs and target: where the constants are centred."""
    law = runs.law
    return pivots_of(runs.frame, (*law.inputs, law.target))


def sampling_coordinates(law: Law, priors: Mapping[str, Prior], fixing: Fixing | None = None) -> Coordinates | None:
    """The law's sampling coordinates, when it has them and every prior has a density on its whole support.

    A Fixed or bounded prior (Uniform, TruncatedNormal) could be left by the coordinates' map, and a tied
    parameter (``bayeslaw.fixed``) is not free, so the law's parameters are then sampled directly.
    """
    if law.coordinates is None or (fixing is not None and fixing.ties):
        return None
    if not all(priors[name].covers(param.support) for name, param in law.params.items()):
        return None
    return law.coordinates


def _parameters(law: Law, priors: Mapping[str, Prior], pivots: Mapping[str, Any],
                coordinates: Coordinates | None, fixing: Fixing) -> dict[str, Any]:
    """The law's parameters inside the model: random variables, or functions of the sampling coordinates.

    With coordinates u, the density is p(theta(u)) prod_k |d theta_k / d v_k| (|det dv/du| = 1 by the
    coordinates' contract; v_k: theta_k's log, logit or itself), added as a Potential.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if coordinates is None:
        built = {name: priors[name].build(name) for name in law.params if name not in fixing.ties}
        return fixing.apply(built, pivots, pt)
    start = coordinates.initial({k: float(v.get_value()) for k, v in pivots.items()})
    u = {name: pm.Flat(name, initval=start[name]) for name in coordinates.names}
    theta = coordinates.to_params(u, pivots, pt)
    density = sum(priors[name].logp(theta[name]) + log_abs_jacobian(theta[name], param.support, pt)
                  for name, param in law.params.items())
    pm.Potential("prior_density", density)
    return theta


def parameters_from_draws(law: Law, priors: Mapping[str, Prior], posterior, pivots: Mapping[str, float],
                          fixing: Fixing | None = None):
    """The sampler's draws (an xarray Dataset) with the law's parameters in place of its sampling coordinates,
    fixed parameters as constants and tied ones computed (``bayeslaw.fixed``); the law's parameters first."""
    coordinates = sampling_coordinates(law, priors, fixing)
    if coordinates is not None and coordinates.names[0] in posterior:
        theta = coordinates.to_params({name: posterior[name] for name in coordinates.names}, pivots, np)
        posterior = posterior.drop_vars(list(coordinates.names)).assign({name: theta[name] for name in law.params})
    return _fixed_and_tied(law, priors, posterior, pivots, fixing)


def _fixed_and_tied(law: Law, priors: Mapping[str, Prior], posterior, pivots: Mapping[str, float],
                    fixing: Fixing | None):
    """Draws of the law's parameters with fixed ones as constants and tied ones computed; the law's first."""
    template = next(iter(posterior.data_vars.values()))
    posterior = posterior.assign({name: xr.full_like(template, prior.kwargs["value"], dtype=float)
                                  for name, prior in priors.items() if prior.dist == "Fixed" and name not in posterior})
    if fixing is not None and fixing.ties:
        tied = fixing.apply(posterior, pivots, np)
        posterior = posterior.assign({name: tied[name] for name in fixing.ties})
    return posterior[[*law.params, *(name for name in posterior.data_vars if name not in law.params)]]


def prior_draws(law: Law, priors: Mapping[str, Prior], pivots: Mapping[str, float], fixing: Fixing | None,
                draws: int, rng: np.random.Generator) -> xr.Dataset:
    """``draws`` independent draws (one chain) of the law's parameters and the noise from their priors, as the
    sampler's posterior would hold them: fixed values as constants and tied parameters computed."""
    values = {name: xr.DataArray(prior.sample(rng, (1, draws)), dims=("chain", "draw"))
              for name, prior in priors.items()}
    # the priors are on the law's parameters themselves, whatever coordinates NUTS samples in
    return _fixed_and_tied(law, priors, xr.Dataset(values).assign_coords(chain=[0], draw=np.arange(draws)),
                           pivots, fixing)


def build_model(runs: Runs, priors: Mapping[str, Prior], likelihood: str = "student_t",
                reparameterise: bool = True, fixing: Fixing | None = None, curves: Curves | None = None) -> pm.Model:
    """The PyMC model of ``runs.law`` on ``runs``, with published parameters as Deterministics.

    With ``reparameterise`` (default) NUTS samples the law's :class:`Coordinates` where it has them;
    ``False`` samples the parameters themselves (a model that can draw from its prior, e.g. for SMC).
    ``fixing`` ties parameters to fixed published values (``bayeslaw.fixed``). With ``curves``
    (``bayeslaw.curves``; ``runs`` are then its final checkpoints) the law is observed at every kept
    checkpoint under a curve likelihood.
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = runs.law
    family = get_likelihood(likelihood)
    fixing = fixing or Fixing()
    observed_runs, dim = (runs, "run") if curves is None else (curves.rows, "checkpoint")
    if curves is None and family.name in CURVE_LIKELIHOODS:
        raise BayeslawError(f"likelihood '{family.name}' is for learning curves: give the run id column "
                            "(run_column=..., CLI --run-column) so checkpoints are grouped into runs")
    if curves is not None and family.name not in CURVE_LIKELIHOODS:
        raise BayeslawError(f"learning curves need a curve likelihood ({', '.join(CURVE_LIKELIHOODS)}), "
                            f"not '{family.name}'")
    coordinates = sampling_coordinates(law, priors, fixing) if reparameterise else None
    with pm.Model(coords={dim: np.arange(len(observed_runs))}) as model:
        inputs = {name: pm.Data(name, values, dims=dim) for name, values in observed_runs.inputs.items()}
        pivots = {name: pm.Data(f"pivot_{name}", value) for name, value in data_pivots(runs).items()}
        sampled = _parameters(law, priors, pivots, coordinates, fixing)
        published = law.to_published(sampled, pivots, pt)
        for name, value in law.published_with_derived(published, pt).items():
            if name not in sampled:
                pm.Deterministic(name, value)
        mu = powers_by_logs(pt.log(law.function(published, inputs, pt)), inputs, observed_runs.inputs, dim)
        observed = pm.Data(f"log_{law.target}", np.log(observed_runs.target), dims=dim)
        if curves is None:
            family.observe(f"obs_log_{law.target}", mu, priors, observed, dims="run")
        else:
            noise = {param: priors[param].build(param) for param in family.params}
            observe_curves(family.name, mu, noise, observed, curves)
    return model


def predictive_draws(law: Law, likelihood: str, posterior, inputs: Mapping[str, Any], rng: np.random.Generator):
    """One replicate of log(target) per draw and run: log f(theta_s; x_i) + eps, eps from the likelihood at the
    draw's noise parameters (the posterior predictive of the fitted model, without the discrepancy)."""
    family = get_likelihood(likelihood)
    mu = np.log(law.function(posterior, inputs, np)).transpose("chain", "draw", ...)
    noise = {name: posterior[name].values.reshape(posterior[name].shape + (1,) * (mu.ndim - 2))
             for name in family.params}
    return mu.copy(data=mu.values + family.draw(rng, noise, mu.shape))


def log_likelihood(law: Law, likelihood: str, posterior, inputs: Mapping[str, Any], log_target, shift=None):
    """Pointwise log density of log(target) per draw and run, on an xarray posterior (no compile).

    ``shift`` (dims chain, draw, run) is added to mu: a draw of the model discrepancy at new runs.
    """
    family = get_likelihood(likelihood)
    mu = np.log(law.function(posterior, inputs, np))
    if shift is not None:
        mu = mu + shift
    y, mu, *noise = xr.broadcast(log_target, mu, *(posterior[name] for name in family.params))
    values = family.logpdf(y.values, {name: v.values for name, v in zip(family.params, noise, strict=True)},
                           loc=mu.values)
    return y.copy(data=values).transpose("chain", "draw", ...)
