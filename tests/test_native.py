"""Native sampling (bayeslaw.native): the numba density and nutpie's entry point against the C density, the
on-disk cache across processes, the posterior against pm.sample's, and the fallback to callbacks."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pytest
from conftest import SMALL

import bayeslaw as bl
from bayeslaw import native, sampling
from bayeslaw.data import load_runs
from bayeslaw.demo import chinchilla_sweep
from bayeslaw.errors import BayeslawError, ConvergenceWarning
from bayeslaw.laws import get_law
from bayeslaw.model import build_model, model_priors
from bayeslaw.testing import synthetic_runs

LOGP = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                        ctypes.c_void_p)


def call_entry_point(density, table, y):
    """nutpie's call of the logp cfunc: its return code, log p and gradient at y."""
    y = np.ascontiguousarray(y, dtype=float)
    grad, value = np.zeros_like(y), np.zeros(1)
    code = LOGP(density.native.logp.address)(len(y), y.ctypes.data, grad.ctypes.data, value.ctypes.data,
                                              table.ctypes.data)
    return code, value[0], grad


MODELS = ("student_t", "normal", "data-constrained", "curves")


def build(name: str):
    """Models with different data inputs: the Student-t law (0-d pivots, an integer input), a normal likelihood, a
    data-constrained law (three inputs) and learning curves (a latent per run, vector values)."""
    from bayeslaw.curves import build_curves
    from bayeslaw.synthetic import learning_curves

    if name == "data-constrained":
        law = get_law("muennighoff")
        return build_model(load_runs(synthetic_runs(law, 40, noise=0.02, seed=2), law),
                           model_priors(law, "student_t"), "student_t")
    law = get_law("chinchilla")
    if name == "curves":
        runs = load_runs(learning_curves("chinchilla", sizes=3, checkpoints=8), law, run_column="run")
        curves = build_curves(runs, runs.run_ids, "cosine", 0.1)
        return build_model(curves.finals, model_priors(law, "curve"), "curve", curves=curves)
    return build_model(load_runs(chinchilla_sweep(), law), model_priors(law, name), name)


@pytest.mark.parametrize("name", MODELS)
def test_the_native_density_and_entry_point_match_the_c_density(name):
    """At random points: the numba log p within 1e-12 and gradient within 1e-9 (relative) of the C density's (the two
    compilers order some sums differently); the cfunc nutpie calls returns the
    same numbers, and in whitened coordinates y (x = mode + L y) log p at x and L^T times the gradient."""
    model = build(name)
    c = sampling.compile_density(model)
    nat = sampling.compile_native_density(model)
    assert nat.native is not None
    data = sampling.data_values(model, c.data_names)
    ndim = sum(int(np.prod(s)) for s in c.value_shapes)
    rng = np.random.default_rng(0)
    mode = rng.normal(scale=0.3, size=ndim)
    factor = 0.3 * (np.tril(rng.normal(scale=0.3, size=(ndim, ndim))) + np.eye(ndim))
    whitening = sampling.Whitening(mode, factor, 0, 0.0)
    plain, _kept = native.native_table(nat.native, data)
    whitened, _kept_too = native.native_table(nat.native, data, whitening)
    for _ in range(5):
        x = rng.normal(scale=0.3, size=ndim)
        value, grad = c.logp_dlogp(x, *data)
        assert np.isfinite(value)
        n_value, n_grad = nat.logp_dlogp(x, *data)
        np.testing.assert_allclose(n_value, value, rtol=1e-12)
        np.testing.assert_allclose(n_grad, grad, rtol=1e-9, atol=1e-9 * np.abs(grad).max())
        code, e_value, e_grad = call_entry_point(nat, plain, x)
        assert code == 0
        assert e_value == float(n_value) and np.array_equal(e_grad, n_grad)
        y = rng.normal(size=ndim)
        value, grad = c.logp_dlogp(mode + factor @ y, *data)
        assert np.isfinite(value)
        code, e_value, e_grad = call_entry_point(nat, whitened, y)
        assert code == 0
        np.testing.assert_allclose(e_value, value, rtol=1e-12)
        np.testing.assert_allclose(e_grad, factor.T @ grad, rtol=1e-9, atol=1e-9 * np.abs(factor.T @ grad).max())
        for c_value, n_value in zip(c.constrain(x, *data), nat.constrain(x, *data), strict=True):
            np.testing.assert_allclose(n_value, c_value, rtol=1e-12)


def test_the_entry_point_reports_a_point_off_the_support():
    """A non-finite log p is a nonzero code (nutpie treats it as a divergence), never a crash."""
    model = build("student_t")
    nat = sampling.compile_native_density(model)
    table, _kept = native.native_table(nat.native, sampling.data_values(model, nat.data_names))
    ndim = sum(int(np.prod(s)) for s in nat.value_shapes)
    code, _, _ = call_entry_point(nat, table, np.full(ndim, 800.0))
    assert code != 0


def test_digamma_matches_scipy():
    """The numba digamma registered for PyTensor's Psi (so that Student-t graphs cache on disk)."""
    import pytensor
    import pytensor.tensor as pt
    from scipy import special

    native._ready()
    x = pt.dvector()
    psi = pytensor.function([x], pt.psi(x), mode="NUMBA")
    values = np.concatenate([np.logspace(-8, 8, 4001), [1.4616321449683623, 2.5, 7.0, 9.999, 10.0]])
    np.testing.assert_allclose(psi(values), special.psi(values), rtol=5e-15, atol=5e-15)
    negative = -(np.arange(21) + np.array([[0.05], [0.37], [0.5], [0.81]])).ravel()  # away from the poles
    np.testing.assert_allclose(psi(negative), special.psi(negative), rtol=1e-11, atol=1e-11)
    assert np.isnan(psi(np.array([0.0, -3.0]))).all()


