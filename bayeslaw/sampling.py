"""NUTS backends: nutpie (default) and PyMC's own sampler.

By default nutpie samples natively (``bayeslaw.native``, :func:`use_native`): the density compiled by PyTensor's
numba backend, called by nutpie through a C entry point with no Python in the loop, so its chains run on every
core; PyTensor keeps the numba code on disk, so a law compiles once per machine. With ``BAYESLAW_NATIVE=0`` (or
where numba cannot compile or cache a density) nutpie calls the log density and gradient compiled by PyTensor's C
backend through Python callbacks (``from_pyfunc``), one chain at a time; PyTensor caches the C code on disk too.
Data and pivots are inputs of the compiled function, and compiled functions are also kept in memory per (law,
priors, likelihood).

Large tables are sampled in whitened coordinates (:func:`laplace_whitening`): x = m + L y, with m the posterior
mode and L L^T the inverse Hessian there (the Laplace approximation). The map is affine, so its Jacobian is a
constant and the posterior of x is exactly the model's; NUTS only starts where the draws are and with the scales
they have, instead of spending its warm-up finding them, which costs most where every gradient is expensive.
Through callbacks, on tables of ``PARALLEL_ROWS`` rows or more the C density's elementwise loops run on every core
(PyTensor's OpenMP loops; the values are the same bit for bit), as the callbacks' chains cannot.
"""

from __future__ import annotations

import os
import threading
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

from bayeslaw import _malloc, _powers
from bayeslaw._threads import CORES
from bayeslaw.errors import BayeslawError
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
    parallel: bool = False  # the gradient's elementwise loops run on every core (tables of PARALLEL_ROWS rows)
    native: Any = None  # bayeslaw.native.NativeDensity: machine code nutpie calls directly


_CACHE: dict[Any, CompiledDensity] = {}

# rows from which the compiled density's elementwise loops are shared among the cores (OpenMP). Measured on the
# chinchilla law's log p and gradient, 2 cores: 0.73x the one-core time at 1e3 rows, 0.59x at 1e4, 0.66x at 1e5.
# Below 1e4 rows a fit's time is mostly the sampler's own per-call cost, and tests run fits side by side.
PARALLEL_ROWS = 10_000
_FORKS_GUARDED = False


def _serial_openmp_in_forked_child() -> None:
    """GNU OpenMP's threads do not survive a fork: a forked child's next parallel loop would wait for them forever
    (measured: a child evaluating a large table's density hung). One OpenMP thread runs the loops serially."""
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().limit(limits=1, user_api="openmp")


def _guard_forks() -> None:
    """Once per process, before its first OpenMP density: forked children run OpenMP loops on one thread."""
    global _FORKS_GUARDED
    if not _FORKS_GUARDED and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_serial_openmp_in_forked_child)
        _FORKS_GUARDED = True


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


def table_rows(model: pm.Model) -> int:
    """The rows of the model's table: the length of its longest data container."""
    return max((np.size(v.get_value()) for v in model.named_vars.values() if isinstance(v, SharedVariable)),
               default=1)


def compile_density(model: pm.Model, key: Any = None) -> CompiledDensity:
    """Compile (or reuse) log p, its gradient and the map back to constrained values.

    Reused under ``key``, the shapes of the free variables (a model with a latent per run, learning curves'
    run scales, has as many values as the table has runs) and whether the table has ``PARALLEL_ROWS`` rows,
    from which the gradient's loops run on every core."""
    parallel = table_rows(model) >= PARALLEL_ROWS
    if key is not None:
        key = (key, value_shapes(model), parallel)
        if key in _CACHE:
            return _CACHE[key]
    graph = flat_graph(model)
    inputs = [graph.flat, *graph.data]
    if parallel:
        _guard_forks()
    mode = pytensor.compile.mode.get_default_mode().excluding(*_powers.SKIPPED_REWRITES)
    with pytensor.config.change_flags(openmp=parallel, openmp_elemwise_minsize=PARALLEL_ROWS):
        fn = pytensor.function(inputs, [graph.logp, graph.grad], mode=mode, trust_input=True,
                               on_unused_input="ignore")
    constrain = pytensor.function(inputs, graph.constrained, trust_input=True, on_unused_input="ignore")
    compiled = _compiled(graph, fn, constrain, parallel=parallel)
    if key is not None:
        _CACHE[key] = compiled
    return compiled


def _compiled(graph: FlatGraph, logp_dlogp: Callable, constrain: Callable, **backend: Any) -> CompiledDensity:
    """A :class:`CompiledDensity` of ``graph``'s names and shapes with these compiled functions."""
    return CompiledDensity(logp_dlogp=logp_dlogp, constrain=constrain, data_names=graph.data_names,
                           value_names=graph.value_names, value_shapes=graph.shapes, free_names=graph.free_names,
                           free_shapes=graph.shapes, **backend)


