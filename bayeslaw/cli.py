"""The ``bayeslaw`` command: laws, models, fit, summary, demo, predict, plan, compare, plot, report, calibrate.

Every error is one line on stderr starting with ``error:``, never a traceback. Exit codes: 0 done;
1 an input or the work failed (a bad run table, fit or catalogue file, an option naming what the inputs
do not have, an output that cannot be written); 2 a usage error, found before any file is read (an
unknown command, option or law, a missing argument, a value of the wrong form or out of its range,
options that conflict); 3 a fit did not converge.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bayeslaw._search import check_budgets
from bayeslaw.errors import BayeslawError, ConvergenceWarning

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_CONVERGED = 3
LARGE_TABLE = 100_000  # runs from which the fit command says that sampling will be slow
MAX_TOTAL_DRAWS = 1_000_000  # chains x draws kept (the second attempt holds 4 times as many while sampling)


class _App(typer.Typer):
    """The typer app, called as a program: errors as one line (``main``), the exit code returned to the shell."""

    def __call__(self, args: Sequence[str] | None = None, prog_name: str | None = None, **_: Any) -> NoReturn:
        sys.exit(main(args, prog_name=prog_name or "bayeslaw"))


app = _App(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
           help="Bayesian scaling laws: fit a law to training runs with NUTS, inspect the posterior. "
                "Exit codes: 0 done, 1 bad input or failed work, 2 usage error, 3 not converged.")


def _one_line(text: Any, width: int = 2000) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[:width - 3] + "..."


def main(argv: Sequence[str] | None = None, prog_name: str = "bayeslaw") -> int:
    """Run the command line ``argv`` (default: the process's arguments) and return its exit code.

    Usage errors found by the parser print one line and return 2; any error not foreseen prints one line
    naming it and returns 1 (set BAYESLAW_DEBUG=1 to see the traceback)."""
    from typer import _click

    command = typer.main.get_command(app)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            result = command.main(args=list(sys.argv[1:] if argv is None else argv), prog_name=prog_name,
                                  standalone_mode=False)
    except _click.exceptions.NoArgsIsHelpError as err:
        typer.echo(err.ctx.get_help() if err.ctx else "usage: bayeslaw COMMAND [OPTIONS]")
        return EXIT_USAGE
    except _click.exceptions.UsageError as err:
        where = f" (see {err.ctx.command_path} --help)" if err.ctx is not None else ""
        typer.echo(f"error: {_one_line(err.format_message())}{where}", err=True)
        return EXIT_USAGE
    except _click.exceptions.ClickException as err:
        typer.echo(f"error: {_one_line(err.format_message())}", err=True)
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("error: interrupted", err=True)
        return 130
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else EXIT_ERROR
    except MemoryError:
        typer.echo("error: out of memory; use a smaller table or fewer draws", err=True)
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as err:  # a bug: one line, never a traceback
        if os.environ.get("BAYESLAW_DEBUG"):
            raise
        typer.echo(f"error: internal error ({type(err).__name__}: {_one_line(err, 300)}); please report it with "
                   "the command (BAYESLAW_DEBUG=1 shows the traceback)", err=True)
        return EXIT_ERROR
    return result if isinstance(result, int) else 0


def _fail(message: str) -> NoReturn:
    """An input or the work failed: one line, exit 1."""
    typer.echo(f"error: {_one_line(message)}", err=True)
    raise typer.Exit(EXIT_ERROR)


def _usage(message: str) -> NoReturn:
    """The command line is wrong (found before any file is read): one line, exit 2."""
    typer.echo(f"error: {_one_line(message)}", err=True)
    raise typer.Exit(EXIT_USAGE)


def _checked(check: Callable[[], Any]) -> Any:
    """Run a check of the command line: a BayeslawError it raises is a usage error."""
    try:
        return check()
    except BayeslawError as err:
        _usage(str(err))


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            _usage(f"{what} '{_one_line(item, 80)}' must look like NAME=VALUE")
        if key.strip() in out:
            _usage(f"{what} {key.strip()} is given twice")
        out[key.strip()] = value.strip()
    return out


def _finite(value: float | None, option: str, positive: bool = True) -> None:
    """A number option must be finite (and > 0 unless ``positive`` is False): a usage error otherwise."""
    if value is not None and not (math.isfinite(value) and (value > 0 or not positive)):
        _usage(f"{option} must be a finite number{' > 0' if positive else ''}, got {value}")


def _seed(seed: int | None) -> int:
    from bayeslaw.fit import check_seed

    return _checked(lambda: check_seed(seed))


def _levels(level: list[float] | None, default: tuple[float, ...]) -> tuple[float, ...]:
    from bayeslaw.predict import check_levels

    return _checked(lambda: check_levels(level or default))


def _law(name: str):
    from bayeslaw.laws import get_law

    return _checked(lambda: get_law(name))


def _draws(chains: int, draws: int) -> None:
    if chains * draws > MAX_TOTAL_DRAWS:
        _usage(f"--chains x --draws must be at most {MAX_TOTAL_DRAWS:,} draws in all, got {chains} x {draws}")


def _table(frame) -> str:
    return frame.to_string(float_format=lambda v: f"{v:.4g}")


def _report(result) -> None:
    typer.echo(_table(result.summary()))
    if result.fixed:
        typer.echo("fixed: " + ", ".join(f"{k} = {v:g}" for k, v in result.fixed.items()))
    for line in _attempt_lines(result):
        typer.echo(f"sampler: {line}")
    for note in result.info.get("notes") or []:
        typer.echo(f"note: {note}")
    typer.echo(f"\ndiagnostics: {result.diagnostics}")


def _run(fn):
    """Call ``fn`` turning bayeslaw errors and file-system errors into one line on stderr and exit 1."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the CLI reports it itself
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            return fn()
    except BayeslawError as err:
        _fail(str(err))
    except OSError as err:
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"{where}{err.strerror or err}")


