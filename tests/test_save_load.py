"""Save/load round trip, law mismatch refusal, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SMALL
from test_fit import synthetic_runs

import bayeslaw as bl
from bayeslaw.errors import FitFileError
from bayeslaw.laws import LAWS


@pytest.fixture(scope="module")
def fitted():
    return bl.fit("kaplan-ND", synthetic_runs(LAWS["kaplan-ND"], 60, 0.02, seed=1), seed=2, **SMALL)


def test_round_trip_is_exact(fitted, tmp_path):
    path = fitted.save(tmp_path / "fit.nc")
    loaded = bl.load(path)
    assert loaded.law is fitted.law
    assert loaded.priors == fitted.priors
    assert loaded.likelihood == fitted.likelihood
    assert loaded.diagnostics == fitted.diagnostics
    assert loaded.info == fitted.info
    assert loaded.runs.frame.equals(fitted.runs.frame)
    assert loaded.runs.digest() == fitted.runs.digest()
    for group in fitted.idata.groups():
        original, back = fitted.idata[group], loaded.idata[group]
        assert set(original.data_vars) == set(back.data_vars), group
        for name in original.data_vars:
            np.testing.assert_array_equal(original[name].values, back[name].values)
    assert dict(loaded.posterior.attrs) == dict(fitted.posterior.attrs)
    attrs = loaded.posterior.attrs
    assert attrs["law"] == "kaplan-ND" and attrs["bayeslaw_version"] == bl.__version__
    assert len(attrs["data_sha256"]) == 64 and "alpha_N" in attrs["priors"]


def test_loading_into_another_law_is_refused(fitted, tmp_path):
    path = fitted.save(tmp_path / "fit.nc")
    assert bl.load(path, law="kaplan-ND").law.name == "kaplan-ND"
    with pytest.raises(FitFileError, match="holds a fit of law 'kaplan-ND', not 'chinchilla'"):
        bl.load(path, law="chinchilla")


def test_a_file_that_is_not_a_fit_is_refused(tmp_path):
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    with pytest.raises(FitFileError, match="not a bayeslaw fit file"):
        bl.load(junk)
    with pytest.raises(FitFileError, match="no such file"):
        bl.load(tmp_path / "missing.nc")


def _disk_full_after(limit: int, monkeypatch) -> None:
    """os.write stores ``limit`` bytes, then fails as a full disk does."""
    import errno
    import os

    real, written = os.write, [0]

    def write(fd, data):
        if written[0] >= limit:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(data[:limit - written[0]]))
        written[0] += n
        return n

    monkeypatch.setattr(os, "write", write)


def test_failed_save_leaves_no_partial_file(fitted, tmp_path, monkeypatch):
    target = tmp_path / "fit.nc"
    _disk_full_after(1000, monkeypatch)
    with pytest.raises(FitFileError, match=f"cannot write {target}: No space left on device"):
        fitted.save(target)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_file(fitted, tmp_path, monkeypatch):
    target = fitted.save(tmp_path / "fit.nc")
    before = target.read_bytes()
    _disk_full_after(1000, monkeypatch)
    with pytest.raises(FitFileError):
        fitted.save(target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


def test_saved_file_has_the_usual_permissions(fitted, tmp_path):
    """The temporary file is private (mkstemp); the saved fit gets 0666 less the umask, like any file."""
    import os
    import stat

    umask = os.umask(0o022)
    try:
        path = fitted.save(tmp_path / "fit.nc")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_fit_saved_by_an_earlier_release_loads_and_decides_as_it_did():
    """tests/fixtures/fit_before_trend.nc was saved by the release before the discrepancy's linear trend (commit
    c6b44b2; a chinchilla fit of bayeslaw.demo.chinchilla_sweep runs with a smooth misfit, seed 3, 2 x 100 draws).
    It loads unchanged, keeps its discrepancy without a trend, and its seeded decision is the one that release
    printed (chosen N 28147585367.43931, 21.03615972512618 tokens per parameter at 1e23, cvar:0.9)."""
    from pathlib import Path

    from bayeslaw.risk import decide

    fit = bl.load(Path(__file__).parent / "fixtures" / "fit_before_trend.nc")
    assert fit.law.name == "chinchilla" and fit.posterior.sizes == {"chain": 2, "draw": 100}
    spec = fit.discrepancy
    assert spec.trend_axis == "none" and spec.trend == 0 and len(spec.draws) == 32
    assert "linear trend" not in spec.describe()
    row = decide(fit, 1e23, "cvar:0.9").table.iloc[0]
    assert row["chosen N"] == pytest.approx(28147585367.43931, rel=1e-9)
    assert row["chosen tokens/param"] == pytest.approx(21.03615972512618, rel=1e-9)
