"""Vectorised one-dimensional searches over posterior draws, and the one check of FLOP budgets.

Searches run elementwise on numpy arrays of brackets (one per draw and budget), a fixed number of
steps, no per-draw loop: golden section for a unimodal minimum, bisection for the root of a decreasing
function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bayeslaw.errors import BayeslawError
from bayeslaw.priors import short

GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0
SEARCH_STEPS = 90  # shrinks a 60-decade bracket below 1e-12 relative in N
BUDGET_RULE = "must be finite FLOP counts > 0"


def golden_section(objective: Callable[[np.ndarray], np.ndarray], lo: Any, hi: Any,
                   steps: int = SEARCH_STEPS) -> np.ndarray:
    """Minimiser of a unimodal ``objective`` on [lo, hi], elementwise over numpy arrays of brackets.

    Each step keeps the sub-bracket holding the lower of the two interior points and shrinks the bracket by
    GOLDEN = (sqrt 5 - 1) / 2, reusing one interior point (Kiefer 1953): one evaluation a step.
    """
    a, b = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    c, d = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
    fc, fd = objective(c), objective(d)
    for _ in range(steps):
        left = fc < fd  # the minimum lies in [a, d]
        a, b = np.where(left, a, c), np.where(left, d, b)
        c_new, d_new = b - GOLDEN * (b - a), a + GOLDEN * (b - a)
        # the surviving interior point is reused; only the new one is evaluated
        c, d = np.where(left, c_new, d), np.where(left, c, d_new)
        f_new = objective(np.where(left, c, d))
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
    return (a + b) / 2


def bisect_decreasing(fn: Callable[[np.ndarray], np.ndarray], lo: Any, hi: Any, steps: int = 60) -> np.ndarray:
    """Root of a decreasing ``fn`` on [lo, hi] (elementwise); fn(lo) > 0 > fn(hi) where a root exists."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        above = fn(mid) > 0
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return (lo + hi) / 2


def check_budgets(budget: float | Sequence[float] | np.ndarray, name: str = "budgets") -> np.ndarray:
    """FLOP budgets as a 1-d float array: at least one, each finite and > 0; a BayeslawError naming ``name``
    (e.g. the CLI's "--budget") and the values otherwise."""
    try:
        values = np.atleast_1d(np.asarray(budget, dtype=float))
    except (TypeError, ValueError):
        raise BayeslawError(f"{name} {BUDGET_RULE}, got {short(repr(budget))}") from None
    if values.ndim != 1 or not len(values) or not np.all(np.isfinite(values) & (values > 0)):
        raise BayeslawError(f"{name} {BUDGET_RULE}, got {short(values.tolist())}")
    return values