def _output(path: Path | None) -> None:
    """Refuse an output that cannot be written, before any work (exit 1)."""
    if path is not None:
        from bayeslaw.files import check_writable

        _run(lambda: check_writable(path))


@app.command("laws")
def laws_command() -> None:
    """List the laws with their formulas, inputs and sources."""
    from bayeslaw.laws import LAWS

    width = max(len(n) for n in LAWS)
    for name, law in LAWS.items():
        typer.echo(f"{name:<{width}}  {law.formula}")
        typer.echo(f"{'':<{width}}  inputs {', '.join(law.inputs)} -> {law.target}; {law.source}")


@app.command("models")
def models_command() -> None:
    """List the catalogue of named law specifications and published fits (models/)."""
    from bayeslaw.catalogue import list_entries, load_entry

    entries = _run(lambda: [load_entry(n) for n in list_entries()])
    width = max(len(e.name) for e in entries)
    for entry in entries:
        kind = entry.uncertainty.kind if entry.uncertainty else "priors only"
        typer.echo(f"{entry.name:<{width}}  law {entry.law.name}; uncertainty: {kind}")
        typer.echo(f"{'':<{width}}  {entry.citation}")


CHAINS = typer.Option(min=1, max=64, help="independent chains")
DRAWS = typer.Option(min=1, max=MAX_TOTAL_DRAWS, help="kept draws per chain")
TUNE = typer.Option(min=0, max=100_000, help="tuning steps per chain")
WHERE = typer.Option(help="fit only the runs meeting a rule: COLUMN OP NUMBER joined by and/or, e.g. 'C<=1e21' or "
                          "'N>=70M and D<1.4T' (C = 6 N D is derived)")
EXCLUDE_ROWS = typer.Option(help="leave out these runs: 0-based row numbers, comma-separated (as `fit --json` and "
                                 "the notes number them)")
