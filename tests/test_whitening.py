"""Whitened sampling (bayeslaw.sampling.laplace_whitening): the Laplace approximation is found where it exists,
refused where it does not, and a whitened fit samples the same posterior as a plain one."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bayeslaw as bl
from bayeslaw.errors import BayeslawError, ConvergenceWarning
from bayeslaw.laws import LAWS
from bayeslaw.sampling import laplace_whitening
from bayeslaw.testing import synthetic_runs


def gaussian(mode: np.ndarray, precision: np.ndarray):
    def logp_dlogp(x):
        delta = x - mode
        return -0.5 * delta @ precision @ delta, -precision @ delta
    return logp_dlogp


def test_the_laplace_approximation_of_a_normal_is_exact():
    rng = np.random.default_rng(0)
    root = rng.normal(size=(4, 4))
    precision = root @ root.T + 4 * np.eye(4)
    mode = np.array([1.0, -2.0, 0.5, 3.0])
    found = laplace_whitening(gaussian(mode, precision), np.zeros(4), scale=1.0)
    assert found is not None
    np.testing.assert_allclose(found.mode, mode, atol=1e-6)
    np.testing.assert_allclose(found.factor @ found.factor.T, np.linalg.inv(precision), rtol=1e-6)
    assert np.allclose(found.factor, np.tril(found.factor)) and found.gradients > 2 * 4


def test_no_mode_or_no_curvature_is_refused():
    assert laplace_whitening(lambda x: (float(x.sum()), np.ones_like(x)), np.zeros(3), scale=1.0) is None  # unbounded
    flat_direction = np.diag([1.0, 0.0])  # a ridge: the Hessian is singular
    assert laplace_whitening(gaussian(np.zeros(2), flat_direction), np.ones(2), scale=1.0) is None


@pytest.fixture(scope="module")
def pair():
    """The same 300 runs fitted with and without whitening (forced: tables this small are not whitened)."""
    runs = synthetic_runs(LAWS["chinchilla"], 300, noise=0.01, seed=4)
    settings = dict(chains=2, draws=400, tune=300, seed=3, discrepancy=None, retry=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return runs, bl.fit("chinchilla", runs, whiten=True, **settings), bl.fit("chinchilla", runs, **settings)


def test_a_whitened_fit_samples_the_same_posterior(pair):
    _, whitened, plain = pair
    assert whitened.info["attempts"][0]["whitened"] is True and "whitened" not in plain.info["attempts"][0]
    assert any("Laplace approximation" in note for note in whitened.info["notes"])
    assert whitened.diagnostics.max_rhat <= 1.02 and whitened.diagnostics.divergences == 0, str(whitened.diagnostics)
    for name in ("E", "alpha", "beta", "A", "B", "sigma"):
        a, b = whitened.posterior[name].values.ravel(), plain.posterior[name].values.ravel()
        scale = np.std(np.log(np.concatenate([a, b])))
        # medians of 800 draws each (ESS several hundred): their difference within 4 Monte Carlo errors
        assert abs(np.log(np.median(a) / np.median(b))) < 4 * scale * np.sqrt(2 / 400), name


def test_a_whitened_fit_reproduces_its_draws(pair):
    runs, whitened, _ = pair
    again = bl.fit("chinchilla", runs, whiten=True, chains=2, draws=400, tune=300, seed=3, discrepancy=None,
                   retry=False)
    np.testing.assert_array_equal(again.posterior["alpha"].values, whitened.posterior["alpha"].values)


def test_whitening_is_for_nutpie_alone():
    runs = synthetic_runs(LAWS["chinchilla"], 30, noise=0.01, seed=4)
    with pytest.raises(BayeslawError, match="whiten=True is for the nutpie sampler"):
        bl.fit("chinchilla", runs, whiten=True, sampler="pymc")
