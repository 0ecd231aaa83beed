"""Broken neural scaling laws: Caballero et al. 2022 (arXiv:2210.14891, ICLR 2023), eq 1.

    y = a + b x^-c0 prod_{i=1..n} (1 + (x / d_i)^(1 / f_i))^(-c_i f_i)

A smoothly broken power law: slope -c0 on log-log axes before the first break, -(c0 + c1 + ... + c_i)
after break i at x = d_i, with sharpness f_i (the width of the bend, in natural-log units of x;
smaller is sharper). a is the limit the loss approaches. ``bnsl-1`` has one break, ``bnsl-2`` two
(both sampled at target_accept 0.95: a break at the edge of the runs with a steep slope after it is a
narrow neck, where 0.9 leaves a few divergences per 2,000 draws).
The input is x = C, training FLOPs (C = 6 N D when the table gives N and D); the form applies as
well to parameters or tokens with a renamed column. Here slopes only steepen at a break (c_i > 0).

The law's parameters are the log loss at the pivot x0 (the data's geometric mean of C), the share r
of that loss above a (as in the ``power-X`` laws), the slopes, log(d_1 / x0), log f_i and, for two
breaks, log(d_2 / d_1) > 0 (ordered breaks, so no label switching); b follows from the loss at x0.
With one break NUTS samples r c_i in place of each slope c_i (``one_break_coordinates``): the loss's own
log-log slopes, which the runs pin whatever share of the loss lies above a.
"""

from __future__ import annotations

import numpy as np

from bayeslaw.laws.base import Coordinates, Law, Param, Preset
from bayeslaw.laws.coords import (
    exponent_from_share_slope,
    log_share,
    logit,
    loss_and_share,
    loss_at_pivot,
    share,
    share_slope_from_exponent,
    softplus,
    split_by_share,
)
from bayeslaw.priors import Prior

CABALLERO = "Caballero et al. 2022, arXiv:2210.14891 (ICLR 2023), eq 1"
X = "C"


def _log_breaks(p, log_x, n_breaks: int, xp):
    """sum_i c_i f_i log(1 + (x / d_i)^(1 / f_i)): minus the log of the product of break factors."""
    total = 0.0
    for i in range(1, n_breaks + 1):
        c, d, f = p[f"c{i}"], p[f"d{i}"], p[f"f{i}"]
        total = total + c * f * softplus((log_x - xp.log(d)) / f, xp)
    return total


# prior widths by number of breaks: with two breaks, three segments share the same data, so each
# slope change, sharpness and gap needs a firmer prior (with wider ones NUTS still diverges at 0.95)
_WIDTHS = {1: {"slope": 1.0, "log_f": 1.0, "gap": 0.75}, 2: {"slope": 0.75, "log_f": 0.75, "gap": 0.5}}
# illustrative constants (no LM fit with breaks has been published): a slow start, then a steeper
# power law after each break, flattening towards a at the largest budgets
_EXAMPLES = {
    1: {"a": 1.7, "b": 6.0, "c0": 0.03, "c1": 0.2, "d1": 1e20, "f1": 0.3},
    2: {"a": 1.7, "b": 4.4, "c0": 0.02, "c1": 0.2, "d1": 1e18, "f1": 0.3, "c2": 0.3, "d2": 1e21, "f2": 0.3},
}


def one_break_coordinates() -> Coordinates:
    """bnsl-1's parameters with each slope c0, c1 replaced by log(r c_i), r the reducible share at the pivot.

    The runs pin the log-log slopes of the loss, -dlog L/dlog C = r(C) (c0 + c1 s(C)) with s the smooth step
    of the break: r c0 before it and r (c0 + c1) after, at the pivot's share r. The slopes then no longer trade
    off against r, the E-like ridge (a against the slopes) of a short range of C: log(r c_i) = log r + log c_i
    is a shear, so |det J| = 1.
    """
    slopes = ("c0", "c1")
    kept = ("log_loss_at_pivot", "log_d1_over_pivot", "log_f1")

    def to_params(u, pivots, xp):
        log_r = log_share(u["logit_reducible_share"], xp)[0]
        return {**{k: u[k] for k in kept}, "reducible_share": xp.exp(log_r),
                **{c: exponent_from_share_slope(u[f"log_r_{c}"], log_r, xp) for c in slopes}}

    def from_params(p, pivots):
        log_r = float(np.log(p["reducible_share"]))
        return {**{k: float(p[k]) for k in kept}, "logit_reducible_share": logit(p["reducible_share"]),
                **{f"log_r_{c}": share_slope_from_exponent(p[c], log_r) for c in slopes}}

    def initial(pivots):
        return {**{k: 0.0 for k in kept}, "log_loss_at_pivot": float(np.log(pivots["loss"])),
                "logit_reducible_share": 0.0, **{f"log_r_{c}": float(np.log(0.05)) for c in slopes}}

    names = ("log_loss_at_pivot", "logit_reducible_share", *[f"log_r_{c}" for c in slopes], *kept[1:])
    return Coordinates(names=names, to_params=to_params, from_params=from_params, initial=initial)


