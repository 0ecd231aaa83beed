"""Held-out scoring: fit on the runs below a threshold, score the runs above it.

For each held-out run i with draws s = 1..S of the posterior fitted on the kept runs:
  lpd_i = log (1/S) sum_s p(log y_i | theta_s)         (log predictive density, on log target)
  coverage at level q: the share of held-out y_i inside the central q interval of the predictive
  relative error: |median predictive y_i - y_i| / y_i
With a model discrepancy (``bayeslaw.discrepancy``) each draw's mean includes delta at the held-out
runs, drawn from the GP conditioned on that draw's residuals (conditional mean plus its spread).
This is leave-future-out for scaling laws: extrapolation is what planners bet on, and PSIS-LOO
(which scores interpolation) does not measure it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from bayeslaw.data import Runs, derive_inputs
from bayeslaw.errors import BayeslawError
from bayeslaw.model import log_likelihood
from bayeslaw.posterior import as_posterior

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_PATTERN = re.compile(r"^\s*([A-Za-z_]\w*)\s*(>=|<=|>|<)\s*([0-9.eE+-]+)\s*$")


@dataclass(frozen=True)
class Holdout:
    """Which runs are held out: ``column op value``, e.g. C > 1e21."""

    column: str
    op: str
    value: float

    @classmethod
    def parse(cls, spec: str | Holdout) -> Holdout:
        if isinstance(spec, Holdout):
            return spec
        match = _PATTERN.match(str(spec))
        if not match:
            raise BayeslawError(f"cannot read holdout '{spec}'; write it as COLUMN>VALUE, e.g. 'C>1e21'")
        try:
            value = float(match.group(3))
        except ValueError:
            raise BayeslawError(f"holdout '{spec}': '{match.group(3)}' is not a number") from None
        return cls(match.group(1), match.group(2), value)

    def mask(self, runs: Runs) -> np.ndarray:
        """True for held-out runs; the column may be derived by the law's convention (C = 6 N D)."""
        values = {name: runs.frame[name].to_numpy() for name in runs.frame.columns}
        values, _ = derive_inputs(runs.law, values)
        if self.column not in values:
            raise BayeslawError(f"holdout column '{self.column}' is not among the runs' columns "
                                f"({', '.join(values)})")
        return _OPS[self.op](values[self.column], self.value)

    def split(self, runs: Runs, min_runs: int) -> tuple[Runs, Runs]:
        """Kept and held-out runs; each side must have at least ``min_runs``."""
        held = self.mask(runs)
        kept_n, held_n = int((~held).sum()), int(held.sum())
        if kept_n < min_runs or held_n < 1:
            raise BayeslawError(f"holdout '{self}' keeps {kept_n} runs and holds out {held_n}; the fit needs at "
                                f"least {min_runs} kept runs and at least 1 held out")
        frame = runs.frame.reset_index(drop=True)
        return (Runs(frame[~held].reset_index(drop=True).rename_axis("run"), runs.law, runs.mapped, runs.derived),
                Runs(frame[held].reset_index(drop=True).rename_axis("run"), runs.law, runs.mapped, runs.derived))

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.value:g}"


def score_heldout(source: Any, heldout: Runs, levels: Sequence[float] = (0.5, 0.8, 0.9),
                  seed: int | None = 0) -> dict[str, Any]:
    """Log predictive density, interval coverage and median relative error on held-out runs."""
    post = as_posterior(source)
    law = post.law
    if post.likelihood is None:
        raise BayeslawError("scoring held-out runs needs a fitted posterior with its noise model")
    run = np.arange(len(heldout))
    inputs = {k: xr.DataArray(v, dims="run", coords={"run": run}) for k, v in heldout.inputs.items()}
    log_y = xr.DataArray(np.log(heldout.target), dims="run", coords={"run": run})
    # with a discrepancy: one draw of delta per posterior draw and run (a Monte Carlo draw of the mixture)
    delta = post.log_discrepancy(inputs, seed=None if seed is None else seed + 1) if post.discrepancy else None
    loglik = log_likelihood(law, post.likelihood, post.draws, inputs, log_y, delta)
    samples = loglik.stack(sample=("chain", "draw")).transpose("run", "sample").values
    lpd = logsumexp(samples, axis=1) - np.log(samples.shape[1])
    mean = np.log(law.function(post.params(), inputs, np))
    if delta is not None:
        mean = mean + delta
    noise = post.log_noise(seed, runs=len(heldout)).assign_coords(run=run)
    predictive = (mean + noise).stack(sample=("chain", "draw")).transpose("run", "sample").values
    out: dict[str, Any] = {"n_heldout": len(heldout), "lpd": float(lpd.sum()), "lpd_per_run": float(lpd.mean())}
    for level in levels:
        lo, hi = np.quantile(predictive, [(1 - level) / 2, (1 + level) / 2], axis=1)
        out[f"coverage {level:.0%}"] = float(((log_y.values >= lo) & (log_y.values <= hi)).mean())
        out[f"width {level:.0%}"] = float(np.median(hi - lo))  # on log target: about a relative width
    median = np.exp(np.median(predictive, axis=1))
    out["median relative error"] = float(np.median(np.abs(median - heldout.target) / heldout.target))
    return out


def leave_future_out(laws: Sequence[str], data: Any, holdout: str | Holdout, *, levels=(0.5, 0.8, 0.9),
                     columns: Mapping[str, str] | None = None, seed: int = 0, **fit_kwargs: Any) -> pd.DataFrame:
    """Fit each law on the runs not held out and score the held-out runs; best held-out lpd first."""
    from bayeslaw.data import load_runs
    from bayeslaw.fit import fit

    rule = Holdout.parse(holdout)
    rows = []
    for name in laws:
        runs = load_runs(data, name, columns)
        kept, held = rule.split(runs, min_runs=len(runs.law.params) + 2)
        result = fit(runs.law, kept, seed=seed, **fit_kwargs)
        scores = score_heldout(result, held, levels, seed)
        rows.append({"law": runs.law.name, "n_fit": len(kept), **scores, "converged": result.converged})
    table = pd.DataFrame(rows).set_index("law").sort_values("lpd", ascending=False)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table
