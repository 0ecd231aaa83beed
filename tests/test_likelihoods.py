"""The likelihood registry: each family's numpy density is PyMC's, its draws have its scale, and every place that
counts a model's parameters counts its noise parameters the same way."""

import numpy as np
import pytest
from scipy import stats

from bayeslaw.errors import PriorError
from bayeslaw.laws import LAWS, get_law
from bayeslaw.likelihoods import LIKELIHOODS, NOISE_PARAMETERS, REGISTRY, get_likelihood, n_parameters
from bayeslaw.model import check_likelihood, model_parameters, model_priors

NOISE = {"sigma": 0.05, "nu": 3.5}
SCIPY = {"student_t": lambda s: stats.t(df=s["nu"], scale=s["sigma"]), "normal": lambda s: stats.norm(scale=s["sigma"]),
         "laplace": lambda s: stats.laplace(scale=s["sigma"])}


def test_the_registry_lists_three_families_with_their_noise_parameters():
    assert LIKELIHOODS == ("student_t", "normal", "laplace")
    assert {name: REGISTRY[name].n_params for name in LIKELIHOODS} == {"student_t": 2, "normal": 1, "laplace": 1}
    assert {name: REGISTRY[name].params for name in LIKELIHOODS} == {
        "student_t": ("sigma", "nu"), "normal": ("sigma",), "laplace": ("sigma",)}
    # and the learning-curve families' (bayeslaw.curves), which are not for tables of runs
    assert NOISE_PARAMETERS == ("sigma", "nu", "schedule_sd", "run_scale_sd", "run_sd", "corr_length", "schedule_gap")


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_numpy_log_density_matches_pymc(likelihood):
    import pymc as pm

    family = get_likelihood(likelihood)
    y = np.array([-0.3, -0.05, 0.0, 0.02, 0.4])
    mu = np.array([0.0, -0.01, 0.01, 0.0, 0.1])
    priors = model_priors(get_law("chinchilla"), likelihood)
    with pm.Model(coords={"run": np.arange(len(y))}) as model:
        observed = family.observe("obs", mu, priors, y, dims="run")
    point = {f"{name}_log__": np.log(NOISE[name]) for name in family.params}
    pymc_logp = model.compile_logp(vars=[observed], sum=False, jacobian=False)(point)[0]
    noise = {name: NOISE[name] for name in family.params}
    np.testing.assert_allclose(family.logpdf(y, noise, loc=mu), pymc_logp, rtol=1e-10)
    np.testing.assert_allclose(family.logpdf(y - mu, noise), pymc_logp, rtol=1e-10)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_draws_follow_the_family_at_its_scale(likelihood):
    family = get_likelihood(likelihood)
    noise = {name: np.full((4, 1), NOISE[name]) for name in family.params}  # broadcast over a trailing axis
    draws = family.draw(np.random.default_rng(0), noise, (4, 50_000))
    reference = SCIPY[likelihood](NOISE)
    assert stats.kstest(draws.ravel(), reference.cdf).pvalue > 1e-3
    iqr = np.subtract(*np.quantile(draws, [0.75, 0.25]))
    assert iqr == pytest.approx(np.subtract(*reference.ppf([0.75, 0.25])), rel=0.02)
    np.testing.assert_allclose(family.logpdf(draws[:, :5], noise), reference.logpdf(draws[:, :5]), rtol=1e-12)


def test_every_parameter_count_asks_the_registry():
    for law in LAWS.values():
        for likelihood in LIKELIHOODS:
            names = model_parameters(model_priors(law, likelihood))
            assert names == [*law.params, *REGISTRY[likelihood].params]
            assert n_parameters(law, likelihood) == len(names)


def test_robust_weights_come_from_the_family():
    r = np.array([0.0, 0.05, 0.1, 0.5])
    assert np.array_equal(REGISTRY["normal"].precision_weights(r, None, None), np.ones(4))
    np.testing.assert_allclose(REGISTRY["student_t"].precision_weights(r, 0.05, 3.0), 4.0 / (3.0 + (r / 0.05) ** 2))
    np.testing.assert_allclose(REGISTRY["laplace"].precision_weights(r[1:], 0.05, None), 0.05 / r[1:])


@pytest.mark.parametrize("name", ["cauchy", "Normal", "", None, 3])
def test_an_unknown_likelihood_names_the_allowed_ones(name):
    for check in (get_likelihood, check_likelihood):
        with pytest.raises(PriorError, match=f"unknown likelihood '{name}'; allowed: student_t, normal, laplace"):
            check(name)
