"""Runs the fit's own likelihood finds unlikely: listed for review, never dropped.

A run is outlying when its residual on log(target) from the posterior-median fit,
r_i = log y_i - median_s log f(theta_s; x_i), lies in the outer ``level`` (two-sided) of the fitted
likelihood at its noise parameters' posterior medians (for the Student-t: 2 P(T_nu > |r_i| / sigma)).
Among n runs from the model itself about ``level`` x n are outlying by chance, which the summary says.
On the raw Chinchilla table (245 runs) at level 0.01 these are exactly the 5 runs Besiroglu et al.
(2024) drop; on the 240 they keep, 4 (about 2.4 expected by chance).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bayeslaw.likelihoods import get_likelihood

LEVEL = 0.01


def outlying_runs(fit: Any, level: float = LEVEL) -> pd.DataFrame:
    """The outlying runs of ``fit``, most outlying first: row, the law's inputs, target, residual (log
    target minus the median fit) and tail (the two-sided tail probability under the likelihood)."""
    from bayeslaw.fit import median_log_mean

    law, runs = fit.law, fit.runs
    family = get_likelihood(fit.likelihood)
    residual = np.log(runs.target) - median_log_mean(law, fit.posterior, runs.inputs)  # in blocks of runs
    noise = {name: float(np.median(fit.posterior[name].values)) for name in family.params}
    tail = family.tail(residual, noise)
    table = runs.frame[[*law.inputs, law.target]].assign(residual=residual, tail=tail)
    table.index.name = "row"
    return table[table["tail"] < level].sort_values("tail")


def describe(fit: Any, level: float = LEVEL, exclude_hint: bool = False,
             table: pd.DataFrame | None = None) -> str | None:
    """One line naming the outlying runs (``table``, else ``outlying_runs(fit, level)``) and how many chance
    alone would give (with ``exclude_hint`` the command line that leaves them out); None when there are none."""
    table = outlying_runs(fit, level) if table is None else table
    if table.empty:
        return None
    rows = ",".join(str(r) for r in sorted(table.index))
    residuals = ", ".join(f"{r:+.3g}" for r in table["residual"][:5])
    return (f"{len(table)} run(s) lie in the outer {level:.0%} of the fit's {fit.likelihood} likelihood (about "
            f"{level * len(fit.runs):.1f} expected by chance): rows {rows} (residuals {residuals}"
            f"{', ...' if len(table) > 5 else ''} on log {fit.law.target}); kept in the fit"
            + (f"; --exclude-rows {rows} leaves them out" if exclude_hint else ""))
