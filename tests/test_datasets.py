"""Readers of the published run tables: the protocols they apply and their errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared_data_path

from bayeslaw.datasets import chinchilla_runs, datablations_runs, frantar_t5_runs
from bayeslaw.errors import DataError


def test_chinchilla_protocol_drops_the_five_largest_losses():
    path = shared_data_path("chinchilla_epoch_extracted.csv")
    raw, runs = pd.read_csv(path), chinchilla_runs(path)
    assert (len(raw), len(runs)) == (245, 240)
    assert runs["loss"].max() < raw["loss"].nlargest(5).min()


def test_frantar_t5_conversion():
    runs = frantar_t5_runs(shared_data_path("frantar_t5_sparsity.csv"))
    dense = runs[runs["S"] == 0]
    assert len(runs) == 48 and sorted(runs["S"].unique()) == [0.0, 0.5, 0.75, 0.875]
    # the smallest dense model: 1/128 of T5-base's 24 x 12 x 768^2 non-embedding parameters
    assert dense["N"].min() == pytest.approx(24 * 12 * 768**2 / 128)
    np.testing.assert_allclose(runs["D"] % 65536, 0)


def test_readers_name_what_is_wrong(tmp_path):
    bad = tmp_path / "runs.csv"
    pd.DataFrame({"sparsity": [0.5], "scale": [1.0], "steps": [10]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"missing column.*val-loss"):
        frantar_t5_runs(bad)
    with pytest.raises(DataError, match="no runs with data 'pile'; available: c4, oscar"):
        datablations_runs(shared_data_path("datablations_losses.csv"), "pile")
