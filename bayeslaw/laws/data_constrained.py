"""Data-constrained laws: loss when the unique tokens U run out and data are repeated for D / U epochs.

``muennighoff`` (Muennighoff et al. 2023, arXiv:2305.16264, README of huggingface/datablations):

    L = E + A / N'^alpha + B / D'^beta
    D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)),    R_D = D / U_D - 1  (repetitions = epochs - 1)
    N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),    U_N = min(N, N_opt(U_D)),  R_N = N / U_N - 1
    N_opt(U) = (U G)^(beta / alpha) G,    G = (alpha A / (beta B))^(1 / (alpha + beta))

Repeated tokens are worth less and less (time constant R_D* repetitions); parameters beyond the
compute-optimal size for U_D tokens likewise (R_N*). Loss never rises with more epochs.

``quokka-dc`` (Ni et al. 2025, arXiv:2510.03280, eq 14): effective data that rises, then falls
once the model overfits,

    L = E + A / N^alpha + B / D'^beta
    D' = U_D e^p_e exp(-(max(0, e - 1) / e_p)^gamma),    e = D / U_D,    e_p = c_p U_D^m_p / N^k_p

In both laws U_D = min(U, D): the unique tokens actually seen (a run shorter than one pass over U
sees D unique tokens), so e >= 1. At one epoch ``quokka-dc`` reduces to the Chinchilla form in (N, D);
``muennighoff`` does only for N <= N_opt(D): a larger model's excess parameters are discounted (R_N*) even
when no token repeats (at its published constants 112 of the 240 kept Chinchilla runs move, by up to 8.5%).

Sampling coordinates: the one-epoch loss at the pivots N0, D0 (geometric means), its share above E
and the data term's share of the rest, as in the ``power-X`` laws, then the exponents; for Quokka also
the overfitting scale e_p at the pivots U0, N0 instead of c_p.
"""

from __future__ import annotations

import numpy as np

from bayeslaw.laws.base import EXPONENT, Law, Param, Preset
from bayeslaw.laws.chinchilla import chinchilla_derived
from bayeslaw.laws.coords import coefficient_at_pivot, loss_at_pivot, share, split_by_share, term_at_pivot
from bayeslaw.priors import Prior

MUENNIGHOFF = "Muennighoff et al. 2023, arXiv:2305.16264"
NI = "Ni et al. 2025, arXiv:2510.03280"
# inputs of the synthetic designs: models of 10M to 10B parameters, up to ~100 epochs over
# 100M to 100B unique tokens, and single-epoch runs (U >= D) that pin the Chinchilla part
RANGES = {"N": (1e7, 1e10), "D": (1e9, 1e12), "U": (1e8, 1e11)}
# overfitting needs epochs well past e_p (tens to thousands): 10M to 10B parameters, 1B to 1T unique
# tokens, 10B to 10T tokens; losses stay under about 10 nats at the eq 15 constants
QUOKKA_RANGES = {"N": (1e7, 1e10), "D": (1e10, 1e13), "U": (1e9, 1e12)}
_CONVENTIONS = {
    "N": "parameters (Muennighoff: total, GPT-2 style models)",
    "D": "training tokens, repetitions included",
    "U": "unique tokens; U_D = min(U, D) is what the run saw, so epochs = D / U_D >= 1",
    "C": "C = 6 N D training FLOPs",
    "loss": "validation loss, nats/token",
}
_TINY = 1e-12  # keeps 0^gamma and its gradient finite; the penalty is masked to 0 where e <= 1


def _seen(inputs, xp):
    """Unique tokens the run saw, U_D = min(U, D), and epochs D / U_D (>= 1)."""
    unique = xp.minimum(inputs["U"], inputs["D"])
    return unique, inputs["D"] / unique


def _saturating(unique, repeats, star, xp):
    """u (1 + R* (1 - exp(-R / R*))): the k-th repetition is worth exp(-k / R*) of a new unit."""
    return unique * (1.0 + star * (1.0 - xp.exp(-repeats / star)))


def _terms_params(reducible: Prior) -> dict[str, Param]:
    """Coordinates of E + A/N^alpha + B/D^beta: the loss at the pivots, its shares, and the exponents.

    As in the ``power-X`` laws, sampling the loss at the pivots and the share above E turns the
    E-alpha ridge into a near-linear one, and the exponents keep their own priors, which the
    data-constrained runs (few model sizes, one budget each) need to separate the two terms.
    """
    return {
        "log_loss_at_pivot": loss_at_pivot("E + A/N0^alpha + B/D0^beta (one epoch, no excess parameters) at "
                                           "the pivots N0, D0"),
        "reducible_share": Param(reducible, "unit", "share of that loss above E"),
        "data_share": share("share of the reducible loss at the pivots that the data term B/D0^beta makes"),
        "alpha": EXPONENT,
        "beta": EXPONENT,
    }


