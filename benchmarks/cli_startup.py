"""Start-up time of commands that need no model (`bayeslaw laws`, `--help`, `--version`) against `import pymc`.

Each command runs in a fresh interpreter, alternating with the others, ``--repeat`` times; the median wall time of
each is printed with its ratio to `python -c "import pymc"` measured in the same run, and whether PyMC or
PyTensor was imported (they must not be: tests/test_cli_json.py checks it).

    python benchmarks/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PROBE = ("import sys, runpy; sys.argv = ['bayeslaw', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('bayeslaw', run_name='__main__')\nexcept SystemExit:\n    pass\n"
         "print('heavy:', sorted({m.split('.')[0] for m in sys.modules} & {'pymc', 'pytensor'}), file=sys.stderr)")
COMMANDS = {
    "python -c 'import pymc'": [sys.executable, "-c", "import pymc"],
    "bayeslaw laws": [sys.executable, "-m", "bayeslaw", "laws"],
    "bayeslaw --help": [sys.executable, "-m", "bayeslaw", "--help"],
    "bayeslaw --version": [sys.executable, "-m", "bayeslaw", "--version"],
    "python -c pass": [sys.executable, "-c", "pass"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeat):
        for name, command in COMMANDS.items():
            start = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c 'import pymc'"])
    print(f"| command | median s ({args.repeat} runs) | ratio to import pymc | imports pymc/pytensor |")
    print("|---|---|---|---|")
    for name, values in times.items():
        heavy = "-"
        if name.startswith("bayeslaw"):
            probe = subprocess.run([sys.executable, "-c", PROBE, *name.split()[1:]], capture_output=True, text=True)
            heavy = probe.stderr.strip().splitlines()[-1].removeprefix("heavy: ")
        print(f"| `{name}` | {statistics.median(values):.2f} | {statistics.median(values) / base:.2f} | {heavy} |")


if __name__ == "__main__":
    main()
