"""Posterior draws as one sample axis, and the seeds derived from a user's seed.

A posterior's draws have dims (chain, draw). Numpy code works on S = chain x draw samples, flattened
chain-major (the order of ``DataArray.stack(sample=("chain", "draw"))``), and reshapes results back.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

SAMPLE_DIMS = ("chain", "draw")


def n_samples(draws: xr.Dataset | xr.DataArray) -> int:
    """S = chains x draws."""
    return int(draws.sizes["chain"] * draws.sizes["draw"])


def flat(values: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) -> (S, ...), chain-major (a view where numpy can)."""
    return values.reshape(-1, *values.shape[2:])


def unflat(values: np.ndarray, chains: int) -> np.ndarray:
    """(S, ...) -> (chain, draw, ...): the inverse of :func:`flat`."""
    return values.reshape(chains, -1, *values.shape[1:])


def stacked(da: xr.DataArray, *dims: str) -> np.ndarray:
    """``da``'s values with (chain, draw) stacked into one sample axis: the axes in the order ``dims``, where
    "sample" places the samples (last when absent), e.g. ``stacked(prediction, "point")`` is (point, S)."""
    order = dims if "sample" in dims else (*dims, "sample")
    return da.stack(sample=SAMPLE_DIMS).transpose(*order).values


def derived_seed(seed: int | None, offset: int) -> int | None:
    """The seed of a second random stream drawn with ``seed`` (e.g. the discrepancy's beside the run noise's):
    ``seed + offset``, or None (fresh entropy) when ``seed`` is None."""
    return None if seed is None else seed + offset
