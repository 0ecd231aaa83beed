"""Learning curves: every checkpoint of every run, with the noise correlated within a run.

A run gives one row per checkpoint (its run id, N, the tokens D seen so far, the loss). Its checkpoints are
not independent runs: they share the run's seed, data order and tuning, and the loss wanders smoothly
between them. The model of run i's checkpoints j (``likelihood="curve"``):

    log y_ij = log f(theta; x_ij) + gamma h(p_ij) + b_i + c_ij z_ij
    b_i ~ N(0, tau^2)                                  the run's offset (run_sd = tau)
    z_i ~ Ornstein-Uhlenbeck in log D, unit variance: cov(z_ij, z_ik) = exp(-|log D_ij - log D_ik| / ell)
    c_ij = s_i + s_h h(p_ij),  log s_i ~ N(log s, k^2)   (sigma, schedule_sd, run_scale_sd = k)
    h(p) = (1 + cos(pi p)) / 2 (cosine), 1 - p (linear) or 0 (none); p = D_ij / D_i,end

h is the share of the learning-rate decay still to come at the checkpoint, so gamma >= 0 (``schedule_gap``)
is how much higher, on log loss, a checkpoint sits than a run whose schedule ended there: the law is of
finished runs (Hoffmann et al. 2022 sec. 3.1 fit to runs whose cosine cycle matches their length), and a
checkpoint in the middle of a cosine schedule has not decayed yet, by an amount that differs from run to
run: its wander c_ij z_ij is wider (s_h >= 0) while the decay is to come. Runs differ in how closely they
follow the law (a run that overfits its repeated data or spikes wanders far from it), so each run has its own
scale s_i: one such run widens its own band, not every run's. h = 0 at each run's end, so the final
checkpoints are points of the law itself, up to the run's offset and noise. Checkpoints before
``min_progress`` of their run (default 0.1) are dropped: early training is not on the law's curve at all
(Choshen, Zhang & Andreas 2025, "A Hitchhiker's Guide to Scaling Law Estimation", ICML, who find fits better
without the earliest checkpoints).

The density is exact and costs O(rows): the Ornstein-Uhlenbeck process has a tridiagonal precision Q = W^T W,
W its whitening map (w_1 = z_1, w_j = (z_j - phi_j z_j-1) / sqrt(1 - phi_j^2), phi_j =
exp(-(log D_ij - log D_ij-1) / ell)), and the run's offset is integrated out with the matrix determinant
lemma and Sherman-Morrison (Rasmussen & Williams 2006, A.3): with r the run's residuals, w = W r, u = W 1,

    log p(r_i) = -1/2 [n_i log 2 pi + sum log v_j + log(1 + tau^2 u.u) + w.w - tau^2 (u.w)^2 / (1 + tau^2 u.u)]

(r and 1 divided by the row scales c first; v_j = c_j^2 (1 - phi_j^2) the conditional variances). The quadratic
form is computed as |w - beta u|^2 + (u.w)^2 / (u.u (1 + tau^2 u.u)), beta = u.w / u.u: the same number, a sum of
two squares. Written as w.w - tau^2 (u.w)^2 / (1 + tau^2 u.u) it cancels catastrophically where a run's residuals
are mostly its offset and tau^2 u.u is large, and rounding could make it negative: log p of 1e10 and more at
such points, which NUTS trajectories fell into (a synthetic curve fit natively: divergences in 8 of 16 seeds, 4 after).
``likelihood="curve_independent"`` is the same mean with every checkpoint independent, N(0, s^2): the model
that treats a curve's rows as independent runs, for comparison (hundreds of rows per run then act as
hundreds of runs).

A prediction is for the final loss of a new run: log y = log f(theta; x) + b + s z, N(0, tau^2 + s^2) noise.
The fit's runs (``Fit.runs``) are the runs' final checkpoints, so predictions, decisions, the discrepancy
(estimated from the final checkpoints' residuals) and held-out scores work on it as on any fit; the
pointwise log-likelihood is one value per run, the density of its whole curve, so PSIS-LOO leaves out
whole runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayeslaw.data import Runs
from bayeslaw.errors import DataError
from bayeslaw.likelihoods import CURVE_LIKELIHOODS, get_likelihood  # noqa: F401 (CURVE_LIKELIHOODS: re-exported)

SCHEDULES = ("cosine", "linear", "none")
MIN_PROGRESS = 0.1  # checkpoints before this share of their run's tokens are dropped
MAX_CHECKPOINTS = 50  # checkpoints kept per run, evenly spread in log D (the final one always)


def decay_left(progress: np.ndarray, schedule: str) -> np.ndarray:
    """h(p): the share of the learning-rate decay still to come at progress p in [0, 1] of the schedule."""
    p = np.clip(progress, 0.0, 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + np.cos(np.pi * p))
    if schedule == "linear":
        return 1.0 - p
    if schedule == "none":
        return np.zeros_like(p)
    raise DataError(f"unknown learning-rate schedule '{schedule}'; allowed: {', '.join(SCHEDULES)}")


@dataclass
class Curves:
    """The checkpoints kept for fitting, sorted by run then tokens, and each run's final checkpoint.

    ``rows``: the kept checkpoints (a Runs of the law); ``finals``: one row per run, its last checkpoint
    (what predictions are for); ``run``: each row's run number (0 .. runs - 1, in the order of ``finals``);
    ``log_step``: log D minus the previous checkpoint's in the same run (0 at a run's first); ``first``:
    whether the row is its run's first; ``decay``: h(p) per row; ``ids``: each run's id as given.
    """

    rows: Runs
    finals: Runs
    run: np.ndarray
    log_step: np.ndarray
    first: np.ndarray
    decay: np.ndarray
    ids: np.ndarray
    schedule: str
    min_progress: float
    dropped: int
    given: int = 0  # checkpoint rows in the table
    max_checkpoints: int | None = MAX_CHECKPOINTS

    @property
    def n_runs(self) -> int:
        return len(self.finals)

    @property
    def starts(self) -> np.ndarray:
        """Index of each run's first row."""
        return np.flatnonzero(self.first)

    def describe(self) -> dict[str, Any]:
        """What was fitted, as plain data (stored with the fit)."""
        return {"runs": self.n_runs, "checkpoints": len(self.rows), "given": self.given,
                "dropped_early": self.dropped, "schedule": self.schedule, "min_progress": self.min_progress,
                "max_checkpoints": self.max_checkpoints}


