"""Synthetic ladders: the small designs most users have, drawn from a law's published constants.

``ladder(law, sizes=4)`` lays out ``sizes`` model sizes, geometrically spaced from 5e7 to 1.2e9
parameters, each trained for ``multiples`` x 20 tokens per parameter (0.5x to 16x by default), so
D = 20 m N and C = 6 N D; the law's other inputs cycle through a few values over the ladder (unique
tokens as 1, 3, 10 or 30 epochs; sparsity 0 to 0.875; 1 to 128 experts; granularity 1 to 16). The
target is the law at its first preset times exp(noise z), z ~ Normal(0, 1).

Used to check that default fits converge on what people actually run (tests, benchmarks) and to try
a design before paying for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeslaw.errors import BayeslawError
from bayeslaw.laws import Law, get_law

MULTIPLES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
SIZES = (5e7, 1.2e9)  # smallest and largest model, parameters
TOKENS_PER_PARAM = 20.0
CYCLES = {
    "U": (1.0, 3.0, 10.0, 30.0),  # epochs: U = D / epochs
    "S": (0.0, 0.5, 0.75, 0.875),
    "experts": (1.0, 8.0, 32.0, 128.0),
    "granularity": (1.0, 2.0, 8.0, 16.0),
}


def ladder(law: Law | str, sizes: int = 4, multiples: tuple[float, ...] = MULTIPLES, noise: float = 0.01,
           seed: int = 0, preset: str | None = None, span: tuple[float, float] = SIZES) -> pd.DataFrame:
    """Runs (N, D, C, the law's other inputs, target) on a ladder of model sizes (module docstring)."""
    law = get_law(law)
    if sizes < 2 or not multiples:
        raise BayeslawError(f"a ladder needs at least 2 sizes and one token multiple, got {sizes} and {multiples}")
    name = preset or next(iter(law.presets))
    if name not in law.presets:
        raise BayeslawError(f"law '{law.name}' has no preset '{name}'; presets: {', '.join(law.presets)}")
    rows = []
    for i, n in enumerate(np.geomspace(*span, sizes)):
        for j, m in enumerate(multiples):
            d = TOKENS_PER_PARAM * m * n
            row = {"N": n, "D": d, "C": 6.0 * n * d}
            k = (i + j) % 4  # every size sees every value of the cycled inputs
            for x, values in CYCLES.items():
                if x in law.inputs:
                    row[x] = d / values[k] if x == "U" else values[k]
            rows.append(row)
    frame = pd.DataFrame(rows)
    clean = law.evaluate(law.presets[name].values, {x: frame[x].to_numpy() for x in law.inputs})
    frame[law.target] = clean * np.exp(noise * np.random.default_rng(seed).standard_normal(len(frame)))
    return frame


def learning_curves(law: Law | str, sizes: int = 3, multiples: tuple[float, ...] = (1.0, 4.0),
                    checkpoints: int = 40, seed: int = 0, preset: str | None = None, span: tuple[float, float] = SIZES,
                    noise: dict[str, float] | None = None, schedule: str = "cosine") -> pd.DataFrame:
    """Checkpoints of the runs of ``ladder`` (one row each: run, N, D so far, the law's other inputs, target),
    drawn from the curve model of ``bayeslaw.curves`` with the given ``noise`` parameters (defaults below):
    ``checkpoints`` per run, geometrically spaced from 2% to 100% of the run's tokens."""
    from bayeslaw.curves import decay_left

    law = get_law(law)
    values = {"sigma": 0.004, "schedule_sd": 0.01, "run_sd": 0.005, "corr_length": 0.3, "schedule_gap": 0.04}
    values |= dict(noise or {})
    name = preset or next(iter(law.presets))
    runs = ladder(law, sizes, multiples, noise=0.0, seed=seed, preset=name, span=span)
    rng = np.random.default_rng(seed)
    frames = []
    for i, run in runs.iterrows():
        progress = np.geomspace(0.02, 1.0, checkpoints)
        frame = pd.DataFrame({"run": f"run{i}", **{k: run[k] for k in runs.columns if k != law.target}},
                             index=np.arange(checkpoints))
        frame["D"] = run["D"] * progress
        if "C" in frame:
            frame["C"] = 6.0 * frame["N"] * frame["D"]
        step = np.r_[np.inf, np.diff(np.log(progress))]
        phi = np.exp(-step / values["corr_length"])
        z = np.empty(checkpoints)
        for j in range(checkpoints):
            z[j] = (phi[j] * z[j - 1] if j else 0.0) + np.sqrt(1 - phi[j] ** 2) * rng.standard_normal()
        h = decay_left(progress, schedule)
        offset = values["run_sd"] * rng.standard_normal()
        clean = law.evaluate(law.presets[name].values, {x: frame[x].to_numpy() for x in law.inputs})
        frame[law.target] = clean * np.exp(values["schedule_gap"] * h + offset
                                           + (values["sigma"] + values["schedule_sd"] * h) * z)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
