"""Must-show: registered laws converge with default settings on the small ladders most users have.

One test per law and sampler seed (each one fit, no shared fixture; ``SPREAD`` deals them out to the test
workers one by one). All of them are in the slow tier (``-m slow``, run by CI). The laws that converge only
through the second attempt (quokka-dc and bnsl-2 at 60-150 s a fit; abnar, 10 parameters, at 140-260 s) are
also marked ``long`` and start first, so that the longest fits do not end the run alone."""

from __future__ import annotations

import warnings

import pytest

import bayeslaw as bl
from bayeslaw.errors import ConvergenceWarning
from bayeslaw.laws import LAWS
from bayeslaw.synthetic import ladder

SPREAD = True  # one fit per test: no module fixture to share, so the tests need not stay on one worker
LONG = ("abnar", "quokka-dc", "bnsl-2")  # converge only through the second attempt (about 25 CPU-minutes in all)
SEEDS = range(4)
CASES = [pytest.param(name, seed, marks=[pytest.mark.slow, *([pytest.mark.long] if name in LONG else [])],
                      id=f"{name}-seed{seed}")
         for name in (*LONG, *(n for n in LAWS if n not in LONG)) for seed in SEEDS]  # longest first


@pytest.mark.parametrize(("name", "seed"), CASES)
def test_every_law_converges_by_default_on_a_four_size_ladder(name, seed):
    """Must-show: 4 sizes x 6 token multiples (0.5x to 16x of 20 tokens per parameter) from the law's
    published constants with 1% noise, sampler seeds 0 to 3 (one test each), default settings (second attempt
    included): R-hat <= 1.01, bulk and tail ESS >= 400, no divergences."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = bl.fit(name, ladder(name, seed=seed), seed=seed, discrepancy=None)
    diag = result.diagnostics
    assert diag.max_rhat <= 1.01 and diag.min_ess_bulk >= 400 and diag.min_ess_tail >= 400, (seed, str(diag))
    assert diag.divergences == 0, (seed, str(diag))


def test_the_long_laws_are_registered():
    assert set(LONG) <= set(LAWS)
