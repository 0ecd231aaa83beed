"""Partial pooling across model families: ``fit(law, data, group="family")`` (CLI ``--group COLUMN``).

Each family g (a value of the group column) has its own copy of the law's parameters theta_g, at its own
pivots (the geometric means of its N, D and loss), so the law's sampling coordinates decorrelate the
coefficients from the exponents family by family. The pooled parameters k (default: the law's exponents,
alpha and beta for chinchilla) are drawn from a population on their unconstrained scale v (log of a positive
parameter, logit of a share, itself if real):

    v_gk ~ Normal(m_k, s_k)
    m_k ~ Normal(mean, sd of the law's default prior of k on the v scale)    (exponents: Normal(log 0.3, 0.7))
    s_k ~ Gamma(2, 2 / SPREAD_SCALE[support])        (mean 0.3 on the log scale, 95% below 0.71)

s_k's prior keeps away from 0 (Gamma with shape 2, Chung et al. 2013, "A nondegenerate penalized likelihood
estimator for variance parameters in multilevel models"): with four families a HalfNormal(0.3) let the sampler
into the neck s_k -> 0 (7-82 divergences per 600 draws on the four families below, against 2-3).
Everything else (E, the coefficients at the pivots, the noise sigma_g and a Student-t's nu_g) is per family
with the law's default priors: loss units differ across families, so E and the coefficients are not
comparable, and the families' tails differ (datablations' 44-epoch runs; measured in the README).

Where the law has sampling coordinates u (``laws/base.py`` ``Coordinates``), NUTS samples u_g per family.
A pooled parameter's slope coordinate shifts v_gk alone (``shift_coordinates`` finds it numerically: log
slope_N for alpha): a family whose runs pin its exponents (``centring``: at least ``MIN_DISTINCT`` distinct
input points) keeps it and gets the population density on the v_gk it implies (the map u -> v has
|det J| = 1: no further Jacobian; centred); the others replace it by z_gk with v_gk = m_k + s_k z_gk,
z_gk ~ Normal(0, 1) (non-centred; the other parameters' map is unchanged, so the Jacobian is block-triangular).
A law without coordinates samples every family non-centred and its other parameters directly.

``PooledFit.family(name)`` is an ordinary :class:`bayeslaw.fit.Fit` of that family (its draws of the
published parameters and noise, its runs, a discrepancy estimated from its residuals), so predict, decide,
compare, holdout and plots work on it unchanged. ``PooledFit.new_family()`` draws the pooled parameters of a
family not in the table (a new z per draw), ``population_priors()`` turns them into priors for fitting a new
family (``fit(law, runs, prior_from="pooled.nc")``; the shape of ``bayeslaw.literature``), and
``catalogue_entry()`` writes them as a catalogue TOML entry.

Source of the idea: Choshen, Zhang & Andreas 2025, "A Hitchhiker's Guide to Scaling Law Estimation" (model
families differ in scaling but predict each other); Gelman et al., Bayesian Data Analysis, ch. 5 (hierarchy).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayeslaw._powers import powers_by_logs
from bayeslaw.data import Runs, _rows, load_runs, read_table
from bayeslaw.errors import BayeslawError, ConvergenceWarning, DataError, FitFileError
from bayeslaw.files import check_readable
from bayeslaw.laws import Law, get_law, pivots_of
from bayeslaw.laws.base import EXPONENT
from bayeslaw.laws.coords import from_free, to_free
from bayeslaw.likelihoods import get_likelihood
from bayeslaw.priors import Prior, log_abs_jacobian

SPREAD_SCALE = {"positive": 0.3, "real": 0.5, "unit": 0.75}  # HalfNormal scale of s_k per support (v's scale)
SPREAD_PRIOR = "gamma"  # s_k's prior: "gamma" (Gamma(2, 2 / scale), kept) or "halfnormal" (measured, ARCHITECTURE)
SHARED_TAILS = False  # a Student-t's nu shared by the families (True) or one per family (False)
PRIOR_MOMENT_DRAWS = 20_000  # draws of a default prior used to find its mean and sd on the v scale
FORMAT = "bayeslaw-pooled-1"


# --- the table --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Grouped:
    """The runs of every family (one ``Runs``, rows in table order), each run's family code and the names."""

    runs: Runs
    codes: np.ndarray
    names: tuple[str, ...]
    column: str

    def family_runs(self, name: str) -> Runs:
        """The runs of one family, renumbered from 0."""
        code = self.code(name)
        frame = self.runs.frame.reset_index(drop=True)[self.codes == code].reset_index(drop=True).rename_axis("run")
        return Runs(frame, self.runs.law, self.runs.mapped, self.runs.derived)

    def code(self, name: str) -> int:
        if name not in self.names:
            raise BayeslawError(f"no family '{name}' in the {self.column} column; families: {', '.join(self.names)}")
        return self.names.index(name)


