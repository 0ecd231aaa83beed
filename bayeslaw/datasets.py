"""Readers for the published tables of training runs that scaling-law papers are fitted to.

bayeslaw ships none of these tables; each reader takes the path of a file the user has and applies
the published protocol that turns it into runs (one row per run, canonical columns):

- ``chinchilla_runs``: Hoffmann et al. 2022's runs as extracted by Besiroglu et al. 2024
  (arXiv:2404.10102): the 5 runs with the largest loss dropped (240 kept); N, C, loss.
- ``frantar_t5_runs``: Frantar et al. 2023 (arXiv:2309.08520) T5/C4 runs at several sparsities:
  N = 24 x 12 x 768^2 x scale x (1 - S) non-zero non-embedding parameters, D = steps x 65,536 tokens.
- ``datablations_runs``: Muennighoff et al. 2023 (arXiv:2305.16264) loss curves, reduced to the final
  checkpoint of each run (one run = data, num_params, epochs, tokens_per_epoch, model_args); N, D,
  U (unique tokens), loss, epochs, and the run's lowest loss on the way.
- ``datablations_curves``: the same runs' every checkpoint (one row per checkpoint, with a ``run`` id), for
  fitting learning curves (``bayeslaw.curves``).
"""

from __future__ import annotations

import os

import pandas as pd

from bayeslaw.errors import DataError
from bayeslaw.laws.sparse import T5_TOKENS_PER_STEP
from bayeslaw.units import parse_count

T5_BASE_NONEMBEDDING = 24 * 12 * 768**2  # T5 base: 24 layers of 12 d^2 weights, d = 768
DATABLATIONS_RUN = ["data", "num_params", "epochs", "tokens_per_epoch", "model_args"]
# the columns that identify each published table as it is distributed, and the reader that turns it into runs
SIGNATURES = {
    "chinchilla_runs": ("Model Size", "Training FLOP", "loss"),
    "frantar_t5_runs": ("sparsity", "scale", "val-loss", "steps"),
    "datablations_runs": ("num_params", "tokens_per_epoch", "token_num", "epochs"),
}


def recognise(columns) -> str | None:
    """The reader in this module for a table with these columns (a published table as distributed), else None."""
    have = {str(c) for c in columns}
    return next((name for name, needs in SIGNATURES.items() if set(needs) <= have), None)


def _read(path: str | os.PathLike, columns: list[str]) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; this reader expects {', '.join(columns)}")
    return frame


def chinchilla_runs(path: str | os.PathLike, drop_largest: int = 5) -> pd.DataFrame:
    """The Chinchilla runs with the ``drop_largest`` largest losses removed (Besiroglu et al.'s protocol).

    Columns as published ("Model Size" = N, "Training FLOP" = C, loss); bayeslaw maps them on loading.
    """
    frame = _read(path, ["Model Size", "Training FLOP", "loss"])
    return frame.sort_values("loss").iloc[: len(frame) - drop_largest].reset_index(drop=True)


def frantar_t5_runs(path: str | os.PathLike) -> pd.DataFrame:
    """The 48 T5/C4 runs with sparsity S, non-zero parameters N, tokens D and validation loss."""
    raw = _read(path, ["sparsity", "scale", "val-loss", "steps"])
    return pd.DataFrame({
        "S": raw["sparsity"],
        "N": T5_BASE_NONEMBEDDING * raw["scale"] * (1 - raw["sparsity"]),
        "D": raw["steps"] * T5_TOKENS_PER_STEP,
        "loss": raw["val-loss"],
    })


def parameters_from_label(label: str) -> float:
    """Parameter count from a size label as datablations writes it: '2.8B' -> 2.8e9 (``bayeslaw.units``)."""
    value = parse_count(label)
    if value is None:
        raise DataError(f"not a model size label like '2.8B': {label!r}")
    return value


def datablations_runs(path: str | os.PathLike, data: str = "c4") -> pd.DataFrame:
    """The final checkpoint of each datablations run on ``data`` ("c4" or "oscar"), sorted by N and epochs.

    Columns: N (parameters), D (tokens seen, token_num), U (unique tokens, tokens_per_epoch), loss,
    epochs, and min_loss (the lowest loss over the run's checkpoints).
    """
    frame = _read(path, [*DATABLATIONS_RUN, "token_num", "loss"])
    available = sorted(frame["data"].unique())
    frame = frame[frame["data"] == data]
    if frame.empty:
        raise DataError(f"{path}: no runs with data '{data}'; available: {', '.join(available)}")
    runs = frame.groupby(DATABLATIONS_RUN, sort=True)
    final = frame.loc[runs["token_num"].idxmax()]
    lowest = runs["loss"].min()
    return pd.DataFrame({
        "N": final["num_params"].map(parameters_from_label).to_numpy(),
        "D": final["token_num"].to_numpy(dtype=float),
        "U": final["tokens_per_epoch"].to_numpy(dtype=float),
        "loss": final["loss"].to_numpy(),
        "epochs": final["epochs"].to_numpy(),
        "min_loss": lowest.loc[pd.MultiIndex.from_frame(final[DATABLATIONS_RUN])].to_numpy(),
    }).sort_values(["N", "epochs"], ignore_index=True)


def datablations_curves(path: str | os.PathLike, data: str = "c4") -> pd.DataFrame:
    """Every checkpoint of each datablations run on ``data``: columns run (e.g. "2.8B-4ep"), N, D (tokens seen
    so far), U, loss, epochs; sorted by run and D. Each run's cosine schedule ends at its last checkpoint."""
    frame = _read(path, [*DATABLATIONS_RUN, "token_num", "loss"])
    available = sorted(frame["data"].unique())
    frame = frame[frame["data"] == data]
    if frame.empty:
        raise DataError(f"{path}: no runs with data '{data}'; available: {', '.join(available)}")
    run = frame["num_params"].astype(str) + "-" + frame["epochs"].astype(str) + "ep"
    if run.groupby(frame.groupby(DATABLATIONS_RUN, sort=False).ngroup().to_numpy()).nunique().max() > 1 or \
            frame.groupby(DATABLATIONS_RUN).ngroups != run.nunique():
        raise DataError(f"{path}: runs on '{data}' are not told apart by size and epochs")
    out = pd.DataFrame({
        "run": run.to_numpy(),
        "N": frame["num_params"].map(parameters_from_label).to_numpy(),
        "D": frame["token_num"].to_numpy(dtype=float),
        "U": frame["tokens_per_epoch"].to_numpy(dtype=float),
        "loss": frame["loss"].to_numpy(),
        "epochs": frame["epochs"].to_numpy(),
    })
    out = out.drop_duplicates(["run", "D"], keep="last")
    return out.sort_values(["N", "epochs", "D"], ignore_index=True)
