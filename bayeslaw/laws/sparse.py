"""Laws in sparsity S (fraction of zero weights), model size N and training tokens D.

    frantar  L = (a_S (1 - S)^b_S + c_S) (1/N)^b_N + (a_D / D)^b_D + c
             Frantar et al. 2023, arXiv:2309.08520 (N: non-zero non-embedding parameters)
    hossain  L = e (1 - S)^gamma + (a (1 - S)^alpha + c S) (1/N)^alpha + b / D^beta
             Hossain et al. 2025, arXiv:2508.06617, eq 7 (Chinchilla at S = 0)
    abnar    L = e + a / N^alpha + b / D^beta + c / (1 - S)^lambda + d / ((1 - S)^delta N^gamma)
             Abnar et al. 2025, arXiv:2501.12370, in the closed form Hossain et al. fit

S has no pivot (it can be 0), so terms are taken at S = 0 and the data's geometric means N0, D0.
``frantar`` and ``hossain`` (and ``krajewski`` in moe.py) have as parameters the dense loss L0 at the
pivots (``coords.split_params``),
the N term's share of it, the data term's share of the rest (the "floor" an unlimited model reaches
after D0 tokens) and floor_slope = data exponent x data share. The data pin L0, N_share x exponent
and floor_slope, so the directions they leave open (an exponent against the irreducible loss, as
in power.py) are near-straight lines, even over a 4x range of D such as Frantar's T5 runs.
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
    free_name,
    from_free,
    join_three,
    log_term,
    loss_and_share,
    pivot_from_coefficient,
    share,
    slope_from_exponent,
    split_by_share,
    split_coordinates,
    split_in_three,
    split_loss,
    split_params,
    term_at_pivot,
    to_free,
)
from bayeslaw.priors import Prior

FRANTAR = "Frantar et al. 2023, arXiv:2309.08520"
HOSSAIN = "Hossain et al. 2025, arXiv:2508.06617"
ABNAR = "Abnar et al. 2025, arXiv:2501.12370"

CONVENTIONS = {
    "S": "sparsity: fraction of zero weights in the sparsified layers, in [0, 1)",
    "N": "non-zero (active) non-embedding parameters",
    "D": "training tokens",
    "loss": "validation cross-entropy, nats/token",
}


def _signed(doc: str, sigma: float) -> Param:
    return Param(Prior("Normal", mu=0.0, sigma=sigma), "real",
                 f"{doc}; either sign")


# --- Frantar et al. 2023 -------------------------------------------------------------------------

# The T5/C4 fit in jaxpruner's projects/bigsparse notebook is L = (a (1 - S)^b + c) N'^-d + e D'^-f + g
# with N' = N / 1e6 and D' = steps / 1e5, so a_S = a 1e6^d, c_S = c 1e6^d and
# a_D = 1e5 e^(1/f) steps = 1e5 x 65,536 e^(1/f) tokens.
T5_RAW = (0.56778512, 0.72161276, 1.52265016, 0.24513173, 0.63361517, 0.20270772, 0.65074219)
T5_TOKENS_PER_STEP = 65536


def frantar_from_raw(raw: tuple[float, ...], n_unit: float, d_unit: float) -> dict[str, float]:
    """Published constants from the notebook's coefficients on N / n_unit and D / d_unit."""
    a, b, c, d, e, f, g = raw
    return {"a_S": a * n_unit**d, "b_S": b, "c_S": c * n_unit**d, "b_N": d,
            "a_D": d_unit * e ** (1.0 / f), "b_D": f, "c": g}


def frantar_function(p: Params, inputs: Inputs, xp: ModuleType) -> Any:
    coefficient = p["a_S"] * (1.0 - inputs["S"]) ** p["b_S"] + p["c_S"]
    return coefficient * inputs["N"] ** (-p["b_N"]) + (p["a_D"] / inputs["D"]) ** p["b_D"] + p["c"]


