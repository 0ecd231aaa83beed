"""The models/ catalogue: named law specifications and published fits, one TOML file per entry.

An entry names a law of the registry, its priors (law defaults or overrides: a changed prior is a
new name), its conventions (what N counts, C = 6 N D or C = M D, loss units), its source and, where
the paper published them, its fitted constants with their uncertainty and the paper's test vectors.
The schema is documented in models/README.md.

``entry_posterior(name)`` turns a published fit into a :class:`~bayeslaw.posterior.LawPosterior`
without data. How the draws are made from what the paper gives:

- ``kind = "independent"``: each listed constant is drawn on its own from a normal on the scale
  the uncertainty was published on, ``log`` (log theta ~ Normal(log theta_hat, sd); positive
  constants with skewed bootstrap distributions) or ``linear`` (theta ~ Normal(theta_hat, sd)). An
  ``interval = [lo, hi]`` at ``level`` becomes sd = (hi - lo) / (2 z_(1+level)/2) on that scale,
  centred at the estimate. Constants without an entry stay at their estimate.
- ``kind = "covariance"``: a multivariate normal on the listed scales, centred at the estimates.
- Linear-scale draws whose sign differs from the estimate's are redrawn (a normal truncated at 0),
  so a positive exponent stays positive.
- ``kind = "none"``: the paper gives no uncertainty; the posterior is one draw at the estimates.

The catalogue ships in the wheel as ``bayeslaw/models`` (pyproject ``force-include``); in a source
checkout it is read from the top-level ``models/``.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import xarray as xr

from bayeslaw._draws import SAMPLE_DIMS, unflat
from bayeslaw._search import BUDGET_RULE, check_budgets
from bayeslaw.errors import BayeslawError
from bayeslaw.laws import Law, get_law
from bayeslaw.posterior import LawPosterior
from bayeslaw.priors import Prior

LAW_DEFAULTS = "law defaults"
MAX_ENTRY_BYTES = 1 << 20
# the largest published uncertainty a draw can take: on the log scale a factor of e^5 (about 150) per sd; on the
# linear scale 10 times the estimate. Larger ones draw constants that overflow or vanish (N_opt = 1 parameter)
MAX_LOG_SD = 5.0
MAX_RELATIVE_SD = 10.0
KINDS = ("none", "independent", "covariance")
SCALES = ("linear", "log")
TOP_LEVEL = {"name", "law", "title", "source", "conventions", "priors", "likelihood", "constants", "uncertainty",
             "test_vectors"}
SOURCE_FIELDS = {"citation", "arxiv", "where", "code", "provenance"}
ALLOCATION = ("N_opt", "D_opt", "M_opt", "tokens_per_param")


class CatalogueError(BayeslawError, ValueError):
    """A catalogue entry is unknown or malformed: the message names the file, the field and the rule."""


@dataclass(frozen=True)
class ParamUncertainty:
    """Published uncertainty of one constant: a standard deviation on the linear or log scale."""

    sd: float
    scale: str = "linear"
    published: str = ""  # how the paper gave it, e.g. "sd 0.258" or "95% interval [285.2, 743.6]"


@dataclass(frozen=True)
class Uncertainty:
    """How the draws are made: ``none`` (one draw), ``independent`` normals, or a ``covariance``."""

    kind: str
    label: str
    note: str
    params: Mapping[str, ParamUncertainty] = field(default_factory=dict)
    matrix: np.ndarray | None = None  # covariance, rows in the order of ``params``


@dataclass(frozen=True)
class TestVector:
    """A published value the constants must reproduce.

    ``inputs`` given: the law's target at those inputs. ``budget`` given: ``what`` (N_opt, D_opt,
    M_opt, tokens_per_param) of the compute-optimal allocation. Otherwise ``what`` names a published
    constant or a derived quantity (e.g. G, a).
    """

    __test__ = False  # not a pytest class

    what: str
    expected: float
    rtol: float
    inputs: Mapping[str, float] | None = None
    budget: float | None = None
    note: str = ""

    def evaluate(self, law: Law, constants: Mapping[str, float]) -> float:
        """The value the law gives for this vector at ``constants``."""
        if self.inputs is not None:
            return float(law.evaluate(constants, self.inputs))
        if self.budget is not None:
            from bayeslaw.plan import plan
            from bayeslaw.posterior import from_constants

            draws = plan(from_constants(law, constants), self.budget).draws
            return float(draws[self.what].item())
        return float(law.published_with_derived(constants)[self.what])


@dataclass(frozen=True)
class Entry:
    """One catalogue entry (see models/README.md for the file schema)."""

    name: str
    law: Law
    title: str
    source: Mapping[str, str]
    conventions: Mapping[str, str]
    prior_overrides: Mapping[str, str]
    priors: Mapping[str, Prior]  # every model prior: law defaults updated by the overrides
    likelihood: str
    constants: Mapping[str, float] | None
    uncertainty: Uncertainty | None
    test_vectors: tuple[TestVector, ...]
    path: Path

    @property
    def citation(self) -> str:
        arxiv = f", arXiv:{self.source['arxiv']}" if self.source.get("arxiv") else ""
        return f"{self.source['citation']}{arxiv}"

    def posterior(self, draws: int = 4000, seed: int | None = 0) -> LawPosterior:
        """Draws from the published estimates and their uncertainty (see the module docstring)."""
        if self.constants is None or self.uncertainty is None:
            raise CatalogueError(f"entry '{self.name}' publishes no constants (a prior specification): fit it, "
                                 f"e.g. bayeslaw.catalogue.fit_entry('{self.name}', runs)")
        if draws < 1:
            raise CatalogueError(f"draws must be >= 1, got {draws}")
        values = _draw(self, draws, np.random.default_rng(seed))
        data = {name: (SAMPLE_DIMS, unflat(values[name], 1)) for name in self.law.published}
        count = "" if self.uncertainty.kind == "none" else f" ({draws} draws)"
        return LawPosterior(self.law, xr.Dataset(data), likelihood=None,
                            source=f"{self.name}: {self.uncertainty.label}{count}")


# --- finding and reading entries --------------------------------------------------------------------

def catalogue_dir() -> Path:
    """The folder of entries: ``bayeslaw/models`` in an installed wheel, ``models/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "models", here.parent / "models"):
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    raise CatalogueError(f"the model catalogue is missing: no *.toml under {here / 'models'} or "
                         f"{here.parent / 'models'}")


