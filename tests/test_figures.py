"""Figures read right: legend swatches in the bands' colours, isoFLOP curves inside the axes at the data's own
budget levels, extrapolation beyond the largest budget. Fake fits: no sampling."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pytest

from bayeslaw import plots
from bayeslaw.demo import chinchilla_sweep
from bayeslaw.testing import fake_fit


@pytest.fixture(scope="module")
def fit():
    return fake_fit("chinchilla", sizes=5)


def _band_colours(ax) -> set[tuple]:
    """The colours of the filled bands (not the runs' scatter)."""
    from matplotlib.collections import PathCollection

    return {tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in ax.collections
            if len(c.get_paths()) and not isinstance(c, PathCollection)}


def _legend_band_colours(handles, labels) -> set[tuple]:
    return {tuple(np.round(h.get_facecolor()[0][:3], 3)) for h, lab in zip(handles, labels, strict=True)
            if lab.endswith("credible")}


def test_legend_swatches_take_the_bands_colours(fit):
    fig = plots.frontier(fit, [1e20, 1e24], references=())
    ax = fig.axes[0]
    assert _legend_band_colours(*ax.get_legend_handles_labels()) == _band_colours(ax) == {
        tuple(np.round(mcolors.to_rgb("C0"), 3))}
    fig = plots.extrapolation(fit, [1e22, 1e24])
    ax = fig.axes[0]
    assert _legend_band_colours(*ax.get_legend_handles_labels()) == _band_colours(ax) == {
        tuple(np.round(mcolors.to_rgb("C1"), 3))}


def test_isoflop_curves_stay_inside_the_axes_at_the_datas_budgets(fit):
    fig = plots.isoflop(fit)
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    lines = [line for line in ax.get_lines() if line.get_label().startswith("C = ")]
    assert len(lines) >= 3
    for line in lines:
        y = np.asarray(line.get_ydata(), dtype=float)
        assert len(y) > 10 and np.all((y >= bottom) & (y <= top)), line.get_label()
    sweep = chinchilla_sweep("besiroglu2024", noise=0.01, seed=0)
    levels = np.unique(np.round(np.log10(6 * sweep["N"] * sweep["D"]), 6))
    chosen = plots.default_budgets(6 * sweep["N"].to_numpy() * sweep["D"].to_numpy())
    assert set(np.round(np.log10(chosen), 6)) <= set(levels) and len(chosen) == min(5, len(levels))
    assert chosen.min() == pytest.approx(10 ** levels.min()) and chosen.max() == pytest.approx(10 ** levels.max())


def test_extrapolation_runs_past_the_largest_budget(fit):
    ax = plots.extrapolation(fit, [1e22, 1e24]).axes[0]
    assert ax.get_xlim()[1] == pytest.approx(1e24 * 10 ** (1 / 3))
