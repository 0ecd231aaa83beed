"""Comparing law families by evidence: PSIS-LOO with stacking, and SMC marginal likelihoods.

- ``compare({name: fit})``: expected log predictive density by Pareto-smoothed importance-sampling
  LOO (Vehtari, Gelman & Gabry 2017) with standard errors, stacking weights (Yao et al. 2018), and
  the runs whose Pareto k exceeds 0.7 (LOO is unreliable for them), all through ArviZ.
- ``marginal_likelihood(law, data)``: log p(y) from sequential Monte Carlo (``pm.sample_smc``),
  repeated with different seeds because single SMC estimates are noisy; Bayes factors follow.
Fits compared must be of the same runs: the same observed targets in the same order.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
import pandas as pd

from bayeslaw.errors import BayeslawError

PARETO_K_LIMIT = 0.7


@dataclass(frozen=True)
class Comparison:
    """The ranked table and, per law, the runs whose Pareto k makes LOO unreliable."""

    table: pd.DataFrame
    influential: dict[str, list[int]]


def _same_runs(fits: Mapping[str, Any]) -> None:
    names = list(fits)
    first = fits[names[0]].idata.observed_data
    reference = next(iter(first.data_vars.values())).values
    for name in names[1:]:
        other = next(iter(fits[name].idata.observed_data.data_vars.values())).values
        if other.shape != reference.shape or not np.array_equal(other, reference):
            raise BayeslawError(f"fits '{names[0]}' and '{name}' were made on different runs (their observed "
                                "targets differ); compare fits of the same data")


def compare(fits: Mapping[str, Any], *, method: str = "stacking") -> Comparison:
    """Rank fits by PSIS-LOO elpd, with standard errors, weights and Pareto-k warnings."""
    if len(fits) < 2:
        raise BayeslawError("compare needs at least two fits")
    _same_runs(fits)
    influential: dict[str, list[int]] = {}
    for name, result in fits.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reported below, by run
            loo = az.loo(result.idata, pointwise=True)
        bad = np.flatnonzero(np.asarray(loo.pareto_k) > PARETO_K_LIMIT)
        influential[name] = bad.tolist()
        if len(bad):
            warnings.warn(f"{name}: PSIS-LOO is unreliable for runs {', '.join(map(str, bad[:10]))}"
                          f"{' ...' if len(bad) > 10 else ''} (Pareto k > {PARETO_K_LIMIT}); these runs are "
                          "influential: check them, or compare by leave-future-out", UserWarning, stacklevel=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare({name: fit.idata for name, fit in fits.items()}, ic="loo", method=method)
    table = table.rename(columns={"elpd_loo": "elpd", "se": "elpd se", "dse": "diff se", "elpd_diff": "elpd diff",
                                  "p_loo": "p_loo (effective parameters)"})
    table["runs with k > 0.7"] = [len(influential[name]) for name in table.index]
    return Comparison(table.drop(columns=["warning", "scale"], errors="ignore"), influential)


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
    table["log BF vs best"] = table["log_marginal_likelihood"] - best["log_marginal_likelihood"]
    table["log BF sd"] = np.sqrt(table["sd"] ** 2 + best["sd"] ** 2)
    table.loc[table.index[0], "log BF sd"] = 0.0
    return table.drop(columns=["estimates"])
