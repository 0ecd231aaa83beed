"""Priors: the three forms and their round trips, validation, overrides per law and likelihood, building.

Error tests assert on the message (the parameter, the distribution, the rule), not only the type.
"""

from __future__ import annotations

import math

import numpy as np
import pymc as pm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayeslaw.errors import PriorError
from bayeslaw.laws import LAWS
from bayeslaw.model import LIKELIHOODS, model_priors
from bayeslaw.priors import DISTRIBUTIONS, Prior, resolve_priors

# Sensible arguments for every distribution bayeslaw knows.
EXAMPLES = {
    "Normal": {"mu": 0.0, "sigma": 1.0},
    "StudentT": {"nu": 4.0, "mu": 0.0, "sigma": 1.0},
    "LogNormal": {"mu": -1.0, "sigma": 0.5},
    "HalfNormal": {"sigma": 2.0},
    "HalfStudentT": {"nu": 3.0, "sigma": 1.0},
    "Gamma": {"alpha": 2.0, "beta": 0.1},
    "Exponential": {"lam": 2.0},
    "TruncatedNormal": {"mu": 0.3, "sigma": 0.1, "lower": 0.0, "upper": 1.0},
    "Uniform": {"lower": 0.0, "upper": 2.0},
    "Beta": {"alpha": 2.0, "beta": 2.0},
    "Fixed": {"value": 0.34},
}
SUPPORT_BOUNDS = {"real": (-math.inf, math.inf), "positive": (0.0, math.inf), "unit": (0.0, 1.0)}


def prior_error(call, *parts: str) -> str:
    """Run ``call``; expect a PriorError whose message contains every one of ``parts``."""
    with pytest.raises(PriorError) as info:
        call()
    message = str(info.value)
    for part in parts:
        assert part in message, f"{part!r} not in the message: {message}"
    return message


# ---- the three forms -----------------------------------------------------------------------------


def test_prior_from_keywords():
    prior = Prior("LogNormal", mu=0, sigma=1)
    assert prior.dist == "LogNormal"
    assert prior.kwargs == {"mu": 0.0, "sigma": 1.0}
    assert all(isinstance(v, float) for v in prior.kwargs.values())
    assert prior.bounds == (0.0, math.inf)
    assert str(prior) == "LogNormal(mu=0, sigma=1)"


def test_prior_from_a_dict():
    prior = Prior.parse({"dist": "Normal", "mu": 0, "sigma": 1})
    assert prior == Prior("Normal", mu=0.0, sigma=1.0)
    assert prior.bounds == (-math.inf, math.inf)


def test_prior_from_a_string():
    assert Prior.parse("Normal(mu=0, sigma=1)") == Prior("Normal", mu=0, sigma=1)
    assert Prior.parse("  LogNormal( mu = -1.2 , sigma=7e-1 ) ") == Prior("LogNormal", mu=-1.2, sigma=0.7)
    assert Prior.parse("TruncatedNormal(mu=0.3, sigma=0.1, lower=0)").bounds == (0.0, math.inf)


def test_parse_passes_a_prior_through():
    prior = Prior("HalfNormal", sigma=2)
    assert Prior.parse(prior) is prior


def test_the_dict_given_to_parse_is_not_changed():
    spec = {"dist": "Normal", "mu": 0, "sigma": 1}
    Prior.parse(spec)
    assert spec == {"dist": "Normal", "mu": 0, "sigma": 1}


def test_every_distribution_has_an_example():
    assert set(EXAMPLES) == set(DISTRIBUTIONS)


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_round_trip_through_dict_and_string(dist):
    prior = Prior(dist, **EXAMPLES[dist])
    as_dict = prior.to_dict()
    assert as_dict == {"dist": dist, **EXAMPLES[dist]}
    assert Prior.parse(as_dict) == prior
    assert Prior.parse(str(prior)) == prior


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
positive = st.floats(1e-6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=100, deadline=None)
@given(dist=st.sampled_from(["Normal", "LogNormal", "StudentT", "Gamma", "HalfNormal", "Exponential"]),
       mu=finite, scale=positive, shape=positive)