def list_entries() -> list[str]:
    """Names of every catalogue entry, sorted."""
    return sorted(p.stem for p in catalogue_dir().glob("*.toml"))


def load_entry(name: str | Path) -> Entry:
    """The entry called ``name``, or one read from a ``.toml`` file path; validated on loading."""
    path = Path(name)
    if path.suffix != ".toml":
        path = catalogue_dir() / f"{name}.toml"
        if not path.is_file():
            raise CatalogueError(f"unknown model '{name}'; catalogue entries: {', '.join(list_entries())}")
    elif path.is_dir():
        raise CatalogueError(f"{path}: is a directory, not a catalogue entry file")
    elif not path.is_file():
        raise CatalogueError(f"{path}: no such entry file")
    elif path.stat().st_size > MAX_ENTRY_BYTES:
        raise CatalogueError(f"{path.name}: {path.stat().st_size} bytes is too large for a catalogue entry "
                             f"(at most {MAX_ENTRY_BYTES})")
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise CatalogueError(f"{path.name}: not valid TOML ({err})") from None
    except (RecursionError, MemoryError):
        raise CatalogueError(f"{path.name}: not a catalogue entry (its TOML nests too deeply to read)") from None
    except OSError as err:
        raise CatalogueError(f"{path}: cannot read the file ({err.strerror or err})") from None
    return _parse(raw, path)


