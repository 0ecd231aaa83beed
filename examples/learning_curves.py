"""Learning curves against final losses: predict the 8.7B datablations runs from the smaller runs' curves.

Fits the data-constrained law of Muennighoff et al. 2023 to the C4 runs at 2.8B and 4.2B parameters twice:
once to their final checkpoints only (16 rows), once to every checkpoint of their learning curves (the run id
column groups them; a run offset, noise correlated along each run and a term for the cosine schedule's decay
still to come, ``bayeslaw.curves``). Then scores both on the final losses of the 8 runs at 8.7B parameters:
median relative error, coverage of the 90% predictive intervals and log predictive density.

    python examples/learning_curves.py [--law muennighoff] [--draws 500] [--data PATH] [--no-retry]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bayeslaw as bl
from bayeslaw.data import load_runs
from bayeslaw.datasets import datablations_curves, datablations_runs
from bayeslaw.holdout import score_heldout, split_runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "datablations_losses.csv"
HELD_OUT = 5e9  # runs with more parameters than this (the 8.7B runs) are predicted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--law", default="muennighoff")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="no second, longer attempt when a fit fails its convergence checks")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data} not found: this example needs ../shared/data beside the repository")
        return 0
    finals = datablations_runs(args.data, "c4")[["N", "D", "U", "loss"]]
    every = load_runs(finals, args.law)
    _, heldout = split_runs(every, every.frame["N"].to_numpy() > HELD_OUT)
    curves = datablations_curves(args.data, "c4")
    settings = dict(chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed, retry=args.retry)
    fits = {
        "final checkpoints": bl.fit(args.law, finals[finals["N"] < HELD_OUT], **settings),
        "learning curves": bl.fit(args.law, curves[curves["N"] < HELD_OUT], **settings),
    }
    print(f"predicting the final losses of the {len(heldout)} runs at 8.7B parameters")
    for name, result in fits.items():
        rows = result.info.get("curves", {}).get("checkpoints", len(result.runs))
        score = score_heldout(result, heldout, seed=args.seed)
        print(f"{name:>17}: {rows} rows, median relative error {score['median_relative_error']:.4f}, "
              f"90% coverage {round(score['coverage_90'] * len(heldout))} of {len(heldout)}, "
              f"lpd {score['lpd']:.2f}; converged {result.converged}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
