"""The four model families of the pooling benchmark as one table with a ``family`` column.

chinchilla: the kept Chinchilla runs (``datasets.chinchilla_runs``; N, D = C / (6 N)); c4 and oscar: the
final checkpoints of the datablations runs (``datasets.datablations_runs``); t5: the dense (S = 0) Frantar T5
runs (``datasets.frantar_t5_runs``). Each family's held-out runs are its largest model sizes (``HELD_OUT``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from bayeslaw import datasets

FAMILIES = ("chinchilla", "c4", "oscar", "t5")
# a family's runs at its largest sizes: Chinchilla N > 5e9, datablations 8.7B, Frantar's largest scale
HELD_OUT = {"chinchilla": lambda n: n > 5e9, "c4": lambda n: n >= 8e9, "oscar": lambda n: n >= 8e9,
            "t5": lambda n: n >= n.max()}


def four_families(data_dir: str | os.PathLike) -> pd.DataFrame:
    """Columns family, N, D, U (unique tokens: D where no data is repeated), loss and held_out (the family's
    largest sizes), from the files in ``data_dir``."""
    data_dir = Path(data_dir)
    chin = datasets.chinchilla_runs(data_dir / "chinchilla_epoch_extracted.csv")
    tokens = chin["Training FLOP"] / (6.0 * chin["Model Size"])
    parts = [pd.DataFrame({"family": "chinchilla", "N": chin["Model Size"], "D": tokens, "U": tokens,
                           "loss": chin["loss"]})]
    for name in ("c4", "oscar"):
        runs = datasets.datablations_runs(data_dir / "datablations_losses.csv", name)
        parts.append(pd.DataFrame({"family": name, "N": runs["N"], "D": runs["D"],
                                   "U": np.minimum(runs["U"], runs["D"]), "loss": runs["loss"]}))
    t5 = datasets.frantar_t5_runs(data_dir / "frantar_t5_sparsity.csv")
    t5 = t5[t5["S"] == 0]
    parts.append(pd.DataFrame({"family": "t5", "N": t5["N"], "D": t5["D"], "U": t5["D"], "loss": t5["loss"]}))
    table = pd.concat(parts, ignore_index=True)
    held = np.zeros(len(table), dtype=bool)
    for name, rule in HELD_OUT.items():
        rows = (table["family"] == name).to_numpy()
        held[rows] = rule(table.loc[rows, "N"].to_numpy())
    return table.assign(held_out=held)