def load_grouped(data: pd.DataFrame | str | os.PathLike, law: Law | str, group: str,
                 columns: Mapping[str, str] | None = None, likelihood: str = "student_t") -> Grouped:
    """Read a table whose ``group`` column names each run's family; the other columns as ``load_runs`` reads them.

    A missing group column, or empty values in it, is a DataError naming the column (and the rows)."""
    law = get_law(law)
    frame, lines = read_table(data)
    if group not in frame.columns:
        raise DataError(f"group column '{group}' is not in the table; it has {', '.join(map(str, frame.columns))}")
    labels = frame[group]
    missing = labels.isna().to_numpy() | (labels.astype(str).str.strip() == "").to_numpy()
    if missing.any():
        raise DataError(f"group column '{group}': {_rows(missing, lines)} empty; give every run a family name")
    names = tuple(dict.fromkeys(str(v).strip() for v in labels))
    if len(names) < 2:
        raise DataError(f"group column '{group}' names one family ('{names[0]}'); pooling needs at least two, "
                        "or fit without a group")
    runs = load_runs(frame.drop(columns=[group]), law, columns, likelihood=likelihood)
    codes = np.array([names.index(str(v).strip()) for v in labels], dtype=int)
    return Grouped(runs, codes, names, group)


# --- the population prior ------------------------------------------------------------------------------

def population_location(prior: Prior, support: str) -> tuple[float, float]:
    """(mean, sd) of a parameter's default prior on its unconstrained scale v: the prior of m_k.

    Exact for LogNormal (log) and Normal (real); otherwise from seeded draws."""
    if prior.dist == "LogNormal" and support == "positive":
        return float(prior.kwargs["mu"]), float(prior.kwargs["sigma"])
    if prior.dist == "Normal" and support == "real":
        return float(prior.kwargs["mu"]), float(prior.kwargs["sigma"])
    with np.errstate(all="ignore"):
        v = to_free(prior.sample(np.random.default_rng(0), PRIOR_MOMENT_DRAWS), support)
    v = v[np.isfinite(v)]
    return float(v.mean()), float(v.std())


def default_pool(law: Law) -> tuple[str, ...]:
    """The law's exponents (parameters with the shared exponent prior): what is comparable across families."""
    pooled = tuple(name for name, param in law.params.items() if param is EXPONENT)
    if not pooled:
        raise BayeslawError(f"law '{law.name}' has no exponent parameters to pool; choose them with pool=[...] "
                            f"from {', '.join(law.params)}")
    return pooled


def check_pool(law: Law, pool: Sequence[str] | None) -> tuple[str, ...]:
    if pool is None:
        return default_pool(law)
    pool = tuple(pool)
    unknown = [name for name in pool if name not in law.params]
    if unknown or not pool:
        raise BayeslawError(f"cannot pool {', '.join(unknown) or 'nothing'}: law '{law.name}' samples "
                            f"{', '.join(law.params)}")
    return pool


def _population(name: str) -> tuple[str, str]:
    return f"pop_mean_{name}", f"pop_sd_{name}"


# --- the model --------------------------------------------------------------------------------------------

def family_pivots(grouped: Grouped) -> dict[str, np.ndarray]:
    """Each family's pivots (geometric means of the law's inputs and target), as arrays over families."""
    law = grouped.runs.law
    per = [pivots_of(grouped.family_runs(name).frame, (*law.inputs, law.target)) for name in grouped.names]
    return {key: np.array([p[key] for p in per], dtype=float) for key in per[0]}


