"""DeepSeek LLM 2024 (arXiv:2401.02954), section 3: compute is C = M D, with M the non-embedding
FLOPs per token, and power laws in C for the compute-optimal scale and hyper-parameters.

    M = 72 n_layer d_model^2 + 12 n_layer d_model l_seq        eq 2
    M_opt = M_base C^a,  D_opt = D_base C^b                      eq 4 (a + b = 1, M_base D_base = 1)
    eta_opt = eta_base C^eta_exponent,  B_opt = B_base C^B_exponent   eq 1 (B in tokens)

Each is fitted as y = k C^p with log-normal-ish noise on log y; sampled as (log of y at the
pivot C0 relative to the data's geometric-mean y, p), so k and p are not correlated through
the scale of C.
"""

from __future__ import annotations

import numpy as np

from bayeslaw.laws.base import Law, Param, Preset
from bayeslaw.priors import Prior

SOURCE = "DeepSeek-AI 2024, arXiv:2401.02954"


def model_scale(n_layer, d_model, l_seq):
    """DeepSeek's M: non-embedding FLOPs per token, 72 n_layer d_model^2 + 12 n_layer d_model l_seq."""
    return 72 * n_layer * d_model**2 + 12 * n_layer * d_model * l_seq


def make_compute_power_law(target: str, coef: str, exponent: str, value: tuple[float, float],
                           equation: str, target_doc: str) -> Law:
    """y = coef * C^exponent for the target column ``target``."""
    term = f"log_{target}_at_pivot"

    def function(p, inputs, xp):
        return p[coef] * inputs["C"] ** p[exponent]

    def to_published(s, pivots, xp):
        return {coef: pivots[target] * xp.exp(s[term] - s[exponent] * xp.log(pivots["C"])),
                exponent: s[exponent]}

    def from_published(p, pivots):
        return {term: float(np.log(p[coef] / pivots[target]) + p[exponent] * np.log(pivots["C"])),
                exponent: p[exponent]}

    return Law(
        name=f"deepseek-{target}",
        title=f"DeepSeek 2024 {target}(C)",
        formula=f"{target} = {coef} * C^{exponent}",
        inputs=("C",),
        target=target,
        params={
            term: Param(Prior("Normal", mu=0.0, sigma=2.0), "real",
                        f"log of {target} at the pivot C0, relative to the data's geometric-mean {target}"),
            exponent: Param(Prior("Normal", mu=0.0, sigma=1.0), "real", "exponent of C (either sign)"),
        },
        published=(coef, exponent),
        function=function,
        to_published=to_published,
        from_published=from_published,
        conventions={"C": "training FLOPs, C = M D (M: non-embedding FLOPs per token, from "
                          "n_layer, d_model, l_seq)", target: target_doc},
        source=f"{SOURCE}, {equation}",
        presets={"deepseek2024": Preset({coef: value[0], exponent: value[1]}, f"{SOURCE}, {equation}")},
        input_ranges={"C": (1e17, 3e20)},
        noise_prior=Prior("HalfNormal", sigma=0.5),
        flops_per_param_token=None,
    )


DEEPSEEK_LAWS = [
    make_compute_power_law("M_opt", "M_base", "a", (0.1715, 0.5243), "eq 4",
                           "compute-optimal model scale, non-embedding FLOPs per token"),
    make_compute_power_law("D_opt", "D_base", "b", (5.8316, 0.4757), "eq 4", "compute-optimal tokens"),
    make_compute_power_law("lr_opt", "eta_base", "eta_exponent", (0.3118, -0.1250), "eq 1",
                           "near-optimal peak learning rate"),
    make_compute_power_law("batch_opt", "B_base", "B_exponent", (0.2920, 0.3271), "eq 1",
                           "near-optimal batch size in tokens"),
]
