"""What the commands share: one-line errors, the list grammar, the one budget parser, options declared once,
choosing runs, printing tables and JSON, writing --out files."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from bayeslaw._search import check_budgets
from bayeslaw.cli._app import EXIT_ERROR, EXIT_NOT_CONVERGED, EXIT_USAGE, MAX_TOTAL_DRAWS, _one_line
from bayeslaw.errors import BayeslawError, ConvergenceWarning


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
WorkersOption = Annotated[int | None, typer.Option(min=1, metavar="N", help="local processes fitting at once "
                                                   "(default: one per CPU)")]
SchedulerOption = Annotated[str | None, typer.Option(metavar="ADDRESS", help="fit on a Dask cluster instead: its "
                                                     "scheduler address, e.g. tcp://HOST:8786")]


def check_fanout(workers: int | None, scheduler: str | None) -> None:
    """--workers and --scheduler exclude each other."""
    if workers is not None and scheduler is not None:
        _usage("--workers and --scheduler: give one (local processes or a Dask cluster)")


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


def _print_json(data: dict) -> None:
    from bayeslaw.jsondata import dumps

    typer.echo(dumps(data))


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


def _figure_path(out: Path) -> None:
    from bayeslaw.plots import FORMATS

    if out.suffix.lower() not in FORMATS:
        _usage(f"cannot write a figure to '{_one_line(out, 80)}': use a .png or .svg file name")
