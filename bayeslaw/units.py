"""Counts as people write them: 2.8B parameters, 1.4T tokens.

Suffixes K = 1e3, M = 1e6, B = 1e9 (billion), T = 1e12 (trillion), upper or lower case, as in model cards
and papers (Chinchilla 70B on 1.4T tokens). ``parse_count`` reads them; ``human`` writes a count back.
"""

from __future__ import annotations

import math
import re

SUFFIXES = {"K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}
_COUNT = re.compile(r"\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([KMBTkmbt])\s*")


def parse_count(text: object) -> float | None:
    """'2.8B' -> 2.8e9, '350m' -> 3.5e8; None when ``text`` is not a number with one of the suffixes."""
    match = _COUNT.fullmatch(str(text))
    if match is None:
        return None
    return float(match.group(1)) * SUFFIXES[match.group(2).upper()]


def _plain(value: float, digits: int) -> str:
    """``value`` rounded to ``digits`` significant digits, written without an exponent (350, 3.5, 0.25)."""
    rounded = float(f"{value:.{digits}g}")
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:f}".rstrip("0")


def human(value: float, digits: int = 2) -> str:
    """A count in K/M/B/T with ``digits`` significant digits (9.6e10 -> '96B', 1.7e12 -> '1.7T', 3.5e8 ->
    '350M'); below 1,000 the plain number, from 1e15 on scientific notation (FLOPs: '1e+24')."""
    if not math.isfinite(value) or abs(value) >= 1e15:
        return f"{value:.{digits}g}"
    rounded = float(f"{value:.{digits}g}")
    scale, suffix = 1.0, ""
    for name, size in SUFFIXES.items():
        if abs(rounded) >= size:
            scale, suffix = size, name
    if abs(rounded) < 1e3 and abs(value) < 1:
        return f"{value:.{digits}g}"
    return _plain(rounded / scale, digits) + suffix
