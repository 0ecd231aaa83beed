"""Shared fixtures: real data from ../shared/data (skip only outside CI), sampling settings."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

from bayeslaw.testing import SMALL  # noqa: F401  (small but real sampling; tests import it from here)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
# pytest-xdist already runs a process per core: compare, calibrate and leave-future-out fit one model at a time
# here (and in the commands the tests start) unless a test asks for workers; tests/test_fanout.py does
os.environ.setdefault("BAYESLAW_WORKERS", "1")


@pytest.fixture(autouse=True)
def _quiet_small_runs(request):
    """Small test runs may miss the strict 1.01 R-hat; tests that care assert on diagnostics."""
    with warnings.catch_warnings():
        if "unconverged" not in request.node.name:
            warnings.simplefilter("ignore", __import__("bayeslaw").ConvergenceWarning)
        yield


def shared_data_path(name: str) -> Path:
    """Path of a file in ../shared/data; fails in CI when it is missing, skips elsewhere."""
    path = SHARED_DATA / name
    if not path.is_file():
        message = f"real data {path} is missing"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must have ../shared beside the checkout)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def chinchilla_runs() -> pd.DataFrame:
    """The 240 kept Chinchilla runs (Besiroglu et al. 2024 protocol: drop the 5 largest losses)."""
    from bayeslaw.datasets import chinchilla_runs as read

    return read(shared_data_path("chinchilla_epoch_extracted.csv"))


@pytest.fixture(scope="session")
def chinchilla_fit_small(chinchilla_runs):
    """A fake fit of the Chinchilla law on the real runs (plots, report): draws 1% around Besiroglu et al.'s
    constants, with the GP discrepancy estimated from their residuals; no sampling (``bayeslaw.testing``)."""
    from bayeslaw.testing import fake_fit

    return fake_fit("chinchilla", runs=chinchilla_runs, preset="besiroglu2024")


@pytest.fixture(scope="session")
def power_c_fit_small(chinchilla_runs):
    """A law without N and D (loss against C) on the real runs: a fake fit around its first preset."""
    from bayeslaw.testing import fake_fit

    return fake_fit("power-C", runs=chinchilla_runs)


@pytest.fixture(scope="session")
def shared_fit(tmp_path_factory):
    """``shared_fit(law, data, **fit_kwargs)``: ``bayeslaw.fit`` run once per test session for the same law, runs
    and settings, whichever test module and xdist worker asks first; the others wait for it and load the saved
    file (a lock per fit). The fits live in this session's temporary folder (shared by its workers), never across
    sessions, so a changed library is always refitted. Every caller gets the fit as loaded from its file."""
    import bayeslaw as bl

    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-fits"
    folder.mkdir(exist_ok=True)
    memo: dict[str, object] = {}

    def get(law, data, **kwargs):
        key = _fit_key(law, data, kwargs)
        if key not in memo:
            path = folder / f"{key}.nc"
            with _locked(folder / f"{key}.lock"):
                if not path.is_file():
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", bl.ConvergenceWarning)
                        bl.fit(law, data, **kwargs).save(path)
            memo[key] = bl.load(path)
        return memo[key]

    return get


def _fit_key(law, data, kwargs) -> str:
    import hashlib
    import json

    from bayeslaw.laws import get_law

    frame = data if isinstance(data, pd.DataFrame) else pd.read_csv(data)
    text = json.dumps([get_law(law).name, frame.to_csv(index=False), kwargs], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path`` (created), held while the block runs: one process at a time."""
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def fake_fit(law_name: str = "chinchilla", sizes: int = 4, chains: int = 2, draws: int = 500, seed: int = 0,
             discrepancy: bool = True, **kwargs):
    """A Fit of a synthetic ladder whose draws scatter 1% around the law's first preset: no sampling, so tests
    of saving, loading, commands and tampered files need no NUTS (``bayeslaw.testing.fake_fit``)."""
    from bayeslaw.testing import fake_fit as make

    return make(law_name, sizes, chains, draws, seed, discrepancy, **kwargs)


def bayeslaw_command(*args, cwd=None, timeout: float = 300):
    """Run the installed ``bayeslaw`` command on this checkout's code; skip where it is not installed."""
    import shutil
    import subprocess

    exe = shutil.which("bayeslaw") or pytest.skip("the bayeslaw command is not installed")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def run_cli(*args) -> tuple[int, str, str]:
    """``bayeslaw ARGS`` in this process (``bayeslaw.cli.main``): exit code, stdout, stderr."""
    import contextlib
    import io

    from bayeslaw.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def converged_exit(code: int, stderr: str) -> bool:
    """A command that fits exits 3 exactly when it reports a fit as not converged (on stderr), else 0."""
    return code == (3 if "not converged:" in stderr else 0)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``long``, then those marked ``early``, are moved to the front, so that the longest fits start
    first and do not end the run alone (the rest keep their order). With ``--dist loadscope
    --no-loadscope-reorder`` (pyproject.toml) xdist hands out work units (a module's functions, or one class:
    test_ladders.py has a class per law and seed) in this order, each unit to one worker, so a module's fixtures
    are made once."""
    items.sort(key=lambda item: (item.get_closest_marker("long") is None, item.get_closest_marker("early") is None))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """With BAYESLAW_TEST_CPU=FILE, append each test's CPU seconds (this process and the subprocesses it waited
    for; setup, call and teardown, so a module fixture counts in the first test that asks for it) and wall
    seconds to FILE: wall time on a shared machine says little, CPU time is what the tiers are sized by."""
    target = os.environ.get("BAYESLAW_TEST_CPU")
    if not target:
        yield
        return
    import resource
    import time

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    start_cpu, start_wall = cpu(), time.perf_counter()
    yield
    with open(target, "a") as handle:
        handle.write(f"{cpu() - start_cpu:.2f}\t{time.perf_counter() - start_wall:.2f}\t{item.nodeid}\n")
