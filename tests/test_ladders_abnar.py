"""The ladder must-show (test_ladders.py) for abnar, the longest law to fit (10 parameters; 4 fits of 140-260 s,
each through the second attempt), in a file of its own so that the test runner gives it a worker."""

from __future__ import annotations

import pytest
from test_ladders import LONGEST, check_ladder


@pytest.mark.slow
@pytest.mark.long
def test_abnar_converges_by_default_on_a_four_size_ladder():
    check_ladder(LONGEST)
