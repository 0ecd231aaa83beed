"""Sparse and MoE laws: published test vectors (../shared/laws.md sections 6, 7) and Frantar et al.'s
48 T5/C4 runs, fitted with the ``frantar`` law and Hossain et al.'s eq 7."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import shared_data_path

import bayeslaw as bl
from bayeslaw.compare import compare
from bayeslaw.datasets import frantar_t5_runs
from bayeslaw.laws import get_law
from bayeslaw.laws.moe import effective_experts
from bayeslaw.laws.sparse import T5_RAW, T5_TOKENS_PER_STEP

# (law, preset, inputs, expected, relative tolerance)
DLP_POINT = {"N": 18.8e9, "D": 110.2e9, "S": 0.98}  # the example in Hossain et al.'s dlp.py
VECTORS = [
    ("hossain", "hossain2025", DLP_POINT, 2.07978, 5e-6),
    ("hossain", "hossain2025", {**DLP_POINT, "S": 0.0}, 2.15298, 5e-6),  # = dense Chinchilla
    ("chinchilla", "hoffmann2022", {"N": 18.8e9, "D": 110.2e9}, 2.15298, 5e-6),
    ("abnar", "abnar2025", DLP_POINT, 2.16934, 5e-6),
    # Clark S-BASE: secondary-source constants, so only 1e-4 ([S]/[D] provenance)
    ("clark", "clark2022-s-base", {"N": 1e9, "experts": 1.0}, 2.2846, 1e-4),
    ("clark", "clark2022-s-base", {"N": 1e9, "experts": 64.0}, 2.0858, 1e-4),
    ("krajewski", "krajewski2024", {"N": 1e9, "D": 2e10, "granularity": 1.0}, 3.27613, 5e-6),
    ("krajewski", "krajewski2024", {"N": 1e9, "D": 2e10, "granularity": 8.0}, 3.14039, 5e-6),
]


@pytest.mark.parametrize(("name", "preset", "inputs", "expected", "rtol"), VECTORS)
def test_published_test_vectors(name, preset, inputs, expected, rtol):
    assert get_law(name).evaluate_preset(preset, inputs) == pytest.approx(expected, rel=rtol)


def test_clark_effective_experts():
    assert effective_experts(1.0, 1.847, 314.5) == pytest.approx(1.847, rel=1e-12)  # Ê(1) = E_start
    assert effective_experts(64.0, 1.847, 314.5) == pytest.approx(53.77, rel=1e-4)
    assert effective_experts(1e12, 1.847, 314.5) == pytest.approx(314.5, rel=1e-6)  # saturates at E_max


def test_frantar_t5_preset_is_the_exact_conversion_of_the_notebook_fit():
    """Raw N and tokens reproduce the notebook's law on N / 1e6 and steps / 1e5, and round to the paper."""
    law = get_law("frantar")
    p = law.presets["frantar2023-t5"].values
    a, b, c, d, e, f, g = T5_RAW
    s, n, steps = np.array([0.0, 0.5, 0.875]), np.array([1e6, 3e7, 7e8]), np.array([2.5e5, 5e5, 1e6])
    notebook = (a * (1 - s) ** b + c) * (n / 1e6) ** -d + e * (steps / 1e5) ** -f + g
    ours = law.evaluate(p, {"S": s, "N": n, "D": steps * T5_TOKENS_PER_STEP})
    np.testing.assert_allclose(ours, notebook, rtol=1e-12)
    printed = {"a_S": 16.79, "b_S": 0.722, "c_S": 45.02, "b_N": 0.245, "a_D": 6.90e8, "b_D": 0.203, "c": 0.651}
    for key, value in printed.items():
        assert p[key] == pytest.approx(value, rel=2e-3), key


@pytest.mark.parametrize(("sparsity", "factor"), [(0.5, 1.59), (0.75, 2.16), (0.875, 2.63), (1.0, 3.65)])
def test_frantar_t5_equivalent_dense_size(sparsity, factor):
    """laws.md 7a: a sparse model with N non-zeros matches a dense one of factor x N parameters
    (laws.md derives the factors from the rounded constants, hence 0.01)."""
    p = get_law("frantar").presets["frantar2023-t5"].values
    coefficient = p["a_S"] * (1 - sparsity) ** p["b_S"] + p["c_S"]
    assert (coefficient / (p["a_S"] + p["c_S"])) ** (-1 / p["b_N"]) == pytest.approx(factor, abs=0.01)


# --- Frantar et al.'s T5/C4 runs ------------------------------------------------------------------

def huber_objective(predicted, runs: pd.DataFrame, delta: float = 1e-3) -> float:
    """The published fit's objective: mean Huber loss (delta 1e-3) of the log-loss residuals."""
    residual = np.abs(np.log(predicted) - np.log(runs["loss"].to_numpy()))
    return float(np.mean(np.where(residual <= delta, 0.5 * residual**2, delta * (residual - 0.5 * delta))))


def median_prediction(fit, runs: pd.DataFrame) -> np.ndarray:
    """Per run, the posterior median of the predicted loss (medians of single parameters on a curved
    ridge do not make a point on it)."""
    points = {name: xr.DataArray(runs[name].to_numpy(), dims="run") for name in fit.law.inputs}
    return fit.law.function(fit.posterior, points, np).median(("chain", "draw")).values


@pytest.fixture(scope="module")
def t5_runs() -> pd.DataFrame:
    """The 48 runs: N = non-zero non-embedding parameters of T5 at that scale, D = steps x 65,536 tokens."""
    runs = frantar_t5_runs(shared_data_path("frantar_t5_sparsity.csv"))
    assert len(runs) == 48
    return runs


