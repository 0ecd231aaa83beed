"""Every law: published test vectors (../shared/laws.md), registry contract, numpy/xarray/PyMC agreement."""

from __future__ import annotations

import re

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
import xarray as xr

from bayeslaw.errors import LawError
from bayeslaw.laws import LAWS, chinchilla_optimum, get_law, model_scale
from bayeslaw.laws.base import Coordinates, Param, Preset, pivots_of, sample_inputs
from bayeslaw.priors import Prior

# (law, preset, inputs, expected, relative tolerance); values from ../shared/laws.md
VECTORS = [
    ("kaplan-N", "kaplan2020", {"N": 1e9}, 2.3756402951, 1e-9),
    ("kaplan-D", "kaplan2020", {"D": 1e10}, 2.2624417538, 1e-9),
    ("kaplan-C", "kaplan2020", {"C": 8.64e19}, 2.6580802262, 1e-9),  # C_min = 1 PF-day
    ("kaplan-ND", "kaplan2020", {"N": 1e9, "D": 1e10}, 2.4196518192, 1e-9),
    ("pure-power-N", "kaplan2020", {"N": 1e9}, 2.3756402951, 1e-9),
    ("pure-power-C", "kaplan2020", {"C": 8.64e19}, 2.6580802262, 1e-9),
    ("chinchilla", "hoffmann2022", {"N": 70e9, "D": 1.4e12}, 1.9366454706, 1e-9),
    ("chinchilla", "hoffmann2022", {"N": 280e9, "D": 300e9}, 1.9932584617, 1e-9),
    ("chinchilla", "hoffmann2022", {"N": 1e9, "D": 2e10}, 2.5800478722, 1e-9),
    ("power-N", "chinchilla2022-infinite-data", {"N": 1e9}, 1.69 + 406.4 * 1e9**-0.34, 1e-12),
    # Muennighoff et al. 2023 README: scaling_law(N, D, U)
    ("muennighoff", "muennighoff2023", {"N": 6.34e9, "D": 242e9, "U": 25e9}, 2.2256440889984477, 1e-9),
    ("muennighoff", "muennighoff2023", {"N": 8.67e9, "D": 178e9, "U": 25e9}, 2.2269634075087867, 1e-9),
    # DeepSeek 7B: C = M D with M = 4.2279e10 and D = 2e12 (laws.md section 4)
    ("deepseek-M_opt", "deepseek2024", {"C": 8.4557e22}, 1.799e11, 1e-3),
    ("deepseek-D_opt", "deepseek2024", {"C": 8.4557e22}, 4.701e11, 1e-3),
    ("deepseek-lr_opt", "deepseek2024", {"C": 8.4557e22}, 4.246e-4, 1e-3),
    ("deepseek-batch_opt", "deepseek2024", {"C": 8.4557e22}, 9.22e6, 1e-3),
]


@pytest.mark.parametrize(("name", "preset", "inputs", "expected", "rtol"), VECTORS)
def test_published_test_vectors(name, preset, inputs, expected, rtol):
    assert get_law(name).evaluate_preset(preset, inputs) == pytest.approx(expected, rel=rtol)


@pytest.mark.parametrize(
    ("preset", "budget", "n_opt", "d_opt", "g"),
    [
        ("hoffmann2022", 5.76e23, 3.219e10, 2.982e12, 1.34471),
        ("hoffmann2022", 1e21, 1.824e9, 9.136e10, 1.34471),
        ("hoffmann2022-tex", 5.76e23, 4.036e10, 2.379e12, 1.30005),
        ("besiroglu2024", 5.76e23, 7.236e10, 1.327e12, 0.119633),
    ],
)
def test_chinchilla_allocation_matches_published(preset, budget, n_opt, d_opt, g):
    params = get_law("chinchilla").presets[preset].values
    n, d = chinchilla_optimum(params, budget)
    assert n == pytest.approx(n_opt, rel=1e-3)
    assert d == pytest.approx(d_opt, rel=1e-3)
    assert get_law("chinchilla").published_with_derived(params)["G"] == pytest.approx(g, rel=1e-4)
    assert 6 * n * d == pytest.approx(budget, rel=1e-12)


def test_quokka_allocation_and_derived():
    law = get_law("quokka")
    params = law.presets["ni2025"].values
    derived = law.published_with_derived(params)
    assert derived["G"] == pytest.approx(0.099169, rel=1e-4)
    assert derived["a"] == pytest.approx(0.4993, abs=1e-4)
    n, d = chinchilla_optimum(params, 5.76e23)
    assert n == pytest.approx(2.97e10, rel=5e-3)
    assert d == pytest.approx(3.24e12, rel=5e-3)


