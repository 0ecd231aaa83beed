"""bayeslaw.fanout: fit jobs on local processes or a Dask cluster return the serial results bit for bit."""

from __future__ import annotations

import dataclasses
import itertools
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayeslaw import fanout
from bayeslaw.calibrate import calibrate
from bayeslaw.cli import app
from bayeslaw.errors import BayeslawError, ConvergenceWarning, DataError, PriorError
from bayeslaw.fanout import map_jobs
from bayeslaw.fit import fit
from bayeslaw.laws import get_law
from bayeslaw.testing import synthetic_runs

TINY = {"chains": 2, "draws": 200, "tune": 200, "retry": False}
GROUPS = ("posterior", "sample_stats", "log_likelihood")


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return synthetic_runs("chinchilla", 24, seed=0)


@pytest.fixture(scope="module")
def jobs(runs) -> list[dict]:
    return [{"law": "chinchilla", "data": runs, "seed": seed, **TINY} for seed in (1, 2)]


@pytest.fixture(scope="module")
def serial(jobs) -> list:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small fits
        return map_jobs(fit, jobs, workers=1)


def assert_same_fits(expected: list, got: list) -> None:
    """Every array of every group equal (NaN where NaN), and the same discrepancy estimate."""
    assert len(expected) == len(got)
    for a, b in zip(expected, got, strict=True):
        assert b.law is a.law and b.info["seed"] == a.info["seed"]
        for group in GROUPS:
            first, second = a.idata[group], b.idata[group]
            assert set(first.data_vars) == set(second.data_vars)
            for name in first.data_vars:
                assert np.array_equal(first[name].values, second[name].values, equal_nan=True), (group, name)
        assert a.discrepancy.to_json() == b.discrepancy.to_json()


def test_local_processes_return_the_serial_fits_bit_for_bit(serial, jobs):
    # the two jobs differ (their seeds), so equality below is per job, not one result copied
    assert not np.array_equal(serial[0].posterior["E"].values, serial[1].posterior["E"].values)
    assert_same_fits(serial, map_jobs(fit, jobs, workers=2))


def test_calibrate_on_processes_equals_serial(runs):
    c = np.sort(6 * runs["N"].to_numpy() * runs["D"].to_numpy())
    rules = [f"C>{(c[-11] + c[-10]) / 2:.6g}", f"C>{(c[-9] + c[-8]) / 2:.6g}"]  # 10 and 8 held out
    serial = calibrate(runs, "chinchilla", rules, seed=3, workers=1, **TINY)
    fanned = calibrate(runs, "chinchilla", rules, seed=3, workers=2, **TINY)
    pd.testing.assert_frame_equal(serial, fanned, check_exact=True)
    assert serial.attrs == fanned.attrs


@pytest.mark.slow
def test_a_local_dask_cluster_returns_the_serial_fits_bit_for_bit(serial, jobs):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert_same_fits(serial, map_jobs(fit, jobs, client=client))
        with pytest.raises(PriorError) as on_dask:  # a scheduler address: a client of its own for the call
            map_jobs(fit, failing_jobs(jobs[0]["data"]), client=cluster.scheduler_address)
    with pytest.raises(PriorError) as here:
        map_jobs(fit, failing_jobs(jobs[0]["data"]), workers=1)
    assert str(on_dask.value) == str(here.value)


def failing_jobs(runs: pd.DataFrame) -> list[dict]:
    """A bad prior (refused before sampling), then too few runs for the law (refused while loading)."""
    return [{"law": "chinchilla", "data": runs, "priors": {"alpha": "Normal(mu=0)"}, **TINY},
            {"law": "chinchilla", "data": runs.head(3), **TINY}]


