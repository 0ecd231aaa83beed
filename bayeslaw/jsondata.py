"""Plain JSON for the command line (``--json``, ``--out FILE.json``): stable keys and a metadata object.

One convention everywhere: every key, at every depth, matches ``^[a-z][a-z0-9_]*$`` (lower case; a name such as a
parameter's ``E`` or a law's is a value, never a key); an interval is one object
``{"median": .., "lo": .., "hi": .., "level": 0.9}`` (``"n_opt": {...}``), a list of such objects sorted by level
when a table shows several levels; a lone quantile is named by it (``chosen regret 90%`` -> ``chosen_regret_q90``);
tables are lists of records; NaN and infinities are ``null``; ``meta`` says what the numbers are (version,
command, law, seed, data sha256, likelihood, discrepancy, levels, units, the compute convention). Each command's
shape is a JSON Schema in ``bayeslaw/schemas``. ``--csv`` and ``--out FILE.csv`` keep flat columns
(``flat_records``: ``N_opt 90% lo`` -> ``N_opt_q05``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).with_name("schemas")
KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_FLAT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: the units of the canonical columns (shared/laws.md): what a law's inputs and target are counted in
UNITS = {"N": "parameters", "D": "tokens", "C": "FLOPs", "U": "unique tokens", "loss": "nats/token"}
_INTERVAL = re.compile(r"^(?:(?P<base>.*?) )?(?P<level>\d+(?:\.\d+)?)% (?P<side>lo|hi)$")
_PERCENT = re.compile(r"^(?P<base>.+?) (?P<pct>\d+(?:\.\d+)?)%$")
_PROBABILITY = re.compile(r"P\(loss<=[^)]*\)")


def quantile_name(q: float) -> str:
    """0.05 -> 'q05', 0.5 -> 'q50', 0.025 -> 'q2_5', 0.975 -> 'q97_5'."""
    pct = round(100 * q, 6)
    return f"q{int(pct):02d}" if pct == int(pct) else "q" + f"{pct:g}".replace(".", "_")


def key(column: Any, prefix: str = "") -> str:
    """A table column or label as a JSON key matching ``KEY``: 'N_opt' -> 'n_opt', 'lpd per run' -> 'lpd_per_run',
    'tokens/param' -> 'tokens_per_param', 'P(loss<=2.3)' -> 'prob_target', 'regret 90%' -> 'regret_q90'."""
    out = flat_key(column, prefix).lower()
    return out if KEY.match(out) else f"x_{out}"


def flat_key(column: Any, prefix: str = "") -> str:
    """A column name for flat tables (CSV): 'N_opt 90% lo' -> 'N_opt_q05', 'loss 5%' -> 'loss_q05', case kept;
    ``prefix`` names a bare '90% lo'."""
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
    return out if _FLAT_KEY.match(out) else f"x_{out}"


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


def flat_records(frame, prefix: str = "") -> list[dict[str, Any]]:
    """A table as flat records for CSV: the index as columns, every column named by ``flat_key``."""
    flat = _flat(frame)
    names = [flat_key(c, prefix) for c in flat.columns]
    if len(set(names)) < len(names):
        raise ValueError(f"columns {list(flat.columns)} give the same key twice")
    return [dict(zip(names, (plain(v) for v in row), strict=True)) for row in flat.itertuples(index=False)]


def _flat(frame):
    return frame.reset_index() if any(n is not None for n in frame.index.names) else frame.reset_index(drop=True)


def _interval_part(column: str, prefix: str) -> tuple[str, float | None, str] | None:
    """'N_opt 90% lo' -> ('N_opt', 0.9, 'lo'); 'N_opt median' -> ('N_opt', None, 'median'); 'loss 5%' ->
    ('loss', 0.05, 'q'); None for any other column."""
    interval = _INTERVAL.match(column)
    if interval:
        return interval["base"] or prefix, round(float(interval["level"]) / 100, 6), interval["side"]
    if column.endswith(" median"):
        return column[: -len(" median")], None, "median"
    percent = _PERCENT.match(column)
    if percent:
        return percent["base"], round(float(percent["pct"]) / 100, 6), "q"
    return None


def records(frame, prefix: str = "") -> list[dict[str, Any]]:
    """A table as a list of records: the index as columns, every column named by ``key``; the columns of one
    central interval ('X median', 'X 90% lo', 'X 90% hi', or 'X 5%' and 'X 95%') become one object
    ``"x": {"median", "lo", "hi", "level"}`` (a list of them by level when there are several levels)."""
    flat = _flat(frame)
    columns = [str(c) for c in flat.columns]
    parts = {c: _interval_part(c, prefix) for c in columns}
    bounds: dict[str, dict[float, dict[str, str]]] = {}
    for column, part in parts.items():
        if part is None or part[1] is None:
            continue
        base, level, side = part
        if side == "q":  # quantiles q and 1 - q bound the central interval of level 1 - 2q
            if level < 0.5 and parts.get(column.replace(f"{level * 100:g}%", f"{(1 - level) * 100:g}%")):
                hi = column.replace(f"{level * 100:g}%", f"{(1 - level) * 100:g}%")
                bounds.setdefault(base, {})[round(1 - 2 * level, 6)] = {"lo": column, "hi": hi}
            continue
        bounds.setdefault(base, {}).setdefault(level, {})[side] = column
    bounds = {b: {lv: s for lv, s in by.items() if set(s) == {"lo", "hi"}} for b, by in bounds.items()}
    bounds = {b: by for b, by in bounds.items() if by}
    medians = {parts[c][0]: c for c in columns if parts[c] is not None and parts[c][2] == "median"}
    used = {c for by in bounds.values() for s in by.values() for c in s.values()}
    used |= {medians[b] for b in bounds if b in medians}
    layout: list[tuple[str, Any]] = []  # (key, column or interval base), in the table's column order
    for column in columns:
        part = parts[column]
        if column not in used:
            layout.append((key(column, prefix), column))
        elif part[0] in bounds and all(k != key(part[0]) for k, _ in layout):
            layout.append((key(part[0]), bounds[part[0]]))
    names = [k for k, _ in layout]
    if len(set(names)) < len(names):
        raise ValueError(f"columns {columns} give the same JSON key twice")
    out = []
    for row in flat.itertuples(index=False):
        values = dict(zip(columns, row, strict=True))
        record = {}
        for name, what in layout:
            if isinstance(what, str):
                record[name] = plain(values[what])
                continue
            base = next(parts[c][0] for c in next(iter(what.values())).values())
            median = plain(values[medians[base]]) if base in medians else None
            intervals = [{"median": median, "lo": plain(values[s["lo"]]), "hi": plain(values[s["hi"]]),
                          "level": level} for level, s in sorted(what.items())]
            record[name] = intervals[0] if len(intervals) == 1 else intervals
        out.append(record)
    return out


def interval(median: float, lo: float, hi: float, level: float) -> dict[str, Any]:
    """One interval as JSON data."""
    return {"median": plain(median), "lo": plain(lo), "hi": plain(hi), "level": level}


def units(names: Any) -> dict[str, str]:
    """The units of the named canonical columns that have one (``UNITS``)."""
    return {n: UNITS[n] for n in names if n in UNITS}


def fit_meta(result: Any, levels: Any = None, flops_per_param_token: float | None = 6.0) -> dict[str, Any]:
    """What ``meta`` says of a fit (a FitResult or a catalogue posterior): law, data sha256, likelihood,
    discrepancy kind, levels, units and the compute convention C = k N D."""
    law = result.law
    runs = getattr(result, "runs", None)
    discrepancy = getattr(result, "discrepancy", None)
    return {"law": law.name,
            "data_sha256": runs.digest() if runs is not None and hasattr(runs, "digest") else None,
            "likelihood": getattr(result, "likelihood", None),
            "discrepancy": getattr(discrepancy, "kind", None),
            "levels": list(levels) if levels is not None else None,
            "units": {key(k): v for k, v in units([*law.inputs, "C", law.target]).items()},
            "compute": {"flops_per_param_token": flops_per_param_token}}


def meta(command: str, *, seed: int | None = None, inputs: Mapping[str, Any] | None = None,
         outputs: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The metadata object every command's JSON carries: package version, command, seed, the paths read
    (``inputs``) and, when a command wrote files, their paths (``outputs``), then ``extra`` (``fit_meta``;
    units are keyed as the records' columns are, ``{"n": "parameters", "loss": "nats/token"}``)."""
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
