"""Compute-optimal allocation under uncertainty: for every posterior draw and budget, N_opt and D_opt.

For a budget C = k N D (k = 6 by default), the optimum minimises L(N, C / (k N)) over N.
- Closed form where the law has one (Chinchilla form, Hoffmann eq 4): N_opt = G (C/k)^a.
- Otherwise a vectorised golden-section search in u = log N over all draws and budgets at once
  (L along an isoFLOP line is unimodal in log N for these laws: a sum of exponentials in u).
Constraints: a largest model (N <= max_params) and a token cap (D <= max_tokens). Both clip the
search interval; for a unimodal profile the constrained optimum is the clipped one.
Data-constrained laws (inputs N, D, U: Muennighoff et al. 2023, Quokka eq 14) plan for a given stock
of unique tokens U: D = C / (k N) may exceed U, and the law prices the repetition (epochs D / U).
DeepSeek's allocation laws give M_opt (FLOPs per token) directly, with D_opt = C / M_opt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayeslaw._draws import stacked
from bayeslaw._search import GOLDEN, SEARCH_STEPS, check_budgets, golden_section  # noqa: F401 (re-exported)
from bayeslaw.errors import BayeslawError
from bayeslaw.laws import Law
from bayeslaw.posterior import LawPosterior, as_posterior
from bayeslaw.predict import check_levels, interval_columns


def broadcast_numpy(params, *arrays):
    """Params and arrays broadcast together as numpy, plus a function that wraps a result back
    into the broadcast xarray shape (when any input was a DataArray)."""
    items = [*params.values(), *arrays]
    if any(isinstance(x, xr.DataArray) for x in items):
        full = xr.broadcast(*[x if isinstance(x, xr.DataArray) else xr.DataArray(x) for x in items])
        template = full[0]
        values = [x.transpose(*template.dims).values for x in full]
        wrap = template.copy  # copy(data=...) keeps dims and coords
        return dict(zip(params, values[:len(params)], strict=True)), values[len(params):], lambda v: wrap(data=v)
    values = np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in items])
    return dict(zip(params, values[:len(params)], strict=True)), values[len(params):], lambda v: v


def search_bounds(budget, k: float, max_params: float | None, max_tokens: float | None):
    """log N interval: N >= 1, D >= 1, N <= max_params, D <= max_tokens (NaN where infeasible)."""
    lo = budget * 0.0
    hi = np.log(budget / k)
    if max_params is not None:
        hi = np.minimum(hi, np.log(max_params))
    if max_tokens is not None:
        lo = np.maximum(lo, np.log(budget / (k * max_tokens)))
    feasible = lo <= hi
    return xr.where(feasible, lo, np.nan), xr.where(feasible, hi, np.nan)


def require_allocation_inputs(law: Law, what: str, unique_tokens: float | None = None) -> None:
    """Refuse laws that do not take N and D (and U, given, for data-constrained laws)."""
    if set(law.inputs) not in ({"N", "D"}, {"N", "D", "U"}):
        raise BayeslawError(f"law '{law.name}' has inputs {', '.join(law.inputs)}; {what} needs a law in N and D")
    if "U" in law.inputs and unique_tokens is None:
        raise BayeslawError(f"law '{law.name}' is data-constrained: {what} needs the unique tokens available "
                            "(unique_tokens, CLI --unique-tokens)")


def optimal_allocation(law: Law, params, budget, *, flops_per_param_token: float = 6.0,
                       max_params: float | None = None, max_tokens: float | None = None,
                       method: str = "auto", unique_tokens: float | None = None):
    """Per-draw (N_opt, D_opt) for budgets C = k N D: closed form ("closed"), search ("numerical") or "auto".

    ``unique_tokens`` (U) is required by data-constrained laws and ignored by the others."""
    require_allocation_inputs(law, "allocating a budget", unique_tokens)
    k = flops_per_param_token
    if method not in ("auto", "closed", "numerical"):
        raise BayeslawError(f"unknown method '{method}'; use auto, closed or numerical")
    if method == "closed" and law.optimum is None:
        raise BayeslawError(f"law '{law.name}' has no closed-form optimum; use method='numerical'")
    lo, hi = search_bounds(budget, k, max_params, max_tokens)
    if law.optimum is not None and method != "numerical":
        n_opt, _ = law.optimum(params, budget, k, np)
        log_n = np.minimum(np.maximum(np.log(n_opt), lo), hi)  # NaN bounds stay NaN
    else:
        flat, (c, lo, hi), wrap = broadcast_numpy(params, budget, lo, hi)

        def loss_at(u):
            n = np.exp(u)
            return law.function(flat, allocation_inputs(law, n, c / (k * n), unique_tokens), np)

        log_n = wrap(golden_section(loss_at, lo, hi))
    n = np.exp(log_n)
    return n, budget / (k * n)


def allocation_inputs(law: Law, n, d, unique_tokens: float | None) -> dict[str, Any]:
    """The law's inputs at an allocation: N and D, plus U for data-constrained laws."""
    return {"N": n, "D": d, "U": unique_tokens} if "U" in law.inputs else {"N": n, "D": d}


