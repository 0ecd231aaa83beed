"""sampler="jax" (bayeslaw.sampling_jax): recovery, seeds, no recompilation on a refit, its density against the C
backend's, the error without JAX, and a fresh process that neither traces nor compiles the program again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.util import find_spec
from pathlib import Path

import arviz as az
import numpy as np
import pytest

import bayeslaw as bl
from bayeslaw.errors import BayeslawError
from bayeslaw.laws import get_law
from bayeslaw.synthetic import ladder

_MISSING = [name for name in ("jax", "blackjax", "flatbuffers") if find_spec(name) is None]
if _MISSING and os.environ.get("CI"):  # CI installs the dev extra, which has them: a skip there would hide a break
    raise RuntimeError(f"CI lacks {', '.join(_MISSING)}: the dev extra installs them")
needs_jax = pytest.mark.skipif(bool(_MISSING), reason="needs pip install bayeslaw[jax]")

SETTINGS = {"chains": 4, "draws": 500, "tune": 500, "retry": False, "discrepancy": None}


@pytest.fixture(scope="module")
def chinchilla_fit():
    """The Chinchilla law on a 6-size synthetic ladder (36 runs, 1% noise), sampled with JAX."""
    return bl.fit("chinchilla", ladder("chinchilla", sizes=6, seed=0), sampler="jax", seed=5, **SETTINGS)


@needs_jax
def test_jax_fit_recovers_the_constants_and_converges(chinchilla_fit):
    law = get_law("chinchilla")
    truth = next(iter(law.presets.values())).values
    assert chinchilla_fit.converged, chinchilla_fit.diagnostics
    assert chinchilla_fit.info["sampler"] == "jax"
    hdi = az.hdi(chinchilla_fit.posterior[list(law.published)], hdi_prob=0.94)
    for param in law.published:
        lo, hi = hdi[param].values
        assert lo <= truth[param] <= hi, f"{param}: truth {truth[param]} outside 94% HDI [{lo}, {hi}]"
    stats = chinchilla_fit.idata.sample_stats
    assert {"diverging", "reached_max_treedepth", "tree_depth", "step_size", "lp"} <= set(stats.data_vars)
    assert stats["diverging"].dtype == bool and stats.sizes == {"chain": 4, "draw": 500}


@needs_jax
def test_jax_fit_saves_and_loads(chinchilla_fit, tmp_path):
    loaded = bl.load(chinchilla_fit.save(tmp_path / "fit.nc"))
    assert loaded.info["sampler"] == "jax"
    np.testing.assert_array_equal(loaded.posterior["alpha"].values, chinchilla_fit.posterior["alpha"].values)


@needs_jax
def test_the_same_seed_gives_the_same_draws_and_a_refit_does_not_recompile(chinchilla_fit):
    from bayeslaw import sampling_jax

    compiled, traced = sum(sampling_jax.COMPILES.values()), sum(sampling_jax.TRACES.values())
    again = bl.fit("chinchilla", ladder("chinchilla", sizes=6, seed=0), sampler="jax", seed=5, **SETTINGS)
    for name in chinchilla_fit.law.params:
        np.testing.assert_array_equal(again.posterior[name].values, chinchilla_fit.posterior[name].values)
    other_seed = bl.fit("chinchilla", ladder("chinchilla", sizes=6, seed=0), sampler="jax", seed=6, **SETTINGS)
    assert not np.array_equal(other_seed.posterior["alpha"].values, chinchilla_fit.posterior["alpha"].values)
    other_runs = bl.fit("chinchilla", ladder("chinchilla", sizes=6, seed=1), sampler="jax", seed=5, **SETTINGS)
    assert not np.array_equal(other_runs.posterior["alpha"].values, chinchilla_fit.posterior["alpha"].values)
    # the data are arguments of the compiled program: another seed or table of the same shape reuses it
    assert sum(sampling_jax.COMPILES.values()) == compiled
    assert sum(sampling_jax.TRACES.values()) == traced
    assert other_runs.info["compile_seconds"] < chinchilla_fit.info["compile_seconds"]


@needs_jax
@pytest.mark.parametrize("table", ["runs", "curves"])
def test_the_jax_density_matches_the_c_backend(table):
    """log p to 1e-10 and its gradient to 1e-8 (relative) at points around the initial point, for a run table and
    for learning curves (whose run-scale latent has a shape set by a dimension length: static in JAX)."""
    import jax

    from bayeslaw.curves import build_curves
    from bayeslaw.model import build_model, data_pivots, model_priors
    from bayeslaw.sampling import compile_density, data_values, flat_graph
    from bayeslaw.sampling_jax import dimension_lengths, import_jax, jax_density, with_static_shapes
    from bayeslaw.synthetic import learning_curves

    import_jax()
    if table == "runs":
        runs = bl.load_runs(ladder("chinchilla", sizes=4, seed=2), "chinchilla")
        model = build_model(runs, model_priors(runs.law, "student_t", {}), "student_t")
        assert data_pivots(runs)  # the pivots are data of the model, as the density's inputs
    else:
        rows = bl.load_runs(learning_curves("chinchilla", sizes=3, checkpoints=12, seed=2), "chinchilla")
        curves = build_curves(rows, rows.run_ids)
        model = build_model(curves.finals, model_priors(rows.law, "curve", {}), "curve", curves=curves)
    c_density = compile_density(model)
    graph = flat_graph(model)
    values = tuple(np.asarray(v) for v in data_values(model, graph.data_names))
    static = dimension_lengths(values)
    lengths = [int(values[i]) for i in static]
    assert (len(runs) if table == "runs" else curves.n_runs) in lengths  # the dimension's length, a constant now
    graph = with_static_shapes(graph, values)
    j_data = [v for i, v in enumerate(values) if i not in static]
    assert graph.data_names == tuple(n for i, n in enumerate(flat_graph(model).data_names) if i not in static)
    j_density = jax_density(graph)
    c_data = data_values(model, c_density.data_names)
    value_and_grad = jax.jit(jax.value_and_grad(lambda x, data: j_density.logp(x, *data)))
    rng = np.random.default_rng(0)
    start = np.concatenate([np.ravel(model.initial_point()[name]) for name in c_density.value_names])
    for _ in range(4):
        x = start + 0.3 * rng.standard_normal(start.size)
        c_logp, c_grad = c_density.logp_dlogp(x, *c_data)
        j_logp, j_grad = value_and_grad(x, list(j_data))
        np.testing.assert_allclose(float(j_logp), float(c_logp), rtol=1e-10, atol=1e-10)
        # the gradient in nu goes through digamma, which PyTensor's C code approximates to about 1e-10
        # (scipy.special.digamma(0.7) - pt.psi(0.7) = 1.2e-10; JAX's agrees with scipy to 1e-15)
        np.testing.assert_allclose(np.asarray(j_grad), c_grad, rtol=1e-8, atol=1e-10)


def test_without_jax_the_error_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    with pytest.raises(BayeslawError, match=r"sampler='jax' needs jax, not installed: pip install bayeslaw\[jax\]"):
        bl.fit("chinchilla", ladder("chinchilla", sizes=4), sampler="jax", seed=1, **SETTINGS)


def test_importing_bayeslaw_does_not_import_jax():
    code = "import sys, bayeslaw, bayeslaw.fit, bayeslaw.sampling_jax; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.stdout.strip() == "False"


FRESH = textwrap.dedent("""
    import hashlib, json, sys, warnings
    warnings.simplefilter("ignore")
    import bayeslaw as bl
    from bayeslaw import sampling_jax
    from bayeslaw.synthetic import ladder
    if sys.argv[1:] == ["other-graphs-first"]:  # PyTensor's variable counters then differ from the first process's
        bl.fit("power-D", ladder("power-D", sizes=4), seed=1, chains=1, draws=10, tune=10, retry=False,
               discrepancy=None)
    fit = bl.fit("chinchilla", ladder("chinchilla", sizes=4, seed=0), sampler="jax", seed=2, chains=2, draws=100,
                 tune=100, retry=False, discrepancy=None)
    print(json.dumps({"traces": sum(sampling_jax.TRACES.values()), "converged": bool(fit.converged),
                      "draws": hashlib.sha256(fit.posterior["alpha"].values.tobytes()).hexdigest()}))
""")


@needs_jax
@pytest.mark.slow
def test_a_fresh_process_reads_the_program_from_the_cache(tmp_path):
    """The first process traces the program and writes it (and XLA's compilation) to the cache; a second one,
    which builds another law's graph first, finds it there, traces nothing, and draws the same values bit for
    bit."""
    env = {**os.environ, "BAYESLAW_JAX_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    first, second = (json.loads(subprocess.run([sys.executable, "-c", FRESH, *argv], capture_output=True, text=True,
                                               check=True, env=env).stdout.splitlines()[-1])
                     for argv in ([], ["other-graphs-first"]))
    assert first["traces"] == 1 and second["traces"] == 0
    assert first["draws"] == second["draws"]
    assert list((tmp_path / "cache" / "programs").glob("*.jax"))
