"""Laws in sparsity S (fraction of zero weights), model size N and training tokens D.

    frantar  L = (a_S (1 - S)^b_S + c_S) (1/N)^b_N + (a_D / D)^b_D + c
             Frantar et al. 2023, arXiv:2309.08520 (N: non-zero non-embedding parameters)
    hossain  L = e (1 - S)^gamma + (a (1 - S)^alpha + c S) (1/N)^alpha + b / D^beta
             Hossain et al. 2025, arXiv:2508.06617, eq 7 (Chinchilla at S = 0)
    abnar    L = e + a / N^alpha + b / D^beta + c / (1 - S)^lambda + d / ((1 - S)^delta N^gamma)
             Abnar et al. 2025, arXiv:2501.12370, in the closed form Hossain et al. fit

S has no pivot (it can be 0), so terms are taken at S = 0 and the data's geometric means N0, D0.
``frantar`` and ``hossain`` (and ``krajewski`` in moe.py) sample the dense loss L0 at the pivots,
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

from bayeslaw.laws.base import (
    EXPONENT,
    Coordinates,
    Inputs,
    Law,
    Param,
    Params,
    Preset,
    coefficient_from_pivot,
    free_name,
    from_free,
    join_three,
    log_term,
    loss_at_pivot,
    pivot_from_coefficient,
    share,
    split_in_three,
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
                 f"{doc}; either sign, Normal(0, {sigma:g}) (95% within +-{1.96 * sigma:.2g})")


# --- Loss split shared by frantar, hossain and krajewski ------------------------------------------

def split_params(n_term: str, data_term: str, irreducible: str, data_exponent: str,
                 where: str = "S = 0") -> dict[str, Param]:
    """Coordinates L0 = n_term + data_term + irreducible at the pivots, with the given term names."""
    return {
        "log_loss_at_pivot": loss_at_pivot(f"L0, the loss at {where} and the pivots N0, D0 (the data's "
                                           "geometric means)"),
        "N_share": share(f"{n_term} / L0: the N term's share of L0"),
        "data_share": share(f"{data_term} / ({irreducible} + {data_term}): the data term's share of the "
                             "floor an unlimited model reaches after D0 tokens"),
        "floor_slope": Param(Prior("LogNormal", mu=float(np.log(0.1)), sigma=1.0), "positive",
                             f"{data_exponent} x data_share = -dlog(floor) / dlog D at D0, which even a narrow "
                             f"range of D measures ({data_exponent} = floor_slope / data_share); "
                             "LogNormal(log 0.1, 1), 95% range 0.014 to 0.7"),
    }


def split_loss(s: Params, xp: ModuleType) -> tuple[Any, Any, Any, Any]:
    """(N term at the pivots, data term at D0, irreducible loss, data exponent) from ``split_params``."""
    loss = xp.exp(s["log_loss_at_pivot"])
    floor = (1.0 - s["N_share"]) * loss
    return (s["N_share"] * loss, s["data_share"] * floor, (1.0 - s["data_share"]) * floor,
            s["floor_slope"] / s["data_share"])


def split_coordinates(n_term: float, data_term: float, irreducible: float,
                      data_exponent: float) -> dict[str, float]:
    """Inverse of :func:`split_loss`."""
    loss = n_term + data_term + irreducible
    floor = data_term + irreducible
    return {"log_loss_at_pivot": float(np.log(loss)), "N_share": n_term / loss,
            "data_share": data_term / floor, "floor_slope": data_exponent * data_term / floor}


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
    total = n_term * xp.exp(s["b_N"] * xp.log(pivots["N"]))
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
    n_term = total * pivots["N"] ** (-p["b_N"])
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
                     "sparsity exponent; LogNormal(log 0.5, 0.8), 95% range 0.1 to 2.4"),
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
    a = n_term * xp.exp(s["alpha"] * xp.log(pivots["N"]))
    return {
        "e": irreducible,
        "a": a,
        "b": data_term * xp.exp(beta * xp.log(pivots["D"])),
        "c": s["sparse_share"] / (1.0 - s["sparse_share"]) * a,
        "alpha": s["alpha"],
        "beta": beta,
        "gamma": s["gamma"],
    }


def _hossain_from_published(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    n_term = p["a"] * pivots["N"] ** (-p["alpha"])
    data_term = p["b"] * pivots["D"] ** (-p["beta"])
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
    slow = xp.exp(s["log_slow_at_pivot"])
    joint = s["joint_share"] * slow
    irreducible = slow - joint
    c = s["S_term_share"] * irreducible
    return {
        "e": irreducible - c,
        "a": coefficient_from_pivot(s["log_N_term_at_pivot"], alpha, pivots["N"], xp),
        "b": coefficient_from_pivot(s["log_D_term_at_pivot"], s["beta"], pivots["D"], xp),
        "c": c,
        "d": joint * xp.exp(s["gamma"] * xp.log(pivots["N"])),
        "alpha": alpha,
        "beta": s["beta"],
        "lambda": s["lambda"],
        "delta": s["delta"],
        "gamma": s["gamma"],
    }


def _abnar_from_published(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    irreducible = p["e"] + p["c"]
    joint = p["d"] * pivots["N"] ** (-p["gamma"])
    return {
        "log_N_term_at_pivot": pivot_from_coefficient(p["a"], p["alpha"], pivots["N"]),
        "alpha_excess": p["alpha"] - p["gamma"],
        "log_D_term_at_pivot": pivot_from_coefficient(p["b"], p["beta"], pivots["D"]),
        "beta": p["beta"],
        "log_slow_at_pivot": float(np.log(irreducible + joint)),
        "joint_share": joint / (irreducible + joint),
        "gamma": p["gamma"],
        "delta": p["delta"],
        "S_term_share": p["c"] / irreducible,
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
            "beta": xp.exp(u["log_slope_D"] + u["log_dense_loss_at_pivot"] - log_d), **kept}


def _abnar_to_coordinates(p: Params, pivots: Mapping[str, float]) -> dict[str, float]:
    log_total, logit_r, logit_q = join_three(*np.exp([p["log_slow_at_pivot"], p["log_N_term_at_pivot"],
                                                      p["log_D_term_at_pivot"]]))
    kept = {free_name(k, support): to_free(p[k], support) for k, support in _ABNAR_KEPT.items()}
    return {"log_dense_loss_at_pivot": log_total, "logit_power_share": logit_r, "logit_N_share": logit_q,
            "log_slope_D": float(np.log(p["beta"]) + p["log_D_term_at_pivot"] - log_total), **kept}


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
                                     "log of the faster-decaying N term a N0^-alpha at the pivot N0; "
                                     "Normal(log 0.5, 1.5)"),
        "alpha_excess": Param(EXPONENT.prior, "positive",
                              "alpha - gamma > 0 (a is the faster N term); LogNormal(log 0.3, 0.7), 95% range "
                              "0.08 to 1.2"),
        "log_D_term_at_pivot": log_term("D"),
        "beta": EXPONENT,
        "log_slow_at_pivot": Param(Prior("Normal", mu=0.5, sigma=1.0), "real",
                                   "log(e + c + d N0^-gamma), the dense loss at N0 without the a and D terms; "
                                   "Normal(0.5, 1), 95% range 0.2 to 12 nats"),
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
)

SPARSE_LAWS: list[Law] = [FRANTAR_LAW, HOSSAIN_LAW, ABNAR_LAW]
