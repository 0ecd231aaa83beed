"""Mixture-of-experts laws: routed LMs over the number of experts, fine-grained MoE over granularity.

    clark      log10 L = a log10 N + b log10 Ê + c log10 N log10 Ê + d,
               1/Ê = 1 / (E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max   (so Ê(1) = E_start)
               Clark et al. 2022, arXiv:2202.01169 (base-10 logs)
    krajewski  L = c + (g / G^gamma + a) / N^alpha + b / D^beta
               Krajewski et al. 2024, arXiv:2402.07871 (G = d_ff / d_expert)

``clark`` is linear in log10 N and log10 Ê. It is sampled as the log loss at the pivots N0, E0,
-dlog L/dlog N there, and the expert slope and interaction measured in log E (the count the runs vary)
rather than in log Ê: (b + c log10 N0) and c times dlog Ê/dlog E at E0. The data measure all four
almost independently of where E_start and E_max put Ê (in log Ê they trade off with E_max).
``krajewski``'s parameters are sparse.py's loss split (L0, N share, data share, floor slope) at G = 1,
the natural origin of granularity, plus the share of the N-coefficient that finer experts remove; NUTS samples the loss
at the pivots N0, D0, G0 split into its parts and the log-log slopes there (``KRAJEWSKI_COORDINATES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from bayeslaw.laws.base import EXPONENT, Coordinates, Inputs, Law, Param, Params, Preset
from bayeslaw.laws.coords import (
    coefficient_at_pivot,
    coefficient_from_pivot,
    exponent_from_slope,
    join_three,
    join_two,
    loss_at_pivot,
    share,
    slope_from_exponent,
    split_coordinates,
    split_in_three,
    split_in_two,
    split_loss,
    split_params,
    term_at_pivot,
)
from bayeslaw.priors import Prior

CLARK = "Clark et al. 2022, arXiv:2202.01169"
KRAJEWSKI = "Krajewski et al. 2024, arXiv:2402.07871"
LN10 = float(np.log(10.0))


# --- Clark et al. 2022 ----------------------------------------------------------------------------

def _shifted_experts(experts: Any, e_start: Any, e_max: Any) -> Any:
    """E - 1 + (1/E_start - 1/E_max)^-1, the count Ê saturates from."""
    return experts - 1.0 + 1.0 / (1.0 / e_start - 1.0 / e_max)


def effective_experts(experts: Any, e_start: Any, e_max: Any) -> Any:
    """Clark's saturating Ê: E_start at E = 1, about E - 1 + E_start while E << E_max, E_max as E -> inf."""
    return 1.0 / (1.0 / _shifted_experts(experts, e_start, e_max) + 1.0 / e_max)


def clark_function(p: Params, inputs: Inputs, xp: ModuleType) -> Any:
    x = xp.log10(inputs["N"])
    y = xp.log10(effective_experts(inputs["experts"], p["E_start"], p["E_max"]))
    return xp.exp(LN10 * (p["a"] * x + p["b"] * y + p["c"] * x * y + p["d"]))


def experts_elasticity(experts: Any, e_start: Any, e_max: Any) -> Any:
    """dlog Ê / dlog E = E Ê / (E - 1 + offset)^2: how much of a change in log E reaches log Ê."""
    return experts * effective_experts(experts, e_start, e_max) / _shifted_experts(experts, e_start, e_max) ** 2