def test_to_dict_round_trip_is_exact(dist, mu, scale, shape):
    required = DISTRIBUTIONS[dist][0]
    values = {"mu": mu, "sigma": scale, "nu": shape, "alpha": shape, "beta": scale, "lam": scale}
    prior = Prior(dist, **{name: values[name] for name in required})
    again = Prior.parse(prior.to_dict())
    assert again == prior
    assert again.kwargs == prior.kwargs  # bit for bit: saved fits store priors this way


@settings(max_examples=50, deadline=None)
@given(lower=finite, width=positive)
def test_bounded_priors_report_their_bounds(lower, width):
    upper = lower + width
    if upper <= lower:  # width lost to rounding at large |lower|
        return
    assert Prior("Uniform", lower=lower, upper=upper).bounds == (lower, upper)
    assert Prior("TruncatedNormal", mu=lower, sigma=width, upper=upper).bounds == (-math.inf, upper)


# ---- invalid priors --------------------------------------------------------------------------------


def test_unknown_distribution():
    message = prior_error(lambda: Prior("Cauchy", alpha=0, beta=1), "unknown distribution 'Cauchy'", "allowed: ")
    for dist in DISTRIBUTIONS:
        assert dist in message


def test_unknown_distribution_names_the_parameter():
    prior_error(lambda: Prior.parse("Cauchy(alpha=0, beta=1)", "alpha"),
                "prior for 'alpha': unknown distribution 'Cauchy'; allowed: Normal")


def test_distribution_names_are_case_sensitive():
    prior_error(lambda: Prior.parse({"dist": "normal", "mu": 0, "sigma": 1}), "unknown distribution 'normal'")


def test_missing_argument():
    prior_error(lambda: Prior("Normal", mu=0), "Normal takes arguments mu, sigma", "missing sigma")
    prior_error(lambda: Prior.parse("Gamma(alpha=2)", "E"), "prior for 'E': Gamma takes arguments alpha, beta",
                "missing beta")


def test_unknown_argument():
    prior_error(lambda: Prior("Normal", mu=0, sigma=1, tau=2), "Normal takes arguments mu, sigma", "unknown tau")
    prior_error(lambda: Prior.parse({"dist": "HalfNormal", "sigma": 1, "mu": 0}, "sigma"),
                "prior for 'sigma': HalfNormal takes arguments sigma", "unknown mu")


@pytest.mark.parametrize("sigma", [0, -1, -1e-300])
def test_non_positive_sigma(sigma):
    prior_error(lambda: Prior("Normal", mu=0, sigma=sigma), f"Normal argument sigma={float(sigma)} must be > 0")


@pytest.mark.parametrize(("dist", "name"), [("StudentT", "nu"), ("Gamma", "alpha"), ("Gamma", "beta"),
                                            ("Exponential", "lam"), ("Beta", "alpha"), ("HalfNormal", "sigma")])
def test_every_scale_and_shape_argument_must_be_positive(dist, name):
    kwargs = {**EXAMPLES[dist], name: 0.0}
    prior_error(lambda: Prior(dist, **kwargs), f"{dist} argument {name}=0.0 must be > 0")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values(value):
    prior_error(lambda: Prior("Normal", mu=value, sigma=1), f"Normal argument mu={value} must be finite")
    prior_error(lambda: Prior.parse({"dist": "Uniform", "lower": 0, "upper": value}, "alpha"),
                "prior for 'alpha': ", f"upper={value} must be finite")


def test_non_finite_value_in_a_string():
    prior_error(lambda: Prior.parse("Normal(mu=1e999, sigma=1)", "E"), "prior for 'E': ", "mu=inf must be finite")


@pytest.mark.parametrize(
    "spec",
    ["Normal(0, 1)", "Normal(mu=0, sigma=1", "Normal", "mu=0, sigma=1", "import os", "pm.Normal(mu=0, sigma=1)",
     "Normal(mu=x, sigma=1)", "Normal(mu=-inf, sigma=1)", "", "Normal(mu=0, sigma=1) + 1",
     "Normal()()"],
)
def test_unparsable_strings(spec):
    message = prior_error(lambda: Prior.parse(spec, "alpha"), "prior for 'alpha': ", f"cannot read '{spec}'",
                          "Dist(arg=value, ...)")
    assert "LogNormal(mu=-1.2, sigma=0.7)" in message  # an example of the right form


