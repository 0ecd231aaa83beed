"""`bayeslaw compare` and `calibrate`: laws ranked for extrapolation, intervals checked on held-out runs."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from bayeslaw.cli._app import EXIT_NOT_CONVERGED, _command, _one_line
from bayeslaw.cli._common import (
    ChainsOption,
    ColumnOption,
    CsvOption,
    DrawsOption,
    ExcludeRowsOption,
    JsonOption,
    LawOption,
    RunsArgument,
    SchedulerOption,
    SeedOption,
    TargetAcceptOption,
    TuneOption,
    WhereOption,
    WorkersOption,
    _check_choice,
    _check_target_accept,
    _checked,
    _chosen_runs,
    _draws,
    _emit,
    _figure_path,
    _law,
    _listed,
    _output,
    _pairs,
    _print_json,
    _run,
    _seed,
    _table,
    _usage,
    check_fanout,
)


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
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Rank laws on the same runs for extrapolation (leave-future-out, refitted below the split) beside
    PSIS-LOO (interpolation), and name any disagreement. Exits 3 when a fit or refit did not converge."""
    from bayeslaw.compare import bayes_factors, compare, failed_checks, marginal_likelihood
    from bayeslaw.data import load_runs, readable_columns
    from bayeslaw.fanout import eta_line, map_jobs
    from bayeslaw.fit import fit
    from bayeslaw.holdout import Holdout, check_sizes, is_default, is_off, resolve_split
    from bayeslaw.model import model_parameters, model_priors

    if laws:
        typer.echo("warning: --laws is now --law (--laws is kept for one release)", err=True)
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
    check_fanout(workers, scheduler)
    _output(plot)

    def go():
        first = chosen[0]
        source = _chosen_runs(runs, first, {k: v for k, v in mapping.items() if k in reads[first.name]}, where,
                              exclude_rows)
        loaded = {law.name: load_runs(source, law, {k: v for k, v in mapping.items() if k in reads[law.name]})
                  for law in chosen}
        if split is not None:  # a split that cannot be refitted fails before the first fit
            rule, held = resolve_split(split, list(loaded.values()))
            for name, table in loaded.items():
                params = model_parameters(model_priors(table.law, "student_t"))
                check_sizes(str(rule), name, int((~held).sum()), int(held.sum()), len(params))
        typer.echo(f"fitting {', '.join(loaded)}...", err=True)
        settings = {"chains": chains, "draws": draws, "tune": tune, "seed": seed, "target_accept": target_accept}
        fanned = map_jobs(fit, [{"law": name, "data": table, **settings} for name, table in loaded.items()],
                          workers=workers, client=scheduler,
                          on_done=lambda *n: typer.echo(eta_line(*n), err=True))
        fits = dict(zip(loaded, fanned, strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # every warning is in result.warnings, printed below
            result = compare(fits, holdout=split, seed=seed, progress=lambda line: typer.echo(line, err=True),
                             workers=workers, client=scheduler)
        if plot is not None:
            from bayeslaw.plots import comparison, write_figure

            write_figure(comparison(result), plot)
        evidence = None
        if marginal:
            typer.echo("marginal likelihoods by SMC...", err=True)
            evidence = bayes_factors([marginal_likelihood(n, runs, columns=mapping, seed=seed) for n in loaded])
        return result, evidence, fits

    result, evidence, fits = _run(go)
    _print_comparison(result, evidence, as_json, as_csv,
                      meta={"seed": seed, "inputs": {"runs": runs}, **_compare_meta(fits)})
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


def _compare_meta(fits: dict) -> dict:
    """``meta`` of a comparison: the laws, and what the fits share (data sha256 when every law read the same
    runs, likelihood, discrepancy, units); None where they differ."""
    from bayeslaw.compare import LEVELS
    from bayeslaw.jsondata import fit_meta

    each = [fit_meta(f, LEVELS) for f in fits.values()]
    shared = {k: each[0][k] if all(m[k] == each[0][k] for m in each) else None for k in each[0]}
    return {**shared, "law": None, "laws": list(fits)}


def _compare_document(result, evidence, meta: dict) -> dict:
    """A comparison as JSON data: per-law facts are records with a ``law`` key, never keys named by a law."""
    from bayeslaw.jsondata import document, records

    out = result.to_dict()
    out["problems"] = [{"law": name, "checks": list(checks)} for name, checks in result.problems.items()]
    out["influential"] = [{"law": name, "rows": list(rows)} for name, rows in result.influential.items()]
    out["marginal_likelihood"] = records(evidence) if evidence is not None else None
    return document("compare", out, **meta)


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
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
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
    check_fanout(workers, scheduler)

    def go():
        table = _chosen_runs(runs, chosen, mapping, where, exclude_rows)
        return calibrate(table, chosen.name, holdout, discrepancy=discrepancy, columns=mapping,
                         seed=seed, chains=chains, draws=draws, tune=tune, target_accept=target_accept,
                         progress=lambda line: typer.echo(line, err=True), workers=workers, client=scheduler)

    table = _run(go)
    tables = {"held-out calibration": table}
    if not (as_json or as_csv):
        tables["reading"] = ("calibrated intervals cover about 50%, 80% and 90% of the held-out runs; "
                             "lpd per run: higher is better")
    from bayeslaw.calibrate import LEVELS
    from bayeslaw.jsondata import document, key, records, units

    problems = table.attrs.get("problems", {})
    data = document("calibrate", {
        "law": chosen.name, "calibration": records(table), "converged": not problems,
        "problems": [{"holdout": split, "checks": problem} for split, problem in problems.items()],
        "uncertainty": [{"holdout": split, "model": model, **sources}
                        for (split, model), sources in table.attrs.get("uncertainty", {}).items()],
    }, seed=seed, inputs={"runs": runs}, law=chosen.name, likelihood="student_t", discrepancy=discrepancy,
        levels=list(LEVELS), units={key(k): v for k, v in units([*chosen.inputs, "C", chosen.target]).items()},
        compute={"flops_per_param_token": 6.0})
    _emit(tables, as_json, as_csv, data)
    for split, problem in problems.items():
        typer.echo(f"not converged: {law} fitted below {split}: {problem}", err=True)
    if table.attrs.get("problems"):
        raise typer.Exit(EXIT_NOT_CONVERGED)
