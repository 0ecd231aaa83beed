"""Literature-informed priors: what the catalogue's published fits of a law say about a new data set.

``fit(law, runs, prior_from="literature")`` (CLI ``--prior-from literature``) replaces the default prior of
each of the law's parameters theta_k by one built from every published fit of that law in ``models/``:

    v_k = theta_k on its unconstrained scale (log of a positive parameter, logit of a share, itself if real),
          computed at the new data's pivots from draws of each published fit (``Law.from_published``;
          fits that published no uncertainty give one draw, each fit weighs the same)
    prior: v_k ~ Normal(mean of v_k, sqrt(sd of v_k ^ 2 + tau^2)),
           as LogNormal for a positive parameter, Normal for a real one, and a Beta with the same mean and
           variance for a share

tau is the spread expected between data sets (tokenizer, data mix, architecture), which a single paper's
fit does not show: 0.3 on the log scale (a factor 1.8 at 95%) for positive parameters such as exponents
and E, 0.5 for real ones (log terms at the pivots), 0.75 on the logit scale for shares. These are stated
choices, not fitted to any table. The noise priors (sigma, nu) keep their defaults.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayeslaw.errors import BayeslawError
from bayeslaw.laws import Law
from bayeslaw.laws.coords import to_free
from bayeslaw.priors import Prior

TAU = {"positive": 0.3, "real": 0.5, "unit": 0.75}
DRAWS_PER_FIT = 400


def published_fits(law: Law) -> list:
    """Catalogue entries with published constants for ``law``."""
    from bayeslaw.catalogue import list_entries, load_entry

    entries = [load_entry(name) for name in list_entries()]
    return [e for e in entries if e.law.name == law.name and e.constants is not None and e.uncertainty is not None]


def _beta_like(mean: float, sd: float) -> Prior:
    """A Beta with the mean and variance of logit-normal(mean, sd) (by quadrature)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    shares = 1.0 / (1.0 + np.exp(-(mean + sd * nodes)))
    weights = weights / weights.sum()
    m = float(weights @ shares)
    v = float(weights @ (shares - m) ** 2)
    common = m * (1 - m) / v - 1.0
    return Prior("Beta", alpha=max(m * common, 0.5), beta=max((1 - m) * common, 0.5))


def literature_priors(law: Law, pivots: Mapping[str, float]) -> dict[str, Prior]:
    """Priors on ``law``'s parameters from its published fits, at the data's ``pivots`` (module docstring)."""
    fits = published_fits(law)
    if not fits:
        raise BayeslawError(f"law '{law.name}' has no published fit in the catalogue (`bayeslaw models`), so there "
                            "are no literature priors for it; give priors or use the defaults")
    samples: dict[str, list[np.ndarray]] = {name: [] for name in law.params}
    for entry in fits:
        draws = entry.posterior(draws=DRAWS_PER_FIT, seed=0).draws
        published = {name: draws[name].values.ravel() for name in law.published}
        with np.errstate(all="ignore"):  # from_published works on one set of constants at a time
            rows = [law.from_published({k: float(v[i]) for k, v in published.items()}, pivots)
                    for i in range(len(published[law.published[0]]))]
        for name, param in law.params.items():
            values = to_free(np.array([row[name] for row in rows], dtype=float), param.support)
            values = values[np.isfinite(values)]
            # each fit weighs the same, however many draws it gives
            samples[name].append(np.resize(values, DRAWS_PER_FIT) if values.size else values)
    out = {}
    for name, param in law.params.items():
        values = np.concatenate(samples[name])
        if not values.size:
            continue
        mean, sd = float(values.mean()), float(np.hypot(values.std(), TAU[param.support]))
        if param.support == "positive":
            out[name] = Prior("LogNormal", mu=mean, sigma=sd)
        elif param.support == "unit":
            out[name] = _beta_like(mean, sd)
        else:
            out[name] = Prior("Normal", mu=mean, sigma=sd)
    return out
