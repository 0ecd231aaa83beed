"""Observation likelihoods on log(target): one registry entry per family.

    student_t   log y_i ~ StudentT(nu, mu_i, sigma)    nu ~ Gamma(2, 0.1) (Juarez & Steel 2010)
    normal      log y_i ~ Normal(mu_i, sigma)
    laplace     log y_i ~ Laplace(mu_i, b = sigma)     (the limit of a Huber loss)
    curve       a run's checkpoints: run offset + Ornstein-Uhlenbeck noise in log D (``bayeslaw.curves``)
    curve_independent   a run's checkpoints, each independent N(mu_ij, sigma) (for comparison)

sigma's prior is the law's (``Law.noise_prior``). Each entry owns its noise parameters and their
default priors, the PyMC observed distribution, the numpy log density, draws of a new run's noise and
each run's precision weight as a scale mixture of normals. Importing this module costs no PyMC or scipy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bayeslaw.errors import BayeslawError, PriorError
from bayeslaw.priors import Prior, Support

if TYPE_CHECKING:
    from bayeslaw.laws import Law

Noise = Mapping[str, Any]  # noise parameter -> value (numbers, numpy arrays or PyTensor tensors)


class Likelihood(ABC):
    """A family of observation noise on log(target), with scale ``sigma`` and possibly more parameters."""

    name: ClassVar[str]
    extra: ClassVar[Mapping[str, Prior]] = {}  # noise parameters beyond sigma, with their default priors
    doc: ClassVar[Mapping[str, str]] = {"sigma": "scale of the residuals on log(target)"}

    @property
    def params(self) -> tuple[str, ...]:
        """The noise parameters, in the order the model builds them: sigma first."""
        return ("sigma", *self.extra)

    @property
    def n_params(self) -> int:
        """How many parameters the noise adds to a law's."""
        return len(self.params)

    def default_priors(self, law: Law) -> dict[str, Prior]:
        return {"sigma": law.noise_prior, **self.extra}

    def supports(self) -> dict[str, Support]:
        return dict.fromkeys(self.params, "positive")

    def observe(self, name: str, mu: Any, priors: Mapping[str, Prior], observed: Any, dims: str) -> Any:
        """The PyMC observed variable of log(target) with mean ``mu``; builds the noise parameters' priors."""
        import pymc as pm

        noise = {param: priors[param].build(param) for param in self.params}
        return self._observe(pm, name, mu, noise, observed, dims)

    @abstractmethod
    def _observe(self, pm: Any, name: str, mu: Any, noise: Noise, observed: Any, dims: str) -> Any:
        """The family's PyMC distribution, observed, given its noise parameters' random variables."""

    @abstractmethod
    def logpdf(self, x: np.ndarray, noise: Noise, loc: Any = 0.0) -> np.ndarray:
        """log density of log(target) ``x`` around ``loc``; arguments broadcast elementwise."""

    @abstractmethod
    def tail(self, residuals: np.ndarray, noise: Noise) -> np.ndarray:
        """P(|eps| >= |r|): the two-sided tail probability of each residual under the family."""

    @abstractmethod
    def draw(self, rng: np.random.Generator, noise: Noise, shape: tuple[int, ...]) -> np.ndarray:
        """Draws of a new run's noise on log(target), ``shape`` (noise parameters broadcast to it)."""

    @abstractmethod
    def precision_weights(self, residuals: np.ndarray, sigma: float | None, nu: float | None) -> np.ndarray:
        """Each residual's posterior precision relative to 1 / sigma^2, the family seen as a scale mixture
        of normals (not capped). ``residuals`` are absolute values."""

    def _scale(self, sigma: float | None) -> float:
        if sigma is None or not sigma > 0:
            raise BayeslawError(f"robust weights for a {self.name} likelihood need its scale sigma > 0, got {sigma}")
        return sigma


