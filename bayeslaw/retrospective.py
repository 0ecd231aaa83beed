"""Retrospective test of run advice on runs already trained: start from a fit of a subset, reveal the runs
each strategy picks from a pool (their real losses), and compare the decision that follows with the decision
from all the runs.

Strategies under a FLOP spend: ``advised`` (``design.advise``, one pick at a time, its real loss revealed
before the next), ``cheapest`` (the cheapest runs first) and ``random`` (runs in a random order, each taken
while it fits the spend; the mean over ``orders`` orders). After the picks, the posterior is the start fit's
draws reweighted by the revealed runs' likelihood (``design.reveal``) while the effective sample size stays
at least ``min_ess``; below it the start's runs plus the revealed runs are refitted with NUTS (the start
fit's settings). The decision compared is ``design.decision_summary``: the median of each draw's optimal N
at ``budget`` and the width of its 90% interval (in log N).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayeslaw.design import advise, decision_summary, ess, reveal
from bayeslaw.errors import BayeslawError

MIN_ESS = 400  # draws: below this the reweighted posterior's 90% interval is not trusted; refit instead


class _Posteriors:
    """The posterior after revealing a set of pool runs: reweighted start draws, or a (cached) refit."""

    def __init__(self, start: Any, pool: pd.DataFrame, min_ess: float, settings: Mapping[str, Any]):
        from bayeslaw.compare import refit_settings

        self.start, self.pool, self.min_ess = start, pool, min_ess
        self.settings = {**refit_settings(start), **settings}
        self.cache: dict[tuple[int, ...], Any] = {}
        self.refits = 0

    def __call__(self, picked: Sequence[int]) -> tuple[Any, np.ndarray | None, float, str]:
        """(source, log weights or None, ESS, how) after revealing ``picked``: the latest refit whose runs are
        among them (or the start) reweighted by the rest while the ESS holds, else a refit on all of them."""
        chosen = set(picked)
        key = max((k for k in self.cache if set(k) <= chosen), key=len, default=())
        base = self.cache[key] if key else self.start
        rest = sorted(chosen - set(key))
        size = float(base.posterior.sizes["chain"] * base.posterior.sizes["draw"])
        if not rest:
            return base, None, size, "refit" if key else "start"
        log_w = reveal(base, self.pool.loc[rest])
        size = float(ess(log_w))
        if size >= self.min_ess:
            return base, log_w, size, "refit, reweighted" if key else "reweighted"
        import bayeslaw as bl

        key = tuple(sorted(chosen))
        law = self.start.law
        cols = [*law.inputs, law.target]
        frame = pd.concat([self.start.runs.frame[cols], self.pool.loc[list(key), cols]], ignore_index=True)
        self.cache[key] = bl.fit(law, frame, **self.settings)
        self.refits += 1
        return self.cache[key], None, size, "refit"


def retrospective(start: Any, pool: pd.DataFrame, budget: float, spends: Sequence[float],
                  reference: Mapping[str, float], *, orders: int = 20, outcomes: int = 64,
                  min_ess: float = MIN_ESS, refit: Mapping[str, Any] | None = None, seed: int = 0,
                  flops_per_param_token: float = 6.0, unique_tokens: float | None = None) -> pd.DataFrame:
    """One row per strategy and spend: runs taken, FLOPs spent, the decision (median N_opt, 90% width in log N),
    its errors against ``reference`` (|log median ratio|, |width difference|), and how the posterior was made
    (reweighted or refit, the ESS of the reweighting). ``pool``: the candidate runs with the law's inputs and
    target (their losses are read only when picked). ``refit``: sampler settings for refits (e.g. chains and
    draws); the start fit's otherwise. ``unique_tokens``: U of the decision, for data-constrained laws (each
    candidate keeps its own U)."""
    law = start.law
    missing = [c for c in (*law.inputs, law.target) if c not in pool.columns]
    if missing:
        raise BayeslawError(f"the pool of runs misses column(s) {', '.join(missing)}")
    pool = pool.reset_index(drop=True).copy()
    flops = flops_per_param_token * pool["N"].to_numpy(dtype=float) * pool["D"].to_numpy(dtype=float)
    posteriors = _Posteriors(start, pool, min_ess, dict(refit or {}))
    rows = []

    def row(strategy: str, spend: float, picked: list[int], extra: Mapping[str, Any] | None = None):
        source, log_w, size, how = posteriors(picked)
        weights = None if log_w is None else np.exp(log_w - log_w.max())
        d = decision_summary(source, budget, weights, flops_per_param_token=flops_per_param_token,
                             unique_tokens=unique_tokens)
        return {"strategy": strategy, "spend": spend, "runs": len(picked), "flops": float(flops[picked].sum()),
                "median N_opt": d["median"], "width": d["width"],
                "median error": abs(float(np.log(d["median"] / reference["median"]))),
                "width error": abs(d["width"] - reference["width"]), "posterior": how, "ess": size, **(extra or {})}

    for spend in spends:
        picked: list[int] = []
        while True:
            left = spend - flops[picked].sum()
            rest = [i for i in range(len(pool)) if i not in picked and flops[i] <= left]
            if not rest:
                break
            source, log_w, _, _ = posteriors(picked)
            columns = ["N", "D", *(["U"] if "U" in law.inputs else [])]
            advice = advise(source, budget, left, candidates=pool.loc[rest, columns].reset_index(drop=True),
                            outcomes=outcomes, log_weights=log_w, seed=seed + len(picked),
                            flops_per_param_token=flops_per_param_token, unique_tokens=unique_tokens, max_picks=1,
                            refit="never")
            if advice.picks.empty:
                break
            first = advice.table.loc[advice.table["picked"] == 1, "candidate"].iloc[0]
            picked.append(rest[int(first)])
        rows.append(row("advised", spend, picked))
        cheap, total = [], 0.0
        for i in np.argsort(flops, kind="stable"):
            if total + flops[i] <= spend:
                cheap.append(int(i))
                total += flops[i]
        rows.append(row("cheapest", spend, cheap))
        random_rows = []
        for r in range(orders):
            take, total = [], 0.0
            for i in np.random.default_rng(seed + r).permutation(len(pool)):
                if total + flops[i] <= spend:
                    take.append(int(i))
                    total += flops[i]
            random_rows.append(row("random", spend, take))
        mean = pd.DataFrame(random_rows)
        summary = {k: mean[k].mean() for k in ("runs", "flops", "median N_opt", "width", "median error",
                                               "width error", "ess")}
        hows = mean["posterior"].value_counts()
        rows.append({"strategy": f"random (mean of {orders})", "spend": spend, **summary,
                     "posterior": ", ".join(f"{k} {v}" for k, v in hows.items())})
    out = pd.DataFrame(rows)
    out.attrs["refits"] = posteriors.refits
    return out
