"""Law family module: being filled in (issue 4)."""

from __future__ import annotations

from bayeslaw.laws.base import Law

SPARSE_LAWS: list[Law] = []
