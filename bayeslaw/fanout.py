"""Independent fit jobs at once: one after another, on local processes, or on a Dask cluster.

``map_jobs(fn, jobs, workers=..., client=...)`` returns ``[fn(**job) for job in jobs]``, in that order,
wherever the calls ran:

- serially, in this process (``workers=1``);
- on local processes (``concurrent.futures.ProcessPoolExecutor``, spawn start method; kept for later calls,
  so a worker imports bayeslaw and loads its compiled densities once). By default ``workers`` is the number
  of CPUs this process may use, but 1 for a single job or inside a worker (jobs do not fan out again);
- on a Dask cluster (``client=`` a ``dask.distributed.Client`` or a scheduler address ``tcp://HOST:PORT``;
  the workers need the same bayeslaw installed).

A job is self-contained and picklable: a module-level function and plain arguments (law name or law, the
runs, fit settings and the seed, fixed before fan-out). A fit's draws depend only on its seed and settings
(nutpie samples each job's chains on one core, ``sampling.py``), so every way returns the serial results
bit for bit. Warnings a job raises in a worker are recorded there (one of each kind per job) and issued again
here in job order, through this process's warning filters; an error in a job is raised here, the same
exception with the same message, after cancelling the jobs not yet started.
"""

from __future__ import annotations

import os
import pickle
import threading
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bayeslaw.errors import BayeslawError

_STATE = threading.local()  # .inside: a job of this thread runs in a worker (Dask's threads, or a pool process)
_IN_POOL_PROCESS = False  # set by the pool's initializer
_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0
_REGISTRIES: dict[str, dict] = {}  # per source file, as a module's __warningregistry__ ("default" shows once)


def in_worker() -> bool:
    """True while a job runs in a worker process or on a Dask worker."""
    return _IN_POOL_PROCESS or getattr(_STATE, "inside", False)


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


WORKERS_VARIABLE = "BAYESLAW_WORKERS"  # the default number of workers where the cores are already in use


def default_workers(n_jobs: int) -> int:
    """The CPU count (or ``$BAYESLAW_WORKERS``, e.g. 1 under a test runner that has a process per core), at most
    one per job, and 1 inside a worker."""
    if in_worker():
        return 1
    given = os.environ.get(WORKERS_VARIABLE, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise BayeslawError(f"${WORKERS_VARIABLE} must be a whole number >= 1, got {given[:20]!r}")
        return max(1, min(int(given), n_jobs))
    return max(1, min(cpu_count(), n_jobs))


def check_workers(workers: Any, client: Any = None) -> int | None:
    """``workers`` as a whole number >= 1 (None: the default); refuse it together with a Dask client."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BayeslawError(f"workers must be a whole number >= 1, got {workers!r}")
    if client is not None:
        raise BayeslawError("give workers (local processes) or a Dask client / scheduler address, not both")
    return workers


@dataclass
class _Outcome:
    """What a job sends back: its value or its error, and the warnings it raised."""

    value: Any = None
    error: BaseException | None = None
    remote_traceback: str = ""
    warnings: list[tuple[str, type[Warning], str, int]] = field(default_factory=list)


def _run_job(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> _Outcome:
    """Call ``fn(**kwargs)`` as a worker: record its warnings, catch its error (both sent back)."""
    outer = getattr(_STATE, "inside", False)
    _STATE.inside = True
    outcome = _Outcome()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the caller's filters decide what is shown
            try:
                outcome.value = fn(**kwargs)
            except Exception as error:  # sent back and raised there
                outcome.error = _sendable(error)
                outcome.remote_traceback = traceback.format_exc()
        seen = set()
        for w in caught:
            key = (str(w.message), w.category, w.filename, w.lineno)
            if key not in seen:
                seen.add(key)
                outcome.warnings.append(key)
    finally:
        _STATE.inside = outer
    return outcome


def _sendable(error: Exception) -> Exception:
    """The error itself when it survives pickling, else a BayeslawError with its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # anything pickle refuses
        return BayeslawError(f"{type(error).__name__}: {error}")


def _pool_initializer() -> None:
    global _IN_POOL_PROCESS
    _IN_POOL_PROCESS = True


def _pool(size: int) -> ProcessPoolExecutor:
    """The kept pool of at most ``size`` processes (a new one when the size changes or the pool broke); a process
    is spawned when a job finds none idle, so fewer jobs than ``size`` start fewer processes."""
    global _POOL, _POOL_SIZE
    import multiprocessing

    broken = _POOL is not None and getattr(_POOL, "_broken", False)
    if _POOL is None or _POOL_SIZE != size or broken:
        if _POOL is not None:
            _POOL.shutdown(wait=not broken, cancel_futures=True)
        _POOL = ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"),
                                    initializer=_pool_initializer)
        _POOL_SIZE = size
    return _POOL


