"""Risk-aware allocation: commit to one (N, D) per budget, chosen against the whole posterior.

For a budget C and a candidate N (D = C / (k N)), the posterior predictive loss over draws s is
L_s(N) = f(theta_s; N, D) exp(eps_s), with one noise draw eps_s per posterior draw (held fixed, so
the risk is a smooth function of N). The chosen N minimises a risk measure of {L_s(N)}:
  mean           E[L]
  quantile:q     VaR_q, the q-quantile of L
  cvar:q         CVaR_q = E[L | L >= VaR_q], the mean of the worst (1 - q) tail (Rockafellar & Uryasev 2000)
  prob:target    maximise P(L <= target)
Regret of an allocation on draw s: f(theta_s; N, D) - f(theta_s; N_opt,s, D_opt,s), the loss given up
against that draw's own optimum. The same is reported for the allocation a point estimate (the
posterior mean of the parameters) would choose, so the cost of ignoring uncertainty is visible.
With a fit's model discrepancy (``bayeslaw.discrepancy``) the predictive loss is
L_s(N) = f(theta_s; N, D) exp(delta_s(N, D) + eps_s), delta_s a smooth function of N on each draw, and
regret is measured on f exp(delta_s) against that curve's own minimum (a fine grid in log N per draw).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayeslaw._draws import derived_seed, flat
from bayeslaw._search import check_budgets, golden_section
from bayeslaw._threads import in_threads
from bayeslaw.errors import BayeslawError
from bayeslaw.laws import Law
from bayeslaw.plan import (
    check_caps,
    check_settings,
    optimal_allocation,
    require_allocation_inputs,
    search_bounds,
)
from bayeslaw.posterior import LawPosterior, as_posterior

GRID = 161  # candidate allocations per budget before the golden-section refinement
BLOCK = GRID  # grid points evaluated at once for each draw's lowest expected loss


@dataclass(frozen=True)
class Risk:
    """A risk measure over posterior draws: mean, quantile (VaR), cvar, or prob (of reaching a target)."""

    name: str
    level: float | None = None

    @classmethod
    def parse(cls, spec: str | Risk, target_loss: float | None = None) -> Risk:
        if isinstance(spec, Risk):
            return spec
        name, _, arg = str(spec).strip().lower().partition(":")
        if name == "mean" and not arg:
            return cls("mean")
        if name in ("quantile", "var", "cvar"):
            level = _number(arg, spec)
            if not 0 < level < 1:
                raise BayeslawError(f"risk '{spec}': the level must lie in (0, 1), got {level}")
            return cls("quantile" if name == "var" else name, level)
        if name == "prob":
            level = _number(arg, spec) if arg else target_loss
            if level is None or not level > 0:
                raise BayeslawError(f"risk '{spec}' needs a target loss > 0: prob:TARGET or --target-loss")
            return cls("prob", level)
        raise BayeslawError(f"unknown risk '{spec}'; use mean, quantile:Q, cvar:Q (Q in (0, 1)) or prob:TARGET")

    def __call__(self, losses: np.ndarray) -> np.ndarray:
        """The risk of each row of ``losses`` (draws on the last axis); lower is better."""
        if self.name == "mean":
            return losses.mean(axis=-1)
        if self.name == "prob":
            return -(losses <= self.level).mean(axis=-1)
        var = np.quantile(losses, self.level, axis=-1)
        if self.name == "quantile":
            return var
        tail = losses >= var[..., None]
        return np.where(tail, losses, 0.0).sum(axis=-1) / tail.sum(axis=-1)

    def describe(self, value: float) -> float:
        """The reported number: the risk itself, or the probability for 'prob'."""
        return -value if self.name == "prob" else value

    def __str__(self) -> str:
        return self.name if self.level is None else f"{self.name}:{self.level:g}"


def _number(text: str, spec: Any) -> float:
    try:
        return float(text)
    except ValueError:
        raise BayeslawError(f"risk '{spec}': expected a number after ':', got '{text}'") from None


@dataclass(frozen=True)
class _Problem:
    """Flattened draws of one law for allocation: parameters (S,), noise (S,), k and constraints."""

    law: Law
    params: dict[str, np.ndarray]
    noise: np.ndarray
    k: float
    max_params: float | None
    max_tokens: float | None
    delta: Callable | None = None  # the fit's model discrepancy on log loss, when it has one

    def expected(self, n, budget):
        """Loss of candidates n (shape (..., 1)) on every draw without the run noise: f_s(N, D), times
        exp(delta_s(N, D)) when the fit has a model discrepancy; shape (..., S)."""
        inputs = {"N": n, "D": budget / (self.k * n)}
        mean = self.law.function(self.params, inputs, np)
        return mean if self.delta is None else mean * np.exp(self.delta(inputs))

    def loss(self, n, budget):
        """Predictive loss of one run at candidates n on every draw: the expected loss times exp(eps_s)."""
        return self.expected(n, budget) * np.exp(self.noise)

    def log_grid(self, budget: float, n_opt: np.ndarray, pad: float, points: int) -> np.ndarray | None:
        """Candidate log N from ``pad`` e-folds below the draws' smallest optimum to ``pad`` above their
        largest, within the feasible interval; None when the budget cannot meet the constraints."""
        lo, hi = search_bounds(np.asarray(budget), self.k, self.max_params, self.max_tokens)
        if not np.isfinite(lo):
            return None
        spread = np.log(n_opt[np.isfinite(n_opt)])
        return np.linspace(max(float(lo), spread.min() - pad), min(float(hi), spread.max() + pad), points)

    def best_expected(self, budget: float, n_opt: np.ndarray) -> np.ndarray:
        """Each draw's lowest expected loss: at its law optimum, or with a discrepancy (which moves the
        optimum) the minimum over a fine log grid around the draws' optima."""
        if self.delta is None:
            return self.expected(n_opt, budget)
        grid = self.log_grid(budget, n_opt, 2.0, 4 * GRID)
        if grid is None:
            return np.full(len(self.noise), np.nan)
        n = np.exp(grid)[:, None]
        # in blocks of grid points that keep (points x draws) arrays in cache; the minimum is the same
        return np.min([self.expected(n[i:i + BLOCK], budget).min(axis=0) for i in range(0, len(n), BLOCK)], axis=0)

    def loss_at(self, n: float, budget: float) -> np.ndarray:
        """Predictive loss of one allocation on every draw: shape (S,)."""
        return self.loss(np.array([[n]]), budget)[0]

    def optimum(self, budget: float) -> np.ndarray:
        n, _ = optimal_allocation(self.law, self.params, np.asarray(budget), flops_per_param_token=self.k,
                                  max_params=self.max_params, max_tokens=self.max_tokens)
        return np.asarray(n)

    def choose(self, budget: float, risk: Risk, n_opt: np.ndarray) -> float:
        """The N whose predictive-loss risk is lowest: a log grid over the draws' optima, then golden section."""
        grid = self.log_grid(budget, n_opt, 1.0, GRID)
        if grid is None:
            return float("nan")
        values = risk(self.loss(np.exp(grid)[:, None], budget))
        best = int(np.argmin(values))
        a, b = grid[max(best - 1, 0)], grid[min(best + 1, GRID - 1)]
        if risk.name == "prob":  # a step function of N: the grid point is the answer
            return float(np.exp(grid[best]))
        u = golden_section(lambda x: risk(self.loss(np.exp(np.atleast_1d(x))[:, None], budget))[0],
                           np.float64(a), np.float64(b), steps=40)
        return float(np.exp(u))


