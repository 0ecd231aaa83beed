"""Priors as validated, serialisable values.

A prior is a distribution name plus its keyword arguments, e.g. ``Prior("LogNormal", mu=-1.2,
sigma=0.7)``. It can be written as a dict (``{"dist": "LogNormal", "mu": -1.2, "sigma": 0.7}``)
or a string (``"LogNormal(mu=-1.2, sigma=0.7)"``), and is checked when it is made, against the
distribution's arguments and the support the parameter needs.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from bayeslaw.errors import PriorError

Support = Literal["real", "positive", "unit"]

# distribution -> (required args, optional args, support of the distribution)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...], Support]] = {
    "Normal": (("mu", "sigma"), (), "real"),
    "StudentT": (("nu", "mu", "sigma"), (), "real"),
    "LogNormal": (("mu", "sigma"), (), "positive"),
    "HalfNormal": (("sigma",), (), "positive"),
    "HalfStudentT": (("nu", "sigma"), (), "positive"),
    "Gamma": (("alpha", "beta"), (), "positive"),
    "Exponential": (("lam",), (), "positive"),
    "TruncatedNormal": (("mu", "sigma"), ("lower", "upper"), "real"),
    "Uniform": (("lower", "upper"), (), "real"),
    "Beta": (("alpha", "beta"), (), "unit"),
    "Fixed": (("value",), (), "real"),
}
_POSITIVE_ARGS = {"sigma", "nu", "alpha", "beta", "lam"}
_FROM_ZERO = ("HalfNormal", "HalfStudentT", "Exponential")  # described by the bound 95% lies below
SUPPORT_BOUNDS: dict[str, tuple[float, float]] = {"real": (-math.inf, math.inf), "positive": (0.0, math.inf),
                                                  "unit": (0.0, 1.0)}


def short(text: Any, width: int = 80) -> str:
    """``text`` on one line, cut to ``width`` characters (a hostile string stays readable in an error)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[:width - 3] + "..."


