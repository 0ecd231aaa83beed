"""Figures on the real Chinchilla runs (fake fits, bayeslaw.testing): labels, scales, limits that hold the data,
what is drawn, agreement of the drawn curves with predict/plan, and the PNG/SVG files (atomic, checked)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from typer.testing import CliRunner

from bayeslaw import plots
from bayeslaw.cli import EXIT_ERROR, EXIT_USAGE, app
from bayeslaw.compare import compare
from bayeslaw.errors import BayeslawError
from bayeslaw.laws import get_law
from bayeslaw.laws.chinchilla import chinchilla_optimum
from bayeslaw.plan import plan
from bayeslaw.posterior import from_constants
from bayeslaw.testing import fake_fit

runner = CliRunner()
BUDGETS = [1e19, 1e20, 1e21]


@pytest.fixture(scope="module")
def fit(chinchilla_fit_small):
    return chinchilla_fit_small


@pytest.fixture(scope="module")
def runs(fit):
    frame = fit.runs.frame
    return {"N": frame["N"].to_numpy(), "D": frame["D"].to_numpy(), "C": 6 * frame["N"].to_numpy() * frame["D"],
            "loss": frame["loss"].to_numpy()}


def check_files(fig, folder, name: str) -> None:
    """PNG: decodes to the figure's pixel size and is not blank. SVG: well-formed XML with drawn paths."""
    png = plots.write_figure(fig, folder / f"{name}.png", dpi=80)
    svg = plots.write_figure(fig, folder / f"{name}.svg")
    assert png.stat().st_size > 15_000 and svg.stat().st_size > 15_000
    image = mpimg.imread(png)
    width, height = fig.get_size_inches() * 80
    assert image.shape[:2] == (round(height), round(width))
    assert image[..., :3].std() > 0.05  # not a blank canvas
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and len(root.findall(".//{http://www.w3.org/2000/svg}path")) > 50
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}")) == []  # no temp files left


def points_drawn(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def test_isoflop(fit, runs, tmp_path):
    fig = plots.isoflop(fit, BUDGETS, levels=(0.5, 0.9))
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale()) == ("parameters N", "loss (nats)", "log")
    lo, hi = ax.get_xlim()
    assert lo <= runs["N"].min() and hi >= runs["N"].max()
    lo, hi = ax.get_ylim()
    assert lo <= runs["loss"].min() and hi >= runs["loss"].max()
    assert points_drawn(ax) == len(runs["N"])  # every run once: near a budget, or grey
    curves = [line for line in ax.lines if line.get_label().startswith("C = ")]
    assert [line.get_label() for line in curves] == [f"C = {b:.0e} FLOPs" for b in BUDGETS]
    stars = [line for line in ax.lines if line.get_marker() == "*" and len(line.get_xdata())]
    assert len(stars) == len(BUDGETS)
    # each star (plan's median N_opt) sits at the bottom of its median curve (predict), within a grid step
    step = np.log(curves[0].get_xdata()[1] / curves[0].get_xdata()[0])
    for curve, star in zip(curves, stars, strict=True):
        x, y = curve.get_xdata(), curve.get_ydata()
        assert abs(np.log(x[np.argmin(y)] / star.get_xdata()[0])) <= step
    # bands: two levels per budget, plus two grey legend entries
    assert sum(1 for c in ax.collections if not isinstance(c, PathCollection)) == 2 * len(BUDGETS) + 2
    labels = ax.get_legend_handles_labels()[1]
    assert {"90% credible", "50% credible", "median N_opt"} <= set(labels)
    check_files(fig, tmp_path, "isoflop")


def test_isoflop_default_budgets_and_predictive(fit, runs):
    fig = plots.isoflop(fit, predictive=True)
    curves = [line for line in fig.axes[0].lines if line.get_label().startswith("C = ")]
    budgets = [float(line.get_label().split()[2]) for line in curves]
    assert len(budgets) >= 3 and runs["C"].min() <= min(budgets) < max(budgets) <= runs["C"].max()