# the options several commands share, declared once
ColumnOption = Annotated[list[str] | None, typer.Option(help="CANONICAL=COLUMN, e.g. loss=val-loss")]
WhereOption = Annotated[str | None, WHERE]
ExcludeRowsOption = Annotated[str | None, EXCLUDE_ROWS]
ChainsOption = Annotated[int, CHAINS]
DrawsOption = Annotated[int, DRAWS]
TuneOption = Annotated[int, TUNE]
TargetAcceptOption = Annotated[float | None, typer.Option(help="NUTS target acceptance (default: the law's, 0.9 "
                                                                "for most)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def _check_target_accept(target_accept: float | None) -> None:
    if target_accept is not None and not 0 < target_accept < 1:
        _usage(f"--target-accept must lie in (0, 1), got {target_accept}")


def _chosen_runs(path: Path, law, mapping: dict[str, str], where: str | None, exclude_rows: str | None):
    """The table at ``path``, or only its rows meeting ``where`` and not in ``exclude_rows`` (a frame; the rule is
    read on ``law``'s canonical columns, the rows keep their order)."""
    if where is None and exclude_rows is None:
        return path
    from bayeslaw.data import load_runs, read_table
    from bayeslaw.where import Where, chosen_mask

    frame, _ = read_table(path)
    runs = load_runs(frame, law, mapping)
    keep = chosen_mask(runs, where, _rows(exclude_rows))
    typer.echo(f"note: {int(keep.sum())} of {len(runs)} runs chosen"
               + (f" by where '{Where.parse(where)}'" if where else "")
               + (f", rows {exclude_rows} left out" if exclude_rows else ""), err=True)
    return frame[keep].reset_index(drop=True)


def _check_choice(where: str | None, exclude_rows: str | None) -> None:
    """--where and --exclude-rows read before anything is fitted (usage errors, exit 2)."""
    from bayeslaw.where import Where

    if where is not None:
        _checked(lambda: Where.parse(where))
    _rows(exclude_rows)


def _rows(text: str | None) -> list[int]:
    if text is None:
        return []
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        _usage(f"--exclude-rows takes 0-based row numbers separated by commas, got '{_one_line(text, 40)}'")


@app.command("fit")
def fit_command(
    runs: Annotated[Path, typer.Argument(help="CSV of runs, one row per training run")],
    law: Annotated[str, typer.Option(help="law name (see `bayeslaw laws`)")] = "chinchilla",
    out: Annotated[Path | None, typer.Option(help="write the fit to this NetCDF file")] = None,
    prior: Annotated[list[str] | None, typer.Option(help="PARAM=Dist(arg=value, ...), repeatable")] = None,
    prior_from: Annotated[str | None, typer.Option(help="'literature': priors built from the catalogue's "
                                                        "published fits of the law")] = None,
    fix: Annotated[list[str] | None, typer.Option(help="hold a published parameter at a value, NAME=VALUE, "
                                                       "repeatable: --fix E=1.69 --fix A=406.4")] = None,
    column: ColumnOption = None,
    likelihood: Annotated[str, typer.Option(help="student_t, normal or laplace")] = "student_t",
    sampler: Annotated[str, typer.Option(help="nutpie or pymc")] = "nutpie",
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    seed: Annotated[int | None, typer.Option(help="sampler seed (default: a fresh one, printed)")] = None,
    target_accept: TargetAcceptOption = None,
    retry: Annotated[bool, typer.Option(help="sample once more, longer, when the convergence checks fail")] = True,
    progress: Annotated[bool, typer.Option(help="show the sampler's progress bar")] = True,
    where: WhereOption = None,
    exclude_rows: ExcludeRowsOption = None,
    discrepancy: Annotated[str, typer.Option(help="model discrepancy: gp (default; intervals widen beyond the "
                                                  "runs) or none (the law with independent noise)")] = "gp",
) -> None:
    """Fit LAW to the runs in RUNS and print the posterior summary and diagnostics."""
    from bayeslaw.data import check_column_names
    from bayeslaw.discrepancy import check_kind
    from bayeslaw.fit import SAMPLERS
    from bayeslaw.model import model_priors

    # the command line first, before any file is read (exit 2)
    chosen_law = _law(law)
    mapping = _pairs(column, "--column")
    _checked(lambda: check_column_names(chosen_law, mapping))
    overrides = _pairs(prior, "--prior")
    _checked(lambda: model_priors(chosen_law, likelihood, overrides))
    fixed = _fixed(_pairs(fix, "--fix"), chosen_law)
    both = sorted(set(overrides) & set(fixed))
    if both:
        _usage(f"{both[0]} is given both --prior and --fix: drop one of the two")
    if prior_from not in (None, "literature"):
        _usage(f"unknown prior source '{_one_line(prior_from, 40)}' for --prior-from; allowed: literature")
    if sampler not in SAMPLERS:
        _usage(f"unknown sampler '{_one_line(sampler, 40)}'; allowed: {', '.join(SAMPLERS)}")
    _checked(lambda: check_kind(discrepancy))
    _check_target_accept(target_accept)
    _check_choice(where, exclude_rows)
    _draws(chains, draws)
    chosen = _seed(seed)
    _output(out)  # a folder that is missing or read-only, or a directory in the way: before sampling (exit 1)

    def go():
        from bayeslaw.data import load_runs
        from bayeslaw.fit import fit

        table = load_runs(_chosen_runs(runs, chosen_law, mapping, where, exclude_rows), chosen_law, mapping)
        for note in table.notes():
            typer.echo(f"note: {note}")
        if len(table) >= LARGE_TABLE:
            typer.echo(f"note: {len(table):,} runs: every gradient of the posterior evaluates all of them (about 0.1 s "
                       "per million runs here), so sampling takes long; runs averaged per configuration fit in "
                       "seconds", err=True)
        typer.echo(f"fitting {table.law.name} to {len(table)} runs ({chains} chains x {draws} draws, seed {chosen})"
                   "...", err=True)
        result = fit(table.law, table, priors=overrides, prior_from=prior_from, fixed=fixed,
                     likelihood=likelihood, sampler=sampler, chains=chains, draws=draws, tune=tune, seed=chosen,
                     target_accept=target_accept, progress=progress and sys.stderr.isatty(),
                     discrepancy=discrepancy, retry=retry)
        if result.discrepancy is not None:
            typer.echo(f"note: {result.discrepancy.describe()}")
        from bayeslaw.outliers import describe

        outlying = describe(result, exclude_hint=where is None and exclude_rows is None)
        if outlying:
            typer.echo(f"note: {outlying}")
        if out is not None:
            result.save(out)
            typer.echo(f"saved to {out}")
        return result

    result = _run(go)
    _report(result)
    _exit_if_unconverged([result])


def _fixed(values: dict[str, str], law) -> dict[str, float]:
    """--fix NAME=VALUE: a published parameter of the law and a finite number (usage errors otherwise)."""
    out = {}
    for name, text in values.items():
        if name not in law.published:
            _usage(f"cannot fix '{_one_line(name, 40)}': law '{law.name}' has published parameters "
                   f"{', '.join(law.published)}")
        try:
            out[name] = float(text)
        except ValueError:
            _usage(f"--fix {name} must be a number, got '{_one_line(text, 40)}'")
        _finite(out[name], f"--fix {name}", positive=False)
    return out


def _attempt_lines(result) -> list[str]:
    """What the sampler did: the seed, and each attempt with its settings and verdict."""
    info = result.info
    lines = [f"seed {info.get('seed')} (--seed {info.get('seed')} reproduces these draws)"]
    attempts = info.get("attempts") or []
    if len(attempts) > 1:
        first, second = attempts[0], attempts[1]
        lines.append(f"the first attempt did not converge ({first['diagnostics']['max_rhat']:.3f} R-hat, "
                     f"{first['diagnostics']['min_ess_bulk']:.0f} bulk ESS, {first['diagnostics']['divergences']} "
                     f"divergences); a second attempt with {second['thin']}x longer chains (tune {second['tune']}, "
                     f"every {second['thin']}th of {second['draws'] * second['thin']} draws kept) at target_accept "
                     f"{second['target_accept']:g} {'converged' if second['converged'] else 'did not converge either'}")
    return lines


def _exit_if_unconverged(results) -> None:
    """Exit 3 when any fit stayed unconverged, naming the law, the parameters and the remedy on stderr."""
    bad = [r for r in results if not r.converged]
    for result in bad:
        where = f" in {', '.join(result.diagnostics.slowest[:4])}" if result.diagnostics.slowest else ""
        typer.echo(f"not converged: {result.law.name}{where}; " + "; ".join(result.diagnostics.problems), err=True)
    if bad:
        raise typer.Exit(EXIT_NOT_CONVERGED)


@app.command("summary")
def summary_command(path: Annotated[Path, typer.Argument(help="a fit saved by `bayeslaw fit --out`")]) -> None:
    """Print the posterior summary and diagnostics of a saved fit."""
    from bayeslaw.fit import load

    result = _run(lambda: load(path))
    typer.echo(f"{result.law.name}: {result.law.formula}; {len(result.runs)} runs, likelihood {result.likelihood}")
    if result.discrepancy is not None:
        typer.echo(f"model discrepancy: {result.discrepancy.describe()}")
    _report(result)
    _exit_if_unconverged([result])


@app.command("demo")
def demo_command(
    budget: Annotated[float, typer.Option(help="FLOP budget for the compute-optimal allocation")] = 5.76e23,
    preset: Annotated[str, typer.Option(help="published constants the runs are drawn from")] = "besiroglu2024",
    noise: float = 0.01,
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    seed: int = 0,
) -> None:
    """Fit the Chinchilla law to a generated sweep of runs and plan one budget; needs no data."""
    import numpy as np

    from bayeslaw.demo import chinchilla_sweep
    from bayeslaw.fit import fit
    from bayeslaw.laws import get_law
    from bayeslaw.laws.chinchilla import chinchilla_optimum
    from bayeslaw.plan import plan

    _checked(lambda: check_budgets(budget, "--budget"))
    _finite(noise, "--noise", positive=False)
    if noise < 0:
        _usage(f"--noise must be >= 0, got {noise}")
    law = get_law("chinchilla")
    if preset not in law.presets:
        _usage(f"unknown preset '{_one_line(preset, 40)}'; known: {', '.join(law.presets)}")
    _draws(chains, draws)
    seed = _seed(seed)
    runs = chinchilla_sweep(preset, noise=noise, seed=seed)
    typer.echo(f"{len(runs)} runs on isoFLOP profiles from {runs['C'].min():.0e} to {runs['C'].max():.0e} FLOPs, "
               f"drawn from the Chinchilla law with the {preset} constants and {noise:.0%} log-normal noise")
    result = _run(lambda: fit(law, runs, chains=chains, draws=draws, tune=tune, seed=seed))
    _report(result)
    draws = plan(result, budget).draws.isel(budget=0)
    n_true, d_true = chinchilla_optimum(law.presets[preset].values, budget)
    typer.echo(f"\ncompute-optimal allocation at C = {budget:.3g} FLOPs (C = 6 N D), median [94% interval]:")
    for label, values, truth in (("N", draws["N_opt"], n_true), ("D", draws["D_opt"], d_true)):
        lo, mid, hi = np.quantile(values.values, [0.03, 0.5, 0.97])
        typer.echo(f"  {label}_opt = {mid:.3e} [{lo:.3e}, {hi:.3e}]   (true {truth:.3e})")
    ratio = draws["tokens_per_param"].values
    typer.echo(f"  tokens per parameter = {np.median(ratio):.1f} "
               f"[{np.quantile(ratio, 0.03):.1f}, {np.quantile(ratio, 0.97):.1f}]")
    _exit_if_unconverged([result])


def _numbers(text: str | None, what: str, positive: bool = True) -> list[float]:
    """Comma- or space-separated finite numbers, e.g. '7e10,1e11' (> 0 unless ``positive`` is False)."""
    if text is None:
        return []
    try:
        values = [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        _usage(f"{what} must be numbers, got '{_one_line(text, 60)}'")
    if not values:
        _usage(f"{what} needs at least one number")
    for value in values:
        _finite(value, what, positive)
    return values


def _one_source(path: Path | None, model: str | None) -> None:
    """Refuse unless exactly one of a saved fit and a catalogue entry is given."""
    if (path is None) == (model is None):
        _usage("give either a saved fit (PATH) or --model NAME (see `bayeslaw models`), " +
               ("not both" if model is not None else "none was given"))


def _source(path: Path | None, model: str | None, seed: int):
    """The saved fit at PATH, or the catalogue entry's posterior; with the entry (None for a fit)."""
    if model is None:
        from bayeslaw.fit import load

        return load(path), None
    from bayeslaw.catalogue import load_entry

    entry = load_entry(model)
    return entry.posterior(seed=seed), entry


def _emit(tables: dict, as_json: bool, as_csv: bool) -> None:
    """Print tables for people, or as JSON / CSV for scripts."""
    import json

    import pandas as pd

    if as_json:
        out = {k: (v.reset_index().to_dict(orient="records") if isinstance(v, pd.DataFrame) else v)
               for k, v in tables.items()}
        typer.echo(json.dumps(out, indent=2, default=float))
    elif as_csv:
        frames = [v for v in tables.values() if isinstance(v, pd.DataFrame)]
        typer.echo(pd.concat(frames, axis=1).to_csv() if len(frames) > 1 else frames[0].to_csv(), nl=False)
    else:
        for name, table in tables.items():
            typer.echo(f"\n{name}:")
            if isinstance(table, pd.DataFrame):
                typer.echo(_table(table.T if table.shape[1] > 6 else table))
            elif isinstance(table, str):
                typer.echo(f"  {table}")
            else:
                typer.echo("  " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in table.items()))


@app.command("predict")
def predict_command(
    path: Annotated[Path | None, typer.Argument(help="a fit saved by `bayeslaw fit --out` (or use --model)")] = None,
    model: Annotated[str | None, typer.Option(help="a published fit from the catalogue (`bayeslaw models`), "
                                                   "instead of PATH")] = None,
    n: Annotated[str | None, typer.Option("--N", help="parameters, e.g. 7e10 or 7e10,1e11")] = None,
    d: Annotated[str | None, typer.Option("--D", help="training tokens")] = None,
    c: Annotated[str | None, typer.Option("--C", help="training FLOPs")] = None,
    at: Annotated[list[str] | None, typer.Option(help="other inputs, NAME=VALUES, e.g. U=25e9 or S=0.5,0.75")] = None,
    level: Annotated[list[float] | None, typer.Option(help="credible level, repeatable")] = None,
    seed: int = 0,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV")] = False,
) -> None:
    """Posterior predictive of the law's target at new inputs, flagging extrapolation."""
    from bayeslaw.data import RANGE_RULES
    from bayeslaw.predict import predict

    inputs = {k: _numbers(v, f"--{k}") for k, v in (("N", n), ("D", d), ("C", c)) if v is not None}
    for name, values in _pairs(at, "--at").items():
        if name in inputs:
            _usage(f"--at {name} repeats --{name}: give each input once")
        inputs[name] = _numbers(values, f"--at {name}", positive=False)
        check, rule = RANGE_RULES.get(name, (lambda v: v > 0, "must be > 0"))
        if not all(check(v) for v in inputs[name]):
            _usage(f"--at {name} {rule}, got {_one_line(values, 60)}")
    _one_source(path, model)
    levels = _levels(level, (0.5, 0.9))
    seed = _seed(seed)

    def go():
        result, _ = _source(path, model, seed)
        prediction = predict(result, seed=seed, **inputs)
        return prediction.summary(levels), prediction.uncertainty

    table, sources = _run(go)
    if not (as_json or as_csv) and (table["decades outside"] > 0).any():
        typer.echo("warning: some points lie outside the fitted runs (see 'decades outside')", err=True)
    _emit({"prediction": table, **({"uncertainty": sources} if sources else {})}, as_json, as_csv)


@app.command("plan", context_settings={"allow_extra_args": True})
def plan_command(
    ctx: typer.Context,
    budget: Annotated[list[float], typer.Option(help="FLOP budgets: --budget 1e22 1e23 1e24")],
    path: Annotated[Path | None, typer.Argument(help="a fit saved by `bayeslaw fit --out` (or use --model)")] = None,
    model: Annotated[str | None, typer.Option(help="a published fit from the catalogue (`bayeslaw models`), "
                                                   "instead of PATH")] = None,
    risk: Annotated[str | None, typer.Option(help="mean, quantile:Q, cvar:Q or prob:TARGET")] = None,
    max_params: Annotated[float | None, typer.Option(help="largest model (parameters)")] = None,
    unique_tokens: Annotated[float | None, typer.Option(help="unique tokens available (repeated by data-"
                                                            "constrained laws, a cap on D for others)")] = None,
    inference_tokens: Annotated[float | None, typer.Option(help="expected inference tokens")] = None,
    target_loss: Annotated[float | None, typer.Option(help="loss to reach")] = None,
    probability: Annotated[float, typer.Option(help="required probability of reaching --target-loss")] = 0.9,
    flops_per_param_token: Annotated[float, typer.Option(help="k in C = k N D")] = 6.0,
    level: Annotated[list[float] | None, typer.Option(help="credible level, repeatable")] = None,
    seed: int = 0,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV")] = False,
) -> None:
    """Compute-optimal N and D per budget under the posterior; risk-aware choices with --risk."""
    from bayeslaw.plan import plan
    from bayeslaw.risk import Risk, decide, min_budget
    from bayeslaw.serving import inference_optimal

    budgets = list(budget) + _numbers(" ".join(ctx.args), "--budget") if ctx.args else list(budget)
    if model is not None and path is not None and not path.exists():
        try:  # `--model M --budget 1e22 1e23`: the second budget lands in PATH
            budgets.insert(1, float(str(path)))
            path = None
        except ValueError:
            pass
    _one_source(path, model)
    _checked(lambda: check_budgets(budgets, "--budget"))
    for option, value in (("--max-params", max_params), ("--unique-tokens", unique_tokens),
                          ("--inference-tokens", inference_tokens), ("--target-loss", target_loss),
                          ("--flops-per-param-token", flops_per_param_token)):
        _finite(value, option)
    if not 0 < probability < 1:
        _usage(f"--probability must lie in (0, 1), got {probability}")
    if inference_tokens is not None and target_loss is None:
        _usage("--inference-tokens needs --target-loss (the loss the served model must reach)")
    if risk is not None:
        _checked(lambda: Risk.parse(risk, target_loss))
    levels = _levels(level, (0.9,))
    seed = _seed(seed)
    tables: dict = {}
    beyond: list[str] = []

    def go():
        result, entry = _source(path, model, seed)
        if entry is not None:
            tables["model"] = f"{entry.name} (law {entry.law.name}): {entry.citation}"
            tables["uncertainty"] = entry.uncertainty.label if entry.uncertainty else ""
        caps = {"max_params": max_params, "max_tokens": unique_tokens}
        stock = {"max_params": max_params, "unique_tokens": unique_tokens}  # data-constrained laws repeat it
        made = plan(result, budgets, flops_per_param_token=flops_per_param_token, **stock)
        tables["plan"] = made.summary(levels)
        beyond.extend(note for note in made.notes if "outside the fitted runs" in note)
        if entry is not None and entry.uncertainty.kind != "none":
            from bayeslaw.posterior import from_constants

            point = plan(from_constants(entry.law, entry.constants), budgets,
                         flops_per_param_token=flops_per_param_token, **stock)
            tables["at the published estimates"] = point.summary((0.5,)).filter(like="median").rename(
                columns=lambda c: c.replace(" median", ""))
        tables["notes"] = "; ".join(made.notes)
        if risk is not None:
            tables["decision"] = decide(result, budgets, risk, flops_per_param_token=flops_per_param_token,
                                        target_loss=target_loss, seed=seed, **caps).table
        if target_loss is not None and inference_tokens is None:
            tables["smallest budget"] = min_budget(result, target_loss, probability,
                                                   flops_per_param_token=flops_per_param_token, seed=seed, **caps)
        if inference_tokens is not None:
            draws = inference_optimal(result, target_loss, inference_tokens)
            flat = {k: v.values.ravel() for k, v in draws.items()}
            tables["inference-aware"] = {f"{k} median": float(np.nanmedian(v)) for k, v in flat.items()}

    import numpy as np

    _run(go)
    for note in beyond:
        typer.echo(f"warning: {note}", err=True)
    _emit(tables, as_json, as_csv)


@app.command("next")
def next_command(
    path: Annotated[Path, typer.Argument(help="a fit saved by `bayeslaw fit --out`")],
    budget: Annotated[float, typer.Option(help="FLOPs of the big run the decision is for")],
    spend: Annotated[float, typer.Option(help="FLOPs available for the new small runs")],
    candidates: Annotated[str, typer.Option(help="'grid' (N and D from the fitted runs' smallest to 10 times "
                                                 "their largest) or a CSV with columns N and D (or N and C)")] = "grid",
    risk: Annotated[str, typer.Option(help="the decision's loss: mean (expected regret), cvar:Q or "
                                           "quantile:Q")] = "mean",
    max_params: Annotated[float | None, typer.Option(help="largest model (parameters)")] = None,
    unique_tokens: Annotated[float | None, typer.Option(help="unique tokens of the big run (data-constrained "
                                                            "laws; candidates without a U column too)")] = None,
    flops_per_param_token: Annotated[float, typer.Option(help="k in C = k N D")] = 6.0,
    outcomes: Annotated[int, typer.Option(min=8, max=4096, help="simulated outcomes per candidate")] = 64,
    plot: Annotated[Path | None, typer.Option(help="also draw the candidates and picks to this .png/.svg")] = None,
    seed: int = 0,
    as_json: JsonOption = False,
) -> None:
    """Which runs to train next: each candidate's expected gain for the decision at --budget (expected value of
    sample information, by importance reweighting of the fit's draws) per FLOP, and a greedy batch under --spend."""
    from bayeslaw.design import advise, figure
    from bayeslaw.risk import Risk

    for option, value in (("--budget", budget), ("--spend", spend), ("--max-params", max_params),
                          ("--unique-tokens", unique_tokens), ("--flops-per-param-token", flops_per_param_token)):
        _finite(value, option)
    _checked(lambda: Risk.parse(risk))
    if candidates != "grid" and not Path(candidates).is_file():
        _usage(f"--candidates: '{_one_line(candidates, 80)}' is neither 'grid' nor a CSV file")
    if plot is not None:
        _figure_path(plot)
    seed = _seed(seed)
    _output(plot)

    def go():
        from bayeslaw.fit import load

        result = load(path)
        advice = advise(result, budget, spend, candidates=None if candidates == "grid" else candidates, risk=risk,
                        flops_per_param_token=flops_per_param_token, max_params=max_params,
                        unique_tokens=unique_tokens, outcomes=outcomes, seed=seed)
        if plot is not None:
            from bayeslaw.plots import write_figure

            write_figure(figure(advice, result), plot)
        return advice

    advice = _run(go)
    if as_json:
        import json

        typer.echo(json.dumps(advice.to_dict(), indent=2, default=float))
    else:
        typer.echo(str(advice))
        if not advice.picks.empty:
            typer.echo("\npicks (greedy, re-scored after each):\n" + _table(advice.picks.set_index("pick")))


@app.command("compare")
def compare_command(
    runs: Annotated[Path, typer.Argument(help="CSV of runs")],
    laws: Annotated[str, typer.Option(help="comma-separated law names, e.g. chinchilla,kaplan-nd,power")],
    holdout: Annotated[str, typer.Option(help="leave-future-out split: 'default' holds out the largest-compute fifth "
                                              "(C at or above its 80th percentile, C = 6 N D); a rule such as "
                                              "'C>1e21'; 'none' for PSIS-LOO alone")] = "default",
    marginal: Annotated[bool, typer.Option(help="also estimate marginal likelihoods by SMC (slow)")] = False,
    plot: Annotated[Path | None, typer.Option(help="also draw elpd and stacking weights to this .png/.svg")] = None,
    column: ColumnOption = None,
    where: WhereOption = None,
    exclude_rows: ExcludeRowsOption = None,
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    target_accept: TargetAcceptOption = None,
    seed: int = 0,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print the two rankings side by side as CSV")] = False,
) -> None:
    """Rank laws on the same runs for extrapolation (leave-future-out, refitted below the split) beside
    PSIS-LOO (interpolation), and name any disagreement. Exits 3 when a fit or refit did not converge."""
    from bayeslaw.compare import bayes_factors, compare, failed_checks, marginal_likelihood
    from bayeslaw.data import load_runs, readable_columns
    from bayeslaw.fit import MAX_POINTWISE_VALUES, fit
    from bayeslaw.holdout import Holdout, check_sizes, is_default, is_off, resolve_split
    from bayeslaw.model import model_parameters, model_priors

    chosen = [_law(n.strip()) for n in laws.split(",") if n.strip()]
    if len(chosen) < 2:
        _usage("--laws needs at least two law names, comma-separated")
    if len({law.name for law in chosen}) < len(chosen):
        _usage("--laws names a law twice")
    mapping = _pairs(column, "--column")
    reads = {law.name: [name for names in readable_columns(law) for name in names] for law in chosen}
    for canonical in mapping:
        if not any(canonical in names for names in reads.values()):
            _usage(f"--column {canonical}: '{_one_line(canonical, 40)}' is not a name any of the laws reads")
    split = None if is_off(holdout) else holdout
    if split is not None and not is_default(split):
        _checked(lambda: Holdout.parse(split))
    if plot is not None:
        _figure_path(plot)
    _check_target_accept(target_accept)
    _check_choice(where, exclude_rows)
    _draws(chains, draws)
    seed = _seed(seed)
    _output(plot)

    def go():
        first = chosen[0]
        source = _chosen_runs(runs, first, {k: v for k, v in mapping.items() if k in reads[first.name]}, where,
                              exclude_rows)
        loaded = {law.name: load_runs(source, law, {k: v for k, v in mapping.items() if k in reads[law.name]})
                  for law in chosen}
        size = len(next(iter(loaded.values()))) * chains * draws
        if size > MAX_POINTWISE_VALUES:
            raise BayeslawError(f"PSIS-LOO needs the pointwise log-likelihood of every fit: {size:,} values "
                                f"({size * 8 / 1e9:.3g} GB) is more than bayeslaw stores "
                                f"({MAX_POINTWISE_VALUES * 8 / 1e9:.3g} GB); use fewer draws or runs")
        if split is not None:  # a split that cannot be refitted fails before the first fit
            rule, held = resolve_split(split, list(loaded.values()))
            for name, table in loaded.items():
                params = model_parameters(model_priors(table.law, "student_t"))
                check_sizes(str(rule), name, int((~held).sum()), int(held.sum()), len(params))
        fits = {}
        for name, table in loaded.items():
            typer.echo(f"fitting {name}...", err=True)
            fits[name] = fit(name, table, chains=chains, draws=draws, tune=tune, seed=seed,
                             target_accept=target_accept)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # every warning is in result.warnings, printed below
            result = compare(fits, holdout=split, seed=seed, progress=lambda line: typer.echo(line, err=True))
        if plot is not None:
            from bayeslaw.plots import comparison, write_figure

            write_figure(comparison(result), plot)
        evidence = None
        if marginal:
            typer.echo("marginal likelihoods by SMC...", err=True)
            evidence = bayes_factors([marginal_likelihood(n, runs, columns=mapping, seed=seed) for n in loaded])
        return result, evidence

    result, evidence = _run(go)
    _print_comparison(result, evidence, as_json, as_csv)
    if not result.converged:
        for name, problems in result.problems.items():
            if problems:
                typer.echo(f"not converged: {name}: {failed_checks(problems)}", err=True)
        raise typer.Exit(EXIT_NOT_CONVERGED)


def _print_comparison(result, evidence, as_json: bool, as_csv: bool) -> None:
    """The two rankings and the verdict for people (rank marked ! when not converged), or JSON / CSV."""
    import json

    if as_json:
        out = result.to_dict()
        if evidence is not None:
            out["marginal_likelihood"] = json.loads(evidence.reset_index().to_json(orient="records"))
        typer.echo(json.dumps(out, indent=2))
        return
    if as_csv:
        typer.echo(result.ranking.to_csv(), nl=False)
        return
    for line in result.warnings:
        if line != result.disagreement:
            typer.echo(f"warning: {line}", err=True)

    def marked(table, columns):
        shown = table[columns].copy()
        shown["rank"] = [f"{r}{'' if ok else ' !'}" for r, ok in zip(table["rank"], table["converged"], strict=True)]
        return _table(shown)

    lfo = result.extrapolation
    if lfo is not None:
        split = result.split
        how = " (default: the largest-compute fifth, C at or above its 80th percentile)" if split["default"] else ""
        typer.echo(f"\nleave-future-out split: {split['rule']}{how}; each law refitted on {split['n_fit']} runs and "
                   f"scored on the {split['n_heldout']} held out")
        columns = ["rank", "lpd_per_run", *[c for c in lfo.columns if c.startswith("coverage_")],
                   "median_relative_error", "fit_converged", "refit_converged"]
        typer.echo(f"\nranking for extrapolation (leave-future-out):\n{marked(lfo, columns)}")
    loo_columns = ["rank", "elpd", "elpd_se", "elpd_diff", "diff_se", "weight", "n_pareto_k_high", "converged"]
    typer.echo(f"\nranking by PSIS-LOO (interpolation):\n{marked(result.loo, loo_columns)}")
    if lfo is not None:
        verdict = result.disagreement or ("PSIS-LOO and leave-future-out agree: " + " > ".join(lfo.index))
        typer.echo(f"\n{verdict}")
    if not result.converged:
        typer.echo("! did not converge (the fit or its leave-future-out refit): the rank is provisional")
    if evidence is not None:
        typer.echo(f"\nmarginal likelihood (SMC):\n{_table(evidence)}")


PLOT_KINDS = ("isoflop", "frontier", "extrapolation", "pairs")


def _budget_list(ctx: typer.Context, budget: list[float] | None) -> list[float] | None:
    """--budget 1e22 1e24: the first value is the option's, the others arrive as extra arguments."""
    if ctx.args and not budget:
        _usage(f"unexpected arguments: {_one_line(' '.join(ctx.args), 80)}")
    values = list(budget or []) + (_numbers(" ".join(ctx.args), "--budget") if ctx.args else [])
    if values:
        _checked(lambda: check_budgets(values, "--budget"))
    return values or None


def _figure_path(out: Path) -> None:
    from bayeslaw.plots import FORMATS

    if out.suffix.lower() not in FORMATS:
        _usage(f"cannot write a figure to '{_one_line(out, 80)}': use a .png or .svg file name")


@app.command("plot", context_settings={"allow_extra_args": True})
def plot_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="a fit saved by `bayeslaw fit --out`")],
    kind: Annotated[str, typer.Option(help="isoflop, frontier, extrapolation or pairs")],
    out: Annotated[Path, typer.Option("--out", "-o", help="file to write: .png or .svg")],
    budget: Annotated[list[float] | None, typer.Option(help="FLOP budgets: --budget 1e22 1e24")] = None,
    level: Annotated[list[float] | None, typer.Option(help="credible level, repeatable")] = None,
) -> None:
    """Draw one figure of a saved fit to PNG or SVG."""
    budgets = _budget_list(ctx, budget)
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


