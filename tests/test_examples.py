"""Every script in examples/ runs with tiny settings and prints real results; without data it says so."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_data_path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY_SAMPLING = ["--chains", "2", "--draws", "200", "--tune", "500", "--no-retry"]
# script: (data file it reads, tiny arguments)
TINY = {
    "fit_chinchilla_runs.py": ("chinchilla_epoch_extracted.csv", [*TINY_SAMPLING, "--budget", "1e22", "5.76e23"]),
    "risk_aware_plan.py": ("chinchilla_epoch_extracted.csv", [*TINY_SAMPLING, "--budget", "1e22"]),
    "compare_sparse_t5.py": ("frantar_t5_sparsity.csv", TINY_SAMPLING),
    "data_constrained_plan.py": ("datablations_losses.csv", [*TINY_SAMPLING, "--budget", "1e22"]),
    "next_runs.py": ("chinchilla_epoch_extracted.csv", [*TINY_SAMPLING, "--outcomes", "32"]),
    "learning_curves.py": ("datablations_losses.csv", TINY_SAMPLING),
    "pooled_families.py": ("datablations_losses.csv", TINY_SAMPLING),
}


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def number_after(label: str, text: str) -> float:
    match = re.search(rf"{re.escape(label)}\s*([-+0-9.e]+)", text)
    assert match, f"'{label}' not in output:\n{text[-2000:]}"
    return float(match.group(1))


def test_every_example_has_tiny_settings():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(TINY)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_example_runs(name):
    data, args = TINY[name]
    shared_data_path(data)
    out = run_example(name, *args).stdout
    if name == "fit_chinchilla_runs.py":
        alpha = next(ln for ln in out.splitlines() if ln.startswith("alpha"))
        assert 0.317 <= float(alpha.split()[1]) <= 0.373  # Besiroglu et al.'s 95% bootstrap interval
        tokens = [float(m) for m in re.findall(r"tokens per parameter ([0-9.]+)", out)]
        assert len(tokens) == 2 and all(12 <= t <= 30 for t in tokens)
    elif name == "risk_aware_plan.py":
        assert "chosen: N" in out and "point estimate: N" in out
        assert number_after("point estimate: N", out) == pytest.approx(9e9, rel=0.3)  # 20 tokens/param at 1e22
    elif name == "compare_sparse_t5.py":
        assert out.strip().splitlines()[-1] in ("best by LOO: frantar", "best by LOO: hossain")
        assert "for extrapolation (leave-future-out, held out C>" in out and "best for extrapolation: " in out
        assert 0.15 <= number_after("b_N", out.split("frantar posterior medians:")[1]) <= 0.35
    elif name == "learning_curves.py":
        finals, curves = (out.split(f"{label}: ")[1].splitlines()[0] for label in ("final checkpoints",
                                                                                    "learning curves"))
        assert finals.startswith("16 rows") and int(curves.split()[0]) > 16 * 20
        for line in (finals, curves):
            assert number_after("median relative error", line) < 0.05  # 8.7B runs at 2.3-3.1 nats
            assert 4 <= number_after("90% coverage", line) <= 8
    elif name == "pooled_families.py":
        assert 0.15 <= number_after("alpha: population median", out) <= 0.5
        assert 2.2 <= number_after("predicted median", out) <= 2.6  # C4 at 8.7B: 2.34-3.12 over epochs 1-44
        assert 'name = "chinchilla-pooled-families"' in out
    elif name == "next_runs.py":
        assert "decision at 5.76e+23 FLOPs (mean)" in out
        assert "run(s) advised" in out or "not worth their cost" in out
    else:
        assert 3 <= number_after("R_D_star: median", out) <= 30
        published = out.split("at the published constants")[1]
        assert re.search(r"1(\.0+)?e\+22\s+7\.0\de\+09\s+2\.37e\+11\s+9\.4", published), published


@pytest.mark.parametrize("name", sorted(TINY))
def test_example_without_data_says_so_and_exits_cleanly(name, tmp_path):
    proc = run_example(name, "--data", str(tmp_path / "absent.csv"))
    assert "not found: this example needs ../shared/data" in proc.stdout
