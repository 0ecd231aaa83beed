"""The ladder must-show (test_ladders.py) for the laws that take longest, in a file of their own so that
the test runner can give them a second worker."""

from __future__ import annotations

import pytest
from test_ladders import LONG, check_ladder


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("name", LONG)
def test_the_longest_laws_converge_by_default_on_a_four_size_ladder(name):
    check_ladder(name)
