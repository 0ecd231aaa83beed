"""glibc's allocator told to keep freed memory while large tables are sampled (``keep_freed_memory``).

Each gradient over a table of runs allocates and frees temporaries of one float64 per run (8 MB at a million
runs) on each chain's thread. By default glibc hands the freed memory back to the system: a thread's heap that
falls empty is unmapped, a shrinking one is advised away, and arrays above the mmap threshold are mapped and
unmapped on every call. The next gradient then faults every page in again. Three settings keep it (``SETTINGS``):

- mmap threshold 32 MB, the top of glibc's own dynamic range: arrays below it come from the heap;
- top pad 64 MB: heaps keep that much free memory, so an emptied heap is not unmapped;
- trim threshold 1 GB: free memory at a heap's top is not advised away below that.

Measured on ``benchmarks/bench_scale.py``'s table of 1e6 runs (``bayeslaw fit --chains 4 --draws 60 --tune 60``,
2 cores, as ``GLIBC_TUNABLES``): 16.4 million minor page faults and 23.8 s of system time in 117 s without,
0.4 million, 1.0 s and 106 s with all three, peak memory 884 -> 899 MB. Setting only the trim threshold fixes the
mmap threshold at its start (128 kB): 68.6 million faults, 102 s of system time. With the mmap and trim
thresholds but not the top pad: 14.2 million faults, 21.6 s.

The settings are process-wide and stay (glibc has no call to read them back), so they are made only for tables
of ``LARGE_ROWS`` runs or more, where they pay; on other C libraries (macOS, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt's parameters (glibc malloc.h)
SETTINGS = {M_MMAP_THRESHOLD: 32 * 2**20, M_TOP_PAD: 64 * 2**20, M_TRIM_THRESHOLD: 2**30}
LARGE_ROWS = 100_000  # runs from which a sampled table's temporaries (800 kB and up) are kept
ON_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

_kept: bool | None = None


def keep_freed_memory() -> bool:
    """Apply ``SETTINGS`` with glibc's ``mallopt``, once per process; whether they are in force."""
    global _kept
    if _kept is None:
        _kept = False
        if ON_GLIBC:
            try:
                mallopt = ctypes.CDLL(None).mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _kept = all(mallopt(parameter, value) == 1 for parameter, value in SETTINGS.items())
    return _kept
