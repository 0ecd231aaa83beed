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