def shift_coordinates(law: Law, pool: Sequence[str], start: Mapping[str, float],
                      pivots: Mapping[str, float]) -> dict[str, str]:
    """For each pooled parameter k, the sampling coordinate u_j that shifts v_k alone (dv_k/du_j = 1, every other
    parameter unchanged), found numerically at ``start``: replacing u_j by z_k gives v_k = m_k + s_k z_k with the
    other parameters' map unchanged (block-triangular Jacobian). Empty when some pooled parameter has none."""
    coordinates = law.coordinates
    base = coordinates.to_params({k: np.float64(v) for k, v in start.items()}, pivots, np)
    found = {}
    for name in pool:
        support = law.params[name].support
        for coord in coordinates.names:
            moved = coordinates.to_params({k: np.float64(v + (0.1 if k == coord else 0.0)) for k, v in start.items()},
                                          pivots, np)
            other = all(np.isclose(moved[p], base[p], rtol=1e-12, atol=1e-12) for p in law.params if p != name)
            step = float(to_free(moved[name], support) - to_free(base[name], support))
            if other and np.isclose(step, 0.1, rtol=1e-9):
                found[name] = coord
                break
        else:
            return {}
    return found


def build_pooled_model(grouped: Grouped, priors: Mapping[str, Prior], pool: Sequence[str],
                       likelihood: str = "student_t", centred: bool | None = None):
    """The PyMC model of the pooled fit (module docstring); per-family parameters have dim ``family``."""
    import pymc as pm
    import pytensor.tensor as pt

    law = grouped.runs.law
    noise_family = get_likelihood(likelihood)
    pivot_values = family_pivots(grouped)
    codes = grouped.codes
    coords = {"family": list(grouped.names), "run": np.arange(len(grouped.runs))}
    coordinates = law.coordinates if all(priors[n].covers(p.support) for n, p in law.params.items()) else None
    with pm.Model(coords=coords) as model:
        inputs = {name: pm.Data(name, values, dims="run") for name, values in grouped.runs.inputs.items()}
        pivots = {name: pm.Data(f"pivot_{name}", value, dims="family") for name, value in pivot_values.items()}
        means, spreads = {}, {}
        for name in pool:
            support = law.params[name].support
            location, scale = population_location(priors[name], support)
            mean_name, sd_name = _population(name)
            means[name] = pm.Normal(mean_name, mu=location, sigma=scale)
            spreads[name] = (pm.HalfNormal(sd_name, sigma=SPREAD_SCALE[support]) if SPREAD_PRIOR == "halfnormal" else
                             pm.Gamma(sd_name, alpha=2.0, beta=2.0 / SPREAD_SCALE[support]))
        if coordinates is not None:
            starts = [coordinates.initial({k: float(v[g]) for k, v in pivot_values.items()})
                      for g in range(len(grouped.names))]
            shifts = shift_coordinates(law, pool, starts[0], {k: float(v[0]) for k, v in pivot_values.items()})
            centre = centring(grouped, centred) if shifts else np.ones(len(grouped.names), dtype=bool)
            inside, outside = np.flatnonzero(centre), np.flatnonzero(~centre)
            u = {name: pm.Flat(name, dims="family", initval=np.array([s[name] for s in starts]))
                 for name in coordinates.names if name not in shifts.values()}
            for coord in shifts.values():  # sampled for the centred families only; 0 (unused) for the others
                full = pt.zeros(len(grouped.names))
                if inside.size:
                    flat = pm.Flat(coord, shape=inside.size, initval=np.array([starts[g][coord] for g in inside]))
                    full = pt.set_subtensor(full[inside], flat)
                u[coord] = full
            theta = coordinates.to_params(u, pivots, pt)
            density = 0.0
            for name, param in law.params.items():
                if name in pool:
                    v = to_free(theta[name], param.support, pt)
                    if outside.size:  # non-centred: v = m + s z in place of the shift coordinate
                        z = pm.Normal(f"z_{name}", 0.0, 1.0, shape=outside.size)
                        v = pt.set_subtensor(v[outside], means[name] + spreads[name] * z)
                        theta[name] = from_free(v, param.support, pt)
                    if inside.size:  # centred: the population density of v (|det du/dv| = 1)
                        density = density + pm.logp(pm.Normal.dist(means[name], spreads[name]), v[inside]).sum()
                else:
                    density = density + (priors[name].logp(theta[name])
                                         + log_abs_jacobian(theta[name], param.support, pt)).sum()
            pm.Potential("prior_density", density)
        else:
            theta = {}
            for name, param in law.params.items():
                if name in pool:
                    z = pm.Normal(f"z_{name}", 0.0, 1.0, dims="family")
                    v = means[name] + spreads[name] * z
                    theta[name] = from_free(v, param.support, pt)
                else:
                    prior = priors[name]
                    theta[name] = getattr(pm, prior.dist)(name, **prior.kwargs, dims="family")
        published = law.to_published(theta, pivots, pt)
        per_run = {name: value[codes] for name, value in published.items()}
        mu = powers_by_logs(pt.log(law.function(per_run, inputs, pt)), inputs, grouped.runs.inputs, "run")
        noise = {}
        for name in noise_family.params:
            prior = priors[name]
            if name == "sigma" or not SHARED_TAILS:  # per family: residual scales differ between families' losses
                noise[name] = getattr(pm, prior.dist)(name, **prior.kwargs, dims="family")[codes]
            else:
                noise[name] = getattr(pm, prior.dist)(name, **prior.kwargs)
        observed = pm.Data(f"log_{law.target}", np.log(grouped.runs.target), dims="run")
        noise_family._observe(pm, f"obs_log_{law.target}", mu, noise, observed, dims="run")
    model.centre = centre if coordinates is not None else np.zeros(len(grouped.names), dtype=bool)
    model.shifts = shifts if coordinates is not None else {}
    return model, coordinates


