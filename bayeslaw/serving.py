"""Inference-aware allocation: the model that reaches a loss at least training plus serving cost (Sardana et al.
2024, arXiv:2401.00448). Formerly ``bayeslaw.inference``, which still re-exports it.

For a target loss l and an expected inference demand of D_inf tokens, per posterior draw:

    minimise  k_train N D_train + k_inf N D_inf   subject to  L(N, D_train) = l

with k_train = 6 and k_inf = 2 FLOPs per parameter and token. For each N, D_train(N) solves
L(N, D) = l (L falls with D: bisection in log D); the cost is then minimised over log N by golden
section, above the smallest N that can reach l at all. Vectorised over draws, no per-draw loop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from bayeslaw._search import bisect_decreasing, golden_section
from bayeslaw.errors import BayeslawError
from bayeslaw.plan import broadcast_numpy, require_allocation_inputs
from bayeslaw.posterior import as_posterior

LOG_HUGE = np.log(1e60)  # stands in for D -> infinity


def inference_optimal(source: Any, target_loss: float, inference_tokens: float, *,
                      train_flops_per_param_token: float = 6.0, inference_flops_per_param_token: float = 2.0
                      ) -> xr.Dataset:
    """Per draw: N and D_train that reach ``target_loss`` at least total (training + inference) cost.

    Also returns the compute-optimal model for the same loss (D_inf ignored) and its total cost, so
    ``1 - cost / chinchilla_cost`` is the saving. Draws that cannot reach the target are NaN.
    """
    post = as_posterior(source)
    law = post.law
    require_allocation_inputs(law, "inference-aware allocation")
    if not target_loss > 0 or not inference_tokens >= 0:
        raise BayeslawError("target_loss must be > 0 and inference_tokens >= 0")
    params, _, wrap = broadcast_numpy(post.published_draws())
    k_tr, k_inf = train_flops_per_param_token, inference_flops_per_param_token

    def loss(u, v):
        return law.function(params, {"N": np.exp(u), "D": np.exp(v)}, np)

    template = np.zeros_like(params[law.published[0]])
    u_min = bisect_decreasing(lambda u: loss(u, LOG_HUGE) - target_loss, template, template + LOG_HUGE)
    reachable = loss(u_min + 1e-6, LOG_HUGE) < target_loss

    def tokens_for(u):
        return bisect_decreasing(lambda v: loss(u, v) - target_loss, template, template + LOG_HUGE)

    def total_cost(u, d_inf):
        return np.log(k_tr * np.exp(tokens_for(u)) + k_inf * d_inf) + u  # log of N (k_tr D + k_inf D_inf)

    out = {}
    for label, d_inf in (("", inference_tokens), ("chinchilla_", 0.0)):
        u = golden_section(lambda x, d=d_inf: total_cost(x, d), u_min + 1e-6, u_min + 30.0, steps=70)
        n, d = np.exp(u), np.exp(tokens_for(u))
        out |= {f"{label}N": n, f"{label}D_train": d,
                f"{label}cost": k_tr * n * d + k_inf * n * inference_tokens}
    ds = xr.Dataset({k: wrap(np.where(reachable, v, np.nan)) for k, v in out.items()})
    return ds.assign(saving=1 - ds["cost"] / ds["chinchilla_cost"])
