"""Large tables' densities run their elementwise loops on every core (bayeslaw.sampling.PARALLEL_ROWS), with the
values of the one-core density bit for bit."""

from __future__ import annotations

import numpy as np

from bayeslaw import sampling
from bayeslaw.data import load_runs
from bayeslaw.model import build_model, model_priors
from bayeslaw.testing import synthetic_runs


def density_and_point(rows: int, monkeypatch, parallel_from: int, with_inputs: bool = False):
    monkeypatch.setattr(sampling, "PARALLEL_ROWS", parallel_from)
    runs = load_runs(synthetic_runs("chinchilla", rows, seed=3), "chinchilla")
    model = build_model(runs, model_priors(runs.law, "student_t"), "student_t")
    density = sampling.compile_density(model)
    data = sampling.data_values(model, density.data_names)
    point = np.random.default_rng(0).normal(scale=0.3, size=sum(int(np.prod(s)) for s in density.value_shapes))
    value = density.logp_dlogp(point, *data)
    return (density, value, point, data) if with_inputs else (density, value)


def test_a_large_table_gets_the_parallel_density_with_the_same_values(monkeypatch):
    rows = 2_000  # PARALLEL_ROWS lowered to it, to keep the test small; the loops are the same at 1e4 rows
    parallel, (logp, grad) = density_and_point(rows, monkeypatch, parallel_from=rows)
    serial, (logp_serial, grad_serial) = density_and_point(rows, monkeypatch, parallel_from=rows + 1)
    assert parallel.parallel and not serial.parallel
    assert logp == logp_serial and np.array_equal(grad, grad_serial)
    assert np.isfinite(logp) and np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_the_cache_keeps_parallel_and_serial_densities_apart(monkeypatch):
    monkeypatch.setattr(sampling, "_CACHE", {})
    monkeypatch.setattr(sampling, "PARALLEL_ROWS", 1_000)
    compiled = []
    for rows in (300, 1_000, 500):
        runs = load_runs(synthetic_runs("chinchilla", rows, seed=1), "chinchilla")
        model = build_model(runs, model_priors(runs.law, "student_t"), "student_t")
        compiled.append(sampling.compile_density(model, key="same law"))
    small, large, small_again = compiled
    assert large.parallel and not small.parallel and small_again is small and large is not small


def test_a_forked_child_evaluates_the_parallel_density(monkeypatch):
    """GNU OpenMP's threads do not survive a fork: without the guard (sampling._guard_forks) the child's first
    parallel loop waits for them forever (measured: the child hung)."""
    import multiprocessing

    rows = 2_000
    density, (logp, _), point, data = density_and_point(rows, monkeypatch, parallel_from=rows, with_inputs=True)
    assert density.parallel
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=lambda: queue.put(float(density.logp_dlogp(point, *data)[0])))  # forked: no pickling
    child.start()
    child.join(60)
    try:
        assert not child.is_alive(), "the forked child hung in the OpenMP density"
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0 and queue.get(timeout=5) == logp