@app.command("report", context_settings={"allow_extra_args": True})
def report_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="a fit saved by `bayeslaw fit --out`")],
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")],
    budget: Annotated[list[float] | None, typer.Option(help="FLOP budgets to plan: --budget 1e22 1e24 "
                                                            "(default 10, 100, 1000 x the largest run)")] = None,
) -> None:
    """Write one self-contained HTML report: data, diagnostics, parameters, figures and a plan."""
    budgets = _budget_list(ctx, budget)
    _output(out)

    def go():
        from bayeslaw.fit import load
        from bayeslaw.report import report

        result = load(path)
        report(result, out, budgets)
        return result

    result = _run(go)
    typer.echo(f"wrote {out}")
    _exit_if_unconverged([result])


@app.command("calibrate")
def calibrate_command(
    runs: Annotated[Path, typer.Argument(help="CSV of runs")],
    holdout: Annotated[list[str], typer.Option(help="split rule, repeatable: --holdout 'C>1e20' --holdout 'C>1e21'")],
    law: Annotated[str, typer.Option(help="law name (see `bayeslaw laws`)")] = "chinchilla",
    discrepancy: Annotated[str, typer.Option(help="the discrepancy compared with the plain law")] = "gp",
    column: ColumnOption = None,
    where: WhereOption = None,
    exclude_rows: ExcludeRowsOption = None,
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    target_accept: TargetAcceptOption = None,
    seed: int = 0,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="print CSV")] = False,
) -> None:
    """Fit below each holdout rule, score the runs above: interval coverage, log predictive density and
    median error, with and without model discrepancy."""
    from bayeslaw.calibrate import calibrate
    from bayeslaw.data import check_column_names
    from bayeslaw.discrepancy import check_kind
    from bayeslaw.holdout import Holdout

    chosen = _law(law)
    mapping = _pairs(column, "--column")
    _checked(lambda: check_column_names(chosen, mapping))
    if _checked(lambda: check_kind(discrepancy)) is None:
        _usage("--discrepancy: calibrate compares the law with and without a discrepancy; give one, e.g. gp")
    for rule in holdout:
        _checked(lambda rule=rule: Holdout.parse(rule))
    _check_target_accept(target_accept)
    _check_choice(where, exclude_rows)
    _draws(chains, draws)
    seed = _seed(seed)

    def go():
        table = _chosen_runs(runs, chosen, mapping, where, exclude_rows)
        return calibrate(table, chosen.name, holdout, discrepancy=discrepancy, columns=mapping,
                         seed=seed, chains=chains, draws=draws, tune=tune, target_accept=target_accept,
                         progress=lambda line: typer.echo(line, err=True))

    table = _run(go)
    tables = {"held-out calibration": table}
    if not (as_json or as_csv):
        tables["reading"] = ("calibrated intervals cover about 50%, 80% and 90% of the held-out runs; "
                             "lpd per run: higher is better")
    _emit(tables, as_json, as_csv)
    for split, problem in table.attrs.get("problems", {}).items():
        typer.echo(f"not converged: {law} fitted below {split}: {problem}", err=True)
    if table.attrs.get("problems"):
        raise typer.Exit(EXIT_NOT_CONVERGED)


