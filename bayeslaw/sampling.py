"""NUTS backends: nutpie (default) and PyMC's own sampler.

The nutpie backend hands nutpie a log density and gradient compiled by PyTensor's C backend,
through nutpie's ``from_pyfunc``. PyTensor caches compiled C code on disk, so a law compiles
once per machine (about 10 s) and later fits start in about a second; nutpie's own numba path
recompiles in every process (about 8 to 13 s here). Data and pivots are inputs of the compiled
function, and compiled functions are also kept in memory per (law, priors, likelihood).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pytensor.compile.sharedvalue import SharedVariable

try:
    from pytensor.graph.traversal import graph_inputs
except ImportError:  # pytensor < 2.32
    from pytensor.graph.basic import graph_inputs

from bayeslaw.fit import SAMPLERS  # noqa: F401 (defined beside fit(): checking a name needs no PyMC)


@dataclass(frozen=True)
class CompiledDensity:
    """log p and its gradient on a flat vector of the model's unconstrained values."""

    logp_dlogp: Callable
    constrain: Callable
    data_names: tuple[str, ...]
    value_names: tuple[str, ...]
    value_shapes: tuple[tuple[int, ...], ...]
    free_names: tuple[str, ...]
    free_shapes: tuple[tuple[int, ...], ...]


_CACHE: dict[Any, CompiledDensity] = {}


@dataclass(frozen=True)
class FlatGraph:
    """The model's log p, its gradient and the constrained values as PyTensor graphs of one flat vector of
    unconstrained values (``flat``) and the data containers (``data``, in place of the shared variables)."""

    flat: Any
    data: list
    logp: Any
    grad: Any
    constrained: list
    data_names: tuple[str, ...]
    value_names: tuple[str, ...]
    free_names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]


def value_shapes(model: pm.Model) -> tuple[tuple[int, ...], ...]:
    """Shapes of the model's unconstrained values, in the order of its free variables."""
    point = model.initial_point()
    return tuple(tuple(np.shape(point[model.rvs_to_values[rv].name])) for rv in model.free_RVs)


def flat_graph(model: pm.Model) -> FlatGraph:
    """log p, its gradient and the constrained values on one flat vector, data as inputs (:class:`FlatGraph`)."""
    value_vars = [model.rvs_to_values[rv] for rv in model.free_RVs]
    shapes = value_shapes(model)
    flat = pt.dvector("flat")
    replace, start = {}, 0
    for var, shape in zip(value_vars, shapes, strict=True):
        size = int(np.prod(shape, dtype=int))
        replace[var] = flat[start:start + size].reshape(shape)
        start += size
    logp = model.logp()
    grad = pt.concatenate([g.ravel() for g in pytensor.grad(logp, value_vars)])
    constrained = []
    for rv, value in zip(model.free_RVs, value_vars, strict=True):
        transform = model.rvs_to_transforms.get(rv)
        constrained.append(value if transform is None else transform.backward(value, *rv.owner.inputs))
    outputs = [logp, grad, *constrained]
    shared = [v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)]
    names = [v.name for v in shared]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:  # data_values finds each input by name: a data container named like a dimension gets its value
        raise ValueError(f"the model's data containers and dimensions share the names {', '.join(clashes)}")
    data_inputs = [v.type(name=v.name) for v in shared]
    replace |= dict(zip(shared, data_inputs, strict=True))
    logp, grad, *constrained = pytensor.clone_replace(outputs, replace)
    return FlatGraph(flat, data_inputs, logp, grad, constrained, tuple(v.name for v in shared),
                     tuple(v.name for v in value_vars), tuple(rv.name for rv in model.free_RVs), shapes)


