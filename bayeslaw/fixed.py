"""Fixing published parameters: ``fit(law, runs, fixed={"E": 1.69, "A": 406.4})``.

A fixed value is conditioned on, not sampled. Published parameters are not always the coordinates the
law samples (Chinchilla samples log A0 = log A - alpha log N0, the log of the N term at the data's pivot),
so each fixed value becomes one of:

- a Fixed prior on the law's parameter of the same name (E, alpha, beta),
- a tie: the law's parameter computed from the fixed value and the other parameters (A fixed, alpha
  free: log A0 = log A - alpha log N0), declared by the law (``Law.ties``),
- Fixed priors on the law's parameters that the fixed values determine together, found numerically
  from ``Law.from_published`` (Muennighoff's data-constrained protocol fixes E, A, B, alpha and beta, which
  determine its loss at the pivots, both shares and both exponents).

Anything else is refused with the names that can be fixed. Fixed values are stored with the fit,
skipped by the convergence diagnostics and reported as such in the summary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bayeslaw.errors import PriorError
from bayeslaw.laws import Law
from bayeslaw.priors import Prior


@dataclass(frozen=True)
class Fixing:
    """What fixing published values means for a law's parameters on one data set."""

    values: Mapping[str, float] = field(default_factory=dict)  # the published values, as given
    priors: Mapping[str, Prior] = field(default_factory=dict)  # Fixed priors on law parameters
    ties: Mapping[str, Callable[..., Any]] = field(default_factory=dict)  # param -> f(params, pivots, xp)

    def apply(self, params: Mapping[str, Any], pivots: Mapping[str, Any], xp) -> dict[str, Any]:
        """``params`` with the tied parameters computed (symbolic or numpy)."""
        out = dict(params)
        for name, tie in self.ties.items():
            out[name] = tie(out, pivots, xp)
        return out


def _finite(fixed: Mapping[str, Any], law: Law) -> dict[str, float]:
    values = {}
    for name, value in fixed.items():
        if name not in law.published:
            raise PriorError(f"cannot fix '{name}': law '{law.name}' has published parameters "
                             f"{', '.join(law.published)}")
        try:
            values[name] = float(value)
        except (TypeError, ValueError):
            raise PriorError(f"fixed value of '{name}' must be a number, got {value!r}") from None
        if not math.isfinite(values[name]):
            raise PriorError(f"fixed value of '{name}' must be finite, got {value}")
    return values


def resolve_fixed(law: Law, fixed: Mapping[str, Any] | None, pivots: Mapping[str, float]) -> Fixing:
    """Turn published values into Fixed priors and ties on the law's parameters (see the module docstring)."""
    values = _finite(fixed or {}, law)
    if not values:
        return Fixing()
    priors: dict[str, Prior] = {}
    ties: dict[str, Callable[..., Any]] = {}
    rest = {}
    for name, value in values.items():
        if name in law.params:
            priors[name] = Prior("Fixed", value=value)
        elif name in law.ties:
            param, tie = law.ties[name]
            ties[param] = lambda params, pivots, xp, tie=tie, value=value: tie(value, params, pivots, xp)
        else:
            rest[name] = value
    if rest:
        priors |= _determined(law, values, rest, pivots)
    for name, prior in priors.items():
        prior.check_support(name, law.params[name].support)
    return Fixing(values, priors, ties)


def _determined(law: Law, values: Mapping[str, float], wanted: Mapping[str, float],
                pivots: Mapping[str, float]) -> dict[str, Prior]:
    """Fixed priors on the law parameters that ``values`` determine whatever the other published parameters."""
    reference = next(iter(law.presets.values())).values
    rng = np.random.default_rng(0)

    def perturbed(keep: Mapping[str, float]) -> dict[str, float]:
        free = {k: v * float(np.exp(rng.normal(0.0, 0.1))) for k, v in reference.items() if k not in keep}
        with np.errstate(all="ignore"):
            return law.from_published({**free, **keep}, pivots)

    samples = [perturbed(values) for _ in range(3)]
    determined = {k: float(samples[0][k]) for k in law.params
                  if all(np.isclose(s[k], samples[0][k], rtol=1e-9, atol=1e-12) for s in samples)}
    for _ in range(3):  # the other parameters anywhere: the fixed values must still hold
        with np.errstate(all="ignore"):
            back = law.to_published({**perturbed({}), **determined}, pivots, np)
        if not all(np.isclose(float(back[k]), v, rtol=1e-8) for k, v in wanted.items()):
            fixable = [n for n in law.published if n in law.params or n in law.ties]
            raise PriorError(
                f"cannot fix {', '.join(wanted)} of law '{law.name}' with these values alone: its sampled "
                f"parameters ({', '.join(law.params)}) mix them with the others; "
                + (f"{', '.join(fixable)} can be fixed one by one, " if fixable else "")
                + "or fix every published parameter they share a coordinate with (e.g. all of "
                f"{', '.join(law.published)} but the ones to fit), or give them tight priors")
    return {k: Prior("Fixed", value=v) for k, v in determined.items()}
