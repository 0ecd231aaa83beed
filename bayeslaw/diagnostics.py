"""Convergence checks run after every fit: R-hat, bulk and tail ESS, divergences, tree depth.

Thresholds follow Vehtari et al. 2021 (rank-normalised R-hat <= 1.01, bulk and tail ESS of at
least 100 per chain) and treat any divergence as a failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import xarray as xr

MAX_RHAT = 1.01
MIN_ESS_PER_CHAIN = 100
MAX_TREEDEPTH_FRACTION = 0.01


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

    @property
    def problems(self) -> list[str]:
        """One plain sentence per failed check, each with its remedy."""
        out = []
        need = MIN_ESS_PER_CHAIN * self.chains
        if not self.max_rhat <= MAX_RHAT:
            out.append(f"R-hat {self.max_rhat:.3f} > {MAX_RHAT}: chains disagree; run longer "
                       "(more tune and draws) or use tighter priors")
        if not self.min_ess_bulk >= need:
            out.append(f"bulk ESS {self.min_ess_bulk:.0f} < {need}: too few effective draws; increase draws")
        if not self.min_ess_tail >= need:
            out.append(f"tail ESS {self.min_ess_tail:.0f} < {need}: intervals are unreliable; increase draws")
        if self.divergences:
            out.append(f"{self.divergences} divergent transitions: the posterior is hard to explore; raise "
                       "target_accept (e.g. 0.95), use more tuning, or use tighter priors")
        if self.treedepth_fraction > MAX_TREEDEPTH_FRACTION:
            out.append(f"{self.treedepth_fraction:.1%} of draws hit the maximum tree depth: a ridge in the "
                       "posterior; use more tuning or tighter priors")
        return out

    @property
    def converged(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        head = (f"R-hat max {self.max_rhat:.3f}, ESS bulk min {self.min_ess_bulk:.0f}, tail min "
                f"{self.min_ess_tail:.0f}, divergences {self.divergences}, max tree depth "
                f"{self.treedepth_fraction:.1%} ({self.chains} chains x {self.draws} draws)")
        if self.converged:
            return head + ": converged"
        return head + "\nNOT CONVERGED:\n" + "\n".join(f"  - {p}" for p in self.problems)


def diagnose(posterior: xr.Dataset, sample_stats: xr.Dataset, var_names: list[str]) -> Diagnostics:
    """Worst R-hat and ESS over ``var_names``, and the sampler's divergences and tree depth hits."""
    sampled = posterior[var_names]
    rhat = az.rhat(sampled)
    ess_bulk = az.ess(sampled, method="bulk")
    ess_tail = az.ess(sampled, method="tail")

    def worst(ds: xr.Dataset, fn) -> float:
        return float(fn([float(fn(ds[v].values)) for v in ds.data_vars]))

    depth = sample_stats.get("reached_max_treedepth")
    return Diagnostics(
        max_rhat=worst(rhat, np.max),  # NaN propagates and fails the check
        min_ess_bulk=worst(ess_bulk, np.min),
        min_ess_tail=worst(ess_tail, np.min),
        divergences=int(sample_stats["diverging"].sum()),
        treedepth_fraction=float(depth.mean()) if depth is not None else 0.0,
        chains=int(posterior.sizes["chain"]),
        draws=int(posterior.sizes["draw"]),
    )
