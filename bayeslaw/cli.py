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


def _plain_flags(params: list) -> list:
    """Help says what to type: flags show no value type (never ``<bool>``), an argument only its metavar (RUNS, PATH;
    never ``<path>``)."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
        if isinstance(param, typer.core.TyperArgument) and param.metavar is not None:
            param.display_type_rich = lambda ctx: None
    return params


class _Command(typer.core.TyperCommand):
    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))


class _Group(typer.core.TyperGroup):
    def get_params(self, ctx):
        return _plain_flags(super().get_params(ctx))


app = _App(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=_Group,
           help="Bayesian scaling laws: fit a law to training runs with NUTS, inspect the posterior. "
                "Exit codes: 0 done, 1 bad input or failed work, 2 usage error, 3 not converged. List options take "
                "repeated options or commas: --budget 1e22 --budget 1e24, or --budget 1e22,1e24.")


def _version(value: bool) -> None:
    if value:
        from bayeslaw import __version__

        typer.echo(f"bayeslaw {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Bayesian scaling laws: fit a law to training runs with NUTS, inspect the posterior."""


def _command(name: str, **settings: Any):
    """Register a command of the app (help without value types for flags)."""
    return app.command(name, cls=_Command, **settings)


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


def _listed(values: Sequence[str] | str | None, pairs: bool = False) -> list[str]:
    """The values of a list option, given repeated (--budget 1e22 --budget 1e24) and/or comma-separated
    (--budget 1e22,1e24); a comma inside parentheses stays (a prior's arguments); an empty value is kept (and
    refused by the option's check). With ``pairs`` (NAME=VALUE
    options) a piece without '=' continues the previous value: --at S=0.5,0.75 is one pair."""
    out: list[str] = []
    for value in [values] if isinstance(values, str) else values or []:
        depth, start = 0, 0
        pieces = []
        for i, char in enumerate(value):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == "," and depth == 0:
                pieces.append(value[start:i])
                start = i + 1
        pieces.append(value[start:])
        for piece in (p.strip() for p in pieces):  # an empty piece stays, for its option to refuse
            if pairs and out and "=" not in piece:
                out[-1] += f",{piece}"
            else:
                out.append(piece)
    return out


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in _listed(values, pairs=True):
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


def _levels(level: list[str] | None, default: tuple[float, ...]) -> tuple[float, ...]:
    from bayeslaw.predict import check_levels

    values = _numbers(level, "--level", positive=False) if level else default
    return _checked(lambda: check_levels(values))


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


@_command("laws")
def laws_command(as_json: JsonOption = False) -> None:
    """List the laws with their formulas, inputs and sources."""
    from bayeslaw.laws import LAWS

    if as_json:
        from bayeslaw.jsondata import document

        _print_json(document("laws", {"laws": [
            {"law": name, "formula": law.formula, "inputs": list(law.inputs), "target": law.target,
             "parameters": list(law.published), "source": law.source} for name, law in LAWS.items()]}))
        return
    width = max(len(n) for n in LAWS)
    for name, law in LAWS.items():
        typer.echo(f"{name:<{width}}  {law.formula}")
        typer.echo(f"{'':<{width}}  inputs {', '.join(law.inputs)} -> {law.target}; {law.source}")


@_command("models")
def models_command(as_json: JsonOption = False) -> None:
    """List the catalogue of named law specifications and published fits (models/)."""
    from bayeslaw.catalogue import list_entries, load_entry

    entries = _run(lambda: [load_entry(n) for n in list_entries()])
    if as_json:
        from bayeslaw.jsondata import document

        _print_json(document("models", {"models": [
            {"model": e.name, "law": e.law.name, "uncertainty": e.uncertainty.kind if e.uncertainty else None,
             "citation": e.citation} for e in entries]}))
        return
    width = max(len(e.name) for e in entries)
    for entry in entries:
        kind = entry.uncertainty.kind if entry.uncertainty else "priors only"
        typer.echo(f"{entry.name:<{width}}  law {entry.law.name}; uncertainty: {kind}")
        typer.echo(f"{'':<{width}}  {entry.citation}")