MIN_DISTINCT = 6  # distinct input points (N, D) for a family's exponents to be sampled centred


def centring(grouped: Grouped, centred: bool | None) -> np.ndarray:
    """Which families sample their pooled parameters centred (True) and which non-centred.

    None (default): centred where the family's runs sit at ``MIN_DISTINCT`` or more distinct input points (its
    runs pin its exponents: a non-centred z would trade off against m and s), non-centred elsewhere (the
    population sets the exponents: a centred v would form a funnel with s). The datablations families (every
    size at one D, D growing with N: 2-3 points) are non-centred, Chinchilla and Frantar T5 (6-9+) centred."""
    if centred is not None:
        return np.full(len(grouped.names), bool(centred))
    law = grouped.runs.law
    return np.array([len(grouped.family_runs(name).frame[list(law.inputs)].drop_duplicates()) >= MIN_DISTINCT
                     for name in grouped.names])


# --- the result -------------------------------------------------------------------------------------------

@dataclass
class PooledFit:
    """A pooled fit: per-family draws of the law's parameters (dim ``family``), the population's m_k and s_k.

    ``posterior`` holds theta_g (the law's sampled parameters, not its sampling coordinates), the noise parameters
    per family (sigma, and nu for a Student-t), ``pop_mean_K`` and ``pop_sd_K`` for each pooled parameter K."""

    law: Law
    grouped: Grouped
    posterior: xr.Dataset
    sample_stats: xr.Dataset
    priors: dict[str, Prior]
    pool: tuple[str, ...]
    likelihood: str
    diagnostics: Any
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def families(self) -> tuple[str, ...]:
        return self.grouped.names

    @property
    def converged(self) -> bool:
        return self.diagnostics.converged

    def family(self, name: str, discrepancy: str | None = "gp"):
        """That family as an ordinary :class:`bayeslaw.fit.Fit`: its runs, its draws of the law's parameters and
        noise, and (``discrepancy="gp"``) a discrepancy estimated from its residuals as ``fit`` does."""
        from bayeslaw.discrepancy import check_kind, estimate
        from bayeslaw.fit import Fit, assemble, attach_discrepancy, median_log_mean

        runs = self.grouped.family_runs(name)
        code = self.grouped.code(name)
        noise = get_likelihood(self.likelihood).params
        keep = [*self.law.params, *noise]
        posterior = self.posterior[keep].isel(family=code, drop=True)
        info = {**self.info, "pooled": {"family": name, "group": self.grouped.column, "pool": list(self.pool),
                                        "families": list(self.families)}}
        info.pop("population", None)
        priors = {k: v for k, v in self.priors.items() if k in keep}
        idata = assemble(runs, priors, self.likelihood, posterior, self.sample_stats, self.diagnostics,
                         {k: v for k, v in info.items() if k != "pooled"} | {"notes": [self._note(name)]})
        kind = check_kind(discrepancy)
        spec = None
        if kind is not None:
            residuals = np.log(runs.target) - median_log_mean(self.law, idata.posterior, runs.inputs)
            spec = estimate(kind, runs.inputs, residuals, seed=int(self.info.get("seed") or 0))
            attach_discrepancy(idata, spec)
        return Fit(self.law, runs, idata, priors, self.likelihood, self.diagnostics, info, spec)

    def _note(self, name: str) -> str:
        return (f"family '{name}' of a pooled fit over {self.grouped.column} ({', '.join(self.families)}); "
                f"{', '.join(self.pool)} drawn from a population, so their prior is not the one stored here")

    def spreads(self) -> pd.DataFrame:
        """Per pooled parameter: the population's median value on the parameter's scale and the spread s_k
        (median and 90% interval, on the unconstrained scale: log for exponents)."""
        rows = []
        for name in self.pool:
            mean_name, sd_name = _population(name)
            m, s = self.posterior[mean_name].values.ravel(), self.posterior[sd_name].values.ravel()
            support = self.law.params[name].support
            rows.append({"parameter": name, "population_median": float(from_free(np.median(m), support, np)),
                         "spread_median": float(np.median(s)), "spread_lo": float(np.quantile(s, 0.05)),
                         "spread_hi": float(np.quantile(s, 0.95)),
                         **{f"{name}_{family}": float(np.median(self.posterior[name].isel(family=g).values))
                            for g, family in enumerate(self.families)}})
        return pd.DataFrame(rows).set_index("parameter")

    def new_family(self, seed: int = 0) -> xr.Dataset:
        """Draws of the pooled parameters for a family not in the table: v = m_k + s_k z, a new z per draw."""
        rng = np.random.default_rng([seed, 23])
        out = {}
        for name in self.pool:
            mean_name, sd_name = _population(name)
            m, s = self.posterior[mean_name], self.posterior[sd_name]
            v = m + s * rng.standard_normal(m.shape)
            out[name] = xr.apply_ufunc(from_free, v, self.law.params[name].support, np)
        return xr.Dataset(out)

    def population_priors(self, seed: int = 0) -> dict[str, Prior]:
        """Priors for a new family's pooled parameters: the population predictive of v matched by its mean and
        sd (LogNormal for a positive parameter, Normal for a real one, as ``bayeslaw.literature`` builds)."""
        from bayeslaw.literature import _beta_like

        draws = self.new_family(seed)
        out = {}
        for name in self.pool:
            support = self.law.params[name].support
            v = to_free(draws[name].values.ravel(), support)
            mean, sd = float(v.mean()), float(v.std())
            out[name] = {"positive": Prior("LogNormal", mu=mean, sigma=sd), "real": Prior("Normal", mu=mean, sigma=sd),
                         "unit": _beta_like(mean, sd)}[support]
        return out

    def catalogue_entry(self, name: str, source: str = "", seed: int = 0) -> str:
        """A catalogue TOML entry (``models/*.toml``) for a new family of this population: the pooled exponents'
        medians as constants and their population-predictive sd as uncertainty (see ``bayeslaw.catalogue``)."""
        priors = self.population_priors(seed)
        lines = [f"# Population prior of {', '.join(self.pool)} for a new family, from a pooled fit of {self.law.name}",
                 f"# over {', '.join(self.families)} (bayeslaw.pooling; no constants: E and the coefficients are "
                 "per family).", f'name = "{name}"', f'law = "{self.law.name}"',
                 f'title = "{self.law.name} law with {", ".join(self.pool)} from a population of '
                 f'{len(self.families)} model families"', f'likelihood = "{self.likelihood}"', "", "[priors]",
                 *(f'{k} = "{_prior_text(p)}"' for k, p in priors.items()), "", "[source]",
                 f'citation = "{source or "bayeslaw pooled fit"}"',
                 f'where = "population predictive of a pooled fit over {self.grouped.column}: '
                 f'{", ".join(self.families)}"', "", "[conventions]",
                 *(f'{k} = "{v}"' for k, v in self.law.conventions.items()), ""]
        return "\n".join(lines)

    def summary(self) -> pd.DataFrame:
        """Mean, sd and 90% HDI of each family's parameters ('alpha[c4]'), noise, and the population's m_k, s_k."""
        import arviz as az

        return az.summary(per_family_scalars(self.posterior), kind="stats", hdi_prob=0.9, round_to="none")

    def save(self, path: str | os.PathLike) -> Path:
        """Write to NetCDF atomically (a failed save leaves no file), as ``Fit.save`` does."""
        return save_pooled(self, path)

    def __repr__(self) -> str:
        return (f"<PooledFit {self.law.name} over {len(self.families)} families ({', '.join(self.families)}), "
                f"{len(self.grouped.runs)} runs: {self.diagnostics}>")


