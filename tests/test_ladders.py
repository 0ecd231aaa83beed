"""Must-show: every registered law converges with default settings on the small ladders most users have
(its own file, so that the test runner gives it a worker of its own)."""

from __future__ import annotations

import warnings

import pytest

import bayeslaw as bl
from bayeslaw.errors import ConvergenceWarning
from bayeslaw.laws import LAWS
from bayeslaw.synthetic import ladder


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LAWS))
def test_every_law_converges_by_default_on_a_four_size_ladder(name):
    """Must-show: 4 sizes x 6 token multiples (0.5x to 16x of 20 tokens per parameter) from the law's
    published constants with 1% noise, sampler seeds 0 to 3, default settings (second attempt included):
    R-hat <= 1.01, bulk and tail ESS >= 400, no divergences."""
    for seed in range(4):
        result = _fit(name, ladder(name, seed=seed), seed=seed, discrepancy=None)
        diag = result.diagnostics
        assert diag.max_rhat <= 1.01 and diag.min_ess_bulk >= 400 and diag.min_ess_tail >= 400, (seed, str(diag))
        assert diag.divergences == 0, (seed, str(diag))


def _fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return bl.fit(*args, **kwargs)
