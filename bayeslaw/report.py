"""report(): one self-contained HTML page about a fit.

It opens with the answer: for each budget the compute-optimal N and D and the loss there, medians with
90% intervals in human units (96B parameters, 1.7T tokens), and whether the fit converged. Then the
figures of :mod:`bayeslaw.plots` embedded as base64 PNG, then the details: the law and the fit, a
summary of the runs, convergence diagnostics, the parameter table (``Fit.summary``) and the plan's
full table. Nothing is loaded from elsewhere: no scripts, no stylesheets, no remote images. Written
atomically.
"""

from __future__ import annotations

import base64
import html
import io
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayeslaw import plots
from bayeslaw._search import check_budgets
from bayeslaw.errors import BayeslawError
from bayeslaw.fanout import eta_line
from bayeslaw.files import check_writable, write_bytes_atomic
from bayeslaw.plan import plan
from bayeslaw.posterior import as_posterior
from bayeslaw.units import human

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } img { max-width: 100%; display: block; margin: 0.6em 0; }
.bad { color: #b00020; font-weight: bold; } .good { color: #1b6e20; font-weight: bold; } .note { color: #555; }
#answer { background: #fff4d6; border: 2px solid #e0a800; padding: 0.6em 1.2em; font-size: 1.15em; }
#answer p { margin: 0.4em 0; }
"""


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float | np.floating) else str(value)


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(float_format=_number, border=0, na_rep="–")


def _figure(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def default_report_budgets(fit: Any) -> list[float]:
    """10, 100 and 1000 times the compute of the largest run, rounded to one significant digit."""
    top = float(np.max(plots.observed_runs(fit).get("C", [np.nan])))
    if not np.isfinite(top):
        return []
    return [float(f"{top * f:.0e}") for f in (10, 100, 1000)]


def data_summary(fit: Any) -> pd.DataFrame:
    """Smallest, median and largest of each input (with C = k N D where the law says so) and the target."""
    values = plots.observed_runs(fit)
    return pd.DataFrame({"smallest": {k: float(np.min(v)) for k, v in values.items()},
                         "median": {k: float(np.median(v)) for k, v in values.items()},
                         "largest": {k: float(np.max(v)) for k, v in values.items()},
                         "unit": {k: fit.law.conventions.get(k, "") for k in values}})


def _diagnostics(fit: Any) -> str:
    d = fit.diagnostics
    rows = pd.DataFrame({"value": {"largest R-hat": d.max_rhat, "smallest bulk ESS": d.min_ess_bulk,
                                   "smallest tail ESS": d.min_ess_tail, "divergent transitions": d.divergences,
                                   "share at maximum tree depth": d.treedepth_fraction,
                                   "chains x draws": f"{d.chains} x {d.draws}"}})
    verdict = ('<p class="good">converged</p>' if d.converged else '<p class="bad">NOT CONVERGED</p><ul>'
               + "".join(f"<li>{html.escape(p)}</li>" for p in d.problems) + "</ul>")
    return verdict + _table(rows)


def _figures(fit: Any, budgets: list[float], progress: Callable[[str], Any] | None = None) -> str:
    fitted = as_posterior(fit).fitted_ranges.get("C")
    span = None if fitted is None else [fitted[0], max(fitted[1] * 1e3, *budgets)]
    makers = [
        ("isoFLOP profiles", lambda: plots.isoflop(fit)),
        ("compute-optimal frontier", lambda: plots.frontier(fit, span)),
        ("extrapolation", lambda: plots.extrapolation(fit, ([fitted[0], *budgets] if budgets and fitted else None))),
        ("parameter posteriors", lambda: plots.pairs(fit)),
    ]
    parts, start = [], time.perf_counter()
    for number, (title, make) in enumerate(makers, 1):
        parts.append(f"<h3>{html.escape(title)}</h3>")
        try:
            parts.append(_figure(make()))
        except BayeslawError as err:
            parts.append(f'<p class="note">not available for this law: {html.escape(str(err))}</p>')
        if progress is not None:
            progress(f"{title}: " + eta_line(number, len(makers), time.perf_counter() - start, what="figures"))
    return "\n".join(parts)


def _interval(median: float, lo: float, hi: float, count: bool) -> str:
    show = human if count else (lambda v: f"{v:.3g}")
    return f"{show(median)} [{show(lo)}, {show(hi)}]"


def _planned(fit: Any, budgets: Sequence[float]) -> Any:
    """The plan for ``budgets``, the BayeslawError that refused it, or None without budgets."""
    if not budgets:
        return None
    try:
        return plan(fit, list(budgets))
    except BayeslawError as err:
        return err


def headline(fit: Any, budgets: Sequence[float], planned: Any = None) -> list[str]:
    """The answer in sentences: per budget, N, D, tokens per parameter and the loss at the optimum (posterior
    medians with 90% intervals, counts in K/M/B/T), then whether the fit converged. ``planned``: the plan
    for ``budgets`` when already made (``_planned``)."""
    lines = []
    planned = _planned(fit, budgets) if planned is None else planned
    if isinstance(planned, BayeslawError):
        lines.append(f"No compute-optimal plan for law {fit.law.name}: {planned}")
    elif planned is not None:
        table = planned.summary((0.9,))
        for budget, row in table.iterrows():
            parts = [f"{name} {_interval(row[f'{col} median'], row[f'{col} 90% lo'], row[f'{col} 90% hi'], True)}"
                     for name, col in (("N", "N_opt"), ("D", "D_opt"))]
            lines.append(f"At {budget:.3g} FLOPs: {parts[0]} parameters, {parts[1]} tokens "
                         f"({row['tokens_per_param median']:.3g} tokens per parameter), {fit.law.target} "
                         f"{_interval(row['loss median'], row['loss 90% lo'], row['loss 90% hi'], False)}.")
        lines.append("Posterior medians [90% intervals], with what they carry listed under Plan.")
    d = fit.diagnostics
    if d.converged:
        lines.append(f"The fit converged (largest R-hat {d.max_rhat:.3f}, smallest bulk ESS {d.min_ess_bulk:.0f}, "
                     f"{d.divergences} divergent transitions).")
    else:
        lines.append("The fit did NOT converge: " + "; ".join(d.problems) + ". Do not act on these numbers yet.")
    return lines


def _outliers(fit: Any) -> str:
    from bayeslaw.outliers import describe, outlying_runs

    table = outlying_runs(fit)
    line = describe(fit, table=table)
    if line is None:
        family = html.escape(fit.likelihood)
        return f'<p class="note">No run lies in the outer 1% of the fit\'s {family} likelihood.</p>'
    return f"<p>{html.escape(line)}.</p>" + _table(table)


def _answer(fit: Any, budgets: list[float], planned: Any) -> str:
    rows = "".join(f"<p>{html.escape(line)}</p>" for line in headline(fit, budgets, planned))
    return f'<section id="answer">{rows}</section>'


def _plan(made: Any) -> str:
    if made is None:
        return '<p class="note">no budgets given</p>'
    if isinstance(made, BayeslawError):
        return f'<p class="note">no plan for this law: {html.escape(str(made))}</p>'
    table = made.summary((0.5, 0.9)).T
    table.columns = [f"C = {b:.3g} FLOPs" for b in table.columns]
    notes = "; ".join(made.notes)
    return f'<p class="note">posterior median and central intervals per budget; {html.escape(notes)}</p>' + \
        _table(table)


def render(fit: Any, budgets: Sequence[float] | None = None, progress: Callable[[str], Any] | None = None) -> str:
    """The report as an HTML string; ``progress`` receives a line with an ETA as each figure is drawn."""
    from bayeslaw import __version__

    law = fit.law
    budgets = default_report_budgets(fit) if budgets is None else check_budgets(budgets).tolist()
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in fit.runs.notes())
    planned = _planned(fit, budgets)
    info = fit.info
    sections = [
        f"<h1>bayeslaw report: {html.escape(law.name)}</h1>",
        _answer(fit, budgets, planned),
        "<h2>Figures</h2>", _figures(fit, budgets, progress),
        "<h2>The law and the fit</h2>",
        f"<p><b>{html.escape(law.title)}</b>: {html.escape(law.formula)}<br>source: {html.escape(law.source)}<br>"
        f"{len(fit.runs)} runs; likelihood {html.escape(fit.likelihood)} on log({html.escape(law.target)}); "
        f"sampler {html.escape(str(info.get('sampler', '?')))}, seed {html.escape(str(info.get('seed', '?')))}; "
        f"bayeslaw {html.escape(__version__)}</p>",
        "<h2>Data</h2>", f"<p>{len(fit.runs)} runs.</p>", _table(data_summary(fit)),
        f"<ul class='note'>{notes}</ul>" if notes else "",
        _outliers(fit),
        "<h2>Diagnostics</h2>", _diagnostics(fit),
        "<h2>Parameters</h2>", '<p class="note">posterior median, mean, sd, 94% HDI, ESS and R-hat</p>',
        _table(fit.summary()),
        "<h2>Plan</h2>", _plan(planned),
    ]
    body = "\n".join(s for s in sections if s)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>bayeslaw report: {html.escape(law.name)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def report(fit: Any, path: str | os.PathLike, budgets: Sequence[float] | None = None,
           progress: Callable[[str], Any] | None = None) -> Path:
    """Write the self-contained HTML report of ``fit`` to ``path``, atomically. ``budgets`` (FLOPs) are
    planned and marked; by default 10, 100 and 1000 times the largest run's compute. ``progress``: as
    :func:`render`."""
    check_writable(path)
    return write_bytes_atomic(path, render(fit, budgets, progress).encode("utf-8"))