# --- fitting ----------------------------------------------------------------------------------------------

def fit_pooled(law: Law | str, data: Any, *, group: str, pool: Sequence[str] | None = None,
               priors: Mapping[str, Any] | None = None, likelihood: str = "student_t", chains: int = 4,
               draws: int = 1000, tune: int = 500, seed: int | None = None, target_accept: float | None = None,
               columns: Mapping[str, str] | None = None, progress: bool = False, retry: bool = True,
               centred: bool | None = None) -> PooledFit:
    """Sample the pooled model with nutpie at the law's settings (``fit``'s second attempt when a check fails)."""
    from bayeslaw.diagnostics import diagnose
    from bayeslaw.fit import check_seed, second_attempt
    from bayeslaw.model import model_priors
    from bayeslaw.sampling import sample_nutpie

    law = get_law(law)
    grouped = load_grouped(data, law, group, columns, likelihood)
    pool = check_pool(law, pool)
    resolved = model_priors(law, likelihood, priors)
    given = [name for name in priors or {} if name in pool]
    if given:
        raise BayeslawError(f"{', '.join(given)} pooled: its prior is the population's; drop the prior or the pool")
    seed = check_seed(seed)
    target_accept = law.target_accept if target_accept is None else float(target_accept)
    model, coordinates = build_pooled_model(grouped, resolved, pool, likelihood, centred)
    pivots = {k: xr.DataArray(v, dims="family") for k, v in family_pivots(grouped).items()}
    attempt = {"tune": int(tune), "draws": int(draws), "thin": law.thin, "target_accept": target_accept}
    attempts = []
    for number in range(2 if retry else 1):
        posterior, stats, timings = sample_nutpie(
            model, key=None, chains=int(chains), draws=attempt["draws"] * attempt["thin"], tune=attempt["tune"],
            seed=seed + number, target_accept=attempt["target_accept"], progress=progress)
        kept = slice(attempt["thin"] - 1, None, attempt["thin"])
        posterior, stats = posterior.isel(draw=kept), stats.isel(draw=kept)
        posterior = draws_of_parameters(law, posterior, coordinates, pool, pivots, model.centre, model.shifts)
        posterior = posterior.assign_coords(family=list(grouped.names))
        sampled = [*law.params, *get_likelihood(likelihood).params,
                   *(n for name in pool for n in _population(name))]
        scalars = per_family_scalars(posterior[sampled])
        diagnostics = diagnose(scalars, stats, list(scalars.data_vars))
        attempts.append({**attempt, "seed": seed + number, "converged": diagnostics.converged,
                         "diagnostics": diagnostics.to_dict(), **timings})
        if diagnostics.converged:
            break
        attempt = second_attempt(attempt, diagnostics)
    ordered = [*law.params, *(n for n in posterior.data_vars if n not in law.params)]
    info = {"seed": seed, "sampler": "nutpie", "tune": int(tune), "target_accept": target_accept, "retry": retry,
            "compile_seconds": attempts[0]["compile_seconds"],
            "sample_seconds": sum(a["sample_seconds"] for a in attempts), "attempts": attempts,
            "fixed": {}, "prior_from": None,
            "centred": [name for name, c in zip(grouped.names, model.centre, strict=True) if c],
            "priors_given": {k: Prior.parse(v, k).to_dict() for k, v in (priors or {}).items()}}
    result = PooledFit(law, grouped, posterior[ordered], stats, dict(resolved), pool, likelihood, diagnostics, info)
    if not diagnostics.converged:
        warnings.warn(f"the pooled {law.name} fit did not converge:\n" + "\n".join(diagnostics.problems),
                      ConvergenceWarning, stacklevel=3)
    return result


