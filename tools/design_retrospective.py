"""The retrospective of run advice on the real Chinchilla runs, for the README's table (not shipped).

Fits the kept runs with C <= 1e19 (the start) and all 240 (the reference), then for each spend compares the
decision at 5.76e23 FLOPs after the advised, cheapest-first and random runs from 1e19 < C <= 1e21
(``bayeslaw.retrospective``). Refits (2 chains x 500 draws) replace the reweighting where its ESS falls below 400.

    python tools/design_retrospective.py DATA [--seed 7] [--spends 1e20,3e20,1e21] [--orders 20]
    python tools/design_retrospective.py DATABLATIONS --datablations [--spends 3e21,1e22] [--orders 20]

With --datablations: the final checkpoints of the C4 runs (Muennighoff et al. 2023), the muennighoff law with
the example's priors and Laplace noise; start: the 12 runs of at most 4 epochs, pool: the 12 of 5 epochs or more,
decision: 1e22 FLOPs with 25e9 unique tokens (the example's), reference: the fit of all 24.
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
    parser.add_argument("--datablations", action="store_true", help="DATA is datablations_losses.csv")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.datablations:
        return data_constrained(args)
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


DC_PRIORS = {"alpha": "LogNormal(mu=-1.05, sigma=0.2)", "beta": "LogNormal(mu=-1.05, sigma=0.2)"}
DC_BUDGET, DC_UNIQUE = 1e22, 25e9


def data_constrained(args) -> None:
    from bayeslaw.datasets import datablations_runs

    runs = datablations_runs(args.data, "c4")[["N", "D", "U", "loss"]]
    epochs = runs["D"] / runs["U"]
    settings = {"priors": DC_PRIORS, "likelihood": "laplace"}
    start = bl.fit("muennighoff", runs[epochs < 4.5].reset_index(drop=True), seed=args.seed, **settings)
    full = bl.fit("muennighoff", runs, seed=7, **settings)
    pool = runs[epochs >= 4.5].reset_index(drop=True)
    reference = decision_summary(full, DC_BUDGET, unique_tokens=DC_UNIQUE)
    now = decision_summary(start, DC_BUDGET, unique_tokens=DC_UNIQUE)
    began = time.time()
    out = retrospective(start, pool, DC_BUDGET, [float(s) for s in args.spends.split(",")], reference,
                        orders=args.orders, refit={"chains": 2, "draws": 500}, unique_tokens=DC_UNIQUE)
    pd.set_option("display.width", 250)
    print(f"start ({len(start.runs)} runs): {start.diagnostics}; median N_opt {now['median']:.3g}, width "
          f"{now['width']:.3f}")
    print(f"reference (all 24): median N_opt {reference['median']:.3g}, 90% width {reference['width']:.3f} (log N)")
    print(out.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(f"refits {out.attrs['refits']}, {time.time() - began:.0f} s")


if __name__ == "__main__":
    main()
