"""Data-constrained laws (Muennighoff, Quokka eq 14) against published numbers and the datablations runs.

Real data: ../shared/data/datablations_losses.csv, the loss curves of Muennighoff et al. 2023 (C4 and
OSCAR; 2.8B, 4.2B and 8.7B models at a fixed compute budget each, repeated for 1 to 44 epochs).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import shared_data_path

import bayeslaw as bl
from bayeslaw.compare import compare
from bayeslaw.datasets import datablations_runs, parameters_from_label
from bayeslaw.errors import DataError
from bayeslaw.laws import get_law


@pytest.fixture(scope="module")
def c4_runs() -> pd.DataFrame:
    return datablations_runs(shared_data_path("datablations_losses.csv"), "c4")


# Published numbers -----------------------------------------------------------------------------


def test_parameters_from_label():
    assert parameters_from_label("2.8B") == 2.8e9
    assert parameters_from_label("146M") == 146e6
    with pytest.raises(DataError, match="model size label"):
        parameters_from_label("2.8 billion")


def test_muennighoff_readme_allocation():
    """datablations README: for 8.67B parameters on 178B tokens with 25B unique, the grid over N D = const
    finds 227B tokens (9.1 epochs) on 6.8B parameters."""
    law = get_law("muennighoff")
    params = law.presets["muennighoff2023"].values
    scale = np.linspace(1.0001, 3.0, 500)
    scale = np.concatenate([scale, 1.0 / scale])
    tokens, size = 178e9 * scale, 8.67e9 / scale
    loss = law.evaluate(params, {"N": size, "D": tokens, "U": np.minimum(25e9, tokens)})
    best = int(np.argmin(loss))
    assert tokens[best] == pytest.approx(227e9, rel=5e-3)
    assert tokens[best] / 25e9 == pytest.approx(9.1, abs=0.05)
    assert size[best] == pytest.approx(6.8e9, rel=5e-3)


def test_muennighoff_repetition_limits():
    """D'/U_D tends to 1 + R_D* with endless repetition; up to one epoch (U >= D) the law is Chinchilla's."""
    law = get_law("muennighoff")
    p = dict(law.presets["muennighoff2023"].values)
    n, unique = 1e6, 1e9  # N far below N_opt(U): no excess parameters
    endless = law.evaluate(p, {"N": n, "D": 1e6 * unique, "U": unique})
    saturated = p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * ((1 + p["R_D_star"]) * unique) ** -p["beta"]
    assert endless == pytest.approx(saturated, rel=1e-12)
    chinchilla = get_law("chinchilla")
    for u in (1e10, 1e12):  # one epoch, and a pool larger than the tokens seen
        got = law.evaluate(p, {"N": n, "D": 1e10, "U": u})
        assert got == pytest.approx(chinchilla.evaluate(p, {"N": n, "D": 1e10}), rel=1e-12)


@pytest.mark.parametrize(
    ("n", "unique", "epochs"),
    [(10e9, 1e12, 1098), (400e6, 10e6, 70), (1e9, 1e9, 260), (400e6, 1e12, 6357)],
)
def test_quokka_eq15_reproduces_table3_max_epochs(n, unique, epochs):
    """Ni et al. 2025 Table 3: epochs that minimise the loss at fixed N and U. Eq 15 prints rounded
    coefficients and Table 3 used unrounded ones (laws.md section 5): 7% tolerance. E does not move it."""
    law = get_law("quokka-dc")
    grid = np.exp(np.linspace(0.0, np.log(1e5), 100_001))
    for params in (law.presets["ni2025"].values, {**law.presets["ni2025"].values, "E": 0.0}):
        loss = law.evaluate(params, {"N": n, "D": unique * grid, "U": unique})
        assert grid[np.argmin(loss)] == pytest.approx(epochs, rel=0.07)


def test_quokka_closed_form_optimum_and_one_epoch():
    """For e >> 1 the best epoch count is (p_e / gamma)^(1/gamma) e_p = 26.8 e_p (to 0.3% at e near 1000,
    where e - 1 is not quite e); at e <= 1 there is no penalty."""
    law = get_law("quokka-dc")
    p = law.presets["ni2025"].values
    factor = law.published_with_derived(p)["e_opt_over_e_p"]
    assert factor == pytest.approx(26.8, abs=0.05)
    n, unique = 1e10, 1e12
    e_p = p["c_p"] * unique ** p["m_p"] / n ** p["k_p"]
    grid = np.exp(np.linspace(np.log(100.0), np.log(1e4), 200_001))
    best = grid[np.argmin(law.evaluate(p, {"N": n, "D": unique * grid, "U": unique}))]
    assert best == pytest.approx(factor * e_p, rel=3e-3)
    one_epoch = p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * unique ** -p["beta"]
    for u in (unique, 10 * unique):
        assert law.evaluate(p, {"N": n, "D": unique, "U": u}) == pytest.approx(one_epoch, rel=1e-12)


def test_quokka_penalty_gradient_is_finite_at_one_epoch():
    """0^gamma with gamma < 1 has an infinite derivative: the law must keep PyTensor gradients finite."""
    import pytensor
    import pytensor.tensor as pt

    law = get_law("quokka-dc")
    p = law.presets["ni2025"].values
    gamma = pt.dscalar("gamma")
    loss = law.function({**p, "gamma": gamma}, {"N": np.full(3, 1e9), "D": np.full(3, 1e10),
                                                "U": np.array([1e10, 2e10, 1e9])}, pt)
    grad = pytensor.function([gamma], pytensor.grad(loss.sum(), gamma))(0.4)
    assert np.isfinite(grad) and grad != 0.0


# Real data: the datablations runs -------------------------------------------------------------


def test_datablations_final_runs(c4_runs):
    oscar = datablations_runs(shared_data_path("datablations_losses.csv"), "oscar")
    for runs in (c4_runs, oscar):
        assert len(runs) == 24
        assert sorted(set(runs["N"])) == [2.8e9, 4.2e9, 8.7e9]
        assert sorted(set(runs["epochs"])) == [1, 2, 3, 4, 5, 7, 14, 44]
        np.testing.assert_allclose(runs["D"] / runs["U"], runs["epochs"], rtol=0.01)  # D = epochs x U


def test_loss_rises_again_at_44_epochs(c4_runs):
    """In the data: every 44-epoch C4 run ends 0.3 nats or more above the lowest loss it reached;
    no run with 14 epochs or fewer ends more than 0.03 above its lowest."""
    rise = c4_runs["loss"] - c4_runs["min_loss"]
    at_44 = c4_runs["epochs"] == 44
    assert (rise[at_44] >= 0.3).all(), rise[at_44].tolist()
    assert (rise[~at_44] < 0.03).all()


# Exponents: Chinchilla-scale fits (Hoffmann 0.34/0.28, Besiroglu 0.35/0.37, Muennighoff 0.35); three
# compute budgets along one N/D line cannot separate the terms alone. Laplace likelihood on log loss:
# the Bayesian counterpart of the Huber loss the published fits minimise.
C4_PRIORS = {"alpha": "LogNormal(mu=-1.05, sigma=0.2)", "beta": "LogNormal(mu=-1.05, sigma=0.2)"}


@pytest.fixture(scope="module")
def c4_fit(c4_runs):
    return bl.fit("muennighoff", c4_runs[["N", "D", "U", "loss"]], priors=C4_PRIORS, likelihood="laplace",
                  chains=4, draws=1000, tune=1000, seed=1)


@pytest.mark.slow
def test_muennighoff_on_c4_runs(c4_fit, c4_runs):
    """Base constants free: R_D* comes out near the published 15.4 (94% HDI overlaps [5, 40]); the
    Laplace residual scale is 1-2% of the loss; the law cannot follow the 44-epoch overfitting."""
    diag = c4_fit.diagnostics
    assert diag.max_rhat <= 1.01 and diag.divergences == 0 and diag.min_ess_bulk >= 400, str(diag)
    lo, hi = az.hdi(c4_fit.posterior["R_D_star"], hdi_prob=0.94)["R_D_star"].values
    assert lo < 40 and hi > 5, (lo, hi)
    assert 1.0 < lo and hi < 40  # informed by the data: well inside the prior's 1.4 to 71
    assert 0.009 < float(c4_fit.posterior["sigma"].median()) < 0.022
    law = c4_fit.law
    points = {x: xr.DataArray(c4_runs[x].to_numpy(), dims="run") for x in law.inputs}
    predicted = law.function(c4_fit.posterior, points, np).median(("chain", "draw")).values
    residual = np.log(c4_runs["loss"].to_numpy() / predicted)
    at_44 = (c4_runs["epochs"] == 44).to_numpy()
    assert np.median(np.abs(residual[~at_44])) < 0.01
    worst = int(np.argmax(np.abs(residual)))
    assert at_44[worst] and c4_runs["N"].iloc[worst] == 8.7e9 and residual[worst] > 0.1


# Quokka's e_p = c_p U^m_p / N^k_p: with one compute budget per model size, U = D / e within a size and
# D grows with N, so these runs see m_p only through the stretch gamma (1 + m_p) and k_p through m_p - k_p.
# m_p and k_p take Ni et al.'s eq 15 values as priors (sd 0.1); the base law gets Muennighoff's priors.
QUOKKA_C4_PRIORS = {**C4_PRIORS, "m_p": "Normal(mu=0.39, sigma=0.1)", "k_p": "Normal(mu=0.55, sigma=0.1)"}


def rms_log_residual(fit, runs: pd.DataFrame) -> float:
    points = {x: xr.DataArray(runs[x].to_numpy(), dims="run") for x in fit.law.inputs}
    predicted = fit.law.function(fit.posterior, points, np).median(("chain", "draw")).values
    return float(np.sqrt(np.mean(np.log(runs["loss"].to_numpy() / predicted) ** 2)))


@pytest.mark.slow
@pytest.mark.early  # a minute or more: started first (tests/conftest.py)
def test_quokka_form_beats_muennighoff_on_the_c4_runs(c4_fit, c4_runs):
    """Effective data that rises then falls follows the loss back up at 44 epochs; Muennighoff's monotone
    D' cannot. PSIS-LOO ranks quokka-dc first by several standard errors, with all the stacking weight,
    and its median fit leaves rms log residuals of about 0.005 against Muennighoff's 0.027 (least squares:
    0.004 and 0.018). The overfitting constants (p_e, gamma, e_p) mix slowly on 24 runs (R-hat up to about
    1.04 at 4 x 1000 draws; 400-700 leapfrog steps a draw, 140 s at these settings); the ranking does not depend
    on them. Shorter chains were measured and kept the ranking (elpd gap 2.8 standard errors, sampler seeds 1-3)
    but not R-hat: 2 x 250 draws reached 1.05-1.22."""
    quokka = bl.fit("quokka-dc", c4_runs[["N", "D", "U", "loss"]], priors=QUOKKA_C4_PRIORS, likelihood="laplace",
                    chains=2, draws=500, tune=1000, seed=1, retry=False)
    assert quokka.diagnostics.max_rhat <= 1.06 and quokka.diagnostics.divergences == 0, str(quokka.diagnostics)
    with pytest.warns(UserWarning, match="influential"):
        result = compare({"muennighoff": c4_fit, "quokka-dc": quokka}, holdout=None)  # PSIS-LOO alone
    last = len(c4_runs) - 1  # the 8.7B run at 44 epochs, 0.36 nats above its lowest loss
    assert c4_runs.loc[last, "epochs"] == 44 and last in result.influential["muennighoff"]
    table = result.table
    assert table.index[0] == "quokka-dc", table
    gap = table.loc["muennighoff"]
    assert gap["elpd diff"] > 2 * gap["diff se"], table
    assert table.loc["quokka-dc", "weight"] > 0.95
    quokka_rms, muennighoff_rms = rms_log_residual(quokka, c4_runs), rms_log_residual(c4_fit, c4_runs)
    assert quokka_rms < 0.008 and muennighoff_rms > 0.015 and muennighoff_rms > 3 * quokka_rms