@dataclass(frozen=True)
class Plan:
    """Per-draw compute-optimal allocations, dims (chain, draw, budget)."""

    draws: xr.Dataset
    method: str
    notes: list[str] = field(default_factory=list)
    uncertainty: dict[str, str] = field(default_factory=dict)  # what the planned loss accounts for

    def summary(self, levels: Sequence[float] = (0.9,)) -> pd.DataFrame:
        """Per budget: median and central intervals of each planned quantity."""
        levels = check_levels(levels)
        columns = {"budget": self.draws["budget"].values}
        for name in self.draws.data_vars:
            columns |= interval_columns(stacked(self.draws[name], "budget"), levels, prefix=f"{name} ")
        return pd.DataFrame(columns).set_index("budget")


def budget_array(budget: float | Sequence[float] | np.ndarray) -> xr.DataArray:
    """Checked budgets (``check_budgets``) along dim "budget"."""
    values = check_budgets(budget)
    return xr.DataArray(values, dims="budget", coords={"budget": values})


def check_settings(flops_per_param_token: float, **caps: float | None) -> None:
    """Refuse a k in C = k N D or a cap that is not a finite number > 0 (inf gave all-NaN plans)."""
    for name, value in {"flops_per_param_token": flops_per_param_token, **caps}.items():
        if value is None and name != "flops_per_param_token":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise BayeslawError(f"{name} must be a number, got {value!r}") from None
        if not (np.isfinite(number) and number > 0):
            raise BayeslawError(f"{name} must be a finite number > 0, got {value}")


def check_caps(budgets: np.ndarray, k: float, max_params: float | None, max_tokens: float | None) -> None:
    """Refuse budgets no allocation can spend: N >= 1, D >= 1, N <= max_params, D <= max_tokens, C = k N D."""
    values = np.atleast_1d(np.asarray(budgets, dtype=float))
    small = values < k
    if small.any():
        raise BayeslawError(f"budget {values[small][0]:.3g} FLOPs is below C = {k:g} N D at N = D = 1; "
                            "give a budget in FLOPs")
    if max_params is None or max_tokens is None:
        if max_tokens is not None and max_tokens < 1:
            raise BayeslawError(f"the token cap {max_tokens:.3g} is below one token")
        return
    largest = k * max_params * max_tokens
    over = values > largest
    if over.any():
        raise BayeslawError(f"budget {values[over][0]:.3g} FLOPs cannot be spent within the caps: N <= "
                            f"{max_params:.3g} parameters and D <= {max_tokens:.3g} tokens allow at most C = {k:g} N D "
                            f"= {largest:.3g} FLOPs; raise a cap or plan a smaller budget")


def budget_extrapolation(post: LawPosterior, budgets: np.ndarray) -> np.ndarray | None:
    """Decades each budget lies outside the fitted runs' compute (C given or C = k N D); None when unknown."""
    from bayeslaw.predict import decades_outside

    fitted = post.fitted_ranges.get("C")
    return None if fitted is None else decades_outside(np.asarray(budgets, dtype=float), fitted)