CHAINS = typer.Option(min=1, max=64, metavar="N", help="independent chains")
DRAWS = typer.Option(min=1, max=MAX_TOTAL_DRAWS, metavar="N", help="kept draws per chain")
TUNE = typer.Option(min=0, max=100_000, metavar="N", help="tuning steps per chain")
WHERE = typer.Option(metavar="RULE", help="fit only the runs meeting a rule: COLUMN OP NUMBER joined by and/or, e.g. "
                                          "'C<=1e21' or 'N>=70M and D<1.4T' (C = 6 N D is derived)")
EXCLUDE_ROWS = typer.Option(metavar="ROWS", help="leave out these runs: 0-based row numbers, repeated or comma-"
                                                 "separated (as `fit --json` and the notes number them)")
# the options several commands share, declared once
ColumnOption = Annotated[list[str] | None, typer.Option(metavar="NAME=COLUMN", help="read a canonical input from "
                                                                                   "a column, e.g. loss=val-loss")]
WhereOption = Annotated[str | None, WHERE]
ExcludeRowsOption = Annotated[list[str] | None, EXCLUDE_ROWS]
ChainsOption = Annotated[int, CHAINS]
DrawsOption = Annotated[int, DRAWS]
TuneOption = Annotated[int, TUNE]
TargetAcceptOption = Annotated[float | None, typer.Option(metavar="P", help="NUTS target acceptance (default: the "
                                                                          "law's, 0.9 for most)")]
SeedOption = Annotated[int, typer.Option(metavar="SEED", help="seed of the sampler and of predictive draws")]
FreshSeedOption = Annotated[int | None, typer.Option(metavar="SEED", help="sampler seed (default: a fresh one, "
                                                                           "printed)")]
LawOption = Annotated[str, typer.Option(metavar="LAW", help="law name (see `bayeslaw laws`)")]
LevelOption = Annotated[list[str] | None, typer.Option(metavar="LEVEL", help="credible level(s), e.g. 0.5,0.9")]
BudgetOption = Annotated[list[str] | None, typer.Option(metavar="FLOPS", help="FLOP budget(s): --budget 1e22,1e24 "
                                                                             "or --budget 1e22 --budget 1e24")]
ModelOption = Annotated[str | None, typer.Option(metavar="NAME", help="a published fit from the catalogue "
                                                                     "(`bayeslaw models`), instead of PATH")]
