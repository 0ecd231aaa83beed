"""Helpers for tests of code that uses bayeslaw: synthetic runs, fake posteriors and fits, small settings.

Most tests of decisions, plots, reports, saving and commands need a posterior, not a sampler. These
helpers build one from draws scattered around known constants in a fraction of a second, so that only
the tests of the sampler itself pay for NUTS (the idea of ArviZ's public testing module):

- :func:`synthetic_runs`: runs drawn from a law at its first published preset (log-uniform inputs).
- :func:`fake_posterior`: a :class:`~bayeslaw.posterior.LawPosterior` whose draws scatter around a preset.
- :func:`fake_fit`: a :class:`~bayeslaw.fit.Fit` (posterior, log-likelihood, diagnostics that pass, optional
  discrepancy) on a synthetic ladder or on given runs, without sampling; it saves, loads, plans, predicts,
  plots and reports like a real fit.
- :data:`SMALL`: small but real sampling settings (2 chains x 300 draws, no second attempt) for tests that do
  sample; they may miss the strict R-hat of 1.01, so such tests assert on what they check, not on convergence.

The fake draws are not a posterior of the runs: nothing about them says the law fits. Use a real fit for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from bayeslaw.laws import Law, get_law

if TYPE_CHECKING:
    from bayeslaw.fit import Fit
    from bayeslaw.posterior import LawPosterior

SMALL = {"chains": 2, "draws": 300, "tune": 300, "retry": False}

__all__ = ["SMALL", "fake_fit", "fake_posterior", "synthetic_runs"]


def synthetic_runs(law: Law | str, n_runs: int, noise: float = 0.01, seed: int = 0,
                   preset: str | None = None) -> pd.DataFrame:
    """Runs drawn from ``law`` at a published preset (its first by default): inputs log-uniform across the law's
    ``input_ranges`` (uniform where a range starts at 0), target times exp(noise z), z ~ Normal(0, 1)."""
    from bayeslaw.laws.base import sample_inputs

    law = get_law(law)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(sample_inputs(law, n_runs, rng))
    truth = law.presets[preset or next(iter(law.presets))].values
    clean = law.evaluate(truth, {x: frame[x].to_numpy() for x in law.inputs})
    frame[law.target] = clean * np.exp(noise * rng.standard_normal(n_runs))
    return frame


def _normal_scores(chains: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """(chains, draws) standard normal scores: every chain the same evenly spaced sample, shuffled (R-hat 1)."""
    from scipy.stats import norm

    quantiles = norm.ppf((np.arange(draws) + 0.5) / draws)
    return np.array([rng.permutation(quantiles) for _ in range(chains)])


def fake_posterior(law: Law | str = "chinchilla", values: str | Mapping[str, float] | None = None, *,
                   chains: int = 2, draws: int = 500, spread: float = 0.01, seed: int = 0,
                   likelihood: str | None = "student_t", sigma: float = 0.01) -> LawPosterior:
    """A LawPosterior whose draws scatter ``spread`` (relative) around published constants: a preset name of the
    law (its first by default) or a dict of values. With ``likelihood`` the draws carry run noise (sigma about
    ``sigma``; nu about 10 for "student_t"); None leaves the noise unknown, as for published constants."""
    from bayeslaw.posterior import LawPosterior

    law = get_law(law)
    if values is None or isinstance(values, str):
        label = values or next(iter(law.presets))
        values = law.presets[label].values
    else:
        label = "given constants"
    rng = np.random.default_rng(seed)
    data = {name: float(values[name]) + spread * max(abs(float(values[name])), 0.01)
            * _normal_scores(chains, draws, rng) for name in law.published}
    if likelihood is not None:
        data["sigma"] = sigma * np.exp(0.1 * _normal_scores(chains, draws, rng))
        if likelihood == "student_t":
            data["nu"] = 10 * np.exp(0.1 * _normal_scores(chains, draws, rng))
    posterior = xr.Dataset({k: (("chain", "draw"), v) for k, v in data.items()},
                           coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    return LawPosterior(law, posterior, likelihood, {}, f"fake posterior of {law.name} around {label}")


def fake_fit(law: Law | str = "chinchilla", sizes: int = 4, chains: int = 2, draws: int = 500, seed: int = 0,
             discrepancy: bool = True, *, runs: pd.DataFrame | None = None, preset: str | None = None,
             spread: float = 0.01) -> Fit:
    """A Fit whose draws scatter ``spread`` (relative) around a preset of the law (its first by default), on a
    synthetic ladder of ``sizes`` model sizes (``bayeslaw.synthetic.ladder``) or on the given ``runs``: no
    sampling, so saving, loading, commands, plots and reports need no NUTS. Its diagnostics pass (R-hat 1, no
    divergences). With ``discrepancy`` the GP discrepancy is estimated from its residuals as a real fit's would
    be (about a second); the fake draws leave any misfit of the runs to it."""
    from bayeslaw.data import load_runs
    from bayeslaw.diagnostics import diagnose
    from bayeslaw.discrepancy import estimate
    from bayeslaw.fit import PRIOR_DRAWS, PRIOR_STREAM, Fit, assemble, attach_discrepancy, median_log_mean
    from bayeslaw.model import data_pivots, model_priors, prior_draws
    from bayeslaw.synthetic import ladder

    law = get_law(law)
    name = preset or next(iter(law.presets))
    table = ladder(law, sizes=sizes, seed=seed, preset=name) if runs is None else runs
    loaded = load_runs(table, law)
    truth = law.from_published(law.presets[name].values, data_pivots(loaded))
    rng = np.random.default_rng(seed)
    shape = (chains, draws)

    def z():
        return _normal_scores(chains, draws, rng)

    values = {key: value + spread * max(abs(value), 0.01) * z() for key, value in truth.items()}
    values |= {"sigma": 0.01 * np.exp(0.1 * z()), "nu": 10 * np.exp(0.1 * z())}
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    posterior = xr.Dataset({k: (("chain", "draw"), v) for k, v in values.items()}, coords=coords)
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape, bool)),
                        "reached_max_treedepth": (("chain", "draw"), np.zeros(shape, bool))}, coords=coords)
    priors = model_priors(law, "student_t")
    diagnostics = diagnose(posterior, stats, list(truth), law.supports)
    info = {"seed": seed, "sampler": "nutpie", "tune": 0, "target_accept": 0.9, "retry": False,
            "compile_seconds": 0.0, "sample_seconds": 0.0, "attempts": [], "fixed": {}, "prior_from": None,
            "priors_given": {}}
    prior = prior_draws(law, priors, data_pivots(loaded), None, PRIOR_DRAWS,
                        np.random.default_rng([seed, PRIOR_STREAM]))
    idata = assemble(loaded, priors, "student_t", posterior, stats, diagnostics, info, prior=prior)
    spec = None
    if discrepancy:
        residuals = np.log(loaded.target) - median_log_mean(law, idata.posterior, loaded.inputs)
        spec = estimate("gp", loaded.inputs, residuals, seed=seed)
        attach_discrepancy(idata, spec)
    return Fit(law, loaded, idata, priors, "student_t", diagnostics, info, spec)