def test_non_numeric_arguments():
    prior_error(lambda: Prior.parse({"dist": "Normal", "mu": "zero", "sigma": 1}, "E"),
                "prior for 'E': arguments of Normal must be numbers")
    prior_error(lambda: Prior.parse("Normal(mu=[0], sigma=1)"), "arguments of Normal must be numbers")


def test_dict_without_a_distribution():
    prior_error(lambda: Prior.parse({"mu": 0, "sigma": 1}, "alpha"),
                "prior for 'alpha': a dict prior needs a 'dist' key", "['mu', 'sigma']")


def test_a_spec_of_the_wrong_type():
    prior_error(lambda: Prior.parse(3.0, "alpha"), "prior for 'alpha': expected a Prior, dict or string, got float")
    prior_error(lambda: Prior.parse(None), "expected a Prior, dict or string, got NoneType")


@pytest.mark.parametrize(
    "make",
    [lambda: Prior("Uniform", lower=2, upper=1), lambda: Prior("Uniform", lower=1, upper=1),
     lambda: Prior("TruncatedNormal", mu=0, sigma=1, lower=3, upper=-3),
     lambda: Prior.parse("TruncatedNormal(mu=0, sigma=1, lower=0.5, upper=0.5)")],
)
def test_lower_must_be_below_upper(make):
    prior_error(make, "needs lower < upper, got")


# ---- model priors: defaults, overrides, supports, likelihoods ---------------------------------------


def test_model_priors_are_the_law_parameters_plus_noise():
    law = LAWS["chinchilla"]
    for likelihood in LIKELIHOODS:
        priors = model_priors(law, likelihood)
        expected = {*law.params, "sigma"} | ({"nu"} if likelihood == "student_t" else set())
        assert set(priors) == expected
        assert priors["sigma"] == law.noise_prior
        for name, param in law.params.items():
            assert priors[name] == param.prior


def test_a_valid_override_replaces_the_default():
    law = LAWS["chinchilla"]
    priors = model_priors(law, "student_t", {"alpha": "LogNormal(mu=-1, sigma=0.3)",
                                             "sigma": {"dist": "HalfNormal", "sigma": 0.05},
                                             "nu": Prior("Gamma", alpha=3, beta=0.2)})
    assert priors["alpha"] == Prior("LogNormal", mu=-1.0, sigma=0.3)
    assert priors["sigma"] == Prior("HalfNormal", sigma=0.05)
    assert priors["nu"] == Prior("Gamma", alpha=3, beta=0.2)
    for untouched in ("E", "beta", "log_A_at_pivot", "log_B_at_pivot"):
        assert priors[untouched] == law.params[untouched].prior
    assert law.params["alpha"].prior != priors["alpha"]  # the law's defaults are not changed


def test_unknown_parameter_is_named_and_the_allowed_ones_listed():
    law = LAWS["chinchilla"]
    message = prior_error(lambda: model_priors(law, "student_t", {"gamma": "Normal(mu=0, sigma=1)"}),
                          "unknown parameter 'gamma'", "this model's parameters are: ")
    allowed = message.split("this model's parameters are: ", 1)[1].split(", ")
    assert set(allowed) == {*law.params, "sigma", "nu"}


