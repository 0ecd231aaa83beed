"""Convergence checks run after every fit: R-hat, bulk and tail ESS, divergences, tree depth.

Thresholds follow Vehtari et al. 2021 (rank-normalised R-hat <= 1.01, bulk and tail ESS of at
least 100 per chain) and treat any divergence as a failure.

When a check fails, the parameters that failed it are named, with the ones they trade off against:
pairs whose posterior correlation (on each parameter's unconstrained scale: log of a positive, logit of
a share) is at least ``RIDGE_CORRELATION`` in size. A ridge means the runs pin a combination of the
parameters, not each one; the remedy names them (a prior from published fits, a fixed value, or runs
that separate them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
import xarray as xr

from bayeslaw.laws.coords import to_free
from bayeslaw.likelihoods import NOISE_PARAMETERS

MAX_RHAT = 1.01
MIN_ESS_PER_CHAIN = 100
MAX_TREEDEPTH_FRACTION = 0.01
RIDGE_CORRELATION = 0.7


@dataclass(frozen=True)
class Diagnostics:
    """Worst-case convergence figures over the sampled parameters, and what they mean."""

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    treedepth_fraction: float
    chains: int
    draws: int
    slowest: tuple[str, ...] = ()  # parameters failing R-hat or ESS, worst first
    ridge: tuple[tuple[str, str, float], ...] = ()  # strongly correlated pairs involving them

    @property
    def failed_checks(self) -> list[str]:
        """Each failed check as a short statement, e.g. 'R-hat 1.024 > 1.01'."""
        need = MIN_ESS_PER_CHAIN * self.chains
        out = []
        if not self.max_rhat <= MAX_RHAT:
            out.append(f"R-hat {self.max_rhat:.3f} > {MAX_RHAT}")
        if not self.min_ess_bulk >= need:
            out.append(f"bulk ESS {self.min_ess_bulk:.0f} < {need}")
        if not self.min_ess_tail >= need:
            out.append(f"tail ESS {self.min_ess_tail:.0f} < {need}")
        if self.divergences:
            out.append(f"{self.divergences} divergent transitions")
        if self.treedepth_fraction > MAX_TREEDEPTH_FRACTION:
            out.append(f"{self.treedepth_fraction:.1%} of draws at the maximum tree depth")
        return out

    def brief(self) -> str:
        """The failed checks and the parameters behind them, on one line ('' when converged)."""
        checks = ", ".join(self.failed_checks)
        return checks + (f" (worst: {', '.join(self.slowest[:4])})" if checks and self.slowest else "")

    @property
    def problems(self) -> list[str]:
        """One plain sentence per failed check, each with its remedy, then the ridge if there is one."""
        remedies = {"R-hat": "chains disagree; run longer (more tune and draws) or use tighter priors",
                    "bulk ESS": "too few effective draws; increase draws",
                    "tail ESS": "intervals are unreliable; increase draws",
                    "divergent": "the posterior is hard to explore; raise target_accept (e.g. 0.95), use more "
                                 "tuning, or use tighter priors",
                    "maximum tree depth": "a ridge in the posterior; use more tuning or tighter priors"}
        where = f" (worst: {', '.join(self.slowest[:4])})" if self.slowest else ""
        out = []
        for check in self.failed_checks:
            key = next(k for k in remedies if k in check)
            out.append(f"{check}{where if key in ('R-hat', 'bulk ESS', 'tail ESS') else ''}: {remedies[key]}")
        if out and self.ridge:
            out.append(self.ridge_remedy())
        return out

    def ridge_remedy(self) -> str:
        """The parameters that trade off, and how to separate them."""
        names = list(dict.fromkeys([*(n for n in self.slowest if any(n in pair[:2] for pair in self.ridge)),
                                    *(name for a, b, _ in self.ridge for name in (a, b))]))
        pairs = ", ".join(f"{a}~{b} {r:+.2f}" for a, b, r in self.ridge[:4])
        first = next((n for n in names if n not in NOISE_PARAMETERS), names[0])
        return (f"ridge: {', '.join(names)} trade off (posterior correlations {pairs}); the runs pin a "
                f"combination of them, not each one. Remedies: priors from published fits (prior_from="
                f"'literature', CLI --prior-from literature), a tighter prior or a fixed value for one of them "
                f"(--prior '{first}=...', or --fix with a published parameter such as E), or runs that separate "
                f"them (more model sizes, shorter and longer runs per size)")

    @property
    def converged(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        out = asdict(self)
        out["slowest"], out["ridge"] = list(self.slowest), [list(r) for r in self.ridge]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping) -> Diagnostics:
        """The inverse of ``to_dict``; a field of the wrong type raises ValueError naming it."""
        raw = dict(raw)
        unknown = sorted(set(raw) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown field '{unknown[0]}'")

        def number(key: str, whole: bool = False) -> float | int:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
                raise ValueError(f"{key} must be a {'whole ' if whole else ''}number, got {value!r}")
            return int(value) if whole else float(value)

        slowest, ridge = raw.get("slowest", ()), raw.get("ridge", ())
        if not isinstance(slowest, list | tuple) or not all(isinstance(n, str) for n in slowest):
            raise ValueError("slowest must be a list of parameter names")
        if not isinstance(ridge, list | tuple) or not all(
                isinstance(r, list | tuple) and len(r) == 3 and isinstance(r[0], str) and isinstance(r[1], str)
                and isinstance(r[2], int | float) and not isinstance(r[2], bool) for r in ridge):
            raise ValueError("ridge must be a list of [name, name, correlation]")
        return cls(number("max_rhat"), number("min_ess_bulk"), number("min_ess_tail"), number("divergences", True),
                   number("treedepth_fraction"), number("chains", True), number("draws", True), tuple(slowest),
                   tuple((a, b, float(r)) for a, b, r in ridge))

    def __str__(self) -> str:
        head = (f"R-hat max {self.max_rhat:.3f}, ESS bulk min {self.min_ess_bulk:.0f}, tail min "
                f"{self.min_ess_tail:.0f}, divergences {self.divergences}, max tree depth "
                f"{self.treedepth_fraction:.1%} ({self.chains} chains x {self.draws} draws)")
        if self.converged:
            return head + ": converged"
        return head + "\nNOT CONVERGED:\n" + "\n".join(f"  - {p}" for p in self.problems)


def _unconstrained(values: np.ndarray, support: str) -> np.ndarray:
    """``to_free`` on the parameter's support; "auto" (a parameter the law does not declare) guesses it."""
    if support == "auto":
        support = "unit" if np.all((values > 0) & (values < 1)) else "positive" if np.all(values > 0) else "real"
    return to_free(values, support)