def build_curves(rows: Runs, ids: Any, schedule: str = "cosine", min_progress: float = MIN_PROGRESS,
                 schedule_end: Mapping[Any, float] | None = None,
                 max_checkpoints: int | None = MAX_CHECKPOINTS) -> Curves:
    """Group checkpoint rows into runs by ``ids`` (one per row), drop each run's checkpoints before
    ``min_progress`` of its schedule, keep at most ``max_checkpoints`` per run (None: all), and compute the
    schedule term and the steps in log D.

    Thinning: the checkpoints nearest to ``max_checkpoints`` points evenly spaced in log D over the run's kept
    range, the final one always. Under noise correlated along log D, checkpoints closer than a small share of
    the correlation length add little information but cost as much as any row in every gradient.

    The schedule of a run ends at its last checkpoint unless ``schedule_end`` gives its length in tokens (a
    run stopped before its schedule ended). Rows of a run with the same D are an error naming them.
    """
    decay_left(np.zeros(1), schedule)  # checks the name
    if not 0.0 <= float(min_progress) < 1.0:
        raise DataError(f"min_progress must lie in [0, 1), got {min_progress}")
    law = rows.law
    if "D" not in law.inputs:
        raise DataError(f"learning curves need the tokens seen at each checkpoint, D, among the law's inputs; law "
                        f"'{law.name}' reads {', '.join(law.inputs)}")
    ids = pd.Series(np.asarray(ids, dtype=object), name="run id")
    if len(ids) != len(rows):
        raise DataError(f"{len(ids)} run ids for {len(rows)} rows")
    if ids.isna().any():
        bad = np.flatnonzero(ids.isna().to_numpy())[:8]
        raise DataError(f"run id column: rows {', '.join(str(i + 1) for i in bad)} have no run id")
    frame = rows.frame.reset_index(drop=True).assign(_id=ids.astype(str).to_numpy(), _row=np.arange(len(rows)))
    frame = frame.sort_values(["_id", "D"], kind="stable", ignore_index=True)
    same = frame.duplicated(["_id", "D"], keep=False)
    if same.any():
        first = frame[same].iloc[0]
        rows_named = frame.loc[same & (frame["_id"] == first["_id"]) & (frame["D"] == first["D"]), "_row"]
        raise DataError(f"run '{first['_id']}': rows {', '.join(str(r + 1) for r in rows_named)} have the same D "
                        f"({first['D']:g}); a run has one checkpoint per token count")
    for name in law.inputs:
        if name == "D":
            continue
        varies = frame.groupby("_id")[name].nunique() > 1
        if varies.any():
            raise DataError(f"run '{varies.index[varies][0]}': column {name} changes between its checkpoints; every "
                            f"checkpoint of a run has the same {name} (only D, the tokens seen, grows)")
    last = frame.groupby("_id")["D"].transform("max").to_numpy()  # each run's final checkpoint
    end = last
    if schedule_end is not None:
        given = frame["_id"].map({str(k): float(v) for k, v in schedule_end.items()})
        end = np.where(given.notna(), given.to_numpy(dtype=float), last)
    progress = frame["D"].to_numpy() / end
    keep = (progress >= min_progress) | (frame["D"].to_numpy() == last)
    dropped = int((~keep).sum())
    frame, progress = frame[keep].reset_index(drop=True), progress[keep]
    if max_checkpoints is not None:
        if int(max_checkpoints) < 2:
            raise DataError(f"max_checkpoints must be at least 2 (a run's first and final kept), got {max_checkpoints}")
        chosen = np.concatenate([_spread(np.log(group.to_numpy()), int(max_checkpoints)) + group.index[0]
                                 for _, group in frame.groupby("_id", sort=False)["D"]])
        thinned = np.zeros(len(frame), dtype=bool)
        thinned[chosen] = True
        frame, progress = frame[thinned].reset_index(drop=True), progress[thinned]
    order = pd.unique(frame["_id"])
    run = pd.Categorical(frame["_id"], categories=order).codes.astype(int)
    first = np.r_[True, run[1:] != run[:-1]]
    log_d = np.log(frame["D"].to_numpy())
    log_step = np.where(first, 0.0, log_d - np.r_[log_d[0], log_d[:-1]])
    columns = [*law.inputs, law.target]
    kept = Runs(frame[columns].rename_axis("run"), law, rows.mapped, rows.derived)
    last = np.r_[first[1:], True]
    finals = Runs(frame.loc[last, columns].reset_index(drop=True).rename_axis("run"), law, rows.mapped, rows.derived)
    return Curves(kept, finals, run, log_step, first, decay_left(progress, schedule), np.asarray(order, dtype=object),
                  schedule, float(min_progress), dropped, len(rows), max_checkpoints)


