"""Choosing runs by a rule, with no eval: ``C<=1e21``, ``N>=70M and D<1.4T``, ``C<1e19 or C>1e21``.

    rule      := clause ("or" clause)*          ("and" binds tighter, as in Python; no parentheses)
    clause    := condition ("and" condition)*
    condition := COLUMN OP NUMBER               OP: < <= > >= == !=; NUMBER finite, may carry K/M/B/T

COLUMN is a column of the runs or one the law's compute convention derives (C = 6 N D). Anything else,
names with dots or calls included, is refused with the part that could not be read.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bayeslaw.errors import BayeslawError
from bayeslaw.units import parse_count

OPS = {"<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}
_CONDITION = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*([^\s<>=!]+)\s*")
_WORDS = re.compile(r"\s+(and|or)\s+", re.IGNORECASE)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Condition:
    """``column op value``, e.g. C > 1e21."""

    column: str
    op: str
    value: float

    @classmethod
    def parse(cls, text: str, noun: str = "condition", ops: Sequence[str] = tuple(OPS)) -> Condition:
        """Read ``COLUMN OP NUMBER``; errors name the ``noun`` ('where', 'holdout') and the text."""
        match = _CONDITION.fullmatch(str(text))
        if match is None or match.group(2) not in ops:
            raise BayeslawError(f"cannot read {noun} '{_short(str(text).strip())}'; write COLUMN OP NUMBER with OP "
                                f"one of {' '.join(ops)}, e.g. 'C>1e21'")
        number = match.group(3)
        try:
            value = float(number)
        except ValueError:
            value = parse_count(number)
            if value is None:
                raise BayeslawError(f"{noun} '{_short(str(text).strip())}': '{_short(number)}' is not a number "
                                    "(e.g. 1e21, 70M, 1.4T)") from None
        if not np.isfinite(value):
            raise BayeslawError(f"{noun} '{_short(str(text).strip())}': the threshold must be a finite number")
        return cls(match.group(1), match.group(2), value)

    def mask(self, columns: dict[str, np.ndarray], noun: str = "condition") -> np.ndarray:
        """True where the runs meet the condition; ``columns`` as ``holdout.columns_of`` gives them."""
        if self.column not in columns:
            raise BayeslawError(f"{noun} column '{_short(self.column)}' is not among the runs' columns "
                                f"({', '.join(columns)})")
        return OPS[self.op](columns[self.column], self.value)

    def __str__(self) -> str:
        text = f"{self.value:g}"
        return f"{self.column}{self.op}{text if float(text) == self.value else repr(self.value)}"


@dataclass(frozen=True)
class Where:
    """Conditions in disjunctive form: the runs meeting every condition of at least one clause."""

    clauses: tuple[tuple[Condition, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Where:
        if not isinstance(text, str) or not text.strip():
            raise BayeslawError("where: give a rule such as 'C<=1e21'")
        clauses, current = [], []
        parts = _WORDS.split(text.strip())
        for i, part in enumerate(parts):
            if i % 2:  # a joining word
                if part.lower() == "or":
                    clauses.append(tuple(current))
                    current = []
                continue
            current.append(Condition.parse(part, "where"))
        clauses.append(tuple(current))
        return cls(tuple(clauses))

    def mask(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(columns.values())))
        out = np.zeros(n, dtype=bool)
        for clause in self.clauses:
            keep = np.ones(n, dtype=bool)
            for condition in clause:
                keep &= condition.mask(columns, "where")
            out |= keep
        return out

    def __str__(self) -> str:
        return " or ".join(" and ".join(map(str, clause)) for clause in self.clauses)


def chosen_mask(runs, where: str | None = None, exclude_rows: Sequence[int] = ()) -> np.ndarray:
    """True for the runs meeting ``where`` (see the module) and not among ``exclude_rows`` (0-based, as the runs
    are numbered). Refuses rows that do not exist and a choice that leaves no runs."""
    from bayeslaw.holdout import columns_of

    keep = np.ones(len(runs), dtype=bool) if where is None else Where.parse(where).mask(columns_of(runs))
    rows = [int(r) for r in exclude_rows]
    missing = [r for r in rows if not 0 <= r < len(runs)]
    if missing:
        raise BayeslawError(f"exclude rows: row {missing[0]} does not exist (the runs are rows 0 to {len(runs) - 1})")
    keep[rows] = False
    if not keep.any():
        raise BayeslawError(f"where '{where}' and the excluded rows leave none of the {len(runs)} runs")
    return keep


def choose_runs(runs, where: str | None = None, exclude_rows: Sequence[int] = ()):
    """The runs ``chosen_mask`` keeps, renumbered from 0."""
    from bayeslaw.holdout import split_runs

    chosen, _ = split_runs(runs, ~chosen_mask(runs, where, exclude_rows))
    return chosen