def plan(source: Any, budget: float | Sequence[float] | np.ndarray, *, flops_per_param_token: float = 6.0,
         max_params: float | None = None, max_tokens: float | None = None, method: str = "auto",
         unique_tokens: float | None = None) -> Plan:
    """For every posterior draw and budget: N_opt, D_opt, the law's loss there, and tokens per parameter.

    ``max_params`` caps N (memory); ``max_tokens`` caps D. ``unique_tokens`` is the stock of unique
    data: a data-constrained law (inputs N, D, U) plans with repetition and reports epochs = D / U;
    for other laws it caps D (no repetition).
    DeepSeek's ``deepseek-M_opt`` / ``deepseek-D_opt`` fits give M_opt and D_opt with C = M D.
    """
    post: LawPosterior = as_posterior(source)
    law = post.law
    budgets = budget_array(budget)
    check_settings(flops_per_param_token, max_params=max_params, max_tokens=max_tokens, unique_tokens=unique_tokens)
    if law.target in ("M_opt", "D_opt"):
        return _deepseek_plan(post, budgets)
    constrained = "U" in law.inputs
    if unique_tokens is not None and not constrained:
        max_tokens = unique_tokens if max_tokens is None else min(max_tokens, unique_tokens)
    require_allocation_inputs(law, "allocating a budget", unique_tokens)
    check_caps(budgets.values, flops_per_param_token, max_params, max_tokens)
    n, d = optimal_allocation(law, post.published_draws(), budgets, flops_per_param_token=flops_per_param_token,
                              max_params=max_params, max_tokens=max_tokens, method=method,
                              unique_tokens=unique_tokens)
    loss = law.function(post.published_draws(), allocation_inputs(law, n, d, unique_tokens), np)
    if post.conditional is not None:  # the fit's model discrepancy at each draw's allocation
        loss = loss * np.exp(post.log_discrepancy(allocation_inputs(law, n, d, unique_tokens), seed=0, smooth=True))
    draws = xr.Dataset({"N_opt": n, "D_opt": d, law.target: loss, "tokens_per_param": d / n})
    if constrained:
        draws["epochs"] = d / unique_tokens
    draws = draws.transpose("chain", "draw", "budget")
    used = "closed form" if law.optimum is not None and method != "numerical" else "golden-section search in log N"
    notes = [f"C = {flops_per_param_token:g} N D; optimum by {used}"]
    if max_params is not None:
        notes.append(f"N capped at {max_params:.3g}")
    if constrained:
        notes.append(f"{unique_tokens:.3g} unique tokens, repeated as the law prices it (epochs = D / U)")
    if max_tokens is not None:
        reason = f" (no repetition: law '{law.name}' has no data-constrained term)" if not constrained else ""
        notes.append(f"D capped at {max_tokens:.3g} tokens{reason}")
    beyond = budget_extrapolation(post, budgets.values)
    if beyond is not None and (beyond > 0).any():
        lo, hi = post.fitted_ranges["C"]
        notes.append(f"budgets lie up to {beyond.max():.2g} decades outside the fitted runs' compute "
                     f"({lo:.3g}-{hi:.3g} FLOPs): the plan extrapolates the law that far")
    if post.conditional is not None:
        notes.append(f"{law.target} includes the fit's model discrepancy ({post.discrepancy.describe()})")
    sources = post.uncertainty(noise=False)  # the planned loss is the expected loss: no run noise
    notes.append("uncertainty: " + "; ".join(f"{k}: {v}" for k, v in sources.items()) + "; run noise: not in "
                 f"the planned {law.target} (the expected loss)")
    return Plan(draws, used, notes, sources)


def _deepseek_plan(post: LawPosterior, budgets: xr.DataArray) -> Plan:
    law = post.law
    value = law.function(post.published_draws(), {"C": budgets}, np)
    m, d = (value, budgets / value) if law.target == "M_opt" else (budgets / value, value)
    draws = xr.Dataset({"M_opt": m, "D_opt": d}).transpose("chain", "draw", "budget")
    sources = post.uncertainty(noise=False)
    return Plan(draws, f"{law.name} power law", ["C = M D, M in non-embedding FLOPs per token (DeepSeek)"], sources)