def _clark_to_published(s: Params, pivots: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    e_start = xp.exp(s["log_E_start"])
    e_max = e_start + xp.exp(s["log_E_max_excess"])
    x0 = xp.log10(pivots["N"])
    y0 = xp.log10(effective_experts(pivots["experts"], e_start, e_max))
    elasticity = experts_elasticity(pivots["experts"], e_start, e_max)
    slope, c = s["expert_slope_at_pivot"] / elasticity, s["interaction_at_pivot"] / elasticity  # in log Ê
    a = -s["alpha_at_pivot"] - c * y0
    return {
        "a": a,
        "b": slope - c * x0,
        "c": c,
        "d": s["log_loss_at_pivot"] / LN10 - a * x0 - slope * y0,
        "E_start": e_start,
        "E_max": e_max,
    }


def _clark_from_published(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    x0 = float(np.log10(pivots["N"]))
    y0 = float(np.log10(effective_experts(pivots["experts"], p["E_start"], p["E_max"])))
    slope = p["b"] + p["c"] * x0
    elasticity = float(experts_elasticity(pivots["experts"], p["E_start"], p["E_max"]))
    return {
        "log_loss_at_pivot": LN10 * (p["d"] + p["a"] * x0 + slope * y0),
        "alpha_at_pivot": -(p["a"] + p["c"] * y0),
        "expert_slope_at_pivot": slope * elasticity,
        "interaction_at_pivot": p["c"] * elasticity,
        "log_E_start": float(np.log(p["E_start"])),
        "log_E_max_excess": float(np.log(p["E_max"] - p["E_start"])),
    }


def _clark_preset(a: float, b: float, c: float, d: float, e_start: float, e_max: float, note: str) -> Preset:
    return Preset({"a": a, "b": b, "c": c, "d": d, "E_start": e_start, "E_max": e_max},
                  f"{CLARK}, Table (routing method {note}); secondary source only (laws.md 7b)")


CLARK_LAW = Law(
    name="clark",
    title="Clark et al. 2022 unified law for routed language models L(N, E)",
    formula="log10 L = a log10 N + b log10 Ê + c log10 N log10 Ê + d, "
            "1/Ê = 1/(E - 1 + (1/E_start - 1/E_max)^-1) + 1/E_max",
    inputs=("N", "experts"),
    params={
        "log_loss_at_pivot": loss_at_pivot("the loss at the pivots N0, E0 (the data's geometric means)"),
        "alpha_at_pivot": Param(Prior("LogNormal", mu=float(np.log(0.1)), sigma=0.7), "positive",
                                "-(a + c log10 Ê(E0)): -dlog L / dlog N at the pivot E0 (no irreducible "
                                "term, so small)"),
        "expert_slope_at_pivot": Param(Prior("Normal", mu=0.0, sigma=0.1), "real",
                                       "dlog L / dlog E at the pivots N0, E0 (the expert count the runs "
                                       "vary, not Ê); negative where experts help, either sign allowed"),
        "interaction_at_pivot": Param(Prior("Normal", mu=0.0, sigma=0.05), "real",
                                      "c dlog Ê / dlog E at E0: d2 log10 L / dlog10 N dlog10 E at the pivots "
                                      "(positive: routing gains shrink with N)"),
        "log_E_start": Param(Prior("Normal", mu=float(np.log(2.0)), sigma=1.0), "real",
                             "log E_start, the effective expert count of the dense model", log_of="E_start"),
        "log_E_max_excess": Param(Prior("Normal", mu=float(np.log(300.0)), sigma=1.5), "real",
                                  "log(E_max - E_start): where routing gains saturate (E_max > E_start by "
                                  "construction)", log_of="E_max - E_start"),
    },
    published=("a", "b", "c", "d", "E_start", "E_max"),
    function=clark_function,
    to_published=_clark_to_published,
    from_published=_clark_from_published,
    conventions={
        "N": "parameters of the dense base model (about the parameters active per token)",
        "experts": "number of experts E per routed layer (E = 1: the dense model)",
        "loss": "validation cross-entropy, nats/token; the law is written with base-10 logs",
    },
    source=f"{CLARK}, the unified law with the saturating transform of Ê",
    presets={
        "clark2022-s-base": _clark_preset(-0.082, -0.108, 0.009, 1.104, 1.847, 314.5, "S-BASE"),
        "clark2022-rl-r": _clark_preset(-0.083, -0.126, 0.012, 1.111, 1.880, 470.0, "RL-R"),
        "clark2022-hash": _clark_preset(-0.087, -0.136, 0.012, 1.157, 4.175, 477.7,
                                        "HASH; d = 1.157, one other source has 1.102"),
    },
    input_ranges={"N": (1e7, 1e11), "experts": (1.0, 512.0)},
    # where E_max falls near the runs' expert counts, Ê saturates inside the data and the slopes in log Ê
    # steepen: a narrow neck. At 0.9 and 0.95, 1-22 divergences on 3 of 8 ladder seeds; at 0.975 none on
    # 16 ladders of 3, 4 and 6 sizes (ARCHITECTURE.md)
    target_accept=0.975,
)


# --- Krajewski et al. 2024 ------------------------------------------------------------------------

def krajewski_function(p: Params, inputs: Inputs, xp: ModuleType) -> Any:
    coefficient = p["g"] * inputs["granularity"] ** (-p["gamma"]) + p["a"]
    return p["c"] + coefficient * inputs["N"] ** (-p["alpha"]) + p["b"] * inputs["D"] ** (-p["beta"])


def _krajewski_to_published(s: Params, pivots: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    n_term, data_term, irreducible, beta = split_loss(s, xp)
    total = coefficient_at_pivot(n_term, s["alpha"], pivots["N"], xp)
    return {
        "a": (1.0 - s["granular_share"]) * total,
        "alpha": s["alpha"],
        "b": coefficient_at_pivot(data_term, beta, pivots["D"], xp),
        "beta": beta,
        "g": s["granular_share"] * total,
        "gamma": s["gamma"],
        "c": irreducible,
    }


def _krajewski_from_published(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    total = p["a"] + p["g"]
    n_term = term_at_pivot(total, p["alpha"], pivots["N"])
    data_term = term_at_pivot(p["b"], p["beta"], pivots["D"])
    return split_coordinates(n_term, data_term, p["c"], p["beta"]) | {
        "granular_share": p["g"] / total, "gamma": p["gamma"], "alpha": p["alpha"]}


# Sampling coordinates: the loss L0 at the pivots N0, D0 and G0 (the data's geometric mean granularity, where
# the runs are, rather than G = 1) split into c, the N term (a + g G0^-gamma) N0^-alpha and the D term
# b D0^-beta (``split_in_three``), the N term split into its a and g parts, and the exponents replaced by the
# log-log slopes they give L at the pivots: alpha x N term / L0, beta x D term / L0 and gamma x g part / L0.
# The runs pin L0 and the three slopes; what is left (how L0 splits) is the E-like ridge, now near-straight.
# Every step is a split of a log total, a shear or its inverse, so |det J| = 1.

_KRAJEWSKI_NAMES = ("log_loss_at_pivots", "logit_power_share", "logit_N_share_of_power", "logit_granular_share",
                    "log_slope_N", "log_slope_D", "log_slope_G")


def _krajewski_from_coordinates(u: Params, pivots: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    log_total = u["log_loss_at_pivots"]
    log_c, log_n, log_d = split_in_three(log_total, u["logit_power_share"], u["logit_N_share_of_power"], xp)
    log_g, log_a = split_in_two(log_n, u["logit_granular_share"], xp)
    alpha = exponent_from_slope(u["log_slope_N"], log_total, log_n, xp)
    beta = exponent_from_slope(u["log_slope_D"], log_total, log_d, xp)
    gamma = exponent_from_slope(u["log_slope_G"], log_total, log_g, xp)
    g1 = coefficient_from_pivot(log_g, gamma, pivots["granularity"], xp)  # the g part at G = 1
    a, c, d = xp.exp(log_a), xp.exp(log_c), xp.exp(log_d)
    n1 = a + g1
    loss = n1 + d + c
    data_share = d / (d + c)
    return {"log_loss_at_pivot": xp.log(loss), "N_share": n1 / loss, "data_share": data_share,
            "floor_slope": beta * data_share, "granular_share": g1 / n1, "alpha": alpha, "gamma": gamma}


def _krajewski_to_coordinates(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    loss = float(np.exp(p["log_loss_at_pivot"]))
    n1 = p["N_share"] * loss
    d = p["data_share"] * (loss - n1)
    c = loss - n1 - d
    g = term_at_pivot(p["granular_share"] * n1, p["gamma"], pivots["granularity"])
    a = (1.0 - p["granular_share"]) * n1
    log_total, logit_power, logit_n = join_three(c, a + g, d)
    log_n, logit_g = join_two(g, a)
    return {"log_loss_at_pivots": log_total, "logit_power_share": logit_power, "logit_N_share_of_power": logit_n,
            "logit_granular_share": logit_g, "log_slope_N": slope_from_exponent(p["alpha"], log_total, log_n),
            "log_slope_D": slope_from_exponent(p["floor_slope"] / p["data_share"], log_total, float(np.log(d))),
            "log_slope_G": slope_from_exponent(p["gamma"], log_total, float(np.log(g)))}


KRAJEWSKI_COORDINATES = Coordinates(
    names=_KRAJEWSKI_NAMES,
    to_params=_krajewski_from_coordinates,
    from_params=_krajewski_to_coordinates,
    initial=lambda pivots: {"log_loss_at_pivots": float(np.log(pivots["loss"])), "logit_power_share": 0.0,
                            "logit_N_share_of_power": 0.0, "logit_granular_share": 0.0,
                            "log_slope_N": float(np.log(0.05)), "log_slope_D": float(np.log(0.05)),
                            "log_slope_G": float(np.log(0.02))},
)

KRAJEWSKI_LAW = Law(
    name="krajewski",
    title="Krajewski et al. 2024 fine-grained MoE law L(N, D, G)",
    formula="L = c + (g / G^gamma + a) / N^alpha + b / D^beta",
    inputs=("N", "D", "granularity"),
    params={
        **split_params("(a + g) N0^-alpha", "b D0^-beta", "c", "beta", where="G = 1"),
        "granular_share": share("g / (a + g): the part of the N-coefficient at G = 1 that finer experts remove"),
        "alpha": EXPONENT,
        "gamma": EXPONENT,
    },
    published=("a", "alpha", "b", "beta", "g", "gamma", "c"),
    function=krajewski_function,
    to_published=_krajewski_to_published,
    from_published=_krajewski_from_published,
    conventions={
        "N": "model parameters as Krajewski et al. count them (active vs. total not verified here; "
             "laws.md 7c)",
        "D": "training tokens",
        "granularity": "G = d_ff / d_expert (G = 1: experts as wide as the dense feed-forward layer)",
        "loss": "validation cross-entropy, nats/token",
    },
    source=f"{KRAJEWSKI}, the joint law in N, D and G",
    presets={
        "krajewski2024": Preset({"a": 18.1, "alpha": 0.115, "b": 30.8, "beta": 0.147, "g": 2.1, "gamma": 0.58,
                                 "c": 0.47},
                                f"{KRAJEWSKI}, fitted constants (secondary sources that agree; laws.md 7c)"),
    },
    input_ranges={"N": (1e7, 1e11), "D": (1e9, 1e13), "granularity": (1.0, 64.0)},
    coordinates=KRAJEWSKI_COORDINATES,
    # seven parameters on a few dozen runs leave few residual degrees of freedom, so one large residual opens
    # the Student-t funnel between sigma and nu: 1-6 divergences per 4,000 draws at 0.9 on 2 of 4 ladder seeds
    target_accept=0.95,
)

MOE_LAWS: list[Law] = [CLARK_LAW, KRAJEWSKI_LAW]
