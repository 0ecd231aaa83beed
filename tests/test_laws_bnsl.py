"""Broken neural scaling laws (Caballero et al. 2022, eq 1): the stable form against the product form,
and the log-log slope after the last break. Recovery from synthetic data is in the registry-wide tests."""

from __future__ import annotations

import numpy as np
import pytest

from bayeslaw.laws import get_law


@pytest.mark.parametrize("name", ["bnsl-1", "bnsl-2"])
def test_bnsl_matches_the_product_form_and_its_segment_slopes(name):
    law = get_law(name)
    p = law.presets["example"].values
    n_breaks = int(name[-1])
    x = np.array([1e17, 3e18, 1e20, 7e21, 1e23])
    product = np.prod([(1 + (x / p[f"d{i}"]) ** (1 / p[f"f{i}"])) ** (-p[f"c{i}"] * p[f"f{i}"])
                       for i in range(1, n_breaks + 1)], axis=0)
    np.testing.assert_allclose(law.evaluate(p, {"C": x}), p["a"] + p["b"] * x ** -p["c0"] * product, rtol=1e-12)
    sharp = {**p, "f1": 1e-3}  # (x / d)^(1/f) overflows in the product form; the law stays finite
    assert np.isfinite(law.evaluate(sharp, {"C": x})).all()
    far = p[f"d{n_breaks}"] * np.exp([30.0, 30.01])  # far past the last break: slope -(c0 + ... + c_n)
    reducible = law.evaluate({**p, "a": 0.0}, {"C": far})
    slope = -np.diff(np.log(reducible))[0] / 0.01
    assert slope == pytest.approx(p["c0"] + sum(p[f"c{i}"] for i in range(1, n_breaks + 1)), rel=1e-6)
