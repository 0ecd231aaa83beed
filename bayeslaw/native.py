"""Native sampling: nutpie calls a machine-code log density directly, with no Python in the loop.

The model's log p, gradient and constrained values are compiled by PyTensor's numba backend, whose compiled
code PyTensor keeps on disk under a key of the graph. nutpie takes a C function pointer of a fixed signature;
the pointer here is a small numba ``cfunc`` that reads the data arrays' addresses and shapes from a table of
integers (nutpie's ``user_data``) and calls the compiled density. Its source is generated once per kind of
model (how many data inputs, their dtypes and ranks) and cached on disk under a key that includes the density's
key, so a fresh process loads both from disk instead of compiling them (the cost nutpie's own numba path pays
in every process: its wrappers capture the data, which numba cannot cache).

Without Python in the loop nutpie's chains run on every core at once, each call costs the arithmetic alone, and
no call takes the GIL. Draws are stored unconstrained (and, when whitened, in whitened coordinates) and mapped
to the model's values after sampling.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

NATIVE_VERSION = 1  # part of every cache key: bump when the generated wrappers change


def _register_digamma() -> None:
    """A numba digamma for PyTensor's Psi, so that graphs holding it (Student-t's nu gradient) are cached on disk.

    PyTensor's numba backend calls scipy's cython ``psi`` through a function pointer, which numba cannot cache:
    every process would recompile the whole graph (about 2 s). Here: recurrence psi(x) = psi(x + 1) - 1/x up to
    x >= 10, then the asymptotic series psi(x) = ln x - 1/(2x) - sum_k B_2k / (2k x^2k) to k = 7 (Abramowitz and
    Stegun 6.3.5, 6.3.18); reflection psi(1 - x) - psi(x) = pi cot(pi x) for x < 0 (6.3.7). Within 5e-15 of
    scipy's relative to max(1, |psi|) for x > 0."""
    from pytensor.link.numba.dispatch import basic as numba_basic
    from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
    from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key
    from pytensor.scalar.math import Psi

    @register_funcify_and_cache_key(Psi)
    def numba_funcify_psi(op, node, **kwargs):
        @numba_basic.numba_njit
        def digamma(x):
            x = float(x)
            if x <= 0.0 and x == math.floor(x):
                return math.nan
            result = 0.0
            if x < 0.0:
                result -= math.pi / math.tan(math.pi * x)
                x = 1.0 - x
            while x < 10.0:
                result -= 1.0 / x
                x += 1.0
            inv2 = 1.0 / (x * x)
            series = inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (
                1.0 / 240 - inv2 * (1.0 / 132 - inv2 * (691.0 / 32760 - inv2 / 12.0))))))
            return result + math.log(x) - 0.5 / x - series

        return digamma, scalar_op_cache_key(op, cache_version=f"bayeslaw-{NATIVE_VERSION}")


_READY = False


def _ready() -> None:
    """Register the digamma once per process, before the first numba compile (it replaces PyTensor's numba code for
    Psi in every graph this process compiles with numba, its own or not)."""
    global _READY
    if not _READY:
        _register_digamma()
        _READY = True


@dataclass(frozen=True)
class NativeDensity:
    """log p and its gradient (``function``) and the constrained values (``constrain``) compiled by numba, both
    PyTensor functions of (flat values, *data), and nutpie's C entry points: ``logp`` (int64(uint64 dim, double *x,
    double *grad, double *logp, int64 *table)) and ``expand`` (a copy of x). ``dtypes``: of the data inputs, as the
    entry point reads them."""

    function: Any
    constrain: Any
    logp: Any
    expand: Any
    dtypes: tuple[str, ...]


