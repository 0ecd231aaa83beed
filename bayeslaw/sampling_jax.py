"""The JAX backend (``sampler="jax"``): NUTS in blackjax on the model's log density in JAX, float64.

The log density is the flat-vector density of ``bayeslaw.sampling.flat_graph``, translated to JAX by PyTensor's
JAX linker (``pymc.sampling.jax.get_jaxified_graph``). Warm-up (``warmup``: the step size and nutpie's low-rank
mass matrix, in Stan's windows) and NUTS (Hoffman & Gelman 2014; blackjax) run as one XLA program, the chains
vectorised with ``vmap``: they step in lockstep (each chain's tree as deep as it needs, the others idle), so one
program serves a CPU or one GPU. The data are arguments of the program, so a refit with the same law, priors,
table shape, chains, tune and draws reuses the compiled program. The traced program is saved with
``jax.export`` and XLA's compilation in JAX's persistent compilation cache, both under ``cache_dir()``: a fresh
process neither translates, traces nor compiles it again.

JAX is optional (``pip install bayeslaw[jax]``); importing bayeslaw does not import it. Using this backend
turns on JAX's float64 mode (``jax_enable_x64``) for the process.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pymc as pm
import xarray as xr

from bayeslaw.errors import BayeslawError
from bayeslaw.files import write_bytes_atomic
from bayeslaw.sampling import FlatGraph, data_values, flat_graph, value_shapes

CACHE_ENV = "BAYESLAW_JAX_CACHE"  # the folder of the exported programs and JAX's persistent compilation cache
MAX_TREE_DEPTH = 10  # as PyMC's and Stan's
# The first tuning steps, before the first mass matrix estimate, take deep trees (the unit or gradient-scaled
# metric against posterior sds from 5e-4 to 0.2): on the 240 Chinchilla runs 30 steps instead of Stan's 75 cut
# 500 tuning steps from 36,000 to 13,000 leapfrog steps (lockstep over 4 chains), 1.8 s to 0.6 s.
INITIAL_WINDOW = 30
TRACES: Counter = Counter()  # programs traced in this process, by the fit's key (tests count them)
COMPILES: Counter = Counter()  # programs compiled (or found in the persistent cache) in this process, by key


def cache_dir() -> Path:
    """Where programs and compilations are kept: ``$BAYESLAW_JAX_CACHE``, else ``$XDG_CACHE_HOME/bayeslaw/jax``
    (``~/.cache/bayeslaw/jax``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bayeslaw" / "jax"


def require_jax() -> None:
    """A BayeslawError naming the extra when JAX, blackjax or flatbuffers is not installed (without importing
    them)."""
    from importlib.util import find_spec

    missing = [name for name in ("jax", "blackjax", "flatbuffers") if find_spec(name) is None]
    if missing:
        raise BayeslawError(f"sampler='jax' needs {', '.join(missing)}, not installed: pip install bayeslaw[jax]")


def import_jax():
    """jax and blackjax, in float64, with the persistent compilation cache on (unless the user set one);
    a BayeslawError naming the extra when they are not installed."""
    require_jax()
    import blackjax
    import jax

    jax.config.update("jax_enable_x64", True)
    if jax.config.jax_compilation_cache_dir is None or os.environ.get(CACHE_ENV):
        folder = cache_dir()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:  # no cache: every process compiles, nothing else changes
            return jax, blackjax
        jax.config.update("jax_compilation_cache_dir", str(folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return jax, blackjax


@dataclass(frozen=True)
class JaxDensity:
    """log p (a scalar) and the constrained values (a list, one per free variable) as JAX functions of the flat
    unconstrained vector and the data, in ``data_names`` order."""

    logp: Callable
    constrain: Callable
    data_names: tuple[str, ...]
    value_names: tuple[str, ...]
    free_names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def ndim(self) -> int:
        return int(sum(np.prod(s, dtype=int) for s in self.shapes))


_PROGRAMS: dict[Any, Any] = {}


def jax_density(graph: FlatGraph) -> JaxDensity:
    """The model's log density and constraining map in JAX, from its flat graph."""
    import_jax()
    from pymc.sampling.jax import get_jaxified_graph

    inputs = [graph.flat, *graph.data]
    logp = get_jaxified_graph(inputs, [graph.logp])
    constrain = get_jaxified_graph(inputs, graph.constrained)
    return JaxDensity(lambda x, *data: logp(x, *data)[0], lambda x, *data: list(constrain(x, *data)),
                      graph.data_names, graph.value_names, graph.free_names, graph.shapes)


def program_digest(graph: FlatGraph, key: Any, signature: tuple, chains: int, tune: int, draws: int) -> str:
    """What identifies a program on disk: the printed graph of log p and the constrained values, the fit's key,
    the data's shapes and types, chains, tune and draws, this module's source and the versions of jax, jaxlib,
    blackjax, PyMC and PyTensor."""
    import blackjax
    import jax
    import jaxlib
    import pytensor
    from pytensor.printing import debugprint

    printed = debugprint([graph.logp, *graph.constrained], file="str", print_type=True, id_type="CHAR")
    parts = [printed, repr(key), repr(signature), repr((chains, tune, draws)), Path(__file__).read_text(),
             jax.__version__, jaxlib.__version__, blackjax.__version__, pm.__version__, pytensor.__version__]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def warmup(blackjax, logdensity: Callable, target_accept):
    """Window adaptation of the step size (dual averaging) and of nutpie's low-rank mass matrix, estimated from
    draws and gradients (Seyboldt et al., "Preconditioning Hamiltonian Monte Carlo by minimizing Fisher
    divergence"; blackjax's ``window_adaptation_low_rank``), starting from the diagonal the gradient at the
    initial point gives, with Stan's windows (Stan Reference Manual, "Automatic parameter tuning") after an
    initial fast window of ``INITIAL_WINDOW`` steps instead of 75."""
    from blackjax.adaptation.low_rank_adaptation import build_schedule, window_adaptation_low_rank

    def schedule(steps: int):
        return build_schedule(steps, initial_buffer_size=INITIAL_WINDOW)

    return window_adaptation_low_rank(blackjax.nuts, logdensity, target_acceptance_rate=target_accept,
                                      gradient_based_init=True, schedule_fn=schedule)


def build_program(density: JaxDensity, *, chains: int, tune: int, draws: int, label: Any = None) -> Callable:
    """The jitted program ``(key_data, positions, target_accept, data) -> (draws, stats)``: per chain (vmapped),
    ``tune`` steps of window adaptation then ``draws`` NUTS steps; the constrained values of every draw."""
    jax, blackjax = import_jax()
    import jax.numpy as jnp

    def one_chain(key, position, target_accept, data):
        def logdensity(x):
            return density.logp(x, *data)

        warm_key, sample_key = jax.random.split(key)
        if tune > 0:
            (state, params), _ = warmup(blackjax, logdensity, target_accept).run(warm_key, position, tune)
        else:  # no tuning: a unit mass matrix and a step size of ndim^(-1/4)
            params = {"step_size": jnp.asarray(density.ndim ** -0.25), "inverse_mass_matrix": jnp.ones(density.ndim)}
            state = blackjax.nuts.init(position, logdensity)
        kernel = blackjax.nuts(logdensity, max_num_doublings=MAX_TREE_DEPTH, **params)

        def step(state, step_key):
            state, info = kernel.step(step_key, state)
            return state, {"position": state.position, "lp": state.logdensity, "diverging": info.is_divergent,
                           "tree_depth": info.num_trajectory_expansions, "n_steps": info.num_integration_steps,
                           "acceptance_rate": info.acceptance_rate, "energy": info.energy}

        _, out = jax.lax.scan(step, state, jax.random.split(sample_key, draws))
        values = jax.vmap(lambda x: density.constrain(x, *data))(out.pop("position"))
        return values, out | {"step_size": jnp.broadcast_to(params["step_size"], (draws,))}

    def program(key_data, positions, target_accept, data):
        TRACES[label] += 1  # runs only while tracing
        keys = jax.random.wrap_key_data(key_data)
        return jax.vmap(one_chain, in_axes=(0, 0, None, None))(keys, positions, target_accept, data)

    return jax.jit(program)


_GRAPHS: dict[Any, FlatGraph] = {}


def graph_for(model: pm.Model, key: Any) -> FlatGraph:
    """The model's flat graph, kept per key and value shapes (building it takes half a second)."""
    cache_key = None if key is None else (key, value_shapes(model))
    if cache_key is None or cache_key not in _GRAPHS:
        graph = flat_graph(model)
        if cache_key is None:
            return graph
        _GRAPHS[cache_key] = graph
    return _GRAPHS[cache_key]


def dimension_lengths(values: tuple[np.ndarray, ...]) -> list[int]:
    """Positions of the dimension lengths among the data (0-d integers, e.g. the number of runs of a learning-curve
    table): constants of the program, so they identify it with the data's shapes."""
    return [i for i, v in enumerate(values) if v.ndim == 0 and np.issubdtype(v.dtype, np.integer)]


def with_static_shapes(graph: FlatGraph, values: tuple[np.ndarray, ...]) -> FlatGraph:
    """The graph with the data's shapes fixed and its dimension lengths as constants, the other data its inputs:
    XLA needs every shape concrete, and shapes PyTensor computes from a traced length or from the data at run time
    are not (learning curves' run-scale latent). Built only when a program is traced."""
    import pytensor
    import pytensor.tensor as pt

    static = dimension_lengths(values)
    replace = {graph.data[i]: pt.constant(values[i], dtype=graph.data[i].dtype) for i in static}
    kept = [i for i in range(len(values)) if i not in static]
    data = [pt.tensor(dtype=graph.data[i].dtype, shape=values[i].shape, name=graph.data[i].name) for i in kept]
    replace |= {graph.data[i]: var for i, var in zip(kept, data, strict=True)}
    logp, *constrained = pytensor.clone_replace([graph.logp, *graph.constrained], replace)
    return FlatGraph(graph.flat, data, logp, None, constrained, tuple(graph.data_names[i] for i in kept),
                     graph.value_names, graph.free_names, graph.shapes)


def exported_program(graph: FlatGraph, key: Any, signature: tuple, args: tuple, chains: int, tune: int,
                     draws: int):
    """The sampling program as a ``jax.export.Exported``: read from ``cache_dir()/programs`` when there, else
    built (the density translated to JAX, the program traced) and written there, so that a fresh process
    neither translates nor traces; XLA's compilation is then found in JAX's persistent cache."""
    jax, _ = import_jax()
    path = cache_dir() / "programs" / f"{program_digest(graph, key, signature, chains, tune, draws)}.jax"
    if path.is_file():
        try:
            return jax.export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # written by another version or damaged: rebuilt below
            pass
    program = build_program(jax_density(graph), chains=chains, tune=tune, draws=draws, label=key)
    exported = jax.export.export(program)(*args)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, exported.serialize())
    except (OSError, BayeslawError):  # a cache that cannot be written only costs the next process a trace
        pass
    return exported


def sample_jax(model: pm.Model, *, key: Any, chains: int, draws: int, tune: int, seed: int, target_accept: float,
               progress: bool) -> tuple[xr.Dataset, xr.Dataset, dict[str, float]]:
    """Sample with blackjax's NUTS in JAX, chains vectorised (module docstring); ``progress`` is not shown (the
    program runs as one call). Returns posterior, stats,
    timings (``compile_seconds``: importing JAX, then building, tracing and compiling the program, or finding it
    in memory or on disk)."""
    from pymc.initial_point import make_initial_point_fn

    t0 = time.perf_counter()
    jax, _ = import_jax()
    graph = graph_for(model, key)
    shapes = dict(zip(graph.value_names, graph.shapes, strict=True))
    given = tuple(np.asarray(v) for v in data_values(model, graph.data_names))
    static = dimension_lengths(given)  # constants of the program: not its arguments, part of its key
    lengths = tuple(int(given[i]) for i in static)
    data = tuple(v for i, v in enumerate(given) if i not in static)
    initial = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs), return_transformed=True)
    chain_seeds = np.random.SeedSequence(seed).generate_state(chains)
    positions = np.stack([np.concatenate([np.ravel(point[name]) for name in shapes])
                          for point in (initial(int(s)) for s in chain_seeds)]).astype("float64")
    key_data = np.asarray(jax.random.key_data(jax.random.split(jax.random.key(seed), chains)))
    args = (key_data, positions, np.float64(target_accept), data)
    signature = (tuple((v.shape, v.dtype.str) for v in data), lengths)
    program_key = (key, graph.shapes, signature, chains, tune, draws)
    compiled = _PROGRAMS.get(program_key) if key is not None else None
    if compiled is None:
        exported = exported_program(with_static_shapes(graph, given), key, signature, args, chains, tune, draws)
        compiled = jax.jit(exported.call).lower(*args).compile()
        COMPILES[key] += 1
        if key is not None:
            _PROGRAMS[program_key] = compiled
    compile_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    values, stats = jax.block_until_ready(compiled(*args))
    sample_seconds = time.perf_counter() - t1
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = xr.Dataset({name: (("chain", "draw", *[f"{name}_dim_{i}" for i in range(len(shape))]),
                                   np.asarray(v, dtype="float64").reshape(chains, draws, *shape))
                            for name, v, shape in zip(graph.free_names, values, graph.shapes, strict=True)},
                           coords=coords)
    stats = {name: np.asarray(v) for name, v in stats.items()}
    stats["reached_max_treedepth"] = stats["tree_depth"] >= MAX_TREE_DEPTH
    sample_stats = xr.Dataset({name: (("chain", "draw"), v) for name, v in stats.items()}, coords=coords)
    return posterior, sample_stats, {"compile_seconds": compile_seconds, "sample_seconds": sample_seconds}
