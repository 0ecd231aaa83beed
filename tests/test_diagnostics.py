"""Convergence checks on constructed chains: each rule fires, and only when it should."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from bayeslaw.diagnostics import diagnose


def chains(values: np.ndarray) -> xr.Dataset:
    return xr.Dataset({"theta": (("chain", "draw"), values)})


def stats(chains_: int, draws: int, divergent: int = 0, deep: int = 0) -> xr.Dataset:
    div = np.zeros((chains_, draws), dtype=bool)
    div.flat[:divergent] = True
    depth = np.zeros((chains_, draws), dtype=bool)
    depth.flat[:deep] = True
    return xr.Dataset({"diverging": (("chain", "draw"), div), "reached_max_treedepth": (("chain", "draw"), depth)})


def test_well_mixed_chains_pass():
    rng = np.random.default_rng(0)
    result = diagnose(chains(rng.standard_normal((4, 1000))), stats(4, 1000), ["theta"])
    assert result.converged, result.problems
    assert result.max_rhat < 1.01 and result.min_ess_bulk > 3000


def test_chains_stuck_in_different_places_fail_rhat():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((4, 1000)) + np.array([0, 0, 0, 3.0])[:, None]
    result = diagnose(chains(values), stats(4, 1000), ["theta"])
    assert result.max_rhat > 1.1
    assert any(p.startswith("R-hat") and "run longer" in p for p in result.problems)


def test_sticky_chains_fail_ess():
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.standard_normal((4, 1000)), axis=1) * 0.01  # random walks: tiny ESS
    result = diagnose(chains(values), stats(4, 1000), ["theta"])
    assert any(p.startswith("bulk ESS") for p in result.problems)
    assert any(p.startswith("tail ESS") for p in result.problems)


def test_divergences_and_tree_depth_are_reported_with_remedies():
    rng = np.random.default_rng(0)
    result = diagnose(chains(rng.standard_normal((4, 1000))), stats(4, 1000, divergent=3, deep=80), ["theta"])
    assert result.divergences == 3
    assert result.treedepth_fraction == 0.02
    assert any("3 divergent transitions" in p and "target_accept" in p for p in result.problems)
    assert any("maximum tree depth" in p for p in result.problems)
    assert "NOT CONVERGED" in str(result)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_constant_chains_count_as_not_converged():
    result = diagnose(chains(np.ones((2, 100))), stats(2, 100), ["theta"])
    assert not result.converged
