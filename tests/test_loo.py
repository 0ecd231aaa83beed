"""PSIS-LOO computed in blocks of runs, for fits whose tables were too large to store the pointwise
log-likelihood: equal to ArviZ's on the whole matrix."""

from __future__ import annotations

import importlib

import numpy as np

from bayeslaw.loo import loo
from bayeslaw.testing import fake_fit

fit_module = importlib.import_module("bayeslaw.fit")  # the module, not bayeslaw.fit the function


def test_blockwise_loo_equals_arviz_on_the_stored_matrix(monkeypatch):
    fit = fake_fit("chinchilla", sizes=5, discrepancy=False)
    whole = loo(fit)
    assert "log_likelihood" in fit.idata.groups()
    del fit.idata.log_likelihood  # as a fit of a table too large to store it
    assert "log_likelihood" not in fit.idata.groups()
    monkeypatch.setattr(fit_module, "BLOCK_VALUES", 7 * 1000)  # 7 runs per block of 1,000 draws: several blocks
    blocks = loo(fit)
    assert len(fit_module.run_blocks(len(fit.runs), 1000)) > 2
    assert np.allclose(np.asarray(blocks.loo_i), np.asarray(whole.loo_i), rtol=0, atol=1e-10)
    assert np.allclose(np.asarray(blocks.pareto_k), np.asarray(whole.pareto_k), rtol=0, atol=1e-10)
    for key in ("elpd_loo", "se", "p_loo"):
        assert abs(blocks[key] - whole[key]) < 1e-8, key
    assert blocks["n_data_points"] == whole["n_data_points"] == len(fit.runs)
    assert blocks["warning"] == whole["warning"]


def test_compare_ranks_fits_that_could_not_store_their_log_likelihood():
    """compare() no longer refuses such fits: their PSIS-LOO is computed in blocks and ranks them as before."""
    import warnings

    from bayeslaw.compare import compare
    from bayeslaw.synthetic import ladder

    table = ladder("chinchilla", sizes=5, seed=0)
    fits = {name: fake_fit(name, discrepancy=False, runs=table) for name in ("chinchilla", "kaplan-ND")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = compare(fits, holdout=None).loo
        for fit in fits.values():
            del fit.idata.log_likelihood
        after = compare(fits, holdout=None).loo
    assert list(after.index) == list(before.index)
    assert np.allclose(after["elpd"], before["elpd"], rtol=0, atol=1e-8)
    assert np.allclose(after["weight"], before["weight"], rtol=0, atol=1e-6)


def test_the_comparison_keeps_arviz_own_table():
    """Comparison.arviz is az.compare's table with ArviZ's column names; loo holds the same numbers renamed."""
    import warnings

    from bayeslaw.compare import compare
    from bayeslaw.synthetic import ladder

    table = ladder("chinchilla", sizes=5, seed=0)
    fits = {name: fake_fit(name, discrepancy=False, runs=table) for name in ("chinchilla", "kaplan-ND")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = compare(fits, holdout=None)
    theirs = result.arviz
    assert {"rank", "elpd_loo", "p_loo", "elpd_diff", "weight", "se", "dse", "warning", "scale"} <= set(theirs.columns)
    assert list(theirs.index) == list(result.loo.index)
    assert np.array_equal(theirs["elpd_loo"].to_numpy(float), result.loo["elpd"].to_numpy(float))
    assert np.array_equal(theirs["rank"].to_numpy(int) + 1, result.loo["rank"].to_numpy(int))
