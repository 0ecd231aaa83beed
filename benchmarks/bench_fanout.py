"""Fan-out speed: `bayeslaw compare` (3 laws) and `bayeslaw calibrate` (2 splits) on the kept Chinchilla runs,
one fit after another (--workers 1) against local processes (--workers 2), each command a fresh process as a
user runs it (start-up, worker spawn and compiled-density loading included), and their outputs compared.

    python benchmarks/bench_fanout.py [--chains 4] [--draws 1000] [--workers 2]

Prints wall seconds per command and mode, the ratio serial / fanned out, CPU seconds (user + system, worker
processes included: what fanning out costs in start-up), and whether the two JSON outputs are identical
(they must be: the seeds are fixed before fan-out).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LAWS = "chinchilla,power-C,kaplan-ND"
SPLITS = ("C>1e20", "C>1e21")


def timed(command: list[str]) -> tuple[float, float, str, int]:
    """Wall seconds, CPU seconds (user + system, its worker processes included), stdout and exit code of
    ``python -m bayeslaw COMMAND``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bayeslaw", *command], capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode not in (0, 3):  # 3: a fit did not converge (still a result)
        raise SystemExit(f"bayeslaw {' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, cpu, done.stdout, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="local processes of the fanned-out run")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the shared run tables")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"no data folder {args.data}; give --data")
    from bayeslaw import datasets

    frame = datasets.chinchilla_runs(args.data / "chinchilla_epoch_extracted.csv")  # the 240 kept runs
    sampling = ["--chains", str(args.chains), "--draws", str(args.draws), "--seed", "0", "--json"]
    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chinchilla-kept.csv"
        frame.to_csv(path, index=False)
        commands = {f"compare --law {LAWS}": ["compare", str(path), "--law", LAWS],
                    f"calibrate --holdout {' --holdout '.join(SPLITS)}":
                        ["calibrate", str(path), *[a for s in SPLITS for a in ("--holdout", s)]]}
        for name, command in commands.items():
            serial, serial_cpu, serial_out, code = timed([*command, *sampling, "--workers", "1"])
            fanned, fanned_cpu, fanned_out, _ = timed([*command, *sampling, "--workers", str(args.workers)])
            rows.append((name, serial, fanned, serial_cpu, fanned_cpu, serial_out == fanned_out, code))
            print(f"  {name}: {serial:.1f} s serial, {fanned:.1f} s on {args.workers} processes", file=sys.stderr)
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)", file=sys.stderr)
    print(f"| command ({len(frame)} runs, {args.chains} chains x {args.draws} draws) | serial s | "
          f"{args.workers} processes s | speed-up | CPU s serial / {args.workers} processes | same output |")
    print("|---|---|---|---|---|---|")
    for name, serial, fanned, serial_cpu, fanned_cpu, same, code in rows:
        print(f"| `{name}` | {serial:.1f} | {fanned:.1f} | {serial / fanned:.2f}x | "
              f"{serial_cpu:.0f} / {fanned_cpu:.0f} | {'yes' if same else 'NO'}"
              f"{' (exit 3: not converged)' if code == 3 else ''} |")
    return 0 if all(row[5] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
