"""Law family module: being filled in (issue 4)."""

from __future__ import annotations

from bayeslaw.laws.base import Law

BNSL_LAWS: list[Law] = []
