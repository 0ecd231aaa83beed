"""The law spec: inputs, parameters with default priors, and pure functions.

A law's functions are written with plain arithmetic and an array namespace ``xp`` that has
``exp`` and ``log``: ``numpy`` for numpy arrays and xarray posteriors, ``pytensor.tensor``
inside the PyMC model. So the same code evaluates in the model, on data, and on posterior draws.

Each law samples in well-conditioned coordinates (log of each term at a pivot, the data's
geometric mean of each input) and maps them to the published parameterisation with
``to_published``; ``from_published`` is its inverse, used to turn published constants into
sampling coordinates (synthetic-data tests, starting points). The reparameterisations the laws
share (terms at a pivot, the loss at the pivot plus shares, split and slope coordinates) are
written once in ``coords.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from bayeslaw.priors import Prior, Support

Params = Mapping[str, Any]
Inputs = Mapping[str, Any]


@dataclass(frozen=True)
class Param:
    """A sampled parameter: its default prior, support and meaning."""

    prior: Prior
    support: Support
    doc: str


@dataclass(frozen=True)
class Preset:
    """Published constants of a law (in its published parameterisation) and where they come from."""

    values: Mapping[str, float]
    source: str


@dataclass(frozen=True)
class Coordinates:
    """Where NUTS moves: coordinates the runs pin almost independently, mapped one-to-one onto the law's
    parameters (the coordinates its priors are written on).

    A law's parameters can trade off along curved ridges (E against A and alpha on a short ladder of model
    sizes: the runs pin the loss at the pivot and its log-log slopes, not how the loss splits between E and
    the power terms). The sampler then works in ``names`` instead: typically the log loss at the pivots,
    log slopes -dlog L / dlog X there, and logits of shares. ``to_params`` maps them to the parameters
    (symbolically, any ``xp``), ``from_params`` back (numpy).

    The map from ``names`` to each parameter's own unconstrained value v (log of a positive parameter, logit
    of a share, a real parameter itself) must have |det dv/du| = 1 (a contract test checks it numerically).
    The density of u is then the prior density of the parameters times prod_k |d theta_k / d v_k|, which
    the model adds (``bayeslaw.model``): the posterior is exactly the one of the parameters, only easier
    to sample.
    """

    names: tuple[str, ...]
    to_params: Callable[[Params, Mapping[str, Any], ModuleType], dict[str, Any]]
    from_params: Callable[[Params, Mapping[str, float]], dict[str, float]]
    initial: Callable[[Mapping[str, float]], dict[str, float]]  # a starting point from the data pivots


@dataclass(frozen=True)
class Law:
    """A scaling law: what it predicts from which inputs, with which parameters and priors."""

    name: str
    title: str
    formula: str
    inputs: tuple[str, ...]
    params: Mapping[str, Param]
    published: tuple[str, ...]
    function: Callable[[Params, Inputs, ModuleType], Any]
    to_published: Callable[[Params, Mapping[str, float], ModuleType], dict[str, Any]]
    from_published: Callable[[Params, Mapping[str, float]], dict[str, float]]
    conventions: Mapping[str, str]
    source: str
    target: str = "loss"
    derived: Callable[[Params, ModuleType], dict[str, Any]] | None = None
    presets: Mapping[str, Preset] = field(default_factory=dict)
    input_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    noise_prior: Prior = field(default_factory=lambda: Prior("HalfNormal", sigma=0.1))
    compute_factor: float | None = 6.0
    optimum: Callable[[Params, Any, float, ModuleType], tuple[Any, Any]] | None = None
    target_accept: float = 0.9  # NUTS step-size target; raised for laws with funnel-like posteriors
    coordinates: Coordinates | None = None  # where NUTS samples, when not the parameters themselves
    # published name -> (law parameter, f(value, params, pivots, xp)): that parameter when the published
    # one is fixed and the others are not (bayeslaw.fixed)
    ties: Mapping[str, tuple[str, Callable[..., Any]]] = field(default_factory=dict)

    @property
    def default_priors(self) -> dict[str, Prior]:
        return {name: p.prior for name, p in self.params.items()}

    @property
    def supports(self) -> dict[str, Support]:
        return {name: p.support for name, p in self.params.items()}

    def evaluate(self, params: Params, inputs: Inputs) -> Any:
        """The law's prediction for published ``params`` at ``inputs`` (numpy or xarray)."""
        return self.function(params, inputs, np)

    def evaluate_preset(self, preset: str, inputs: Inputs) -> Any:
        return self.evaluate(self.presets[preset].values, inputs)

    def published_with_derived(self, published: Params, xp: ModuleType = np) -> dict[str, Any]:
        """Published parameters plus the derived quantities people quote (e.g. a, b, G)."""
        out = dict(published)
        if self.derived is not None:
            out.update(self.derived(published, xp))
        return out

    def spec(self) -> dict[str, Any]:
        """A JSON-serialisable description of the law (stored with every saved fit)."""
        return {
            "name": self.name,
            "formula": self.formula,
            "inputs": list(self.inputs),
            "target": self.target,
            "params": {k: {"prior": p.prior.to_dict(), "support": p.support} for k, p in self.params.items()},
            "published": list(self.published),
            "conventions": dict(self.conventions),
        }


def pivots_of(inputs: Inputs, names: tuple[str, ...]) -> dict[str, float]:
    """Geometric mean of each named, strictly positive input: where the law's constants are centred.

    Inputs that can be zero (sparsity) have no pivot.
    """
    arrays = {name: np.asarray(inputs[name], dtype=float) for name in names}
    return {name: float(np.exp(np.mean(np.log(v)))) for name, v in arrays.items() if np.all(v > 0)}


def sample_inputs(law: Law, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random inputs across the law's ``input_ranges``: log-uniform, or uniform where the range starts at 0."""
    out = {}
    for name in law.inputs:
        lo, hi = law.input_ranges[name]
        out[name] = rng.uniform(lo, hi, n) if lo <= 0 else np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return out


# Shared parameter blocks (the reparameterisations are in coords.py) ------------------------------

EXPONENT = Param(Prior("LogNormal", mu=float(np.log(0.3)), sigma=0.7), "positive",
                 "exponent; prior 95% range about 0.08 to 1.2")
IRREDUCIBLE = Param(Prior("HalfNormal", sigma=2.5), "positive",
                    "irreducible loss E in nats; prior 95% below about 4.9")


# Names that moved to coords.py (the shared reparameterisations) stay importable from here
_COORDS = ("coefficient_from_pivot", "exponent_from_slope", "free_name", "from_free", "join_three", "join_two",
           "log_share", "log_term", "logit", "loss_at_pivot", "pivot_from_coefficient", "share", "slope_from_exponent",
           "softplus", "split_in_three", "split_in_two", "to_free")


def __getattr__(name: str) -> Any:
    if name in _COORDS:
        from bayeslaw.laws import coords

        return getattr(coords, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
