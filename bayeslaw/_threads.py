"""Threads for numpy work on every core: BLAS held to one thread per caller, independent calls on a thread each.

numpy's ufuncs and BLAS release the GIL, so calls that each fill their own part of an output run side by side
on threads, with the same arithmetic (and bits) as one after another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

_CONTROLLER: Any = None


def one_thread():
    """A context limiting BLAS (and OpenMP) to one thread: the matrices here are small, threads only contend.
    The libraries are found once per process (``threadpool_limits`` looks for them on every call: 5 ms)."""
    global _CONTROLLER
    from scipy import linalg  # noqa: F401  (load scipy's BLAS before the controller lists the libraries)
    from threadpoolctl import ThreadpoolController

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)


def in_threads(fn: Callable[..., Any], calls: Iterable[tuple]) -> list[Any]:
    """``fn(*args)`` for each ``args`` in ``calls``, on up to one thread per core, results in order. Each call must
    write only its own outputs. BLAS is held to one thread throughout (entered here, once, so that no thread
    restores another's limit)."""
    calls = list(calls)
    workers = min(len(calls), CORES)
    if workers <= 1:
        return [fn(*args) for args in calls]
    with one_thread(), ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda args: fn(*args), calls))