@dataclass(frozen=True, eq=False)
class Prior:
    """A named distribution with its arguments; validated on creation."""

    dist: str
    kwargs: Mapping[str, float] = field(default_factory=dict)

    def __init__(self, dist: str, /, **kwargs: float) -> None:
        try:
            values = {k: float(v) for k, v in kwargs.items()}
        except (TypeError, ValueError, OverflowError):
            raise PriorError(f"arguments of {dist} must be numbers, got {str(kwargs)[:200]}") from None
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "kwargs", MappingProxyType(values))  # read-only after validation
        self._check_arguments()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its distribution and arguments, validated again when unpickled (``bayeslaw.fanout``)."""
        return _prior_from, (self.dist, dict(self.kwargs))

    def __hash__(self) -> int:
        return hash((self.dist, tuple(sorted(self.kwargs.items()))))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Prior) and (self.dist, dict(self.kwargs)) == (other.dist, dict(other.kwargs))

    def _check_arguments(self, param: str = "") -> None:
        where = f"prior for '{param}': " if param else ""
        if self.dist not in DISTRIBUTIONS:
            raise PriorError(
                f"{where}unknown distribution '{short(self.dist)}'; allowed: {', '.join(DISTRIBUTIONS)}"
            )
        required, optional, _ = DISTRIBUTIONS[self.dist]
        missing = [a for a in required if a not in self.kwargs]
        unknown = [a for a in self.kwargs if a not in required + optional]
        if missing or unknown:
            raise PriorError(
                f"{where}{self.dist} takes arguments {', '.join(required + optional)}; "
                + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(unknown)}")
            )
        for name, value in self.kwargs.items():
            if not math.isfinite(value):
                raise PriorError(f"{where}{self.dist} argument {name}={value} must be finite")
            if name in _POSITIVE_ARGS and value <= 0:
                raise PriorError(f"{where}{self.dist} argument {name}={value} must be > 0")
        lo, hi = self.bounds
        if lo >= hi:
            raise PriorError(f"{where}{self.dist} needs lower < upper, got {lo} and {hi}")

    @property
    def bounds(self) -> tuple[float, float]:
        """The support of this prior as (lower, upper)."""
        support = DISTRIBUTIONS[self.dist][2]
        if self.dist == "Fixed":
            v = self.kwargs["value"]
            return v, math.nextafter(v, math.inf)
        if self.dist in ("Uniform", "TruncatedNormal"):
            return self.kwargs.get("lower", -math.inf), self.kwargs.get("upper", math.inf)
        return SUPPORT_BOUNDS[support]

    def check_support(self, param: str, support: Support) -> None:
        """Raise PriorError if this prior puts mass outside what ``param`` allows."""
        self._check_arguments(param)
        lo, hi = self.bounds
        need_lo, need_hi = SUPPORT_BOUNDS[support]
        outside = lo < need_lo or hi > need_hi
        if self.dist == "Fixed":  # all mass on one point: it must lie inside the open support
            outside = not need_lo < self.kwargs["value"] < need_hi
        if outside:
            raise PriorError(
                f"prior for '{param}': {self} has support ({lo}, {hi}) but '{param}' must lie in "
                f"({need_lo}, {need_hi}); use e.g. LogNormal, HalfNormal, Gamma or a bounded "
                "Uniform/TruncatedNormal"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.dist, **self.kwargs}

    @classmethod
    def parse(cls, spec: Prior | Mapping[str, Any] | str, param: str = "") -> Prior:
        """Make a Prior from a Prior, a dict with a 'dist' key, or a string like 'Normal(mu=0, sigma=1)'."""
        where = f"prior for '{param}': " if param else ""
        if isinstance(spec, Prior):
            return spec
        if isinstance(spec, Mapping):
            kwargs = dict(spec)
            if "dist" not in kwargs:
                raise PriorError(f"{where}a dict prior needs a 'dist' key, got {sorted(kwargs)}")
            dist = kwargs.pop("dist")
            return cls._make(dist, kwargs, where)
        if isinstance(spec, str):
            try:
                call = ast.parse(spec.strip(), mode="eval").body
                if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name) or call.args:
                    raise ValueError
                names = [kw.arg for kw in call.keywords]
                if None in names or len(set(names)) != len(names):  # **spread or a repeated argument
                    raise ValueError
                kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
            except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
                raise PriorError(
                    f"{where}cannot read '{short(spec)}'; write it as Dist(arg=value, ...), "
                    "e.g. 'LogNormal(mu=-1.2, sigma=0.7)'"
                ) from None
            return cls._make(call.func.id, kwargs, where)
        raise PriorError(f"{where}expected a Prior, dict or string, got {type(spec).__name__}")

    @classmethod
    def _make(cls, dist: str, kwargs: Mapping[str, Any], where: str) -> Prior:
        try:
            return cls(dist, **{k: float(v) for k, v in kwargs.items()})
        except PriorError as err:
            raise PriorError(f"{where}{err}") from None
        except OverflowError:
            raise PriorError(f"{where}an argument of {dist} is too large for a number: "
                             f"{', '.join(f'{k}={short(v, 24)}' for k, v in kwargs.items())}") from None
        except (TypeError, ValueError):
            raise PriorError(f"{where}arguments of {dist} must be numbers, got {str(dict(kwargs))[:200]}") from None

    def build(self, name: str):
        """Create the PyMC random variable (inside a model context)."""
        import pymc as pm

        if self.dist == "Fixed":
            return pm.Deterministic(name, pm.math.constant(self.kwargs["value"]))
        return getattr(pm, self.dist)(name, **self.kwargs)

    def logp(self, value):
        """log density at ``value`` (a PyTensor variable), for models that sample other coordinates."""
        import pymc as pm

        if self.dist == "Fixed":
            raise PriorError("a Fixed prior has no density; the parameter is not sampled")
        return pm.logp(getattr(pm, self.dist).dist(**self.kwargs), value)

    def covers(self, support: Support) -> bool:
        """True when the prior has a density on the whole of ``support`` (no bounds inside it, not Fixed)."""
        return self.dist != "Fixed" and self.bounds == SUPPORT_BOUNDS[support]

    def frozen(self):
        """The prior as a frozen ``scipy.stats`` distribution (HalfStudentT as the t it folds; not Fixed)."""
        from scipy import stats  # only when a description or draws are asked for

        k = self.kwargs
        dist = {
            "Normal": lambda: stats.norm(k["mu"], k["sigma"]),
            "StudentT": lambda: stats.t(k["nu"], k["mu"], k["sigma"]),
            "LogNormal": lambda: stats.lognorm(k["sigma"], scale=math.exp(k["mu"])),
            "HalfNormal": lambda: stats.halfnorm(scale=k["sigma"]),
            "HalfStudentT": lambda: stats.t(k["nu"], scale=k["sigma"]),
            "Gamma": lambda: stats.gamma(k["alpha"], scale=1 / k["beta"]),
            "Exponential": lambda: stats.expon(scale=1 / k["lam"]),
            "Beta": lambda: stats.beta(k["alpha"], k["beta"]),
            "Uniform": lambda: stats.uniform(k["lower"], k["upper"] - k["lower"]),
        }
        if self.dist == "Fixed":
            raise PriorError("a Fixed prior is a value, not a distribution")
        if self.dist == "TruncatedNormal":
            lo, hi = self.bounds
            mu, sigma = k["mu"], k["sigma"]
            return stats.truncnorm((lo - mu) / sigma, (hi - mu) / sigma, mu, sigma)
        return dist[self.dist]()

    def interval(self, mass: float = 0.95) -> tuple[float, float]:
        """The central interval holding ``mass`` of the prior; from 0 for HalfNormal, HalfStudentT, Exponential."""
        if self.dist == "Fixed":
            return self.kwargs["value"], self.kwargs["value"]
        frozen = self.frozen()
        if self.dist == "HalfStudentT":  # |t|: the mass-quantile of |t| is the (1 + mass) / 2 quantile of t
            return 0.0, float(frozen.ppf((1 + mass) / 2))
        q = (0.0, mass) if self.dist in _FROM_ZERO else ((1 - mass) / 2, (1 + mass) / 2)
        return float(frozen.ppf(q[0])), float(frozen.ppf(q[1]))

    def sample(self, rng, size: int | tuple[int, ...]):
        """``size`` independent draws from the prior (numpy; a Fixed prior repeats its value)."""
        import numpy as np

        if self.dist == "Fixed":
            return np.full(size, float(self.kwargs["value"]))
        draws = self.frozen().rvs(size=size, random_state=rng)
        return np.abs(draws) if self.dist == "HalfStudentT" else np.asarray(draws, dtype=float)

    def describe(self, log_of: str = "") -> str:
        """The prior in words: the distribution and its 95% range (e.g. for a parameter's documentation).

        ``log_of`` names the quantity a parameter is the log of, whose range is added on its own scale.
        """
        if self.dist == "Fixed":
            return f"fixed at {self.kwargs['value']:g}"
        args = [f"log {math.exp(v):.3g}" if self.dist == "LogNormal" and name == "mu" and v != 0 else f"{v:.3g}"
                for name, v in self.kwargs.items()]
        lo, hi = self.interval()
        text = f"{self.dist}({', '.join(args)}), 95% " + (f"below {_number(hi)}" if self.dist in _FROM_ZERO
                                                           else f"range {_number(lo)} to {_number(hi)}")
        if log_of:
            text += f" ({log_of}: {_number(math.exp(lo))} to {_number(math.exp(hi))})"
        return text

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" if float(f"{v:g}") == v else f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.dist}({args})"


def _number(x: float) -> str:
    """Two significant digits, without an exponent between 0.001 and 100,000 (500, not 5e+02)."""
    if x == 0 or 1e-3 <= abs(x) < 100:
        return f"{x:.2g}"
    if abs(x) < 1e5:
        return f"{float(f'{x:.2g}'):,.0f}"
    return f"{x:.1e}"


def log_abs_jacobian(value, support: Support, xp):
    """log |d theta / d v| for theta on ``support`` and v its unconstrained value (log, logit or itself)."""
    if support == "positive":
        return xp.log(value)
    if support == "unit":
        return xp.log(value) + xp.log1p(-value)
    return 0.0 * value


def resolve_priors(
    defaults: Mapping[str, Prior],
    supports: Mapping[str, Support],
    overrides: Mapping[str, Prior | Mapping[str, Any] | str] | None,
) -> dict[str, Prior]:
    """Defaults updated by user overrides; every override is parsed and checked against its support."""
    priors = dict(defaults)
    for param, spec in (overrides or {}).items():
        if param not in defaults:
            raise PriorError(
                f"unknown parameter '{param}'; this model's parameters are: {', '.join(defaults)}"
            )
        prior = Prior.parse(spec, param)
        prior.check_support(param, supports[param])
        priors[param] = prior
    return priors


def _prior_from(dist: str, kwargs: Mapping[str, float]) -> Prior:
    """The Prior ``dist(**kwargs)`` (the unpickler's constructor: Prior takes its distribution positionally)."""
    return Prior(dist, **kwargs)