@pytest.fixture(scope="module")
def frantar_t5(t5_runs):
    # target_accept 0.95: at 0.9 about half of the seeds tried give one divergence in 4,000 draws, in the
    # tails of the Student-t noise (nu, sigma) of this 48-run table rather than along the law's ridges
    return bl.fit("frantar", t5_runs, chains=4, draws=1000, seed=2023, target_accept=0.95)


@pytest.fixture(scope="module")
def hossain_t5(t5_runs):
    # eq 7 ties the sparsity exponent to N's, so the T5 data move its S effect into e (1 - S)^gamma, whose
    # e-gamma ridge mixes slowly (R-hat 1.012 at 4 x 2000 for one seed in four): longer chains, small steps
    return bl.fit("hossain", t5_runs, chains=4, draws=3000, tune=1000, seed=2025, target_accept=0.99)


@pytest.mark.slow
def test_frantar_t5_converges(frantar_t5):
    diag = frantar_t5.diagnostics
    assert diag.chains == 4 and diag.draws == 1000
    assert diag.max_rhat <= 1.01 and diag.divergences == 0 and diag.min_ess_bulk >= 400, str(diag)


@pytest.mark.slow
@pytest.mark.parametrize(("param", "published", "within_sd"), [("b_N", 0.245, 2.5), ("b_D", 0.203, 1.0),
                                                              ("c", 0.651, 1.0)])
def test_frantar_t5_medians_match_the_published_fit(frantar_t5, param, published, within_sd):
    """The published constants are one point estimate on the same 48 runs: Huber loss on log loss (delta
    1e-3, close to the L1 fit a heavy-tailed likelihood makes) minimised by BFGS from random starts.
    Had BFGS converged, it would sit within about 1 posterior sd of our medians. It stopped early on a
    flat objective (its b_S is 5 sd away; next test), which moves the correlated b_N by about 2 sd. So:
    b_N within 2.5 posterior sd of the median; b_D and c, which the 4x range of D leaves on a long ridge,
    within 1 sd; all inside the central 99% interval."""
    draws = frantar_t5.posterior[param]
    median, sd = float(draws.median()), float(draws.std())
    assert abs(median - published) <= within_sd * sd, f"{param}: median {median:.4f}, sd {sd:.4f}"
    lo, hi = np.quantile(draws.values, [0.005, 0.995])
    assert lo <= published <= hi


@pytest.mark.slow
def test_frantar_t5_posterior_beats_the_published_constants_on_their_own_objective(frantar_t5, t5_runs):
    """The notebook's T5 constants are not the minimum of the notebook's objective on these runs
    (7.6e-6; its minimum is about 4.9e-6, at b_S 1.35, b_D 0.38, c 0.83). The posterior median
    predictions reach that minimum, and the posterior puts b_S near 1.35, not 0.722."""
    law = get_law("frantar")
    published = huber_objective(law.evaluate(law.presets["frantar2023-t5"].values, t5_runs), t5_runs)
    assert published == pytest.approx(7.604e-6, rel=1e-3)
    assert huber_objective(median_prediction(frantar_t5, t5_runs), t5_runs) < 5.2e-6
    b_s = frantar_t5.posterior["b_S"]
    assert 1.1 <= float(b_s.median()) <= 1.6
    assert float((b_s < 0.722).mean()) < 0.001


@pytest.mark.slow
def test_frantar_t5_residual_scale(frantar_t5, t5_runs):
    """sigma, the noise on log loss, matches the spread of the residuals of the median predictions."""
    residual = np.log(t5_runs["loss"]) - np.log(median_prediction(frantar_t5, t5_runs))
    sigma = float(frantar_t5.posterior["sigma"].median())
    assert 0.004 <= sigma <= 0.012
    assert sigma == pytest.approx(float(np.std(residual)), rel=0.35)


@pytest.mark.slow
def test_hossain_fits_the_t5_runs(hossain_t5, frantar_t5):
    """Eq 7 converges on the same runs; its residual scale is sensible but larger than Frantar's law's
    (both have 7 parameters; eq 7 ties the sparsity exponent to the N exponent)."""
    diag = hossain_t5.diagnostics
    assert diag.max_rhat <= 1.01 and diag.divergences == 0 and diag.min_ess_bulk >= 400, str(diag)
    sigma = float(hossain_t5.posterior["sigma"].median())
    assert 0.008 <= sigma <= 0.03
    assert sigma > 1.3 * float(frantar_t5.posterior["sigma"].median())
    median = hossain_t5.posterior[["alpha", "beta", "gamma"]].median()
    assert 0.1 <= float(median["alpha"]) <= 0.3  # close to Frantar's b_N
    assert float(median["gamma"]) < 0  # the sparse runs' extra loss goes into e (1 - S)^gamma


@pytest.mark.slow
def test_sparse_laws_beat_a_dense_law_that_ignores_sparsity(t5_runs, frantar_t5, hossain_t5):
    """PSIS-LOO on the same 48 runs: both sparse laws far ahead of Chinchilla's L(N, D), which sees only
    the non-zero parameters and tokens (gaps of several standard errors, nearly all stacking weight)."""
    dense = bl.fit("chinchilla", t5_runs[["N", "D", "loss"]], chains=4, draws=1000, seed=2022)
    result = compare({"frantar": frantar_t5, "hossain": hossain_t5, "chinchilla (dense)": dense}, holdout=None)
    table = result.table
    assert table.index[-1] == "chinchilla (dense)", table
    assert table.index[0] == "frantar"
    dense_row = table.loc["chinchilla (dense)"]
    assert dense_row["elpd diff"] > 4 * dense_row["diff se"], table
    assert table.loc[["frantar", "hossain"], "weight"].sum() > 0.95
