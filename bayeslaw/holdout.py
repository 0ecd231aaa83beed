"""Held-out scoring: fit on the runs below a threshold, score the runs above it.

For each held-out run i with draws s = 1..S of the posterior fitted on the kept runs:
  lpd_i = log (1/S) sum_s p(log y_i | theta_s)         (log predictive density, on log target)
  coverage at level q: the share of held-out y_i inside the central q interval of the predictive
  relative error: |median predictive y_i - y_i| / y_i
With a model discrepancy (``bayeslaw.discrepancy``) each draw's mean includes delta at the held-out
runs, drawn from the GP conditioned on that draw's residuals (conditional mean plus its spread).
This is leave-future-out for scaling laws (Buerkner, Gabry & Vehtari 2020 for time series): extrapolation
is what planners bet on, and PSIS-LOO (which scores interpolation) does not measure it.

The default split (``DEFAULT``) holds out the largest-compute fifth of the runs: those with C at or
above the 80th percentile of the runs' C (numpy's linear interpolation: the ceil(n/5) largest when
there are no ties), C as the table gives it or derived by the law's convention (C = 6 N D); for runs
without compute, the law's first input. It is written as the rule ``C>t`` with t the shortest round
number between the largest kept and the smallest held-out value, so the printed rule reproduces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from bayeslaw._draws import derived_seed, flat
from bayeslaw.data import Runs, derive_inputs
from bayeslaw.errors import BayeslawError
from bayeslaw.model import model_parameters, model_priors
from bayeslaw.posterior import as_posterior
from bayeslaw.where import Condition

_OPS = (">", ">=", "<", "<=")  # a holdout keeps one side of a threshold
DEFAULT = "default"
DEFAULT_QUANTILE = 0.8
MIN_HELDOUT = 2


def is_default(spec: Any) -> bool:
    """True for the default split ("default"); None or "none" switch leave-future-out off."""
    return isinstance(spec, str) and spec.strip().lower() == DEFAULT


def is_off(spec: Any) -> bool:
    return spec is None or (isinstance(spec, str) and spec.strip().lower() in ("none", "off", ""))


def columns_of(runs: Runs) -> dict[str, np.ndarray]:
    """The runs' columns, completed by the law's compute convention (C = 6 N D where it has one)."""
    values = {name: runs.frame[name].to_numpy(dtype=float) for name in runs.frame.columns}
    return derive_inputs(runs.law, values)[0]


def split_column(runs: Runs) -> str:
    """The column the default split orders runs by: C when the runs give or imply it, else the first input."""
    return "C" if "C" in columns_of(runs) else runs.law.inputs[0]


def _round_between(lo: float, hi: float) -> float:
    """The number with the fewest significant digits strictly between lo < hi (near their geometric mean)."""
    middle = np.sqrt(lo * hi) if lo > 0 else (lo + hi) / 2
    for digits in range(1, 18):
        value = float(f"{middle:.{digits - 1}e}")
        if lo < value < hi:
            return value
    return float(middle)


def default_holdout(runs: Runs, quantile: float = DEFAULT_QUANTILE) -> Holdout:
    """Hold out the runs at or above the ``quantile`` of compute (C), as a rule ``C>t``."""
    column = split_column(runs)
    values = columns_of(runs)[column]
    held = values >= np.quantile(values, quantile)
    if held.all():
        raise BayeslawError(f"cannot split the runs by {column}: all {len(values)} runs have the same {column}")
    return Holdout(column, ">", _round_between(float(values[~held].max()), float(values[held].min())))


@dataclass(frozen=True)
class Holdout:
    """Which runs are held out: ``column op value``, e.g. C > 1e21."""

    column: str
    op: str
    value: float

    @classmethod
    def parse(cls, spec: str | Holdout) -> Holdout:
        """Read ``COLUMN OP NUMBER`` with OP one of > >= < <= (``where.Condition``: numbers may carry K/M/B/T)."""
        if isinstance(spec, Holdout):
            return spec
        condition = Condition.parse(str(spec), "holdout", ops=tuple(_OPS))
        return cls(condition.column, condition.op, condition.value)

    def mask(self, runs: Runs) -> np.ndarray:
        """True for held-out runs; the column may be derived by the law's convention (C = 6 N D)."""
        return Condition(self.column, self.op, self.value).mask(columns_of(runs), "holdout")

    def split(self, runs: Runs, min_runs: int, min_heldout: int = 1) -> tuple[Runs, Runs]:
        """Kept and held-out runs; at least ``min_runs`` kept and ``min_heldout`` held out."""
        held = self.mask(runs)
        kept_n, held_n = int((~held).sum()), int(held.sum())
        if kept_n < min_runs or held_n < min_heldout:
            raise BayeslawError(f"holdout '{self}' keeps {kept_n} runs and holds out {held_n}; the fit needs at "
                                f"least {min_runs} kept runs and at least {min_heldout} held out")
        return split_runs(runs, held)

    def __str__(self) -> str:
        text = f"{self.value:g}"
        return f"{self.column}{self.op}{text if float(text) == self.value else repr(self.value)}"


