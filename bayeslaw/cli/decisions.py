"""`bayeslaw predict` and `plan`: predictions and allocations from a saved fit or a published one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bayeslaw.cli._app import _command, _one_line
from bayeslaw.cli._common import (
    BudgetOption,
    CsvOption,
    JsonOption,
    LevelOption,
    ModelOption,
    SeedOption,
    _budgets,
    _checked,
    _emit,
    _finite,
    _inputs,
    _levels,
    _numbers,
    _one_source,
    _out_path,
    _pairs,
    _run,
    _seed,
    _source,
    _stray,
    _usage,
)


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
        return prediction.summary(levels), prediction.uncertainty, prediction.target, result

    import pandas as pd

    table, sources, target, result = _run(go)
    if not (as_json or as_csv) and (table["decades outside"] > 0).any():
        typer.echo("warning: some points lie outside the fitted runs (see 'decades outside')", err=True)
    from bayeslaw.jsondata import document, fit_meta, flat_records, records

    named = table.rename(columns={"median": f"{target} median"})
    data = document("predict", {"target": target, "prediction": records(named, prefix=target),
                                "uncertainty": sources},
                    seed=seed, model=model, inputs=_inputs(path, points=points), outputs={"out": out},
                    **fit_meta(result, levels))
    if out is not None:
        _run(lambda: _write_out(out, pd.DataFrame(flat_records(named, prefix=target)), data))
    _emit({"prediction": table, **({"uncertainty": sources} if sources else {})}, as_json, as_csv, data)


def _write_out(out: Path, table, data: dict) -> None:
    from bayeslaw.pointfiles import write_result

    write_result(out, table, data)  # the CSV: flat columns, as --csv prints
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
        return source, plan_budgets(source, budgets, risk=risk, max_params=max_params, unique_tokens=unique_tokens,
                            inference_tokens=inference_tokens, target_loss=target_loss, probability=probability,
                            flops_per_param_token=flops_per_param_token, levels=levels, seed=seed)

    import pandas as pd

    source, made = _run(go)
    for note in made.beyond:
        typer.echo(f"warning: {note}", err=True)
    decision = made.decision
    tables = {"model": made.model, "uncertainty": made.uncertainty, "plan": made.plan,
              "at the published estimates": made.at_estimates, "notes": "; ".join(made.notes),
              "decision": decision.table if decision is not None else None,
              "smallest budget": made.smallest_budget, "inference-aware": made.inference}
    from bayeslaw.jsondata import fit_meta, flat_records

    data = _plan_document(made, seed, model, _inputs(path, budgets=budgets_file), {"out": out},
                          fit_meta(source, levels, flops_per_param_token))
    if out is not None:
        _run(lambda: _write_out(out, pd.DataFrame(flat_records(made.plan)).set_index("budget"), data))
    _emit({k: v for k, v in tables.items() if v is not None}, as_json, as_csv, data)


def _plan_document(made, seed: int, model: str | None, inputs: dict, outputs: dict, about: dict) -> dict:
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
    }, seed=seed, model=model, inputs=inputs, outputs=outputs, **about)


@_command("next")
def next_command(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="a fit saved by `bayeslaw fit --out`")],
    budget: Annotated[str, typer.Option(metavar="FLOPS", help="FLOPs of the big run the decision is for")],
    spend: Annotated[str, typer.Option(metavar="FLOPS", help="FLOPs available for the new small runs")],
    candidates: Annotated[str, typer.Option(metavar="grid|PATH", help="'grid' (N and D from the fitted runs' "
                                            "smallest to 10 times their largest) or a CSV with columns N and D "
                                            "(or N and C)")] = "grid",
    risk: Annotated[str, typer.Option(metavar="RISK", help="the decision's loss: mean (expected regret), cvar:Q or "
                                      "quantile:Q")] = "mean",
    max_params: Annotated[float | None, typer.Option(metavar="N", help="largest model (parameters)")] = None,
    unique_tokens: Annotated[float | None, typer.Option(metavar="D", help="unique tokens of the big run "
                                                        "(data-constrained laws; candidates without a U column "
                                                        "too)")] = None,
    flops_per_param_token: Annotated[float, typer.Option(metavar="K", help="k in C = k N D")] = 6.0,
    outcomes: Annotated[int, typer.Option(min=8, max=4096, metavar="COUNT", help="simulated outcomes per "
                                          "candidate")] = 64,
    plot: Annotated[Path | None, typer.Option(metavar="PATH", help="also draw the candidates and picks to this "
                                              ".png/.svg")] = None,
    refit: Annotated[str, typer.Option(metavar="WHEN", help="auto (default): a pick whose importance weights "
                                       "collapsed is re-estimated by refitting with NUTS; never: only flagged")
                     ] = "auto",
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Which runs to train next: each candidate's expected gain for the decision at --budget (expected value of
    sample information, by importance reweighting of the fit's draws) per FLOP, and a greedy batch under --spend."""
    from bayeslaw.cli._common import _figure_path, _output, _table
    from bayeslaw.risk import Risk

    budget_value, spend_value = (_one_budget(text, option) for text, option in ((budget, "--budget"),
                                                                                (spend, "--spend")))
    for option, value in (("--max-params", max_params), ("--unique-tokens", unique_tokens),
                          ("--flops-per-param-token", flops_per_param_token)):
        _finite(value, option)
    _checked(lambda: Risk.parse(risk))
    if refit not in ("auto", "never"):
        _usage(f"--refit must be auto or never, got '{_one_line(refit, 40)}'")
    if candidates != "grid" and not Path(candidates).is_file():
        _usage(f"--candidates: '{_one_line(candidates, 80)}' is neither 'grid' nor a CSV file")
    if plot is not None:
        _figure_path(plot)
    seed = _seed(seed)
    _output(plot)

    def go():
        from bayeslaw.design import advise, figure
        from bayeslaw.fit import load

        result = load(path)
        advice = advise(result, budget_value, spend_value, candidates=None if candidates == "grid" else candidates,
                        risk=risk, flops_per_param_token=flops_per_param_token, max_params=max_params,
                        unique_tokens=unique_tokens, outcomes=outcomes, seed=seed, refit=refit)
        if plot is not None:
            from bayeslaw.plots import write_figure

            write_figure(figure(advice, result), plot)
        return advice, result

    advice, result = _run(go)
    if as_json:
        from bayeslaw.cli._common import _print_json
        from bayeslaw.jsondata import document, fit_meta

        inputs = {"fit": path, **({"candidates": candidates} if candidates != "grid" else {})}
        _print_json(document("next", advice.to_dict(), seed=seed, inputs=inputs, outputs={"plot": plot},
                             **fit_meta(result, None, flops_per_param_token)))
        return
    typer.echo(str(advice))
    if not advice.picks.empty:
        typer.echo("\npicks (greedy, re-scored after each):\n" + _table(advice.picks.set_index("pick")))


def _one_budget(text: str, option: str) -> float:
    """One FLOP count for ``option`` (the budget parser's rules; a list is refused)."""
    values = _budgets([text], option)
    if len(values) != 1:
        _usage(f"{option} takes one number of FLOPs, got {len(values)}")
    return values[0]
