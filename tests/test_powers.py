"""Powers of positive data as exponentials of stored logs (bayeslaw._powers): the same log p and gradient as the
law written with pow, no pow or log of a data input left in the compiled density, and the sparsity S (which may
be 0) left as it is."""

from __future__ import annotations

import numpy as np
import pytest

from bayeslaw import model as model_module
from bayeslaw import sampling
from bayeslaw.data import load_runs
from bayeslaw.laws import get_law
from bayeslaw.model import build_model, model_priors
from bayeslaw.testing import synthetic_runs

# laws with powers of their inputs (chinchilla, power-N, krajewski, bnsl-2), with none (muennighoff: of effective
# sizes), and with the sparsity S beside them (frantar: N^-b_N rewritten, (a_D / D)^b_D and S left)
LAWS = ["chinchilla", "power-N", "muennighoff", "frantar", "krajewski", "bnsl-2"]


def density(law: str, rewrite: bool, monkeypatch) -> tuple:
    """The model's C density (log p and gradient) on 50 synthetic runs, with or without the rewrite."""
    with monkeypatch.context() as patch:
        if not rewrite:
            patch.setattr(model_module, "powers_by_logs", lambda mu, *args: mu)
        runs = load_runs(synthetic_runs(law, 50, seed=3), law)
        model = build_model(runs, model_priors(get_law(law), "student_t"))
    compiled = sampling.compile_density(model)
    return model, compiled, sampling.data_values(model, compiled.data_names)


def assert_same_density(new, new_data, old, old_data, points, finite: bool = False) -> None:
    """log p to 1e-10 and its gradient to 1e-8 (of its largest entry) at each point; ``finite``: the reference's
    values are finite there too."""
    for x in points:
        (logp, grad), (ref_logp, ref_grad) = new.logp_dlogp(x, *new_data), old.logp_dlogp(x, *old_data)
        if finite:
            assert np.isfinite(ref_logp) and np.isfinite(ref_grad).all()
        np.testing.assert_allclose(logp, ref_logp, rtol=1e-10)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-8, atol=1e-8 * np.abs(ref_grad).max())


@pytest.mark.parametrize("law", LAWS)
def test_log_density_and_gradient_are_the_law_written_with_pow(law, monkeypatch):
    (_, new, new_data), (_, old, old_data) = density(law, True, monkeypatch), density(law, False, monkeypatch)
    size = sum(int(np.prod(s, dtype=int)) for s in new.value_shapes)
    assert_same_density(new, new_data, old, old_data, np.random.default_rng(0).normal(0.0, 0.5, (5, size)))
    logs = {name for name in new.data_names if name.startswith("log_") and name != "log_loss"}
    assert logs <= {f"log_{x}" for x in get_law(law).inputs if x != "S"}  # S may be 0: never through a log


def test_chinchilla_reads_only_the_logs_of_its_inputs(monkeypatch):
    """Its N and D enter only through N^-alpha and D^-beta: the density reads log N and log D, not N and D."""
    _, compiled, data = density("chinchilla", True, monkeypatch)
    assert {"log_N", "log_D"} <= set(compiled.data_names) and not {"N", "D"} & set(compiled.data_names)
    values = dict(zip(compiled.data_names, data, strict=True))
    runs = synthetic_runs("chinchilla", 50, seed=3)
    np.testing.assert_array_equal(values["log_N"], np.log(runs["N"].to_numpy()))


def test_the_pooled_density_is_the_law_written_with_pow(monkeypatch):
    """The pooled model (bayeslaw.pooling) reads the same logs: log p and gradient as with pow, on two families."""
    from bayeslaw import pooling

    frame = synthetic_runs("chinchilla", 40, seed=3)
    frame["family"] = np.where(np.arange(40) % 2, "a", "b")

    def pooled(rewrite: bool) -> tuple:
        with monkeypatch.context() as patch:
            if not rewrite:
                patch.setattr(pooling, "powers_by_logs", lambda mu, *args: mu)
            grouped = pooling.load_grouped(frame, "chinchilla", "family")
            priors = model_priors(get_law("chinchilla"), "student_t")
            model, _ = pooling.build_pooled_model(grouped, priors, ("alpha", "beta"))
        compiled = sampling.compile_density(model)
        start = model.initial_point()
        return compiled, sampling.data_values(model, compiled.data_names), np.concatenate(
            [np.ravel(start[name]) for name in compiled.value_names])

    (new, new_data, start), (old, old_data, _) = pooled(True), pooled(False)
    assert {"log_N", "log_D"} <= set(new.data_names) and not {"log_N", "log_D"} & set(old.data_names)
    # about the start: far from it the pooled coordinates leave the law's domain (log p NaN)
    points = start + np.random.default_rng(1).normal(0.0, 0.3, (5, start.size))
    assert_same_density(new, new_data, old, old_data, points, finite=True)
