"""Learning-curve defaults on synthetic ladders: convergence and held-out scores, curves against final losses.

For each ladder size (model sizes, default 3, 4 and 6) and sampler seed (default 0 to 3): learning curves are
drawn from the curve model of ``bayeslaw.curves`` (``synthetic.learning_curves``: the law's first preset, token
multiples 0.5x to 4x of 20 tokens per parameter, 40 checkpoints per run from 2% to 100% of its tokens); the
runs at the largest size are held out. The law is fitted with default settings twice, to the smaller sizes'
curves (``run`` column) and to their final checkpoints only, and both are scored on the held-out final losses
(``holdout.score_heldout``). Prints one row per fit: rows used, converged (and after how many attempts),
median relative error, 50% and 90% coverage, lpd per held-out run, seconds.

    python tools/curves_ladders.py [--law chinchilla] [--sizes 3,4,6] [--seeds 0,1,2,3] [--out FILE.csv]
                                   [--fits curves,finals,independent] [--discrepancy none]

``independent`` fits the curves with every checkpoint an independent run (``likelihood="curve_independent"``);
``--discrepancy none`` scores the law alone.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import bayeslaw as bl
from bayeslaw.data import load_runs
from bayeslaw.errors import ConvergenceWarning
from bayeslaw.holdout import score_heldout, split_runs
from bayeslaw.synthetic import learning_curves

MULTIPLES = (0.5, 1.0, 2.0, 4.0)


def one_ladder(law: str, sizes: int, seed: int, fits: tuple[str, ...] = ("curves", "finals"),
               discrepancy: str | None = "gp") -> list[dict]:
    curves = learning_curves(law, sizes=sizes, multiples=MULTIPLES, seed=seed)
    largest = curves["N"].max()
    finals = curves.loc[curves.groupby("run")["D"].idxmax()].drop(columns="run").reset_index(drop=True)
    runs = load_runs(finals, law)
    _, heldout = split_runs(runs, runs.frame["N"].to_numpy() >= largest)
    kept_curves = curves[curves["N"] < largest]
    kept_finals = finals[finals["N"] < largest].reset_index(drop=True)
    rows = []
    tables = {"curves": (kept_curves, None), "finals": (kept_finals, None),
              "independent": (kept_curves, "curve_independent")}
    for name in fits:
        data, likelihood = tables[name]
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = bl.fit(law, data, seed=seed, likelihood=likelihood, discrepancy=discrepancy)
        seconds = time.perf_counter() - start
        scores = score_heldout(result, heldout, seed=seed)
        rows.append({"sizes": sizes, "seed": seed, "fit": name, "rows": len(data),
                     "used": (result.info.get("curves") or {}).get("checkpoints", len(data)),
                     "converged": bool(result.converged), "attempts": len(result.info["attempts"]),
                     "median_relative_error": scores["median_relative_error"],
                     "coverage_50": scores["coverage_50"], "coverage_90": scores["coverage_90"],
                     "lpd_per_run": scores["lpd_per_run"], "n_heldout": scores["n_heldout"], "seconds": seconds})
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--law", default="chinchilla")
    parser.add_argument("--sizes", default="3,4,6")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--out", default=None)
    parser.add_argument("--fits", default="curves,finals")
    parser.add_argument("--discrepancy", default="gp")
    args = parser.parse_args()
    fits = tuple(args.fits.split(","))
    discrepancy = None if args.discrepancy == "none" else args.discrepancy
    rows = []
    for sizes in (int(s) for s in args.sizes.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            rows += one_ladder(args.law, sizes, seed, fits, discrepancy)
    table = pd.DataFrame(rows)
    if args.out:
        table.to_csv(args.out, index=False)
    summary = table.groupby(["sizes", "fit"]).agg(
        converged=("converged", "sum"), fits=("converged", "size"),
        error=("median_relative_error", "median"), cover90=("coverage_90", "mean"),
        cover50=("coverage_50", "mean"), lpd=("lpd_per_run", "mean"), seconds=("seconds", "median"))
    print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    return 0 if np.isfinite(table["lpd_per_run"]).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