class StudentT(Likelihood):
    name = "student_t"
    extra: ClassVar[Mapping[str, Prior]] = {"nu": Prior("Gamma", alpha=2.0, beta=0.1)}
    doc: ClassVar[Mapping[str, str]] = {**Likelihood.doc,
                                        "nu": "Student-t degrees of freedom (Gamma(2, 0.1), Juarez & Steel 2010)"}

    def _observe(self, pm, name, mu, noise, observed, dims):
        return pm.StudentT(name, nu=noise["nu"], mu=mu, sigma=noise["sigma"], observed=observed, dims=dims)

    def logpdf(self, x, noise, loc=0.0):
        from scipy import stats

        return stats.t.logpdf(x, df=noise["nu"], loc=loc, scale=noise["sigma"])

    def tail(self, residuals, noise):
        from scipy import stats

        return 2 * stats.t.sf(np.abs(residuals) / noise["sigma"], noise["nu"])

    def draw(self, rng, noise, shape):
        return noise["sigma"] * rng.standard_t(np.broadcast_to(noise["nu"], shape), size=shape)

    def precision_weights(self, residuals, sigma, nu):
        """E[lambda | r] = (nu + 1) / (nu + (r / sigma)^2), lambda ~ Gamma(nu/2, nu/2) the precision scale
        (Lange, Little & Taylor 1989, JASA 84:881)."""
        sigma = self._scale(sigma)
        if nu is None or not nu > 0:
            raise BayeslawError(f"robust weights for a Student-t likelihood need nu > 0, got {nu}")
        return (nu + 1) / (nu + (residuals / sigma) ** 2)


class Normal(Likelihood):
    name = "normal"

    def _observe(self, pm, name, mu, noise, observed, dims):
        return pm.Normal(name, mu=mu, sigma=noise["sigma"], observed=observed, dims=dims)

    def logpdf(self, x, noise, loc=0.0):
        from scipy import stats

        return stats.norm.logpdf(x, loc=loc, scale=noise["sigma"])

    def tail(self, residuals, noise):
        from scipy import stats

        return 2 * stats.norm.sf(np.abs(residuals) / noise["sigma"])

    def draw(self, rng, noise, shape):
        return noise["sigma"] * rng.standard_normal(shape)

    def precision_weights(self, residuals, sigma, nu):
        """Every run has weight 1."""
        return np.ones_like(residuals)


class Laplace(Likelihood):
    name = "laplace"

    def _observe(self, pm, name, mu, noise, observed, dims):
        return pm.Laplace(name, mu=mu, b=noise["sigma"], observed=observed, dims=dims)

    def logpdf(self, x, noise, loc=0.0):
        from scipy import stats

        return stats.laplace.logpdf(x, loc=loc, scale=noise["sigma"])

    def tail(self, residuals, noise):
        return np.exp(-np.abs(residuals) / noise["sigma"])

    def draw(self, rng, noise, shape):
        return rng.laplace(0.0, np.broadcast_to(noise["sigma"], shape), size=shape)

    def precision_weights(self, residuals, sigma, nu):
        """w = b / |r|: a normal whose variance is exponential (Andrews & Mallows 1974, JRSS B 36:99) has
        E[1/v | r] = 1 / (b |r|), relative to the precision 1 / b^2 of a run at |r| = b."""
        return self._scale(sigma) / np.maximum(residuals, 1e-300)


