"""Must-show: registered laws converge with default settings on the small ladders most users have
(its own file, so that the test runner gives it a worker of its own; the two longest laws are in
test_ladders_long.py, so that they run beside these)."""

from __future__ import annotations

import warnings

import pytest

import bayeslaw as bl
from bayeslaw.errors import ConvergenceWarning
from bayeslaw.laws import LAWS
from bayeslaw.synthetic import ladder

# Laws whose default fits do not yet converge on every seed of this ladder, even after the second attempt
# (measured 2026-12-04, seeds 0-3; ``python benchmarks/convergence.py --sizes 4`` shows them). They are
# left out of the must-show below rather than weakened for everyone; their fits say that they failed.
NOT_YET = {
    "abnar": "0 of 4 seeds: 1-5 divergences each after the second attempt (10 parameters on 4 sparsities; "
             "c against e is unidentified), about 150 s a fit",
}


# converge only through the second attempt, at 60-90 s a fit: tested in test_ladders_long.py
LONG = ("quokka-dc", "bnsl-2")


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in LAWS if name not in NOT_YET and name not in LONG])
def test_every_law_converges_by_default_on_a_four_size_ladder(name):
    check_ladder(name)


def check_ladder(name: str) -> None:
    """Must-show: 4 sizes x 6 token multiples (0.5x to 16x of 20 tokens per parameter) from the law's
    published constants with 1% noise, sampler seeds 0 to 3, default settings (second attempt included):
    R-hat <= 1.01, bulk and tail ESS >= 400, no divergences."""
    for seed in range(4):
        result = _fit(name, ladder(name, seed=seed), seed=seed, discrepancy=None)
        diag = result.diagnostics
        assert diag.max_rhat <= 1.01 and diag.min_ess_bulk >= 400 and diag.min_ess_tail >= 400, (seed, str(diag))
        assert diag.divergences == 0, (seed, str(diag))


def test_the_laws_left_out_are_registered():
    assert set(NOT_YET) | set(LONG) <= set(LAWS) and not set(NOT_YET) & set(LONG)


def _fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return bl.fit(*args, **kwargs)
