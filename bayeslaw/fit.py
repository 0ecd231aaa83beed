"""fit(): sample a law's posterior with NUTS; the Fit result; saving to and loading from NetCDF."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayeslaw.data import Runs, load_runs
from bayeslaw.diagnostics import Diagnostics, diagnose
from bayeslaw.discrepancy import Discrepancy, check_kind, estimate
from bayeslaw.errors import BayeslawError, ConvergenceWarning, FitFileError
from bayeslaw.files import atomic_write
from bayeslaw.laws import Law, get_law
from bayeslaw.model import build_model, data_pivots, log_likelihood, model_priors, parameters_from_draws
from bayeslaw.priors import Prior
from bayeslaw.sampling import SAMPLERS, sample_nutpie, sample_pymc


@dataclass
class Fit:
    """A fitted law: the law, its runs, the priors, and an ArviZ InferenceData.

    ``idata`` has groups posterior (sampled coordinates, the published parameters and derived
    quantities), log_likelihood, observed_data, constant_data and sample_stats, with dims
    ``chain``, ``draw`` and ``run``.
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
                  and n not in ("sigma", "nu")]
        return names + [n for n in ("sigma", "nu") if n in self.posterior]

    def summary(self, var_names: list[str] | None = None, hdi_prob: float = 0.94) -> pd.DataFrame:
        """Median, mean, sd, HDI, ESS and R-hat of each parameter."""
        table = az.summary(self.idata, var_names=var_names or self.parameter_names, hdi_prob=hdi_prob,
                           stat_funcs={"median": np.median}, extend=True, round_to="none")
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
    likelihood: str = "student_t",
    sampler: str = "nutpie",
    chains: int = 4,
    draws: int = 1000,
    tune: int = 500,
    seed: int | None = None,
    target_accept: float | None = None,
    columns: Mapping[str, str] | None = None,
    progress: bool = False,
    discrepancy: str | None = "gp",
) -> Fit:
    """Sample the posterior of ``law`` given the runs in ``data`` with NUTS.

    ``priors`` overrides default priors per parameter (see ``bayeslaw.laws.get_law(law).params``).
    ``likelihood`` on log(target): "student_t" (default), "normal" or "laplace".
    ``sampler``: "nutpie" (default; low-rank mass matrix adaptation) or "pymc" (``pm.sample``).
    ``target_accept`` defaults to the law's own (0.9 for most laws).
    ``discrepancy="gp"`` (default) adds a Gaussian process for what the law misses, estimated from the
    residuals after sampling (``bayeslaw.discrepancy``; about a second): predictions, plans and held-out
    scores from the fit widen where the runs do not reach. None: the law alone, independent noise only.
    A fit that fails a convergence check warns with a ConvergenceWarning naming the remedy.
    """
    law = get_law(law)
    runs = data if isinstance(data, Runs) and data.law is law else load_runs(data, law, columns)
    discrepancy = check_kind(discrepancy)
    resolved = model_priors(law, likelihood, priors)
    if sampler not in SAMPLERS:
        raise BayeslawError(f"unknown sampler '{sampler}'; allowed: {', '.join(SAMPLERS)}")
    for name, value in {"chains": chains, "draws": draws, "tune": tune}.items():
        if int(value) < (1 if name != "tune" else 0):
            raise BayeslawError(f"{name} must be a positive whole number, got {value}")
    target_accept = law.target_accept if target_accept is None else float(target_accept)
    if not 0 < target_accept < 1:
        raise BayeslawError(f"target_accept must lie in (0, 1), got {target_accept}")
    seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else int(seed)
    model = build_model(runs, resolved, likelihood)
    settings = dict(chains=chains, draws=draws, tune=tune, seed=seed, target_accept=target_accept, progress=progress)
    if sampler == "nutpie":
        key = (law.name, tuple((k, str(v)) for k, v in sorted(resolved.items())), likelihood)
        posterior, stats, timings = sample_nutpie(model, key=key, **settings)
    else:
        posterior, stats, timings = sample_pymc(model, **settings)
    posterior = parameters_from_draws(law, resolved, posterior, data_pivots(runs))
    diagnostics = diagnose(posterior, stats, list(posterior.data_vars))
    fixed = {name: prior.kwargs["value"] for name, prior in resolved.items() if prior.dist == "Fixed"}
    template = next(iter(posterior.data_vars.values()))
    posterior = posterior.assign({name: xr.full_like(template, value, dtype=float) for name, value in fixed.items()})
    info = {"seed": seed, "sampler": sampler, "tune": tune, "target_accept": target_accept, **timings}
    idata = assemble(runs, resolved, likelihood, posterior, stats, diagnostics, info)
    spec = None
    if discrepancy is not None:  # modular: from the residuals of the sampled law (bayeslaw.discrepancy)
        mean = law.function({n: idata.posterior[n].values.reshape(-1, 1) for n in law.published}, runs.inputs, np)
        residuals = np.log(runs.target) - np.median(np.log(mean), axis=0)
        spec = estimate(discrepancy, runs.inputs, residuals, seed=seed)
        idata.posterior.attrs["discrepancy"] = spec.to_json()
    result = Fit(law, runs, idata, resolved, likelihood, diagnostics, info, spec)
    if not diagnostics.converged:
        warnings.warn(f"the {law.name} fit did not converge:\n" + "\n".join(diagnostics.problems),
                      ConvergenceWarning, stacklevel=2)
    return result