def _problem(post: LawPosterior, k: float, max_params, max_tokens, seed) -> _Problem:
    require_allocation_inputs(post.law, "risk-aware allocation")
    params = {k_: flat(v.values) for k_, v in post.published_draws().items()}
    delta = post.discrepancy_function(derived_seed(seed, 1))
    return _Problem(post.law, params, flat(post.log_noise(seed).values), k, max_params, max_tokens, delta)


@dataclass(frozen=True)
class Decision:
    """Chosen allocations per budget, the posterior-mean (point-estimate) allocations, and their losses.

    ``table`` is for reading (one row per budget, both allocations side by side); ``allocations`` holds the
    same numbers as data, keyed by "chosen" and "point estimate", for code.

    ``uncertainty`` names what the losses account for (``LawPosterior.uncertainty``): the law posterior,
    the run noise and the model discrepancy, each with its summary or 'none'."""

    table: pd.DataFrame
    risk: Risk
    losses: dict[str, np.ndarray]
    uncertainty: dict[str, str] = field(default_factory=dict)
    # "chosen" and "point estimate": one row per budget, columns N, D, tokens_per_param, risk, loss_mean,
    # loss_median, loss_q05, loss_q95, expected_regret, regret_q90 (and prob_target with a target loss)
    allocations: dict[str, pd.DataFrame] = field(default_factory=dict)

    def __str__(self) -> str:
        sources = "\n".join(f"  {k}: {v}" for k, v in self.uncertainty.items())
        return f"{self.table.to_string()}\nuncertainty ({self.risk}):\n{sources}"