def _terms_to_published(s, pivots, xp):
    """E, A, alpha, B, beta from the loss at the pivots, its shares and the exponents."""
    reducible, irreducible = split_by_share(xp.exp(s["log_loss_at_pivot"]), s["reducible_share"])
    data_term, params_term = split_by_share(reducible, s["data_share"])
    return {
        "E": irreducible,
        "A": coefficient_at_pivot(params_term, s["alpha"], pivots["N"], xp),
        "alpha": s["alpha"],
        "B": coefficient_at_pivot(data_term, s["beta"], pivots["D"], xp),
        "beta": s["beta"],
    }


def _terms_from_published(p, pivots) -> dict[str, float]:
    params_term = term_at_pivot(p["A"], p["alpha"], pivots["N"])
    data_term = term_at_pivot(p["B"], p["beta"], pivots["D"])
    loss = p["E"] + params_term + data_term  # summed in this order, as before: the same bits
    return {
        "log_loss_at_pivot": float(np.log(loss)),
        "reducible_share": (params_term + data_term) / loss,
        "data_share": data_term / (params_term + data_term),
        "alpha": p["alpha"],
        "beta": p["beta"],
    }


def muennighoff_function(p, inputs, xp):
    unique, epochs = _seen(inputs, xp)
    n = inputs["N"]
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1.0 / (p["alpha"] + p["beta"]))
    n_opt = (unique * g) ** (p["beta"] / p["alpha"]) * g  # compute-optimal size for U_D tokens
    unique_n = xp.minimum(n, n_opt)
    n_eff = _saturating(unique_n, n / unique_n - 1.0, p["R_N_star"], xp)
    d_eff = _saturating(unique, epochs - 1.0, p["R_D_star"], xp)
    return p["E"] + p["A"] * n_eff ** (-p["alpha"]) + p["B"] * d_eff ** (-p["beta"])


def _repetition_prior(what: str) -> Param:
    return Param(Prior("LogNormal", mu=float(np.log(10.0)), sigma=1.0), "positive",
                 what)


def _muennighoff_to_published(s, pivots, xp):
    return {**_terms_to_published(s, pivots, xp), "R_D_star": s["R_D_star"], "R_N_star": s["R_N_star"]}


def _muennighoff_from_published(p, pivots):
    return {**_terms_from_published(p, pivots), "R_D_star": p["R_D_star"], "R_N_star": p["R_N_star"]}


MUENNIGHOFF_LAW = Law(
    name="muennighoff",
    title="Muennighoff et al. 2023 data-constrained law L(N, D, U)",
    formula="L = E + A / N'^alpha + B / D'^beta, D' = U + U R_D* (1 - exp(-R_D / R_D*)), N' likewise",
    inputs=("N", "D", "U"),
    params={
        **_terms_params(Prior("Beta", alpha=1.5, beta=1.5)),
        "R_D_star": _repetition_prior("R_D*: repetitions after which repeated data has lost 1 - 1/e of its value"),
        "R_N_star": _repetition_prior("R_N*: the same for parameters beyond the compute-optimal size for U tokens"),
    },
    published=("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star"),
    function=muennighoff_function,
    to_published=_muennighoff_to_published,
    from_published=_muennighoff_from_published,
    derived=chinchilla_derived,
    conventions=_CONVENTIONS,
    source=f"{MUENNIGHOFF}; huggingface/datablations README (Parametric Fit)",
    presets={
        "muennighoff2023": Preset(
            {"E": float(np.exp(0.6254804)), "A": float(np.exp(6.255414)), "B": float(np.exp(7.3049974)),
             "alpha": 0.3526596, "beta": 0.3526596, "R_D_star": 15.387756, "R_N_star": 5.309743},
            f"{MUENNIGHOFF}: base constants fitted to Chinchilla's C4 isoFLOP points (alpha = beta tied), "
            "R_D*, R_N* fitted on their runs (datablations README)"),
    },
    input_ranges=RANGES,
)


def quokka_dc_function(p, inputs, xp):
    unique, epochs = _seen(inputs, xp)
    n = inputs["N"]
    log_e_p = xp.log(p["c_p"]) + p["m_p"] * xp.log(unique) - p["k_p"] * xp.log(n)
    excess = xp.maximum(epochs - 1.0, _TINY)
    penalty = xp.exp(p["gamma"] * (xp.log(excess) - log_e_p)) * (epochs > 1.0)
    log_d_eff = xp.log(unique) + p["p_e"] * xp.log(epochs) - penalty
    return p["E"] + p["A"] * n ** (-p["alpha"]) + p["B"] * xp.exp(-p["beta"] * log_d_eff)


