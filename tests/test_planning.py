"""bayeslaw.planning.plan_budgets: everything `bayeslaw plan` answers, callable from Python."""

from __future__ import annotations

import numpy as np
import pytest

from bayeslaw.catalogue import load_entry
from bayeslaw.errors import BayeslawError
from bayeslaw.laws.chinchilla import chinchilla_optimum
from bayeslaw.planning import plan_budgets
from bayeslaw.posterior import from_constants
from bayeslaw.risk import decide
from bayeslaw.testing import fake_posterior


def test_the_plan_at_exact_constants_is_the_closed_form():
    """One draw at Besiroglu et al.'s constants: N_opt = G (C/6)^a, the published 1e24 allocation."""
    post = from_constants("chinchilla", "besiroglu2024")
    made = plan_budgets(post, [5.76e23, 1e24])
    for budget in (5.76e23, 1e24):
        n_true, d_true = chinchilla_optimum(post.law.presets["besiroglu2024"].values, budget)
        row = made.plan.loc[budget]
        assert row["N_opt median"] == pytest.approx(n_true, rel=1e-6)
        assert row["D_opt median"] == pytest.approx(d_true, rel=1e-6)
    assert made.decision is None and made.smallest_budget is None and made.inference is None
    assert made.notes[0].startswith("C = 6 N D") and made.model is None


def test_a_data_constrained_entry_reproduces_the_datablations_readme():
    """Muennighoff et al.: 1e22 FLOPs with 25e9 unique tokens -> 7.02e9 parameters, about 9.49 epochs."""
    made = plan_budgets(load_entry("muennighoff2023"), 1e22, unique_tokens=25e9)
    row = made.plan.loc[1e22]
    assert row["N_opt median"] == pytest.approx(7.02e9, rel=2e-3)
    assert row["epochs median"] == pytest.approx(9.49, abs=0.02)
    assert made.model.startswith("muennighoff2023 (law muennighoff)")


def test_risk_target_and_serving_answers_match_the_functions_they_call():
    post = fake_posterior("chinchilla", seed=3)
    made = plan_budgets(post, [1e22, 1e23], risk="cvar:0.9", target_loss=2.3, seed=4)
    direct = decide(post, [1e22, 1e23], "cvar:0.9", target_loss=2.3, seed=4)
    assert np.array_equal(made.decision.table.to_numpy(), direct.table.to_numpy())
    smallest = made.smallest_budget
    assert smallest["target_loss"] == 2.3 and smallest["probability"] == 0.9 and 0 < smallest["budget"] < 1e23
    served = plan_budgets(post, 1e23, target_loss=2.3, inference_tokens=5e12)
    assert served.smallest_budget is None and served.inference["saving median"] > 0
    with pytest.raises(BayeslawError, match="inference_tokens needs target_loss"):
        plan_budgets(post, 1e23, inference_tokens=5e12)
    with pytest.raises(BayeslawError, match="finite FLOP counts > 0"):
        plan_budgets(post, [1e22, -1.0])


def test_budgets_beyond_the_runs_are_named():
    from bayeslaw.testing import fake_fit

    made = plan_budgets(fake_fit("chinchilla"), [1e20, 1e25])
    assert len(made.beyond) == 1 and "outside the fitted runs" in made.beyond[0] and made.beyond[0] in made.notes