def decide(source: Any, budget: float | Sequence[float], risk: str | Risk = "mean", *,
           flops_per_param_token: float = 6.0, max_params: float | None = None, max_tokens: float | None = None,
           target_loss: float | None = None, seed: int | None = 0) -> Decision:
    """One (N, D) per budget minimising ``risk`` of the posterior predictive loss, against the point-estimate plan.

    The table has, per budget: the chosen N, D and tokens per parameter; the risk, mean, median and
    90% interval of its predictive loss; P(loss <= target_loss) when a target is given; the expected
    regret against the per-draw optimum; and the same for the point-estimate allocation. ``uncertainty``
    names the sources the predictive loss carries (law posterior, run noise, model discrepancy).
    """
    post = as_posterior(source)
    risk = Risk.parse(risk, target_loss)
    if risk.name == "prob" and target_loss is None:
        target_loss = risk.level
    check_settings(flops_per_param_token, max_params=max_params, max_tokens=max_tokens)
    budgets = check_budgets(budget)
    check_caps(budgets, flops_per_param_token, max_params, max_tokens)
    problem = _problem(post, flops_per_param_token, max_params, max_tokens, seed)
    point = {k: np.array([v]) for k, v in post.point_estimate().items()}

    def one_budget(c: float) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        n_opt = problem.optimum(c)
        best_mean = problem.best_expected(c, n_opt)
        point_n, _ = optimal_allocation(problem.law, point, np.asarray(c), flops_per_param_token=problem.k,
                                        max_params=max_params, max_tokens=max_tokens)
        point_n = float(np.ravel(point_n)[0])
        row, samples, chosen = {"budget": c}, {}, {}
        for label, n in (("chosen", problem.choose(c, risk, n_opt)), ("point estimate", point_n)):
            sample = problem.loss_at(n, c)
            regret = problem.expected(np.array([[n]]), c)[0] - best_mean
            samples[f"{label} @ {c:.3g}"] = sample
            d = c / (problem.k * n)
            values = {"N": n, "D": d, "tokens_per_param": d / n, "risk": risk.describe(float(risk(sample))),
                      "loss_mean": sample.mean(), "loss_median": np.median(sample),
                      "loss_q05": np.quantile(sample, 0.05), "loss_q95": np.quantile(sample, 0.95),
                      "expected_regret": regret.mean(), "regret_q90": np.quantile(regret, 0.9)}
            if target_loss is not None:
                values["prob_target"] = float((sample <= target_loss).mean())
            chosen[label] = {"budget": c, **values}
            row |= {f"{label} {_SHOWN.get(k, k).format(risk=risk, target=target_loss)}": v for k, v in values.items()}
        return row, samples, chosen

    rows, losses, allocations = [], {}, {}
    for row, samples, chosen in in_threads(one_budget, [(c,) for c in budgets]):  # budgets side by side
        rows.append(row)
        losses |= samples
        for label, values in chosen.items():
            allocations.setdefault(label, []).append(values)
    return Decision(pd.DataFrame(rows).set_index("budget"), risk, losses, post.uncertainty(),
                    {label: pd.DataFrame(v).set_index("budget") for label, v in allocations.items()})


