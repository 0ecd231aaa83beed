"""Every script in examples/ runs with tiny settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_data_path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = {"fit_chinchilla_runs.py": ["--chains", "2", "--draws", "200", "--tune", "500"]}


def test_every_example_has_tiny_settings():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_example_runs(name):
    shared_data_path("chinchilla_epoch_extracted.csv")
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *TINY[name]], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "tokens per parameter" in proc.stdout
    median_alpha = next(ln for ln in proc.stdout.splitlines() if ln.startswith("alpha"))
    assert 0.317 <= float(median_alpha.split()[1]) <= 0.373


def test_example_without_data_says_so_and_exits_cleanly(tmp_path):
    proc = subprocess.run([sys.executable, str(EXAMPLES / "fit_chinchilla_runs.py"), "--data",
                           str(tmp_path / "absent.csv")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0
    assert "not found" in proc.stdout
