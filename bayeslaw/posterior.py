"""Draws of a law's published parameters: what predictions and decisions are computed from.

A :class:`LawPosterior` comes from a :class:`~bayeslaw.fit.Fit` (``as_posterior(fit)``) or from
published constants (``from_constants(law, preset)``: one draw, no observation noise). Nothing here
builds a PyMC model: the law's numpy function is evaluated on the draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import xarray as xr

from bayeslaw._draws import flat, n_samples, unflat
from bayeslaw.data import derive_inputs
from bayeslaw.discrepancy import Conditional, Discrepancy
from bayeslaw.errors import BayeslawError
from bayeslaw.laws import Law, get_law
from bayeslaw.likelihoods import NOISE_PARAMETERS, get_likelihood


@dataclass(frozen=True)
class LawPosterior:
    """Published parameters (and noise parameters, when known) with dims (chain, draw)."""

    law: Law
    draws: xr.Dataset
    likelihood: str | None = None
    fitted_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    source: str = ""
    discrepancy: Discrepancy | None = None
    fitted_runs: Mapping[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def n_draws(self) -> int:
        return n_samples(self.draws)

    def published_draws(self) -> dict[str, xr.DataArray]:
        """Draws of the law's published parameters (the paper's E, A, alpha, ...), not its sampling
        coordinates (``Law.params``)."""
        return {name: self.draws[name] for name in self.law.published}

    def params(self) -> dict[str, xr.DataArray]:
        """Former name of :meth:`published_draws` (kept for one release: ``Law.params`` are the sampled ones)."""
        return self.published_draws()

    def point_estimate(self) -> dict[str, float]:
        """Posterior mean of each published parameter: what a point fit would plan with."""
        return {name: float(self.draws[name].mean()) for name in self.law.published}

    def run_noise(self) -> tuple[str | None, dict[str, np.ndarray]]:
        """A new run's noise on log(target): its family and parameters per draw (arrays shaped (chain, draw)).

        The law's own likelihood (sigma, nu); with a discrepancy whose noise is "nugget", "contaminated": a
        normal with each draw's nugget s ("sigma") or, with probability "rate", an outlier from the law's
        likelihood ("outlier", "outlier_sigma", "outlier_nu"); (None, {}) when the noise is unknown."""
        shape = (self.draws.sizes["chain"], self.draws.sizes["draw"])
        law = {k: self.draws[k].values for k in NOISE_PARAMETERS if k in self.draws}
        if self.conditional is not None and self.discrepancy.noise == "nugget" and self.likelihood is not None:
            return "contaminated", {"sigma": unflat(self.conditional.nuggets, shape[0]),
                                    "rate": np.full(shape, self.discrepancy.outlier_rate),
                                    "outlier": self.likelihood, **{f"outlier_{k}": v for k, v in law.items()}}
        if self.likelihood is None:
            return None, {}
        return self.likelihood, law

    def log_noise(self, seed: int | None = 0, runs: int | None = None) -> xr.DataArray:
        """Observation-noise draws on log(target) (``run_noise``): one per posterior draw, or one per draw and
        run when ``runs`` is given (dims chain, draw[, run]); zero when the noise model is unknown."""
        template = self.draws[self.law.published[0]]
        if runs is not None:
            template = template.expand_dims(run=np.arange(runs), axis=-1)
        family, params = self.run_noise()
        if family is None:
            return xr.zeros_like(template, dtype=float)
        rng = np.random.default_rng(seed)
        extra = (1,) if runs is not None else ()
        shaped = {k: v.reshape(v.shape + extra) for k, v in params.items() if isinstance(v, np.ndarray)}
        if family == "contaminated":
            regular = _NORMAL.draw(rng, shaped, template.shape)
            outlier = get_likelihood(params["outlier"]).draw(rng, _outlier(shaped), template.shape)
            noise = np.where(rng.uniform(size=template.shape) < shaped["rate"], outlier, regular)
        else:
            noise = get_likelihood(family).draw(rng, shaped, template.shape)
        return template.copy(data=noise)

    def log_noise_density(self, residual: np.ndarray) -> np.ndarray:
        """log density of a new run's noise at ``residual`` (log target minus the mean), per draw: ``residual``
        broadcasts against (chain, draw, ...) with trailing dims."""
        family, params = self.run_noise()
        if family is None:
            raise BayeslawError("this posterior has no noise model (published constants)")
        extra = residual.ndim - 2
        shaped = {k: v.reshape(v.shape + (1,) * extra) for k, v in params.items() if isinstance(v, np.ndarray)}
        if family == "contaminated":
            regular = _NORMAL.logpdf(residual, shaped)
            outlier = get_likelihood(params["outlier"]).logpdf(residual, _outlier(shaped))
            with np.errstate(divide="ignore"):  # rate 0: fits saved before outliers were counted
                return np.logaddexp(np.log1p(-shaped["rate"]) + regular, np.log(shaped["rate"]) + outlier)
        return get_likelihood(family).logpdf(residual, shaped)

    def uncertainty(self, noise: bool = True) -> dict[str, str]:
        """What a prediction or decision from this posterior accounts for: the law's parameters, a new run's
        noise (when ``noise``) and the model discrepancy, each named with its summary or 'none'."""
        n = self.n_draws
        law = f"{n} draws ({self.source})" if n > 1 else f"none: one draw ({self.source})"
        out = {"law posterior": law}
        if noise:
            family, params = self.run_noise()
            if family is None:
                out["run noise"] = "none (no noise model)"
            else:
                scale = float(np.median(params["sigma"]))
                if family == "contaminated":
                    spec = self.discrepancy
                    out["run noise"] = (f"normal, the discrepancy's nugget (median {scale:.2g} on log target); an "
                                        f"outlier from the fit's {params['outlier']} likelihood with probability "
                                        f"{spec.outlier_rate:.2g} ({spec.capped} of {spec.n_runs} runs capped)")
                else:
                    nu = f", nu {float(np.median(params['nu'])):.2g}" if "nu" in params else ""
                    out["run noise"] = f"{family} likelihood of the fit (sigma {scale:.2g}{nu}; medians)"
        out["model discrepancy"] = self.discrepancy.describe() if self.conditional is not None else "none"
        return out

    @cached_property
    def conditional(self) -> Conditional | None:
        """The discrepancy conditioned on each draw's residuals at the fitted runs (None without one)."""
        if self.discrepancy is None or self.fitted_runs is None:
            return None
        law = self.law
        params = {name: flat(self.draws[name].values)[:, None] for name in law.published}
        inputs = {name: self.fitted_runs[name] for name in law.inputs}

        def residuals(keep: np.ndarray) -> np.ndarray:  # (k, S) at the runs conditioned on only
            at = {name: values[keep] for name, values in inputs.items()}
            return (np.log(self.fitted_runs[law.target][keep]) - np.log(law.function(params, at, np))).T

        return Conditional(self.discrepancy, inputs, residuals)

    def discrepancy_function(self, seed: int | None = 0):
        """delta(values) on log(target) for flat draws: ``values`` maps each input to arrays broadcast to
        (..., S), S = chain * draw. The conditional's spread uses one standard-normal draw per posterior
        draw, so delta is a smooth function of the inputs on each draw (for searches). None without one."""
        if self.conditional is None:
            return None
        xi = np.random.default_rng(seed).standard_normal(self.n_draws)

        def delta(values):
            return self.conditional.sample(values, xi)
        return delta

    def log_discrepancy(self, inputs: Mapping[str, Any], seed: int | None = 0, smooth: bool = False) -> xr.DataArray:
        """Draws of the discrepancy on log(target) at ``inputs`` (DataArrays, possibly with chain/draw dims):
        dims (chain, draw, ...); zero when the posterior has no discrepancy. The conditional spread is drawn
        independently at each point, or with ``smooth`` once per draw (a smooth curve per draw, for plans)."""
        template = self.draws[self.law.published[0]]
        arrays = xr.broadcast(template, *[inputs[x] if isinstance(inputs[x], xr.DataArray) else xr.DataArray(inputs[x])
                                          for x in self.law.inputs])
        template = arrays[0].transpose(..., "chain", "draw")
        if self.conditional is None:
            return xr.zeros_like(template, dtype=float).transpose("chain", "draw", ...)
        shared = not any(isinstance(inputs[x], xr.DataArray) and {"chain", "draw"} & set(inputs[x].dims)
                         for x in self.law.inputs)
        # inputs that do not vary by draw are evaluated once per point (the variance once per hyperparameter set)
        points = {x: a.transpose(*template.dims).values.reshape(*template.shape[:-2], -1)[..., :1] if shared else
                  a.transpose(*template.dims).values.reshape(*template.shape[:-2], -1)
                  for x, a in zip(self.law.inputs, arrays[1:], strict=True)}
        rng = np.random.default_rng(seed)
        if smooth:
            values = self.conditional.sample(points, rng.standard_normal(self.conditional.n_draws))
        else:
            mean, var = self.conditional.evaluate(points)
            values = mean + np.sqrt(var) * rng.standard_normal(mean.shape)
        values = values.reshape(template.shape)
        return template.copy(data=values).transpose("chain", "draw", ...)


