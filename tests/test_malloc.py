"""bayeslaw._malloc: a large table's gradient temporaries are reused, not faulted in anew on every call."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayeslaw import _malloc

# a gradient's pattern: numba code allocating and freeing five arrays of 1e6 float64 per call, on two threads
PROBE = """
import resource, sys, threading, numpy as np, numba
if sys.argv[1] == "keep":
    from bayeslaw._malloc import keep_freed_memory
    assert keep_freed_memory()
@numba.njit(nogil=True)
def gradient(x):
    a = np.exp(-x); b = a * x + 1.0; c = np.log(b); d = c - a
    return (d * d).sum() + b.sum()
x = np.linspace(0.0, 1.0, 10**6)
gradient(x)
def calls():
    for _ in range(100):
        gradient(x)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
threads = [threading.Thread(target=calls) for _ in range(2)]
[t.start() for t in threads]
[t.join() for t in threads]
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_faults(mode: str) -> int:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=300, cwd=root,
                          check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not _malloc.ON_GLIBC, reason="glibc's settings (elsewhere keep_freed_memory changes nothing)")
def test_kept_memory_is_not_faulted_in_on_every_call():
    """Measured: about 3.1 million minor page faults for the 200 calls with glibc's defaults (the freed arrays
    handed back and faulted in again, 2,000 pages an array), about 16 thousand with the settings."""
    plain, kept = minor_faults("plain"), minor_faults("keep")
    assert plain > 200_000, plain  # the defaults do hand the memory back: the probe measures something
    assert kept < plain / 20, (kept, plain)


def test_settings_apply_once_and_only_where_glibc_is():
    assert _malloc.keep_freed_memory() is _malloc.ON_GLIBC
    assert _malloc.keep_freed_memory() is _malloc.ON_GLIBC  # once per process: the second call changes nothing


@pytest.mark.parametrize("large_rows, expected", [(10, 1), (10**9, 0)])
def test_tables_of_large_rows_or_more_keep_freed_memory(monkeypatch, large_rows, expected):
    import bayeslaw as bl

    calls = []
    monkeypatch.setattr(_malloc, "LARGE_ROWS", large_rows)
    monkeypatch.setattr(_malloc, "keep_freed_memory", lambda: calls.append(1) or True)
    rng = np.random.default_rng(0)
    n, d = 10 ** rng.uniform(7, 9, 12), 10 ** rng.uniform(9, 11, 12)
    runs = pd.DataFrame({"N": n, "D": d, "loss": 1.7 + 400 / n**0.34 + 410 / d**0.28})
    bl.fit("chinchilla", runs, chains=1, draws=20, tune=20, seed=0, retry=False, discrepancy=None)
    assert len(calls) == expected