@pytest.mark.parametrize(
    ("law", "param", "spec", "interval"),
    [
        ("chinchilla", "alpha", "Normal(mu=0.3, sigma=0.1)", "(0.0, inf)"),
        ("chinchilla", "beta", {"dist": "StudentT", "nu": 3, "mu": 0.3, "sigma": 0.1}, "(0.0, inf)"),
        ("chinchilla", "E", "Uniform(lower=-1, upper=3)", "(0.0, inf)"),
        ("chinchilla", "sigma", "Normal(mu=0, sigma=1)", "(0.0, inf)"),
        ("chinchilla", "nu", "TruncatedNormal(mu=5, sigma=1, upper=30)", "(0.0, inf)"),
        ("chinchilla", "alpha", "Fixed(value=-0.3)", "(0.0, inf)"),
        ("power-N", "reducible_share", "LogNormal(mu=-1, sigma=0.5)", "(0.0, 1.0)"),
        ("power-N", "reducible_share", "Uniform(lower=0.2, upper=1.5)", "(0.0, 1.0)"),
        ("kaplan-N", "alpha_N", "Normal(mu=0.076, sigma=0.02)", "(0.0, inf)"),
    ],
)
def test_a_prior_outside_the_parameter_support_is_refused(law, param, spec, interval):
    prior_error(lambda: model_priors(LAWS[law], "student_t", {param: spec}), f"prior for '{param}': ",
                f"but '{param}' must lie in {interval}")


@pytest.mark.parametrize(
    ("law", "param", "spec"),
    [
        ("chinchilla", "alpha", "TruncatedNormal(mu=0.3, sigma=0.1, lower=0)"),
        ("chinchilla", "alpha", "Uniform(lower=0.05, upper=1)"),
        ("chinchilla", "E", "Gamma(alpha=2, beta=1)"),
        ("chinchilla", "alpha", "Fixed(value=0.34)"),
        ("chinchilla", "log_A_at_pivot", "StudentT(nu=3, mu=0, sigma=2)"),
        ("chinchilla", "log_A_at_pivot", "HalfNormal(sigma=1)"),  # positive fits inside real
        ("power-N", "reducible_share", "Beta(alpha=2, beta=5)"),
        ("power-N", "reducible_share", "Uniform(lower=0, upper=1)"),
        ("deepseek-M_opt", "a", "Normal(mu=0.5, sigma=0.2)"),
    ],
)
def test_a_prior_inside_the_parameter_support_is_accepted(law, param, spec):
    assert model_priors(LAWS[law], "normal", {param: spec})[param] == Prior.parse(spec)


def test_nu_exists_only_for_the_student_t_likelihood():
    law = LAWS["power-N"]
    assert model_priors(law, "student_t")["nu"] == Prior("Gamma", alpha=2, beta=0.1)
    for likelihood in ("normal", "laplace"):
        assert "nu" not in model_priors(law, likelihood)
        prior_error(lambda lik=likelihood: model_priors(law, lik, {"nu": "Gamma(alpha=2, beta=0.1)"}),
                    "unknown parameter 'nu'")


def test_unknown_likelihood():
    prior_error(lambda: model_priors(LAWS["chinchilla"], "huber"),
                "unknown likelihood 'huber'; allowed: student_t, normal, laplace")


def test_resolve_priors_directly():
    defaults = {"a": Prior("Normal", mu=0, sigma=1), "b": Prior("HalfNormal", sigma=1)}
    supports = {"a": "real", "b": "positive"}
    assert resolve_priors(defaults, supports, None) == defaults
    assert resolve_priors(defaults, supports, {"b": "Exponential(lam=1)"})["b"] == Prior("Exponential", lam=1)
    prior_error(lambda: resolve_priors(defaults, supports, {"c": "Normal(mu=0, sigma=1)"}),
                "unknown parameter 'c'; this model's parameters are: a, b")
    prior_error(lambda: resolve_priors(defaults, supports, {"b": "Normal(mu=0, sigma=1)"}),
                "prior for 'b': ", "must lie in (0.0, inf)")


# ---- every law in the registry --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LAWS))
def test_default_priors_match_each_parameter_support(name):
    law = LAWS[name]
    assert law.params, name
    for param, spec in law.params.items():
        assert spec.support in SUPPORT_BOUNDS, (name, param)
        spec.prior.check_support(param, spec.support)  # raises PriorError if not
        lo, hi = spec.prior.bounds
        need_lo, need_hi = SUPPORT_BOUNDS[spec.support]
        assert need_lo <= lo < hi <= need_hi, (name, param, spec.prior)
        assert spec.doc
    law.noise_prior.check_support("sigma", "positive")
    for likelihood in LIKELIHOODS:
        assert set(model_priors(law, likelihood)) >= {*law.params, "sigma"}


