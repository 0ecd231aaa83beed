"""Figures people expect from a scaling-law fit, each a :class:`matplotlib.figure.Figure`.

- ``isoflop``: loss against N at fixed budgets, the observed runs and credible bands of the law;
- ``frontier``: N_opt(C) and D_opt(C) as fan charts, with the published Kaplan, Chinchilla and
  DeepSeek allocations for reference;
- ``extrapolation``: the law's loss against C (at the compute-optimal allocation) with bands,
  marking the fitted range;
- ``comparison``: PSIS-LOO elpd with standard errors and stacking weights;
- ``pairs``: pair plot of the published parameters (ArviZ).

Figures are built without pyplot (no global state, no display needed); ``write_figure`` saves PNG
or SVG atomically. Every curve comes from ``predict.predict`` or ``plan.plan`` on the draws.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import MatplotlibDeprecationWarning, colormaps
from matplotlib.figure import Figure

from bayeslaw._draws import stacked
from bayeslaw._search import check_budgets
from bayeslaw.data import derive_inputs
from bayeslaw.errors import BayeslawError
from bayeslaw.files import atomic_write
from bayeslaw.laws.kaplan import PF_DAY
from bayeslaw.plan import plan, require_allocation_inputs
from bayeslaw.posterior import LawPosterior, as_posterior, from_constants
from bayeslaw.predict import check_levels, predict

LABELS = {"N": "parameters N", "D": "training tokens D", "C": "training FLOPs C", "loss": "loss (nats)",
          "M_opt": "M_opt (FLOPs per token)", "D_opt": "D_opt (tokens)"}
FORMATS = {".png": "png", ".svg": "svg"}
REFERENCES = ("kaplan", "chinchilla", "deepseek")
GRID = 80  # points along each curve


def _label(name: str) -> str:
    return LABELS.get(name, name)


def observed_runs(fit: Any) -> dict[str, np.ndarray]:
    """The fit's runs: inputs completed by the law's convention (C = 6 N D), and the target."""
    if not hasattr(fit, "runs"):
        raise BayeslawError(f"this plot needs a fit with its runs, got {type(fit).__name__}")
    values, _ = derive_inputs(fit.law, fit.runs.inputs)
    return {**values, fit.law.target: fit.runs.target}


def _bands(ax, x: np.ndarray, samples: np.ndarray, levels: Sequence[float], color, label: str | None) -> None:
    """Median line and central credible bands (widest palest) of ``samples`` (sample, x)."""
    for i, level in enumerate(sorted(levels, reverse=True)):
        lo, hi = np.nanquantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0)
        ax.fill_between(x, lo, hi, color=color, alpha=0.15 + 0.15 * i, linewidth=0)
    ax.plot(x, np.nanmedian(samples, axis=0), color=color, linewidth=1.8, label=label)


def _band_legend(ax, levels: Sequence[float], color="0.4") -> None:
    """Legend entries for the credible bands drawn by ``_bands``: in their colour where all bands share one,
    grey where each budget has its own."""
    for i, level in enumerate(sorted(levels, reverse=True)):
        ax.fill_between([], [], [], color=color, alpha=0.15 + 0.15 * i, linewidth=0, label=f"{level:.0%} credible")


def _mark_fitted(ax, post: LawPosterior, name: str = "C") -> None:
    if name in post.fitted_ranges:
        lo, hi = post.fitted_ranges[name]
        ax.axvspan(lo, hi, color="0.85", alpha=0.6, zorder=0, label=f"fitted range of {name}")


def default_budgets(c: np.ndarray, count: int = 5) -> np.ndarray:
    """``count`` budgets spread over the runs' compute. Where the runs come as isoFLOP profiles (at least two
    levels of C, within 0.02 decade, shared by 3 or more runs each) the budgets are those levels, spread;
    otherwise quantiles of C rounded to one significant digit."""
    logs = np.round(np.log10(c) / 0.02) * 0.02
    levels, counts = np.unique(logs, return_counts=True)
    shared = levels[counts >= 3]
    if len(shared) >= 2:
        picked = shared[np.unique(np.round(np.linspace(0, len(shared) - 1, min(count, len(shared)))).astype(int))]
        return np.array([float(np.median(c[logs == level])) for level in picked])
    raw = np.quantile(np.log10(c), np.linspace(0.1, 0.9, count))
    return np.unique([float(f"{10.0 ** v:.0e}") for v in raw])


def _budgets(budgets: float | Sequence[float] | None) -> np.ndarray | None:
    if budgets is None:
        return None
    return np.unique(check_budgets(budgets))


def isoflop(fit: Any, budgets: Sequence[float] | None = None, levels: Sequence[float] = (0.5, 0.9),
            *, predictive: bool = False) -> Figure:
    """Loss against N at fixed budgets C = k N D: the law's median and credible bands, each budget's
    median N_opt (star), and the runs within 0.1 decade of each budget (the others in grey).

    ``budgets`` defaults to five spread over the runs' compute; ``predictive`` bands a new run (with noise).
    """
    levels = check_levels(levels)
    law = fit.law
    require_allocation_inputs(law, "an isoFLOP plot")
    obs = observed_runs(fit)
    budgets = _budgets(budgets)
    budgets = default_budgets(obs["C"]) if budgets is None else budgets
    n_lo, n_hi = obs["N"].min() / 3, obs["N"].max() * 3
    grid = np.geomspace(n_lo, n_hi, GRID)
    pred = predict(fit, N=np.tile(grid, len(budgets)), C=np.repeat(budgets, len(grid)))
    draws = stacked(pred.predictive if predictive else pred.mean, "sample", "point")
    draws = draws.reshape(-1, len(budgets), len(grid))  # (sample, budget, N)
    optimum = plan(fit, budgets).draws
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.add_subplot()
    colors = colormaps["viridis"](np.linspace(0, 0.9, len(budgets)))
    distance = np.abs(np.log10(obs["C"])[:, None] - np.log10(budgets)[None, :])
    nearest = np.where(distance.min(axis=1) <= 0.1, distance.argmin(axis=1), -1)
    target = obs[law.target]
    ax.scatter(obs["N"][nearest < 0], target[nearest < 0], s=8, color="0.75", label="other runs")
    shown = target[(obs["N"] >= n_lo) & (obs["N"] <= n_hi)]
    lowest = np.nanmin(np.nanquantile(draws, 0.05, axis=0))
    bottom, top = min(shown.min(), lowest) * 0.97, shown.max() * 1.05  # curves soar where D gets tiny
    for j, (budget, color) in enumerate(zip(budgets, colors, strict=True)):
        inside = _inside(np.nanmedian(draws[:, j, :], axis=0), top)
        _bands(ax, grid[inside], draws[:, j, inside], levels, color, f"C = {budget:.2g} FLOPs")
        mine = nearest == j
        ax.scatter(obs["N"][mine], target[mine], s=14, color=color, edgecolor="k", linewidth=0.4, zorder=3)
        at = optimum.sel(budget=budget)
        ax.plot([np.nanmedian(at["N_opt"])], [np.nanmedian(at[law.target])], marker="*", markersize=12,
                color=color, markeredgecolor="k", linestyle="none", zorder=4)
    ax.plot([], [], marker="*", markersize=10, color="0.6", markeredgecolor="k", linestyle="none",
            label="median N_opt")
    _band_legend(ax, levels)
    ax.set_xscale("log")
    ax.set_xlim(n_lo, n_hi)
    ax.set_ylim(bottom, top)
    ax.set_xlabel(_label("N"))
    ax.set_ylabel(_label(law.target))
    ax.set_title(f"isoFLOP profiles: {law.name} ({'a new run' if predictive else 'the law'}, median and bands)")
    ax.legend(fontsize=8, ncols=2)
    return fig


def _inside(median: np.ndarray, top: float) -> np.ndarray:
    """The stretch of an isoFLOP curve around its minimum where the median stays below ``top`` (the curve
    leaves the axes at both ends otherwise: loss soars where N or D gets tiny)."""
    keep = np.isfinite(median) & (median <= top)
    if not keep.any():
        return keep
    best = int(np.nanargmin(np.where(keep, median, np.inf)))
    lo, hi = best, best
    while lo > 0 and keep[lo - 1]:
        lo -= 1
    while hi < len(keep) - 1 and keep[hi + 1]:
        hi += 1
    out = np.zeros_like(keep)
    out[lo:hi + 1] = True
    return out


def published_allocation(name: str, budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Published compute-optimal N and D at ``budgets`` (FLOPs), with a label that states the convention."""
    if name == "kaplan":  # Table 6: N_opt = 1.3e9 C^0.73, D_opt = 2e10 C^0.27, C = C_min in PF-days
        c = budgets / PF_DAY
        return 1.3e9 * c**0.73, 2e10 * c**0.27, "Kaplan 2020 Table 6 (N non-embedding, C_min in PF-days)"
    if name == "chinchilla":
        draws = plan(from_constants("chinchilla", "hoffmann2022-tex"), budgets).draws
        return (draws["N_opt"].values.ravel(), draws["D_opt"].values.ravel(),
                "Chinchilla approach 3 (Hoffmann 2022, C = 6 N D)")
    if name == "deepseek":  # C = M D with M non-embedding FLOPs per token; M / 6 is comparable to 6 N D
        draws = plan(from_constants("deepseek-M_opt", "deepseek2024"), budgets).draws
        return (draws["M_opt"].values.ravel() / 6, draws["D_opt"].values.ravel(),
                "DeepSeek 2024 (N = M_opt / 6, M non-embedding FLOPs/token; C = M D)")
    raise BayeslawError(f"unknown reference '{name}'; known: {', '.join(REFERENCES)}")


