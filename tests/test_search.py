"""The shared searches and the one budget check (bayeslaw._search)."""

import numpy as np
import pytest

from bayeslaw._search import bisect_decreasing, check_budgets, golden_section
from bayeslaw.errors import BayeslawError
from bayeslaw.plan import plan
from bayeslaw.plots import frontier
from bayeslaw.posterior import from_constants
from bayeslaw.risk import decide


def test_golden_section_and_bisection_are_elementwise():
    centres = np.array([-3.0, 0.5, 7.0])
    found = golden_section(lambda x: (x - centres) ** 2, np.full(3, -10.0), np.full(3, 10.0))
    np.testing.assert_allclose(found, centres, atol=1e-9)
    roots = bisect_decreasing(lambda x: centres - x, np.full(3, -10.0), np.full(3, 10.0))
    np.testing.assert_allclose(roots, centres, atol=1e-12)


@pytest.mark.parametrize("bad", [[-1.0], [1e22, np.inf], [np.nan], [], [[1e22]], "lots"])
def test_every_entry_point_refuses_a_bad_budget_alike(bad):
    post = from_constants("chinchilla", "besiroglu2024")
    for call in (check_budgets, lambda b: plan(post, b), lambda b: decide(post, b), lambda b: frontier(post, b)):
        with pytest.raises(BayeslawError, match=r"^budgets must be finite FLOP counts > 0, got "):
            call(bad)
    with pytest.raises(BayeslawError, match=r"^--budget must be finite FLOP counts > 0"):
        check_budgets(bad, "--budget")


def test_good_budgets_pass_as_a_float_array():
    assert check_budgets(1e22).tolist() == [1e22]
    assert check_budgets((1e22, 3)).dtype == float
