"""The conditioned discrepancy evaluated from what is cached per posterior gives the numbers of evaluating it one
hyperparameter set at a time, as bayeslaw did before (commit 1d5be54): bit for bit at points the draws share (the
searches of ``decide`` and ``min_budget`` run on those), to 1e-10 at one point per draw (``plan``)."""

from __future__ import annotations

import numpy as np
import pytest

from bayeslaw import discrepancy
from bayeslaw.discrepancy import Conditional
from bayeslaw.plan import plan
from bayeslaw.posterior import as_posterior
from bayeslaw.predict import predict
from bayeslaw.risk import decide, min_budget
from bayeslaw.testing import fake_fit

CHUNK = 20_000  # points per block of the reference evaluation


def reference_evaluate(cond: Conditional, values) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of the conditional as ``Conditional.evaluate`` computed them before the caches (commit
    1d5be54, verbatim but for ``cond`` in place of ``self``): each hyperparameter set on its own with
    ``Discrepancy.kernel`` and ``prior_variance``, in blocks of 20,000 points. Kept as the definition; the
    benchmark (benchmarks/bench_plan.py) times it as "before"."""
    from threadpoolctl import threadpool_limits

    z = cond.spec.standardise(values)
    shape = z.shape[:-1]
    per_draw = bool(shape) and shape[-1] != 1
    out_shape = (*shape[:-1], cond.n_draws)
    mean, var = np.empty(out_shape), np.empty(out_shape)
    with threadpool_limits(1):
        for draws, eta, ells, trend, alpha, whiten in cond.parts:
            points = z[..., draws, :] if per_draw else z
            flat = points.reshape(-1, z.shape[-1])
            m, v = np.empty(len(flat) if per_draw else (len(flat), len(draws))), np.empty(len(flat))
            column = np.tile(np.arange(len(draws)), len(flat) // len(draws)) if per_draw else None
            for start in range(0, len(flat), CHUNK):
                block = slice(start, start + CHUNK)
                k = cond.spec.kernel(flat[block], cond.z, eta, ells, trend)  # (q, n)
                m[block] = np.einsum("qn,nq->q", k, alpha[:, column[block]]) if per_draw else k @ alpha
                v[block] = cond.spec.prior_variance(flat[block], eta, trend) - np.sum((whiten @ k.T) ** 2, axis=0)
            if per_draw:
                mean[..., draws] = m.reshape(points.shape[:-1])
                var[..., draws] = v.reshape(points.shape[:-1])
            else:
                mean[..., draws] = m.reshape(*shape[:-1], len(draws))
                var[..., draws] = v.reshape(shape)
    return mean, np.maximum(var, 0.0)


def reference_sample(cond: Conditional, values, xi: np.ndarray) -> np.ndarray:
    """A smooth draw of delta from the reference evaluation: mean + sqrt(var) xi."""
    mean, var = reference_evaluate(cond, values)
    return mean + np.sqrt(var) * xi


@pytest.fixture
def reference(monkeypatch):
    """Run the library with the reference evaluation in place of the cached one."""
    def use():
        monkeypatch.setattr(Conditional, "evaluate", reference_evaluate)
        monkeypatch.setattr(Conditional, "sample", reference_sample)
    return use


@pytest.fixture(scope="module")
def chinchilla_post():
    """A fake fit on a 4-size ladder with its GP discrepancy (32 hyperparameter sets sharing 1,000 draws, 31 or 32
    each, so two groups of stacked products; a trend): 2 x 500 draws."""
    post = as_posterior(fake_fit("chinchilla", draws=500, seed=2))
    assert len(post.conditional.sets.groups) > 1 and post.discrepancy.trend > 0
    return post


def assert_same_draws(new, old, rtol=1e-10):
    for name in old.data_vars:
        np.testing.assert_allclose(new[name].values, old[name].values, rtol=rtol, atol=0, err_msg=name)


def test_shared_points_are_bit_for_bit_the_reference(chinchilla_post):
    cond = chinchilla_post.conditional
    grid = {"N": np.logspace(6, 13, 300)[:, None], "D": np.logspace(8, 14, 300)[:, None]}  # far beyond the runs too
    xi = np.random.default_rng(0).standard_normal(cond.n_draws)
    for values in (grid, {"N": 3e9, "D": 6e10}, {"N": np.full((2, 3, 1), 1e10), "D": np.full((2, 3, 1), 1e11)}):
        for new, old in zip(cond.evaluate(values), reference_evaluate(cond, values), strict=True):
            assert new.shape == old.shape
            np.testing.assert_array_equal(new, old)
        np.testing.assert_array_equal(cond.sample(values, xi), reference_sample(cond, values, xi))


def test_one_point_per_draw_matches_the_reference(chinchilla_post):
    cond = chinchilla_post.conditional
    rng = np.random.default_rng(0)
    values = {"N": 10 ** rng.uniform(6, 13, (7, cond.n_draws)), "D": 10 ** rng.uniform(8, 14, (7, cond.n_draws))}
    mean, var = cond.evaluate(values)
    ref_mean, ref_var = reference_evaluate(cond, values)
    scale = float(np.sqrt(ref_var.max()))  # the discrepancy's own scale on log loss
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(np.sqrt(var), np.sqrt(ref_var), rtol=1e-10, atol=1e-12 * scale)
    xi = rng.standard_normal(cond.n_draws)
    np.testing.assert_allclose(cond.sample(values, xi), reference_sample(cond, values, xi), rtol=1e-10,
                               atol=1e-12 * scale)
    with pytest.raises(discrepancy.BayeslawError, match="last axis of 1 or"):
        cond.evaluate({"N": np.ones((3, 7)), "D": np.ones((3, 7))})


def test_plan_decide_min_budget_and_predict_are_unchanged(chinchilla_post, reference):
    post = chinchilla_post
    budgets = np.logspace(19, 25, 13)
    new_plan, new_search = plan(post, budgets), plan(post, budgets[::4], method="numerical", max_params=1e11)
    new_decide = decide(post, [1e22, 1e24], "cvar:0.9", target_loss=2.1).table
    new_min = min_budget(post, 2.1, 0.9)
    new_predict = predict(post, N=[1e9, 7e10], D=[2e10, 1.4e12]).predictive.values
    reference()
    assert_same_draws(new_plan.draws, plan(post, budgets).draws)
    assert_same_draws(new_search.draws, plan(post, budgets[::4], method="numerical", max_params=1e11).draws)
    old_decide = decide(post, [1e22, 1e24], "cvar:0.9", target_loss=2.1).table
    np.testing.assert_allclose(new_decide.to_numpy(), old_decide.to_numpy(), rtol=1e-10, atol=0)
    old_min = min_budget(post, 2.1, 0.9)
    for key in ("budget", "N", "D", "probability"):
        assert new_min[key] == pytest.approx(old_min[key], rel=1e-10, abs=0)
    np.testing.assert_allclose(new_predict, predict(post, N=[1e9, 7e10], D=[2e10, 1.4e12]).predictive.values,
                               rtol=1e-10, atol=0)


@pytest.mark.parametrize("law, kernel, trend", [("muennighoff", "se", "scale"), ("power-C", "matern52", "scale"),
                                                ("chinchilla", "matern32", "none")])
def test_other_inputs_kernels_and_trends_match_the_reference(law, kernel, trend, monkeypatch):
    monkeypatch.setattr(discrepancy, "KERNEL", kernel)
    monkeypatch.setattr(discrepancy, "TREND", trend)
    post = as_posterior(fake_fit(law, draws=200, seed=1))
    cond = post.conditional
    names = post.law.inputs
    rng = np.random.default_rng(1)
    shared = {x: 10 ** rng.uniform(8, 13, (40, 1)) for x in names}
    for new, old in zip(cond.evaluate(shared), reference_evaluate(cond, shared), strict=True):
        np.testing.assert_array_equal(new, old)
    per_draw = {x: 10 ** rng.uniform(8, 13, (3, cond.n_draws)) for x in names}
    (mean, var), (ref_mean, ref_var) = cond.evaluate(per_draw), reference_evaluate(cond, per_draw)
    scale = float(np.sqrt(ref_var.max()))
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(np.sqrt(var), np.sqrt(ref_var), rtol=1e-10, atol=1e-12 * scale)


def test_threads_give_the_one_thread_numbers_bit_for_bit(chinchilla_post, monkeypatch):
    """plan() runs the sets' per-draw evaluations on a thread per core and decide() its budgets; each writes only
    its own columns or rows, so the numbers are those of one thread (``bayeslaw._threads.CORES = 1``)."""
    from bayeslaw import _threads

    post, budgets = chinchilla_post, np.logspace(19, 25, 13)
    monkeypatch.setattr(_threads, "CORES", 2)  # threads even on a one-core machine
    threaded = plan(post, budgets).draws, decide(post, [1e21, 1e22, 1e24], "cvar:0.9").table
    monkeypatch.setattr(_threads, "CORES", 1)
    serial = plan(post, budgets).draws, decide(post, [1e21, 1e22, 1e24], "cvar:0.9").table
    assert_same_draws(threaded[0], serial[0], rtol=0)
    np.testing.assert_array_equal(threaded[1].to_numpy(), serial[1].to_numpy())
    assert list(threaded[1].index) == [1e21, 1e22, 1e24]


def test_in_threads_keeps_the_order_and_raises_what_a_call_raises(monkeypatch):
    from bayeslaw import _threads

    monkeypatch.setattr(_threads, "CORES", 2)
    assert _threads.in_threads(lambda a, b: a * b, [(i, 10) for i in range(7)]) == [i * 10 for i in range(7)]
    with pytest.raises(ZeroDivisionError):
        _threads.in_threads(lambda a: 1 / a, [(1,), (0,), (2,)])