def entry_posterior(name: str | Path, draws: int = 4000, seed: int | None = 0) -> LawPosterior:
    """A LawPosterior drawn from entry ``name``'s published estimates and uncertainty, no data needed."""
    return load_entry(name).posterior(draws, seed)


def fit_entry(name: str | Path, data: Any, **kwargs: Any):
    """Fit entry ``name``'s law to ``data`` with the entry's priors and likelihood (``bayeslaw.fit``)."""
    from bayeslaw.fit import fit

    entry = load_entry(name)
    kwargs.setdefault("likelihood", entry.likelihood)
    return fit(entry.law, data, priors=dict(entry.prior_overrides), **kwargs)


# --- validation ---------------------------------------------------------------------------------------

class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, rule: str) -> CatalogueError:
        return CatalogueError(f"{self.path.name}: field '{where}' {rule}")

    def text(self, table: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
        value = table.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "is required: a non-empty string" if value is None else
                            f"must be a non-empty string, got {value!r}")
        return value

    def table(self, raw: Mapping[str, Any], key: str, required: bool = True) -> dict[str, Any]:
        value = raw.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "is required and must be a table" if required else "must be a table")
        return value

    def number(self, value: Any, where: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(where, f"must be a finite number, got {value!r}")
        if positive and not value > 0:
            raise self.fail(where, f"must be > 0, got {value!r}")
        return float(value)


def _parse(raw: Mapping[str, Any], path: Path) -> Entry:
    check = _Checker(path)
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise check.fail(unknown[0], f"is not part of the schema; allowed fields: {', '.join(sorted(TOP_LEVEL))}")
    name = check.text(raw, "name", "name")
    if name != path.stem:
        raise check.fail("name", f"must equal the file name '{path.stem}', got '{name}'")
    try:
        law = get_law(check.text(raw, "law", "law"))
    except BayeslawError as err:
        raise check.fail("law", str(err)) from None
    title = check.text(raw, "title", "title")

    source = check.table(raw, "source")
    extra = sorted(set(source) - SOURCE_FIELDS)
    if extra:
        allowed = ", ".join(sorted(SOURCE_FIELDS))
        raise check.fail(f"source.{extra[0]}", f"is not part of the schema; allowed: {allowed}")
    check.text(source, "citation", "source.citation")
    for key in source:
        check.text(source, key, f"source.{key}")

    conventions = check.table(raw, "conventions")
    for key in conventions:
        check.text(conventions, key, f"conventions.{key}")
    missing = [k for k in (*law.inputs, law.target) if k not in conventions]
    if missing:
        raise check.fail("conventions", f"must say what each input and the target mean; missing {', '.join(missing)}")

    from bayeslaw.likelihoods import LIKELIHOODS
    from bayeslaw.model import model_priors

    likelihood = raw.get("likelihood", "student_t")
    if likelihood not in LIKELIHOODS:
        raise check.fail("likelihood", f"must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
    overrides = _prior_overrides(raw.get("priors"), check)
    try:
        priors = model_priors(law, likelihood, overrides)
    except BayeslawError as err:
        raise check.fail("priors", str(err)) from None

    constants = _constants(raw, law, check)
    uncertainty = _uncertainty(raw, constants, check)
    vectors = _vectors(raw, law, constants, check)
    return Entry(name, law, title, dict(source), dict(conventions), overrides, priors, likelihood, constants,
                 uncertainty, vectors, path)


def _prior_overrides(value: Any, check: _Checker) -> dict[str, str]:
    if value is None or value == LAW_DEFAULTS:
        return {}
    if isinstance(value, str):
        raise check.fail("priors", f"must be \"{LAW_DEFAULTS}\" or a table PARAM = \"Dist(arg=value, ...)\"")
    if not isinstance(value, dict) or not value:
        raise check.fail("priors", f"must be \"{LAW_DEFAULTS}\" or a non-empty table of overrides")
    for key, spec in value.items():
        if not isinstance(spec, str):
            raise check.fail(f"priors.{key}", "must be a string like \"LogNormal(mu=-1.2, sigma=0.5)\"")
    return dict(value)


def _constant(value: Any, where: str, check: _Checker) -> float:
    if isinstance(value, dict):
        if set(value) != {"log"}:
            raise check.fail(where, "must be a number or a table { log = ln(value) }")
        return math.exp(check.number(value["log"], f"{where}.log"))
    return check.number(value, where)


def _constants(raw: Mapping[str, Any], law: Law, check: _Checker) -> dict[str, float] | None:
    if "constants" not in raw:
        if "uncertainty" in raw:
            raise check.fail("uncertainty", "needs published constants ('constants')")
        return None
    table = check.table(raw, "constants")
    missing = [p for p in law.published if p not in table]
    extra = [p for p in table if p not in law.published]
    if missing or extra:
        raise check.fail("constants", f"must give exactly law '{law.name}''s parameters {', '.join(law.published)}; "
                         + (f"missing {', '.join(missing)}" if missing else f"unknown {', '.join(extra)}"))
    return {p: _constant(table[p], f"constants.{p}", check) for p in law.published}


def _param_uncertainty(spec: Any, name: str, estimate: float, check: _Checker) -> ParamUncertainty:
    where = f"uncertainty.params.{name}"
    if not isinstance(spec, dict):
        raise check.fail(where, "must be a table { sd = ..., scale = \"linear\" | \"log\" } or { interval = [lo, hi], "
                                "level = 0.95, scale = ... }")
    unknown = sorted(set(spec) - {"sd", "interval", "level", "scale"})
    if unknown:
        raise check.fail(f"{where}.{unknown[0]}", "is not part of the schema; allowed: sd, interval, level, scale")
    scale = spec.get("scale", "linear")
    if scale not in SCALES:
        raise check.fail(f"{where}.scale", f"must be one of {', '.join(SCALES)}, got {scale!r}")
    if scale == "log" and not estimate > 0:
        raise check.fail(f"{where}.scale", f"'log' needs a positive estimate, got {estimate}")
    if ("sd" in spec) == ("interval" in spec):
        raise check.fail(where, "needs exactly one of 'sd' and 'interval'")
    if "sd" in spec:
        if "level" in spec:
            raise check.fail(f"{where}.level", "goes with 'interval', not 'sd'")
        sd = check.number(spec["sd"], f"{where}.sd", positive=True)
        _check_spread(sd, scale, estimate, f"{where}.sd", check)
        return ParamUncertainty(sd, scale, f"sd {sd:g}" + (" on log scale" if scale == "log" else ""))
    interval = spec["interval"]
    if not isinstance(interval, list) or len(interval) != 2:
        raise check.fail(f"{where}.interval", "must be [lower, upper]")
    lo, hi = (check.number(v, f"{where}.interval", positive=scale == "log") for v in interval)
    if not lo < estimate < hi:
        raise check.fail(f"{where}.interval", f"must contain the estimate {estimate:g}, got [{lo:g}, {hi:g}]")
    level = check.number(spec.get("level"), f"{where}.level")
    if not 0 < level < 1:
        raise check.fail(f"{where}.level", f"must lie in (0, 1), got {level}")
    z = NormalDist().inv_cdf((1 + level) / 2)
    width = math.log(hi / lo) if scale == "log" else hi - lo
    _check_spread(width / (2 * z), scale, estimate, f"{where}.interval", check)
    return ParamUncertainty(width / (2 * z), scale, f"{level:.0%} interval [{lo:g}, {hi:g}]")


def _check_spread(sd: float, scale: str, estimate: float, where: str, check: _Checker) -> None:
    """An sd that draws constants far beyond any published uncertainty is refused (MAX_LOG_SD, MAX_RELATIVE_SD)."""
    if scale == "log" and sd > MAX_LOG_SD:
        raise check.fail(where, f"gives an sd of {sd:.3g} on the log scale; at most {MAX_LOG_SD:g} (a factor of "
                                f"{math.exp(MAX_LOG_SD):.0f} per sd) is allowed")
    if scale == "linear" and sd > MAX_RELATIVE_SD * abs(estimate):
        raise check.fail(where, f"gives an sd of {sd:.3g}, more than {MAX_RELATIVE_SD:g} times the estimate "
                                f"{estimate:g}; use scale = \"log\" or check the units")


def _uncertainty(raw: Mapping[str, Any], constants: Mapping[str, float] | None, check: _Checker) -> Uncertainty | None:
    if constants is None:
        return None
    table = check.table(raw, "uncertainty")
    unknown = sorted(set(table) - {"kind", "label", "note", "params", "matrix"})
    if unknown:
        raise check.fail(f"uncertainty.{unknown[0]}", "is not part of the schema; allowed: kind, label, note, params, "
                                                       "matrix")
    kind = table.get("kind")
    if kind not in KINDS:
        raise check.fail("uncertainty.kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    label = check.text(table, "label", "uncertainty.label")
    note = check.text(table, "note", "uncertainty.note")
    if kind == "none":
        if "params" in table or "matrix" in table:
            raise check.fail("uncertainty.kind", "is 'none' but 'params' or 'matrix' is given")
        return Uncertainty(kind, label, note)
    specs = table.get("params")
    if not isinstance(specs, dict) or not specs:
        raise check.fail("uncertainty.params", f"is required for kind '{kind}': a table PARAM = {{ ... }}")
    unknown = [p for p in specs if p not in constants]
    if unknown:
        raise check.fail(f"uncertainty.params.{unknown[0]}",
                         f"is not a constant of this entry ({', '.join(constants)})")
    if kind == "independent":
        if "matrix" in table:
            raise check.fail("uncertainty.matrix", "goes with kind 'covariance', not 'independent'")
        params = {p: _param_uncertainty(s, p, constants[p], check) for p, s in specs.items()}
        return Uncertainty(kind, label, note, params)
    params = {}
    for p, s in specs.items():
        if not isinstance(s, dict) or set(s) - {"scale"}:
            raise check.fail(f"uncertainty.params.{p}",
                             "must be { scale = \"linear\" | \"log\" } for kind 'covariance'")
        scale = s.get("scale", "linear")
        if scale not in SCALES:
            raise check.fail(f"uncertainty.params.{p}.scale", f"must be one of {', '.join(SCALES)}, got {scale!r}")
        params[p] = scale
    matrix = table.get("matrix")
    n = len(params)
    if (not isinstance(matrix, list) or len(matrix) != n
            or not all(isinstance(row, list) and len(row) == n for row in matrix)):
        raise check.fail("uncertainty.matrix", f"must be a {n} x {n} list of rows in the order of uncertainty.params")
    values = np.array([[check.number(v, "uncertainty.matrix") for v in row] for row in matrix])
    if not np.allclose(values, values.T, rtol=1e-9, atol=0.0):
        raise check.fail("uncertainty.matrix", "must be symmetric")
    if np.linalg.eigvalsh(values).min() <= 0:
        raise check.fail("uncertainty.matrix", "must be positive definite")
    out = {p: ParamUncertainty(math.sqrt(values[i, i]), scale, "covariance") for i, (p, scale) in
           enumerate(params.items())}
    for p, spread in out.items():
        _check_spread(spread.sd, spread.scale, constants[p], f"uncertainty.matrix (the variance of {p})", check)
    return Uncertainty(kind, label, note, out, values)


def _vectors(raw: Mapping[str, Any], law: Law, constants: Mapping[str, float] | None,
             check: _Checker) -> tuple[TestVector, ...]:
    items = raw.get("test_vectors", [])
    if not isinstance(items, list):
        raise check.fail("test_vectors", "must be an array of tables ([[test_vectors]])")
    if constants is None:
        if items:
            raise check.fail("test_vectors", "need published constants ('constants')")
        return ()
    if not items:
        raise check.fail("test_vectors", "must list at least one published value the constants reproduce")
    known = set(law.published_with_derived(constants))
    out = []
    for i, item in enumerate(items):
        where = f"test_vectors[{i}]"
        if not isinstance(item, dict):
            raise check.fail(where, "must be a table")
        unknown = sorted(set(item) - {"what", "inputs", "budget", "expected", "rtol", "note"})
        if unknown:
            raise check.fail(f"{where}.{unknown[0]}", "is not part of the schema; allowed: what, inputs, budget, "
                                                       "expected, rtol, note")
        what = item.get("what", law.target)
        expected = check.number(item.get("expected"), f"{where}.expected")
        rtol = check.number(item.get("rtol"), f"{where}.rtol", positive=True)
        inputs = budget = None
        if "inputs" in item and "budget" in item:
            raise check.fail(where, "takes 'inputs' or 'budget', not both")
        if "inputs" in item:
            if what != law.target:
                raise check.fail(f"{where}.what", f"must be the law's target '{law.target}' when 'inputs' are given")
            given = item["inputs"]
            if not isinstance(given, dict) or set(given) != set(law.inputs):
                raise check.fail(f"{where}.inputs", f"must give exactly the law's inputs {', '.join(law.inputs)}")
            inputs = {k: check.number(v, f"{where}.inputs.{k}") for k, v in given.items()}
        elif "budget" in item:
            budget = check.number(item["budget"], f"{where}.budget")
            try:
                check_budgets(budget)
            except BayeslawError:
                raise check.fail(f"{where}.budget", f"{BUDGET_RULE}, got {budget!r}") from None
            if what not in ALLOCATION:
                raise check.fail(f"{where}.what", f"must be one of {', '.join(ALLOCATION)} with a 'budget'")
        elif what not in known:
            raise check.fail(f"{where}.what", f"must name a constant or derived quantity ({', '.join(sorted(known))})")
        note = item.get("note", "")
        out.append(TestVector(what, expected, rtol, inputs, budget, note if isinstance(note, str) else ""))
    return tuple(out)


# --- draws ----------------------------------------------------------------------------------------------

MAX_REDRAWS = 100


def _draw(entry: Entry, draws: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draws of every published constant, per the entry's uncertainty (module docstring)."""
    constants, u = entry.constants, entry.uncertainty
    assert constants is not None and u is not None
    if u.kind == "none":
        return {p: np.array([v]) for p, v in constants.items()}
    names = list(u.params)
    logs = np.array([u.params[p].scale == "log" for p in names])
    estimate = np.array([constants[p] for p in names])
    centre = np.where(logs, np.log(np.abs(estimate)), estimate)
    if u.kind == "covariance":
        factor = np.linalg.cholesky(u.matrix)
    else:
        factor = np.diag([u.params[p].sd for p in names])
    sample = np.empty((draws, len(names)))
    todo = np.arange(draws)
    for _ in range(MAX_REDRAWS):
        proposal = centre + rng.standard_normal((len(todo), len(names))) @ factor.T
        sample[todo] = proposal
        flipped = ~logs & (np.sign(proposal) != np.sign(estimate))
        todo = todo[flipped.any(axis=1)]
        if not len(todo):
            break
    else:
        raise CatalogueError(f"entry '{entry.name}': draws keep changing the sign of a constant "
                             f"({MAX_REDRAWS} redraws); the published sd is too large for a normal on the linear "
                             "scale, use scale = \"log\"")
    sample = np.where(logs, np.exp(sample), sample)
    out = {p: np.full(draws, v) for p, v in constants.items()}
    out.update({p: sample[:, i] for i, p in enumerate(names)})
    return out
