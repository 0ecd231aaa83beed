"""Must-show of issue 16 (pooling): leave-one-family-out over four real families, pooled against alone.

Each family's runs at its largest sizes are held out; a pooled chinchilla fit on the rest of that family plus the
other three families is scored on the family's view, against the family's kept runs fitted alone
(``tools/pooled_lofo.py``, README "Pooling across families"). 8 fits, about 4-5 minutes here: `long` (not in CI).
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED_DATA, shared_data_path

from bayeslaw.families import FAMILIES, four_families

pytestmark = [pytest.mark.slow, pytest.mark.long]  # 8 fits, about 5 minutes: past the CI budget
TOOL = Path(__file__).resolve().parents[1] / "tools" / "pooled_lofo.py"


@pytest.fixture(scope="module")
def lofo() -> pd.DataFrame:
    shared_data_path("datablations_losses.csv")
    spec = importlib.util.spec_from_file_location("pooled_lofo", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    table = four_families(SHARED_DATA)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for family in FAMILIES:
            rows += tool.one_family(table, family, chains=2, draws=300, seed=0)
    return pd.DataFrame(rows).set_index(["family", "fit"])


def test_every_family_is_scored_on_its_largest_sizes(lofo):
    held = {"chinchilla": 17, "c4": 8, "oscar": 8, "t5": 3}
    for family, n in held.items():
        assert lofo.loc[(family, "pooled"), "n_heldout"] == n == lofo.loc[(family, "alone"), "n_heldout"]
        # the pooled fit sees every run but the family's held-out ones
        assert lofo.loc[(family, "pooled"), "n_fit"] == 300 - n


def test_the_spreads_are_reported_and_the_exponents_recovered(lofo):
    pooled = lofo.xs("pooled", level="fit")
    # s_k on the log scale: the families' exponents differ by tens of percent, not by factors
    assert pooled["spread_alpha"].between(0.05, 0.7).all() and pooled["spread_beta"].between(0.05, 0.7).all()
    # Chinchilla's own alpha stays near Besiroglu et al.'s 0.348 (95% 0.317-0.373) or Hoffmann's 0.34
    assert 0.29 <= lofo.loc[("chinchilla", "pooled"), "alpha"] <= 0.38


@pytest.mark.xfail(strict=True, reason="measured: pooling the chinchilla law's exponents beats the family alone on at "
                                       "most one family (c4, oscar within 0.1 nats, t5 0.5-1.6 worse; Chinchilla by "
                                       "-0.84 to +1.58 nats over sampler seeds 0-3, mean +0.02); README")
def test_pooled_lpd_is_higher_for_at_least_three_of_four_families(lofo):
    wins = [f for f in FAMILIES if lofo.loc[(f, "pooled"), "lpd"] > lofo.loc[(f, "alone"), "lpd"]]
    assert len(wins) >= 3, wins