def compile_density(model: pm.Model, key: Any = None) -> CompiledDensity:
    """Compile (or reuse) log p, its gradient and the map back to constrained values.

    Reused under ``key`` and the shapes of the free variables: a model with a latent per run (learning
    curves' run scales) has as many values as the table has runs."""
    if key is not None:
        key = (key, value_shapes(model))
        if key in _CACHE:
            return _CACHE[key]
    graph = flat_graph(model)
    inputs = [graph.flat, *graph.data]
    fn = pytensor.function(inputs, [graph.logp, graph.grad], trust_input=True, on_unused_input="ignore")
    constrain = pytensor.function(inputs, graph.constrained, trust_input=True, on_unused_input="ignore")
    compiled = CompiledDensity(
        logp_dlogp=fn,
        constrain=constrain,
        data_names=graph.data_names,
        value_names=graph.value_names,
        value_shapes=graph.shapes,
        free_names=graph.free_names,
        free_shapes=graph.shapes,
    )
    if key is not None:
        _CACHE[key] = compiled
    return compiled


def data_values(model: pm.Model, names: tuple[str, ...]) -> list[np.ndarray]:
    """Current values of the model's data containers and dimension lengths, by name."""
    shared = {**model.dim_lengths, **model.named_vars}
    return [shared[name].get_value() for name in names]


def sample_nutpie(model: pm.Model, *, key: Any, chains: int, draws: int, tune: int, seed: int,
                  target_accept: float, progress: bool) -> tuple[xr.Dataset, xr.Dataset, dict[str, float]]:
    """Sample with nutpie (low-rank modified mass matrix adaptation). Returns posterior, stats, timings."""
    import nutpie
    from nutpie.compiled_pyfunc import from_pyfunc
    from pymc.initial_point import make_initial_point_fn

    t0 = time.perf_counter()
    density = compile_density(model, key)
    data = data_values(model, density.data_names)
    fn, constrain = density.logp_dlogp, density.constrain
    initial = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs), return_transformed=True)
    compile_seconds = time.perf_counter() - t0

    def make_logp():
        def logp(x):
            value, grad = fn(x, *data)
            return float(value), grad
        return logp

    def make_expand(seed1, seed2, chain):
        def expand(x):
            values = constrain(x, *data)
            return {name: np.asarray(v, dtype="float64").reshape(shape)
                    for name, v, shape in zip(density.free_names, values, density.free_shapes, strict=True)}
        return expand

    def make_initial(seed):
        point = initial(int(seed) % (2**32))
        return np.concatenate([np.ravel(point[name]) for name in density.value_names]).astype("float64")

    ndim = int(sum(np.prod(s, dtype=int) for s in density.value_shapes))
    compiled = from_pyfunc(ndim, make_logp, make_expand, [np.dtype("float64")] * len(density.free_names),
                           list(density.free_shapes), list(density.free_names),
                           make_initial_point_fn=make_initial)
    t1 = time.perf_counter()
    # one core: the callbacks hold the GIL, so more threads only contend for it
    trace = nutpie.sample(compiled, chains=chains, draws=draws, tune=tune, seed=seed, cores=1,
                          progress_bar=progress, low_rank_modified_mass_matrix=True,
                          target_accept=target_accept, save_warmup=False)
    sample_seconds = time.perf_counter() - t1
    stats = trace.sample_stats.assign(reached_max_treedepth=trace.sample_stats["maxdepth_reached"])  # PyMC's name
    return trace.posterior, stats, {"compile_seconds": compile_seconds, "sample_seconds": sample_seconds}


def sample_pymc(model: pm.Model, *, chains: int, draws: int, tune: int, seed: int, target_accept: float,
                progress: bool) -> tuple[xr.Dataset, xr.Dataset, dict[str, float]]:
    """Sample with ``pm.sample`` (NUTS with PyMC's defaults, diagonal mass matrix)."""
    t0 = time.perf_counter()
    names = [rv.name for rv in model.free_RVs]
    with model:
        trace = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                          target_accept=target_accept, progressbar=progress, var_names=names,
                          compute_convergence_checks=False)
    elapsed = time.perf_counter() - t0
    return trace.posterior, trace.sample_stats, {"compile_seconds": float("nan"), "sample_seconds": elapsed}