def _family_dims(posterior: xr.Dataset) -> xr.Dataset:
    """The sampler's draws with each vector's own dim ('alpha_dim_0') named ``family``."""
    out = {}
    for name, values in posterior.data_vars.items():
        extra = [d for d in values.dims if d not in ("chain", "draw")]
        out[name] = values.rename({extra[0]: "family"}).drop_vars("family", errors="ignore") if extra else values
    return xr.Dataset(out)


def draws_of_parameters(law: Law, posterior: xr.Dataset, coordinates: Any, pool: Sequence[str],
                        pivots: Mapping[str, xr.DataArray], centre: np.ndarray,
                        shifts: Mapping[str, str]) -> xr.Dataset:
    """The sampler's draws with the law's parameters (dim ``family``) in place of the sampling coordinates and z."""
    inside, outside = np.flatnonzero(centre), np.flatnonzero(~centre)
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    full = {}
    for coord in shifts.values():
        values = np.zeros((chains, draws, len(centre)))
        if inside.size:
            values[..., inside] = posterior[coord].values.reshape(chains, draws, -1)
        full[coord] = values
    named = _family_dims(posterior.drop_vars([c for c in shifts.values() if c in posterior]
                                             + [f"z_{k}" for k in pool if f"z_{k}" in posterior]))
    for coord, values in full.items():
        named[coord] = xr.DataArray(values, dims=("chain", "draw", "family"))
    if coordinates is not None:
        theta = coordinates.to_params({n: named[n] for n in coordinates.names}, pivots, np)
        named = named.drop_vars(list(coordinates.names)).assign({n: theta[n] for n in law.params})
    for name in pool:
        if f"z_{name}" not in posterior or not outside.size:
            continue
        support = law.params[name].support
        v = to_free(named[name].values, support) if name in named else np.zeros((chains, draws, len(centre)))
        m = posterior[_population(name)[0]].values[..., None]
        s = posterior[_population(name)[1]].values[..., None]
        v[..., outside] = m + s * posterior[f"z_{name}"].values.reshape(chains, draws, -1)
        named[name] = xr.DataArray(from_free(v, support, np), dims=("chain", "draw", "family"))
    return named