def find_ridge(posterior: xr.Dataset, names: Sequence[str], involving: Sequence[str],
               supports: Mapping[str, str] | None = None) -> tuple[tuple[str, str, float], ...]:
    """Pairs of ``names`` with |correlation| >= RIDGE_CORRELATION on the unconstrained scale, at least one of
    them in ``involving``; strongest first."""
    supports = supports or {}
    columns = {n: _unconstrained(posterior[n].values.ravel().astype(float), supports.get(n, "auto")) for n in names}
    columns = {n: v for n, v in columns.items() if np.all(np.isfinite(v)) and np.std(v) > 0}
    keys = list(columns)
    if len(keys) < 2:
        return ()
    corr = np.corrcoef(np.array([columns[k] for k in keys]))
    pairs = [(keys[i], keys[j], float(corr[i, j])) for i in range(len(keys)) for j in range(i + 1, len(keys))
             if abs(corr[i, j]) >= RIDGE_CORRELATION and (keys[i] in involving or keys[j] in involving)]
    return tuple(sorted(pairs, key=lambda p: -abs(p[2])))


def diagnose(posterior: xr.Dataset, sample_stats: xr.Dataset, var_names: list[str],
             supports: Mapping[str, str] | None = None) -> Diagnostics:
    """Worst R-hat and ESS over ``var_names``, the sampler's divergences and tree depth hits, and, when a
    check fails, the parameters behind it (``supports``: each law parameter's support, for the ridge)."""
    import arviz as az

    sampled = posterior[var_names]
    rhat = az.rhat(sampled)
    ess_bulk = az.ess(sampled, method="bulk")
    ess_tail = az.ess(sampled, method="tail")

    def each(ds: xr.Dataset, fn) -> dict[str, float]:
        return {v: float(fn(ds[v].values)) for v in ds.data_vars}

    rhats, bulks, tails = each(rhat, np.max), each(ess_bulk, np.min), each(ess_tail, np.min)
    chains = int(posterior.sizes["chain"])
    need = MIN_ESS_PER_CHAIN * chains
    # worst first: by how far each parameter is from passing its worst check
    badness = {v: max((rhats[v] - 1.0) / (MAX_RHAT - 1.0), need / max(bulks[v], 1e-9), need / max(tails[v], 1e-9))
               for v in var_names}
    slowest = tuple(v for v in sorted(var_names, key=lambda v: -badness[v])
                    if not (rhats[v] <= MAX_RHAT and bulks[v] >= need and tails[v] >= need))
    depth = sample_stats.get("reached_max_treedepth")
    divergences = int(sample_stats["diverging"].sum())
    failing = slowest or (tuple(var_names) if divergences else ())
    scalars = [v for v in var_names if posterior[v].ndim == 2]  # a ridge is between parameters, not latent vectors
    failing_scalars = tuple(v for v in failing if v in scalars)
    ridge = find_ridge(posterior, scalars, failing_scalars, supports) if failing_scalars else ()
    return Diagnostics(
        max_rhat=float(np.max(list(rhats.values()))),  # NaN propagates and fails the check
        min_ess_bulk=float(np.min(list(bulks.values()))),
        min_ess_tail=float(np.min(list(tails.values()))),
        divergences=divergences,
        treedepth_fraction=float(depth.mean()) if depth is not None else 0.0,
        chains=chains,
        draws=int(posterior.sizes["draw"]),
        slowest=slowest,
        ridge=ridge,
    )