def shutdown() -> None:
    """Stop the kept local processes (they also stop when this process exits)."""
    global _POOL, _POOL_SIZE
    if _POOL is not None:
        _POOL.shutdown(wait=True, cancel_futures=True)
    _POOL, _POOL_SIZE = None, 0


def _reissue(outcome: _Outcome) -> None:
    for message, category, filename, lineno in outcome.warnings:
        warnings.warn_explicit(message, category, filename, lineno,
                               registry=_REGISTRIES.setdefault(filename, {}))


def eta_line(done: int, total: int, elapsed: float, what: str = "fits") -> str:
    """'3 of 6 fits done in 42 s; about 42 s left' (the mean time per job so far, times the jobs left)."""
    left = elapsed / done * (total - done) if done else float("nan")
    tail = f"; about {left:.0f} s left" if done < total else ""
    return f"{done} of {total} {what} done in {elapsed:.0f} s{tail}"


def map_jobs(fn: Callable[..., Any], jobs: Sequence[Mapping[str, Any]], *, workers: int | None = None,
             client: Any = None, on_done: Callable[[int, int, float], Any] | None = None) -> list[Any]:
    """``[fn(**job) for job in jobs]``, run serially, on ``workers`` local processes or on a Dask ``client``.

    ``fn`` must be importable by name (a module-level function) and the jobs picklable. ``workers`` None: the
    CPU count (processes start as jobs need them), 1 inside a worker; a single job runs in this process.
    ``client``: a ``dask.distributed.Client`` or a scheduler address (a client is opened and closed for this
    call). Results come back in job order; warnings raised in workers are issued here in job order; the first
    job (in order) that fails raises its error here. ``on_done(done, total, seconds)`` is called as each job's
    result is collected (in job order), e.g. to print progress with :func:`eta_line`.
    """
    import time

    jobs = list(jobs)
    workers = check_workers(workers, client)
    start = time.perf_counter()

    def done(number: int) -> None:
        if on_done is not None:
            on_done(number, len(jobs), time.perf_counter() - start)

    if client is not None:
        return _on_dask(fn, jobs, client, done)
    size = default_workers(len(jobs)) if workers is None else workers
    if size <= 1 or len(jobs) <= 1:
        results = []
        for job in jobs:
            results.append(fn(**job))
            done(len(results))
        return results
    from concurrent.futures.process import BrokenProcessPool

    pool = _pool(size)
    try:
        futures = [pool.submit(_run_job, fn, job) for job in jobs]
        return _collect(futures, lambda: [f.cancel() for f in futures], done)
    except BrokenProcessPool as error:
        raise BayeslawError(f"a worker process stopped before its job finished ({error}); a script that fans out "
                            "must start under `if __name__ == '__main__':` (workers are spawned and import it), "
                            "and each worker needs the memory of one fit; or run with workers=1") from None


def _on_dask(fn: Callable[..., Any], jobs: list[Mapping[str, Any]], client: Any,
             done: Callable[[int], Any]) -> list[Any]:
    """Submit every job to the Dask cluster (``pure=False``: each is run, none is shared) and collect in order."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - a dependency
        raise BayeslawError("a Dask scheduler needs dask.distributed: pip install 'dask[distributed]'") from None
    own = isinstance(client, str)
    if own:
        try:
            client = Client(client, set_as_default=False, timeout="30s")
        except (OSError, TimeoutError) as error:
            raise BayeslawError(f"cannot reach the Dask scheduler at '{client}': {error}") from None
    elif not isinstance(client, Client):
        raise BayeslawError(f"client must be a dask.distributed.Client or a scheduler address such as "
                            f"'tcp://127.0.0.1:8786', got {type(client).__name__}")
    try:
        futures = [client.submit(_run_job, fn, job, pure=False) for job in jobs]
        return _collect(futures, lambda: client.cancel(futures), done)
    finally:
        if own:
            client.close()


def _collect(futures: Sequence[Future], cancel: Callable[[], Any], done: Callable[[int], Any]) -> list[Any]:
    """Each job's value in order, its warnings issued here; the first error cancels the rest and is raised."""
    results = []
    try:
        for number, future in enumerate(futures, 1):
            outcome: _Outcome = future.result()
            _reissue(outcome)
            if outcome.error is not None:
                error = outcome.error
                if not isinstance(error, BayeslawError):
                    error.add_note(f"raised in job {number} of {len(futures)} on a worker:\n{outcome.remote_traceback}")
                raise error
            results.append(outcome.value)
            done(len(results))
    except BaseException:
        cancel()
        raise
    return results
