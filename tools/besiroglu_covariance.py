"""Regenerate the [uncertainty] block of models/chinchilla-besiroglu2024.toml from the Chinchilla runs.

Besiroglu et al. 2024 publish marginal bootstrap SEs but no correlations. This script reruns their
protocol (``bayeslaw.bootstrap``: Huber likelihood with a fitted scale, BFGS, a bootstrap over runs)
on the 240 kept runs, prints the point fit, the SE ratios and the correlations on stderr, and prints
the TOML block (the reconstructed correlations scaled by the published SEs) on stdout:

    python tools/besiroglu_covariance.py ../shared/data --resamples 4000 --seed 0

A tool of the repository, not part of the installed package (the wheel ships ``bayeslaw/`` only).
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bayeslaw.bootstrap import BESIROGLU_SE, COLUMNS, bootstrap, huber_fit, summarise
from bayeslaw.datasets import chinchilla_runs

DATA_FILE = "chinchilla_epoch_extracted.csv"


LABEL = ("published bootstrap SEs, Besiroglu et al. 2024; correlations reconstructed by bayeslaw with their "
         "protocol on the same 240 runs")


def besiroglu_covariance_toml(boot: pd.DataFrame, resamples: int, seed: int) -> str:
    """The [uncertainty] block: reconstructed correlations scaled by the published marginal SEs."""
    info = summarise(boot)
    corr = info["corr"].to_numpy()
    sd = np.array([BESIROGLU_SE[c] for c in COLUMNS])
    cov = corr * np.outer(sd, sd)
    worst = float(np.max(np.abs(info["ratio"] - 1)))
    rows = ",\n".join("  [" + ", ".join(f"{v:.8e}" for v in row) + "]" for row in cov)
    names = ["ln~A", "ln~B", "ln~E", "alpha", "beta"]  # "~": a space that textwrap does not break
    pairs = ", ".join(f"{names[i]}-{names[j]} {corr[i, j]:+.3f}" for i in range(5) for j in range(i + 1, 5))
    ratios = ", ".join(f"{n} {v:.3f}" for n, v in zip([*names, "a"], info["ratio"], strict=True))
    text = (f"Means: the published point estimates. Marginal SDs: the published bootstrap SEs (4,000 resamples) "
            f"of ln~A, ln~B, ln~E (0.258, 0.421, 0.014; A, B, E are drawn on the log scale, their bootstrap being "
            f"right-skewed) and of alpha, beta (0.0154, 0.0206). Correlations: not published; reconstructed by "
            f"bayeslaw with the authors' protocol (Huber likelihood on log loss in the log-sum-exp form, delta "
            f"1e-3, fitted scale, BFGS; the point fit reproduces the published estimates) on the same 240 runs: "
            f"{resamples} resamples, seed {seed}; regenerate with `python tools/besiroglu_covariance.py "
            f"../shared/data --resamples {resamples} --seed {seed}`. That bootstrap reproduces the "
            f"published marginal SEs within {math.ceil(100 * worst)}% (ratios: {ratios}). Correlations: {pairs}. "
            f"A multivariate normal leaves out the bootstrap's skew and its curvature along the ln~A-alpha and "
            f"ln~B-beta ridges.")
    note = "\n".join(textwrap.wrap(text, 104, break_on_hyphens=False)).replace("~", " ")
    return f'''[uncertainty]
kind = "covariance"
label = "{LABEL}"
note = """
{note}
"""
# covariance of (ln A, ln B, ln E, alpha, beta): reconstructed correlations x published SEs
matrix = [
{rows},
]

[uncertainty.params]
A = {{ scale = "log" }}
B = {{ scale = "log" }}
E = {{ scale = "log" }}
alpha = {{}}
beta = {{}}
'''


def main(argv: Sequence[str] | None = None) -> int:
    """``python tools/besiroglu_covariance.py DATA [--resamples N] [--seed S] [--save CSV]``: the block on stdout."""
    parser = argparse.ArgumentParser(prog="python tools/besiroglu_covariance.py", description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help=f"folder holding {DATA_FILE} (the project keeps it in ../shared/data)")
    parser.add_argument("--resamples", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="also write the per-resample estimates to this CSV")
    args = parser.parse_args(argv)
    path = args.data / DATA_FILE
    if not path.is_file():
        parser.error(f"{path}: no such file")
    runs = chinchilla_runs(path)
    N, C, loss = runs["Model Size"].to_numpy(), runs["Training FLOP"].to_numpy(), runs["loss"].to_numpy()
    D = C / (6 * N)
    point = huber_fit(N, D, loss)
    print("# point fit:", ", ".join(f"{c} {point[c]:.5f}" for c in COLUMNS), file=sys.stderr)
    tic = time.perf_counter()
    boot = bootstrap(N, D, loss, args.resamples, args.seed)
    seconds = time.perf_counter() - tic
    print(f"# {args.resamples} resamples in {seconds:.0f} s ({1000 * seconds / args.resamples:.0f} ms a refit)",
          file=sys.stderr)
    if args.save:
        boot.to_csv(args.save, index=False)
    info = summarise(boot)
    print("# SE ratios to the published:\n" + info["ratio"].round(3).to_string(), file=sys.stderr)
    print("# correlations:\n" + info["corr"].round(3).to_string(), file=sys.stderr)
    print(besiroglu_covariance_toml(boot, args.resamples, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