FRESH = """
import json, sys, warnings
warnings.simplefilter("ignore")
from bayeslaw import sampling
from bayeslaw.data import load_runs
from bayeslaw.demo import chinchilla_sweep
from bayeslaw.laws import get_law
from bayeslaw.model import build_model, model_priors
law = get_law("chinchilla")
model = build_model(load_runs(chinchilla_sweep(), law), model_priors(law, "student_t"), "student_t")
density = sampling.compile_native_density(model)
data = sampling.data_values(model, density.data_names)
import numpy as np
points = np.random.default_rng(0).normal(scale=0.3, size=(5, 7))
values = [[float(v) for v in np.concatenate([[value], grad])] for value, grad in
          (density.logp_dlogp(x, *data) for x in points)]
jitted = density.native.function.vm.jit_fn
print(json.dumps({"entry_hits": density.native.logp.cache_hits, "density_hits": sum(jitted.stats.cache_hits.values()),
                  "density_misses": sum(jitted.stats.cache_misses.values()), "values": values}))
"""


def test_a_fresh_process_loads_the_native_density_from_disk(tmp_path):
    """With an empty cache, a first process compiles the density and the entry point and writes them; a second
    process loads both from disk (numba's cache hits, no miss) and computes the same log p and gradient bit for bit
    (with PyTensor's fastmath default they differed: a seed's draws then depended on whether the cache was warm)."""
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    first, second = (json.loads(subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True,
                                               check=True, env=env).stdout.splitlines()[-1]) for _ in range(2))
    assert first["entry_hits"] == 0 and first["density_hits"] == 0
    assert second["entry_hits"] == 1 and second["density_hits"] == 1 and second["density_misses"] == 0
    assert second["values"] == first["values"]
    assert list((tmp_path / "numba").glob("*bayeslaw_native_logp*.nbi"))


@pytest.mark.slow
def test_the_native_posterior_agrees_with_pm_sample_on_the_real_runs(chinchilla_runs):
    """The must-show of issue 14: on the 240 kept Chinchilla runs, the native fit's posterior means of E, A, B,
    alpha and beta lie within 3 Monte Carlo standard errors (of the difference) of pm.sample's."""
    fit = bl.fit("chinchilla", chinchilla_runs, seed=7)  # native by default (bayeslaw.sampling.use_native)
    assert fit.info["attempts"][-1]["native"] is True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = bl.fit("chinchilla", chinchilla_runs, seed=7, sampler="pymc", chains=4, draws=1000, tune=1000)
    for name in ("E", "A", "B", "alpha", "beta"):
        ours, theirs = fit.posterior[name], reference.posterior[name]
        error = np.hypot(float(az.mcse(ours, method="mean")[name]), float(az.mcse(theirs, method="mean")[name]))
        assert abs(float(ours.mean()) - float(theirs.mean())) <= 3 * error, name


def test_a_density_numba_cannot_cache_is_sampled_through_callbacks(monkeypatch):
    """The fallback: when the native compile refuses (an operation without a cache key), the fit warns once,
    samples through the C density's callbacks, and says so in its info."""
    def refuse(*args, **kwargs):
        raise BayeslawError("an operation without a cache key")

    monkeypatch.setattr(native, "compile_native", refuse)
    monkeypatch.setattr(sampling, "NATIVE", "1")
    monkeypatch.setattr(sampling, "_NOT_NATIVE", set())
    monkeypatch.setattr(sampling, "_CACHE", {})  # not the native density another test compiled in this process
    runs = synthetic_runs(get_law("power-N"), 30, noise=0.02, seed=5)
    with pytest.warns(UserWarning, match="Python callbacks"):
        fit = bl.fit("power-N", runs, seed=1, **SMALL)
    assert fit.info["attempts"][-1]["native"] is False
    assert fit.diagnostics.max_rhat < 1.05


def test_native_sampling_is_the_default_and_draws_the_same_for_the_same_seed(monkeypatch):
    """By default a fit samples natively, its chains on threads, and the same seed gives the same draws (the initial
    points are computed under a lock: PyMC's initial-point function is not thread-safe; without it 1 fit in 5
    differed); BAYESLAW_NATIVE=0 samples through callbacks; any other setting is refused by name."""
    env = {k: v for k, v in os.environ.items() if k != "BAYESLAW_NATIVE"}
    default = subprocess.run([sys.executable, "-c", "from bayeslaw import sampling; print(sampling.use_native())"],
                             capture_output=True, text=True, check=True, env=env).stdout.split()
    assert default == ["True"]
    runs = synthetic_runs(get_law("power-N"), 40, noise=0.02, seed=1)
    monkeypatch.setattr(sampling, "NATIVE", "1")
    fits = [bl.fit("power-N", runs, seed=42, **SMALL) for _ in range(4)]
    assert all(fit.info["attempts"][-1]["native"] is True for fit in fits)
    for fit in fits[1:]:
        np.testing.assert_array_equal(fit.posterior["alpha"].values, fits[0].posterior["alpha"].values)
    monkeypatch.setattr(sampling, "NATIVE", "0")
    assert bl.fit("power-N", runs, seed=42, **SMALL).info["attempts"][-1]["native"] is False
    monkeypatch.setattr(sampling, "NATIVE", "yes")
    with pytest.raises(BayeslawError, match="BAYESLAW_NATIVE"):
        bl.fit("power-N", runs, seed=42, **SMALL)