def test_deepseek_model_scale_and_allocation_identity():
    assert model_scale(8, 512, 4096) == 352_321_536
    assert model_scale(30, 4096, 4096) == pytest.approx(4.2279e10, rel=1e-4)
    m = get_law("deepseek-M_opt").presets["deepseek2024"].values
    d = get_law("deepseek-D_opt").presets["deepseek2024"].values
    assert m["M_base"] * d["D_base"] == pytest.approx(1.0001, abs=1e-4)  # M_opt D_opt = C
    assert m["a"] + d["b"] == pytest.approx(1.0, abs=1e-12)


def test_rounded_vs_tex_chinchilla_differ_by_a_quarter_at_gopher_compute():
    law = get_law("chinchilla")
    printed, _ = chinchilla_optimum(law.presets["hoffmann2022"].values, 5.76e23)
    tex, _ = chinchilla_optimum(law.presets["hoffmann2022-tex"].values, 5.76e23)
    assert tex / printed == pytest.approx(1.254, abs=0.005)


def test_registry_lookup_is_case_insensitive_and_unknown_names_are_listed():
    assert get_law("KAPLAN-nd") is LAWS["kaplan-ND"]
    assert get_law("power") is LAWS["power-C"]
    with pytest.raises(LawError, match=r"unknown law 'nope'.*chinchilla"):
        get_law("nope")


def _example_inputs(law, n=12, seed=0):
    return sample_inputs(law, n, np.random.default_rng(seed))


def _truth(law):
    return next(iter(law.presets.values())).values


@pytest.mark.parametrize("name", list(LAWS))
def test_contract_every_law(name):
    """Each law: has presets and ranges; published <-> sampling coordinates round-trip; the same
    function gives the same numbers on numpy, on xarray posteriors and inside PyTensor."""
    law = LAWS[name]
    assert law.presets, "every law records at least one published set of constants"
    assert set(law.input_ranges) == set(law.inputs)
    assert set(law.conventions) >= set(law.inputs)
    truth = _truth(law)
    assert set(truth) == set(law.published)
    inputs = _example_inputs(law)
    target = law.evaluate(truth, inputs)
    pivots = pivots_of({**inputs, law.target: target}, (*law.inputs, law.target))

    sampled = law.from_published(truth, pivots)
    assert set(sampled) == set(law.params)
    back = law.to_published(sampled, pivots, np)
    for key in law.published:
        assert float(back[key]) == pytest.approx(truth[key], rel=1e-10)

    draws = xr.Dataset({k: xr.DataArray(np.full((2, 3), v), dims=("chain", "draw")) for k, v in truth.items()})
    points = {k: xr.DataArray(v, dims="run") for k, v in inputs.items()}
    on_xarray = law.function(draws, points, np)
    assert on_xarray.dims == ("chain", "draw", "run")
    np.testing.assert_allclose(on_xarray.isel(chain=1, draw=2).values, target, rtol=1e-12)

    tensors = {k: pt.as_tensor(v) for k, v in sampled.items()}
    published = law.to_published(tensors, {k: pt.as_tensor(v) for k, v in pivots.items()}, pt)
    on_pytensor = law.function(published, {k: pt.as_tensor(v) for k, v in inputs.items()}, pt).eval()
    np.testing.assert_allclose(on_pytensor, target, rtol=1e-10)
    assert np.all(target > 0)


@pytest.mark.parametrize("name", list(LAWS))
def test_default_priors_build_a_model_and_cover_the_published_constants(name):
    """Default priors are weakly informative: the published constants sit inside their 99.9% range."""
    law = LAWS[name]
    inputs = _example_inputs(law)
    truth = _truth(law)
    target = law.evaluate(truth, inputs)
    pivots = pivots_of({**inputs, law.target: target}, (*law.inputs, law.target))
    sampled = law.from_published(truth, pivots)
    with pm.Model():
        for param, spec in law.params.items():
            rv = spec.prior.build(param)
            logp = pm.logp(rv, sampled[param]).eval()
            mode_logp = pm.logp(rv, np.median(pm.draw(rv, 2000, random_seed=1))).eval()
            assert logp > mode_logp - 0.5 * 3.3**2, f"{param}={sampled[param]} is far in the tail of {spec.prior}"


def _unconstrained(value: float, support: str) -> float:
    return {"positive": np.log, "unit": lambda v: np.log(v) - np.log1p(-v), "real": float}[support](value)