def frontier(source: Any, budgets: Sequence[float] | None = None,
             references: Sequence[str] = REFERENCES, levels: Sequence[float] = (0.5, 0.9)) -> Figure:
    """N_opt(C) and D_opt(C) as fan charts (median and credible bands) over the range of ``budgets``,
    with published allocations for reference. ``source``: a fit, a LawPosterior or None (references
    only). Budgets default to the fitted compute range extended three decades beyond it.
    A DeepSeek M_opt fit is shown as N = M_opt / 6."""
    levels = check_levels(levels)
    post = as_posterior(source) if source is not None else None
    budgets = _budgets(budgets)
    if budgets is None:
        if post is None or "C" not in post.fitted_ranges:
            raise BayeslawError("give the budgets to plot the frontier over")
        budgets = np.array(post.fitted_ranges["C"]) * [1.0, 1e3]
    lo, hi = (budgets.min(), budgets.max()) if budgets.max() > budgets.min() else (budgets[0] / 10, budgets[0] * 10)
    grid = np.geomspace(lo, hi, GRID)
    fig = Figure(figsize=(11, 6), layout="constrained")
    ax_n, ax_d = fig.subplots(1, 2, sharex=True)
    if post is not None:
        draws = plan(post, grid).draws
        n_name = "N_opt" if "N_opt" in draws else "M_opt"
        n_draws = stacked(draws[n_name], "sample", "budget") / (6 if n_name == "M_opt" else 1)
        for ax, values in ((ax_n, n_draws), (ax_d, stacked(draws["D_opt"], "sample", "budget"))):
            _mark_fitted(ax, post)
            _bands(ax, grid, values, levels, "C0", f"{post.law.name} posterior median")
            _band_legend(ax, levels, "C0")
    styles = iter(["--", "-.", ":", (0, (5, 1, 1, 1))])
    for name in references:
        n, d, label = published_allocation(str(name).lower(), grid)
        style = next(styles)
        ax_n.plot(grid, n, color="0.25", linestyle=style, label=label)
        ax_d.plot(grid, d, color="0.25", linestyle=style, label=label)
    for ax, name in ((ax_n, "N_opt (parameters)"), (ax_d, "D_opt (training tokens)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_xlabel(_label("C"))
        ax.set_ylabel(f"compute-optimal {name}")
    ax_n.set_title("compute-optimal model size")
    ax_d.set_title("compute-optimal training tokens")
    fig.legend(*ax_n.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8)
    return fig


def extrapolation(fit: Any, budgets: Sequence[float] | None = None, levels: Sequence[float] = (0.5, 0.9),
                  *, decades: float = 3.0) -> Figure:
    """The law's target against compute with credible bands, the runs, and the fitted range shaded.

    For laws in N and D: the loss at each draw's compute-optimal allocation (the frontier), runs at
    their C = k N D. For one-input laws: the target against that input. The range runs from the
    smallest run to ``decades`` beyond the largest, or across ``budgets`` (marked) when given.
    """
    levels = check_levels(levels)
    law, post = fit.law, as_posterior(fit)
    if set(law.inputs) == {"N", "D"}:
        x_name = "C"
    elif len(law.inputs) == 1:
        x_name = law.inputs[0]
    else:
        raise BayeslawError(f"law '{law.name}' has inputs {', '.join(law.inputs)}; an extrapolation plot needs "
                            "a law in N and D or in one input")
    obs = observed_runs(fit)
    budgets = _budgets(budgets)
    lo, hi = obs[x_name].min(), obs[x_name].max() * 10**decades
    if budgets is not None:  # the largest budget's marker one third of a decade inside the right edge
        lo, hi = min(lo, budgets.min()), max(obs[x_name].max(), budgets.max()) * 10 ** (1 / 3)
    grid = np.geomspace(lo, hi, GRID)
    if x_name == "C" and law.inputs != ("C",):
        samples = stacked(plan(fit, grid).draws[law.target], "sample", "budget")
        what = "at the compute-optimal N and D"
    else:
        samples = stacked(predict(fit, **{x_name: grid}).mean, "sample", "point")
        what = "the law"
    fig = Figure(figsize=(8, 5.5), layout="constrained")
    ax = fig.add_subplot()
    _mark_fitted(ax, post, x_name)
    ax.scatter(obs[x_name], obs[law.target], s=9, color="0.45", label="runs", zorder=3)
    _bands(ax, grid, samples, levels, "C1", f"{law.name} median, {what}")
    _band_legend(ax, levels, "C1")
    for budget in budgets if budgets is not None else ():
        ax.axvline(budget, color="C3", linestyle=":", linewidth=1)
    if budgets is not None:
        ax.plot([], [], color="C3", linestyle=":", label="budgets")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    if law.target not in ("loss",):
        ax.set_yscale("log")
    ax.set_xlabel(_label(x_name))
    ax.set_ylabel(_label(law.target))
    ax.set_title(f"extrapolation of {law.name} beyond the fitted range")
    ax.legend(fontsize=8)
    return fig


def comparison(table: Any) -> Figure:
    """PSIS-LOO elpd with standard errors and stacking weights, from ``bayeslaw.compare.compare``
    (its Comparison or its table)."""
    table = getattr(table, "table", table)
    need = ["elpd", "elpd se", "weight"]
    if not isinstance(table, pd.DataFrame) or any(c not in table.columns for c in need):
        raise BayeslawError(f"comparison needs the table of bayeslaw.compare.compare (columns {', '.join(need)})")
    table = table.sort_values("elpd")
    y = np.arange(len(table))
    fig = Figure(figsize=(9, 1.5 + 0.5 * len(table)), layout="constrained")
    ax_elpd, ax_w = fig.subplots(1, 2, sharey=True, width_ratios=(2, 1))
    ax_elpd.errorbar(table["elpd"], y, xerr=table["elpd se"], fmt="o", color="C0", capsize=4, label="elpd ± se")
    ax_elpd.axvline(table["elpd"].max(), color="0.6", linestyle=":", linewidth=1)
    ax_elpd.set_yticks(y, table.index)
    ax_elpd.set_xlabel("ELPD (PSIS-LOO, log score; higher is better)")
    ax_elpd.set_ylabel("law")
    ax_elpd.legend(fontsize=8)
    ax_w.barh(y, table["weight"], color="C2")
    ax_w.set_xlim(0, 1)
    ax_w.set_xlabel("stacking weight")
    fig.suptitle("law comparison")
    return fig


def pairs(fit: Any, var_names: Sequence[str] | None = None) -> Figure:
    """Pair plot of the published parameters (exponents and constants) with marginals, by ArviZ."""
    import arviz as az

    if not hasattr(fit, "idata"):
        raise BayeslawError(f"a pair plot needs a fit, got {type(fit).__name__}")
    names = list(var_names or fit.law.published)
    missing = [n for n in names if n not in fit.posterior]
    if missing:
        raise BayeslawError(f"no parameter {', '.join(missing)} in the {fit.law.name} fit; have "
                            f"{', '.join(fit.parameter_names)}")
    size = max(len(names), 2)
    fig = Figure(figsize=(2.2 * size + 1, 2.2 * size + 1), layout="constrained")
    axes = fig.subplots(len(names), len(names), squeeze=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)  # raised inside ArviZ 0.23
        az.plot_pair(fit.idata, var_names=names, kind="scatter", marginals=True, ax=axes, textsize=9,
                     scatter_kwargs={"alpha": 0.3, "s": 4}, show=False)
    fig.suptitle(f"{fit.law.name}: posterior of the published parameters")
    return fig


def write_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG or SVG (from the suffix of ``path``), atomically."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise BayeslawError(f"cannot write a figure to '{path}': use a .png or .svg file name")
    return atomic_write(path, lambda buffer: fig.savefig(buffer, format=fmt, dpi=dpi))
