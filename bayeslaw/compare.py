"""Comparing law families: leave-future-out for extrapolation first, PSIS-LOO beside it, SMC evidence.

- ``compare({name: fit})`` ranks the fits two ways on the same runs:
  * for extrapolation, by leave-future-out (``bayeslaw.holdout``): each fit is refitted with its own
    settings on the runs below a split and scored on the runs above it: held-out log predictive density
    sum_i log (1/S) sum_s p(log y_i | theta_s), 50/90% interval coverage, median relative error. By
    default the largest-compute fifth is held out (C at or above its 80th percentile, C = 6 N D);
  * for interpolation, by PSIS-LOO (Vehtari, Gelman & Gabry 2017) elpd with standard errors, stacking
    weights (Yao et al. 2018) and the runs whose Pareto k exceeds 0.7 (LOO is unreliable for them).
  PSIS-LOO scores a run from the runs around it; a plan bets on runs beyond all of them, so where the
  two rankings disagree the comparison says so and, for extrapolation, trusts leave-future-out. Ranks
  follow the scores; a fit (or its refit) that failed a convergence check keeps its place with
  ``converged`` False and a warning naming the fit and the check.
- ``marginal_likelihood(law, data)``: log p(y) from sequential Monte Carlo (``pm.sample_smc``),
  repeated with different seeds because single SMC estimates are noisy; Bayes factors follow.
Fits compared must be of the same runs: the same observed targets in the same order.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import arviz as az
import numpy as np
import pandas as pd

from bayeslaw.errors import BayeslawError, ConvergenceWarning
from bayeslaw.fanout import check_workers, eta_line, map_jobs
from bayeslaw.holdout import (
    DEFAULT,
    Holdout,
    check_sizes,
    is_default,
    is_off,
    refit_and_score,
    resolve_split,
    split_runs,
)
from bayeslaw.loo import loo as psis_loo
from bayeslaw.model import model_parameters
from bayeslaw.priors import Prior

PARETO_K_LIMIT = 0.7
LEVELS = (0.5, 0.9)
_LEGACY = {"elpd_se": "elpd se", "elpd_diff": "elpd diff", "diff_se": "diff se",
           "p_loo": "p_loo (effective parameters)", "n_pareto_k_high": "runs with k > 0.7"}


@dataclass(frozen=True)
class Comparison:
    """Both rankings as plain tables (index ``law``, snake_case columns), and what to make of them.

    ``extrapolation``: leave-future-out, best first: rank, n_fit, n_heldout, lpd (sum over held-out
    runs), lpd_per_run, coverage_50, coverage_90, width_50, width_90 (median interval width on log
    target), median_relative_error, fit_converged, refit_converged, converged (both). None when off.
    ``loo``: PSIS-LOO, best first: rank, elpd, elpd_se, elpd_diff, diff_se (from the best), p_loo,
    weight (stacking), n_pareto_k_high, converged.
    ``arviz``: the PSIS-LOO table exactly as ``az.compare`` returns it (elpd_loo, p_loo, elpd_diff, weight, se,
    dse, warning, scale), for code written against ArviZ.
    ``split``: the leave-future-out rule and its sizes; ``disagreement``: one sentence when the two
    rankings order the laws differently, else None; ``problems``: each law's failed convergence checks
    (its fit's, then its refit's); ``warnings``: every warning line, also issued as Python warnings.
    """

    loo: pd.DataFrame
    extrapolation: pd.DataFrame | None = None
    split: dict[str, Any] | None = None
    disagreement: str | None = None
    problems: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    influential: dict[str, list[int]] = field(default_factory=dict)
    arviz: pd.DataFrame | None = None  # az.compare's own table (its column names, 0-based rank), unchanged

    @property
    def converged(self) -> bool:
        """True when every fit and every refit passed its convergence checks."""
        return not any(self.problems.values())

    @property
    def best_for_extrapolation(self) -> str:
        """The first law of the leave-future-out ranking (of PSIS-LOO's when leave-future-out is off)."""
        return str((self.extrapolation if self.extrapolation is not None else self.loo).index[0])

    @property
    def ranking(self) -> pd.DataFrame:
        """One row per law, the two rankings side by side, in the order for extrapolation."""
        loo = self.loo[["rank", "elpd", "elpd_se", "weight", "n_pareto_k_high"]].rename(columns={"rank": "loo_rank"})
        if self.extrapolation is None:
            return loo.join(self.loo[["converged"]])
        cols = ["rank", "lpd_per_run", *[c for c in self.extrapolation.columns if c.startswith("coverage_")],
                "median_relative_error"]
        lfo = self.extrapolation[cols].rename(columns={"rank": "extrapolation_rank"})
        return lfo.join(loo).join(self.extrapolation[["converged"]])

    @property
    def table(self) -> pd.DataFrame:
        """The PSIS-LOO table under its former display names and 0-based rank, for older callers
        (``plots.comparison``); new code reads ``loo``."""
        return self.loo.drop(columns="converged").assign(rank=self.loo["rank"] - 1).rename(columns=_LEGACY)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: tables as lists of records with a ``law`` key."""
        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            return None if frame is None else json.loads(frame.reset_index().to_json(orient="records"))

        return {"split": self.split, "extrapolation": records(self.extrapolation), "loo": records(self.loo),
                "disagreement": self.disagreement, "converged": self.converged, "problems": self.problems,
                "warnings": self.warnings, "influential": self.influential}


def _same_runs(fits: Mapping[str, Any]) -> None:
    names = list(fits)
    first = fits[names[0]].idata.observed_data
    reference = next(iter(first.data_vars.values())).values
    for name in names[1:]:
        other = next(iter(fits[name].idata.observed_data.data_vars.values())).values
        if other.shape != reference.shape or not np.array_equal(other, reference):
            raise BayeslawError(f"fits '{names[0]}' and '{name}' were made on different runs (their observed "
                                "targets differ); compare fits of the same data")


def compare(fits: Mapping[str, Any], *, holdout: str | Holdout | None = DEFAULT, method: str = "stacking",
            levels: Sequence[float] = LEVELS, seed: int = 0,
            progress: Callable[[str], None] | None = None, workers: int | None = None,
            client: Any = None) -> Comparison:
    """Rank fits of the same runs for extrapolation (leave-future-out) and by PSIS-LOO, side by side.

    ``holdout``: "default" (the largest-compute fifth: C at or above its 80th percentile, written as a
    rule ``C>t``), a rule such as "C>1e21", or None for PSIS-LOO alone. The same runs are held out for
    every law; each fit is refitted on the rest with its own law, priors, likelihood, discrepancy,
    sampler, chains, draws, tune, target_accept and seed (``Fit.info``). A split that keeps fewer than
    the model's parameters + 2 runs, or holds out fewer than 2, is refused before any refit.
    ``seed`` seeds the held-out predictive draws; ``progress`` is called with a line before each refit.
    The refits run at once on ``workers`` local processes or a Dask ``client`` (a ``dask.distributed.Client``
    or a scheduler address; ``bayeslaw.fanout.map_jobs``; default: one process per CPU), with the same
    results as one after another.
    """
    if len(fits) < 2:
        raise BayeslawError("compare needs at least two fits")
    _same_runs(fits)
    check_workers(workers, client)
    lines: list[str] = []
    loo, influential, arviz_table = _loo_table(fits, method, lines)
    problems = {name: [f"fit: {result.diagnostics.brief()}"] if not result.converged else []
                for name, result in fits.items()}
    extrapolation, split = None, None
    if not is_off(holdout):
        extrapolation, split = _lfo_table(fits, holdout, levels, seed, progress, workers, client)
        for name in extrapolation.index:
            problems[name] += [f"refit: {p}" for p in extrapolation.attrs["refit_problems"][name]]
        extrapolation.attrs = {}
    for name, found in problems.items():
        if found:
            lines.append(f"{name} did not converge ({failed_checks(found)}); its ranks are provisional: rerun it "
                         "with more draws and tuning (its diagnostics give the remedy)")
    differ = disagreement(loo, extrapolation)
    if differ:
        lines.append(differ)
    for line in lines:
        category = ConvergenceWarning if "did not converge" in line else UserWarning
        warnings.warn(line, category, stacklevel=2)
    return Comparison(loo, extrapolation, split, differ, problems, lines, influential, arviz_table)


def _loo_table(fits: Mapping[str, Any], method: str,
               lines: list[str]) -> tuple[pd.DataFrame, dict[str, list[int]], pd.DataFrame]:
    """PSIS-LOO per fit through ArviZ (``bayeslaw.loo``: computed in blocks of runs for a fit too large to store
    its pointwise log-likelihood), with snake_case columns and a 1-based rank."""
    influential: dict[str, list[int]] = {}
    scores = {}
    for name, result in fits.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported below, by run
            scores[name] = loo = psis_loo(result)  # in blocks of runs when the fit could not store them
        bad = np.flatnonzero(np.asarray(loo.pareto_k) > PARETO_K_LIMIT)
        influential[name] = bad.tolist()
        if len(bad):
            lines.append(f"{name}: PSIS-LOO is unreliable for runs {', '.join(map(str, bad[:10]))}"
                         f"{' ...' if len(bad) > 10 else ''} (Pareto k > {PARETO_K_LIMIT}); these runs are "
                         "influential: check them, or compare by leave-future-out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare(scores, ic="loo", method=method)
    arviz_table = table.copy()
    table = table.rename(columns={"elpd_loo": "elpd", "se": "elpd_se", "dse": "diff_se"})
    table = table[["rank", "elpd", "elpd_se", "elpd_diff", "diff_se", "p_loo", "weight"]].astype(float)
    table["rank"] = table["rank"].astype(int) + 1
    table["n_pareto_k_high"] = [len(influential[name]) for name in table.index]
    table["converged"] = [bool(fits[name].converged) for name in table.index]
    return table.rename_axis("law"), influential, arviz_table


def failed_checks(problems: Sequence[str]) -> str:
    """'fit: R-hat 1.79 > 1.01, 65 divergent transitions (worst: E, alpha); refit: ...' from compare()'s problems."""
    return "; ".join(problems)


def refit_settings(result: Any) -> dict[str, Any]:
    """The settings a fit was made with, as keyword arguments of ``bayeslaw.fit`` (for refits)."""
    info = result.info or {}
    # the priors as given (literature priors and fixed values depend on the data's pivots: made anew)
    given = {k: Prior.parse(v, k) for k, v in info.get("priors_given", result.priors).items()}
    settings = {"priors": given, "prior_from": info.get("prior_from"), "fixed": info.get("fixed") or None,
                "likelihood": result.likelihood,
                "discrepancy": result.discrepancy.kind if result.discrepancy is not None else None,
                "chains": int(result.diagnostics.chains), "draws": int(result.diagnostics.draws)}
    for key in ("sampler", "tune", "seed", "target_accept", "retry"):
        if info.get(key) is not None:
            settings[key] = info[key]
    return settings


def _lfo_table(fits: Mapping[str, Any], holdout: str | Holdout, levels: Sequence[float], seed: int,
               progress: Callable[[str], None] | None, workers: int | None = None,
               client: Any = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Refit each fit below the split (its own settings) and score the held-out runs, the refits fanned out."""
    rule, held = resolve_split(holdout, [result.runs for result in fits.values()])
    kept_n, held_n = int((~held).sum()), int(held.sum())
    for name, result in fits.items():  # every split is checked before the first refit
        check_sizes(str(rule), name, kept_n, held_n, len(model_parameters(result.priors)))
    jobs = []
    for name, result in fits.items():
        kept, heldout = split_runs(result.runs, held)
        if progress is not None:
            progress(f"leave-future-out: refitting {name} on the {kept_n} runs not matching {rule}...")
        jobs.append({"kept": kept, "heldout": heldout, "settings": refit_settings(result), "levels": tuple(levels),
                     "seed": seed})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported with the comparison
        outcomes = map_jobs(refit_and_score, jobs, workers=workers, client=client,
                            on_done=None if progress is None else lambda *n: progress(eta_line(*n, what="refits")))
    rows, refit_problems = [], {}
    for (name, result), (scores, converged, brief) in zip(fits.items(), outcomes, strict=True):
        refit_problems[name] = [brief] if not converged else []
        rows.append({"law": name, "n_fit": kept_n, **scores,
                     "fit_converged": bool(result.converged), "refit_converged": converged,
                     "converged": bool(result.converged and converged)})
    table = pd.DataFrame(rows).set_index("law").sort_values("lpd", ascending=False, kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table.attrs["refit_problems"] = refit_problems
    split = {"rule": str(rule), "column": rule.column, "threshold": rule.value,
             "default": is_default(holdout),
             "n_fit": kept_n, "n_heldout": held_n}
    return table, split


def disagreement(loo: pd.DataFrame, extrapolation: pd.DataFrame | None) -> str | None:
    """One sentence naming how the PSIS-LOO and leave-future-out rankings differ (with the sizes), or None."""
    if extrapolation is None:
        return None
    by_loo, by_lfo = list(loo.index), list(extrapolation.index)
    if by_loo == by_lfo:
        return None
    if by_loo[0] != by_lfo[0]:
        a, b = by_loo[0], by_lfo[0]
        row, lfo = loo.loc[b], extrapolation
        gap = (lfo.loc[b, "lpd"] - lfo.loc[a, "lpd"]) / lfo.loc[b, "n_heldout"]
        cover = sorted(c for c in lfo.columns if c.startswith("coverage_"))[-1:]
        shown = [f"{c.replace('_', ' ')}% {lfo.loc[b, c]:.2f} vs {lfo.loc[a, c]:.2f}" for c in cover]
        shown.append(f"median relative error {lfo.loc[b, 'median_relative_error']:.2%} vs "
                     f"{lfo.loc[a, 'median_relative_error']:.2%}")
        return (f"PSIS-LOO prefers {a}, leave-future-out prefers {b}: for extrapolation trust leave-future-out "
                f"(PSIS-LOO: {a} ahead of {b} by {row['elpd_diff']:.3g} +- {row['diff_se']:.2g} elpd; "
                f"leave-future-out: {b} ahead of {a} by {gap:.3g} nats per held-out run, {', '.join(shown)})")
    per_run = extrapolation["lpd"] / extrapolation["n_heldout"]
    elpd = " > ".join(f"{loo.loc[n, 'elpd']:.4g}" for n in by_loo[1:])
    lpd = " > ".join(f"{per_run[n]:.4g}" for n in by_lfo[1:])
    return (f"PSIS-LOO and leave-future-out both rank {by_loo[0]} first but order the others differently "
            f"(PSIS-LOO: {' > '.join(by_loo[1:])}, elpd {elpd}; leave-future-out: {' > '.join(by_lfo[1:])}, "
            f"lpd per held-out run {lpd}): for extrapolation trust leave-future-out")


def marginal_likelihood(law: Any, data: Any, *, repeats: int = 3, draws: int = 1000, chains: int = 2,
                        priors: Mapping[str, Any] | None = None, likelihood: str = "student_t",
                        seed: int = 0, columns: Mapping[str, str] | None = None) -> dict[str, float]:
    """log p(y) by SMC: mean, sd and every estimate over ``repeats`` x ``chains`` independent runs."""
    import pymc as pm

    from bayeslaw.data import load_runs
    from bayeslaw.model import build_model, model_priors

    runs = load_runs(data, law, columns)
    model = build_model(runs, model_priors(runs.law, likelihood, priors), likelihood)
    estimates = []
    logger = logging.getLogger("pymc")
    level = logger.level
    logger.setLevel(logging.WARNING)  # SMC announces every chain at INFO
    try:
        for r in range(repeats):
            with model, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trace = pm.sample_smc(draws=draws, chains=chains, random_seed=seed + 1000 * r, progressbar=False,
                                      compute_convergence_checks=False)
            estimates += _final_estimates(trace.sample_stats["log_marginal_likelihood"].values, chains)
    finally:
        logger.setLevel(level)
    est = np.array(estimates)
    return {"law": runs.law.name, "log_marginal_likelihood": float(est.mean()), "sd": float(est.std(ddof=1)),
            "estimates": est.tolist()}


def _final_estimates(values: np.ndarray, chains: int) -> list[float]:
    """Each chain's log marginal likelihood: the last finite value of its per-stage sequence.

    PyMC stores the sequences either as (1, chains) entries holding arrays over stages, or as a
    (chains, stages) array of scalars padded with NaN.
    """
    if values.shape == (1, chains):
        sequences = [np.ravel(np.asarray(v, dtype=float)) for v in values[0]]
    else:
        sequences = [np.array([np.ravel(np.asarray(v, dtype=float))[-1] for v in row]) for row in values]
    return [float(seq[np.isfinite(seq)][-1]) for seq in sequences]


def bayes_factors(results: list[dict[str, float]]) -> pd.DataFrame:
    """log Bayes factor of each law against the best, with the spread of the SMC estimates."""
    table = pd.DataFrame(results).set_index("law").sort_values("log_marginal_likelihood", ascending=False)
    best = table.iloc[0]
    table["log_bf_vs_best"] = table["log_marginal_likelihood"] - best["log_marginal_likelihood"]
    table["log_bf_sd"] = np.sqrt(table["sd"] ** 2 + best["sd"] ** 2)
    table.loc[table.index[0], "log_bf_sd"] = 0.0
    return table.drop(columns=["estimates"])