def _spread(log_d: np.ndarray, count: int) -> np.ndarray:
    """Positions (in a sorted run) of the checkpoints nearest to ``count`` points evenly spaced in log D."""
    if len(log_d) <= count:
        return np.arange(len(log_d))
    targets = np.linspace(log_d[0], log_d[-1], count)
    right = np.clip(np.searchsorted(log_d, targets), 1, len(log_d) - 1)
    nearest = np.where(targets - log_d[right - 1] <= log_d[right] - targets, right - 1, right)
    return np.unique(np.r_[nearest, len(log_d) - 1])


def _whitened(residual, scale, log_step, first, corr_length, xp):
    """(w, u, log v): W (r / c), W (1 / c) and the log conditional variances of r, for the unit-variance
    Ornstein-Uhlenbeck W and each row's scale c."""
    ratio = log_step / corr_length
    one_minus_phi2 = xp.where(first, 1.0, -xp.expm1(-2.0 * ratio))
    phi = xp.where(first, 0.0, xp.exp(-ratio))
    root = xp.sqrt(one_minus_phi2)

    def whiten(x):
        previous = xp.concatenate([x[..., :1] * 0.0, x[..., :-1]], axis=-1)
        return (x - phi * previous) / root

    inverse = 1.0 / scale
    return whiten(residual * inverse), whiten(inverse), xp.log(one_minus_phi2) + 2.0 * xp.log(scale)


def row_scale(noise: Mapping[str, Any], decay: Any) -> Any:
    """c_j = sigma + schedule_sd h_j: the checkpoint noise's scale, wider while the schedule's decay is to come."""
    return noise["sigma"] + noise["schedule_sd"] * decay


def curve_logp_numpy(residual: np.ndarray, curves: Curves, noise: Mapping[str, np.ndarray]) -> np.ndarray:
    """log p of each run's residual curve (last axis: rows) under the correlated model; returns (..., runs).

    ``noise``: sigma, schedule_sd, run_sd, corr_length with shapes broadcasting against ``residual`` without its
    last axis; optionally run_scale (..., runs), each run's scale factor (default 1).
    """
    def per_row(name):
        return np.asarray(noise[name], dtype=float)[..., None]

    sigma = per_row("sigma")
    if noise.get("run_scale") is not None:
        sigma = sigma * np.asarray(noise["run_scale"], dtype=float)[..., curves.run]
    scale = row_scale({"sigma": sigma, "schedule_sd": per_row("schedule_sd")}, curves.decay)
    with np.errstate(divide="ignore", invalid="ignore"):
        w, u, log_v = _whitened(residual, scale, curves.log_step, curves.first, per_row("corr_length"), np)
    starts = curves.starts
    u = np.broadcast_to(u, w.shape)
    uw = np.add.reduceat(u * w, starts, axis=-1)
    uu = np.add.reduceat(u * u, starts, axis=-1)
    off = w - (uw / uu)[..., curves.run] * u  # w less its projection on u
    logv = np.add.reduceat(np.broadcast_to(log_v, w.shape), starts, axis=-1)
    counts = np.diff(np.r_[starts, len(curves.run)])
    t2 = np.asarray(noise["run_sd"], dtype=float)[..., None] ** 2
    quadratic = np.add.reduceat(off * off, starts, axis=-1) + uw**2 / (uu * (1.0 + t2 * uu))
    return -0.5 * (counts * np.log(2 * np.pi) + logv + np.log1p(t2 * uu) + quadratic)


