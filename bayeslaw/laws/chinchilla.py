"""Chinchilla form: Hoffmann et al. 2022 (arXiv:2203.15556) eq 2 / eq 10, and Quokka's
compute-constrained law for diffusion LMs (Ni et al. 2025, arXiv:2510.03280, eq 13).

    L(N, D) = E + A / N^alpha + B / D^beta,    C = 6 N D

Compute-optimal allocation (Hoffmann eq 4): N_opt = G (C/6)^a, D_opt = (C/6)^b / G with
G = (alpha A / (beta B))^(1 / (alpha + beta)), a = beta / (alpha + beta), b = alpha / (alpha + beta).
"""

from __future__ import annotations

import numpy as np

from bayeslaw.laws.base import EXPONENT, IRREDUCIBLE, Coordinates, Law, Param, Preset
from bayeslaw.laws.coords import (
    coefficient_from_pivot,
    exponent_from_slope,
    join_three,
    log_term,
    pivot_from_coefficient,
    slope_from_exponent,
    split_in_three,
)
from bayeslaw.laws.power import RANGES
from bayeslaw.priors import Prior

HOFFMANN = "Hoffmann et al. 2022, arXiv:2203.15556"


def chinchilla_function(p, inputs, xp):
    return p["E"] + p["A"] * inputs["N"] ** (-p["alpha"]) + p["B"] * inputs["D"] ** (-p["beta"])


def _to_published(s, pivots, xp):
    return {
        "E": s["E"],
        "A": coefficient_from_pivot(s["log_A_at_pivot"], s["alpha"], pivots["N"], xp),
        "B": coefficient_from_pivot(s["log_B_at_pivot"], s["beta"], pivots["D"], xp),
        "alpha": s["alpha"],
        "beta": s["beta"],
    }


def _from_published(p, pivots):
    return {
        "E": p["E"],
        "log_A_at_pivot": pivot_from_coefficient(p["A"], p["alpha"], pivots["N"]),
        "log_B_at_pivot": pivot_from_coefficient(p["B"], p["beta"], pivots["D"]),
        "alpha": p["alpha"],
        "beta": p["beta"],
    }


def _params_from_slopes(u, pivots, xp):
    """E, the log terms at the pivots and the exponents from the loss at the pivots, its shares and slopes.

    L0 = e^l0 = E + a0 + b0 with E = (1 - r) L0, a0 = q r L0, b0 = (1 - q) r L0 (r, q: sigmoids of the
    logits), and the exponents from the log-log slopes at the pivots, g_N = alpha a0 / L0 and
    g_D = beta b0 / L0, which the runs pin even on a short ladder of sizes.
    """
    log_loss = u["log_loss_at_pivot"]
    log_e, log_a, log_b = split_in_three(log_loss, u["logit_reducible_share"], u["logit_N_share"], xp)
    return {
        "E": xp.exp(log_e),
        "log_A_at_pivot": log_a,
        "log_B_at_pivot": log_b,
        "alpha": exponent_from_slope(u["log_slope_N"], log_loss, log_a, xp),
        "beta": exponent_from_slope(u["log_slope_D"], log_loss, log_b, xp),
    }


def _slopes_from_params(p, pivots):
    log_a, log_b = p["log_A_at_pivot"], p["log_B_at_pivot"]
    log_loss, logit_r, logit_q = join_three(p["E"], np.exp(log_a), np.exp(log_b))
    return {
        "log_loss_at_pivot": log_loss,
        "logit_reducible_share": logit_r,
        "logit_N_share": logit_q,
        "log_slope_N": slope_from_exponent(p["alpha"], log_loss, log_a),
        "log_slope_D": slope_from_exponent(p["beta"], log_loss, log_b),
    }


# |det| = 1 from these coordinates to (log E, log a0, log b0, log alpha, log beta): checked in test_laws
SLOPE_COORDINATES = Coordinates(
    names=("log_loss_at_pivot", "log_slope_N", "log_slope_D", "logit_reducible_share", "logit_N_share"),
    to_params=_params_from_slopes,
    from_params=_slopes_from_params,
    initial=lambda pivots: {"log_loss_at_pivot": float(np.log(pivots["loss"])), "log_slope_N": float(np.log(0.05)),
                            "log_slope_D": float(np.log(0.05)), "logit_reducible_share": 0.0, "logit_N_share": 0.0},
)