def _frantar_to_published(s: Params, pivots: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    n_term, data_term, irreducible, b_d = split_loss(s, xp)
    total = coefficient_at_pivot(n_term, s["b_N"], pivots["N"], xp)
    return {
        "a_S": s["sparse_share"] * total,
        "b_S": s["b_S"],
        "c_S": (1.0 - s["sparse_share"]) * total,
        "b_N": s["b_N"],
        "a_D": pivots["D"] * xp.exp(xp.log(data_term) / b_d),
        "b_D": b_d,
        "c": irreducible,
    }


def _frantar_from_published(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    total = p["a_S"] + p["c_S"]
    n_term = term_at_pivot(total, p["b_N"], pivots["N"])
    data_term = (p["a_D"] / pivots["D"]) ** p["b_D"]
    return split_coordinates(n_term, data_term, p["c"], p["b_D"]) | {
        "sparse_share": p["a_S"] / total, "b_S": p["b_S"], "b_N": p["b_N"]}


FRANTAR_LAW = Law(
    name="frantar",
    title="Frantar et al. 2023 sparsity law L(S, N, D)",
    formula="L = (a_S (1 - S)^b_S + c_S) (1/N)^b_N + (a_D / D)^b_D + c",
    inputs=("S", "N", "D"),
    params={
        **split_params("(a_S + c_S) N0^-b_N", "(a_D / D0)^b_D", "c", "b_D"),
        "sparse_share": share("a_S / (a_S + c_S): the part of the N-coefficient that shrinks as (1 - S)^b_S"),
        "b_S": Param(Prior("LogNormal", mu=float(np.log(0.5)), sigma=0.8), "positive",
                     "sparsity exponent"),
        "b_N": EXPONENT,
    },
    published=("a_S", "b_S", "c_S", "b_N", "a_D", "b_D", "c"),
    function=frantar_function,
    to_published=_frantar_to_published,
    from_published=_frantar_from_published,
    conventions=CONVENTIONS | {"D": "training tokens (T5: 65,536 tokens per step)"},
    source=f"{FRANTAR}; fit code and data: google-research/jaxpruner, projects/bigsparse",
    presets={
        "frantar2023-t5": Preset(
            frantar_from_raw(T5_RAW, 1e6, 1e5 * T5_TOKENS_PER_STEP),
            f"{FRANTAR}, T5/C4: the notebook's raw coefficients converted exactly to N and tokens "
            "(65,536 tokens/step); rounds to the paper's 16.8, 0.722, 45.0, 0.245, 6.9e8, 0.203, 0.651"),
    },
    input_ranges={"S": (0.0, 0.9), "N": (1e6, 1e10), "D": (1e9, 1e13)},
)


# --- Hossain et al. 2025, eq 7 ------------------------------------------------------------------

def hossain_function(p: Params, inputs: Inputs, xp: ModuleType) -> Any:
    dense = 1.0 - inputs["S"]
    coefficient = p["a"] * dense ** p["alpha"] + p["c"] * inputs["S"]
    data_term = p["b"] * inputs["D"] ** (-p["beta"])
    return p["e"] * dense ** p["gamma"] + coefficient * inputs["N"] ** (-p["alpha"]) + data_term


def _hossain_to_published(s: Params, pivots: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    n_term, data_term, irreducible, beta = split_loss(s, xp)
    a = coefficient_at_pivot(n_term, s["alpha"], pivots["N"], xp)
    return {
        "e": irreducible,
        "a": a,
        "b": coefficient_at_pivot(data_term, beta, pivots["D"], xp),
        "c": s["sparse_share"] / (1.0 - s["sparse_share"]) * a,
        "alpha": s["alpha"],
        "beta": beta,
        "gamma": s["gamma"],
    }


def _hossain_from_published(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    n_term = term_at_pivot(p["a"], p["alpha"], pivots["N"])
    data_term = term_at_pivot(p["b"], p["beta"], pivots["D"])
    return split_coordinates(n_term, data_term, p["e"], p["beta"]) | {
        "sparse_share": p["c"] / (p["a"] + p["c"]), "alpha": p["alpha"], "gamma": p["gamma"]}


HOSSAIN_LAW = Law(
    name="hossain",
    title="Hossain et al. 2025 generalised dense/sparse law L(S, N, D), eq 7",
    formula="L = e (1 - S)^gamma + (a (1 - S)^alpha + c S) (1/N)^alpha + b / D^beta",
    inputs=("S", "N", "D"),
    params={
        **split_params("a N0^-alpha", "b D0^-beta", "e", "beta"),
        "sparse_share": share("c / (a + c): the N-coefficient at S -> 1 (c) relative to a + c"),
        "alpha": EXPONENT,
        "gamma": _signed("exponent of (1 - S) on the irreducible term", 0.25),
    },
    published=("e", "a", "b", "c", "alpha", "beta", "gamma"),
    function=hossain_function,
    to_published=_hossain_to_published,
    from_published=_hossain_from_published,
    conventions=CONVENTIONS | {"N": "non-zero parameters (as in Frantar et al.); the dense constants are "
                                    "Chinchilla's, whose N counts all parameters"},
    source=f"{HOSSAIN}, eq 7; constants from the authors' code (ytopt-team/ytopt, ytopt-libe/hpo4llm/dlp.py)",
    presets={
        "hossain2025": Preset({"e": 1.69, "a": 406.4, "b": 410.7, "c": 93.45, "alpha": 0.34, "beta": 0.28,
                               "gamma": 0.001},
                              f"{HOSSAIN}, eq 7 with the authors' dlp.py constants (Chinchilla's e, a, b, "
                              "alpha, beta; fitted c and gamma)"),
    },
    input_ranges={"S": (0.0, 0.9), "N": (1e7, 1e11), "D": (1e9, 1e13)},
)


# --- Abnar et al. 2025 in Hossain et al.'s closed form --------------------------------------------
#
# Coordinates, at S = 0 and the pivots N0, D0:
#   a term   log(a N0^-alpha) and alpha - gamma > 0. Without sparsity the two N terms are exchangeable;
#            this labels the faster-decaying one a, which removes the label-switching second mode.
#   slow     log(e + c + d N0^-gamma) and the joint term's share of it: power.py's straightening of the
#            ridge between a small exponent (gamma) and the constant the term decays towards.
#   S term   c / (e + c) and lambda, with lambda's prior Normal(0, 0.5) like delta's. (A prior on the slope
#            lambda c instead let lambda = slope / c grow without bound as c / (e + c) went to 0, which a few
#            sparsities cannot rule out: NUTS diverged there.)

def abnar_function(p: Params, inputs: Inputs, xp: ModuleType) -> Any:
    dense = 1.0 - inputs["S"]
    return (p["e"] + p["a"] * inputs["N"] ** (-p["alpha"]) + p["b"] * inputs["D"] ** (-p["beta"])
            + p["c"] * dense ** (-p["lambda"]) + p["d"] * dense ** (-p["delta"]) * inputs["N"] ** (-p["gamma"]))


def _abnar_to_published(s: Params, pivots: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    alpha = s["gamma"] + s["alpha_excess"]
    joint, irreducible = split_by_share(xp.exp(s["log_slow_at_pivot"]), s["joint_share"])
    c, e = split_by_share(irreducible, s["S_term_share"])
    return {
        "e": e,
        "a": coefficient_from_pivot(s["log_N_term_at_pivot"], alpha, pivots["N"], xp),
        "b": coefficient_from_pivot(s["log_D_term_at_pivot"], s["beta"], pivots["D"], xp),
        "c": c,
        "d": coefficient_at_pivot(joint, s["gamma"], pivots["N"], xp),
        "alpha": alpha,
        "beta": s["beta"],
        "lambda": s["lambda"],
        "delta": s["delta"],
        "gamma": s["gamma"],
    }


def _abnar_from_published(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    log_slow, joint_share = loss_and_share(term_at_pivot(p["d"], p["gamma"], pivots["N"]), p["e"] + p["c"])
    return {
        "log_N_term_at_pivot": pivot_from_coefficient(p["a"], p["alpha"], pivots["N"]),
        "alpha_excess": p["alpha"] - p["gamma"],
        "log_D_term_at_pivot": pivot_from_coefficient(p["b"], p["beta"], pivots["D"]),
        "beta": p["beta"],
        "log_slow_at_pivot": log_slow,
        "joint_share": joint_share,
        "gamma": p["gamma"],
        "delta": p["delta"],
        "S_term_share": loss_and_share(p["c"], p["e"])[1],
        "lambda": p["lambda"],
    }


_ABNAR_KEPT = {"alpha_excess": "positive", "joint_share": "unit", "gamma": "positive", "delta": "real",
               "S_term_share": "unit", "lambda": "real"}


def _abnar_from_coordinates(u: Params, pivots: Mapping[str, Any], xp: ModuleType) -> dict[str, Any]:
    """The dense loss at the pivots L0 = a N0^-alpha + b D0^-beta + slow, split in three (``split_in_three``:
    slow = (1 - r) L0, the N term q r L0, the D term (1 - q) r L0), and beta from the D term's log-log slope
    g_D = beta b D0^-beta / L0; the runs pin L0 and g_D on any ladder, so the E-like ridge between the
    slow part and the two power terms becomes nearly straight."""
    log_slow, log_n, log_d = split_in_three(u["log_dense_loss_at_pivot"], u["logit_power_share"],
                                            u["logit_N_share"], xp)
    kept = {k: from_free(u[free_name(k, support)], support, xp) for k, support in _ABNAR_KEPT.items()}
    return {"log_N_term_at_pivot": log_n, "log_D_term_at_pivot": log_d, "log_slow_at_pivot": log_slow,
            "beta": exponent_from_slope(u["log_slope_D"], u["log_dense_loss_at_pivot"], log_d, xp), **kept}


def _abnar_to_coordinates(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    log_total, logit_r, logit_q = join_three(*np.exp([p["log_slow_at_pivot"], p["log_N_term_at_pivot"],
                                                      p["log_D_term_at_pivot"]]))
    kept = {free_name(k, support): float(to_free(p[k], support)) for k, support in _ABNAR_KEPT.items()}
    return {"log_dense_loss_at_pivot": log_total, "logit_power_share": logit_r, "logit_N_share": logit_q,
            "log_slope_D": slope_from_exponent(p["beta"], log_total, p["log_D_term_at_pivot"]), **kept}


ABNAR_COORDINATES = Coordinates(
    names=("log_dense_loss_at_pivot", "logit_power_share", "logit_N_share", "log_slope_D",
           *(free_name(k, support) for k, support in _ABNAR_KEPT.items())),
    to_params=_abnar_from_coordinates,
    from_params=_abnar_to_coordinates,
    initial=lambda pivots: {"log_dense_loss_at_pivot": float(np.log(pivots["loss"])), "logit_power_share": 0.0,
                            "logit_N_share": 0.0, "log_slope_D": float(np.log(0.05)),
                            "log_alpha_excess": float(np.log(0.3)), "logit_joint_share": 0.0,
                            "log_gamma": float(np.log(0.3)), "delta": 0.0, "logit_S_term_share": 0.0, "lambda": 0.0},
)

ABNAR_LAW = Law(
    name="abnar",
    title="Abnar et al. 2025 MoE-sparsity law L(S, N, D) in Hossain et al.'s closed form",
    formula="L = e + a / N^alpha + b / D^beta + c / (1 - S)^lambda + d / ((1 - S)^delta N^gamma)",
    inputs=("S", "N", "D"),
    params={
        "log_N_term_at_pivot": Param(Prior("Normal", mu=float(np.log(0.5)), sigma=1.5), "real",
                                     "log of the faster-decaying N term a N0^-alpha at the pivot N0"),
        "alpha_excess": Param(EXPONENT.prior, "positive",
                              "alpha - gamma > 0 (a is the faster N term)"),
        "log_D_term_at_pivot": log_term("D"),
        "beta": EXPONENT,
        "log_slow_at_pivot": Param(Prior("Normal", mu=0.5, sigma=1.0), "real",
                                   "log(e + c + d N0^-gamma), the dense loss at N0 without the a and D terms",
                                   log_of="e + c + d N0^-gamma in nats"),
        "joint_share": share("d N0^-gamma / (e + c + d N0^-gamma): the joint term's share of that"),
        "gamma": EXPONENT,
        "delta": _signed("exponent of 1 / (1 - S) on the joint term", 0.5),
        "S_term_share": share("c / (e + c): the sparsity term's share of the dense irreducible loss"),
        "lambda": _signed("exponent of 1 / (1 - S) on the sparsity term", 0.5),
    },
    published=("e", "a", "b", "c", "d", "alpha", "beta", "lambda", "delta", "gamma"),
    function=abnar_function,
    to_published=_abnar_to_published,
    from_published=_abnar_from_published,
    conventions=CONVENTIONS | {"S": "MoE sparsity (E - K) / E with K of E experts active, or weight sparsity",
                               "N": "active parameters"},
    source=f"{ABNAR}, closed form as fitted by {HOSSAIN} (ytopt-team/ytopt, ytopt-libe/hpo4llm/dlp.py)",
    presets={
        "abnar2025": Preset({"e": 0.94, "a": 16612.50, "b": 5455.67, "c": 0.4598, "d": 17.26, "alpha": 0.5962,
                             "beta": 0.3954, "lambda": -0.1666, "delta": 0.1603, "gamma": 0.1595},
                            f"{HOSSAIN}, constants for the Abnar form in the authors' dlp.py"),
    },
    # two N terms and two sparsity exponents: a wide N range and MoE-like sparsity up to 0.98 separate them
    input_ranges={"S": (0.0, 0.98), "N": (1e6, 1e12), "D": (1e8, 1e13)},
    coordinates=ABNAR_COORDINATES,
    # where c is small its exponent lambda is free under its prior: a funnel whose neck 0.9 crosses with a few
    # divergences (2 per 2,000 draws in the recovery test)
    target_accept=0.95,
    # the same neck leaves bulk ESS about 290 of 4,000 draws on a 4-size ladder (1 of 2 seeds converge);
    # chains twice as long: 4 of 4 (ARCHITECTURE.md)
    thin=2,
)

SPARSE_LAWS: list[Law] = [FRANTAR_LAW, HOSSAIN_LAW, ABNAR_LAW]
