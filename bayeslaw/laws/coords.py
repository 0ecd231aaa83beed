"""The laws' shared reparameterisations, each written once (the laws compose them).

Every map takes an array namespace ``xp`` (numpy or ``pytensor.tensor``) where it runs inside the model;
inverses are numpy. The expressions are the ones the laws sampled with before they were gathered here,
operation for operation, so models, seeded fits and saved fits are unchanged.

- **Terms at a pivot.** A term c X^-k is written through its value at the pivot X0 (the data's geometric
  mean), so c and k are not coupled through the scale of X: ``log_term`` (its prior), ``coefficient_from_pivot``
  / ``pivot_from_coefficient`` on the log of the term, ``coefficient_at_pivot`` / ``term_at_pivot`` on the term.
- **Loss at the pivot plus shares.** The loss at the pivots L0 (``loss_at_pivot``) and shares in (0, 1)
  (``share``) of it: ``split_by_share`` / ``loss_and_share`` (power-X, data-constrained, bnsl), and the dense
  loss split into an N term, a data term and an irreducible floor with the floor's slope (``split_params``,
  ``split_loss``, ``split_coordinates``: frantar, hossain, krajewski).
- **Split coordinates.** Volume-preserving (|det J| = 1) sampling coordinates from a log total and logits of
  shares: ``split_in_two`` / ``join_two``, ``split_in_three`` / ``join_three``, ``log_share``, and parameters
  taken over unchanged in their unconstrained value (``free_name``, ``from_free``, ``to_free``).
- **Slope coordinates.** An exponent from the log-log slope it gives the loss at the pivot, which the runs
  pin: ``exponent_from_slope`` / ``slope_from_exponent`` (slope k T / L of a term T in the total L) and
  ``exponent_from_share_slope`` / ``share_slope_from_exponent`` (slope r k of the share r above a limit).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from bayeslaw.laws.base import Param, Params
from bayeslaw.priors import Prior, Support

# --- numerics ------------------------------------------------------------------------------------------


def softplus(x: Any, xp: ModuleType) -> Any:
    """log(1 + e^x) without overflow."""
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def logit(p: float) -> float:
    """log(p / (1 - p))."""
    return float(np.log(p) - np.log1p(-p))


# --- terms at a pivot ----------------------------------------------------------------------------------


def log_term(input_name: str) -> Param:
    """The log of a power term at the pivot X0: Normal(log 0.5, 1.5)."""
    return Param(Prior("Normal", mu=float(np.log(0.5)), sigma=1.5), "real",
                 f"log of the {input_name} term at the pivot {input_name}0 (the data's geometric mean)")


def coefficient_from_pivot(log_term_value: Any, exponent: Any, pivot: Any, xp: ModuleType) -> Any:
    """A in A * X^-alpha, from the log of the term at the pivot X0: A = exp(l + alpha log X0)."""
    return xp.exp(log_term_value + exponent * xp.log(pivot))


def pivot_from_coefficient(coefficient: float, exponent: float, pivot: float) -> float:
    """Inverse of :func:`coefficient_from_pivot`: l = log A - alpha log X0."""
    return float(np.log(coefficient) - exponent * np.log(pivot))


def coefficient_at_pivot(term: Any, exponent: Any, pivot: Any, xp: ModuleType) -> Any:
    """A in A * X^-alpha, from the term's value T0 at the pivot X0: A = T0 exp(alpha log X0)."""
    return term * xp.exp(exponent * xp.log(pivot))


def term_at_pivot(coefficient: Any, exponent: Any, pivot: Any) -> Any:
    """Inverse of :func:`coefficient_at_pivot`: T0 = A X0^-alpha."""
    return coefficient * pivot ** (-exponent)


# --- the loss at the pivot plus shares -----------------------------------------------------------------


def loss_at_pivot(what: str) -> Param:
    """The log of the loss at the data's pivots: the coordinate the runs pin best (Normal(1, 0.75))."""
    return Param(Prior("Normal", mu=1.0, sigma=0.75), "real", f"log of {what}", log_of="loss in nats")


def share(doc: str) -> Param:
    """A share of the loss (or of one of its parts) in (0, 1), away from both ends: Beta(1.5, 1.5)."""
    return Param(Prior("Beta", alpha=1.5, beta=1.5), "unit", doc)


def split_by_share(total: Any, part_share: Any) -> tuple[Any, Any]:
    """(part, rest) of ``total``: part = share x total, rest = total - part (e.g. the reducible loss and E)."""
    part = part_share * total
    return part, total - part


def loss_and_share(part: Any, rest: Any) -> tuple[float, Any]:
    """Inverse of :func:`split_by_share` on the log of the total: (log(rest + part), part / (rest + part))."""
    total = rest + part
    return float(np.log(total)), part / total