def use_native() -> bool:
    """Whether to sample natively (``bayeslaw.native``): by default, where numba is installed; ``BAYESLAW_NATIVE=0``
    (or ``sampling.NATIVE = "0"``) samples through the C density's callbacks instead. Measured on every law's
    4-size ladder (defaults, sampler seeds 0-9, 250 fits each way): 5 fits failed the convergence checks natively,
    4 through callbacks; the native fits of seeds 4-9 took 0.18x the time (ARCHITECTURE.md)."""
    from importlib.util import find_spec

    if NATIVE not in ("0", "1"):
        raise BayeslawError(f"BAYESLAW_NATIVE must be 1 (native where numba is installed) or 0, got {NATIVE!r}")
    return NATIVE == "1" and find_spec("numba") is not None


NATIVE = os.environ.get("BAYESLAW_NATIVE", "1")  # "0": sample through the C density's callbacks
_NOT_NATIVE: set = set()  # keys whose density numba cannot cache: compiled in C instead


def compile_native_density(model: pm.Model, key: Any = None) -> CompiledDensity:
    """As :func:`compile_density`, compiled by numba with nutpie's entry points (``CompiledDensity.native``);
    the C density where numba cannot compile or cache it (said once per key in a warning)."""
    from bayeslaw.native import compile_native

    full_key = None if key is None else (key, value_shapes(model), "native")
    if full_key is not None and full_key in _CACHE:
        return _CACHE[full_key]
    if key is not None and key in _NOT_NATIVE:
        return compile_density(model, key)
    graph = flat_graph(model)
    inputs = [graph.flat, *graph.data]
    try:
        native = compile_native(inputs, [graph.logp, graph.grad], graph.constrained,
                                data_values(model, graph.data_names))
    except (BayeslawError, NotImplementedError, ImportError) as error:  # ImportError: a PyTensor without a numba cache
        import warnings

        _NOT_NATIVE.add(key)
        warnings.warn(f"sampling through Python callbacks of the C-compiled density: {error}", stacklevel=3)
        return compile_density(model, key)
    compiled = _compiled(graph, native.function, native.constrain, native=native)
    if full_key is not None:
        _CACHE[full_key] = compiled
    return compiled


WHITENED_STEP = 0.5  # the leapfrog step NUTS starts from in whitened coordinates


@dataclass(frozen=True)
class Whitening:
    """x = mode + factor @ y: unconstrained values from whitened coordinates y (``factor`` lower triangular,
    factor factor^T the inverse of -Hessian of log p at ``mode``). ``gradients``: the evaluations it took."""

    mode: np.ndarray
    factor: np.ndarray
    gradients: int
    seconds: float

    def unwhiten(self, y: np.ndarray) -> np.ndarray:
        """The unconstrained values x = mode + factor @ y."""
        return self.mode + self.factor @ y


def laplace_whitening(logp_dlogp: Callable, start: np.ndarray, scale: float) -> Whitening | None:
    """The Laplace approximation of log p at its mode, for :class:`Whitening`; None when it cannot be had.

    The mode: L-BFGS from ``start`` on -log p / ``scale`` (the rows: per-row values keep the first step of the
    search at the size of the parameters whatever the table's size). The Hessian: central differences of the
    gradient (2 evaluations per dimension, step 1e-5), symmetrised. None when the search fails, or the Hessian
    is not negative definite there (a ridge or a boundary mode): the fit then samples without whitening.
    """
    from scipy import optimize

    t0 = time.perf_counter()
    count = [0]

    def evaluate(x):
        count[0] += 1
        value, grad = logp_dlogp(x)
        return float(value), np.asarray(grad, dtype=float)

    def objective(x):
        try:
            value, grad = evaluate(x)
        except (ArithmeticError, ValueError):  # PyTensor's parameter checks raise ValueError off the support
            return np.inf, np.zeros_like(x)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(x)
        return -value / scale, -grad / scale

    result = optimize.minimize(objective, np.asarray(start, dtype=float), jac=True, method="L-BFGS-B")
    if not result.success or not np.isfinite(result.fun):
        return None
    mode, ndim, step = result.x, len(result.x), 1e-5
    hessian = np.empty((ndim, ndim))
    for i in range(ndim):
        shift = np.zeros(ndim)
        shift[i] = step
        hessian[i] = -(evaluate(mode + shift)[1] - evaluate(mode - shift)[1]) / (2 * step)
    hessian = 0.5 * (hessian + hessian.T)
    if not np.all(np.isfinite(hessian)):
        return None
    values, vectors = np.linalg.eigh(hessian)
    if values.min() <= 0:
        return None
    covariance = (vectors / values) @ vectors.T
    factor = np.linalg.cholesky(0.5 * (covariance + covariance.T))
    return Whitening(mode, factor, count[0], time.perf_counter() - t0)


def data_values(model: pm.Model, names: tuple[str, ...]) -> list[np.ndarray]:
    """Current values of the model's data containers and dimension lengths, by name."""
    shared = {**model.dim_lengths, **model.named_vars}
    return [shared[name].get_value() for name in names]