def split_runs(runs: Runs, held: np.ndarray) -> tuple[Runs, Runs]:
    """The runs where ``held`` is False (kept) and where it is True (held out), each renumbered from 0."""
    frame = runs.frame.reset_index(drop=True)
    return (Runs(frame[~held].reset_index(drop=True).rename_axis("run"), runs.law, runs.mapped, runs.derived),
            Runs(frame[held].reset_index(drop=True).rename_axis("run"), runs.law, runs.mapped, runs.derived))


def resolve_split(spec: str | Holdout, runs: Sequence[Runs]) -> tuple[Holdout, np.ndarray]:
    """The rule and its held-out mask for runs shared by several laws (the same runs, in the same order).

    "default": the default split, on the first runs that give C (else on the first runs). A rule is read on
    the first runs that have its column. Every law whose runs have the column must hold out the same runs.
    """
    if is_default(spec):
        source = next((r for r in runs if "C" in columns_of(r)), runs[0])
        rule = default_holdout(source)
    else:
        rule = Holdout.parse(spec)
    having = [r for r in runs if rule.column in columns_of(r)]
    if not having:
        rule.mask(runs[0])  # raises, naming the columns there are
    mask = rule.mask(having[0])
    for other in having[1:]:
        if not np.array_equal(rule.mask(other), mask):
            raise BayeslawError(f"holdout '{rule}' holds out different runs for {having[0].law.name} and "
                                f"{other.law.name} (their {rule.column} differ); give a rule on a column both share")
    return rule, mask


def coverage_column(level: float) -> str:
    """The name of the score holding the coverage of the central ``level`` interval: 'coverage_90'."""
    return f"coverage_{level * 100:.0f}"


def width_column(level: float) -> str:
    """The name of the score holding the median width of the central ``level`` interval: 'width_90'."""
    return f"width_{level * 100:.0f}"


def score_heldout(source: Any, heldout: Runs, levels: Sequence[float] = (0.5, 0.8, 0.9),
                  seed: int | None = 0) -> dict[str, Any]:
    """Log predictive density, interval coverage and median relative error on held-out runs.

    Each draw's predictive for a run is log f(theta_s; x) [+ delta_s(x)] + eps, eps the posterior's run noise
    (``LawPosterior.run_noise``: the law's likelihood, or with a discrepancy its nugget with a share of outliers);
    the density is averaged over draws with one draw of delta per posterior draw and run.
    Returns n_heldout, lpd, lpd_per_run, coverage_50 and width_50 per level (``coverage_column``,
    ``width_column``; widths on log target) and median_relative_error (of the predictive median).
    """
    post = as_posterior(source)
    law = post.law
    family, _ = post.run_noise()
    if family is None:
        raise BayeslawError("scoring held-out runs needs a fitted posterior with its noise model")
    run = np.arange(len(heldout))
    inputs = {k: xr.DataArray(v, dims="run", coords={"run": run}) for k, v in heldout.inputs.items()}
    log_y = np.log(heldout.target)
    mean = np.log(law.function(post.published_draws(), inputs, np)).transpose("chain", "draw", "run")
    if post.conditional is not None:  # one draw of delta per posterior draw and run (a Monte Carlo draw of the mixture)
        mean = mean + post.log_discrepancy(inputs, seed=derived_seed(seed, 1))
    mu = mean.transpose("chain", "draw", "run").values
    loglik = post.log_noise_density(log_y - mu)
    samples = flat(loglik).T  # (run, sample)
    lpd = logsumexp(samples, axis=1) - np.log(samples.shape[1])
    noise = post.log_noise(seed, runs=len(heldout)).transpose("chain", "draw", "run").values
    predictive = flat(mu + noise).T
    out: dict[str, Any] = {"n_heldout": len(heldout), "lpd": float(lpd.sum()), "lpd_per_run": float(lpd.mean())}
    for level in levels:
        lo, hi = np.quantile(predictive, [(1 - level) / 2, (1 + level) / 2], axis=1)
        out[coverage_column(level)] = float(((log_y >= lo) & (log_y <= hi)).mean())
        out[width_column(level)] = float(np.median(hi - lo))  # on log target: about a relative width
    median = np.exp(np.median(predictive, axis=1))
    out["median_relative_error"] = float(np.median(np.abs(median - heldout.target) / heldout.target))
    return out