_NORMAL = get_likelihood("normal")  # a new run's noise under a discrepancy's nugget: N(0, s^2)


def _outlier(noise: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The outlier likelihood's parameters out of a contaminated noise's ("outlier_sigma" -> "sigma")."""
    return {k.removeprefix("outlier_"): v for k, v in noise.items() if k.startswith("outlier_")}


def as_posterior(source: Any) -> LawPosterior:
    """A LawPosterior from a Fit (or a LawPosterior, returned as it is)."""
    if isinstance(source, LawPosterior):
        return source
    from bayeslaw.fit import Fit

    if not isinstance(source, Fit):
        raise BayeslawError(f"expected a fit or a LawPosterior, got {type(source).__name__}")
    law = source.law
    values = {name: source.runs.frame[name].to_numpy() for name in law.inputs}
    values, _ = derive_inputs(law, values)
    ranges = {name: (float(np.min(v)), float(np.max(v))) for name, v in values.items()}
    keep = [*law.published, *(n for n in NOISE_PARAMETERS if n in source.posterior)]
    spec = getattr(source, "discrepancy", None)
    label = f"fit of {law.name}" + ("" if spec is None else " with a GP discrepancy")
    runs = {name: source.runs.frame[name].to_numpy(dtype=float) for name in (*law.inputs, law.target)}
    return LawPosterior(law, source.posterior[keep], source.likelihood, ranges, label, spec, runs)


def from_constants(law: Law | str, values: str | Mapping[str, float]) -> LawPosterior:
    """A one-draw posterior at published constants: a preset name of the law, or a dict of values."""
    law = get_law(law)
    if isinstance(values, str):
        if values not in law.presets:
            raise BayeslawError(f"law '{law.name}' has no preset '{values}'; presets: {', '.join(law.presets)}")
        label, values = values, law.presets[values].values
    else:
        label = "given constants"
    missing = [n for n in law.published if n not in values]
    if missing:
        raise BayeslawError(f"constants for law '{law.name}' miss {', '.join(missing)}")
    draws = xr.Dataset({n: (("chain", "draw"), np.full((1, 1), float(values[n]))) for n in law.published})
    return LawPosterior(law, draws, None, {}, f"{law.name} at {label}")