def test_a_job_that_fails_in_a_worker_raises_the_serial_error(runs):
    outcomes = []
    for workers in (1, 2):
        with pytest.raises(BayeslawError) as caught:
            map_jobs(fit, failing_jobs(runs), workers=workers)
        outcomes.append((type(caught.value), str(caught.value)))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] is PriorError and "alpha" in outcomes[0][1]
    with pytest.raises(DataError) as caught:  # the second job alone: its own error
        map_jobs(fit, failing_jobs(runs)[1:] * 2, workers=2)
    assert "runs" in str(caught.value)


def test_unconverged_fits_in_workers_warn_here(runs):
    """Warnings raised in a worker are issued in this process, in job order, with the serial messages."""
    short = [{"law": "chinchilla", "data": runs, "seed": seed, "chains": 2, "draws": 20, "tune": 20,
              "retry": False, "discrepancy": None} for seed in (4, 5)]
    messages = []
    for workers in (1, 2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            map_jobs(fit, short, workers=workers)
        messages.append([str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)])
    assert len(messages[0]) == 2 and messages[0][0] != messages[0][1]
    assert messages[1] == messages[0]
    with warnings.catch_warnings(record=True) as caught:  # this process's filters decide what is shown
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ConvergenceWarning)
        map_jobs(fit, short, workers=2)
    assert not [w for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_a_worker_does_not_fan_out_again():
    assert map_jobs(fanout.default_workers, [{"n_jobs": 8}] * 2, workers=2) == [1, 1]
    assert fanout.default_workers(1) == 1


def test_the_default_is_one_worker_per_cpu_or_what_the_environment_says(monkeypatch):
    monkeypatch.delenv(fanout.WORKERS_VARIABLE, raising=False)
    assert fanout.default_workers(100) == fanout.cpu_count()
    monkeypatch.setenv(fanout.WORKERS_VARIABLE, "3")
    assert fanout.default_workers(100) == 3 and fanout.default_workers(2) == 2
    monkeypatch.setenv(fanout.WORKERS_VARIABLE, "many")
    with pytest.raises(BayeslawError, match=r"\$BAYESLAW_WORKERS must be a whole number >= 1, got 'many'"):
        fanout.default_workers(4)


@pytest.mark.parametrize(("workers", "client", "message"), [
    (0, None, "workers must be a whole number >= 1"), ("2", None, "workers must be a whole number"),
    (2, "tcp://127.0.0.1:1", "not both"), (None, 42, "client must be a dask.distributed.Client"),
])
def test_bad_workers_and_clients_are_refused(runs, workers, client, message):
    with pytest.raises(BayeslawError, match=message):
        map_jobs(fit, [{"law": "chinchilla", "data": runs}], workers=workers, client=client)


def test_laws_travel_by_registry_name():
    law = get_law("chinchilla")
    assert pickle.loads(pickle.dumps(law)) is law
    stranger = dataclasses.replace(law, name="chinchilla-copy")
    with pytest.raises(pickle.PicklingError, match=r"chinchilla-copy.*not in the registry"):
        pickle.dumps(stranger)


def test_commands_refuse_workers_with_a_scheduler(tmp_path):
    for command in (["compare", "runs.csv", "--laws", "chinchilla,power-C"], ["calibrate", "runs.csv", "--holdout",
                                                                               "C>1e20"]):
        result = CliRunner().invoke(app, [*command, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
        assert result.exit_code == 2 and "--workers and --scheduler" in result.output


def test_progress_says_how_many_jobs_are_done_and_how_long_is_left():
    seen = []
    assert map_jobs(fanout.default_workers, [{"n_jobs": 1}] * 3, workers=1,
                    on_done=lambda *n: seen.append(n)) == [1, 1, 1]
    assert [(done, total) for done, total, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert all(b[2] >= a[2] >= 0 for a, b in itertools.pairwise(seen))
    assert fanout.eta_line(2, 6, 40.0) == "2 of 6 fits done in 40 s; about 80 s left"
    assert fanout.eta_line(6, 6, 90.0, what="splits") == "6 of 6 splits done in 90 s"
