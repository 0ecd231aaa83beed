"""Shared fixtures: real data from ../shared/data (skip only outside CI), sampling settings."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMALL = {"chains": 2, "draws": 300, "tune": 300, "retry": False}  # small but real sampling for tests

warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")


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
    """The Chinchilla law fitted to the real runs with small sampling (plots, report)."""
    import bayeslaw as bl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bl.ConvergenceWarning)
        return bl.fit("chinchilla", chinchilla_runs, seed=1, **SMALL)


@pytest.fixture(scope="session")
def power_c_fit_small(chinchilla_runs):
    """A law without N and D (loss against C) on the real runs, small sampling."""
    import bayeslaw as bl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bl.ConvergenceWarning)
        return bl.fit("power-C", chinchilla_runs, seed=1, **SMALL)


def fake_fit(law_name: str = "chinchilla", sizes: int = 4, chains: int = 2, draws: int = 500, seed: int = 0,
             discrepancy: bool = True):
    """A Fit of a synthetic ladder whose draws scatter 1% around the law's first preset: no sampling, so tests
    of saving, loading, commands and tampered files need no NUTS (about a second with the discrepancy)."""
    import numpy as np
    import xarray as xr
    from scipy.stats import norm

    from bayeslaw.data import load_runs
    from bayeslaw.diagnostics import diagnose
    from bayeslaw.discrepancy import estimate
    from bayeslaw.fit import Fit, assemble, median_log_mean
    from bayeslaw.laws import get_law
    from bayeslaw.model import data_pivots, model_priors
    from bayeslaw.synthetic import ladder

    law = get_law(law_name)
    runs = load_runs(ladder(law, sizes=sizes, seed=seed), law)
    truth = law.from_published(next(iter(law.presets.values())).values, data_pivots(runs))
    rng = np.random.default_rng(seed)
    shape = (chains, draws)
    quantiles = norm.ppf((np.arange(draws) + 0.5) / draws)  # every chain the same normal sample, shuffled: R-hat 1

    def z():
        return np.array([rng.permutation(quantiles) for _ in range(chains)])

    values = {name: value + 0.01 * max(abs(value), 0.01) * z() for name, value in truth.items()}
    values |= {"sigma": 0.01 * np.exp(0.1 * z()), "nu": 10 * np.exp(0.1 * z())}
    posterior = xr.Dataset({k: (("chain", "draw"), v) for k, v in values.items()},
                           coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape, bool)),
                        "reached_max_treedepth": (("chain", "draw"), np.zeros(shape, bool))},
                       coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    priors = model_priors(law, "student_t")
    diagnostics = diagnose(posterior, stats, list(truth), law.supports)
    info = {"seed": seed, "sampler": "nutpie", "tune": 0, "target_accept": 0.9, "retry": False,
            "compile_seconds": 0.0, "sample_seconds": 0.0, "attempts": [], "fixed": {}, "prior_from": None,
            "priors_given": {}}
    idata = assemble(runs, priors, "student_t", posterior, stats, diagnostics, info)
    spec = None
    if discrepancy:
        residuals = np.log(runs.target) - median_log_mean(law, idata.posterior, runs.inputs)
        spec = estimate("gp", runs.inputs, residuals, seed=seed)
        idata.posterior.attrs["discrepancy"] = spec.to_json()
    return Fit(law, runs, idata, priors, "student_t", diagnostics, info, spec)


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