def test_frontier(fit, tmp_path):
    fig = plots.frontier(fit, [1e18, 1e25])
    ax_n, ax_d = fig.axes
    for ax in (ax_n, ax_d):
        assert ax.get_xlabel() == "training FLOPs C"
        assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
        assert ax.get_xlim() == pytest.approx((1e18, 1e25))
    assert "N_opt" in ax_n.get_ylabel() and "D_opt" in ax_d.get_ylabel()
    labels = ax_n.get_legend_handles_labels()[1]
    assert "fitted range of C" in labels and "chinchilla posterior median" in labels
    assert [next(lab for lab in labels if lab.startswith(p)) for p in ("Kaplan", "Chinchilla", "DeepSeek")]
    # the fan's median is plan()'s median N_opt; the reference lines are the published allocations
    median = next(line for line in ax_n.lines if line.get_label() == "chinchilla posterior median")
    x, y = median.get_xdata(), median.get_ydata()
    assert y[40] == pytest.approx(float(np.median(plan(fit, x[40]).draws["N_opt"])), rel=1e-9)
    chinchilla = next(line for line in ax_n.lines if line.get_label().startswith("Chinchilla"))
    expected, _ = chinchilla_optimum(get_law("chinchilla").presets["hoffmann2022-tex"].values, x)
    assert chinchilla.get_ydata() == pytest.approx(expected, rel=1e-9)
    check_files(fig, tmp_path, "frontier")


def test_frontier_references():
    n, d, label = plots.published_allocation("kaplan", np.array([plots.PF_DAY]))
    assert (n[0], d[0]) == pytest.approx((1.3e9, 2e10)) and "PF-days" in label
    c = np.array([8.4557e22])  # laws.md: DeepSeek 7B test vector
    m, d, label = plots.published_allocation("deepseek", c)
    assert m[0] * 6 == pytest.approx(0.1715 * c[0] ** 0.5243) and d[0] == pytest.approx(5.8316 * c[0] ** 0.4757,
                                                                                          rel=1e-3)
    assert "M_opt / 6" in label
    fig = plots.frontier(None, [1e20, 1e24], references=("chinchilla",))
    assert [line.get_label() for line in fig.axes[0].lines] == [plots.published_allocation("chinchilla", c)[2]]
    with pytest.raises(BayeslawError, match="unknown reference 'gpt'"):
        plots.frontier(None, [1e20, 1e24], references=("gpt",))
    with pytest.raises(BayeslawError, match="give the budgets"):
        plots.frontier(None)


def test_extrapolation(fit, runs, tmp_path):
    fig = plots.extrapolation(fit)
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_xscale()) == ("training FLOPs C", "loss (nats)", "log")
    lo, hi = ax.get_xlim()
    assert lo <= runs["C"].min() and hi >= runs["C"].max() * 999
    ylo, yhi = ax.get_ylim()
    assert ylo <= runs["loss"].min() and yhi >= runs["loss"].max()
    assert points_drawn(ax) == len(runs["C"])
    assert "fitted range of C" in ax.get_legend_handles_labels()[1]
    median = next(line for line in ax.lines if line.get_label().startswith("chinchilla median"))
    assert np.all(np.diff(median.get_ydata()) < 0)  # loss on the frontier falls with compute
    assert median.get_ydata()[-1] < runs["loss"].min()
    check_files(fig, tmp_path, "extrapolation")
    budgets = [1e23, 1e24]
    marked = plots.extrapolation(fit, budgets).axes[0]
    assert [line.get_xdata()[0] for line in marked.lines if line.get_linestyle() == ":" and len(line.get_xdata())
            ] == budgets
    assert marked.get_xlim()[1] == pytest.approx(1e24 * 10 ** (1 / 3))  # the last budget inside the frame


def test_extrapolation_one_input_law(power_c_fit_small, runs):
    ax = plots.extrapolation(power_c_fit_small).axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("training FLOPs C", "loss (nats)")
    assert points_drawn(ax) == len(runs["C"])


def test_laws_without_n_and_d_are_refused(power_c_fit_small):
    for draw in (plots.isoflop, plots.frontier):
        with pytest.raises(BayeslawError, match=r"power-C.*needs a law in N and D"):
            draw(power_c_fit_small)


def test_comparison(fit, chinchilla_runs, tmp_path):
    # a rival that is close but worse (Hoffmann et al.'s constants, no discrepancy): both bars have some weight
    other = fake_fit("chinchilla", runs=chinchilla_runs, preset="hoffmann2022", discrepancy=False)
    result = compare({"chinchilla": fit, "kaplan-ND": other}, holdout=None)
    fig = plots.comparison(result)
    ax_elpd, ax_w = fig.axes
    table = result.table.sort_values("elpd")
    assert [t.get_text() for t in ax_elpd.get_yticklabels()] == list(table.index)
    assert "ELPD" in ax_elpd.get_xlabel() and ax_w.get_xlabel() == "stacking weight"
    points = ax_elpd.lines[0]
    assert points.get_xdata() == pytest.approx(table["elpd"].to_numpy())
    lo, hi = ax_elpd.get_xlim()
    assert lo <= (table["elpd"] - table["elpd se"]).min() and hi >= (table["elpd"] + table["elpd se"]).max()
    widths = [bar.get_width() for bar in ax_w.patches]
    assert widths == pytest.approx(table["weight"].to_numpy()) and sum(widths) == pytest.approx(1)
    assert plots.comparison(result.table).axes[0].get_xlim() == pytest.approx((lo, hi))  # the table alone works
    check_files(fig, tmp_path, "comparison")
    with pytest.raises(BayeslawError, match="compare"):
        plots.comparison(table.drop(columns="weight"))