# the decision table's column names (after "chosen " or "point estimate ") of each allocation's values
_SHOWN = {"tokens_per_param": "tokens/param", "risk": "{risk}", "loss_mean": "loss mean",
          "loss_median": "loss median", "loss_q05": "loss 5%", "loss_q95": "loss 95%",
          "expected_regret": "expected regret", "regret_q90": "regret 90%", "prob_target": "P(loss<={target:g})"}


def min_budget(source: Any, target_loss: float, probability: float = 0.9, *, flops_per_param_token: float = 6.0,
               max_params: float | None = None, max_tokens: float | None = None, seed: int | None = 0,
               bounds: tuple[float, float] = (1e15, 1e32)) -> dict[str, Any]:
    """The smallest budget C whose best allocation reaches ``target_loss`` with probability >= ``probability``.

    p(C) = max over N of P(L(N, C / (k N)) <= target) on one budget per decade from ``bounds[0]`` up, then
    bisection in log C inside the first decade that reaches ``probability``. Under the law alone p grows with C;
    with a model discrepancy it may fall again far beyond the runs (the discrepancy's spread returns to its
    prior there), so the first crossing is searched from below rather than assumed at the upper bound.
    """
    if not 0 < probability < 1:
        raise BayeslawError(f"probability must lie in (0, 1), got {probability}")
    post = as_posterior(source)
    problem = _problem(post, flops_per_param_token, max_params, max_tokens, seed)
    risk = Risk("prob", target_loss)

    def reach(c: float) -> tuple[float, float]:
        n = problem.choose(c, risk, problem.optimum(c))
        return (float(-risk(problem.loss_at(n, c))) if np.isfinite(n) else 0.0), n

    grid = np.linspace(np.log(bounds[0]), np.log(bounds[1]), int(np.ceil(np.log10(bounds[1] / bounds[0]))) + 1)
    reached = [reach(float(np.exp(u)))[0] for u in grid[:1]]
    if reached[0] >= probability:
        raise BayeslawError(f"loss {target_loss:g} is already reached at {bounds[0]:.0e} FLOPs")
    for u in grid[1:]:  # one budget per decade: with a discrepancy p(C) need not grow with C beyond the runs
        reached.append(reach(float(np.exp(u)))[0])
        if reached[-1] >= probability:
            break
    else:
        best = int(np.argmax(reached))
        why = "irreducible loss and its discrepancy sit" if problem.delta else "irreducible loss sits"
        raise BayeslawError(f"loss {target_loss:g} is reached with probability at most {reached[best]:.2f} < "
                            f"{probability:g} even at {bounds[1]:.0e} FLOPs (one budget per decade from "
                            f"{bounds[0]:.0e}; highest at {np.exp(grid[best]):.0e}): the posterior's {why} too close "
                            "to or above it")
    lo, hi = grid[len(reached) - 2], grid[len(reached) - 1]
    for _ in range(20):  # about 1e-6 relative in C within the decade of the first crossing
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if reach(float(np.exp(mid)))[0] >= probability else (mid, hi)
    c = float(np.exp(hi))
    p, n = reach(c)
    sources = "; ".join(f"{k}: {v}" for k, v in post.uncertainty().items())
    return {"budget": c, "N": n, "D": c / (problem.k * n), "probability": p, "target_loss": target_loss,
            "uncertainty": sources}