@pytest.mark.parametrize("name", [n for n, law in LAWS.items() if law.coordinates is not None])
def test_sampling_coordinates_round_trip_and_preserve_volume(name):
    """A law's sampling coordinates map one-to-one onto its parameters, and the map to the parameters'
    unconstrained values has |det J| = 1 (so the model's prior density needs no other Jacobian term)."""
    law = LAWS[name]
    coordinates = law.coordinates
    inputs = _example_inputs(law)
    truth = _truth(law)
    pivots = pivots_of({**inputs, law.target: law.evaluate(truth, inputs)}, (*law.inputs, law.target))
    theta = law.from_published(truth, pivots)
    u = coordinates.from_params(theta, pivots)
    assert set(u) == set(coordinates.names)
    back = coordinates.to_params(u, pivots, np)
    for key in law.params:
        assert float(back[key]) == pytest.approx(theta[key], rel=1e-9, abs=1e-12)
    start = coordinates.initial(pivots)
    assert set(start) == set(coordinates.names) and all(np.isfinite(list(start.values())))

    def v(point: np.ndarray) -> np.ndarray:
        params = coordinates.to_params(dict(zip(coordinates.names, point, strict=True)), pivots, np)
        return np.array([_unconstrained(float(params[k]), p.support) for k, p in law.params.items()])

    rng = np.random.default_rng(0)
    base = np.array([u[k] for k in coordinates.names])
    for point in (base, base + rng.normal(0.0, 0.3, base.size)):
        step = 1e-6
        jacobian = np.column_stack([(v(point + step * e) - v(point - step * e)) / (2 * step)
                                    for e in np.eye(point.size)])
        assert abs(np.linalg.det(jacobian)) == pytest.approx(1.0, rel=1e-5)


# ---- the contract every Law checks when it is made (Law.__post_init__) ------------------------------------


def _broken(**changes):
    import dataclasses

    return lambda: dataclasses.replace(LAWS["chinchilla"], **changes)


def _drop(mapping_fn, key):
    return lambda *args: {k: v for k, v in mapping_fn(*args).items() if k != key}


CHINCHILLA = LAWS["chinchilla"]
BROKEN = [
    (_broken(inputs=("N", "loss")), "the target 'loss' is also an input"),
    (_broken(inputs=("N", "N")), "inputs must be distinct"),
    (_broken(conventions={"N": "parameters", "D": "tokens"}), "conventions must say what each input and the target"),
    (_broken(params={**CHINCHILLA.params, "E": Param(Prior("Normal", mu=1.8, sigma=0.5), "positive", "E")}),
     "default prior for 'E'"),
    (_broken(presets={"x": Preset({"E": 1.7, "A": 400.0, "alpha": 0.3, "beta": 0.3}, "missing B")}),
     "preset 'x' must give exactly the published parameters"),
    (_broken(to_published=_drop(CHINCHILLA.to_published, "B")),
     "to_published gives E, A, alpha, beta, not the published"),
    (_broken(from_published=_drop(CHINCHILLA.from_published, "beta")), "from_published gives"),
    (_broken(derived=lambda p, xp: {"alpha": p["alpha"]}), "derived quantities alpha would replace published ones"),
    (_broken(ties={"G": ("log_A_at_pivot", None)}), "tie 'G' -> 'log_A_at_pivot'"),
    (_broken(coordinates=Coordinates(CHINCHILLA.coordinates.names, _drop(CHINCHILLA.coordinates.to_params, "E"),
                                     CHINCHILLA.coordinates.from_params, CHINCHILLA.coordinates.initial)),
     "coordinates' to_params gives"),
    (_broken(target_accept=1.0), "target_accept must lie in (0, 1)"),
    (_broken(thin=0), "thin must be a whole number >= 1"),
    (_broken(thin=1.5), "thin must be a whole number >= 1"),
]


@pytest.mark.parametrize(("make", "rule"), BROKEN)
def test_a_law_whose_parts_do_not_fit_is_refused_when_made(make, rule):
    with pytest.raises(LawError, match="law 'chinchilla': ") as err:
        make()
    assert rule in str(err.value)


def test_prior_words_are_generated_not_written_by_hand():
    for name, law in LAWS.items():
        for param, spec in law.params.items():
            assert not re.search(r"95%|prior median|Normal\(|Beta\(|LogNormal", spec.doc), (name, param, spec.doc)
            assert spec.description.startswith(spec.doc + "; " + spec.prior.dist), (name, param)
    assert LAWS["chinchilla"].params["alpha"].description == "exponent; LogNormal(log 0.3, 0.7), 95% range 0.076 to 1.2"
    assert LAWS["power-C"].params["log_loss_at_pivot"].description.endswith(
        "Normal(1, 0.75), 95% range -0.47 to 2.5 (loss in nats: 0.63 to 12)")


def test_the_compute_convention_has_one_name():
    """k in C = k N D is ``flops_per_param_token`` everywhere; ``Law.compute_factor``, its old name, warns."""
    law = get_law("chinchilla")
    assert law.flops_per_param_token == 6.0 and get_law("deepseek-M_opt").flops_per_param_token is None
    with pytest.warns(DeprecationWarning, match="flops_per_param_token"):
        assert law.compute_factor == 6.0