def _wrapper_source(ranks: Sequence[int], dtypes: Sequence[str]) -> str:
    """The logp cfunc's source for data inputs of these ranks and dtypes.

    The table (int64): [whitened, address of mode, address of factor, then per data input its address and
    its shape]. Whitened, x = mode + factor y and the gradient returned is factor^T dlogp/dx."""
    lines = [
        "def bayeslaw_native_logp(dim, y_ptr, grad_ptr, logp_ptr, table_ptr):",
        "    table = numba.carray(table_ptr, (TABLE,), np.int64)",
        "    y = numba.carray(y_ptr, (dim,))",
        "    out = numba.carray(grad_ptr, (dim,))",
        "    if table[0]:",
        "        mode = numba.carray(as_pointer(table[1]), (dim,), np.float64)",
        "        factor = numba.carray(as_pointer(table[2]), (dim, dim), np.float64)",
        "        x = mode.copy()",
        "        for i in range(dim):",
        "            for j in range(i + 1):",
        "                x[i] += factor[i, j] * y[j]",
        "    else:",
        "        x = y.copy()",
    ]
    names, slot = [], 3
    for i, (rank, dtype) in enumerate(zip(ranks, dtypes, strict=True)):
        shape = ", ".join(f"table[{slot + 1 + k}]" for k in range(rank))
        shape = f"({shape},)" if rank == 1 else f"({shape})"
        lines.append(f"    d{i} = numba.carray(as_pointer(table[{slot}]), {shape}, np.{dtype})")
        names.append(f"d{i}")
        slot += 1 + rank
    args = ", ".join(["x", *names])
    lines += [
        "    try:",
        f"        outputs = density({args})",
        "    except Exception:",
        "        return 1",
        "    value = outputs[0][()]",
        "    grad = outputs[1]",
        "    if table[0]:",
        "        for j in range(dim):",
        "            total = 0.0",
        "            for i in range(j, dim):",
        "                total += factor[i, j] * grad[i]",
        "            out[j] = total",
        "    else:",
        "        out[:] = grad",
        "    logp = numba.carray(logp_ptr, (1,))",
        "    logp[0] = value",
        "    if not math.isfinite(value):",
        "        return 4",
        "    for j in range(dim):",
        "        if not math.isfinite(out[j]):",
        "            return 3",
        "    return 0",
    ]
    return "\n".join(lines).replace("TABLE", str(slot))


def _expand_source() -> str:
    return "\n".join([
        "def bayeslaw_native_expand(dim, expanded, x_ptr, out_ptr, table_ptr):",
        "    x = numba.carray(x_ptr, (dim,))",
        "    out = numba.carray(out_ptr, (expanded,))",
        "    out[:] = x",
        "    return 0",
    ])


def _as_pointer_intrinsic():
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def as_pointer(typingctx, address):
        """The address held in an int64, as a void pointer (for numba.carray)."""
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], cgutils.voidptr_t)
        return types.voidptr(address), codegen

    return as_pointer


_AS_POINTER = None
_EXPAND = None


def _cfunc(source: str, name: str, signature, key: str, env: dict[str, Any]):
    """A numba cfunc from generated source, cached on disk in PyTensor's numba cache under ``key``."""
    import warnings

    import numba
    from pytensor.link.numba.cache import compile_numba_function_src

    function = compile_numba_function_src(source, name, {"__name__": __name__, **env}, cache_key=key)
    with warnings.catch_warnings():
        warnings.simplefilter("error", numba.NumbaWarning)  # a wrapper numba cannot cache is a bug here
        return numba.cfunc(signature, cache=True)(function)