def per_family_scalars(posterior: xr.Dataset) -> xr.Dataset:
    """Each variable with a family dim split into one per family, named 'alpha[c4]': what the checks read."""
    out = {}
    for name, values in posterior.data_vars.items():
        if "family" in values.dims:
            for family in values["family"].values:
                out[f"{name}[{family}]"] = values.sel(family=family, drop=True)
        else:
            out[name] = values
    return xr.Dataset(out)


# --- saving and loading -----------------------------------------------------------------------------------

def save_pooled(result: PooledFit, path: str | os.PathLike) -> Path:
    """NetCDF with groups posterior, sample_stats and constant_data (runs, family codes and names), atomic."""
    import arviz as az

    from bayeslaw import __version__
    from bayeslaw.files import check_writable, write_bytes_atomic
    from bayeslaw.fit import netcdf_bytes

    check_writable(path, FitFileError)
    runs = result.grouped.runs
    run = np.arange(len(runs))
    constant = xr.Dataset({**{k: xr.DataArray(v, dims="run", coords={"run": run}) for k, v in runs.inputs.items()},
                           result.law.target: xr.DataArray(runs.target, dims="run", coords={"run": run}),
                           "family_code": xr.DataArray(result.grouped.codes, dims="run", coords={"run": run})})
    attrs = {"format": FORMAT, "bayeslaw_version": __version__, "law": result.law.name,
             "law_spec": json.dumps(result.law.spec(), sort_keys=True),
             "families": json.dumps(list(result.families)), "group": result.grouped.column,
             "pool": json.dumps(list(result.pool)), "likelihood": result.likelihood,
             "priors": json.dumps({k: p.to_dict() for k, p in result.priors.items()}, sort_keys=True),
             "data_notes": json.dumps({"mapped": runs.mapped, "derived": runs.derived}),
             "data_sha256": runs.digest(), "diagnostics": json.dumps(result.diagnostics.to_dict()),
             "info": json.dumps(result.info)}
    posterior = result.posterior.assign_coords(family=np.array(result.families, dtype=object))
    idata = az.InferenceData(posterior=posterior.assign_attrs(attrs), sample_stats=result.sample_stats,
                             constant_data=constant)
    return write_bytes_atomic(path, netcdf_bytes(idata), FitFileError)