def sample_nutpie(model: pm.Model, *, key: Any, chains: int, draws: int, tune: int, seed: int,
                  target_accept: float, progress: bool, whiten: bool = False, native: bool | None = None
                  ) -> tuple[xr.Dataset, xr.Dataset, dict[str, Any]]:
    """Sample with nutpie (low-rank modified mass matrix adaptation). Returns posterior, stats, timings.

    ``native`` (default: :func:`use_native`): nutpie calls the density's machine code directly
    (``bayeslaw.native``), its chains on every core; otherwise through Python callbacks of the C-compiled density,
    one chain at a time. The draws are the same Markov chains either way up to floating-point rounding.
    With ``whiten``, in the coordinates of :func:`laplace_whitening` (the chains start at the mode, jittered
    uniformly within one standard deviation of the approximation along each whitened axis); the timings then
    say whether it was found (``whitened``) and what it cost."""
    import nutpie
    from pymc.initial_point import make_initial_point_fn

    t0 = time.perf_counter()
    native = use_native() if native is None else native
    density = compile_native_density(model, key) if native else compile_density(model, key)
    native = density.native is not None  # False where numba could not compile or cache it
    data = data_values(model, density.data_names)
    fn = density.logp_dlogp
    initial = make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs), return_transformed=True)
    compile_seconds = time.perf_counter() - t0

    def flat_point(point):
        return np.concatenate([np.ravel(point[name]) for name in density.value_names]).astype("float64")

    extra: dict[str, Any] = {}
    whitening = None
    if whiten:
        start = flat_point(make_initial_point_fn(model=model, jitter_rvs=set(), return_transformed=True)(seed))
        whitening = laplace_whitening(lambda x: fn(x, *data), start, float(table_rows(model)))
        extra = {"whitened": whitening is not None}
        if whitening is not None:
            extra |= {"whitening_gradients": whitening.gradients, "whitening_seconds": whitening.seconds}

    lock = threading.Lock()

    def make_initial(seed):
        if whitening is not None:
            return np.random.default_rng(int(seed) % (2**32)).uniform(-1.0, 1.0, len(whitening.mode))
        with lock:  # native chains ask on their own threads; a compiled PyTensor function is not thread-safe
            return flat_point(initial(int(seed) % (2**32)))

    ndim = int(sum(np.prod(s, dtype=int) for s in density.value_shapes))
    if table_rows(model) >= _malloc.LARGE_ROWS:  # each gradient's temporaries reused, not faulted in anew
        _malloc.keep_freed_memory()
    if native:
        from bayeslaw.native import nutpie_model

        compiled = nutpie_model(density.native, data, whitening, ndim, make_initial)
    else:
        compiled = _callback_model(density, data, whitening, ndim, make_initial)
    t1 = time.perf_counter()
    # whitened, the posterior's scales are about 1 in every direction: the step size starts near a normal's
    # (nutpie's own start, 0.1, takes tens of warm-up steps to grow, each with trees 4 times deeper)
    start_step = {} if whitening is None else {"initial_step": WHITENED_STEP}
    # callbacks hold the GIL, so their chains run on one core; native chains run on every core
    cores = min(chains, CORES) if native else 1
    trace = nutpie.sample(compiled, chains=chains, draws=draws, tune=tune, seed=seed, cores=cores,
                          progress_bar=progress, low_rank_modified_mass_matrix=True,
                          target_accept=target_accept, save_warmup=False, **start_step)
    posterior = trace.posterior
    if native:
        from bayeslaw.native import constrained_draws

        posterior = constrained_draws(posterior, density, data, whitening)
    sample_seconds = time.perf_counter() - t1
    stats = trace.sample_stats.assign(reached_max_treedepth=trace.sample_stats["maxdepth_reached"])  # PyMC's name
    timings = {"compile_seconds": compile_seconds, "sample_seconds": sample_seconds,
               "parallel_gradient": density.parallel, "native": native}
    return posterior, stats, timings | extra


def _callback_model(density: CompiledDensity, data: list[np.ndarray], whitening: Whitening | None, ndim: int,
                    make_initial: Callable):
    """nutpie's model of Python callbacks into the C-compiled density (unwhitening x = mode + factor y)."""
    from nutpie.compiled_pyfunc import from_pyfunc

    fn, constrain = density.logp_dlogp, density.constrain

    def make_logp():
        if whitening is None:
            def logp(x):
                value, grad = fn(x, *data)
                return float(value), grad
            return logp
        unwhiten, factor_t = whitening.unwhiten, np.ascontiguousarray(whitening.factor.T)

        def logp_whitened(y):
            value, grad = fn(unwhiten(y), *data)
            return float(value), factor_t @ grad  # the chain rule through x = mode + factor @ y
        return logp_whitened

    def make_expand(seed1, seed2, chain):
        def expand(x):
            values = constrain(x if whitening is None else whitening.unwhiten(x), *data)
            return {name: np.asarray(v, dtype="float64").reshape(shape)
                    for name, v, shape in zip(density.free_names, values, density.free_shapes, strict=True)}
        return expand

    return from_pyfunc(ndim, make_logp, make_expand, [np.dtype("float64")] * len(density.free_names),
                       list(density.free_shapes), list(density.free_names), make_initial_point_fn=make_initial)


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