def leave_future_out(laws: Sequence[str], data: Any, holdout: str | Holdout = DEFAULT, *,
                     levels: Sequence[float] = (0.5, 0.8, 0.9), columns: Mapping[str, str] | None = None,
                     seed: int = 0, workers: int | None = None, client: Any = None,
                     **fit_kwargs: Any) -> pd.DataFrame:
    """Fit each law on the runs not held out and score the held-out runs; best held-out lpd first.

    ``holdout``: a rule such as "C>1e21", or "default" (the largest-compute fifth, see the module notes);
    the same runs are held out for every law (``resolve_split``). Columns are snake_case (``coverage_90``).
    The fits run at once on ``workers`` local processes or a Dask ``client`` (``bayeslaw.fanout.map_jobs``;
    default: one process per CPU), with the same results as one after another.
    """
    from bayeslaw.data import load_runs
    from bayeslaw.fanout import check_workers, map_jobs

    loaded = [load_runs(data, name, columns) for name in laws]
    if not loaded:
        raise BayeslawError("leave_future_out needs at least one law")
    rule, held_mask = resolve_split(holdout, loaded)
    for runs in loaded:  # every split is checked before the first fit
        params = model_parameters(model_priors(runs.law, fit_kwargs.get("likelihood", "student_t"),
                                               fit_kwargs.get("priors")))
        check_sizes(str(rule), runs.law.name, int((~held_mask).sum()), int(held_mask.sum()), len(params))
    check_workers(workers, client)
    jobs = []
    for runs in loaded:
        kept, heldout = split_runs(runs, held_mask)
        jobs.append({"kept": kept, "heldout": heldout, "settings": {"seed": seed, **fit_kwargs},
                     "levels": tuple(levels), "seed": seed})
    rows = []
    for runs, (scores, converged, _) in zip(loaded, map_jobs(refit_and_score, jobs, workers=workers, client=client),
                                            strict=True):
        rows.append({"law": runs.law.name, "n_fit": int((~held_mask).sum()),
                     **scores, "converged": converged})
    table = pd.DataFrame(rows).set_index("law").sort_values("lpd", ascending=False)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def refit_and_score(kept: Runs, heldout: Runs, settings: Mapping[str, Any], levels: Sequence[float],
                    seed: int | None) -> tuple[dict[str, Any], bool, str]:
    """One leave-future-out job: fit ``kept.law`` to the kept runs with ``settings`` (keyword arguments of
    ``bayeslaw.fit``) and score the held-out runs (``score_heldout``). Returns the scores, whether the fit
    converged and its diagnostics in one line."""
    from bayeslaw.fit import fit

    result = fit(kept.law, kept, **settings)
    return score_heldout(result, heldout, levels, seed), bool(result.converged), result.diagnostics.brief()


def check_sizes(rule: str, name: str, kept: int, held: int, n_params: int) -> None:
    """Refuse a split that leaves fewer than n_params + 2 runs to refit or fewer than 2 held out."""
    if kept < n_params + 2 or held < MIN_HELDOUT:
        raise BayeslawError(f"leave-future-out split '{rule}' keeps {kept} runs to refit and holds out {held}; "
                            f"{name} has {n_params} parameters and needs at least {n_params + 2} kept runs and "
                            f"{MIN_HELDOUT} held out; give another holdout, or none for PSIS-LOO alone")
