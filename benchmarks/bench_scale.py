"""Benchmark: cost of a fit against the number of runs (time, peak memory and the log-log slope).

Each size is fitted in a fresh process (the installed ``bayeslaw fit`` command on a synthetic Chinchilla
table of that many runs, default discrepancy, one attempt: ``--no-retry``), whose own peak resident memory is
read with ``os.wait4``; the times include the process's start (about 2 s of imports).
The slope is the least-squares slope of log time against log runs over the sizes from 1e4 up, where the
gradient's cost grows with the runs rather than with the per-call overhead: 1 is linear cost.
``--samplers nutpie,jax`` fits every size with each sampler in turn (``fit --sampler``), in the same run, and gives
each one's time as a ratio to the first sampler's; ``nutpie:no-whiten`` is nutpie without the whitening that
tables of 1e4 runs or more get by default (``fit --no-whiten``), so ``--samplers nutpie:no-whiten,nutpie`` measures
what whitening buys; ``nutpie:callbacks`` samples through the C density's callbacks (``BAYESLAW_NATIVE=0``;
the default samples natively, as ``nutpie:native``), so ``--samplers nutpie:callbacks,nutpie`` measures what native
sampling buys; ``nutpie:one-core`` samples through the callbacks with ``OMP_NUM_THREADS=1``, so ``--samplers
nutpie:one-core,nutpie:callbacks`` measures what sharing a large table's gradient among
the cores buys (``bayeslaw.sampling.PARALLEL_ROWS``). Exit 3 (completed, not converged) is reported as "no" in the
converged column.
Run: ``python benchmarks/bench_scale.py`` (1e3 to 1e5 runs, 4 chains x 1000 draws: about 15 minutes on 2 idle
cores); ``--sizes 1e3,1e4,1e5,1e6 --draws 200 --tune 200`` for the largest table in bounded time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def runs_table(n_runs: int):
    """``n_runs`` runs of the Chinchilla law (Besiroglu constants) with 1% noise, N 1e7-1e10, 1-100 tokens/param
    (also the GPU check's table, benchmarks/gpu_check.py)."""
    import pandas as pd

    from bayeslaw.laws import get_law

    law = get_law("chinchilla")
    rng = np.random.default_rng(0)
    n = 10 ** rng.uniform(7, 10, n_runs)
    d = n * 10 ** rng.uniform(0, 2, n_runs)
    noise = np.exp(0.01 * rng.standard_normal(n_runs))
    loss = law.evaluate(law.presets["besiroglu2024"].values, {"N": n, "D": d}) * noise
    return pd.DataFrame({"N": n, "D": d, "loss": loss})


def table(n_runs: int, path: Path) -> None:
    """:func:`runs_table` written to ``path``."""
    runs_table(n_runs).to_csv(path, index=False)


# sampler options that are settings of the fit's environment, not options of `bayeslaw fit`
ENVIRONMENTS = {"native": {"BAYESLAW_NATIVE": "1"}, "callbacks": {"BAYESLAW_NATIVE": "0"},
                "one-core": {"BAYESLAW_NATIVE": "0", "OMP_NUM_THREADS": "1"}}


def measure(n_runs: int, sampler: str, folder: Path, args: argparse.Namespace) -> tuple[float, float, int]:
    """Wall seconds, peak GiB and exit code of one fit in a fresh process."""
    path = folder / f"runs_{n_runs}.csv"
    if not path.is_file():
        table(n_runs, path)
    exe = shutil.which("bayeslaw") or sys.exit("the bayeslaw command is not installed")
    name, _, option = sampler.partition(":")
    env = dict(os.environ)
    if option in ENVIRONMENTS:
        env.update(ENVIRONMENTS[option])
        option = ""
    command = [exe, "fit", str(path), "--chains", str(args.chains), "--draws", str(args.draws), "--tune",
               str(args.tune), "--seed", "0", "--no-retry", "--sampler", name, "--no-progress",
               "--out", str(folder / f"fit_{n_runs}.nc"), *([f"--{option}"] if option else [])]
    start = time.perf_counter()
    with open(folder / "log", "w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 2**20, os.waitstatus_to_exitcode(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e3,1e4,1e5", help="numbers of runs, comma-separated")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--samplers", default="nutpie", help="samplers, comma-separated; ratios are to the first")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    samplers = args.samplers.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n_runs in sizes:
            for sampler in samplers:  # in turn at each size, so that a change in the machine's load falls on all
                seconds, peak, code = measure(n_runs, sampler, Path(tmp), args)
                rows.append((sampler, n_runs, seconds, peak, code))
                print(f"{sampler:>16} {n_runs:>9,} runs: {seconds:8.1f} s, peak {peak:5.2f} GiB, exit {code}",
                      flush=True)
    print(f"\n{args.chains} chains x {args.draws} draws after {args.tune} tuning steps, one attempt, default "
          "discrepancy")
    print(f"{'sampler':>16}{'runs':>10}{'seconds':>10}{'peak GiB':>10}{'ms per 1k runs':>16}{'vs smallest':>13}"
          f"{'vs ' + samplers[0]:>20}{'converged':>11}")
    first = {n: s for sampler, n, s, _, _ in rows if sampler == samplers[0]}
    for sampler in samplers:
        mine = [row for row in rows if row[0] == sampler]
        base = mine[0][2]
        for _, n_runs, seconds, peak, code in mine:
            print(f"{sampler:>16}{n_runs:>10,}{seconds:>10.1f}{peak:>10.2f}{1e6 * seconds / n_runs:>16.1f}"
                  f"{seconds / base:>12.1f}x{seconds / first[n_runs]:>19.2f}x{'yes' if code == 0 else 'no':>11}")
        big = [(n, s) for _, n, s, _, _ in mine if n >= 10_000]
        if len(big) >= 2:
            slope = np.polyfit(np.log([n for n, _ in big]), np.log([s for _, s in big]), 1)[0]
            print(f"{sampler}: log-log slope of time against runs from 1e4 up: {slope:.2f} (1: linear)")
    return 0 if all(code in (0, 3) for *_, code in rows) else 1  # 3: completed but not converged


if __name__ == "__main__":
    raise SystemExit(main())
