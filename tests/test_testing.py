"""bayeslaw.testing: the fake posteriors and fits that most tests of decisions, plots and commands use."""

from __future__ import annotations

import numpy as np
import pytest

import bayeslaw as bl
from bayeslaw.plan import plan
from bayeslaw.posterior import from_constants
from bayeslaw.testing import SMALL, fake_fit, fake_posterior, synthetic_runs


def test_fake_posterior_scatters_around_the_preset_and_plans_like_it():
    post = fake_posterior("chinchilla", "besiroglu2024", chains=2, draws=400, spread=0.01)
    assert dict(post.draws.sizes) == {"chain": 2, "draw": 400} and post.likelihood == "student_t"
    truth = bl.get_law("chinchilla").presets["besiroglu2024"].values
    for name, value in truth.items():
        assert float(post.draws[name].median()) == pytest.approx(value, rel=1e-3)
        assert float(post.draws[name].std()) == pytest.approx(0.01 * value, rel=0.05)
    point = plan(from_constants("chinchilla", "besiroglu2024"), 1e23).draws["N_opt"].item()
    assert float(plan(post, 1e23).draws["N_opt"].median()) == pytest.approx(point, rel=0.05)
    assert "nu" not in fake_posterior("power-N", likelihood="normal").draws
    assert fake_posterior("power-N", likelihood=None).likelihood is None


def test_fake_fit_saves_loads_and_passes_its_checks(tmp_path):
    runs = synthetic_runs("chinchilla", 40, noise=0.01, seed=1)
    made = fake_fit("chinchilla", runs=runs, discrepancy=False)
    assert made.converged and len(made.runs) == 40 and made.discrepancy is None
    assert made.idata.log_likelihood["log_loss"].shape == (2, 500, 40)
    again = bl.load(made.save(tmp_path / "fake.nc"), law="chinchilla")
    np.testing.assert_array_equal(again.posterior["alpha"].values, made.posterior["alpha"].values)
    assert fake_fit("power-C", sizes=3).discrepancy is not None  # a ladder, with the discrepancy by default


def test_small_settings_are_real_sampling_settings():
    assert SMALL == {"chains": 2, "draws": 300, "tune": 300, "retry": False}


def test_published_draws_are_the_papers_parameters_not_the_sampling_coordinates():
    from bayeslaw.posterior import as_posterior
    from bayeslaw.testing import fake_fit

    post = as_posterior(fake_fit("chinchilla", sizes=4, discrepancy=False))
    assert list(post.published_draws()) == list(post.law.published) != list(post.law.params)
    assert post.params().keys() == post.published_draws().keys()  # the former name, for one release