def independent_logp_numpy(residual: np.ndarray, curves: Curves, noise: Mapping[str, np.ndarray]) -> np.ndarray:
    """log p of each run's residuals with every checkpoint independent N(0, sigma^2); returns (..., runs)."""
    sigma = np.asarray(noise["sigma"], dtype=float)[..., None]
    values = -0.5 * np.log(2 * np.pi) - np.log(sigma) - 0.5 * (residual / sigma) ** 2
    return np.add.reduceat(values, curves.starts, axis=-1)


def observe_curves(likelihood: str, mu: Any, noise: Mapping[str, Any], observed: Any, curves: Curves) -> Any:
    """The curve likelihood as a PyMC Potential on the rows: ``mu`` is log f at each kept checkpoint.

    The curves' structure enters as ``pm.Data``, so one compiled density serves every table of curves."""
    import pymc as pm
    import pytensor.tensor as pt

    decay = pm.Data("curve_decay", curves.decay, dims="checkpoint")
    residual = observed - mu - noise["schedule_gap"] * decay
    if likelihood == "curve_independent":
        sigma = noise["sigma"]
        total = pt.sum(-0.5 * np.log(2 * np.pi) - pt.log(sigma) - 0.5 * (residual / sigma) ** 2)
        return pm.Potential("curve_log_density", total)
    run = pm.Data("curve_run_index", curves.run.astype("int64"), dims="checkpoint")
    first = pm.Data("curve_first", curves.first.astype(float), dims="checkpoint")
    log_step = pm.Data("curve_log_step", curves.log_step, dims="checkpoint")
    zeros = pm.Data("curve_zeros", np.zeros(curves.n_runs))  # one slot per run for the sums
    pm.modelcontext(None).add_coord("curve_run", np.arange(curves.n_runs))
    z = pm.Normal("run_scale_z", 0.0, 1.0, dims="curve_run")  # non-centred: each run's log scale factor
    sigma = noise["sigma"] * pt.exp(noise["run_scale_sd"] * z)[run]
    scale = row_scale({"sigma": sigma, "schedule_sd": noise["schedule_sd"]}, decay)
    w, u, log_v = _whitened(residual, scale, log_step, first > 0.5, noise["corr_length"], pt)
    uw = pt.inc_subtensor(zeros[run], u * w)
    uu = pt.inc_subtensor(zeros[run], u * u)
    off = w - (uw / uu)[run] * u  # w less its projection on u: the quadratic form as a sum of squares (module doc)
    t2 = noise["run_sd"] ** 2
    quadratic = pt.sum(pt.inc_subtensor(zeros[run], off * off) + uw**2 / (uu * (1.0 + t2 * uu)))
    rows = pt.cast(run.shape[0], "float64")
    total = -0.5 * (rows * np.log(2 * np.pi) + pt.sum(log_v) + pt.sum(pt.log1p(t2 * uu)) + quadratic)
    return pm.Potential("curve_log_density", total)


def curve_log_likelihood(law, likelihood: str, posterior, curves: Curves, block_draws: int = 250):
    """The log density of each run's whole curve, per draw: dims (chain, draw, run), runs as in ``finals``."""
    import xarray as xr

    log_target = np.log(curves.rows.target)
    inputs = curves.rows.inputs
    params = {n: posterior[n].values for n in law.published}
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    noise = {n: posterior[n].values for n in get_likelihood(likelihood).params}
    if "run_scale_z" in posterior:
        noise["run_scale"] = np.exp(posterior["run_scale_sd"].values[..., None]
                                    * posterior["run_scale_z"].transpose("chain", "draw", ...).values)
    out = np.empty((chains, draws, curves.n_runs))
    logp = independent_logp_numpy if likelihood == "curve_independent" else curve_logp_numpy
    for start in range(0, draws, block_draws):
        block = slice(start, start + block_draws)
        p = {k: v[:, block, None] for k, v in params.items()}
        with np.errstate(all="ignore"):
            mu = np.log(law.function(p, inputs, np))
        residual = log_target - mu - noise["schedule_gap"][:, block, None] * curves.decay
        out[:, block] = logp(residual, curves, {k: v[:, block] for k, v in noise.items()})
    return xr.DataArray(out, dims=("chain", "draw", "run"), coords={"run": np.arange(curves.n_runs)})
