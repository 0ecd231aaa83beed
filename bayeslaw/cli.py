"""The ``bayeslaw`` command: laws, fit, summary, demo. Errors print one line and exit non-zero."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from bayeslaw.errors import BayeslawError, ConvergenceWarning

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Bayesian scaling laws: fit a law to training runs with NUTS, inspect the posterior.")

EXIT_ERROR = 1
EXIT_NOT_CONVERGED = 3


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            _fail(f"{what} '{item}' must look like NAME=VALUE")
        out[key.strip()] = value.strip()
    return out


def _table(frame) -> str:
    return frame.to_string(float_format=lambda v: f"{v:.4g}")


def _report(result) -> None:
    typer.echo(_table(result.summary()))
    typer.echo(f"\ndiagnostics: {result.diagnostics}")


def _run(fn):
    """Call ``fn`` turning bayeslaw errors into one line on stderr and a non-zero exit."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the CLI reports it itself
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            return fn()
    except BayeslawError as err:
        _fail(str(err).replace("\n", " "))
    except (FileNotFoundError, PermissionError, IsADirectoryError) as err:
        _fail(f"{err.filename}: {err.strerror}")


@app.command("laws")
def laws_command() -> None:
    """List the laws with their formulas, inputs and sources."""
    from bayeslaw.laws import LAWS

    width = max(len(n) for n in LAWS)
    for name, law in LAWS.items():
        typer.echo(f"{name:<{width}}  {law.formula}")
        typer.echo(f"{'':<{width}}  inputs {', '.join(law.inputs)} -> {law.target}; {law.source}")


@app.command("fit")
def fit_command(
    runs: Annotated[Path, typer.Argument(help="CSV of runs, one row per training run")],
    law: Annotated[str, typer.Option(help="law name (see `bayeslaw laws`)")] = "chinchilla",
    out: Annotated[Path | None, typer.Option(help="write the fit to this NetCDF file")] = None,
    prior: Annotated[list[str] | None, typer.Option(help="PARAM=Dist(arg=value, ...), repeatable")] = None,
    column: Annotated[list[str] | None, typer.Option(help="CANONICAL=COLUMN, e.g. loss=val-loss")] = None,
    likelihood: Annotated[str, typer.Option(help="student_t, normal or laplace")] = "student_t",
    sampler: Annotated[str, typer.Option(help="nutpie or pymc")] = "nutpie",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 500,
    seed: int | None = None,
    target_accept: float = 0.9,
    progress: Annotated[bool, typer.Option(help="show the sampler's progress bar")] = True,
) -> None:
    """Fit LAW to the runs in RUNS and print the posterior summary and diagnostics."""
    def go():
        from bayeslaw.data import load_runs
        from bayeslaw.fit import fit
        from bayeslaw.model import model_priors

        table = load_runs(runs, law, _pairs(column, "--column"))
        priors = model_priors(table.law, likelihood, _pairs(prior, "--prior"))  # checked before any output
        for note in table.notes():
            typer.echo(f"note: {note}")
        typer.echo(f"fitting {table.law.name} to {len(table)} runs ({chains} chains x {draws} draws)...", err=True)
        result = fit(table.law, table, priors=priors, likelihood=likelihood, sampler=sampler,
                     chains=chains, draws=draws, tune=tune, seed=seed, target_accept=target_accept,
                     progress=progress and sys.stderr.isatty())
        if out is not None:
            result.save(out)
            typer.echo(f"saved to {out}")
        return result

    result = _run(go)
    _report(result)
    if not result.converged:
        raise typer.Exit(EXIT_NOT_CONVERGED)


@app.command("summary")
def summary_command(path: Annotated[Path, typer.Argument(help="a fit saved by `bayeslaw fit --out`")]) -> None:
    """Print the posterior summary and diagnostics of a saved fit."""
    from bayeslaw.fit import load

    result = _run(lambda: load(path))
    typer.echo(f"{result.law.name}: {result.law.formula}; {len(result.runs)} runs, likelihood {result.likelihood}")
    _report(result)
    if not result.converged:
        raise typer.Exit(EXIT_NOT_CONVERGED)


@app.command("demo")
def demo_command(
    budget: Annotated[float, typer.Option(help="FLOP budget for the compute-optimal allocation")] = 5.76e23,
    preset: Annotated[str, typer.Option(help="published constants the runs are drawn from")] = "besiroglu2024",
    noise: float = 0.01,
    chains: int = 4,
    draws: int = 1000,
    tune: int = 500,
    seed: int = 0,
) -> None:
    """Fit the Chinchilla law to a generated sweep of runs and plan one budget; needs no data."""
    import numpy as np

    from bayeslaw.demo import chinchilla_sweep
    from bayeslaw.fit import fit
    from bayeslaw.laws import get_law
    from bayeslaw.laws.chinchilla import chinchilla_optimum

    if not budget > 0:
        _fail(f"--budget must be > 0 FLOPs, got {budget}")
    law = get_law("chinchilla")
    if preset not in law.presets:
        _fail(f"unknown preset '{preset}'; known: {', '.join(law.presets)}")
    runs = chinchilla_sweep(preset, noise=noise, seed=seed)
    typer.echo(f"{len(runs)} runs on isoFLOP profiles from {runs['C'].min():.0e} to {runs['C'].max():.0e} FLOPs, "
               f"drawn from the Chinchilla law with the {preset} constants and {noise:.0%} log-normal noise")
    result = _run(lambda: fit(law, runs, chains=chains, draws=draws, tune=tune, seed=seed))
    _report(result)
    n_opt, d_opt = chinchilla_optimum(result.posterior, budget)
    n_true, d_true = chinchilla_optimum(law.presets[preset].values, budget)
    typer.echo(f"\ncompute-optimal allocation at C = {budget:.3g} FLOPs (C = 6 N D), median [94% interval]:")
    for label, draws_, truth in (("N", n_opt, n_true), ("D", d_opt, d_true)):
        lo, mid, hi = np.quantile(np.asarray(draws_), [0.03, 0.5, 0.97])
        typer.echo(f"  {label}_opt = {mid:.3e} [{lo:.3e}, {hi:.3e}]   (true {truth:.3e})")
    ratio = np.asarray(d_opt / n_opt)
    typer.echo(f"  tokens per parameter = {np.median(ratio):.1f} "
               f"[{np.quantile(ratio, 0.03):.1f}, {np.quantile(ratio, 0.97):.1f}]")
    if not result.converged:
        raise typer.Exit(EXIT_NOT_CONVERGED)


def main() -> None:  # pragma: no cover - entry point
    app()
