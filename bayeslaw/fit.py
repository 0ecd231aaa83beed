"""fit(): sample a law's posterior with NUTS; the Fit result; saving to and loading from NetCDF."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from bayeslaw._draws import flat, n_samples
from bayeslaw.curves import MAX_CHECKPOINTS, MIN_PROGRESS, Curves, build_curves, curve_log_likelihood
from bayeslaw.data import Runs, load_runs
from bayeslaw.diagnostics import Diagnostics, diagnose
from bayeslaw.discrepancy import Discrepancy, check_kind, estimate
from bayeslaw.errors import BayeslawError, ConvergenceWarning, FitFileError
from bayeslaw.files import check_readable, check_writable, write_bytes_atomic
from bayeslaw.fixed import Fixing, resolve_fixed
from bayeslaw.laws import Law, get_law
from bayeslaw.likelihoods import ALL_LIKELIHOODS, NOISE_PARAMETERS
from bayeslaw.model import (
    build_model,
    check_likelihood,
    data_pivots,
    log_likelihood,
    model_priors,
    parameters_from_draws,
    predictive_draws,
    prior_draws,
)
from bayeslaw.priors import Prior

if TYPE_CHECKING:  # arviz is imported where it is used: it takes 2 s, more than a command that does not fit
    import arviz as az

    from bayeslaw.pooling import PooledFit


SAMPLERS = ("nutpie", "pymc", "jax")  # the NUTS backends of bayeslaw.sampling and bayeslaw.sampling_jax
# rows from which nutpie samples in whitened coordinates (bayeslaw.sampling.laplace_whitening): a posterior of 5 to
# 15 parameters is then close to normal, and each gradient costs a millisecond or more
WHITEN_RUNS = 10_000


@dataclass
class Fit:
    """A fitted law: the law, its runs, the priors, and an ArviZ InferenceData.

    ``idata`` has groups posterior (sampled coordinates, the published parameters and derived
    quantities), log_likelihood, observed_data, constant_data and sample_stats, with dims
    ``chain``, ``draw`` and ``run``. The pointwise log_likelihood is left out when chains x draws x runs
    exceeds ``MAX_POINTWISE_VALUES``; ``info["notes"]`` then says so.
    """

    law: Law
    runs: Runs
    idata: az.InferenceData
    priors: dict[str, Prior]
    likelihood: str
    diagnostics: Diagnostics
    info: dict[str, Any] = field(default_factory=dict)
    discrepancy: Discrepancy | None = None

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata.posterior

    @property
    def converged(self) -> bool:
        return self.diagnostics.converged

    @property
    def parameter_names(self) -> list[str]:
        """Published parameters, derived quantities and noise parameters, in that order."""
        names = list(self.law.published)
        names += [n for n in self.posterior.data_vars if n not in names and n not in self.law.params
                  and n not in NOISE_PARAMETERS and set(self.posterior[n].dims) <= {"chain", "draw"}]
        return names + [n for n in NOISE_PARAMETERS if n in self.posterior]

    @property
    def fixed(self) -> dict[str, float]:
        """Published parameters held at given values (``fit(..., fixed=...)``)."""
        return dict(self.info.get("fixed") or {})

    def summary(self, var_names: list[str] | None = None, hdi_prob: float = 0.94) -> pd.DataFrame:
        """Median, mean, sd, HDI, ESS and R-hat of each parameter; a fixed one (constant over the draws)
        shows its value, with no ESS or R-hat."""
        names = var_names or self.parameter_names
        constant = [n for n in names if float(np.ptp(self.posterior[n].values)) == 0.0]
        varying = [n for n in names if n not in constant]
        import arviz as az

        table = az.summary(self.idata, var_names=varying, hdi_prob=hdi_prob, stat_funcs={"median": np.median},
                           extend=True, round_to="none") if varying else pd.DataFrame()
        for name in constant:
            value = float(self.posterior[name].values.flat[0])
            table.loc[name] = {c: (0.0 if c in ("sd", "mcse_mean", "mcse_sd") else np.nan) for c in table.columns}
            table.loc[name, [c for c in table.columns if c in ("mean", "median") or c.startswith("hdi_")]] = value
        table = table.loc[names]
        first = ["median", "mean", "sd"]
        return table[first + [c for c in table.columns if c not in first]]

    def save(self, path: str | os.PathLike) -> Path:
        """Write to NetCDF atomically: a failed save leaves no file behind."""
        return save(self, path)

    def __repr__(self) -> str:
        return f"<Fit {self.law.name} on {len(self.runs)} runs: {self.diagnostics}>"


def fit(
    law: Law | str,
    data: pd.DataFrame | str | os.PathLike | Runs,
    *,
    priors: Mapping[str, Prior | Mapping[str, Any] | str] | None = None,
    prior_from: str | None = None,
    fixed: Mapping[str, float] | None = None,
    likelihood: str | None = None,
    sampler: str = "nutpie",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 500,
    seed: int | None = None,
    target_accept: float | None = None,
    columns: Mapping[str, str] | None = None,
    progress: bool | None = None,
    discrepancy: str | None = "gp",
    retry: bool = True,
    run_column: str | None = None,
    schedule: str = "cosine",
    min_progress: float = MIN_PROGRESS,
    max_checkpoints: int | None = MAX_CHECKPOINTS,
    group: str | None = None,
    pool: list[str] | tuple[str, ...] | None = None,
    whiten: bool | None = None,
) -> Fit | PooledFit:
    """Sample the posterior of ``law`` given the runs in ``data`` with NUTS.

    ``priors`` overrides default priors per parameter (see ``bayeslaw.laws.get_law(law).params``);
    ``prior_from="literature"`` starts from priors built from the catalogue's published fits of the law
    (``bayeslaw.literature``), which ``priors`` may still override.
    ``fixed`` holds published parameters at given values, e.g. ``{"E": 1.69, "A": 406.4}`` (``bayeslaw.fixed``).
    ``likelihood`` on log(target): "student_t" (default), "normal" or "laplace"; for learning curves
    "curve" (default) or "curve_independent".
    Learning curves (``bayeslaw.curves``): when the table has a run id column (``run_column``, or one named like
    ``run`` / ``run_id``) and some run has several rows, the rows are checkpoints: the law is fitted to every
    checkpoint from ``min_progress`` of its run on (default 0.1), with a run offset, noise correlated along the
    run and a term for the learning-rate ``schedule`` ("cosine", "linear" or "none") not yet decayed, at most
    ``max_checkpoints`` per run (default 50, spread evenly in log D; None keeps all);
    ``fit.runs`` are then the runs' final checkpoints, what predictions and decisions are for.
    ``sampler``: "nutpie" (default; low-rank mass matrix adaptation), "pymc" (``pm.sample``) or "jax" (blackjax's
    NUTS in JAX, float64, chains vectorised: ``bayeslaw.sampling_jax``; needs ``pip install bayeslaw[jax]``).
    ``target_accept`` defaults to the law's own (0.9 for most laws). ``draws`` per chain are kept; a law
    whose ridges mix slowly on small ladders samples ``law.thin`` times longer and keeps every thin-th draw.
    ``whiten`` (nutpie): sample in coordinates whitened by the Laplace approximation at the posterior mode
    (``bayeslaw.sampling.laplace_whitening``; the posterior is unchanged, only where NUTS starts and its scales);
    None (default) whitens tables of ``WHITEN_RUNS`` rows or more, where the warm-up would cost most.
    ``seed``: None draws one; the seed used is recorded (``fit.info["seed"]``) and reproduces the draws.
    ``progress``: the sampler's progress bar; None (default) shows it in a Jupyter notebook only.
    ``discrepancy="gp"`` (default) adds a Gaussian process for what the law misses, estimated from the
    residuals after sampling (``bayeslaw.discrepancy``; about a second): predictions, plans and held-out
    scores from the fit widen where the runs do not reach. None: the law alone, independent noise only.
    ``retry`` (default): when the convergence checks fail, sample once more with chains 4 times longer
    (kept draws thinned back to ``draws``) and a higher target_accept (:func:`second_attempt`);
    ``fit.info["attempts"]`` records both. A fit that still fails warns with a ConvergenceWarning naming the
    parameters and the remedies.
    ``group``: the column naming each run's family; returns a ``bayeslaw.pooling.PooledFit`` whose ``pool``
    parameters (default: the law's exponents) are drawn from population distributions (``bayeslaw.pooling``).
    ``prior_from`` may also be the path of a saved pooled fit: its population priors for the pooled parameters.
    """
    from bayeslaw.sampling import sample_nutpie, sample_pymc, table_rows
    from bayeslaw.sampling_jax import require_jax, sample_jax

    if group is not None:  # partial pooling across families: its own module (nutpie only; no fixed values)
        from bayeslaw.pooling import fit_pooled

        if run_column is not None:
            raise BayeslawError("a pooled fit (group=...) takes one row per run: learning curves and pooling together "
                                "are not built yet; fit each family's curves on its own")
        if fixed or prior_from is not None or sampler != "nutpie" or discrepancy not in ("gp", None) or whiten:
            raise BayeslawError("a pooled fit (group=...) takes no fixed values, prior_from or whiten, samples with "
                                "nutpie, and estimates each family's discrepancy when its view is taken "
                                "(PooledFit.family)")
        return fit_pooled(law, data, group=group, pool=pool, priors=priors, likelihood=likelihood or "student_t",
                          chains=chains, draws=draws, tune=tune, seed=seed, target_accept=target_accept,
                          columns=columns, progress=bool(progress), retry=retry)
    if pool is not None:
        raise BayeslawError("pool= chooses the pooled parameters of a grouped fit; give group= as well")

    law = get_law(law)
    runs = (data if isinstance(data, Runs) and data.law is law and run_column is None
            else load_runs(data, law, columns, likelihood=likelihood or "student_t", run_column=run_column))
    curves = None
    if runs.is_curves:
        likelihood = likelihood or "curve"
        curves = build_curves(runs, runs.run_ids, schedule, min_progress, max_checkpoints=max_checkpoints)
        runs = curves.finals
    likelihood = likelihood or "student_t"
    check_likelihood(likelihood)
    discrepancy = check_kind(discrepancy)
    fixing = resolve_fixed(law, fixed, data_pivots(runs))
    resolved = model_priors(law, likelihood, _prior_overrides(law, runs, prior_from, priors, fixing))
    resolved = {name: prior for name, prior in resolved.items() if name not in fixing.ties}  # not free: no prior
    if sampler not in SAMPLERS:
        raise BayeslawError(f"unknown sampler '{sampler}'; allowed: {', '.join(SAMPLERS)}")
    if whiten and sampler != "nutpie":
        raise BayeslawError(f"whiten=True is for the nutpie sampler, not '{sampler}'")
    if sampler == "jax":
        require_jax()  # before any work: without JAX, an error naming the extra
    for name, value in {"chains": chains, "draws": draws, "tune": tune}.items():
        if int(value) < (1 if name != "tune" else 0):
            raise BayeslawError(f"{name} must be a positive whole number, got {value}")
    if int(tune) == 0 and sampler == "nutpie":  # nutpie's adaptation windows need a step (tune=0: a Rust panic)
        raise BayeslawError("tune must be at least 1 with the nutpie sampler (its warm-up windows need a step); "
                            "tune=0 samples with the initial step size only under sampler='pymc' or 'jax'")
    target_accept = law.target_accept if target_accept is None else float(target_accept)
    if not 0 < target_accept < 1:
        raise BayeslawError(f"target_accept must lie in (0, 1), got {target_accept}")
    seed = check_seed(seed)
    progress = in_notebook() if progress is None else bool(progress)
    model = build_model(runs, resolved, likelihood, fixing=fixing, curves=curves)
    key = (law.name, tuple((k, str(v)) for k, v in sorted(resolved.items())), likelihood, tuple(fixing.ties))
    attempt = {"tune": int(tune), "draws": int(draws), "thin": law.thin, "target_accept": target_accept}
    attempts = []
    rows = table_rows(model)  # the runs, or with learning curves the checkpoints kept
    whitened = rows >= WHITEN_RUNS if whiten is None else bool(whiten)
    for number in range(2 if retry else 1):
        settings = dict(chains=int(chains), draws=attempt["draws"] * attempt["thin"], tune=attempt["tune"],
                        seed=seed + number, target_accept=attempt["target_accept"], progress=progress)
        if sampler == "nutpie":
            posterior, stats, timings = sample_nutpie(model, key=key, whiten=whitened, **settings)
        elif sampler == "jax":
            posterior, stats, timings = sample_jax(model, key=key, **settings)
        else:
            posterior, stats, timings = sample_pymc(model, **settings)
        posterior = parameters_from_draws(law, resolved, posterior, data_pivots(runs), fixing)
        sampled = [n for n in posterior.data_vars
                   if n not in fixing.ties and (n not in resolved or resolved[n].dist != "Fixed")]
        kept = slice(attempt["thin"] - 1, None, attempt["thin"])
        diagnostics = diagnose(posterior.isel(draw=kept), stats, sampled, law.supports)
        posterior, stats = posterior.isel(draw=kept), stats.isel(draw=kept)
        attempts.append({**attempt, "seed": seed + number, "converged": diagnostics.converged,
                         "diagnostics": diagnostics.to_dict(), **timings})
        if diagnostics.converged:
            break
        attempt = second_attempt(attempt, diagnostics)
    info = {"seed": seed, "sampler": sampler, "tune": int(tune), "target_accept": target_accept, "retry": retry,
            "compile_seconds": attempts[0]["compile_seconds"],
            "sample_seconds": sum(a["sample_seconds"] for a in attempts), "attempts": attempts,
            "fixed": dict(fixing.values), "prior_from": None if prior_from is None else str(prior_from),
            "priors_given": {k: Prior.parse(v, k).to_dict() for k, v in (priors or {}).items()}}
    if curves is not None:
        info["curves"] = curves.describe()
    info["notes"] = whitening_notes(attempts[-1], rows)
    values = n_samples(posterior) * len(runs)
    if values > MAX_POINTWISE_VALUES:
        info["notes"] = info["notes"] + [f"pointwise log-likelihood not stored: {posterior.sizes['chain']} chains x "
                         f"{posterior.sizes['draw']} draws x {len(runs)} runs would take {values * 8 / 1e9:.3g} GB "
                         f"(the limit is {MAX_POINTWISE_VALUES * 8 / 1e9:.3g} GB); PSIS-LOO (compare) computes it "
                         "on demand, a block of runs at a time"]
    prior = prior_draws(law, resolved, data_pivots(runs), fixing, PRIOR_DRAWS,
                        np.random.default_rng([seed, PRIOR_STREAM]))
    idata = assemble(runs, resolved, likelihood, posterior, stats, diagnostics, info, prior=prior, curves=curves)
    spec = None
    if discrepancy is not None:  # modular: from the residuals of the sampled law (bayeslaw.discrepancy)
        residuals = np.log(runs.target) - median_log_mean(law, idata.posterior, runs.inputs)
        spec = estimate(discrepancy, runs.inputs, residuals, seed=seed)
        attach_discrepancy(idata, spec)
    result = Fit(law, runs, idata, resolved, likelihood, diagnostics, info, spec)
    if not diagnostics.converged:
        warnings.warn(f"the {law.name} fit did not converge{' after a second, longer attempt' if retry else ''}:\n"
                      + "\n".join(diagnostics.problems), ConvergenceWarning, stacklevel=2)
    return result


def attach_discrepancy(idata: az.InferenceData, spec: Discrepancy) -> None:
    """Record ``spec`` in ``idata``: as JSON in the posterior's attributes (what is read back) and as the
    ``discrepancy`` group of its hyperparameter sets (:meth:`Discrepancy.to_dataset`), for ArviZ users."""
    idata.posterior.attrs["discrepancy"] = spec.to_json()
    if "discrepancy" in idata.groups():
        idata.discrepancy = spec.to_dataset()
    else:
        idata.add_groups(discrepancy=spec.to_dataset())


PREDICTIVE_STREAM = 7  # the posterior predictive's random stream, apart from the sampler's and the discrepancy's
PRIOR_STREAM = 11  # the prior group's random stream
PRIOR_DRAWS = 500  # draws in the prior and prior_predictive groups
MAX_POINTWISE_VALUES = 25_000_000  # chains x draws x runs of the stored pointwise log-likelihood (200 MB)
BLOCK_VALUES = 2_000_000  # draws x runs evaluated at once when computing per-run quantities (16 MB a block)
MEDIAN_DRAWS = 1000  # the median over draws of the law at each run uses at most this many draws (large tables)


def run_blocks(n_runs: int, n_draws: int) -> list[slice]:
    """Slices of runs such that a block of draws x runs stays near ``BLOCK_VALUES`` values."""
    size = max(1, BLOCK_VALUES // max(n_draws, 1))
    return [slice(start, start + size) for start in range(0, n_runs, size)]


def median_log_mean(law: Law, posterior: xr.Dataset, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """The median over posterior draws of log f(theta; x_i) at each run, in blocks of runs (bounded memory);
    with more than ``MEDIAN_DRAWS`` draws and a large table, over evenly thinned draws."""
    params = {n: flat(posterior[n].values)[:, None] for n in law.published}
    n_draws = len(next(iter(params.values())))
    n_runs = len(next(iter(inputs.values())))
    if n_draws > MEDIAN_DRAWS and n_draws * n_runs > 50 * BLOCK_VALUES:
        keep = np.linspace(0, n_draws - 1, MEDIAN_DRAWS).round().astype(int)
        params, n_draws = {n: v[keep] for n, v in params.items()}, MEDIAN_DRAWS
    out = np.empty(n_runs)
    for block in run_blocks(n_runs, n_draws):
        mean = law.function(params, {k: np.asarray(v)[block] for k, v in inputs.items()}, np)
        out[block] = np.median(np.log(mean), axis=0)
    return out


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), where a progress bar is shown by default."""
    import sys

    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def whitening_notes(attempt: Mapping[str, Any], rows: int) -> list[str]:
    """What the fit's info says about whitened sampling (``bayeslaw.sampling.laplace_whitening``), if it was asked."""
    if "whitened" not in attempt:
        return []
    if not attempt["whitened"]:
        return [f"{rows:,} rows: the posterior mode or its Laplace approximation was not found, so NUTS sampled "
                "without whitening (a longer warm-up)"]
    return [f"{rows:,} rows: NUTS sampled in coordinates whitened by the Laplace approximation at the posterior "
            f"mode (found in {attempt['whitening_gradients']} gradients, {attempt['whitening_seconds']:.1f} s); the "
            "posterior is the model's, the warm-up shorter"]


RETRY_LENGTH = 4  # the second attempt's chains are this many times ``draws`` (thinned back to ``draws``)


def second_attempt(first: Mapping[str, Any], diagnostics: Diagnostics) -> dict[str, Any]:
    """Settings of the second attempt after ``diagnostics`` failed: tuning ``RETRY_LENGTH`` times longer
    (at least 250 steps a chain before that), chains of ``RETRY_LENGTH`` times ``draws`` and at least twice
    the first attempt's (a law's ``thin``), kept draws thinned back to the same number, and half the distance
    of target_accept to 1 (0.9 -> 0.95): smaller steps for the curvature that made the first one fail.
    Always 4x: a length chosen from the first attempt's ESS was measured and failed, as that ESS is itself
    unreliable on the hard posteriors that need a second attempt (real Chinchilla runs below 1e19, seed 2:
    tail ESS 588 and R-hat 1.011 at first, 309 after 2x; 4x converged on all 4 seeds)."""
    return {"tune": RETRY_LENGTH * max(int(first["tune"]), 250), "draws": int(first["draws"]),
            "thin": max(RETRY_LENGTH, 2 * int(first.get("thin", 1))),
            "target_accept": max(first["target_accept"], 1.0 - (1.0 - first["target_accept"]) / 2)}


MAX_SEED = 2**32 - 1


def check_seed(seed: Any) -> int:
    """The seed to sample with: a whole number in [0, 2^32 - 1], or a fresh one for None."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0] % (MAX_SEED - 8))
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= int(seed) <= MAX_SEED - 8:
        raise BayeslawError(f"seed must be a whole number from 0 to {MAX_SEED - 8}, got {seed!r}")
    return int(seed)


def _prior_overrides(law: Law, runs: Runs, prior_from: str | None, priors, fixing: Fixing) -> dict[str, Any]:
    """Priors for ``model_priors``: literature priors (when asked), the user's, and the fixed values'."""
    overrides: dict[str, Any] = {}
    if prior_from is not None and prior_from != "literature":
        from bayeslaw.pooling import priors_from_pooled

        if not (str(prior_from).endswith(".nc") and Path(str(prior_from)).is_file()):
            raise BayeslawError(f"unknown prior source '{prior_from}'; allowed: literature, or the path of a pooled "
                                "fit saved with PooledFit.save (.nc)")
        overrides |= priors_from_pooled(prior_from, law)
    elif prior_from is not None:
        from bayeslaw.literature import literature_priors

        overrides |= literature_priors(law, data_pivots(runs))
    overrides |= dict(priors or {})
    clash = sorted(name for name in priors or {} if name in fixing.ties
                   or (name in fixing.priors and Prior.parse(priors[name], name) != fixing.priors[name]))
    if clash:
        raise BayeslawError(f"{', '.join(clash)} fixed and given a prior: drop one of the two")
    return overrides | dict(fixing.priors)


def complete_posterior(law: Law, posterior: xr.Dataset, pivots: Mapping[str, float]) -> xr.Dataset:
    """Add the published parameters and derived quantities, computed from the sampled coordinates."""
    extra = law.published_with_derived(law.to_published(posterior, pivots, np), np)
    return posterior.assign({k: v for k, v in extra.items() if k not in posterior})


def assemble(runs: Runs, priors: Mapping[str, Prior], likelihood: str, posterior: xr.Dataset,
             stats: xr.Dataset, diagnostics: Diagnostics, info: Mapping[str, Any],
             prior: xr.Dataset | None = None, curves: Curves | None = None) -> az.InferenceData:
    """An InferenceData with posterior, log_likelihood, posterior_predictive (one replicate of the observed
    log target per draw and run, seeded from the fit's seed on a stream of its own), observed_data,
    constant_data and sample_stats; with ``prior`` (draws from the priors, :func:`bayeslaw.model.prior_draws`)
    also prior and prior_predictive, for prior-versus-posterior checks (``az.plot_dist_comparison``,
    ``az.plot_ppc(group="prior")``). The pointwise groups are left out beyond ``MAX_POINTWISE_VALUES``.
    With ``curves`` (``runs`` their final checkpoints) the log-likelihood of a run is that of its whole curve."""
    from bayeslaw import __version__

    law = runs.law
    pivots = data_pivots(runs)
    run = np.arange(len(runs))
    posterior = complete_posterior(law, posterior, pivots)
    inputs = {k: xr.DataArray(v, dims="run", coords={"run": run}) for k, v in runs.inputs.items()}
    obs_name = f"log_{law.target}"
    log_target = xr.DataArray(np.log(runs.target), dims="run", coords={"run": run})
    stored = n_samples(posterior) * len(runs) <= MAX_POINTWISE_VALUES
    if stored:
        blocks = run_blocks(len(runs), n_samples(posterior))
        if curves is not None:
            loglik = curve_log_likelihood(law, likelihood, posterior, curves)
        else:
            loglik = xr.concat([log_likelihood(law, likelihood, posterior, {k: v[b] for k, v in inputs.items()},
                                               log_target[b]) for b in blocks], dim="run")
        rng = np.random.default_rng([int(info.get("seed") or 0), PREDICTIVE_STREAM])
        replicates = xr.concat([predictive_draws(law, likelihood, posterior, {k: v[b] for k, v in inputs.items()},
                                                 rng) for b in blocks], dim="run")
    constant = xr.Dataset({**inputs, law.target: xr.DataArray(runs.target, dims="run", coords={"run": run}),
                           **{f"pivot_{k}": v for k, v in pivots.items()}})
    attrs = {
        "bayeslaw_version": __version__,
        "law": law.name,
        "law_spec": json.dumps(law.spec(), sort_keys=True),
        "priors": json.dumps({k: p.to_dict() for k, p in priors.items()}, sort_keys=True),
        "likelihood": likelihood,
        "data_sha256": runs.digest(),
        "data_notes": json.dumps({"mapped": runs.mapped, "derived": runs.derived}),
        "diagnostics": json.dumps(diagnostics.to_dict()),
        "info": json.dumps(dict(info)),
        "discrepancy": "",
    }
    groups = {"posterior": posterior.assign_attrs(attrs)}
    if stored:
        groups["log_likelihood"] = xr.Dataset({obs_name: loglik})
        groups["posterior_predictive"] = xr.Dataset({obs_name: replicates})
    if prior is not None:
        with np.errstate(all="ignore"):  # a prior draw may put the law far outside float range: kept as inf
            groups["prior"] = complete_posterior(law, prior, pivots)
            if n_samples(prior) * len(runs) <= MAX_POINTWISE_VALUES:
                rng = np.random.default_rng([int(info.get("seed") or 0), PRIOR_STREAM, 1])
                groups["prior_predictive"] = xr.Dataset({obs_name: xr.concat(
                    [predictive_draws(law, likelihood, groups["prior"], {k: v[b] for k, v in inputs.items()}, rng)
                     for b in run_blocks(len(runs), n_samples(prior))], dim="run")})
    import arviz as az

    return az.InferenceData(**groups, sample_stats=stats, observed_data=xr.Dataset({obs_name: log_target}),
                            constant_data=constant)


def netcdf_bytes(idata: az.InferenceData) -> bytes:
    """The NetCDF (HDF5) file of ``idata``, as ``InferenceData.to_netcdf`` writes it, built in memory: a full
    disk then fails in a plain write of these bytes, not inside HDF5 (which crashed the process at exit)."""
    import io

    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w"):
        pass
    if idata.attrs:
        xr.Dataset(attrs=idata.attrs).to_netcdf(buffer, mode="a", engine="h5netcdf", group="/")
    for group in idata.groups():
        data = idata[group]
        encoding = {name: {"zlib": True} for name, values in data.variables.items() if values.dtype.kind in "biufc"}
        data.to_netcdf(buffer, mode="a", group=f"/{group}", engine="h5netcdf", encoding=encoding)
    return buffer.getvalue()


def save(result: Fit, path: str | os.PathLike) -> Path:
    """Write ``result`` to NetCDF at ``path`` through a temporary file and an atomic rename."""
    check_writable(path, FitFileError)
    return write_bytes_atomic(path, netcdf_bytes(result.idata), FitFileError)


def load(path: str | os.PathLike, law: Law | str | None = None) -> Fit:
    """Read a fit saved by :func:`save`. With ``law``, refuse a file that holds another law.

    Every stored attribute is checked on loading: a damaged one raises FitFileError naming it."""
    path = check_readable(path, "a fit file", FitFileError)
    import arviz as az

    try:
        idata = az.from_netcdf(path)
        attrs = dict(idata.posterior.attrs)
        stored_name = attrs["law"]
        const = idata.constant_data
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as err:
        raise FitFileError(f"{path}: not a bayeslaw fit file ({type(err).__name__}: {err})") from None
    from bayeslaw.pooling import FORMAT as POOLED

    if attrs.get("format") == POOLED:
        raise FitFileError(f"{path} holds a pooled fit of several families: read it with "
                           "bayeslaw.pooling.load_pooled, or save one family's view (PooledFit.family(name).save) "
                           "to use it as a fit")
    read = _AttributeReader(path, attrs)
    stored_name = read("law", lambda v: get_law(v).name if isinstance(v, str) else _bad("a law name"))
    if law is not None and get_law(law).name != stored_name:
        raise FitFileError(f"{path} holds a fit of law '{stored_name}', not '{get_law(law).name}'")
    current = get_law(stored_name)
    spec = read("law_spec", lambda v: json.loads(v) if isinstance(v, str) else _bad("JSON text"))
    if json.dumps(current.spec(), sort_keys=True) != json.dumps(spec, sort_keys=True):
        raise FitFileError(f"{path}: attribute 'law_spec' differs from law '{stored_name}': the law has changed since "
                           f"this fit was saved with bayeslaw {str(attrs.get('bayeslaw_version', '?'))[:20]} (or the "
                           "file was edited); refit it")
    likelihood = read("likelihood",
                      lambda v: v if v in ALL_LIKELIHOODS else _bad(f"one of {', '.join(ALL_LIKELIHOODS)}"))
    try:
        frame = pd.DataFrame({name: np.asarray(const[name].values, dtype=float)
                              for name in (*current.inputs, current.target)})
    except (KeyError, ValueError, TypeError) as err:
        raise FitFileError(f"{path}: the stored runs are damaged ({type(err).__name__}: {err})") from None
    frame.index.name = "run"
    notes = read("data_notes", _data_notes)
    runs = Runs(frame, current, notes["mapped"], notes["derived"])
    if runs.digest() != attrs.get("data_sha256"):
        raise FitFileError(f"{path}: the runs stored in the file do not match their recorded hash (attribute "
                           "'data_sha256'); the file was edited or damaged")
    known = (*current.params, *NOISE_PARAMETERS)
    priors = read("priors", lambda v: _priors(v, known))
    diagnostics = read("diagnostics", lambda v: Diagnostics.from_dict(_json_object(v)))
    info = read("info", _info)
    spec = read("discrepancy", lambda v: _discrepancy(v, current))
    if spec is not None:  # the group is a view of the attribute: made again from it (fits saved before it lack it)
        attach_discrepancy(idata, spec)
    return Fit(current, runs, idata, priors, likelihood, diagnostics, info, spec)


class _Damaged(ValueError):
    pass


def _bad(rule: str):
    """Raise: 'FIELD: what it must be' reads 'FIELD must be ...'; a bare rule 'must be ...'."""
    field, sep, rest = rule.partition(": ")
    raise _Damaged(f"{field} must be {rest}" if sep and " " not in field else f"must be {rule}")


class _AttributeReader:
    """Parse one stored attribute, turning any failure into a FitFileError that names it."""

    def __init__(self, path: Path, attrs: Mapping[str, Any]) -> None:
        self.path, self.attrs = path, attrs

    def __call__(self, name: str, parse):
        if name not in self.attrs:
            raise FitFileError(f"{self.path}: attribute '{name}' is missing; not a complete bayeslaw fit file")
        try:
            return parse(self.attrs[name])
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, BayeslawError) as err:
            why = str(err).splitlines()[0] if str(err) else type(err).__name__
            if isinstance(err, json.JSONDecodeError):
                why = f"not JSON ({err.msg} at character {err.pos})"
            elif isinstance(err, KeyError):
                why = f"misses {err}"
            raise FitFileError(f"{self.path}: attribute '{name}' is damaged: {why}") from None


def _json_object(value: Any) -> dict:
    if not isinstance(value, str):
        _bad("JSON text")
    raw = json.loads(value)
    return raw if isinstance(raw, dict) else _bad("a JSON object")


def _str_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        _bad(f"{what}: an object of names to text")
    return value


def _data_notes(value: Any) -> dict[str, dict[str, str]]:
    raw = _json_object(value)
    return {"mapped": _str_map(raw["mapped"], "'mapped'"), "derived": _str_map(raw["derived"], "'derived'")}


def _priors(value: Any, known: tuple[str, ...]) -> dict[str, Prior]:
    raw = _json_object(value)
    unknown = [k for k in raw if k not in known]
    if unknown:
        _bad(f"priors of the law's parameters ({', '.join(known)}); found '{unknown[0]}'")
    return {k: Prior.parse(v if isinstance(v, dict) else _bad(f"a prior object for '{k}'"), k) for k, v in raw.items()}


def _number(value: Any, what: str, whole: bool = False) -> None:
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        _bad(f"{what}: a {'whole ' if whole else ''}number, got {value!r}")


def _info(value: Any) -> dict[str, Any]:
    """The sampler's record: the fields that are read back are checked (older files may lack some)."""
    info = _json_object(value)
    for key in ("seed", "tune"):
        if info.get(key) is not None:
            _number(info[key], key, whole=True)
            if not 0 <= info[key] <= MAX_SEED:
                _bad(f"{key}: a whole number from 0 to {MAX_SEED}, got {info[key]}")
    for key in ("target_accept", "compile_seconds", "sample_seconds"):
        if info.get(key) is not None:
            _number(info[key], key)
    if info.get("target_accept") is not None and not 0 < info["target_accept"] < 1:
        _bad(f"target_accept: a number in (0, 1), got {info['target_accept']}")
    if info.get("sampler") is not None and info["sampler"] not in SAMPLERS:
        _bad(f"sampler: one of {', '.join(SAMPLERS)}")
    source = info.get("prior_from")
    if source not in (None, "literature") and not (isinstance(source, str) and source.endswith(".nc")):
        _bad("prior_from: null, 'literature' or the path of a pooled fit (.nc)")
    if not isinstance(info.get("retry", False), bool):
        _bad("retry: true or false")
    if not isinstance(info.get("fixed") or {}, dict):
        _bad("fixed: an object of parameter values")
    for name, v in (info.get("fixed") or {}).items():
        _number(v, f"fixed.{name}")
    given = info.get("priors_given") or {}
    if not isinstance(given, dict):
        _bad("priors_given: an object of priors")
    for name, spec in given.items():
        Prior.parse(spec if isinstance(spec, dict) else _bad(f"priors_given.{name}: a prior object"), name)
    attempts = info.get("attempts") or []
    if not isinstance(attempts, list) or not all(isinstance(a, dict) for a in attempts):
        _bad("attempts: a list of objects")
    for i, attempt in enumerate(attempts):
        for key in ("tune", "draws", "thin"):
            _number(attempt.get(key), f"attempts[{i}].{key}", whole=True)
        _number(attempt.get("target_accept"), f"attempts[{i}].target_accept")
        if not isinstance(attempt.get("converged"), bool):
            _bad(f"attempts[{i}].converged: true or false")
        Diagnostics.from_dict(attempt.get("diagnostics") if isinstance(attempt.get("diagnostics"), dict) else
                              _bad(f"attempts[{i}].diagnostics: an object"))
    notes = info.get("notes") or []
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        _bad("notes: a list of text")
    return info


def _discrepancy(value: Any, law: Law) -> Discrepancy | None:
    if not isinstance(value, str):
        _bad("JSON text or empty")
    spec = Discrepancy.from_json(value)
    if spec is not None:
        spec.validate(law.inputs)
    return spec