def test_pairs(fit, tmp_path):
    fig = plots.pairs(fit)
    names = list(fit.law.published)
    grid = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start): ax for ax in fig.axes}
    assert sorted(grid) == [(r, c) for r in range(len(names)) for c in range(r + 1)]  # lower triangle, marginals
    assert [grid[len(names) - 1, c].get_xlabel() for c in range(len(names))] == names
    assert [grid[r, 0].get_ylabel() for r in range(1, len(names))] == names[1:]
    i, j = names.index("alpha"), names.index("beta")
    scatter = next(c for c in grid[(j, i)].collections if isinstance(c, PathCollection))
    xy = np.asarray(scatter.get_offsets())
    alpha = fit.posterior["alpha"].values.ravel()
    assert len(xy) == alpha.size
    np.testing.assert_allclose(np.sort(xy[:, 0]), np.sort(alpha))
    lo, hi = grid[(j, i)].get_xlim()
    assert lo <= alpha.min() and hi >= alpha.max()
    check_files(fig, tmp_path, "pairs")
    with pytest.raises(BayeslawError, match="no parameter gamma"):
        plots.pairs(fit, ["alpha", "gamma"])
    with pytest.raises(BayeslawError, match="needs a fit"):
        plots.pairs(from_constants("chinchilla", "hoffmann2022"))


def test_write_figure_refuses_and_leaves_nothing(fit, tmp_path, monkeypatch):
    fig = plots.frontier(None, [1e20, 1e24])
    with pytest.raises(BayeslawError, match=r"\.png or \.svg"):
        plots.write_figure(fig, tmp_path / "plot.pdf")
    with pytest.raises(BayeslawError, match="does not exist"):
        plots.write_figure(fig, tmp_path / "missing" / "plot.png")
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")

    def broken(buffer, **kwargs):
        buffer.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plots.write_figure(fig, target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["plot.png"]


@pytest.fixture(scope="module")
def saved(fit, power_c_fit_small, tmp_path_factory):
    folder = tmp_path_factory.mktemp("plots")
    return fit.save(folder / "fit.nc"), power_c_fit_small.save(folder / "power.nc")


@pytest.mark.parametrize("kind,suffix", [("isoflop", "png"), ("frontier", "svg"), ("extrapolation", "png"),
                                         ("pairs", "svg")])
def test_cli_plot(saved, tmp_path, kind, suffix):
    out = tmp_path / f"{kind}.{suffix}"
    result = runner.invoke(app, ["plot", str(saved[0]), "--kind", kind, "-o", str(out),
                                 "--budget", "1e19", "--budget", "1e21"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 15_000 and f"wrote {out}" in result.output


@pytest.mark.parametrize("args,message", [
    (["--kind", "bars", "-o", "x.png"], "unknown plot kind 'bars'"),
    (["--kind", "pairs", "-o", "x.pdf"], ".png or .svg"),
    (["--kind", "isoflop", "-o", "x.png", "--budget", "1e20,lots"], "--budget must be numbers"),
    (["--kind", "isoflop", "-o", "x.png", "--budget", "1e20", "1e21"], "unexpected argument '1e21'"),
    (["--kind", "isoflop", "-o", "x.png", "--budget", "-1"], "--budget must be finite FLOP counts > 0"),
])
def test_cli_plot_errors(saved, tmp_path, args, message):
    result = runner.invoke(app, ["plot", str(saved[0]), *args])
    assert result.exit_code == EXIT_USAGE and message in result.output
    assert not (tmp_path / "x.png").exists()


def test_cli_plot_law_without_n_and_d(saved, tmp_path):
    result = runner.invoke(app, ["plot", str(saved[1]), "--kind", "isoflop", "-o", str(tmp_path / "x.png")])
    assert result.exit_code == EXIT_ERROR and "needs a law in N and D" in result.output
    assert result.output.count("\n") == 1 and list(tmp_path.iterdir()) == []
