"""The conditioned GP discrepancy at many points, from what depends only on the fit (``discrepancy.Conditional``).

For a hyperparameter set (eta, ell, tau, s), the fitted runs Z (n x d) with trend coordinates T (n x m), the
Cholesky factor L of K = k(Z, Z) + s^2 I, W = L^-1, and alpha_j = K^-1 r_j for each law draw j given the set
(Rasmussen & Williams 2006, eqs 2.25-2.26, with the kernel of ``bayeslaw.discrepancy``):

    k(x, Z) = eta^2 R(x - Z; ell) + tau^2 t(x) T^T
    mean_j(x) = k(x, Z) alpha_j,    var(x) = eta^2 + tau^2 |t(x)|^2 - |W k(x, Z)|^2

``Sets`` holds, per set, everything on the right that does not depend on x (W, alpha, the runs' trend basis and
its products with them), computed once per posterior. Two evaluations:

- ``shared``: points every draw shares (a grid of allocations for ``risk``, predictions at given inputs). The
  correlations of all sets at once, then per set the products with alpha and W: operation for operation the
  arithmetic of evaluating one set at a time, so searches over these values give the same numbers bit for bit.
- ``per_draw``: one point per draw (each draw's own optimum in ``plan``), in blocks of about ``ROWS`` points that
  stay in cache. For the squared exponential the exponent is one matrix product: -|x' - z'|^2 / 2 =
  (x', -|x'|^2 / 2 + log eta^2, 1) . (z', 1, -|z'|^2 / 2) with x' = x / ell (the square expanded; the runs
  are centred, so this costs about |x'|^2 ulps, 1e-15 relative inside the runs at ell = 1); W k by a triangular
  product; the trend's share of |W k|^2 expanded in its m columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

KERNELS = ("se", "matern32", "matern52")
ROWS = 2048  # points per block of the per-draw evaluation: (ROWS x runs) arrays stay in a 2 MB cache
SHARED_FLOATS = 2 ** 21  # sets x points x runs per block of the shared evaluation's correlations

_CONTROLLER: Any = None


def one_thread():
    """A context limiting BLAS (and OpenMP) to one thread: the matrices here are small, threads only contend.
    The libraries are found once per process (``threadpool_limits`` looks for them on every call: 5 ms)."""
    global _CONTROLLER
    from scipy import linalg  # noqa: F401  (load scipy's BLAS before the controller lists the libraries)
    from threadpoolctl import ThreadpoolController

    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)


def correlation(covariance: str, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's correlation at squared scaled distance rho^2 = sum_d (dz_d / ell_d)^2, and -2 d corr / d rho^2
    (so that d corr / d log ell_d = that times (dz_d / ell_d)^2).

        se        exp(-rho^2 / 2)
        matern32  (1 + sqrt3 rho) exp(-sqrt3 rho)
        matern52  (1 + sqrt5 rho + 5 rho^2 / 3) exp(-sqrt5 rho)   (Rasmussen & Williams 2006, eqs 4.17)
    """
    if covariance == "se":
        value = np.exp(-0.5 * scaled)
        return value, value
    if covariance == "matern32":
        rho = np.sqrt(3.0 * scaled)
        decay = np.exp(-rho)
        return (1.0 + rho) * decay, 3.0 * decay
    rho = np.sqrt(5.0 * scaled)
    decay = np.exp(-rho)
    return (1.0 + rho + rho ** 2 / 3.0) * decay, (5.0 / 3.0) * (1.0 + rho) * decay