FitArgument = Annotated[Path, typer.Argument(metavar="PATH", help="a fit saved by `bayeslaw fit --out`")]
RunsArgument = Annotated[Path, typer.Argument(metavar="RUNS", help="CSV of runs, one row per training run")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (shape: bayeslaw/schemas/COMMAND.json)")]
CsvOption = Annotated[bool, typer.Option("--csv", help="print CSV")]


def _check_target_accept(target_accept: float | None) -> None:
    if target_accept is not None and not 0 < target_accept < 1:
        _usage(f"--target-accept must lie in (0, 1), got {target_accept}")


def _chosen_runs(path: Path, law, mapping: dict[str, str], where: str | None, exclude_rows: list[str] | None):
    """The table at ``path``, or only its rows meeting ``where`` and not in ``exclude_rows`` (a frame; the rule is
    read on ``law``'s canonical columns, the rows keep their order)."""
    if where is None and not exclude_rows:
        return path
    from bayeslaw.data import load_runs, read_table
    from bayeslaw.where import Where, chosen_mask

    frame, _ = read_table(path)
    runs = load_runs(frame, law, mapping)
    keep = chosen_mask(runs, where, _rows(exclude_rows))
    typer.echo(f"note: {int(keep.sum())} of {len(runs)} runs chosen"
               + (f" by where '{Where.parse(where)}'" if where else "")
               + (f", rows {','.join(map(str, _rows(exclude_rows)))} left out" if exclude_rows else ""), err=True)
    return frame[keep].reset_index(drop=True)


def _check_choice(where: str | None, exclude_rows: list[str] | None) -> None:
    """--where and --exclude-rows read before anything is fitted (usage errors, exit 2)."""
    from bayeslaw.where import Where

    if where is not None:
        _checked(lambda: Where.parse(where))
    _rows(exclude_rows)


def _rows(values: list[str] | None) -> list[int]:
    try:
        return [int(part) for part in _listed(values)]
    except ValueError:
        _usage(f"--exclude-rows takes 0-based row numbers, repeated or separated by commas, got "
               f"'{_one_line(','.join(values or []), 40)}'")


@_command("fit")
def fit_command(
    runs: RunsArgument,
    law: LawOption = "chinchilla",
    out: Annotated[Path | None, typer.Option(metavar="PATH", help="write the fit to this NetCDF file")] = None,
    prior: Annotated[list[str] | None, typer.Option(metavar="PARAM=DIST", help="a prior, e.g. "
                                                   "'alpha=Normal(mu=0.3, sigma=0.1)'; repeated or comma-separated")
                     ] = None,
    prior_from: Annotated[str | None, typer.Option(metavar="SOURCE", help="'literature': priors built from the "
                                                                          "catalogue's published fits of the law")
                          ] = None,
    fix: Annotated[list[str] | None, typer.Option(metavar="NAME=VALUE", help="hold a published parameter at a value: "
                                                                            "--fix E=1.69,A=406.4")] = None,
    column: ColumnOption = None,
    likelihood: Annotated[str, typer.Option(metavar="FAMILY", help="student_t, normal or laplace")] = "student_t",
    sampler: Annotated[str, typer.Option(metavar="NAME", help="nutpie or pymc")] = "nutpie",
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    seed: FreshSeedOption = None,
    target_accept: TargetAcceptOption = None,
    retry: Annotated[bool, typer.Option(help="sample once more, longer, when the convergence checks fail")] = True,
    progress: Annotated[bool, typer.Option(help="show the sampler's progress bar")] = True,
    where: WhereOption = None,
    exclude_rows: ExcludeRowsOption = None,
    discrepancy: Annotated[str, typer.Option(metavar="KIND", help="model discrepancy: gp (default; intervals widen "
                                                                  "beyond the runs) or none (the law with independent "
                                                                  "noise)")] = "gp",
    as_json: JsonOption = False,
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
            say(note)
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
            say(result.discrepancy.describe())
        from bayeslaw.outliers import describe

        outlying = describe(result, exclude_hint=where is None and not exclude_rows)
        if outlying:
            say(outlying)
        if out is not None:
            result.save(out)
            typer.echo(f"saved to {out}", err=as_json)
        return result

    notes: list[str] = []

    def say(note: str) -> None:
        notes.append(note)
        typer.echo(f"note: {note}", err=as_json)

    result = _run(go)
    if as_json:
        _print_json(_fit_document(result, "fit", notes, {"runs": runs, "fit": out}))
    else:
        _report(result)
    _exit_if_unconverged([result])


def _fit_document(result, command: str, notes: list[str], inputs: dict) -> dict:
    """A fit as JSON data: law, runs, parameters (one record each), diagnostics, sampler lines, notes."""
    from bayeslaw.jsondata import document, records

    return document(command, {
        "law": result.law.name, "formula": result.law.formula, "runs": len(result.runs),
        "likelihood": result.likelihood,
        "discrepancy": result.discrepancy.describe() if result.discrepancy is not None else None,
        "converged": bool(result.converged),
        "parameters": records(result.summary().rename_axis("parameter")),
        "fixed": [{"parameter": k, "value": float(v)} for k, v in (result.fixed or {}).items()],
        "diagnostics": result.diagnostics.to_dict(),
        "sampler": _attempt_lines(result),
        "notes": [*notes, *(result.info.get("notes") or [])],
    }, seed=result.info.get("seed"), inputs=inputs)


def _print_json(data: dict) -> None:
    from bayeslaw.jsondata import dumps

    typer.echo(dumps(data))


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


@_command("summary")
def summary_command(path: FitArgument, as_json: JsonOption = False) -> None:
    """Print the posterior summary and diagnostics of a saved fit."""
    from bayeslaw.fit import load

    result = _run(lambda: load(path))
    if as_json:
        _print_json(_fit_document(result, "summary", [], {"fit": path}))
        _exit_if_unconverged([result])
        return
    typer.echo(f"{result.law.name}: {result.law.formula}; {len(result.runs)} runs, likelihood {result.likelihood}")
    if result.discrepancy is not None:
        typer.echo(f"model discrepancy: {result.discrepancy.describe()}")
    _report(result)
    _exit_if_unconverged([result])


@_command("demo")
def demo_command(
    budget: Annotated[str, typer.Option(metavar="FLOPS", help="FLOP budget for the compute-optimal allocation")
                      ] = "5.76e23",
    preset: Annotated[str, typer.Option(metavar="NAME", help="published constants the runs are drawn from")
                      ] = "besiroglu2024",
    noise: Annotated[float, typer.Option(metavar="SD", help="log-normal noise of the runs")] = 0.01,
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    seed: SeedOption = 0,
) -> None:
    """Fit the Chinchilla law to a generated sweep of runs and plan one budget; needs no data."""
    import numpy as np

    from bayeslaw.demo import chinchilla_sweep
    from bayeslaw.fit import fit
    from bayeslaw.laws import get_law
    from bayeslaw.laws.chinchilla import chinchilla_optimum
    from bayeslaw.plan import plan

    budgets = _budgets([budget])
    if len(budgets) != 1:
        _usage(f"--budget: the demo plans one budget, got {len(budgets)}")
    budget = budgets[0]
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


def _numbers(values: Sequence[str] | str | None, what: str, positive: bool = True) -> list[float]:
    """Finite numbers of a list option, repeated or comma-separated: '7e10,1e11' (> 0 unless ``positive`` is False);
    counts may carry K/M/B/T (70M)."""
    texts = _listed(values)
    if values is None:
        return []
    if not texts:
        _usage(f"{what} needs at least one number")
    numbers = []
    for text in texts:
        value = _number(text)
        if value is None:
            _usage(f"{what} must be numbers, got '{_one_line(text, 60)}'")
        _finite(value, what, positive)
        numbers.append(value)
    return numbers


def _number(text: str) -> float | None:
    """A number as typed: 1e22, 0.5, or a count with K/M/B/T (70M); None when it is not one."""
    from bayeslaw.units import parse_count

    try:
        return float(text)
    except ValueError:
        return parse_count(text)


def _budgets(values: Sequence[str] | None, option: str = "--budget") -> list[float] | None:
    """The one parser of FLOP budgets on the command line: numbers, repeated or comma-separated, checked by
    ``check_budgets`` (finite, > 0); None when none were given."""
    if not values:
        return None
    numbers = [float(v) for v in _numbers(values, option, positive=False)]
    _checked(lambda: check_budgets(numbers, option))
    return numbers


def _stray(ctx: typer.Context, path: Path | None = None) -> None:
    """Refuse arguments left over by a list written with spaces (--budget 1e22 1e24 FIT): one value per option."""
    hint = "give several values as --budget 1e22,1e24 or --budget 1e22 --budget 1e24"
    if ctx.args:
        _usage(f"unexpected argument '{_one_line(' '.join(ctx.args), 80)}': {hint}")
    if path is not None and not path.exists() and _number(str(path)) is not None:
        _usage(f"'{_one_line(path, 40)}' is not a fit file but a number: {hint}")


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


def _emit(tables: dict, as_json: bool, as_csv: bool, document: dict | None = None) -> None:
    """Print tables for people, or ``document`` as JSON / the tables as CSV for scripts."""
    import pandas as pd

    if as_json:
        _print_json(document)
    elif as_csv:
        frames = [v for v in tables.values() if isinstance(v, pd.DataFrame)]
        typer.echo(pd.concat(frames, axis=1).to_csv() if len(frames) > 1 else frames[0].to_csv(), nl=False)
    else:
        for name, table in tables.items():
            if table is None:
                continue
            typer.echo(f"\n{name}:")
            if isinstance(table, pd.DataFrame):
                typer.echo(_table(table.T if table.shape[1] > 6 else table))
            elif isinstance(table, str):
                typer.echo(f"  {table}")
            else:
                typer.echo("  " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in table.items()))


def _out_path(out: Path | None) -> None:
    """--out FILE: a .csv or .json name (usage error otherwise) that can be written (exit 1 otherwise)."""
    from bayeslaw.pointfiles import OUT_SUFFIXES

    if out is not None and out.suffix.lower() not in OUT_SUFFIXES:
        _usage(f"--out '{_one_line(out, 80)}': use a .csv or .json file name")
    _output(out)


def _inputs(path: Path | None, **files: Path | None) -> dict:
    """The paths a command read, for its JSON's ``meta.inputs`` (a catalogue entry is ``meta.model`` instead)."""
    return {k: v for k, v in {"fit": path, **files}.items() if v is not None}


@_command("predict")
def predict_command(
    path: Annotated[Path | None, typer.Argument(metavar="PATH", help="a fit saved by `bayeslaw fit --out` (or use "
                                                                     "--model)")] = None,
    model: ModelOption = None,
    n: Annotated[list[str] | None, typer.Option("--N", metavar="N", help="parameters, e.g. 7e10 or 7e10,1e11")] = None,
    d: Annotated[list[str] | None, typer.Option("--D", metavar="D", help="training tokens, e.g. 1.4T")] = None,
    c: Annotated[list[str] | None, typer.Option("--C", metavar="FLOPS", help="training FLOPs")] = None,
    at: Annotated[list[str] | None, typer.Option(metavar="NAME=VALUES", help="other inputs, e.g. U=25e9 or "
                                                                           "S=0.5,0.75")] = None,
    points: Annotated[Path | None, typer.Option(metavar="PATH", help="CSV of points: one column per input of the "
                                                                     "law (N, D, C, U, ...), one row per point")
                      ] = None,
    out: Annotated[Path | None, typer.Option(metavar="PATH", help="also write the predictions to this .csv or "
                                                                  ".json file")] = None,
    level: LevelOption = None,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Posterior predictive of the law's target at new inputs, flagging extrapolation."""
    from bayeslaw.data import RANGE_RULES
    from bayeslaw.predict import predict

    inputs = {k: _numbers(v, f"--{k}") for k, v in (("N", n), ("D", d), ("C", c)) if v}
    for name, values in _pairs(at, "--at").items():
        if name in inputs:
            _usage(f"--at {name} repeats --{name}: give each input once")
        inputs[name] = _numbers(values, f"--at {name}", positive=False)
        check, rule = RANGE_RULES.get(name, (lambda v: v > 0, "must be > 0"))
        if not all(check(v) for v in inputs[name]):
            _usage(f"--at {name} {rule}, got {_one_line(values, 60)}")
    if points is not None and inputs:
        _usage("give the points either in --points FILE or as --N/--D/--C/--at, not both")
    _one_source(path, model)
    levels = _levels(level, (0.5, 0.9))
    seed = _seed(seed)
    _out_path(out)

    def go():
        result, _ = _source(path, model, seed)
        chosen = inputs
        if points is not None:
            from bayeslaw.pointfiles import read_points

            chosen = read_points(points, result.law.inputs)
        prediction = predict(result, seed=seed, **chosen)
        return prediction.summary(levels), prediction.uncertainty, prediction.target

    import pandas as pd

    table, sources, target = _run(go)
    if not (as_json or as_csv) and (table["decades outside"] > 0).any():
        typer.echo("warning: some points lie outside the fitted runs (see 'decades outside')", err=True)
    from bayeslaw.jsondata import document, records

    named = table.rename(columns={"median": f"{target} median"})
    data = document("predict", {"target": target, "prediction": records(named, prefix=target),
                                "uncertainty": sources},
                    seed=seed, model=model, inputs=_inputs(path, points=points))
    if out is not None:
        _run(lambda: _write_out(out, pd.DataFrame(data["prediction"]), data))
    _emit({"prediction": table, **({"uncertainty": sources} if sources else {})}, as_json, as_csv, data)


def _write_out(out: Path, table, data: dict) -> None:
    from bayeslaw.pointfiles import write_result

    write_result(out, table, data)  # the CSV has the JSON's keys
    typer.echo(f"wrote {out}", err=True)


@_command("plan", context_settings={"allow_extra_args": True})
def plan_command(
    ctx: typer.Context,
    path: Annotated[Path | None, typer.Argument(metavar="PATH", help="a fit saved by `bayeslaw fit --out` (or use "
                                                                     "--model)")] = None,
    budget: BudgetOption = None,
    budgets_file: Annotated[Path | None, typer.Option("--budgets", metavar="PATH", help="CSV of FLOP budgets: a "
                                                      "column 'budget', or a one-column file")] = None,
    model: ModelOption = None,
    risk: Annotated[str | None, typer.Option(metavar="RISK", show_default="none: the plan's medians only",
                                             help="choose one allocation per budget by a risk of its loss: mean, "
                                                  "quantile:Q, cvar:Q or prob:TARGET")] = None,
    max_params: Annotated[float | None, typer.Option(metavar="N", help="largest model (parameters)")] = None,
    unique_tokens: Annotated[float | None, typer.Option(metavar="D", help="unique tokens available (repeated by "
                                                        "data-constrained laws, a cap on D for others)")] = None,
    inference_tokens: Annotated[float | None, typer.Option(metavar="TOKENS", help="expected inference tokens")
                                ] = None,
    target_loss: Annotated[float | None, typer.Option(metavar="LOSS", help="loss to reach")] = None,
    probability: Annotated[float, typer.Option(metavar="P", help="required probability of reaching "
                                                                 "--target-loss")] = 0.9,
    flops_per_param_token: Annotated[float, typer.Option(metavar="K", help="k in C = k N D")] = 6.0,
    out: Annotated[Path | None, typer.Option(metavar="PATH", help="also write the plan table to this .csv or .json "
                                                                  "file")] = None,
    level: LevelOption = None,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Compute-optimal N and D per budget under the posterior; risk-aware choices with --risk."""
    from bayeslaw.planning import plan_budgets
    from bayeslaw.risk import Risk

    _stray(ctx, path)
    budgets = _budgets(budget)
    if (budgets is None) == (budgets_file is None):
        _usage("give the budgets as --budget FLOPS or --budgets FILE.csv" + (", not both" if budgets else ""))
    _one_source(path, model)
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
    _out_path(out)

    def go():
        nonlocal budgets
        if budgets_file is not None:
            from bayeslaw.pointfiles import read_budgets

            budgets = read_budgets(budgets_file).tolist()
        if model is not None:
            from bayeslaw.catalogue import load_entry

            source = load_entry(model)
        else:
            from bayeslaw.fit import load

            source = load(path)
        return plan_budgets(source, budgets, risk=risk, max_params=max_params, unique_tokens=unique_tokens,
                            inference_tokens=inference_tokens, target_loss=target_loss, probability=probability,
                            flops_per_param_token=flops_per_param_token, levels=levels, seed=seed)

    import pandas as pd

    made = _run(go)
    for note in made.beyond:
        typer.echo(f"warning: {note}", err=True)
    decision = made.decision
    tables = {"model": made.model, "uncertainty": made.uncertainty, "plan": made.plan,
              "at the published estimates": made.at_estimates, "notes": "; ".join(made.notes),
              "decision": decision.table if decision is not None else None,
              "smallest budget": made.smallest_budget, "inference-aware": made.inference}
    data = _plan_document(made, seed, model, _inputs(path, budgets=budgets_file))
    if out is not None:
        _run(lambda: _write_out(out, pd.DataFrame(data["plan"]).set_index("budget"), data))
    _emit({k: v for k, v in tables.items() if v is not None}, as_json, as_csv, data)


def _plan_document(made, seed: int, model: str | None, inputs: dict) -> dict:
    """A plan as JSON data; the risk is a value (``"risk": "cvar:0.9"``), never part of a key."""
    from bayeslaw.jsondata import document, records

    decision = None
    if made.decision is not None:
        risk = str(made.decision.risk)
        table = made.decision.table.rename(columns={f"{who} {risk}": f"{who} risk" for who in ("chosen",
                                                                                                  "point estimate")})
        decision = {"risk": risk, "rows": records(table), "uncertainty": made.decision.uncertainty}
    smallest = made.smallest_budget
    return document("plan", {
        "model": made.model, "uncertainty": made.uncertainty, "plan": records(made.plan),
        "at_published_estimates": records(made.at_estimates) if made.at_estimates is not None else None,
        "decision": decision, "smallest_budget": smallest,
        "inference_aware": made.inference, "notes": made.notes,
    }, seed=seed, model=model, inputs=inputs)


@_command("compare")
def compare_command(
    runs: RunsArgument,
    law: Annotated[list[str] | None, typer.Option(metavar="LAW", help="the laws to compare (two or more): "
                                                  "--law chinchilla,kaplan-nd,power")] = None,
    laws: Annotated[list[str] | None, typer.Option("--laws", hidden=True, help="former name of --law (kept for one "
                                                                               "release)")] = None,
    holdout: Annotated[str, typer.Option(metavar="RULE", help="leave-future-out split: 'default' holds out the "
                                         "largest-compute fifth (C at or above its 80th percentile, C = 6 N D); a "
                                         "rule such as 'C>1e21'; 'none' for PSIS-LOO alone")] = "default",
    marginal: Annotated[bool, typer.Option(help="also estimate marginal likelihoods by SMC (slow)")] = False,
    plot: Annotated[Path | None, typer.Option(metavar="PATH", help="also draw elpd and stacking weights to this "
                                                                   ".png/.svg")] = None,
    column: ColumnOption = None,
    where: WhereOption = None,
    exclude_rows: ExcludeRowsOption = None,
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    target_accept: TargetAcceptOption = None,
    seed: SeedOption = 0,
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

    chosen = [_law(name) for name in _listed([*(law or []), *(laws or [])])]
    if len(chosen) < 2:
        _usage("--law needs at least two law names: --law chinchilla,power or --law chinchilla --law power")
    if len({one.name for one in chosen}) < len(chosen):
        _usage("--law names a law twice")
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
    _print_comparison(result, evidence, as_json, as_csv, meta={"seed": seed, "inputs": {"runs": runs}})
    if not result.converged:
        for name, problems in result.problems.items():
            if problems:
                typer.echo(f"not converged: {name}: {failed_checks(problems)}", err=True)
        raise typer.Exit(EXIT_NOT_CONVERGED)


def _print_comparison(result, evidence, as_json: bool, as_csv: bool, meta: dict | None = None) -> None:
    """The two rankings and the verdict for people (rank marked ! when not converged), or JSON / CSV."""
    if as_json:
        _print_json(_compare_document(result, evidence, meta or {}))
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


def _compare_document(result, evidence, meta: dict) -> dict:
    """A comparison as JSON data: per-law facts are records with a ``law`` key, never keys named by a law."""
    from bayeslaw.jsondata import document, records

    out = result.to_dict()
    out["problems"] = [{"law": name, "checks": list(checks)} for name, checks in result.problems.items()]
    out["influential"] = [{"law": name, "rows": list(rows)} for name, rows in result.influential.items()]
    out["marginal_likelihood"] = records(evidence) if evidence is not None else None
    return document("compare", out, **meta)


PLOT_KINDS = ("isoflop", "frontier", "extrapolation", "pairs")


def _figure_path(out: Path) -> None:
    from bayeslaw.plots import FORMATS

    if out.suffix.lower() not in FORMATS:
        _usage(f"cannot write a figure to '{_one_line(out, 80)}': use a .png or .svg file name")


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
        report(result, out, budgets)
        return result

    result = _run(go)
    typer.echo(f"wrote {out}")
    _exit_if_unconverged([result])


@_command("calibrate")
def calibrate_command(
    runs: RunsArgument,
    holdout: Annotated[list[str], typer.Option(metavar="RULE", help="split rule(s): --holdout 'C>1e20,C>1e21' or "
                                                                    "--holdout 'C>1e20' --holdout 'C>1e21'")],
    law: LawOption = "chinchilla",
    discrepancy: Annotated[str, typer.Option(metavar="KIND", help="the discrepancy compared with the plain law")
                           ] = "gp",
    column: ColumnOption = None,
    where: WhereOption = None,
    exclude_rows: ExcludeRowsOption = None,
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    target_accept: TargetAcceptOption = None,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
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
    holdout = _listed(holdout)
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
    from bayeslaw.jsondata import document, records

    problems = table.attrs.get("problems", {})
    data = document("calibrate", {
        "law": chosen.name, "calibration": records(table), "converged": not problems,
        "problems": [{"holdout": split, "checks": problem} for split, problem in problems.items()],
        "uncertainty": [{"holdout": split, "model": model, **sources}
                        for (split, model), sources in table.attrs.get("uncertainty", {}).items()],
    }, seed=seed, inputs={"runs": runs})
    _emit(tables, as_json, as_csv, data)
    for split, problem in problems.items():
        typer.echo(f"not converged: {law} fitted below {split}: {problem}", err=True)
    if table.attrs.get("problems"):
        raise typer.Exit(EXIT_NOT_CONVERGED)