def split_params(n_term: str, data_term: str, irreducible: str, data_exponent: str,
                 where: str = "S = 0") -> dict[str, Param]:
    """The dense loss L0 = n_term + data_term + irreducible at the pivots, with the given term names: its log,
    the N term's share of it, the data term's share of the rest (the floor) and the floor's slope."""
    return {
        "log_loss_at_pivot": loss_at_pivot(f"L0, the loss at {where} and the pivots N0, D0 (the data's "
                                           "geometric means)"),
        "N_share": share(f"{n_term} / L0: the N term's share of L0"),
        "data_share": share(f"{data_term} / ({irreducible} + {data_term}): the data term's share of the "
                             "floor an unlimited model reaches after D0 tokens"),
        "floor_slope": Param(Prior("LogNormal", mu=float(np.log(0.1)), sigma=1.0), "positive",
                             f"{data_exponent} x data_share = -dlog(floor) / dlog D at D0, which even a narrow "
                             f"range of D measures ({data_exponent} = floor_slope / data_share)"),
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


# --- split coordinates (volume-preserving) -------------------------------------------------------------


def log_share(x: Any, xp: ModuleType) -> tuple[Any, Any]:
    """log s and log(1 - s) of the share s = sigmoid(x): -softplus(-x) and -softplus(x), stable for any x."""
    return -softplus(-x, xp), -softplus(x, xp)


def split_in_two(log_total: Any, logit_first: Any, xp: ModuleType) -> tuple[Any, Any]:
    """Logs of two positive parts of a total L = e^log_total: first = s L and second = (1 - s) L, with s the
    sigmoid of the logit. The map from (log L, logit s) to the two logs has |det J| = 1."""
    log_s, log_not_s = log_share(logit_first, xp)
    return log_total + log_s, log_total + log_not_s


def join_two(first: float, second: float) -> tuple[float, float]:
    """Inverse of :func:`split_in_two`: (log L, logit s) from the two parts."""
    return float(np.log(first + second)), float(np.log(first) - np.log(second))


def split_in_three(log_total: Any, logit_reducible: Any, logit_first: Any, xp: ModuleType) -> tuple[Any, Any, Any]:
    """Logs of three positive parts of a total L = e^log_total: rest = (1 - r) L, first = q r L and
    second = (1 - q) r L, with r, q the sigmoids of the logits. The map from (log L, logit r, logit q) to
    the three logs has |det J| = 1: a volume-preserving change of sampling coordinates."""
    log_r, log_not_r = log_share(logit_reducible, xp)
    log_q, log_not_q = log_share(logit_first, xp)
    return log_total + log_not_r, log_total + log_r + log_q, log_total + log_r + log_not_q


def join_three(rest: float, first: float, second: float) -> tuple[float, float, float]:
    """Inverse of :func:`split_in_three`: (log L, logit r, logit q) from the three parts."""
    total = rest + first + second
    return float(np.log(total)), logit((first + second) / total), logit(first / (first + second))


def free_name(name: str, support: Support) -> str:
    """The sampling coordinate of a parameter taken over unchanged: its log, logit or itself."""
    return {"positive": f"log_{name}", "unit": f"logit_{name}", "real": name}[support]


def from_free(value: Any, support: Support, xp: ModuleType) -> Any:
    """A parameter from its unconstrained value (exp, sigmoid or itself)."""
    if support == "positive":
        return xp.exp(value)
    if support == "unit":
        return xp.exp(log_share(value, xp)[0])
    return value


def to_free(value: Any, support: Support, xp: ModuleType = np) -> Any:
    """Inverse of :func:`from_free`: log, logit or the value itself (numbers, arrays or tensors)."""
    if support == "positive":
        return xp.log(value)
    if support == "unit":
        return xp.log(value) - xp.log1p(-value)
    return value


# --- slope coordinates ---------------------------------------------------------------------------------


def exponent_from_slope(log_slope: Any, log_total: Any, log_term: Any, xp: ModuleType) -> Any:
    """The exponent k of a term T = c X^-k from the log-log slope g = k T / L that it gives the total L at the
    pivot: k = exp(log g + log L - log T). At fixed L and T it is a shift of log k (a shear: |det J| = 1)."""
    return xp.exp(log_slope + log_total - log_term)


def slope_from_exponent(exponent: float, log_total: float, log_term: float) -> float:
    """Inverse of :func:`exponent_from_slope`: log g = log k + log T - log L."""
    return float(np.log(exponent) + log_term - log_total)


def exponent_from_share_slope(log_slope: Any, log_share_value: Any, xp: ModuleType) -> Any:
    """The exponent k of the part of the loss above its limit, from the log-log slope g = r k it gives the loss,
    r that part's share: k = exp(log g - log r) (a shear of log k: |det J| = 1)."""
    return xp.exp(log_slope - log_share_value)


def share_slope_from_exponent(exponent: float, log_share_value: float) -> float:
    """Inverse of :func:`exponent_from_share_slope`: log g = log r + log k."""
    return log_share_value + float(np.log(exponent))
