"""Partial pooling across families (bayeslaw.pooling): the pieces on synthetic families, fast."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayeslaw as bl
from bayeslaw.catalogue.schema import validate
from bayeslaw.errors import BayeslawError, DataError, FitFileError
from bayeslaw.laws import get_law
from bayeslaw.model import model_priors
from bayeslaw.pooling import (
    PooledFit,
    centring,
    load_grouped,
    load_pooled,
    population_location,
    shift_coordinates,
)
from bayeslaw.predict import predict
from bayeslaw.priors import Prior
from bayeslaw.testing import SMALL, synthetic_runs

TRUTH = {"a": {"E": 1.7, "A": 400.0, "B": 410.0, "alpha": 0.34, "beta": 0.28},
         "b": {"E": 2.1, "A": 300.0, "B": 900.0, "alpha": 0.30, "beta": 0.32},
         "c": {"E": 1.9, "A": 350.0, "B": 600.0, "alpha": 0.32, "beta": 0.30}}
SIZES = {"a": 30, "b": 30, "c": 1}  # family c has one run: it borrows its exponents from the population


def families_table(seed: int = 0) -> pd.DataFrame:
    law = get_law("chinchilla")
    parts = []
    for i, (name, values) in enumerate(TRUTH.items()):
        frame = synthetic_runs(law, SIZES[name], noise=0.005, seed=seed + i)
        clean = law.evaluate(values, {x: frame[x].to_numpy() for x in law.inputs})
        noise = frame["loss"] / law.evaluate(law.presets["hoffmann2022"].values,
                                             {x: frame[x].to_numpy() for x in law.inputs})
        parts.append(frame.assign(loss=clean * noise, family=name))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def pooled() -> PooledFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bl.fit("chinchilla", families_table(), group="family", seed=1, **SMALL)


def test_population_location_is_the_default_prior_on_the_log_scale():
    assert population_location(Prior("LogNormal", mu=-1.2, sigma=0.7), "positive") == (-1.2, 0.7)
    mean, sd = population_location(Prior("HalfNormal", sigma=1.0), "positive")
    # log|Z|, Z ~ N(0, 1): mean -(gamma + log 2) / 2, sd pi / (2 sqrt 2)
    assert mean == pytest.approx(-(np.euler_gamma + np.log(2)) / 2, abs=0.02)
    assert sd == pytest.approx(np.pi / (2 * np.sqrt(2)), abs=0.05)  # 20,000 seeded draws


def test_the_exponents_are_pooled_through_their_slope_coordinates():
    law = get_law("chinchilla")
    pivots = {"N": 1e9, "D": 2e10, "loss": 2.5}
    start = law.coordinates.initial(pivots)
    assert shift_coordinates(law, ("alpha", "beta"), start, pivots) == {"alpha": "log_slope_N",
                                                                         "beta": "log_slope_D"}
    assert shift_coordinates(law, ("E",), start, pivots) == {}  # E moves with every coordinate it has


def test_a_missing_or_empty_group_column_names_the_column_and_rows():
    table = families_table()
    with pytest.raises(DataError, match="group column 'lab' is not in the table"):
        load_grouped(table, "chinchilla", "lab")
    table.loc[[3, 7], "family"] = np.nan
    with pytest.raises(DataError, match=r"group column 'family': rows 3, 7 are empty"):
        load_grouped(table, "chinchilla", "family")
    with pytest.raises(DataError, match="names one family"):
        load_grouped(table.assign(family="a"), "chinchilla", "family")


def test_bad_pool_and_options_are_refused():
    table = families_table()
    with pytest.raises(BayeslawError, match="cannot pool gamma"):
        bl.fit("chinchilla", table, group="family", pool=["gamma"], **SMALL)
    with pytest.raises(BayeslawError, match="give group= as well"):
        bl.fit("chinchilla", table.drop(columns="family"), pool=["alpha"], **SMALL)
    with pytest.raises(BayeslawError, match="pooled: its prior is the population's"):
        bl.fit("chinchilla", table, group="family", priors={"alpha": "LogNormal(mu=-1, sigma=0.2)"}, **SMALL)


def test_centring_follows_how_many_input_points_a_family_has():
    grouped = load_grouped(families_table(), "chinchilla", "family")
    assert centring(grouped, None).tolist() == [True, True, False]
    assert centring(grouped, False).tolist() == [False] * 3


def test_the_family_view_is_an_ordinary_fit_of_that_family(pooled):
    assert pooled.families == ("a", "b", "c")
    view = pooled.family("b")
    assert isinstance(view, bl.Fit) and len(view.runs) == SIZES["b"]
    for name in ("E", "alpha", "beta", "sigma"):
        np.testing.assert_array_equal(view.posterior[name].values, pooled.posterior[name].sel(family="b").values)
    # the published A is the family's log term at its own pivot N0: log A = log a0 + alpha log N0
    n0 = float(np.exp(np.log(view.runs.inputs["N"]).mean()))
    np.testing.assert_allclose(np.log(view.posterior["A"].values),
                               pooled.posterior["log_A_at_pivot"].sel(family="b").values
                               + view.posterior["alpha"].values * np.log(n0), rtol=1e-10)
    # recovered: the well-measured family's exponents within 25% of the truth
    for name in ("alpha", "beta"):
        assert float(view.posterior[name].median()) == pytest.approx(TRUTH["b"][name], rel=0.25)
    prediction = predict(view, N=1e10, D=2e11)
    truth = get_law("chinchilla").evaluate(TRUTH["b"], {"N": np.array([1e10]), "D": np.array([2e11])})[0]
    assert float(prediction.summary()["law median"].iloc[0]) == pytest.approx(truth, rel=0.05)
    with pytest.raises(BayeslawError, match="no family 'z'"):
        pooled.family("z")


def test_a_family_with_one_run_takes_its_exponents_from_the_population(pooled):
    one = pooled.family("c")
    assert len(one.runs) == 1
    alpha = one.posterior["alpha"].values.ravel()
    population = pooled.new_family(seed=0)["alpha"].values.ravel()
    # its spread is the population's (no run of its own pins it), not the wide default prior's (sd 0.7 in log)
    assert np.std(np.log(alpha)) < 0.6
    assert np.median(alpha) == pytest.approx(np.median(population), rel=0.3)


def test_spreads_and_population_priors(pooled):
    spreads = pooled.spreads()
    assert list(spreads.index) == ["alpha", "beta"]
    assert (spreads["spread_lo"] < spreads["spread_median"]).all()
    summary = pooled.summary()
    assert summary.loc["alpha[b]", "mean"] == pytest.approx(float(pooled.posterior["alpha"].sel(family="b").mean()))
    assert {"pop_sd_alpha", "sigma[c]", "nu[a]"} <= set(summary.index)
    priors = pooled.population_priors()
    draws = np.log(pooled.new_family(seed=0)["alpha"].values.ravel())
    assert priors["alpha"].dist == "LogNormal"
    assert priors["alpha"].kwargs["mu"] == pytest.approx(draws.mean())
    assert priors["alpha"].kwargs["sigma"] == pytest.approx(draws.std())


def test_saved_and_loaded_unchanged(pooled, tmp_path):
    path = pooled.save(tmp_path / "pooled.nc")
    back = load_pooled(path)
    assert back.families == pooled.families and back.pool == pooled.pool
    for name in ("alpha", "log_B_at_pivot", "sigma", "pop_sd_beta"):
        np.testing.assert_array_equal(back.posterior[name].values, pooled.posterior[name].values)
    np.testing.assert_array_equal(back.family("a").posterior["A"].values, pooled.family("a").posterior["A"].values)
    with pytest.raises(FitFileError, match="not 'power-C'"):
        load_pooled(path, "power-C")
    with pytest.raises(FitFileError, match=r"holds a pooled fit of several families: read it with .*load_pooled"):
        bl.load(path)  # it said "attribute 'discrepancy' is missing"
    view = tmp_path / "b.nc"
    pooled.family("b").save(view)
    assert bl.load(view).posterior["alpha"].equals(pooled.family("b").posterior["alpha"])
    with pytest.raises(FitFileError, match="not a bayeslaw pooled fit"):
        load_pooled(view)


def test_a_saved_failure_leaves_no_file(pooled, tmp_path):
    target = tmp_path / "missing" / "pooled.nc"
    with pytest.raises(FitFileError):
        pooled.save(target)
    assert not target.exists()


def test_prior_from_a_pooled_fit(pooled, tmp_path):
    path = pooled.save(tmp_path / "pooled.nc")
    new = synthetic_runs("chinchilla", 12, noise=0.01, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bl.fit("chinchilla", new, prior_from=str(path), seed=0, discrepancy=None, **SMALL)
    expected = pooled.population_priors()
    assert result.priors["alpha"] == expected["alpha"] and result.priors["beta"] == expected["beta"]
    assert result.priors["E"] == model_priors(get_law("chinchilla"), "student_t")["E"]
    assert result.info["prior_from"] == str(path)
    saved = result.save(tmp_path / "new.nc")
    assert bl.load(saved).info["prior_from"] == str(path)
    with pytest.raises(BayeslawError, match="unknown prior source"):
        bl.fit("chinchilla", new, prior_from=str(tmp_path / "nothing.nc"), **SMALL)


def test_the_catalogue_entry_validates(pooled, tmp_path):
    text = pooled.catalogue_entry("chinchilla-pooled-test", source="test families a, b, c")
    raw = tomllib.loads(text)
    entry = validate(raw, Path("chinchilla-pooled-test.toml"))
    assert entry["priors"]["alpha"] == pooled.population_priors()["alpha"]
    assert entry["constants"] is None


@pytest.mark.slow  # two fits through the command line: 20-35 s here
def test_cli_group_fit_then_prior_from(tmp_path):
    from typer.testing import CliRunner

    from bayeslaw.cli import EXIT_ERROR, EXIT_USAGE, app

    runner = CliRunner()
    table = tmp_path / "families.csv"
    families_table().to_csv(table, index=False)
    tiny = ["--chains", "2", "--draws", "300", "--tune", "300", "--no-retry", "--seed", "1"]
    refused = runner.invoke(app, ["fit", str(table), "--pool", "alpha", *tiny])
    assert refused.exit_code == EXIT_USAGE and "give --group as well" in refused.output
    refused = runner.invoke(app, ["fit", str(table), "--prior-from", str(tmp_path / "none.nc"), *tiny])
    assert refused.exit_code == EXIT_USAGE and "unknown prior source" in refused.output
    bad = runner.invoke(app, ["fit", str(table), "--group", "lab", *tiny])
    assert bad.exit_code == EXIT_ERROR and "group column 'lab' is not in the table" in bad.output
    out = tmp_path / "pooled.nc"
    result = runner.invoke(app, ["fit", str(table), "--group", "family", "--out", str(out), *tiny])
    assert result.exit_code in (0, 3), result.output  # 3: not converged at these tiny settings
    assert "spread_median" in result.stdout and load_pooled(out).families == ("a", "b", "c")
    new = tmp_path / "new.csv"
    families_table()[lambda f: f["family"] == "b"].drop(columns="family").to_csv(new, index=False)
    fitted = tmp_path / "new.nc"
    result = runner.invoke(app, ["fit", str(new), "--prior-from", str(out), "--out", str(fitted), *tiny])
    assert result.exit_code in (0, 3), result.output
    assert bl.load(fitted).priors["alpha"] == load_pooled(out).population_priors()["alpha"]
