"""`bayeslaw fit`, `summary` and `demo`: sample a posterior and show it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bayeslaw.cli._app import LARGE_TABLE, _command, _one_line
from bayeslaw.cli._common import (
    ChainsOption,
    ColumnOption,
    DrawsOption,
    ExcludeRowsOption,
    FitArgument,
    FreshSeedOption,
    JsonOption,
    LawOption,
    RunsArgument,
    SeedOption,
    TargetAcceptOption,
    TuneOption,
    WhereOption,
    _attempt_lines,
    _budgets,
    _check_choice,
    _check_target_accept,
    _checked,
    _chosen_runs,
    _draws,
    _exit_if_unconverged,
    _finite,
    _law,
    _listed,
    _output,
    _pairs,
    _print_json,
    _report,
    _run,
    _seed,
    _usage,
)


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
    likelihood: Annotated[str | None, typer.Option(metavar="FAMILY", help="student_t (default), normal or laplace; "
                                                   "for learning curves curve (default) or curve_independent")
                          ] = None,
    run_column: Annotated[str | None, typer.Option(metavar="COLUMN", help="the column of run ids when rows are "
                                                   "checkpoints of learning curves (default: one named run, run_id "
                                                   "or curve)")] = None,
    schedule: Annotated[str, typer.Option(metavar="KIND", help="learning curves: the runs' learning-rate schedule, "
                                          "cosine (default), linear or none")] = "cosine",
    min_progress: Annotated[float, typer.Option(metavar="P", help="learning curves: drop checkpoints before this "
                                                "share of their run (default 0.1)")] = 0.1,
    max_checkpoints: Annotated[int, typer.Option(metavar="K", help="learning curves: checkpoints kept per run, "
                                                 "spread evenly in log tokens (default 50; 0 keeps all)")] = 50,
    sampler: Annotated[str, typer.Option(metavar="NAME", help="nutpie (default), pymc or jax (needs "
                                         "pip install bayeslaw[jax])")] = "nutpie",
    chains: ChainsOption = 4,
    draws: DrawsOption = 1000,
    tune: TuneOption = 500,
    seed: FreshSeedOption = None,
    target_accept: TargetAcceptOption = None,
    retry: Annotated[bool, typer.Option(help="sample once more, longer, when the convergence checks fail")] = True,
    whiten: Annotated[bool | None, typer.Option("--whiten/--no-whiten", help="nutpie: sample in coordinates "
                                                "whitened by the Laplace approximation at the mode (default: for "
                                                "tables of 10,000 rows or more)", show_default=False)] = None,
    progress: Annotated[bool, typer.Option(help="show the sampler's progress bar")] = True,
    where: WhereOption = None,
    exclude_rows: ExcludeRowsOption = None,
    discrepancy: Annotated[str, typer.Option(metavar="KIND", help="model discrepancy: gp (default; intervals widen "
                                                                  "beyond the runs) or none (the law with independent "
                                                                  "noise)")] = "gp",
    as_json: JsonOption = False,
    group: Annotated[str | None, typer.Option(metavar="COLUMN", help="pool across the families this column names: "
                                                                     "exponents from a population (bayeslaw.pooling)")
                     ] = None,
    pool: Annotated[list[str] | None, typer.Option(metavar="PARAMS", help="with --group: the parameters to pool "
                                                                           "(default: the law's exponents)")] = None,
) -> None:
    """Fit LAW to the runs in RUNS and print the posterior summary and diagnostics."""
    import numpy as np

    from bayeslaw.curves import decay_left
    from bayeslaw.data import check_column_names
    from bayeslaw.discrepancy import check_kind
    from bayeslaw.fit import SAMPLERS
    from bayeslaw.model import model_priors

    # the command line first, before any file is read (exit 2)
    chosen_law = _law(law)
    mapping = _pairs(column, "--column")
    _checked(lambda: check_column_names(chosen_law, mapping))
    overrides = _pairs(prior, "--prior")
    _checked(lambda: model_priors(chosen_law, likelihood or "student_t", overrides))
    _checked(lambda: decay_left(np.zeros(1), schedule))
    if not 0.0 <= min_progress < 1.0:
        _usage(f"--min-progress must lie in [0, 1), got {min_progress}")
    if max_checkpoints == 1 or max_checkpoints < 0:
        _usage(f"--max-checkpoints must be 0 (all) or at least 2, got {max_checkpoints}")
    fixed = _fixed(_pairs(fix, "--fix"), chosen_law)
    both = sorted(set(overrides) & set(fixed))
    if both:
        _usage(f"{both[0]} is given both --prior and --fix: drop one of the two")
    if prior_from not in (None, "literature") and not Path(prior_from).is_file():
        _usage(f"unknown prior source '{_one_line(prior_from, 40)}' for --prior-from; allowed: literature, or the "
               "path of a pooled fit (bayeslaw fit --group ... --out pooled.nc)")
    if group is not None and (fixed or prior_from is not None or as_json or sampler != "nutpie"):
        _usage("--group takes no --fix, --prior-from or --json and samples with nutpie")
    if pool and group is None:
        _usage("--pool chooses the pooled parameters of a --group fit; give --group as well")
    if sampler not in SAMPLERS:
        _usage(f"unknown sampler '{_one_line(sampler, 40)}'; allowed: {', '.join(SAMPLERS)}")
    _checked(lambda: check_kind(discrepancy))
    _check_target_accept(target_accept)
    _check_choice(where, exclude_rows)
    _draws(chains, draws)
    chosen = _seed(seed)
    _output(out)  # a folder that is missing or read-only, or a directory in the way: before sampling (exit 1)

    def go():
        import pandas as pd

        from bayeslaw.data import load_runs
        from bayeslaw.fit import fit

        if group is not None:  # partial pooling across families (bayeslaw.pooling)
            return _fit_pooled(_chosen_runs(runs, chosen_law, mapping, where, exclude_rows), chosen_law, group,
                               _listed(pool) if pool else None, overrides, mapping, likelihood, chains, draws, tune,
                               chosen, target_accept, retry, out)

        table = load_runs(_chosen_runs(runs, chosen_law, mapping, where, exclude_rows), chosen_law, mapping,
                          run_column=run_column)
        for note in table.notes():
            say(note)
        if len(table) >= LARGE_TABLE:
            typer.echo(f"note: {len(table):,} runs: every gradient of the posterior evaluates all of them (about "
                       "0.04 s per million runs for the chinchilla law on one core here), so sampling takes long; "
                       "runs averaged per configuration fit in seconds", err=True)
        what = (f"{len(pd.unique(table.run_ids))} learning curves ({len(table)} checkpoints)" if table.is_curves
                else f"{len(table)} runs")
        typer.echo(f"fitting {table.law.name} to {what} ({chains} chains x {draws} draws, seed {chosen})...", err=True)
        result = fit(table.law, table, priors=overrides, prior_from=prior_from, fixed=fixed,
                     likelihood=likelihood, sampler=sampler, chains=chains, draws=draws, tune=tune, seed=chosen,
                     target_accept=target_accept, progress=progress and sys.stderr.isatty(),
                     discrepancy=discrepancy, retry=retry, schedule=schedule, min_progress=min_progress,
                     max_checkpoints=max_checkpoints or None, whiten=whiten)
        if "curves" in result.info:
            c = result.info["curves"]
            say(f"learning curves: {c['checkpoints']} of {c['given']} checkpoints of {c['runs']} runs fitted "
                f"({c['dropped_early']} before {c['min_progress']:g} of their run dropped, at most "
                f"{c['max_checkpoints']} a run; {c['schedule']} schedule); predictions are for final checkpoints")
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
    if group is not None:
        _exit_if_unconverged([result])
        return
    if as_json:
        _print_json(_fit_document(result, "fit", notes, {"runs": runs}, {"fit": out}))
    else:
        _report(result)
    _exit_if_unconverged([result])


def _fit_pooled(source, law, group, pool, overrides, mapping, likelihood, chains, draws, tune, seed, target_accept,
                retry, out):
    """`bayeslaw fit --group COLUMN`: the pooled fit, its population spreads and each family's exponents."""
    from bayeslaw.fit import fit

    typer.echo(f"fitting {law.name} pooled over the families in column '{group}' ({chains} chains x {draws} draws, "
               f"seed {seed})...", err=True)
    result = fit(law, source, group=group, pool=pool, priors=overrides, columns=mapping, likelihood=likelihood,
                 chains=chains, draws=draws, tune=tune, seed=seed, target_accept=target_accept, retry=retry)
    typer.echo(repr(result).splitlines()[0])
    typer.echo(result.spreads().to_string(float_format=lambda v: f"{v:.4g}"))
    if out is not None:
        result.save(out)
        typer.echo(f"saved to {out}", err=True)
    return result


def _fit_document(result, command: str, notes: list[str], inputs: dict, outputs: dict | None = None) -> dict:
    """A fit as JSON data: law, runs, parameters (one record each), diagnostics, sampler lines, notes."""
    from bayeslaw.jsondata import document, fit_meta, records

    summary = result.summary().rename_axis("parameter")
    summary = summary.rename(columns={"median": "hdi median", "hdi_3%": "hdi 94% lo", "hdi_97%": "hdi 94% hi"})
    return document(command, {
        "law": result.law.name, "formula": result.law.formula, "runs": len(result.runs),
        "likelihood": result.likelihood,
        "curves": result.info.get("curves"),
        "discrepancy_summary": result.discrepancy.describe() if result.discrepancy is not None else None,
        "converged": bool(result.converged),
        "parameters": records(summary),
        "fixed": [{"parameter": k, "value": float(v)} for k, v in (result.fixed or {}).items()],
        "diagnostics": result.diagnostics.to_dict(),
        "sampler": _attempt_lines(result),
        "notes": [*notes, *(result.info.get("notes") or [])],
    }, seed=result.info.get("seed"), inputs=inputs, outputs=outputs, **fit_meta(result, levels=[0.94]))


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
