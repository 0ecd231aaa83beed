"""Must-show: registered laws converge with default settings on the small ladders most users have.

One class per law and sampler seed (each one fit, no shared fixture), so that xdist's loadscope deals them
out to the test workers one by one. All of them are in the slow tier (``-m slow``, run by CI). Three laws sample
chains twice as long from the first attempt or need the second (abnar 55-90 s a fit, bnsl-2 65-100 s, quokka-dc
15-65 s): their seed 0 runs in CI, marked ``early`` so that it starts first; seeds 1 to 3 are also marked
``long`` (``python -m pytest -m long``), as all four would put CI past its 20 minutes."""

from __future__ import annotations

import warnings

import pytest

import bayeslaw as bl
from bayeslaw.errors import ConvergenceWarning
from bayeslaw.laws import LAWS
from bayeslaw.synthetic import ladder

LONG = ("abnar", "quokka-dc", "bnsl-2")  # a minute or more a fit: 12 fits, about 12 CPU-minutes
SEEDS = range(4)
# measured failures of the default sampler (native), kept visible as strict xfails so a change is noticed
_BNSL_2 = ("bnsl-2's posterior on 4 sizes is multimodal in its break positions, and which seeds' chains settle in "
           "different modes moves with rounding: with the powers rewrite (seventh session) seeds 1, 3, 6, 8, 9 of 0-9 "
           "failed (5 of 10: seed 1 R-hat 1.026 and 43 divergences, seed 3 tail ESS 352); before it, natively seeds "
           "2, 5, 9 (3 of 10, seed 2 R-hat 1.455), through callbacks 5, 6 (ARCHITECTURE.md)")
KNOWN = {("bnsl-2", seed): _BNSL_2 for seed in (1, 3)}


class _Ladder:
    """Must-show: 4 sizes x 6 token multiples (0.5x to 16x of 20 tokens per parameter) from the law's published
    constants with 1% noise, sampler seeds 0 to 3 (one class each), default settings (second attempt included):
    R-hat <= 1.01, bulk and tail ESS >= 400, no divergences."""

    law: str
    seed: int

    def test_converges_by_default_on_a_four_size_ladder(self):
        name, seed = self.law, self.seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = bl.fit(name, ladder(name, seed=seed), seed=seed, discrepancy=None)
        diag = result.diagnostics
        assert diag.max_rhat <= 1.01 and diag.min_ess_bulk >= 400 and diag.min_ess_tail >= 400, (seed, str(diag))
        assert diag.divergences == 0, (seed, str(diag))


# one class per law and seed, the longest laws first: each class is a work unit of its own for xdist (loadscope)
for _name in (*LONG, *(n for n in LAWS if n not in LONG)):
    for _seed in SEEDS:
        _marks = [pytest.mark.slow, *([pytest.mark.early if _seed == 0 else pytest.mark.long] if _name in LONG else [])]
        if (_name, _seed) in KNOWN:
            _marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[_name, _seed]))
        _cls = type(f"TestLadder_{_name.replace('-', '_')}_seed{_seed}", (_Ladder,),
                    {"law": _name, "seed": _seed, "pytestmark": _marks})
        globals()[_cls.__name__] = _cls


def test_the_long_laws_are_registered():
    assert set(LONG) <= set(LAWS)
