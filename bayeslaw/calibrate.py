"""Calibration check: do the predictive intervals hold out of sample, with and without model discrepancy?

For each split rule (e.g. C > 1e21) the law is fitted once on the runs the rule keeps, and the runs it
holds out are scored twice from the same posterior draws (``bayeslaw.holdout.score_heldout``):

  plain        log y* = log f(theta_s; x*) + eps_s                     (the law with independent noise)
  discrepancy  log y* = log f(theta_s; x*) + delta_s(x*) + eps_s      (``bayeslaw.discrepancy``)

reporting the coverage of the central 50%, 80% and 90% predictive intervals (a calibrated model covers
about 50%, 80% and 90% of the held-out runs), the mean log predictive density per held-out run (higher
is better; on log target) and the median relative error of the predictive median. Several rules in one
call show the trend as the extrapolation grows. This is leave-future-out validation (Burkner, Gabry &
Vehtari 2020, "Approximate leave-future-out cross-validation for Bayesian time series models", J. Stat.
Comput. Simul. 90:2499) applied to compute instead of time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayeslaw.data import Runs, load_runs
from bayeslaw.discrepancy import check_kind
from bayeslaw.errors import BayeslawError
from bayeslaw.fanout import check_workers, eta_line, map_jobs
from bayeslaw.holdout import Holdout, coverage_column, score_heldout
from bayeslaw.model import model_parameters, model_priors
from bayeslaw.posterior import as_posterior

LEVELS = (0.5, 0.8, 0.9)


Split = tuple[str, np.ndarray]  # (label, held-out mask over the runs): a split no COLUMN>VALUE rule expresses


def check_splits(runs, rules: Sequence[Holdout | Split], n_params: int, names: Sequence[str],
                 min_heldout: int | None = None) -> None:
    """Refuse any rule that leaves fewer runs than the model has parameters on either side (held out: fewer
    than ``min_heldout``, when given)."""
    for rule in rules:
        held, label = _mask(runs, rule)
        kept_n, held_n = int((~held).sum()), int(held.sum())
        if min_heldout is not None and kept_n >= n_params and held_n < min_heldout:
            raise BayeslawError(f"holdout '{label}' holds out {held_n} runs; at least {min_heldout} asked")
        if kept_n < n_params or (min_heldout is None and held_n < n_params):
            raise BayeslawError(
                f"holdout '{label}' keeps {kept_n} runs to fit and holds out {held_n}; calibration needs at least "
                f"{n_params} on each side (the model's parameters: {', '.join(names)}); move the threshold")


def _mask(runs, rule: Holdout | Split) -> tuple[np.ndarray, str]:
    if isinstance(rule, Holdout):
        return rule.mask(runs), str(rule)
    label, mask = rule
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (len(runs),):
        raise BayeslawError(f"holdout '{label}': a mask must be {len(runs)} booleans, one per run; got "
                            f"{mask.dtype} of shape {mask.shape}")
    return mask, str(label)


def _parse(rule: str | Holdout | Split) -> Holdout | Split:
    if isinstance(rule, tuple):
        if len(rule) != 2 or not isinstance(rule[0], str):
            raise BayeslawError("a holdout is a rule like 'C>1e21' or a (label, mask) pair")
        return rule
    return Holdout.parse(rule)


def _split(runs, rule: Holdout | Split) -> tuple[Runs, Runs]:
    held, _ = _mask(runs, rule)
    frame = runs.frame.reset_index(drop=True)
    side = [Runs(frame[m].reset_index(drop=True).rename_axis("run"), runs.law, runs.mapped, runs.derived)
            for m in (~held, held)]
    return side[0], side[1]


def calibrate(data: Any, law: str, holdouts: Sequence[str | Holdout | Split], *, levels: Sequence[float] = LEVELS,
              discrepancy: str = "gp", columns: Mapping[str, str] | None = None, likelihood: str = "student_t",
              seed: int = 0, progress: Callable[[str], None] | None = None, min_heldout: int | None = None,
              workers: int | None = None, client: Any = None, **fit_kwargs: Any) -> pd.DataFrame:
    """Fit ``law`` below each holdout rule and score the held-out runs with and without model discrepancy.

    A holdout is a rule (``'C>1e21'``) or a ``(label, mask)`` pair, mask a boolean per run (True: held out).
    Returns one row per (holdout, model), model "plain" or the discrepancy's kind, with the number of
    runs fitted and held out, coverage of each level's central interval, its median width on log target,
    the log predictive density per held-out run, the median relative error and whether the fit converged.
    ``table.attrs["uncertainty"]`` names, per (holdout, model), what its predictive accounts for.
    ``fit_kwargs`` go to :func:`bayeslaw.fit` (chains, draws, tune, priors, ...); ``progress`` is called
    with a line before each fit. Every rule is checked before the first fit: each side needs as many runs as
    the model has parameters, the held-out side ``min_heldout`` instead when given (a table of few runs).
    The fits (one per rule) run at once on ``workers`` local processes or a Dask ``client``
    (``bayeslaw.fanout.map_jobs``; default: one process per CPU), with the same results as one after another.
    """
    kind = check_kind(discrepancy)
    if kind is None:
        raise BayeslawError("calibrate compares the law with and without a discrepancy; give one, e.g. 'gp'")
    if not holdouts:
        raise BayeslawError("give at least one holdout rule, e.g. 'C>1e21'")
    runs = load_runs(data, law, columns)
    rules = [_parse(h) for h in holdouts]
    names = model_parameters(model_priors(runs.law, likelihood, fit_kwargs.get("priors")))
    check_splits(runs, rules, len(names), names, min_heldout)
    check_workers(workers, client)
    jobs = []
    for rule in rules:
        kept, held = _split(runs, rule)
        label = _mask(runs, rule)[1]
        if progress is not None:
            progress(f"fitting {runs.law.name} to the {len(kept)} runs not matching {label} ({len(held)} held out)...")
        jobs.append({"kept": kept, "held": held, "label": label, "kind": kind, "levels": levels,
                     "fit_kwargs": {"likelihood": likelihood, "seed": seed, **fit_kwargs}})
    rows, sources, problems = [], {}, {}
    on_done = None if progress is None else lambda *n: progress(eta_line(*n, what="splits"))
    for split_rows, split_sources, problem in map_jobs(score_split, jobs, workers=workers, client=client,
                                                       on_done=on_done):
        rows += split_rows
        sources |= split_sources
        problems |= problem
    table = pd.DataFrame(rows).set_index(["holdout", "model"])
    table.attrs["uncertainty"] = sources
    table.attrs["levels"] = {coverage_column(level): float(level) for level in levels}  # column -> nominal level
    table.attrs["problems"] = problems  # holdout -> failed checks of its fit (after the second attempt)
    return table


def score_split(kept: Runs, held: Runs, label: str, kind: str, levels: Sequence[float],
                fit_kwargs: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict, dict[str, str]]:
    """One split's job: fit the kept runs, score the held-out ones plain and with the discrepancy.

    Returns the two table rows, what each model's predictive accounts for, and {label: failed checks} when the
    fit did not converge.
    """
    from bayeslaw.fit import fit

    result = fit(kept.law, kept, discrepancy=kind, **fit_kwargs)
    post = as_posterior(result)
    rows, sources = [], {}
    for model, source in (("plain", dataclasses.replace(post, discrepancy=None)), (kind, post)):
        scores = score_heldout(source, held, levels, fit_kwargs["seed"])
        row = {"holdout": label, "model": model, "n_fit": len(kept), "n_heldout": len(held)}
        row |= {k: v for k, v in scores.items() if k.startswith(("coverage", "width"))}
        row |= {"lpd_per_run": scores["lpd_per_run"], "median_relative_error": scores["median_relative_error"],
                "converged": result.converged}
        rows.append(row)
        sources[(label, model)] = source.uncertainty()
    return rows, sources, ({} if result.converged else {label: result.diagnostics.brief()})


def nominal_gap(table: pd.DataFrame) -> pd.Series:
    """Largest |coverage - nominal level| of each row: 0 for perfectly calibrated intervals (the levels from
    ``table.attrs["levels"]``, column -> level, which :func:`calibrate` records)."""
    levels = table.attrs.get("levels")
    if not levels:
        raise BayeslawError("nominal_gap needs a table from calibrate() (its attrs['levels'] name the levels)")
    return (table[list(levels)] - np.array(list(levels.values()))).abs().max(axis=1)