def complete_posterior(law: Law, posterior: xr.Dataset, pivots: Mapping[str, float]) -> xr.Dataset:
    """Add the published parameters and derived quantities, computed from the sampled coordinates."""
    extra = law.published_with_derived(law.to_published(posterior, pivots, np), np)
    return posterior.assign({k: v for k, v in extra.items() if k not in posterior})


def assemble(runs: Runs, priors: Mapping[str, Prior], likelihood: str, posterior: xr.Dataset,
             stats: xr.Dataset, diagnostics: Diagnostics, info: Mapping[str, Any]) -> az.InferenceData:
    """An InferenceData with posterior, log_likelihood, observed_data, constant_data and sample_stats."""
    from bayeslaw import __version__

    law = runs.law
    pivots = data_pivots(runs)
    run = np.arange(len(runs))
    posterior = complete_posterior(law, posterior, pivots)
    inputs = {k: xr.DataArray(v, dims="run", coords={"run": run}) for k, v in runs.inputs.items()}
    obs_name = f"log_{law.target}"
    log_target = xr.DataArray(np.log(runs.target), dims="run", coords={"run": run})
    loglik = log_likelihood(law, likelihood, posterior, inputs, log_target)
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
    idata = az.InferenceData(
        posterior=posterior.assign_attrs(attrs),
        log_likelihood=xr.Dataset({obs_name: loglik}),
        sample_stats=stats,
        observed_data=xr.Dataset({obs_name: log_target}),
        constant_data=constant,
    )
    return idata


def save(result: Fit, path: str | os.PathLike) -> Path:
    """Write ``result`` to NetCDF at ``path`` through a temporary file and an atomic rename."""
    return atomic_write(path, result.idata.to_netcdf, FitFileError)


def load(path: str | os.PathLike, law: Law | str | None = None) -> Fit:
    """Read a fit saved by :func:`save`. With ``law``, refuse a file that holds another law."""
    path = Path(path)
    if not path.is_file():
        raise FitFileError(f"{path}: no such file")
    try:
        idata = az.from_netcdf(path)
        attrs = dict(idata.posterior.attrs)
        stored_name = attrs["law"]
    except (OSError, ValueError, KeyError, AttributeError) as err:
        raise FitFileError(f"{path}: not a bayeslaw fit file ({type(err).__name__}: {err})") from None
    if law is not None and get_law(law).name != stored_name:
        raise FitFileError(f"{path} holds a fit of law '{stored_name}', not '{get_law(law).name}'")
    current = get_law(stored_name)
    if json.dumps(current.spec(), sort_keys=True) != attrs["law_spec"]:
        raise FitFileError(f"{path}: law '{stored_name}' has changed since this fit was saved with bayeslaw "
                           f"{attrs['bayeslaw_version']}; refit it")
    const = idata.constant_data
    frame = pd.DataFrame({name: const[name].values for name in (*current.inputs, current.target)})
    frame.index.name = "run"
    notes = json.loads(attrs["data_notes"])
    runs = Runs(frame, current, notes["mapped"], notes["derived"])
    if runs.digest() != attrs["data_sha256"]:
        raise FitFileError(f"{path}: the runs stored in the file do not match their recorded hash")
    priors = {k: Prior.parse(v, k) for k, v in json.loads(attrs["priors"]).items()}
    diagnostics = Diagnostics(**json.loads(attrs["diagnostics"]))
    return Fit(current, runs, idata, priors, attrs["likelihood"], diagnostics, json.loads(attrs["info"]),
               Discrepancy.from_json(attrs.get("discrepancy", "")))
