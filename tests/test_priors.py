"""Priors: parsing, validation with errors that name the parameter, overrides, and building."""

from __future__ import annotations

import math

import numpy as np
import pymc as pm
import pytest

from bayeslaw.errors import PriorError
from bayeslaw.laws import LAWS
from bayeslaw.model import model_priors
from bayeslaw.priors import DISTRIBUTIONS, Prior

EXAMPLES = {
    "Normal": {"mu": 0.0, "sigma": 1.0}, "StudentT": {"nu": 4.0, "mu": 0.0, "sigma": 1.0},
    "LogNormal": {"mu": -1.0, "sigma": 0.5}, "HalfNormal": {"sigma": 2.0}, "HalfStudentT": {"nu": 3.0, "sigma": 1.0},
    "Gamma": {"alpha": 2.0, "beta": 0.1}, "Exponential": {"lam": 2.0},
    "TruncatedNormal": {"mu": 0.3, "sigma": 0.1, "lower": 0.0, "upper": 1.0}, "Uniform": {"lower": 0.0, "upper": 2.0},
    "Beta": {"alpha": 2.0, "beta": 2.0}, "Fixed": {"value": 0.34},
}


def test_every_distribution_has_an_example():
    assert set(EXAMPLES) == set(DISTRIBUTIONS)


@pytest.mark.parametrize("dist", sorted(EXAMPLES))
def test_forms_round_trip_and_build(dist):
    prior = Prior(dist, **EXAMPLES[dist])
    assert Prior.parse(prior.to_dict()) == prior
    assert Prior.parse(str(prior)) == prior
    with pm.Model() as model:
        var = prior.build("theta")
    draws = pm.draw(var, 200, random_seed=1)
    lo, hi = prior.bounds
    assert np.all((draws >= lo) & (draws <= hi))
    assert "theta" in model.named_vars


def test_string_and_dict_forms():
    assert Prior.parse("LogNormal(mu=-1.2, sigma=0.7)") == Prior("LogNormal", mu=-1.2, sigma=0.7)
    assert Prior.parse({"dist": "HalfNormal", "sigma": 2}) == Prior("HalfNormal", sigma=2.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Cauchy(alpha=0, beta=1)", "unknown distribution 'Cauchy'; allowed: Normal"),
        ("Normal(mu=0)", "Normal takes arguments mu, sigma; missing sigma"),
        ("Normal(mu=0, sigma=1, tau=2)", "unknown tau"),
        ("Normal(mu=0, sigma=-1)", "sigma=-1.0 must be > 0"),
        ("Normal(mu=0, sigma=0)", "sigma=0.0 must be > 0"),
        ({"dist": "Normal", "mu": float("nan"), "sigma": 1}, "mu=nan must be finite"),
        ("Uniform(lower=2, upper=1)", "needs lower < upper"),
        ("Normal(0, 1)", "cannot read 'Normal(0, 1)'"),
        ("import os", "cannot read"),
        ({"mu": 0, "sigma": 1}, "a dict prior needs a 'dist' key"),
        ({"dist": "Normal", "mu": "zero", "sigma": 1}, "arguments of Normal must be numbers"),
        (3.0, "expected a Prior, dict or string"),
    ],
)
def test_invalid_priors_name_the_parameter_and_the_rule(spec, message):
    with pytest.raises(PriorError) as err:
        Prior.parse(spec, "alpha")
    assert str(err.value).startswith("prior for 'alpha': ")
    assert message in str(err.value)


def test_overrides_replace_defaults_and_unknown_parameters_are_listed():
    law = LAWS["chinchilla"]
    priors = model_priors(law, "student_t", {"alpha": "LogNormal(mu=-1, sigma=0.3)", "sigma": {"dist": "HalfNormal",
                                                                                            "sigma": 0.05}})
    assert priors["alpha"] == Prior("LogNormal", mu=-1.0, sigma=0.3)
    assert priors["sigma"] == Prior("HalfNormal", sigma=0.05)
    assert priors["beta"] == law.params["beta"].prior
    with pytest.raises(PriorError, match="unknown parameter 'gamma'; this model's parameters are: E, log_A_at_pivot"):
        model_priors(law, "student_t", {"gamma": "Normal(mu=0, sigma=1)"})


OUTSIDE_SUPPORT = [("alpha", "Normal(mu=0.3, sigma=0.1)"), ("sigma", "Normal(mu=0, sigma=1)"),
                   ("E", "Uniform(lower=-1, upper=3)"), ("nu", "StudentT(nu=3, mu=5, sigma=1)")]


@pytest.mark.parametrize(("param", "spec"), OUTSIDE_SUPPORT)
def test_priors_outside_the_parameter_support_are_refused(param, spec):
    with pytest.raises(PriorError, match=rf"prior for '{param}': .* but '{param}' must lie in \(0.0, inf\)"):
        model_priors(LAWS["chinchilla"], "student_t", {param: spec})


def test_a_bounded_prior_inside_the_support_is_accepted():
    priors = model_priors(LAWS["chinchilla"], "normal", {"alpha": "TruncatedNormal(mu=0.3, sigma=0.1, lower=0)"})
    assert priors["alpha"].bounds == (0.0, math.inf)


def test_nu_only_with_student_t_and_unknown_likelihoods_are_refused():
    law = LAWS["power-N"]
    assert "nu" in model_priors(law, "student_t")
    assert "nu" not in model_priors(law, "laplace")
    with pytest.raises(PriorError, match="unknown parameter 'nu'"):
        model_priors(law, "normal", {"nu": "Gamma(alpha=2, beta=0.1)"})
    with pytest.raises(PriorError, match="unknown likelihood 'huber'; allowed: student_t, normal, laplace"):
        model_priors(law, "huber")


@pytest.mark.parametrize("name", list(LAWS))
def test_default_priors_fit_each_parameter_support(name):
    law = LAWS[name]
    for param, spec in law.params.items():
        spec.prior.check_support(param, spec.support)
        assert spec.doc
