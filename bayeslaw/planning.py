"""Everything `bayeslaw plan` answers, as data a Python user can call: :func:`plan_budgets`.

Per budget the compute-optimal plan over the posterior draws (:func:`bayeslaw.plan.plan`); for a published fit
the same plan at its published estimates; with ``risk`` the allocation that minimises it against the point-estimate
plan (:func:`bayeslaw.risk.decide`); with ``target_loss`` the smallest budget that reaches it with ``probability``
(:func:`bayeslaw.risk.min_budget`), or with ``inference_tokens`` too the allocation of least training + serving
cost (:func:`bayeslaw.serving.inference_optimal`, Sardana et al. 2024), as posterior medians.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayeslaw._search import check_budgets

BEYOND = "outside the fitted runs"  # the words of a plan note saying that budgets extrapolate


@dataclass(frozen=True)
class BudgetPlan:
    """The answers of :func:`plan_budgets`; a part not asked for is None.

    ``plan``: per budget, median and central intervals of N_opt, D_opt, loss, tokens per parameter (``Plan.summary``);
    ``notes``: how the plan was made (convention, method, extrapolation, uncertainty); ``beyond``: the notes that
    say the budgets extrapolate; ``at_estimates``: a published fit's plan at its estimates (medians);
    ``decision``: :class:`bayeslaw.risk.Decision`; ``smallest_budget``: :func:`bayeslaw.risk.min_budget`'s answer;
    ``inference``: medians of :func:`bayeslaw.serving.inference_optimal`'s draws; ``model`` and ``uncertainty``:
    a catalogue entry's name with its citation, and its uncertainty label."""

    plan: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    beyond: list[str] = field(default_factory=list)
    at_estimates: pd.DataFrame | None = None
    decision: Any = None
    smallest_budget: dict[str, Any] | None = None
    inference: dict[str, float] | None = None
    model: str | None = None
    uncertainty: str | None = None


def plan_budgets(source: Any, budgets: float | Sequence[float], *, risk: str | None = None,
                 max_params: float | None = None, unique_tokens: float | None = None,
                 inference_tokens: float | None = None, target_loss: float | None = None, probability: float = 0.9,
                 flops_per_param_token: float = 6.0, levels: Sequence[float] = (0.9,),
                 seed: int | None = 0) -> BudgetPlan:
    """Plan ``budgets`` (FLOPs) under ``source``: a fit, a ``LawPosterior`` or a catalogue ``Entry`` (its posterior
    drawn with ``seed``). ``unique_tokens`` is the stock a data-constrained law repeats and a cap on D for other
    laws; ``max_params`` caps N. ``inference_tokens`` needs ``target_loss``."""
    from bayeslaw.catalogue.api import Entry
    from bayeslaw.errors import BayeslawError
    from bayeslaw.plan import plan
    from bayeslaw.risk import decide, min_budget

    budgets = check_budgets(budgets)
    if inference_tokens is not None and target_loss is None:
        raise BayeslawError("inference_tokens needs target_loss (the loss the served model must reach)")
    entry = source if isinstance(source, Entry) else None
    result = entry.posterior(seed=seed) if entry is not None else source
    k = flops_per_param_token
    caps = {"max_params": max_params, "max_tokens": unique_tokens}
    stock = {"max_params": max_params, "unique_tokens": unique_tokens}  # data-constrained laws repeat it
    made = plan(result, budgets, flops_per_param_token=k, **stock)
    parts: dict[str, Any] = {"plan": made.summary(levels), "notes": list(made.notes),
                             "beyond": [note for note in made.notes if BEYOND in note]}
    if entry is not None:
        parts["model"] = f"{entry.name} (law {entry.law.name}): {entry.citation}"
        parts["uncertainty"] = entry.uncertainty.label if entry.uncertainty else ""
        if entry.uncertainty is not None and entry.uncertainty.kind != "none":
            from bayeslaw.posterior import from_constants

            point = plan(from_constants(entry.law, entry.constants), budgets, flops_per_param_token=k, **stock)
            parts["at_estimates"] = point.summary((0.5,)).filter(like="median").rename(
                columns=lambda c: c.replace(" median", ""))
    if risk is not None:
        parts["decision"] = decide(result, budgets, risk, flops_per_param_token=k, target_loss=target_loss,
                                   seed=seed, **caps)
    if target_loss is not None and inference_tokens is None:
        parts["smallest_budget"] = min_budget(result, target_loss, probability, flops_per_param_token=k, seed=seed,
                                              **caps)
    if inference_tokens is not None:
        from bayeslaw.serving import inference_optimal

        draws = inference_optimal(result, target_loss, inference_tokens)
        parts["inference"] = {f"{name} median": float(np.nanmedian(values.values.ravel()))
                              for name, values in draws.items()}
    return BudgetPlan(**parts)
