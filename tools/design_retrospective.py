"""The retrospective of run advice on the real Chinchilla runs, for the README's table (not shipped).

Fits the kept runs with C <= 1e19 (the start) and all 240 (the reference), then for each spend compares the
decision at 5.76e23 FLOPs after the advised, cheapest-first and random runs from 1e19 < C <= 1e21
(``bayeslaw.retrospective``). Refits (2 chains x 500 draws) replace the reweighting where its ESS falls below 400.

    python tools/design_retrospective.py DATA [--seed 7] [--spends 1e20,3e20,1e21] [--orders 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

import bayeslaw as bl
from bayeslaw.datasets import chinchilla_runs
from bayeslaw.design import decision_summary
from bayeslaw.retrospective import retrospective

BUDGET = 5.76e23


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--seed", type=int, default=7, help="sampler seed of the start fit")
    parser.add_argument("--spends", default="1e20,3e20,1e21")
    parser.add_argument("--orders", type=int, default=20, help="random orders averaged")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    runs = chinchilla_runs(args.data)
    start = bl.fit("chinchilla", runs[runs["Training FLOP"] <= 1e19].reset_index(drop=True), seed=args.seed)
    full = bl.fit("chinchilla", runs, seed=7)
    frame = full.runs.frame
    c = 6 * frame["N"] * frame["D"]
    pool = frame[(c > 1.0001e19) & (c <= 1e21)].reset_index(drop=True)
    reference = decision_summary(full, BUDGET)
    began = time.time()
    out = retrospective(start, pool, BUDGET, [float(s) for s in args.spends.split(",")], reference,
                        orders=args.orders, refit={"chains": 2, "draws": 500})
    pd.set_option("display.width", 250)
    print(f"reference (all 240): median N_opt {reference['median']:.3g}, 90% width {reference['width']:.3f} (log N)")
    print(out.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"refits {out.attrs['refits']}, {time.time() - began:.0f} s")


if __name__ == "__main__":
    main()