def is_pooled_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a file saved by :func:`save_pooled`."""
    try:
        import arviz as az

        return az.from_netcdf(path).posterior.attrs.get("format") == FORMAT
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return False


def load_pooled(path: str | os.PathLike, law: Law | str | None = None) -> PooledFit:
    """Read a pooled fit saved by :func:`save_pooled`; with ``law``, refuse a file of another law."""
    import arviz as az

    from bayeslaw.diagnostics import Diagnostics

    path = check_readable(path, "a pooled fit file", FitFileError)
    try:
        idata = az.from_netcdf(path)
        attrs = dict(idata.posterior.attrs)
        if attrs.get("format") != FORMAT:
            raise KeyError("format")
        stored = get_law(attrs["law"])
        if json.dumps(stored.spec(), sort_keys=True) != json.dumps(json.loads(attrs["law_spec"]), sort_keys=True):
            raise FitFileError(f"{path}: law '{stored.name}' has changed since this pooled fit was saved; refit it")
        const = idata.constant_data
        frame = pd.DataFrame({n: np.asarray(const[n].values, dtype=float) for n in (*stored.inputs, stored.target)})
        frame.index.name = "run"
        notes = json.loads(attrs["data_notes"])
        runs = Runs(frame, stored, notes["mapped"], notes["derived"])
        if runs.digest() != attrs["data_sha256"]:
            raise FitFileError(f"{path}: the stored runs do not match their recorded hash (attribute 'data_sha256')")
        names = tuple(json.loads(attrs["families"]))
        grouped = Grouped(runs, np.asarray(const["family_code"].values, dtype=int), names, str(attrs["group"]))
        priors = {k: Prior.parse(v, k) for k, v in json.loads(attrs["priors"]).items()}
        diagnostics = Diagnostics.from_dict(json.loads(attrs["diagnostics"]))
        info = json.loads(attrs["info"])
        pool = tuple(json.loads(attrs["pool"]))
        likelihood = str(attrs["likelihood"])
    except FitFileError:
        raise
    except (OSError, ValueError, KeyError, AttributeError, TypeError, BayeslawError) as err:
        raise FitFileError(f"{path}: not a bayeslaw pooled fit file ({type(err).__name__}: {err})") from None
    if law is not None and get_law(law).name != stored.name:
        raise FitFileError(f"{path} holds a pooled fit of law '{stored.name}', not '{get_law(law).name}'")
    posterior = idata.posterior.assign_coords(family=list(names))
    posterior.attrs = {}
    return PooledFit(stored, grouped, posterior, idata.sample_stats, priors, pool, likelihood, diagnostics, info)


def _prior_text(prior: Prior) -> str:
    args = ", ".join(f"{k}={float(v)!r}" for k, v in prior.kwargs.items())  # exact: read back equal
    return f"{prior.dist}({args})"


def priors_from_pooled(path: str | os.PathLike, law: Law) -> dict[str, Prior]:
    """``prior_from=PATH``: the population priors of a saved pooled fit of ``law`` (its pooled parameters)."""
    return load_pooled(path, law).population_priors()