def compile_native(inputs: Sequence[Any], outputs: Sequence[Any], constrained: Sequence[Any],
                   data: Sequence[np.ndarray]) -> NativeDensity:
    """Compile ``outputs`` (log p and its gradient) and ``constrained`` (the model's values) of ``inputs`` (the flat
    vector, then the data) with numba, and nutpie's entry points for data like ``data``."""
    global _AS_POINTER, _EXPAND
    _ready()
    import numba
    import pytensor
    from numba import types
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    from bayeslaw import _powers

    # IEEE arithmetic, not PyTensor's fastmath default: with fastmath the code compiled in a process and the code
    # loaded from the cache gave different bits, so a seed's draws depended on whether the cache was warm
    with pytensor.config.change_flags(numba__fastmath=False):
        mode = pytensor.compile.mode.get_mode("NUMBA").excluding(*_powers.SKIPPED_REWRITES)
        function = pytensor.function(list(inputs), list(outputs), mode=mode, trust_input=True,
                                     on_unused_input="ignore")
        constrain = pytensor.function(list(inputs), list(constrained), mode="NUMBA", trust_input=True,
                                      on_unused_input="ignore")
    jitted = function.vm.jit_fn
    key = CACHED_SRC_FUNCTIONS.get(jitted.py_func)
    if key is None:
        from bayeslaw.errors import BayeslawError

        raise BayeslawError("PyTensor's numba backend cannot cache this model's density (an operation without a "
                            "cache key), so every process would compile it again")
    ranks = tuple(np.ndim(d) for d in data)
    dtypes = tuple(np.asarray(d).dtype.name for d in data)
    if _AS_POINTER is None:
        _AS_POINTER = _as_pointer_intrinsic()
    env = {"numba": numba, "np": np, "math": math, "as_pointer": _AS_POINTER, "density": jitted}
    logp_signature = types.int64(types.uint64, types.CPointer(types.double), types.CPointer(types.double),
                                 types.CPointer(types.double), types.CPointer(types.int64))
    source = _wrapper_source(ranks, dtypes)
    wrapper_key = hashlib.sha256(f"{NATIVE_VERSION}|{key}|{source}".encode()).hexdigest()
    logp = _cfunc(source, "bayeslaw_native_logp", logp_signature, f"bayeslaw-logp-{wrapper_key}", env)
    if _EXPAND is None:
        expand_signature = types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                                       types.CPointer(types.double), types.voidptr)
        _EXPAND = _cfunc(_expand_source(), "bayeslaw_native_expand", expand_signature,
                         f"bayeslaw-expand-{NATIVE_VERSION}", {"numba": numba, "np": np})
    return NativeDensity(function, constrain, logp, _EXPAND, dtypes)


def native_table(density: NativeDensity, data: Sequence[np.ndarray], whitening: Any = None
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The int64 table the logp cfunc reads, and the arrays it points into (keep them alive while sampling)."""
    arrays = [np.require(d, dtype=dtype, requirements="C") for d, dtype in zip(data, density.dtypes, strict=True)]
    entries = [0, 0, 0]
    if whitening is not None:
        mode = np.ascontiguousarray(whitening.mode, dtype=np.float64)
        factor = np.ascontiguousarray(whitening.factor, dtype=np.float64)
        arrays += [mode, factor]
        entries = [1, mode.ctypes.data, factor.ctypes.data]
    for array in arrays[:len(data)]:
        entries += [array.ctypes.data, *array.shape]
    return np.array(entries, dtype=np.int64), arrays


FLAT = "__flat__"  # the one variable nutpie stores: the unconstrained (or whitened) values


def nutpie_model(density: NativeDensity, data: Sequence[np.ndarray], whitening: Any, ndim: int, make_initial):
    """nutpie's compiled model calling ``density``'s logp cfunc on ``data`` (unwhitening when ``whitening``)."""
    from nutpie.compile_pymc import CompiledPyMCModel

    table, arrays = native_table(density, data, whitening)
    return CompiledPyMCModel(
        _n_dim=ndim, dims={}, _coords={}, _shapes={FLAT: (ndim,)},
        compiled_logp_func=density.logp, compiled_expand_func=density.expand,
        initial_point_func=make_initial,
        shared_data={str(i): a for i, a in enumerate(arrays)},  # held while nutpie reads them
        user_data=table, n_expanded=ndim, shape_info=([FLAT], [slice(0, ndim)], [(ndim,)]),
        logp_func=None, expand_func=None)


def constrained_draws(posterior, density: Any, data: Sequence[np.ndarray], whitening: Any):
    """The model's values (dims chain, draw, then each value's own) from nutpie's stored flat draws."""
    import xarray as xr

    flat = posterior[FLAT].values
    chains, draws, ndim = flat.shape
    flat = flat.reshape(-1, ndim)
    if whitening is not None:
        flat = whitening.mode + flat @ whitening.factor.T
    columns = [np.empty((len(flat), *shape)) for shape in density.free_shapes]
    for row, x in enumerate(flat):
        for column, value in zip(columns, density.constrain(x, *data), strict=True):
            column[row] = value
    variables = {}
    for name, shape, column in zip(density.free_names, density.free_shapes, columns, strict=True):
        dims = ["chain", "draw", *[f"{name}_dim_{i}" for i in range(len(shape))]]
        variables[name] = (dims, column.reshape(chains, draws, *shape))
    return xr.Dataset(variables, coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values})
