"""The catalogue's file schema: what an entry's TOML table may hold, checked field by field.

``validate(raw, path)`` turns a parsed TOML table into the fields of an :class:`~bayeslaw.catalogue.Entry`
or raises :class:`CatalogueError` naming the file, the field and the rule; unknown fields are refused.
The value types an entry carries (``Uncertainty``, ``ParamUncertainty``, ``TestVector``) live here too.
The schema is documented in models/README.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from bayeslaw._search import BUDGET_RULE, check_budgets
from bayeslaw.errors import BayeslawError
from bayeslaw.laws import Law, get_law

LAW_DEFAULTS = "law defaults"
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


def validate(raw: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The fields of an Entry from the TOML table ``raw`` read from ``path``, every rule checked (models/README.md)."""
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
    return {"name": name, "law": law, "title": title, "source": dict(source), "conventions": dict(conventions),
            "prior_overrides": overrides, "priors": priors, "likelihood": likelihood, "constants": constants,
            "uncertainty": uncertainty, "test_vectors": vectors}


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
