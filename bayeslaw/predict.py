"""Extrapolation: the posterior and posterior predictive of a law's target at any inputs.

    loss[chain, draw, point] = f(theta_draw; x_point)                       (the law's mean)
    predictive = loss * exp(delta + eps), eps ~ the fit's noise on log(target)      (one new run)

delta is the fit's model discrepancy at the point (``bayeslaw.discrepancy``; zero for a fit without
one): a Gaussian process conditioned on each draw's residuals, whose spread grows beyond the runs.

No model is rebuilt and nothing is compiled: the law's numpy function runs on the draws. Each
point says how far it lies outside the fitted runs, in decades of each input (N, D, C).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayeslaw._draws import derived_seed, stacked
from bayeslaw.data import RANGE_RULES, derivation_rules, derive_inputs
from bayeslaw.errors import BayeslawError
from bayeslaw.posterior import LawPosterior, as_posterior


def check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(v) for v in levels)
    bad = [v for v in levels if not 0 < v < 1]
    if bad or not levels:
        raise BayeslawError(f"credible levels must lie in (0, 1), got {', '.join(map(str, bad)) or 'none'}")
    return levels


def interval_columns(samples: np.ndarray, levels: Sequence[float], prefix: str = "") -> dict[str, np.ndarray]:
    """Median and central intervals over the last axis, as table columns."""
    out = {f"{prefix}median": np.median(samples, axis=-1)}
    for level in levels:
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=-1)
        out[f"{prefix}{level:.0%} lo"], out[f"{prefix}{level:.0%} hi"] = lo, hi
    return out


def decades_outside(values: np.ndarray, fitted: tuple[float, float]) -> np.ndarray:
    """How many orders of magnitude each value lies outside [lo, hi] (0 inside)."""
    lo, hi = fitted
    return np.maximum(0.0, np.maximum(np.log10(values / hi), np.log10(lo / values)))


@dataclass(frozen=True)
class Prediction:
    """Draws of the law's mean and of a new run's target at each point, and how far each point extrapolates."""

    points: pd.DataFrame
    mean: xr.DataArray
    predictive: xr.DataArray
    extrapolation: pd.DataFrame
    target: str
    discrepancy_summary: str = ""  # what the predictive adds for the fit's model discrepancy ("" for none)
    uncertainty: dict[str, str] = field(default_factory=dict)  # what the predictive accounts for, by source

    @property
    def discrepancy(self) -> str:
        """The old name of :attr:`discrepancy_summary` (kept for one release): ``discrepancy`` names the
        model term itself (``Fit.discrepancy``, its estimate) and, as an argument, its kind."""
        warnings.warn("Prediction.discrepancy is now Prediction.discrepancy_summary", DeprecationWarning,
                      stacklevel=2)
        return self.discrepancy_summary

    def summary(self, levels: Sequence[float] = (0.5, 0.9)) -> pd.DataFrame:
        """Per point: inputs, posterior-predictive median and intervals, the law's median, decades outside."""
        levels = check_levels(levels)
        table = self.points.copy()
        for name, values in interval_columns(stacked(self.predictive, "point"), levels).items():
            table[name] = values
        table["law median"] = np.median(stacked(self.mean, "point"), axis=-1)
        table["decades outside"] = self.extrapolation.max(axis=1).to_numpy()
        table["furthest input"] = [row.idxmax() if row.max() > 0 else "" for _, row in self.extrapolation.iterrows()]
        return table


def predict(source: Any, *, seed: int | None = 0, flops_per_param_token: float | None = None,
            **inputs: float | Sequence[float] | np.ndarray) -> Prediction:
    """Posterior and posterior predictive of the law's target at the given inputs (e.g. ``N=7e10, D=1.4e12``).

    Inputs broadcast to a common number of points; a missing input follows from the law's compute
    convention (D = C / (6 N)). ``source`` is a Fit or a LawPosterior.
    """
    post: LawPosterior = as_posterior(source)
    law = post.law
    if not inputs:
        raise BayeslawError(f"give the inputs to predict at, e.g. {', '.join(f'{x}=...' for x in law.inputs)}")
    try:
        arrays = dict(zip(inputs, np.broadcast_arrays(*[np.atleast_1d(np.asarray(v, dtype=float))
                                                         for v in inputs.values()]), strict=True))
    except ValueError as err:
        raise BayeslawError(f"inputs must be numbers or equal-length sequences ({err})") from None
    for name, values in arrays.items():
        check, rule = RANGE_RULES.get(name, (lambda v: v > 0, "must be > 0"))
        if not np.all(np.isfinite(values) & check(values)):
            phrase = rule.removeprefix("must ").removeprefix("be ")
            raise BayeslawError(f"input {name} must be finite and {phrase}, got {values.tolist()[:8]}")
    values, derived = derive_inputs(law, arrays, flops_per_param_token)
    missing = [x for x in law.inputs if x not in values]
    if missing:
        raise BayeslawError(f"law '{law.name}' needs {', '.join(law.inputs)}; missing {', '.join(missing)}")
    k = flops_per_param_token or law.flops_per_param_token
    rules = [(col, needs) for col, needs, _, text in derivation_rules(k) if derived.get(col) == text]
    used = set(law.inputs)
    for _ in rules:  # an input is used when the law takes it or it derives one that is used (C -> D, U -> epochs -> D)
        used |= {n for col, needs in rules if col in used for n in needs}
    unused = [name for name in inputs if name not in used]
    if unused:
        derivable = sorted({n for col, needs, _, _ in derivation_rules(law.flops_per_param_token) if col in law.inputs
                            and len(set(needs) - set(law.inputs)) == 1 for n in needs if n not in law.inputs})
        how = f" (or {', '.join(derivable)} in place of one of them)" if derivable else ""
        raise BayeslawError(f"input {unused[0]} is not used by law '{law.name}', which takes "
                            f"{', '.join(law.inputs)}{how}; drop {unused[0]}")
    n_points = len(next(iter(values.values())))
    point = np.arange(n_points)
    points = pd.DataFrame({k: np.asarray(v, dtype=float) for k, v in values.items()})
    points.index.name = "point"
    coords = {k: xr.DataArray(points[k].to_numpy(), dims="point", coords={"point": point}) for k in law.inputs}
    mean = law.function(post.published_draws(), coords, np).transpose("chain", "draw", "point")
    log_shift = post.log_noise(seed)
    if post.conditional is not None:
        log_shift = log_shift + post.log_discrepancy(coords, derived_seed(seed, 1))
    predictive = mean * np.exp(log_shift)
    outside = {name: decades_outside(points[name].to_numpy(), post.fitted_ranges[name])
               for name in points.columns if name in post.fitted_ranges}
    note = "" if post.conditional is None else f"predictive includes the fit's {post.discrepancy.describe()}"
    return Prediction(points, mean.rename(law.target), predictive.rename(law.target),
                      pd.DataFrame(outside, index=points.index), law.target, note, post.uncertainty())