class Sets:
    """Per hyperparameter set, what the conditional needs that depends only on the fit.

    ``parts``: (draws, eta, ells, trend, alpha (n x draws), W (n x n)) of each set; ``z`` the runs' standardised
    coordinates (n x d); ``basis`` their trend coordinates (n x m); ``trend_basis`` maps points to theirs."""

    def __init__(self, parts: Sequence[tuple], z: np.ndarray, basis: np.ndarray, covariance: str,
                 trend_basis: Callable[[np.ndarray], np.ndarray]):
        self.parts, self.z, self.basis, self.covariance = list(parts), z, basis, covariance
        self.trend_basis = trend_basis
        self.eta2 = np.array([eta ** 2 for _, eta, _, _, _, _ in parts])
        self.tau2 = np.array([trend ** 2 for _, _, _, trend, _, _ in parts])
        self.ells = np.array([np.asarray(ells, dtype=float) for _, _, ells, _, _, _ in parts]).reshape(len(parts), -1)
        self.trended = [trend > 0 for _, _, _, trend, _, _ in parts]
        counts = [len(draws) for draws, *_ in parts]
        self.n_draws = sum(counts)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.owner = np.empty(self.n_draws, dtype=int)  # each draw's set
        self.position = np.empty(self.n_draws, dtype=int)  # each draw's column when the draws are ordered by set
        for h, (draws, *_) in enumerate(parts):
            self.owner[draws] = h
            self.position[draws] = np.arange(self.offsets[h], self.offsets[h + 1])
        self._fast: list[tuple] | None = None

    def shared(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (q, S) at points x (q, d) shared by every draw (variance before clipping at 0)."""
        n, sets = len(self.z), len(self.parts)
        mean, var = np.empty((len(x), self.n_draws)), np.empty((len(x), sets))
        step = max(1, SHARED_FLOATS // max(n * sets, 1))
        for start in range(0, len(x), step):
            block = x[start:start + step]
            rows = slice(start, start + len(block))
            tb = self.trend_basis(block)
            outer = tb @ self.basis.T  # (q, n): t(x) . t(z), the same for every set
            prior = np.sum(tb ** 2, axis=-1)
            scaled = 0.0
            for i in range(x.shape[1]):  # left to right, as numpy sums fewer than 8 terms: the same bits
                scaled = scaled + ((block[:, None, i] - self.z[:, i]) / self.ells[:, i, None, None]) ** 2
            k = self.eta2[:, None, None] * correlation(self.covariance, scaled)[0]  # (sets, q, n)
            for h, (_, _, _, _, alpha, whiten) in enumerate(self.parts):
                kh = k[h] + self.tau2[h] * outer if self.trended[h] else k[h]
                mean[rows, self.offsets[h]:self.offsets[h + 1]] = kh @ alpha
                var[rows, h] = self.eta2[h] + self.tau2[h] * prior - np.sum((whiten @ kh.T) ** 2, axis=0)
        return mean[:, self.position], var[:, self.owner]

    def _per_draw_arrays(self) -> list[tuple]:
        """Per set, for ``per_draw``: the runs' augmented coordinates, alpha^T, W (Fortran order), W T, T^T alpha,
        (W T)^T (W T)."""
        if self._fast is None:
            self._fast = []
            for h, (_, _, _, _, alpha, whiten) in enumerate(self.parts):
                zs = self.z / self.ells[h]
                columns = np.column_stack([zs, np.ones(len(zs)), -0.5 * np.sum(zs ** 2, axis=1)])
                wt = whiten @ self.basis
                self._fast.append((columns, np.ascontiguousarray(alpha.T), np.asfortranarray(whiten), wt,
                                   self.basis.T @ alpha, wt.T @ wt))
        return self._fast

    def _cross(self, h: int, x: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """eta^2 R(x - Z; ell) of set h at points x (q, d), by the expanded square: (q, n)."""
        xs = x / self.ells[h]
        half = -0.5 * np.sum(xs ** 2, axis=1)
        if self.covariance == "se":
            rows = np.column_stack([xs, half + np.log(self.eta2[h]), np.ones(len(xs))])
            return np.exp(rows @ columns.T)
        rows = np.column_stack([xs, half, np.ones(len(xs))])
        scaled = np.maximum(-2.0 * (rows @ columns.T), 0.0)
        return self.eta2[h] * correlation(self.covariance, scaled)[0]

    def per_draw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (L, S) at points x (L, S, d), one per draw on the second axis (variance before
        clipping at 0)."""
        from scipy.linalg import blas

        lead, n_draws, d = x.shape
        mean, var = np.empty((lead, n_draws)), np.empty((lead, n_draws))
        m = self.basis.shape[1]
        for h, (columns, alpha_t, lower, wt, basis_alpha, gram) in enumerate(self._per_draw_arrays()):
            draws = self.parts[h][0]
            points = x[:, draws, :]
            step = max(1, ROWS // len(draws))
            for start in range(0, lead, step):
                block = points[start:start + step]
                flat = block.reshape(-1, d)
                k = self._cross(h, flat, columns)  # (q, n)
                mu = np.einsum("lsn,sn->ls", k.reshape(*block.shape[:2], -1), alpha_t)
                u = blas.dtrmm(1.0, lower, k.T, lower=1, overwrite_b=1).T  # rows W k(x, Z)
                v = self.eta2[h] - np.einsum("qn,qn->q", u, u)
                if self.trended[h] and m:
                    t = self.trend_basis(flat)
                    tau2 = self.tau2[h]
                    mu = mu + tau2 * np.einsum("lsm,ms->ls", t.reshape(*block.shape[:2], m), basis_alpha)
                    v = v + tau2 * np.sum(t ** 2, axis=1) - 2 * tau2 * np.sum((u @ wt) * t, axis=1) \
                        - tau2 ** 2 * np.sum((t @ gram) * t, axis=1)
                rows = slice(start, start + len(block))
                mean[rows, draws] = mu
                var[rows, draws] = v.reshape(block.shape[:2])
        return mean, var
