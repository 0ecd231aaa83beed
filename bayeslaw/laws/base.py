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

import pickle
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from bayeslaw.errors import LawError
from bayeslaw.priors import Prior, PriorError, Support

Params = Mapping[str, Any]
Inputs = Mapping[str, Any]


@dataclass(frozen=True)
class Param:
    """A sampled parameter: its default prior, support and meaning.

    ``doc`` says what the parameter means; the prior's words (distribution, 95% range) are generated from
    ``prior`` (``description``), on the scale of ``log_of`` too when the parameter is the log of a quantity.
    """

    prior: Prior
    support: Support
    doc: str
    log_of: str = ""

    @property
    def description(self) -> str:
        """What the parameter means and its default prior in words."""
        return f"{self.doc}; {self.prior.describe(self.log_of)}"


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
    flops_per_param_token: float | None = 6.0  # k in C = k N D; None for laws whose compute is not k N D
    optimum: Callable[[Params, Any, float, ModuleType], tuple[Any, Any]] | None = None
    target_accept: float = 0.9  # NUTS step-size target; raised for laws with funnel-like posteriors
    # the first attempt's chains are this many times longer, thinned back to ``draws``: laws whose ridges leave
    # about 0.1 effective draws per draw on small ladders (bayeslaw.fit.first_attempt)
    thin: int = 1
    coordinates: Coordinates | None = None  # where NUTS samples, when not the parameters themselves
    # published name -> (law parameter, f(value, params, pivots, xp)): that parameter when the published
    # one is fixed and the others are not (bayeslaw.fixed)
    ties: Mapping[str, tuple[str, Callable[..., Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """The law's contract, checked when it is made (``check_contract``)."""
        check_contract(self)

    def __reduce__(self) -> tuple[Callable[[str], Law], tuple[str]]:
        """Pickled by its registry name (its functions are closures; ``bayeslaw.fanout`` sends laws to other
        processes): a law that is not the registry's under its name cannot be sent."""
        from bayeslaw.laws import LAWS, get_law

        if LAWS.get(self.name) is not self:
            raise pickle.PicklingError(f"law '{self.name}' is not in the registry (bayeslaw.laws.register), so "
                                       "another process cannot rebuild it; register it, or run with workers=1")
        return get_law, (self.name,)

    @property
    def compute_factor(self) -> float | None:
        """The old name of :attr:`flops_per_param_token` (kept for one release)."""
        warnings.warn("Law.compute_factor is now Law.flops_per_param_token", DeprecationWarning, stacklevel=2)
        return self.flops_per_param_token

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


def check_contract(law: Law) -> None:
    """Raise LawError, naming the law and the rule, where its parts do not fit together.

    Structure: inputs are named and distinct and the target is not one of them; conventions say what each
    input and the target are; every parameter's default prior lies in its support; presets give exactly the
    published parameters; ties fix published parameters through sampled ones; sampling coordinate names
    are distinct. Then, at the first preset and pivots in the middle of the input ranges (a few numpy
    scalar operations): ``from_published`` gives exactly the law's parameters, ``to_published`` every
    published one, ``derived`` none of them, and the coordinates map onto exactly the parameters.
    """

    def fail(rule: str) -> LawError:
        return LawError(f"law '{law.name}': {rule}")

    if not law.inputs or len(set(law.inputs)) != len(law.inputs) or not all(
            isinstance(x, str) and x for x in law.inputs):
        raise fail(f"inputs must be distinct non-empty names, got {law.inputs!r}")
    if law.target in law.inputs:
        raise fail(f"the target '{law.target}' is also an input")
    missing = [x for x in (*law.inputs, law.target) if x not in law.conventions]
    if missing:
        raise fail(f"conventions must say what each input and the target are; missing {', '.join(missing)}")
    unknown = [x for x in law.input_ranges if x not in law.inputs]
    if unknown or not all(lo < hi for lo, hi in law.input_ranges.values()):
        raise fail(f"input_ranges must be (low, high) of inputs, got {dict(law.input_ranges)}")
    if not law.params or not law.published or len(set(law.published)) != len(law.published):
        raise fail("needs parameters and distinct published parameters")
    for name, param in law.params.items():
        try:
            param.prior.check_support(name, param.support)
        except PriorError as err:
            raise fail(f"default {err}") from None
    for preset, values in law.presets.items():
        if set(values.values) != set(law.published):
            raise fail(f"preset '{preset}' must give exactly the published parameters {', '.join(law.published)}, "
                       f"got {', '.join(values.values)}")
    for published, (param, _) in law.ties.items():
        if published not in law.published or param not in law.params:
            raise fail(f"tie '{published}' -> '{param}' must fix a published parameter through a law parameter")
    if law.coordinates is not None and len(set(law.coordinates.names)) != len(law.coordinates.names):
        raise fail(f"sampling coordinate names must be distinct, got {law.coordinates.names}")
    if not 0 < law.target_accept < 1:
        raise fail(f"target_accept must lie in (0, 1), got {law.target_accept}")
    if isinstance(law.thin, bool) or not isinstance(law.thin, int) or law.thin < 1:
        raise fail(f"thin must be a whole number >= 1, got {law.thin!r}")
    if law.presets and set(law.input_ranges) == set(law.inputs):
        _check_maps(law, fail)


def _check_maps(law: Law, fail: Callable[[str], LawError]) -> None:
    """The maps between published parameters, the law's parameters and its coordinates, at the first preset."""
    values = next(iter(law.presets.values())).values
    middle = {x: float(np.sqrt(lo * hi)) if lo > 0 else (lo + hi) / 2 for x, (lo, hi) in law.input_ranges.items()}
    pivots = {x: v for x, v in middle.items() if law.input_ranges[x][0] > 0}
    with np.errstate(all="ignore"):
        pivots[law.target] = float(law.function(values, middle, np))
        sampled = law.from_published(values, pivots)
        if set(sampled) != set(law.params):
            raise fail(f"from_published gives {', '.join(sampled)}, not the parameters {', '.join(law.params)}")
        published = law.to_published(sampled, pivots, np)
        if set(published) != set(law.published):
            raise fail(f"to_published gives {', '.join(published)}, not the published {', '.join(law.published)}")
        shadowed = set(law.derived(values, np) if law.derived is not None else ()) & set(law.published)
        if shadowed:
            raise fail(f"derived quantities {', '.join(sorted(shadowed))} would replace published ones")
        if law.coordinates is not None:
            coordinates = law.coordinates
            u = coordinates.from_params(sampled, pivots)
            start = coordinates.initial(pivots)
            if set(u) != set(coordinates.names) or set(start) != set(coordinates.names):
                raise fail(f"coordinates' from_params and initial must give exactly {', '.join(coordinates.names)}")
            theta = coordinates.to_params(u, pivots, np)
            if set(theta) != set(law.params):
                raise fail(f"coordinates' to_params gives {', '.join(theta)}, not the parameters "
                           f"{', '.join(law.params)}")


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
                 "exponent")
IRREDUCIBLE = Param(Prior("HalfNormal", sigma=2.5), "positive",
                    "irreducible loss E in nats")


# Names that moved to coords.py (the shared reparameterisations) stay importable from here
_COORDS = ("coefficient_from_pivot", "exponent_from_slope", "free_name", "from_free", "join_three", "join_two",
           "log_share", "log_term", "logit", "loss_at_pivot", "pivot_from_coefficient", "share", "slope_from_exponent",
           "softplus", "split_in_three", "split_in_two", "to_free")


def __getattr__(name: str) -> Any:
    if name in _COORDS:
        from bayeslaw.laws import coords

        return getattr(coords, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