def _quokka_to_published(s, pivots, xp):
    log_e_p = s["log_e_p_at_pivot"] - s["m_p"] * xp.log(pivots["U"]) + s["k_p"] * xp.log(pivots["N"])
    return {**_terms_to_published(s, pivots, xp), "p_e": s["p_e"], "c_p": xp.exp(log_e_p), "m_p": s["m_p"],
            "k_p": s["k_p"], "gamma": s["gamma"]}


def _quokka_from_published(p, pivots):
    log_e_p = float(np.log(p["c_p"]) + p["m_p"] * np.log(pivots["U"]) - p["k_p"] * np.log(pivots["N"]))
    return {**_terms_from_published(p, pivots), "p_e": p["p_e"], "log_e_p_at_pivot": log_e_p,
            "m_p": p["m_p"], "k_p": p["k_p"], "gamma": p["gamma"]}


def _quokka_derived(p, xp):
    """Epochs that maximise D' (minimise loss) at fixed N and U, for e >> 1: (p_e / gamma)^(1/gamma) e_p."""
    return {"e_opt_over_e_p": (p["p_e"] / p["gamma"]) ** (1.0 / p["gamma"])}


# Ni et al. eq 15 omits E ("the irreducible loss diminishes to a negligible value"). The preset
# keeps a stand-in E = 0.05 nats, under the 2% run-to-run noise on losses of 2 to 5 nats. E = 0
# itself would sit on the boundary of E's support: it cannot be mapped to sampling coordinates,
# and a posterior truncated at E = 0 puts the E-correlated beta's lower HDI edge at the truth.
_NI_EQ15 = {"E": 0.05, "A": 1535.23, "alpha": 0.42, "B": 54.21, "beta": 0.13, "p_e": 1.49,
            "c_p": 254.35, "m_p": 0.39, "k_p": 0.55, "gamma": 0.40}

QUOKKA_DC = Law(
    name="quokka-dc",
    title="Quokka (Ni et al. 2025) data-constrained law for diffusion LMs, with overfitting",
    formula="L = E + A / N^alpha + B / D'^beta, D' = U e^p_e exp(-(max(0, e - 1) / e_p)^gamma), "
            "e = D / U, e_p = c_p U^m_p / N^k_p",
    inputs=("N", "D", "U"),
    params={
        **_terms_params(Prior("Beta", alpha=1.0, beta=1.0)),
        "p_e": Param(Prior("LogNormal", mu=0.0, sigma=0.7), "positive",
                     "growth exponent of effective data in epochs before overfitting"),
        "log_e_p_at_pivot": Param(Prior("Normal", mu=float(np.log(10.0)), sigma=2.0), "real",
                                  "log of the overfitting scale e_p (epochs) at the pivots U0, N0",
                                  log_of="e_p in epochs"),
        "m_p": Param(Prior("Normal", mu=0.5, sigma=0.5), "real",
                     "exponent of U in e_p (more unique data: later overfitting)"),
        "k_p": Param(Prior("Normal", mu=0.5, sigma=0.5), "real",
                     "exponent of 1/N in e_p (larger models overfit sooner)"),
        "gamma": Param(Prior("LogNormal", mu=float(np.log(0.5)), sigma=0.7), "positive",
                       "stretch exponent of the overfitting penalty"),
    },
    published=("E", "A", "alpha", "B", "beta", "p_e", "c_p", "m_p", "k_p", "gamma"),
    function=quokka_dc_function,
    to_published=_quokka_to_published,
    from_published=_quokka_from_published,
    derived=_quokka_derived,
    conventions={**_CONVENTIONS, "N": "parameters (the paper does not say whether embeddings count)",
                 "loss": "masked-diffusion ELBO on c4 validation, nats/token"},
    source=f"{NI}, eq 14 (form) and eq 15 (fit)",
    presets={"ni2025": Preset(_NI_EQ15, f"{NI}, eq 15 (c4, GPT-2 tokenizer), plus E = 0.05 nats "
                                        "standing in for the irreducible loss it omits as negligible")},
    input_ranges=QUOKKA_RANGES,
    target_accept=0.95,  # the overfitting penalty's (p_e, gamma, e_p) ridge: 0-2 divergences per 2,000 at 0.9
    # the same ridge leaves bulk ESS 190-280 of 4,000 draws on a 4-size ladder (0 of 4 seeds converge);
    # chains twice as long: 3 of 4 (ARCHITECTURE.md)
    thin=2,
)

DATA_CONSTRAINED_LAWS: list[Law] = [MUENNIGHOFF_LAW, QUOKKA_DC]
