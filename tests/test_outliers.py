"""Outlying runs by the fit's own likelihood: the injected ones are found, listed and never dropped."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import bayeslaw as bl
from bayeslaw.demo import chinchilla_sweep
from bayeslaw.likelihoods import LIKELIHOODS, REGISTRY
from bayeslaw.outliers import describe, outlying_runs


@pytest.mark.parametrize("name", LIKELIHOODS)  # the curve families: tests/test_curves.py
def test_tail_probabilities_are_the_families_own(name):
    family = REGISTRY[name]
    noise = {"sigma": 0.01, "nu": 3.0}
    r = np.array([-0.03, 0.0, 0.005, 0.02])
    want = {"student_t": 2 * stats.t.sf(np.abs(r) / 0.01, 3.0), "normal": 2 * stats.norm.sf(np.abs(r) / 0.01),
            "laplace": 2 * stats.laplace.sf(np.abs(r) / 0.01)}[name]
    assert family.tail(r, noise) == pytest.approx(want)


def test_injected_outliers_are_found_listed_and_kept():
    frame = chinchilla_sweep("besiroglu2024", noise=0.01, seed=3)
    bad = [5, 17, 40]
    frame.loc[bad, "loss"] *= np.exp([0.25, -0.2, 0.3])
    fit = bl.fit("chinchilla", frame, seed=0, chains=2, draws=300, tune=300, retry=False, discrepancy=None)
    table = outlying_runs(fit)
    assert set(bad) <= set(table.index) and len(table) <= len(bad) + 3  # about 0.01 x 72 more by chance
    assert table["tail"].is_monotonic_increasing and (table["tail"] < 0.01).all()
    assert table.loc[40, "residual"] == pytest.approx(0.3, abs=0.05)
    line = describe(fit, exclude_hint=True)
    assert line.startswith(f"{len(table)} run(s) lie in the outer 1% of the fit's student_t likelihood (about "
                           f"{0.01 * len(frame):.1f} expected by chance): rows ")
    assert line.endswith(f"--exclude-rows {','.join(map(str, sorted(table.index)))} leaves them out")
    assert len(fit.runs) == len(frame)  # listed, not dropped
    clean = bl.fit("chinchilla", chinchilla_sweep("besiroglu2024", noise=0.01, seed=3), seed=0, chains=2, draws=300,
                   tune=300, retry=False, discrepancy=None, likelihood="normal")
    assert len(outlying_runs(clean)) <= 3 and (describe(clean) is None) == outlying_runs(clean).empty