class Curve(Likelihood):
    """Learning curves (``bayeslaw.curves``): the model is built on a fit's checkpoints, not through
    ``observe``; here it is the noise of a new run's final checkpoint, N(0, s^2 + run_sd^2) with
    log s ~ N(log sigma, run_scale_sd^2) (integrated by Gauss-Hermite quadrature for the density)."""

    name = "curve"
    extra: ClassVar[Mapping[str, Prior]] = {
        "schedule_sd": Prior("HalfNormal", sigma=0.05),
        "run_scale_sd": Prior("HalfNormal", sigma=1.0),
        "run_sd": Prior("HalfNormal", sigma=0.05),
        "corr_length": Prior("LogNormal", mu=0.0, sigma=1.0),
        "schedule_gap": Prior("HalfNormal", sigma=0.1),
    }
    doc: ClassVar[Mapping[str, str]] = {
        "sigma": "scale of a final checkpoint's residual on log(target) around its run's offset",
        "schedule_sd": "added scale of a checkpoint's residual, times the share of the learning-rate decay still "
                       "to come (HalfNormal(0.05))",
        "run_scale_sd": "sd across runs of the log of a run's noise scale (HalfNormal(1))",
        "run_sd": "sd of a run's offset on log(target), shared by all its checkpoints (HalfNormal(0.05))",
        "corr_length": "correlation length of the checkpoint noise in log tokens (LogNormal(0, 1))",
        "schedule_gap": "log(target) a checkpoint sits above the law while its learning-rate decay is still to "
                        "come, times the share to come (HalfNormal(0.1))",
    }

    def _observe(self, pm, name, mu, noise, observed, dims):
        raise BayeslawError(f"likelihood '{self.name}' is for learning curves: give the run id column "
                            "(run_column=..., CLI --run-column) so checkpoints are grouped into runs")  # see curves

    NODES = 12  # Gauss-Hermite nodes over a new run's log scale

    def _totals(self, noise):
        """sd of a new run's final checkpoint at each quadrature node of its scale, and the nodes' weights."""
        nodes, weights = np.polynomial.hermite_e.hermegauss(self.NODES)
        spread = np.asarray(noise.get("run_scale_sd", 0.0))[..., None]
        sigma = np.asarray(noise["sigma"])[..., None] * np.exp(spread * nodes)
        return np.sqrt(sigma**2 + np.asarray(noise.get("run_sd", 0.0))[..., None] ** 2), weights / weights.sum()

    def logpdf(self, x, noise, loc=0.0):
        from scipy import stats
        from scipy.special import logsumexp

        scale, weights = self._totals(noise)
        x, loc = np.asarray(x)[..., None], np.asarray(loc)[..., None] if np.ndim(loc) else loc
        return logsumexp(stats.norm.logpdf(x, loc=loc, scale=scale) + np.log(weights), axis=-1)

    def tail(self, residuals, noise):
        from scipy import stats

        scale, weights = self._totals(noise)
        return (2 * stats.norm.sf(np.abs(np.asarray(residuals))[..., None] / scale) * weights).sum(axis=-1)

    def draw(self, rng, noise, shape):
        sigma = np.broadcast_to(noise["sigma"], shape)
        spread = np.broadcast_to(noise.get("run_scale_sd", 0.0), shape)
        sigma = sigma * np.exp(spread * rng.standard_normal(shape))
        total = np.sqrt(sigma**2 + np.broadcast_to(noise.get("run_sd", 0.0), shape) ** 2)
        return total * rng.standard_normal(shape)

    def precision_weights(self, residuals, sigma, nu):
        """Every run has weight 1."""
        return np.ones_like(residuals)


class CurveIndependent(Curve):
    """Learning curves with every checkpoint independent: sigma and the schedule term only."""

    name = "curve_independent"
    extra: ClassVar[Mapping[str, Prior]] = {"schedule_gap": Curve.extra["schedule_gap"]}
    doc: ClassVar[Mapping[str, str]] = {"sigma": "scale of a checkpoint's residual on log(target)",
                                        "schedule_gap": Curve.doc["schedule_gap"]}


REGISTRY: dict[str, Likelihood] = {family.name: family for family in (StudentT(), Normal(), Laplace(), Curve(),
                                                                       CurveIndependent())}
LIKELIHOODS = ("student_t", "normal", "laplace")  # for tables of runs (one row per run)
CURVE_LIKELIHOODS = ("curve", "curve_independent")  # for learning curves (``bayeslaw.curves``)
ALL_LIKELIHOODS = tuple(REGISTRY)
NOISE_PARAMETERS = tuple(dict.fromkeys(p for family in REGISTRY.values() for p in family.params))  # sigma, nu


def get_likelihood(name: str | Likelihood) -> Likelihood:
    """The registry entry for ``name``; an unknown name is a PriorError naming the allowed ones."""
    if isinstance(name, Likelihood):
        return name
    family = REGISTRY.get(name) if isinstance(name, str) else None
    if family is None:
        raise PriorError(f"unknown likelihood '{name}'; allowed: {', '.join(LIKELIHOODS)} (learning curves: "
                         f"{', '.join(CURVE_LIKELIHOODS)})")
    return family


def n_parameters(law: Law, likelihood: str) -> int:
    """Parameters of a model before any is fixed: the law's and the likelihood's noise parameters."""
    return len(law.params) + get_likelihood(likelihood).n_params
