"""Draws of a published fit's constants from the uncertainty the paper gave, on the scale it gave it.

- ``kind = "independent"``: each listed constant is drawn on its own from a normal on the scale
  the uncertainty was published on, ``log`` (log theta ~ Normal(log theta_hat, sd); positive
  constants with skewed bootstrap distributions) or ``linear`` (theta ~ Normal(theta_hat, sd)). An
  ``interval = [lo, hi]`` at ``level`` becomes sd = (hi - lo) / (2 z_(1+level)/2) on that scale,
  centred at the estimate (``schema``). Constants without an entry stay at their estimate.
- ``kind = "covariance"``: a multivariate normal on the listed scales, centred at the estimates.
- Linear-scale draws whose sign differs from the estimate's are redrawn (a normal truncated at 0),
  so a positive exponent stays positive.
- ``kind = "none"``: the paper gives no uncertainty; the posterior is one draw at the estimates.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayeslaw.catalogue.schema import CatalogueError, Uncertainty

MAX_REDRAWS = 100


def draw_constants(name: str, constants: Mapping[str, float], u: Uncertainty, draws: int,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draws of every published constant of entry ``name`` per its uncertainty ``u`` (module docstring)."""
    if u.kind == "none":
        return {p: np.array([v]) for p, v in constants.items()}
    names = list(u.params)
    logs = np.array([u.params[p].scale == "log" for p in names])
    estimate = np.array([constants[p] for p in names])
    centre = np.where(logs, np.log(np.abs(estimate)), estimate)
    if u.kind == "covariance":
        factor = np.linalg.cholesky(u.matrix)
    else:
        factor = np.diag([u.params[p].sd for p in names])
    sample = np.empty((draws, len(names)))
    todo = np.arange(draws)
    for _ in range(MAX_REDRAWS):
        proposal = centre + rng.standard_normal((len(todo), len(names))) @ factor.T
        sample[todo] = proposal
        flipped = ~logs & (np.sign(proposal) != np.sign(estimate))
        todo = todo[flipped.any(axis=1)]
        if not len(todo):
            break
    else:
        raise CatalogueError(f"entry '{name}': draws keep changing the sign of a constant "
                             f"({MAX_REDRAWS} redraws); the published sd is too large for a normal on the linear "
                             "scale, use scale = \"log\"")
    sample = np.where(logs, np.exp(sample), sample)
    out = {p: np.full(draws, v) for p, v in constants.items()}
    out.update({p: sample[:, i] for i, p in enumerate(names)})
    return out
