"""Power laws in one input X (N, D or C), with and without an irreducible term.

    L(X) = E + A * X^-alpha        (``power-X``)
    L(X) = A * X^-alpha            (``pure-power-X``)

Without E, sampled as (log of the A-term at the pivot X0, alpha). With E, sampled as the log
loss at the pivot l0, the reducible share f of that loss and alpha:
E = (1 - f) e^l0, A = f e^l0 X0^alpha. The data pin l0 and the slope -alpha f e^l0, so the
E-alpha ridge of small exponents becomes a near-linear one in (log alpha, logit f).
"""

from __future__ import annotations

from bayeslaw.laws.base import EXPONENT, Law, Preset
from bayeslaw.laws.coords import (
    coefficient_at_pivot,
    coefficient_from_pivot,
    log_term,
    loss_and_share,
    loss_at_pivot,
    pivot_from_coefficient,
    share,
    split_by_share,
    term_at_pivot,
)

_UNITS = {"N": "parameters", "D": "training tokens", "C": "training FLOPs"}
RANGES = {"N": (1e7, 1e11), "D": (1e9, 1e13), "C": (1e17, 1e23)}
_CONVENTIONS = {
    "N": "N as the data states it (say whether embeddings are counted)",
    "D": "D = training tokens",
    "C": "C = training FLOPs (6 N D for dense transformers)",
}


def _presets(x: str, irreducible: bool) -> dict[str, Preset]:
    chinchilla = "Hoffmann et al. 2022 Approach 3 (printed), limit of the other input -> infinity"
    if irreducible and x == "N":
        return {"chinchilla2022-infinite-data": Preset({"E": 1.69, "A": 406.4, "alpha": 0.34}, chinchilla)}
    if irreducible and x == "D":
        return {"chinchilla2022-infinite-params": Preset({"E": 1.69, "A": 410.7, "alpha": 0.28}, chinchilla)}
    if irreducible and x == "C":
        return {"porian2024": Preset({"E": 2.0056, "A": 128.93, "alpha": 0.106},
                                     "Porian et al. 2024, tuned/short/const RefinedWeb, L*(C)")}
    kaplan = {"N": (0.076, 8.8e13), "D": (0.095, 5.4e13), "C": (0.050, 3.1e8 * 8.64e19)}
    alpha, scale = kaplan[x]
    return {"kaplan2020": Preset({"A": scale**alpha, "alpha": alpha},
                                 "Kaplan et al. 2020 eq 1.1-1.3 (C in FLOPs), A = X_c^alpha")}


def make_power_law(x: str, irreducible: bool) -> Law:
    """The one-input power law in ``x``, with or without the irreducible term E."""
    term = "log_A_at_pivot"

    def function(p, inputs, xp):
        value = p["A"] * inputs[x] ** (-p["alpha"])
        return p["E"] + value if irreducible else value

    def to_published(s, pivots, xp):
        if not irreducible:
            return {"A": coefficient_from_pivot(s[term], s["alpha"], pivots[x], xp), "alpha": s["alpha"]}
        reducible, e = split_by_share(xp.exp(s["log_loss_at_pivot"]), s["reducible_share"])
        return {"E": e, "A": coefficient_at_pivot(reducible, s["alpha"], pivots[x], xp), "alpha": s["alpha"]}

    def from_published(p, pivots):
        if not irreducible:
            return {term: pivot_from_coefficient(p["A"], p["alpha"], pivots[x]), "alpha": p["alpha"]}
        log_loss, reducible_share = loss_and_share(term_at_pivot(p["A"], p["alpha"], pivots[x]), p["E"])
        return {"log_loss_at_pivot": log_loss, "reducible_share": reducible_share, "alpha": p["alpha"]}

    if irreducible:
        params = {
            "log_loss_at_pivot": loss_at_pivot(f"the loss at the pivot {x}0"),
            "reducible_share": share(f"share of the loss at {x}0 that the power term makes: (L - E) / L"),
        }
    else:
        params = {term: log_term(x)}
    params |= {"alpha": EXPONENT}
    name = f"power-{x}" if irreducible else f"pure-power-{x}"
    formula = f"L = E + A * {x}^-alpha" if irreducible else f"L = A * {x}^-alpha"
    return Law(
        name=name,
        title=f"power law in {x}" + (" with irreducible loss" if irreducible else ", no irreducible loss"),
        formula=formula,
        inputs=(x,),
        params=params,
        published=(("E",) if irreducible else ()) + ("A", "alpha"),
        function=function,
        to_published=to_published,
        from_published=from_published,
        conventions={x: f"{_UNITS[x]}; {_CONVENTIONS[x]}", "loss": "nats/token"},
        source="generic saturating power law (e.g. Kaplan et al. 2020; Hoffmann et al. 2022)",
        presets=_presets(x, irreducible),
        input_ranges={x: RANGES[x]},
    )


POWER_LAWS = [make_power_law(x, irreducible) for irreducible in (True, False) for x in ("N", "D", "C")]
