"""`bayeslaw plot` and `report`: figures and the HTML report of a saved fit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayeslaw.cli._app import _command, _one_line
from bayeslaw.cli._common import (
    BudgetOption,
    FitArgument,
    LevelOption,
    _budgets,
    _exit_if_unconverged,
    _figure_path,
    _levels,
    _output,
    _run,
    _stray,
    _usage,
)

PLOT_KINDS = ("isoflop", "frontier", "extrapolation", "pairs")


@_command("plot", context_settings={"allow_extra_args": True})
def plot_command(
    ctx: typer.Context,
    path: FitArgument,
    kind: Annotated[str, typer.Option(metavar="KIND", help="isoflop, frontier, extrapolation or pairs")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="PATH", help="file to write: .png or .svg")],
    budget: BudgetOption = None,
    level: LevelOption = None,
) -> None:
    """Draw one figure of a saved fit to PNG or SVG."""
    _stray(ctx, path)
    budgets = _budgets(budget)
    if kind not in PLOT_KINDS:
        _usage(f"unknown plot kind '{_one_line(kind, 40)}'; kinds: {', '.join(PLOT_KINDS)}")
    _figure_path(out)
    levels = _levels(level, (0.5, 0.9))
    _output(out)

    def go():
        from bayeslaw import plots
        from bayeslaw.fit import load

        result = load(path)
        make = {"isoflop": lambda: plots.isoflop(result, budgets, levels),
                "frontier": lambda: plots.frontier(result, budgets, levels=levels),
                "extrapolation": lambda: plots.extrapolation(result, budgets, levels),
                "pairs": lambda: plots.pairs(result)}[kind]
        plots.write_figure(make(), out)
        return result

    result = _run(go)
    typer.echo(f"wrote {out}")
    _exit_if_unconverged([result])


@_command("report", context_settings={"allow_extra_args": True})
def report_command(
    ctx: typer.Context,
    path: FitArgument,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="PATH", help="HTML file to write")],
    budget: Annotated[list[str] | None, typer.Option(metavar="FLOPS", help="FLOP budgets to plan: --budget "
                                                     "1e22,1e24 (default 10, 100, 1000 x the largest run)")] = None,
) -> None:
    """Write one self-contained HTML report: data, diagnostics, parameters, figures and a plan."""
    _stray(ctx, path)
    budgets = _budgets(budget)
    _output(out)

    def go():
        from bayeslaw.fit import load
        from bayeslaw.report import report

        result = load(path)
        import sys

        # progress lines for a person watching a terminal; a script's stderr keeps only what went wrong
        watching = sys.stderr.isatty()
        report(result, out, budgets, progress=(lambda line: typer.echo(line, err=True)) if watching else None)
        return result

    result = _run(go)
    typer.echo(f"wrote {out}")
    _exit_if_unconverged([result])
