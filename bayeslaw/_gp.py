"""The conditioned GP discrepancy at many points, from what depends only on the fit (``discrepancy.Conditional``).

For a hyperparameter set (eta, ell, tau, s), the fitted runs Z (n x d) with trend coordinates T (n x m), the
Cholesky factor L of K = k(Z, Z) + s^2 I, W = L^-1, and alpha_j = K^-1 r_j for each law draw j given the set
(Rasmussen & Williams 2006, eqs 2.25-2.26, with the kernel of ``bayeslaw.discrepancy``):

    k(x, Z) = eta^2 R(x - Z; ell) + tau^2 t(x) T^T
    mean_j(x) = k(x, Z) alpha_j,    var(x) = eta^2 + tau^2 |t(x)|^2 - |W k(x, Z)|^2

``Sets`` holds, per set, everything on the right that does not depend on x (W, alpha, the runs' trend basis and
its products with them), computed once per posterior. Two evaluations:

- ``shared`` and ``shared_draw``: points every draw shares (a grid of allocations for ``risk``, predictions at
  given inputs). The correlations of all sets at once, then the products with alpha and W of each group of sets
  with as many draws as one stacked product: operation for operation the arithmetic of evaluating one set at a
  time, so searches over these values give the same numbers bit for bit. The means are computed with the draws
  ordered by set and put back in order once; ``shared_draw`` takes the square roots of the variances once per
  set.
- ``per_draw``: one point per draw (each draw's own optimum in ``plan``), each set's draws gathered in blocks of
  about ``ROWS`` points that stay in cache. For the squared exponential the exponent is one matrix product:
  -|x' - z'|^2 / 2 = (x', -|x'|^2 / 2 + log eta^2, 1) . (z', 1, -|z'|^2 / 2) with x' = x / ell (the square
  expanded; the runs are centred, so this costs about |x'|^2 ulps, 1e-15 relative inside the runs at ell = 1);
  W k and the trend's cross term k^T W^T W T by one full matrix product with [W^T, W^T W T] (numpy's matmul
  releases the GIL, so the sets run on a thread per core, ``bayeslaw._threads``); the rest of the trend's share,
  expanded in its m columns, once for all points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from bayeslaw._threads import in_threads

KERNELS = ("se", "matern32", "matern52")
ROWS = 2048  # points per block of the per-draw evaluation: (ROWS x runs) arrays, 1 MB for 63 runs
SHARED_FLOATS = 2 ** 21  # sets x points x runs per block of the shared evaluation's correlations

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
        self.trended = np.flatnonzero([trend > 0 for _, _, _, trend, _, _ in parts])
        counts = np.array([len(draws) for draws, *_ in parts])
        self.n_draws = int(counts.sum())
        # sets with as many draws form a group, whose products with alpha and W are one stacked matmul; the draws
        # are ordered by group, then set ("set order"), so each group's means fill adjacent columns
        self.groups: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]] = []
        self.owner = np.empty(self.n_draws, dtype=int)  # each draw's set
        self.position = np.empty(self.n_draws, dtype=int)  # each draw's column in set order
        start = 0
        for count in sorted(set(counts.tolist()), reverse=True):
            members = np.flatnonzero(counts == count)
            for i, h in enumerate(members):
                draws = parts[h][0]
                self.owner[draws] = h
                self.position[draws] = start + i * count + np.arange(count)
            # slices in the memory order of the factors (Fortran), so each product is the per-set one
            alpha, whiten = (np.stack([parts[h][j].T for h in members]).transpose(0, 2, 1) for j in (4, 5))
            self.groups.append((members, alpha, whiten, start, start + count * len(members)))
            for i, h in enumerate(members):  # the sets keep views of the stacks: the factors are held once
                self.parts[h] = (*parts[h][:4], alpha[i], whiten[i])
            start += count * len(members)
        self.set_order = np.concatenate([g[0] for g in self.groups])
        self.set_counts = counts[self.set_order]
        self.order = np.argsort(self.position)  # the draws in set order
        self._fast: list[tuple] | None = None
        self._trend: tuple[np.ndarray, ...] | None = None

    def by_set(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean (q, S) with the draws in set order and each set's variance (q, sets), before clipping at 0, at
        points x (q, d) shared by every draw."""
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
            if len(self.trended) == sets:
                k += self.tau2[:, None, None] * outer
            elif len(self.trended):
                k[self.trended] = k[self.trended] + self.tau2[self.trended, None, None] * outer
            for members, alpha, whiten, first, last in self.groups:
                km = k[members]
                mean[rows, first:last] = np.matmul(km, alpha).transpose(1, 0, 2).reshape(len(block), -1)
                spread = np.sum(np.matmul(whiten, km.transpose(0, 2, 1)) ** 2, axis=1)  # (sets, q)
                var[rows, members] = (self.eta2[members, None] + self.tau2[members, None] * prior - spread).T
        return mean, var

    def shared(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (q, S) at points x (q, d) shared by every draw (variance before clipping at 0)."""
        mean, var = self.by_set(x)
        return np.take(mean, self.position, axis=1), np.take(var, self.owner, axis=1)

    def shared_draw(self, x: np.ndarray, xi: np.ndarray) -> np.ndarray:
        """mean + sqrt(var) xi (q, S) at points x (q, d) shared by every draw, xi (S,): the square roots taken once
        per set, the draws put back in their order once."""
        mean, var = self.by_set(x)
        spread = np.repeat(np.sqrt(np.maximum(var[:, self.set_order], 0.0)), self.set_counts, axis=1)
        spread *= xi[self.order]
        spread += mean
        return np.take(spread, self.position, axis=1)

    def _per_draw_arrays(self) -> list[tuple[np.ndarray, ...]]:
        """Per set, for ``per_draw``, with the runs padded by zeros to ``width`` (a multiple of 8, which BLAS and
        numpy's loops take faster: 63 runs cost a quarter more than 64): the runs' augmented coordinates
        (z', 1, -|z'|^2 / 2), alpha^T, and [W^T, W^T W T] (one product gives W k and the trend's cross term
        k^T W^T W T). A padded run's correlation meets only zeros, so the numbers are those without padding."""
        if self._fast is None:
            n, m = self.basis.shape
            width = -(-n // 8) * 8
            fast = []
            for h, (_, _, _, _, alpha, whiten) in enumerate(self.parts):
                zs = self.z / self.ells[h]
                columns = np.zeros((width, zs.shape[1] + 2))
                columns[:n] = np.column_stack([zs, np.ones(n), -0.5 * np.sum(zs ** 2, axis=1)])
                alpha_t = np.zeros((alpha.shape[1], width))
                alpha_t[:, :n] = alpha.T
                right = np.zeros((width, width + m))
                right[:n, :n] = whiten.T
                right[:n, width:] = whiten.T @ (whiten @ self.basis)
                fast.append((columns, alpha_t, right))
            self._fast = fast  # assigned whole: a thread never sees it half built
        return self._fast

    def _trend_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per draw in set order: tau^2 (S,), T^T alpha (m, S) and (W T)^T (W T) (S, m, m), for the trend's share."""
        if self._trend is None:
            tau2 = np.repeat(self.tau2[self.set_order], self.set_counts)
            basis_alpha = np.concatenate([self.basis.T @ self.parts[h][4] for h in self.set_order], axis=1)
            grams = [self.parts[h][5] @ self.basis for h in self.set_order]
            gram = np.repeat(np.stack([g.T @ g for g in grams]), self.set_counts, axis=0)
            self._trend = tau2, basis_alpha, gram
        return self._trend

    def per_draw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (L, S) at points x (L, S, d), one per draw on the second axis (variance before
        clipping at 0)."""
        lead, _, d = x.shape
        se = self.covariance == "se"
        x = x[:, self.order, :]  # set order: each set's draws in adjacent columns
        column_set = np.repeat(self.set_order, self.set_counts)
        rows = np.empty((lead, self.n_draws, d + 2))  # (x', -|x'|^2 / 2 [+ log eta^2], 1), x' = x / ell
        np.divide(x, self.ells[column_set], out=rows[..., :d])
        rows[..., d] = -0.5 * sum(rows[..., i] ** 2 for i in range(d))
        if se:
            rows[..., d] += np.log(self.eta2[column_set])
        rows[..., d + 1] = 1.0
        m = self.basis.shape[1] if len(self.trended) else 0
        mean, var = np.empty((lead, self.n_draws)), np.empty((lead, self.n_draws))
        cross = np.empty((lead, self.n_draws, m))  # k^T W^T W T: the trend's cross term with the kernel
        fast = self._per_draw_arrays()
        width = fast[0][0].shape[0]
        firsts = np.concatenate([[0], np.cumsum(self.set_counts)[:-1]])

        def one_set(h: int, first: int, count: int) -> None:  # writes its own columns: sets run on threads
            columns, alpha_t, right = fast[h]
            right = right[:, :width + m]
            draws = slice(first, first + count)
            step = max(1, ROWS // count)
            for start in range(0, lead, step):
                block = (slice(start, start + step), draws)
                shape = mean[block].shape
                half = rows[block].reshape(-1, d + 2) @ columns.T  # -|x' - z'|^2 / 2 [+ log eta^2]: (q, width)
                if se:
                    k = np.exp(half, out=half)
                else:
                    k = self.eta2[h] * correlation(self.covariance, np.maximum(-2.0 * half, 0.0))[0]
                mean[block] = np.vecdot(k.reshape(*shape, width), alpha_t)
                product = k @ right  # rows: W k(x, Z) [, k^T W^T W T] (one full product)
                u = product[:, :width]
                var[block] = (self.eta2[h] - np.vecdot(u, u)).reshape(shape)
                if m:
                    cross[block] = product[:, width:].reshape(*shape, m)

        in_threads(one_set, zip(self.set_order, firsts, self.set_counts, strict=True))
        if m:  # the trend's tau^2 t(x) T^T, expanded in its m columns, for all points at once
            t = self.trend_basis(x)
            tau2, basis_alpha, gram = self._trend_terms()
            mean += tau2 * np.einsum("lsm,ms->ls", t, basis_alpha)
            var += tau2 * (np.einsum("lsm,lsm->ls", t, t - 2 * cross) - tau2 * np.einsum("lsm,smk,lsk->ls", t, gram, t))
        return np.take(mean, self.position, axis=1), np.take(var, self.position, axis=1)