# ---- building PyMC variables ----------------------------------------------------------------------


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_build_creates_a_pymc_variable(dist):
    prior = Prior(dist, **EXAMPLES[dist])
    with pm.Model() as model:
        var = prior.build("theta")
    assert model.named_vars["theta"] is var
    draws = np.asarray(pm.draw(var, 200, random_seed=1))
    assert draws.shape == (200,)
    assert np.all(np.isfinite(draws))
    lo, hi = prior.bounds
    assert np.all((draws >= lo) & (draws <= hi)), dist
    if dist == "Fixed":
        assert var in model.deterministics
        np.testing.assert_array_equal(draws, 0.34)
    else:
        assert var in model.free_RVs
        assert np.unique(draws).size > 100  # really random


# ---- problems found while writing these tests, now fixed ---------------------------------------------


def test_string_round_trip_keeps_every_digit():
    prior = LAWS["chinchilla"].params["alpha"].prior  # LogNormal(mu=log(0.3), ...)
    assert Prior.parse(str(prior)) == prior


def test_a_repeated_argument_in_a_string_is_refused():
    prior_error(lambda: Prior.parse("Normal(mu=0, sigma=1, sigma=2)", "alpha"), "prior for 'alpha': ", "sigma")


@pytest.mark.parametrize(("param", "value"), [("sigma", 0.0), ("alpha", 0.0), ("alpha", -0.0)])
def test_fixed_value_on_the_boundary_of_the_support_is_refused(param, value):
    prior_error(lambda: model_priors(LAWS["chinchilla"], "normal", {param: {"dist": "Fixed", "value": value}}),
                f"prior for '{param}': ")


def test_priors_are_immutable_hashable_values():
    prior = Prior("Normal", mu=0, sigma=1)
    assert hash(prior) == hash(Prior.parse("Normal(mu=0, sigma=1)"))
    assert len({prior, Prior("Normal", mu=0, sigma=1)}) == 1
    with pytest.raises(TypeError):
        prior.kwargs["sigma"] = -1.0  # validated once, cannot be changed after
    with pytest.raises(PriorError, match="arguments of Normal must be numbers"):
        Prior("Normal", mu="zero", sigma=1)


@pytest.mark.parametrize(("prior", "words"), [
    (Prior("Normal", mu=0.0, sigma=1.0), "Normal(0, 1), 95% range -2 to 2"),
    (Prior("HalfNormal", sigma=2.5), "HalfNormal(2.5), 95% below 4.9"),
    (Prior("LogNormal", mu=math.log(0.3), sigma=0.7), "LogNormal(log 0.3, 0.7), 95% range 0.076 to 1.2"),
    (Prior("Beta", alpha=1.5, beta=1.5), "Beta(1.5, 1.5), 95% range 0.061 to 0.94"),
    (Prior("Exponential", lam=60.0), "Exponential(60), 95% below 0.05"),
    (Prior("Uniform", lower=0.0, upper=2.0), "Uniform(0, 2), 95% range 0.05 to 1.9"),
    (Prior("Fixed", value=0.3), "fixed at 0.3"),
])
def test_a_prior_describes_itself(prior, words):
    assert prior.describe() == words


def test_a_prior_on_a_log_also_gives_the_range_of_the_quantity():
    assert Prior("Normal", mu=0.0, sigma=3.0).describe("d1 / C0").endswith("(d1 / C0: 0.0028 to 360)")
    assert Prior("Normal", mu=float(np.log(300)), sigma=1.5).describe("E").endswith("(E: 16 to 5,700)")


@pytest.mark.parametrize("dist", list(DISTRIBUTIONS))
def test_every_distribution_has_a_95_percent_interval(dist):
    prior = Prior(dist, **EXAMPLES[dist])
    lo, hi = prior.interval()
    assert lo <= hi and math.isfinite(lo) and math.isfinite(hi)
    assert prior.describe()
