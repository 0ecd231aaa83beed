"""Uncertainty the old way: the classic point fit of the Chinchilla law and a bootstrap over runs.

The law is L(N, D) = E + A / N^alpha + B / D^beta with A = e^a, B = e^b, E = e^e, fitted on log loss
in the log-sum-exp form, r_i = LSE(a - alpha ln N_i, b - beta ln D_i, e) - ln L_i, with
Huber_delta(r) = r^2 / 2 for |r| <= delta, else delta (|r| - delta / 2), and delta = 1e-3:

- Hoffmann et al. 2022 (Approach 3, App. D.2): minimise sum_i Huber_delta(r_i) by L-BFGS from a grid
  of starts, the best kept (laws.md section 2).
- Besiroglu et al. 2024 (arXiv:2404.10102; laws.md section 3), whose estimates and bootstrap SEs
  are published: maximise the Huber likelihood with a scale sigma on log loss,
  sum_i [-Huber_delta(r_i / sigma) - ln sigma] - n ln Z(delta), by BFGS; the fitted ln sigma is -12.27,
  so the fit is close to least absolute deviations. Uncertainty: a nonparametric bootstrap over runs
  (4,000 resamples of the 240 kept runs), each a BFGS refit.

``huber_fit`` is the point fit (either objective; analytic gradient, vectorised over runs; summed
Huber is divided by delta so that L-BFGS-B does not stop early, the failure Besiroglu et al.
diagnosed in Hoffmann et al.'s fit), ``bootstrap`` the resampling (about 80 ms a refit: two local fits of 40 ms).
``tools/besiroglu_covariance.py`` (not shipped) runs them on the Chinchilla runs and regenerates the
covariance block of models/chinchilla-besiroglu2024.toml.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize

DELTA = 1e-3
COLUMNS = ["log_A", "log_B", "log_E", "alpha", "beta"]  # the order of the parameter vector
# Hoffmann et al.'s grid of initialisations (4,500 starts), in the order of COLUMNS
HOFFMANN_GRID = {"log_A": [0, 5, 10, 15, 20, 25], "log_B": [0, 5, 10, 15, 20, 25], "log_E": [-1, -0.5, 0, 0.5, 1],
                 "alpha": [0, 0.5, 1, 1.5, 2], "beta": [0, 0.5, 1, 1.5, 2]}
# a coarser grid (96 starts), the default
COARSE_GRID = {"log_A": [0, 5, 10, 15], "log_B": [0, 5, 10, 15], "log_E": [0, 0.5], "alpha": [0.2, 0.5, 1.0],
               "beta": [0.5]}
CHINCHILLA_TEX = np.array([6.0073404, 6.0179186, 0.5267228, 0.33917084, 0.2849083])  # Hoffmann, TeX source
# Besiroglu et al. 2024 (laws.md section 3): estimates and bootstrap SEs (a = ln A, b = ln B, e = ln E)
BESIROGLU = {"log_A": 6.17795598, "log_B": 7.64273236, "log_E": 0.59711196, "alpha": 0.34781, "beta": 0.36585}
BESIROGLU_SE = {"log_A": 0.258, "log_B": 0.421, "log_E": 0.014, "alpha": 0.0154, "beta": 0.0206, "a": 0.020}


def grid_starts(grid: dict[str, Sequence[float]] = COARSE_GRID) -> np.ndarray:
    """Every combination of a grid of initialisations, rows in the order of ``COLUMNS``."""
    return np.array(list(itertools.product(*(grid[c] for c in COLUMNS))), dtype=float)


def _huber(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, weight: np.ndarray,
           delta: float) -> tuple[float, np.ndarray, np.ndarray]:
    """Summed Huber_delta of the residuals, its gradient in theta, and the residuals (vectorised over runs)."""
    log_a, log_b, log_e, alpha, beta = theta[:5]
    terms = np.stack([log_a - alpha * log_n, log_b - beta * log_d, np.full_like(log_n, log_e)])
    top = terms.max(axis=0)
    exp = np.exp(terms - top)
    total = exp.sum(axis=0)
    r = top + np.log(total) - log_loss
    soft = exp / total  # d LSE / d term
    value = np.where(np.abs(r) <= delta, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)) @ weight
    psi = weight * np.clip(r, -delta, delta)
    grad = np.array([psi @ soft[0], psi @ soft[1], psi @ soft[2], -(psi * soft[0]) @ log_n, -(psi * soft[1]) @ log_d])
    return float(value), grad, r


def _negloglik(params: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, weight: np.ndarray,
               delta: float) -> tuple[float, np.ndarray]:
    """Besiroglu et al.'s Huber negative log-likelihood, sum rho_delta(r / sigma) + n ln sigma (less n ln Z).

    ``params`` = (log A, log B, log E, alpha, beta, ln sigma); rho_delta(r / sigma) = rho_(delta sigma)(r) / sigma^2.
    """
    sigma = math.exp(params[5])
    value, grad, r = _huber(params, log_n, log_d, log_loss, weight, delta * sigma)
    z = r / sigma
    d_log_sigma = weight.sum() - (weight * np.clip(z, -delta, delta)) @ z
    return value / sigma**2 + weight.sum() * params[5], np.append(grad / sigma**2, d_log_sigma)


def _summed_huber(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray, weight: np.ndarray,
                  delta: float) -> tuple[float, np.ndarray]:
    """Hoffmann et al.'s objective, divided by delta so that L-BFGS-B's stopping rule does not fire early."""
    value, grad, _ = _huber(theta, log_n, log_d, log_loss, weight, delta)
    return value / delta, grad / delta


def _minimise(start: np.ndarray, args: tuple, fit_scale: bool) -> tuple[float, np.ndarray]:
    """One local fit from ``start`` (5 law parameters): BFGS on the likelihood, or L-BFGS-B on summed Huber."""
    with warnings.catch_warnings():  # BFGS reports "precision loss" at a kink of the near-L1 objective
        warnings.simplefilter("ignore", RuntimeWarning)
        if not fit_scale:
            res = minimize(_summed_huber, start, args=args, jac=True, method="L-BFGS-B",
                           options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
            return float(res.fun), res.x
        weight, delta = args[3], args[4]
        _, _, r = _huber(start, *args)  # ln sigma from the start: the sigma that is optimal there, delta mean|r|
        log_sigma = math.log(delta * max(float(np.abs(r) @ weight / weight.sum()), 1e-12))
        res = minimize(_negloglik, np.append(start, log_sigma), args=args, jac=True, method="BFGS",
                       options={"maxiter": 2000, "gtol": 1e-8})
        return float(res.fun), res.x


def _as_arrays(N: Iterable[float], D: Iterable[float], loss: Iterable[float]) -> tuple[np.ndarray, ...]:
    log_n, log_d, log_loss = (np.log(np.asarray(x, dtype=float)) for x in (N, D, loss))
    if not (log_n.shape == log_d.shape == log_loss.shape and log_n.ndim == 1):
        raise ValueError("N, D and loss must be 1-d and of the same length")
    if not np.all(np.isfinite(np.concatenate([log_n, log_d, log_loss]))):
        raise ValueError("N, D and loss must be positive and finite")
    return log_n, log_d, log_loss


def _best(starts: np.ndarray, args: tuple, fit_scale: bool) -> tuple[float, np.ndarray]:
    fits = [_minimise(s, args, fit_scale) for s in starts]
    return min((f for f in fits if np.isfinite(f[0])), key=lambda fit: fit[0])


def huber_fit(N: Iterable[float], D: Iterable[float], loss: Iterable[float], *, starts: np.ndarray | None = None,
              delta: float = DELTA, fit_scale: bool = True, weight: np.ndarray | None = None) -> dict[str, float]:
    """Point fit of the Chinchilla law by Huber on log loss in the LSE form, from each start, the best kept.

    Every start is fitted to Hoffmann et al.'s objective, the summed Huber_delta(r), by L-BFGS-B; with
    ``fit_scale`` (Besiroglu et al.'s estimate, the default) the best is then polished by BFGS on their
    Huber likelihood with a fitted scale sigma on log loss, delta applying to r / sigma.
    ``starts``: rows (log A, log B, log E, alpha, beta); default ``grid_starts(COARSE_GRID)``;
    ``grid_starts(HOFFMANN_GRID)`` is the full grid. ``weight``: copies of each run (a bootstrap
    resample). Returns log_A, log_B, log_E, alpha, beta, A, B, E, log_sigma (with ``fit_scale``) and
    ``objective`` (the minimised value: negative log-likelihood less n ln Z, or summed Huber).
    """
    log_n, log_d, log_loss = _as_arrays(N, D, loss)
    weight = np.ones_like(log_n) if weight is None else np.asarray(weight, dtype=float)
    starts = grid_starts() if starts is None else np.atleast_2d(np.asarray(starts, dtype=float))
    args = (log_n, log_d, log_loss, weight, delta)
    value, best = _best(starts, args, fit_scale=False)  # from far starts the likelihood's sigma runs off
    if fit_scale:  # polish: the likelihood from the summed-Huber optimum
        value, best = _minimise(best, args, fit_scale=True)
    out = dict(zip(COLUMNS, map(float, best[:5]), strict=True))
    out.update(A=math.exp(out["log_A"]), B=math.exp(out["log_B"]), E=math.exp(out["log_E"]))
    if fit_scale:
        out["log_sigma"] = float(best[5])
    out["objective"] = value if fit_scale else value * delta
    return out


def bootstrap(N: Iterable[float], D: Iterable[float], loss: Iterable[float], resamples: int = 1000,
              seed: int | None = 0, *, delta: float = DELTA, fit_scale: bool = True,
              starts: np.ndarray | None = None) -> pd.DataFrame:
    """Nonparametric bootstrap over runs: ``resamples`` refits of ``huber_fit`` on runs drawn with replacement.

    Each refit is one local fit (BFGS on the likelihood with ``fit_scale``, as Besiroglu et al.) from
    each of ``starts``, the better optimum kept: default Hoffmann et al.'s TeX constants (Besiroglu et
    al.'s start) and the full-data estimate. Returns one row per resample: log_A, log_B,
    log_E, alpha, beta, objective.
    """
    log_n, log_d, log_loss = _as_arrays(N, D, loss)
    n = len(log_n)
    if starts is None:
        full = huber_fit(*np.exp([log_n, log_d, log_loss]), starts=CHINCHILLA_TEX, delta=delta, fit_scale=fit_scale)
        starts = np.vstack([CHINCHILLA_TEX, [full[c] for c in COLUMNS]])
    starts = np.atleast_2d(np.asarray(starts, dtype=float))
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(resamples):
        weight = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        value, theta = _best(starts, (log_n, log_d, log_loss, weight, delta), fit_scale)
        rows.append([*theta[:5], value])
    return pd.DataFrame(rows, columns=[*COLUMNS, "objective"])


def summarise(boot: pd.DataFrame) -> dict[str, object]:
    """Marginal SEs (with a = beta / (alpha + beta)), their ratios to Besiroglu et al.'s, and correlations."""
    frame = boot[COLUMNS].assign(a=boot["beta"] / (boot["alpha"] + boot["beta"]))
    se = frame.std(ddof=1)
    return {"se": se, "ratio": se / pd.Series(BESIROGLU_SE), "corr": boot[COLUMNS].corr()}