def chinchilla_derived(p, xp):
    """a = beta/(alpha+beta), b = alpha/(alpha+beta), G = (alpha A / (beta B))^(1/(alpha+beta))."""
    total = p["alpha"] + p["beta"]
    return {
        "a": p["beta"] / total,
        "b": p["alpha"] / total,
        "G": (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / total),
    }


def chinchilla_optimum(p, budget, flops_per_param_token: float = 6.0, xp=np):
    """Closed-form compute-optimal (N_opt, D_opt) for budget C = k N D (Hoffmann eq 4)."""
    d = chinchilla_derived(p, xp)
    scaled = budget / flops_per_param_token
    return d["G"] * scaled ** d["a"], scaled ** d["b"] / d["G"]


def _chinchilla_like(name: str, title: str, source: str, irreducible: Param,
                     presets: dict[str, Preset], conventions: dict[str, str]) -> Law:
    return Law(
        name=name,
        title=title,
        formula="L = E + A / N^alpha + B / D^beta",
        inputs=("N", "D"),
        params={
            "E": irreducible,
            "log_A_at_pivot": log_term("N"),
            "log_B_at_pivot": log_term("D"),
            "alpha": EXPONENT,
            "beta": EXPONENT,
        },
        published=("E", "A", "B", "alpha", "beta"),
        function=chinchilla_function,
        to_published=_to_published,
        from_published=_from_published,
        derived=chinchilla_derived,
        conventions=conventions,
        source=source,
        presets=presets,
        input_ranges={"N": RANGES["N"], "D": RANGES["D"]},
        optimum=chinchilla_optimum,
        coordinates=SLOPE_COORDINATES,
        ties={"A": ("log_A_at_pivot", lambda value, s, pivots, xp: xp.log(value) - s["alpha"] * xp.log(pivots["N"])),
              "B": ("log_B_at_pivot", lambda value, s, pivots, xp: xp.log(value) - s["beta"] * xp.log(pivots["D"]))},
    )


_TEX = {"A": float(np.exp(6.0073404)), "B": float(np.exp(6.0179186)), "E": float(np.exp(0.5267228)),
        "alpha": 0.33917084, "beta": 0.2849083}

CHINCHILLA = _chinchilla_like(
    "chinchilla",
    "Chinchilla (Hoffmann et al. 2022) L(N, D)",
    f"{HOFFMANN}, eq 2/10 (Approach 3)",
    IRREDUCIBLE,
    {
        "hoffmann2022": Preset({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
                               f"{HOFFMANN}, Approach 3 as printed"),
        "hoffmann2022-tex": Preset(_TEX, f"{HOFFMANN}, Approach 3 unrounded (TeX source)"),
        "besiroglu2024": Preset({"E": 1.81686, "A": 482.00572, "B": 2085.43420, "alpha": 0.34781,
                                 "beta": 0.36585},
                                "Besiroglu et al. 2024, arXiv:2404.10102 (refit of the extracted runs)"),
    },
    {"N": "total parameters including embeddings", "D": "training tokens",
     "C": "C = 6 N D training FLOPs", "loss": "nats/token"},
)

QUOKKA = _chinchilla_like(
    "quokka",
    "Quokka (Ni et al. 2025) compute-constrained law for diffusion LMs",
    "Ni et al. 2025, arXiv:2510.03280, eq 10/13",
    Param(Prior("HalfNormal", sigma=3.5), "positive",
          "irreducible loss E in nats; diffusion ELBO losses sit higher"),
    {"ni2025": Preset({"E": 2.413, "A": 798.6, "B": 4604.9, "alpha": 0.379, "beta": 0.378},
                      "Ni et al. 2025, arXiv:2510.03280, eq 13")},
    {"N": "parameters (the paper does not say whether embeddings count)", "D": "training tokens",
     "C": "C = 6 N D training FLOPs", "loss": "masked-diffusion ELBO, nats/token"},
)
