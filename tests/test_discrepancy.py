"""Model discrepancy: the GP's conditional grows beyond the runs, vanishes for an exact law, and flows
through fit, save/load, predict, plan and decide."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL

import bayeslaw as bl
from bayeslaw import discrepancy
from bayeslaw.demo import DEFAULT_BUDGETS, chinchilla_sweep
from bayeslaw.discrepancy import CAP, Conditional, Discrepancy, estimate, robust_weights
from bayeslaw.errors import BayeslawError
from bayeslaw.laws import LAWS
from bayeslaw.plan import plan
from bayeslaw.posterior import as_posterior, from_constants
from bayeslaw.predict import predict
from bayeslaw.risk import decide


def misfit_runs(amplitude: float = 0.03, noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """Runs from the Chinchilla law times a smooth misfit exp(amplitude sin(log N)) that the law cannot absorb."""
    frame = chinchilla_sweep("besiroglu2024", noise=noise, seed=seed)
    frame["loss"] *= np.exp(amplitude * np.sin(2.0 * np.log(frame["N"].to_numpy())))
    return frame


@pytest.fixture(scope="module")
def misfit_fit():
    return bl.fit("chinchilla", misfit_runs(), seed=1, **SMALL)


def test_conditional_variance_grows_beyond_the_runs_to_the_prior():
    x = np.linspace(1.0, 10.0, 30)
    spec = Discrepancy("gp", ("C",), (True,), (0.0,), (1.0,), 0.02, (0.5,), 0.001)
    spec = dataclasses.replace(spec, centre=(float(np.log(x).mean()),), halfwidth=(float(np.ptp(np.log(x)) / 2),))
    residuals = np.zeros((30, 4))
    cond = Conditional(spec, {"C": x}, residuals)
    beyond = np.array([10.0, 20.0, 50.0, 200.0, 1e4])
    _, var = cond.evaluate({"C": beyond[:, None]})
    sd = np.sqrt(var[:, 0])
    assert sd[0] < 0.002  # pinned at the last run
    assert np.all(np.diff(sd) > 0)  # widens with the distance beyond the runs
    assert sd[-1] == pytest.approx(0.02, rel=1e-3)  # back to the prior amplitude far out


def test_estimate_finds_structure_and_none_in_pure_noise():
    rng = np.random.default_rng(3)
    n = np.exp(rng.uniform(18, 24, 150))
    noise = 0.004 * rng.standard_normal(150)
    smooth = 0.02 * np.sin(np.log(n))
    none = estimate("gp", {"N": n}, noise)  # measured: amplitude median 0.0022, trend median 0.0027
    assert none.amplitude(0.5) < 0.003 and none.trend_slope(0.5) < 0.004  # prior medians 0.0116 both
    found = estimate("gp", {"N": n}, smooth + noise)
    assert 0.01 < found.eta < 0.06 and found.nugget == pytest.approx(0.004, rel=0.3)


def test_fit_stores_the_discrepancy_and_load_restores_it(misfit_fit, tmp_path):
    spec = misfit_fit.discrepancy
    assert spec is not None and spec.kind == "gp" and spec.inputs == ("N", "D") and spec.eta > 0.005
    back = bl.load(misfit_fit.save(tmp_path / "fit.nc"))
    assert back.discrepancy == spec
    assert "GP discrepancy over log N, log D" in spec.describe()


def test_no_discrepancy_and_bad_names():
    frame = chinchilla_sweep(noise=0.01, seed=2)
    plain = bl.fit("chinchilla", frame, seed=1, discrepancy=None, **SMALL)
    assert plain.discrepancy is None and "discrepancy" not in predict(plain, N=1e9, D=2e10).discrepancy_summary
    with pytest.raises(BayeslawError, match="unknown discrepancy 'hsgp'; allowed: gp or none"):
        bl.fit("chinchilla", frame, discrepancy="hsgp", **SMALL)


def test_predictive_widens_where_the_runs_do_not_reach(misfit_fit):
    """Inside the runs a new run's interval is the true run noise (0.005 here): the discrepancy takes the smooth
    misfit that the plain law can only call noise. Far out, the discrepancy's amplitude is added.
    (Changed with the nugget noise: the interval inside used to be the plain law's, inflated by the misfit.)"""
    post = as_posterior(misfit_fit)
    plain = dataclasses.replace(post, discrepancy=None)
    points = {"N": [3e8, 1e11], "D": [1e10, 2e12]}  # inside; about 3 decades of compute beyond
    width = {}
    for label, source in (("gp", post), ("plain", plain)):
        table = predict(source, **points).summary((0.9,))
        width[label] = ((table["90% hi"] - table["90% lo"]) / table["median"]).to_numpy()
    noise_width = 2 * 1.645 * 0.005  # the runs' true noise
    assert width["gp"][0] == pytest.approx(noise_width, rel=0.35)
    assert width["plain"][0] > 2 * noise_width  # the plain law's noise absorbs the misfit
    spec = misfit_fit.discrepancy
    assert width["gp"][1] > 2 * 1.645 * spec.amplitude(0.05)  # far out: at least the discrepancy's lower amplitude
    assert width["gp"][1] > 3 * width["gp"][0]
    made = predict(post, **points)
    assert made.discrepancy_summary.startswith("predictive includes the fit's GP discrepancy")
    with pytest.warns(DeprecationWarning, match="discrepancy_summary"):  # the old name, kept for one release
        assert made.discrepancy == made.discrepancy_summary


def test_plan_and_decide_use_the_discrepancy(misfit_fit):
    post = as_posterior(misfit_fit)
    plain = dataclasses.replace(post, discrepancy=None)
    made, bare = plan(post, [1e22, 1e25]), plan(plain, [1e22, 1e25])
    assert any("model discrepancy" in note for note in made.notes)
    np.testing.assert_allclose(made.draws["N_opt"], bare.draws["N_opt"])  # the law's optimum per draw
    delta = np.log(made.draws["loss"] / bare.draws["loss"]).std(("chain", "draw")).values
    assert np.all(delta > 0.2 * misfit_fit.discrepancy.eta) and delta[1] > delta[0]  # grows with the budget
    spread = {k: p.draws["loss"].std(("chain", "draw")).values for k, p in (("gp", made), ("plain", bare))}
    assert spread["gp"][1] > 1.2 * spread["plain"][1]  # four decades beyond the runs: wider
    # decide carries the discrepancy and says so: the loss interval four decades out is at least the discrepancy's
    # lower amplitude wide (the plain law's run noise is wider still here: it takes the misfit for noise)
    assert made.notes[-1].startswith("uncertainty: law posterior: 600 draws") and "run noise: not in" in made.notes[-1]
    assert made.uncertainty["model discrepancy"] == misfit_fit.discrepancy.describe()
    assert bare.uncertainty["model discrepancy"] == "none" and "run noise" not in bare.uncertainty
    chosen, point = decide(post, [1e23], "cvar:0.9"), decide(plain, [1e23], "cvar:0.9")
    row = chosen.table.iloc[0]
    relative = (row["chosen loss 95%"] - row["chosen loss 5%"]) / row["chosen loss median"]
    assert relative > 2 * 1.645 * misfit_fit.discrepancy.amplitude(0.05) * 0.8
    assert chosen.uncertainty["model discrepancy"].startswith("GP discrepancy over log N, log D: amplitude")
    assert chosen.uncertainty["run noise"].startswith("normal, the discrepancy's nugget")
    assert point.uncertainty["model discrepancy"] == "none"
    assert point.uncertainty["run noise"].startswith("student_t likelihood of the fit")


def test_exact_law_intervals_are_not_inflated():
    """Must-show: synthetic runs generated exactly from the law: the default's 90% intervals at the held-out
    runs are at most 1.1x the plain law's width, and coverage stays near nominal (measured 0.94-0.98x)."""
    from bayeslaw.calibrate import calibrate

    widths, coverage = [], []
    for seed in (0, 1):
        frame = chinchilla_sweep("besiroglu2024", budgets=(*DEFAULT_BUDGETS, 3e21, 1e22), noise=0.01, seed=seed)
        table = calibrate(frame, "chinchilla", ["C>5e20", "C>2e21"], seed=seed, chains=2, draws=500)
        for rule in table.index.get_level_values("holdout").unique():
            plain, gp = table.loc[(rule, "plain")], table.loc[(rule, "gp")]
            widths.append(gp["width_90"] / plain["width_90"])
            coverage.append((gp["coverage_50"], gp["coverage_90"]))
    print(f"\nexact law: width ratio gp/plain {np.round(widths, 3)}, coverage (50%, 90%) {coverage}")
    assert max(widths) <= 1.1
    cov50, cov90 = np.mean(coverage, axis=0)
    assert 0.3 <= cov50 <= 0.7 and 0.75 <= cov90 <= 1.0


def test_every_input_count_is_supported():
    for name in ("power-C", "chinchilla", "muennighoff"):
        law = LAWS[name]
        rng = np.random.default_rng(0)
        inputs = {x: np.exp(rng.uniform(1, 5, 40)) for x in law.inputs}
        spec = estimate("gp", inputs, 0.01 * np.sin(np.log(inputs[law.inputs[0]])))
        cond = Conditional(spec, inputs, np.zeros((40, 3)))
        mean, var = cond.evaluate({x: v[:5, None] * 100 for x, v in inputs.items()})
        assert mean.shape == (5, 3) and var.shape == (5, 3) and np.all(var >= 0)


def test_an_outlier_is_capped_and_does_not_take_over():
    """A smooth misfit of 0.01 plus one run 0.3 off: the outlier is capped at CAP (the amplitude prior's 90%
    quantile) and counted; the amplitude stays that of the clean runs and the nugget within 2x of theirs (the
    capped run still sits 0.038 off). Uncapped, the outlier inflates the nugget about 8.6-fold and the smooth
    misfit's median amplitude falls to about 0.62 of the clean runs' (lost in the noise)."""
    rng = np.random.default_rng(5)
    n = np.exp(rng.uniform(18, 24, 120))
    residuals = 0.01 * np.sin(np.log(n)) + 0.003 * rng.standard_normal(120)
    clean = estimate("gp", {"N": n}, residuals)
    residuals[7] += 0.3
    spec = estimate("gp", {"N": n}, residuals)
    assert spec.cap == pytest.approx(np.log(10) / 60) == CAP and spec.capped == 1
    assert "1 run(s) with residuals beyond +-0.038 capped as outliers" in spec.describe()
    assert spec.amplitude(0.5) == pytest.approx(clean.amplitude(0.5), rel=0.5) and spec.amplitude(0.5) < 0.03
    try:
        discrepancy.ROBUST = "none"
        loose = estimate("gp", {"N": n}, residuals)
    finally:
        discrepancy.ROBUST = "cap"
    assert clean.nugget == pytest.approx(0.003, rel=0.2) and spec.nugget < 2 * clean.nugget
    assert loose.nugget > 5 * clean.nugget and loose.amplitude(0.5) < 0.75 * clean.amplitude(0.5)


def test_hyperparameter_draws_are_shared_by_the_law_draws_in_proportion():
    rng = np.random.default_rng(2)
    n = np.exp(rng.uniform(18, 24, 80))
    residuals = 0.01 * np.sin(np.log(n)) + 0.003 * rng.standard_normal(80)
    spec = estimate("gp", {"N": n}, residuals, seed=3)
    weights = np.array([w for w, *_ in spec.draws])
    assert 4 <= len(spec.draws) <= discrepancy.HYPER_DRAWS and weights.sum() == pytest.approx(1.0)
    assert spec.amplitude(0.05) < spec.amplitude(0.5) < spec.amplitude(0.95) and spec.ess > 10
    assert estimate("gp", {"N": n}, residuals, seed=3) == spec  # seeded
    cond = Conditional(spec, {"N": n}, np.zeros((80, 1000)))
    counts = np.bincount([next(k for k, (_, _, _, s, _) in enumerate(spec.draws) if s == x) for x in cond.nuggets],
                         minlength=len(spec.draws))
    np.testing.assert_allclose(counts / 1000, weights, atol=1.5e-3)  # each set's share of the draws, exactly


def test_robust_weights_follow_the_scale_mixtures():
    r = np.array([0.0, 0.01, 0.03, 0.3])
    t = robust_weights(r, "student_t", sigma=0.01, nu=3.0)
    np.testing.assert_allclose(t, [1.0, 1.0, 4 / 12, 4 / 903])  # min(1, (nu + 1) / (nu + (r / sigma)^2))
    np.testing.assert_allclose(robust_weights(r, "laplace", sigma=0.01), [1.0, 1.0, 1 / 3, 1 / 30])
    np.testing.assert_array_equal(robust_weights(r, "normal"), np.ones(4))
    with pytest.raises(BayeslawError, match="need nu > 0"):
        robust_weights(r, "student_t", sigma=0.01)
    with pytest.raises(BayeslawError, match="need its scale sigma > 0"):
        robust_weights(r, "laplace")


def test_uncertainty_sources_are_named(misfit_fit):
    post = as_posterior(misfit_fit)
    sources = predict(post, N=1e11, D=2e12).uncertainty
    assert list(sources) == ["law posterior", "run noise", "model discrepancy"]
    assert sources["law posterior"] == "600 draws (fit of chinchilla with a GP discrepancy)"
    published = from_constants("chinchilla", "besiroglu2024")
    assert predict(published, N=1e11, D=2e12).uncertainty == {
        "law posterior": "none: one draw (chinchilla at besiroglu2024)", "run noise": "none (no noise model)",
        "model discrepancy": "none"}
    assert plan(published, 1e24).uncertainty == {"law posterior": "none: one draw (chinchilla at besiroglu2024)",
                                                  "model discrepancy": "none"}
    plain = as_posterior(bl.fit("chinchilla", misfit_runs(), seed=1, discrepancy=None, chains=1, draws=50, tune=50))
    assert plain.uncertainty()["run noise"].startswith("student_t likelihood of the fit (sigma ")


def test_bad_discrepancy_settings_are_refused():
    with pytest.raises(BayeslawError, match="unknown discrepancy noise 'poisson'; allowed: nugget, law"):
        Discrepancy("gp", ("N",), (True,), (0.0,), (1.0,), 0.01, (1.0,), 0.01, noise="poisson")
    with pytest.raises(BayeslawError, match=r"'compute' \(log C, log D/N\) need inputs N and D, got C"):
        Discrepancy("gp", ("C",), (True,), (0.0,), (1.0,), 0.01, (1.0,), 0.01, transform="compute")
    with pytest.raises(BayeslawError, match="one residual per run"):
        estimate("gp", {"N": np.arange(1.0, 11.0)}, np.zeros(9))
    with pytest.raises(BayeslawError, match="holds weights for 2 runs, given 3 runs"):
        spec = Discrepancy("gp", ("N",), (True,), (0.0,), (1.0,), 0.01, (1.0,), 0.01, weights=(1.0, 0.5))
        Conditional(spec, {"N": np.array([1.0, 2.0, 3.0])}, np.zeros((3, 2)))


def test_compute_coordinates_put_an_isoflop_line_at_one_distance_in_compute():
    """The measured alternative (log C, log D/N): every allocation of one budget has the same C coordinate."""
    try:
        discrepancy.COORDINATES = "compute"
        rng = np.random.default_rng(1)
        n, d = np.exp(rng.uniform(18, 23, 60)), np.exp(rng.uniform(21, 26, 60))
        spec = estimate("gp", {"N": n, "D": d}, 0.01 * np.sin(np.log(n)), seed=1)
    finally:
        discrepancy.COORDINATES = "inputs"
    assert spec.coordinates == ("C", "D/N") and spec.describe().startswith("GP discrepancy over log C, log D/N")
    grid = np.logspace(9, 12, 5)
    z = spec.standardise({"N": grid, "D": 1e24 / (6 * grid)})
    assert np.ptp(z[:, 0]) < 1e-12 and np.all(np.diff(z[:, 1]) < 0)
    assert Discrepancy.from_json(spec.to_json()) == spec


@pytest.mark.parametrize("trend", [False, True])
@pytest.mark.parametrize("kernel", discrepancy.KERNELS)
def test_the_hyperparameter_gradient_matches_finite_differences(kernel, trend):
    """-log p(u | r) and its analytic gradient (the mode search's L-BFGS relies on it), for each kernel, with
    and without the linear trend (u = log eta, log ell_1, log ell_2, log s[, log tau])."""
    rng = np.random.default_rng(0)
    z, r = rng.uniform(-1, 1, (30, 2)), 0.01 * rng.standard_normal(30)
    basis = (z @ np.array([0.4, 0.6]))[:, None] if trend else None
    f = discrepancy._HyperPosterior(z, r, np.ones(30), kernel, basis)
    u = np.array([np.log(0.01), -0.3, 0.4, np.log(0.005), *([np.log(0.02)] * trend)])
    _, grad = f(u)
    step = 1e-6
    numeric = [(f(u + step * e, gradient=False) - f(u - step * e, gradient=False)) / (2 * step)
               for e in np.eye(len(u))]
    assert len(grad) == 4 + trend and grad == pytest.approx(numeric, rel=1e-5, abs=1e-5)


def test_the_kernel_is_stored_with_the_fit():
    rng = np.random.default_rng(1)
    n = np.exp(rng.uniform(18, 24, 40))
    try:
        discrepancy.KERNEL = "matern52"
        spec = estimate("gp", {"N": n}, 0.01 * np.sin(np.log(n)) + 0.003 * rng.standard_normal(40))
    finally:
        discrepancy.KERNEL = "se"
    again = discrepancy.Discrepancy.from_json(spec.to_json())
    assert again == spec and again.covariance == "matern52"
    z = spec.standardise({"N": n[:3]})
    assert spec.kernel(z, z)[0, 1] != dataclasses.replace(spec, covariance="se").kernel(z, z)[0, 1]


def test_the_trend_runs_along_log_compute_and_grows_beyond_the_runs():
    """Laws in N and D: the trend coordinate is log N D from the fitted box's centre, so the trend's prior variance
    and its covariance with the runs are the same at every allocation of an isoFLOP line (no direction of its own
    for a risk-averse plan), and its conditional spread grows with the budget beyond the runs."""
    rng = np.random.default_rng(2)
    n = np.exp(rng.uniform(18, 22, 80))
    d = n * 20 * np.exp(rng.uniform(-1.5, 1.5, 80))
    log_c = np.log(6 * n * d)
    trend = 0.004 * (log_c - log_c.mean()) + 0.003 * rng.standard_normal(80)
    spec = estimate("gp", {"N": n, "D": d}, trend, seed=0)
    assert spec.trend_axis == "compute" and "linear trend along log N D" in spec.describe()
    # the drift, 0.004 per e-fold of compute, is 0.004 (w_N + w_D) per unit of t: 0.019 (measured median 0.022)
    truth = 0.004 * sum(spec.halfwidth)
    assert truth / 2 < spec.trend_slope(0.5) < 2 * truth and spec.trend_slope(0.05) < truth < spec.trend_slope(0.95)
    assert spec.amplitude(0.5) < 0.005  # a trend, not a smooth misfit
    grid = np.logspace(10, 12, 7)
    z = spec.standardise({"N": grid, "D": 1e24 / (6 * grid)})
    t = spec.trend_basis(z)
    assert t.shape == (7, 1) and np.ptp(t) < 1e-12 and t[0, 0] > 1
    runs = spec.standardise({"N": n, "D": d})
    no_smooth = spec.kernel(z, runs, eta=1e-12, ells=spec.ells, trend=0.01)
    assert np.ptp(no_smooth, axis=0).max() < 1e-12
    assert np.ptp(spec.prior_variance(z, 1e-12, 0.01)) < 1e-12
    cond = Conditional(spec, {"N": n, "D": d}, np.tile(trend[:, None], (1, 4)))
    budgets = np.array([1e20, 1e22, 1e24])
    _, var = cond.evaluate({"N": np.sqrt(budgets / 120)[:, None], "D": np.sqrt(budgets * 20 / 6)[:, None]})
    assert np.all(np.diff(var[:, 0]) > 0)
    assert Discrepancy.from_json(spec.to_json()) == spec


def test_other_laws_trend_along_each_input_and_fits_saved_before_load_without_one():
    rng = np.random.default_rng(4)
    n = np.exp(rng.uniform(18, 24, 50))
    spec = estimate("gp", {"N": n}, 0.01 * np.sin(np.log(n)) + 0.003 * rng.standard_normal(50))
    assert spec.trend_axis == "inputs" and spec.trend_basis(np.ones((3, 1))).shape == (3, 1)
    try:
        discrepancy.TREND = "none"
        plain = estimate("gp", {"N": n}, 0.01 * np.sin(np.log(n)))
    finally:
        discrepancy.TREND = "scale"
    assert plain.trend_axis == "none" and plain.trend == 0 and {h[4] for h in plain.hyperparameters()} == {0.0}
    # a fit saved before the trend: four numbers per hyperparameter draw, no trend fields
    import json
    raw = json.loads(spec.to_json())
    raw["draws"] = [h[:4] for h in raw["draws"]]
    del raw["trend"], raw["trend_axis"]
    old = Discrepancy.from_json(json.dumps(raw))
    old.validate(("N",))
    assert old.trend_axis == "none" and old.trend_basis(np.ones((3, 1))).shape == (3, 0)
    z = old.standardise({"N": n[:4]})
    expected = np.exp(-0.5 * ((z - z.T) / old.ells[0]) ** 2) * old.eta ** 2
    assert old.kernel(z, z) == pytest.approx(expected)
