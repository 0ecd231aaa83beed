"""Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (arXiv:2001.08361).

    L(N) = (N_c / N)^alpha_N                                    eq 1.1
    L(D) = (D_c / D)^alpha_D                                    eq 1.2
    L(C_min) = (C_c / C_min)^alpha_C, C in PF-days              eq 1.3
    L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D    eq 1.5

No irreducible term. N counts non-embedding parameters; compute is C = 6 N D in PF-days
(1 PF-day = 8.64e19 FLOPs). Data give C in FLOPs; ``kaplan-C`` converts. Each law samples the
log of the loss its term alone would give at the pivot, l = alpha log(X_c / X0), and the exponent.
"""

from __future__ import annotations

import numpy as np

from bayeslaw.laws.base import Law, Param, Preset
from bayeslaw.laws.power import RANGES
from bayeslaw.priors import Prior

PF_DAY = 8.64e19  # FLOPs in one petaflop/s-day
SOURCE = "Kaplan et al. 2020, arXiv:2001.08361"
KAPLAN_EXPONENT = Param(Prior("LogNormal", mu=float(np.log(0.1)), sigma=0.7), "positive",
                        "exponent; Kaplan laws have no E, so exponents are small")
CONVENTIONS = {
    "N": "non-embedding parameters",
    "D": "training tokens",
    "C": "training FLOPs in the data; the law's C_c is in PF-days (1 PF-day = 8.64e19 FLOPs); C = 6 N D",
    "loss": "nats/token (WebText2)",
}


def _log_loss_term(x: str) -> Param:
    return Param(Prior("Normal", mu=1.0, sigma=1.0), "real",
                 f"log of the loss the {x} term alone gives at the pivot {x}0: alpha log({x}_c / {x}0)")


def _unit(x: str) -> float:
    return PF_DAY if x == "C" else 1.0


def make_kaplan_single(x: str, alpha: float, scale: float, table: str) -> Law:
    """L(X) = (X_c / X)^alpha, X_c in the law's own unit (PF-days for C)."""
    scale_name, alpha_name, term = f"{x}_c", f"alpha_{x}", f"log_loss_{x}_at_pivot"
    unit = _unit(x)

    def function(p, inputs, xp):
        return (p[scale_name] / (inputs[x] / unit)) ** p[alpha_name]

    def to_published(s, pivots, xp):
        return {scale_name: pivots[x] / unit * xp.exp(s[term] / s[alpha_name]), alpha_name: s[alpha_name]}

    def from_published(p, pivots):
        return {term: p[alpha_name] * float(np.log(p[scale_name] * unit / pivots[x])), alpha_name: p[alpha_name]}

    return Law(
        name=f"kaplan-{x}",
        title=f"Kaplan et al. 2020 L({x})",
        formula=f"L = ({x}_c / {x})^alpha_{x}" + (" (C in PF-days)" if x == "C" else ""),
        inputs=(x,),
        params={term: _log_loss_term(x), alpha_name: KAPLAN_EXPONENT},
        published=(scale_name, alpha_name),
        function=function,
        to_published=to_published,
        from_published=from_published,
        conventions={k: CONVENTIONS[k] for k in (x, "loss")},
        source=f"{SOURCE}, {table}",
        presets={"kaplan2020": Preset({scale_name: scale, alpha_name: alpha}, f"{SOURCE}, {table}")},
        input_ranges={x: RANGES[x]},
    )


def _nd_function(p, inputs, xp):
    ratio = p["alpha_N"] / p["alpha_D"]
    return ((p["N_c"] / inputs["N"]) ** ratio + p["D_c"] / inputs["D"]) ** p["alpha_D"]


def _nd_to_published(s, pivots, xp):
    return {
        "N_c": pivots["N"] * xp.exp(s["log_loss_N_at_pivot"] / s["alpha_N"]),
        "D_c": pivots["D"] * xp.exp(s["log_loss_D_at_pivot"] / s["alpha_D"]),
        "alpha_N": s["alpha_N"],
        "alpha_D": s["alpha_D"],
    }


def _nd_from_published(p, pivots):
    return {
        "log_loss_N_at_pivot": p["alpha_N"] * float(np.log(p["N_c"] / pivots["N"])),
        "log_loss_D_at_pivot": p["alpha_D"] * float(np.log(p["D_c"] / pivots["D"])),
        "alpha_N": p["alpha_N"],
        "alpha_D": p["alpha_D"],
    }


KAPLAN_ND = Law(
    name="kaplan-ND",
    title="Kaplan et al. 2020 L(N, D)",
    formula="L = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D",
    inputs=("N", "D"),
    params={
        "log_loss_N_at_pivot": _log_loss_term("N"),
        "log_loss_D_at_pivot": _log_loss_term("D"),
        "alpha_N": KAPLAN_EXPONENT,
        "alpha_D": KAPLAN_EXPONENT,
    },
    published=("N_c", "D_c", "alpha_N", "alpha_D"),
    function=_nd_function,
    to_published=_nd_to_published,
    from_published=_nd_from_published,
    conventions={k: CONVENTIONS[k] for k in ("N", "D", "loss")},
    source=f"{SOURCE}, eq 1.5 and Table 2",
    presets={"kaplan2020": Preset({"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
                                  f"{SOURCE}, Table 2 (differs from the single-input constants)")},
    input_ranges={"N": RANGES["N"], "D": RANGES["D"]},
)

KAPLAN_LAWS = [
    make_kaplan_single("N", 0.076, 8.8e13, "eq 1.1, Table 5"),
    make_kaplan_single("D", 0.095, 5.4e13, "eq 1.2, Table 5"),
    make_kaplan_single("C", 0.050, 3.1e8, "eq 1.3, Table 5 (C_min)"),
    KAPLAN_ND,
]