def make_bnsl(n_breaks: int) -> Law:
    """The broken power law in C with ``n_breaks`` (1 or 2) smooth breaks."""
    breaks = range(1, n_breaks + 1)
    width = _WIDTHS[n_breaks]
    slope = Prior("LogNormal", mu=float(np.log(0.1)), sigma=width["slope"])

    def function(p, inputs, xp):
        log_x = xp.log(inputs[X])
        return p["a"] + p["b"] * xp.exp(-p["c0"] * log_x - _log_breaks(p, log_x, n_breaks, xp))

    def to_published(s, pivots, xp):
        log_x0 = xp.log(pivots[X])
        out = {"c0": s["c0"]}
        log_d = log_x0 + s["log_d1_over_pivot"]
        for i in breaks:
            if i > 1:
                log_d = log_d + s[f"log_d{i}_over_d{i - 1}"]
            out |= {f"c{i}": s[f"c{i}"], f"d{i}": xp.exp(log_d), f"f{i}": xp.exp(s[f"log_f{i}"])}
        reducible, limit = split_by_share(xp.exp(s["log_loss_at_pivot"]), s["reducible_share"])
        log_b = xp.log(reducible) + s["c0"] * log_x0 + _log_breaks(out, log_x0, n_breaks, xp)
        return {"a": limit, "b": xp.exp(log_b), **out}

    def from_published(p, pivots):
        x0 = pivots[X]
        log_loss, reducible_share = loss_and_share(float(function({**p, "a": 0.0}, {X: x0}, np)), p["a"])
        out = {"log_loss_at_pivot": log_loss, "reducible_share": reducible_share, "c0": p["c0"],
               "log_d1_over_pivot": float(np.log(p["d1"] / x0))}
        for i in breaks:
            out |= {f"c{i}": p[f"c{i}"], f"log_f{i}": float(np.log(p[f"f{i}"]))}
            if i > 1:
                out[f"log_d{i}_over_d{i - 1}"] = float(np.log(p[f"d{i}"] / p[f"d{i - 1}"]))
        return out

    params = {
        "log_loss_at_pivot": loss_at_pivot("the loss at the pivot C0 (the data's geometric mean of C)"),
        "reducible_share": share("share of the loss at C0 above the limit a: (y - a) / y"),
        "c0": Param(slope, "positive", "log-log slope before the first break"),
        "log_d1_over_pivot": Param(Prior("Normal", mu=0.0, sigma=3.0), "real",
                                   "log(d1 / C0): first break relative to the pivot", log_of="d1 / C0"),
    }
    for i in breaks:
        if i > 1:
            gap = Prior("LogNormal", mu=float(np.log(4.0)), sigma=width["gap"])
            params[f"log_d{i}_over_d{i - 1}"] = Param(
                gap, "positive", f"log(d{i} / d{i - 1}) > 0: breaks stay ordered", log_of=f"d{i} / d{i - 1}")
        params[f"c{i}"] = Param(slope, "positive", f"steepening of the log-log slope at break {i}")
        params[f"log_f{i}"] = Param(Prior("Normal", mu=0.0, sigma=width["log_f"]), "real",
                                    f"log sharpness of break {i} (width of the bend in ln C)", log_of=f"f{i}")

    published = ("a", "b", "c0", *[f"{k}{i}" for i in breaks for k in ("c", "d", "f")])
    factors = " ".join(f"(1 + (C/d{i})^(1/f{i}))^(-c{i} f{i})" for i in breaks)
    return Law(
        name=f"bnsl-{n_breaks}",
        title=f"broken neural scaling law in C with {n_breaks} break{'s' if n_breaks > 1 else ''}",
        formula=f"L = a + b C^-c0 {factors}",
        inputs=(X,),
        params=params,
        published=published,
        function=function,
        to_published=to_published,
        from_published=from_published,
        conventions={X: "training FLOPs (C = 6 N D for dense transformers)", "loss": "nats/token"},
        source=CABALLERO,
        presets={"example": Preset(_EXAMPLES[n_breaks],
                                   "illustrative constants, NOT a published fit (no broken power law has been "
                                   "published for LM loss against FLOPs): slow start, steeper after each break")},
        input_ranges={X: (1e17, 1e23)},
        target_accept=0.95,
        # two breaks keep their slopes: with the coordinates one ladder seed of four kept a divergence after the
        # second attempt (without them: four of four converge), ARCHITECTURE.md
        coordinates=one_break_coordinates() if n_breaks == 1 else None,
    )


BNSL_LAWS: list[Law] = [make_bnsl(1), make_bnsl(2)]
