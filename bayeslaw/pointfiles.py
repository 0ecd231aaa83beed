"""Points and budgets read from CSV files, and result tables written to .csv or .json (atomically).

``read_points``: one column per input of the law (named as the law names them: N, D, C, U, S, ...), one row per
point; ``read_budgets``: a column ``budget`` (or the only column of a one-column file) of FLOP budgets.
``write_result``: a table to ``.csv``, or a JSON document to ``.json``, through :mod:`bayeslaw.files`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayeslaw._search import check_budgets
from bayeslaw.errors import BayeslawError, DataError

OUT_SUFFIXES = (".csv", ".json")


def _read(path: str | Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; expected a CSV with a header row") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: not a readable CSV ({' '.join(str(err).split())})") from None
    if frame.empty:
        raise DataError(f"{path}: no rows under the header")
    return frame


def _numbers(frame: pd.DataFrame, column: str, path: str | Path) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise DataError(f"{path}: column '{column}': line {bad[0] + 2} is not a finite number "
                        f"('{frame[column].iloc[bad[0]]}')")
    return values


def read_points(path: str | Path, inputs: tuple[str, ...] | list[str]) -> dict[str, list[float]]:
    """The points in the CSV at ``path``: columns named like the law's ``inputs`` (C may stand for D where the law
    derives it); every value a finite number. An unknown column is refused, naming it and the inputs."""
    frame = _read(path)
    allowed = [*inputs, *(["C"] if "C" not in inputs else [])]
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        raise DataError(f"{path}: column '{unknown[0]}' is not an input of the law; name the columns "
                        f"{', '.join(allowed)}")
    return {column: _numbers(frame, column, path).tolist() for column in frame.columns}


def read_budgets(path: str | Path) -> np.ndarray:
    """FLOP budgets from the CSV at ``path``: its column ``budget``, or its only column (``check_budgets``'s rules)."""
    frame = _read(path)
    if "budget" in frame.columns:
        column = "budget"
    elif frame.shape[1] == 1:
        column = frame.columns[0]
    else:
        raise DataError(f"{path}: name the column of budgets 'budget' (the file has {', '.join(frame.columns)})")
    if frame.shape[1] == 1 and column != "budget" and pd.to_numeric(pd.Series([column]), errors="coerce").notna()[0]:
        raise DataError(f"{path}: the first line is read as the header; start the file with a line 'budget'")
    return check_budgets(_numbers(frame, column, path), f"{path}: column '{column}'")


def write_result(path: str | Path, table: pd.DataFrame, document: Mapping[str, Any]) -> Path:
    """``table`` as CSV, or ``document`` as JSON, to ``path`` by its suffix; atomically (no half-written file)."""
    from bayeslaw.files import write_bytes_atomic

    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        data = table.to_csv(index=table.index.name is not None).encode()
    elif suffix == ".json":
        data = (json.dumps(document, indent=2, allow_nan=False) + "\n").encode()
    else:
        raise BayeslawError(f"cannot write a result to '{path}': use a .csv or .json file name")
    return write_bytes_atomic(path, data)
