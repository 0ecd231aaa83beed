"""The embedded default: a Chinchilla-like sweep of runs generated from published constants.

``chinchilla_sweep`` lays out isoFLOP profiles (model sizes around the compute-optimal N at each
budget, D = C / (6 N)) and draws losses from the Chinchilla law with seeded log-normal noise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeslaw.laws import get_law
from bayeslaw.laws.chinchilla import chinchilla_optimum

DEFAULT_BUDGETS = (1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21)


def chinchilla_sweep(
    preset: str = "besiroglu2024",
    budgets: tuple[float, ...] = DEFAULT_BUDGETS,
    sizes_per_budget: int = 9,
    noise: float = 0.01,
    seed: int = 0,
) -> pd.DataFrame:
    """Runs (N, D, C, loss) on isoFLOP profiles, loss = L(N, D) * exp(noise * z), z ~ Normal(0, 1)."""
    law = get_law("chinchilla")
    params = law.presets[preset].values
    rng = np.random.default_rng(seed)
    rows = []
    for budget in budgets:
        n_opt, _ = chinchilla_optimum(params, budget)
        for n in n_opt * np.logspace(-1, 1, sizes_per_budget):
            d = budget / (6 * n)
            rows.append({"N": n, "D": d, "C": budget})
    frame = pd.DataFrame(rows)
    clean = law.evaluate(params, {"N": frame["N"].to_numpy(), "D": frame["D"].to_numpy()})
    frame["loss"] = clean * np.exp(noise * rng.standard_normal(len(frame)))
    return frame
