"""Plain JSON for the command line (``--json``, ``--out FILE.json``): stable keys and a metadata object.

One convention everywhere: keys are letters, digits and ``_`` (no spaces, no ``%``, no rule inside a key);
a central interval's ends are named by their quantile (``N_opt 90% lo`` -> ``N_opt_q05``, ``90% hi`` ->
``q95``, ``loss 5%`` -> ``loss_q05``, 2.5% -> ``q2_5``); a median is ``X_median``; tables are lists of
records; NaN and infinities are ``null``. Each command's shape is a JSON Schema in ``bayeslaw/schemas``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).with_name("schemas")
KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_INTERVAL = re.compile(r"^(?:(?P<base>.*?) )?(?P<level>\d+(?:\.\d+)?)% (?P<side>lo|hi)$")
_PERCENT = re.compile(r"^(?P<base>.+?) (?P<pct>\d+(?:\.\d+)?)%$")
_PROBABILITY = re.compile(r"P\(loss<=[^)]*\)")


def quantile_name(q: float) -> str:
    """0.05 -> 'q05', 0.5 -> 'q50', 0.025 -> 'q2_5', 0.975 -> 'q97_5'."""
    pct = round(100 * q, 6)
    return f"q{int(pct):02d}" if pct == int(pct) else "q" + f"{pct:g}".replace(".", "_")


def key(column: Any, prefix: str = "") -> str:
    """A table column or label as a JSON key: 'N_opt 90% lo' -> 'N_opt_q05', 'lpd per run' -> 'lpd_per_run',
    'tokens/param' -> 'tokens_per_param', 'P(loss<=2.3)' -> 'prob_target'; ``prefix`` names a bare '90% lo'."""
    text = str(column)
    interval = _INTERVAL.match(text)
    percent = _PERCENT.match(text)
    if interval:
        level = float(interval["level"]) / 100
        q = (1 - level) / 2 if interval["side"] == "lo" else (1 + level) / 2
        text = f"{interval['base'] or prefix} {quantile_name(q)}"
    elif percent:
        text = f"{percent['base']} {quantile_name(float(percent['pct']) / 100)}"
    text = _PROBABILITY.sub("prob_target", text.replace("tokens/param", "tokens_per_param"))
    out = re.sub(r"[^A-Za-z0-9]+", "_", text.replace("%", "")).strip("_")
    return out if KEY.match(out) else f"x_{out}"


def plain(value: Any) -> Any:
    """``value`` as JSON data: numpy scalars and arrays as numbers and lists, NaN/inf as None, dict keys by ``key``,
    DataFrames as records (the index a column)."""
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return records(value)
    if isinstance(value, Mapping):
        return {key(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray | pd.Series):
        return [plain(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def records(frame, prefix: str = "") -> list[dict[str, Any]]:
    """A table as a list of records: the index as columns (named as they are), every column named by ``key``."""
    flat = frame.reset_index() if any(n is not None for n in frame.index.names) else frame.reset_index(drop=True)
    names = [key(c, prefix) for c in flat.columns]
    if len(set(names)) < len(names):
        raise ValueError(f"columns {list(flat.columns)} give the same JSON key twice")
    return [dict(zip(names, (plain(v) for v in row), strict=True)) for row in flat.itertuples(index=False)]


def meta(command: str, *, seed: int | None = None, inputs: Mapping[str, Any] | None = None,
         outputs: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The metadata object every command's JSON carries: package version, command, seed, the paths read
    (``inputs``) and, when a command wrote files, their paths (``outputs``); None values are left out."""
    from bayeslaw import __version__

    def paths(given: Mapping[str, Any] | None) -> dict[str, str]:
        return {k: str(v) for k, v in (given or {}).items() if v is not None}

    out = {"bayeslaw": __version__, "command": command, "seed": seed, "inputs": paths(inputs)}
    if paths(outputs):
        out["outputs"] = paths(outputs)
    return out | {k: plain(v) for k, v in extra.items()}


def document(command: str, results: Mapping[str, Any], **meta_fields: Any) -> dict[str, Any]:
    """``{"meta": {...}, **results}`` with every value made plain."""
    return {"meta": meta(command, **meta_fields), **{key(k): plain(v) for k, v in results.items()}}


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, allow_nan=False)


def schema(command: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``command``'s JSON."""
    return json.loads((SCHEMAS / f"{command}.json").read_text())
