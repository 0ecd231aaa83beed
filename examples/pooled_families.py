"""Partial pooling across four model families: Chinchilla, datablations C4 and OSCAR, Frantar's dense T5.

Fits one pooled law (``bl.fit(law, table, group="family")``) whose exponents come from a population with a
learned spread, then: the spread of each exponent, each family's exponents, a prediction for C4 at 8.7B
parameters from C4's view of the pooled fit (an ordinary Fit), the exponents a new family would start from,
and those as a catalogue entry.

    python examples/pooled_families.py [--chains 2] [--draws 300] [--tune 500] [--data FOLDER] [--no-retry]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bayeslaw as bl
from bayeslaw.families import four_families
from bayeslaw.predict import predict

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the folder of the shared data")
    parser.add_argument("--law", default="chinchilla")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="no second, longer attempt when the fit fails its convergence checks")
    args = parser.parse_args()
    if not (args.data / "datablations_losses.csv").is_file():
        print(f"{args.data} not found: this example needs ../shared/data beside the repository")
        return 0
    table = four_families(args.data)
    held = table["held_out"] & (table["family"] == "c4")
    runs = table[~held].drop(columns="held_out")
    print(", ".join(f"{name}: {n} runs" for name, n in runs["family"].value_counts(sort=False).items()))
    pooled = bl.fit(args.law, runs, group="family", chains=args.chains, draws=args.draws, tune=args.tune,
                    seed=args.seed, retry=args.retry)
    print(pooled.diagnostics)
    spreads = pooled.spreads()
    print("\npopulation (exponents; spread s on the log scale, median and 90% interval):")
    for name, row in spreads.iterrows():
        print(f"{name}: population median {row['population_median']:.3f}, spread {row['spread_median']:.3f} "
              f"[{row['spread_lo']:.3f}, {row['spread_hi']:.3f}]; by family "
              + ", ".join(f"{f} {row[f'{name}_{f}']:.3f}" for f in pooled.families))
    c4 = pooled.family("c4")
    truth = table[held]
    summary = predict(c4, N=truth["N"].to_numpy(), D=truth["D"].to_numpy()).summary()
    lo, hi = summary["90% lo"].to_numpy(), summary["90% hi"].to_numpy()
    inside = int(((truth["loss"].to_numpy() >= lo) & (truth["loss"].to_numpy() <= hi)).sum())
    print(f"\nC4 at 8.7B parameters (held out; {len(truth)} runs, loss {truth['loss'].min():.3f}-"
          f"{truth['loss'].max():.3f}): predicted median {summary['median'].iloc[0]:.3f}, "
          f"90% interval [{lo[0]:.3f}, {hi[0]:.3f}], covering {inside} of {len(truth)}")
    priors = pooled.population_priors()
    print("\na new family's exponent priors: " + ", ".join(f"{k} {p.describe()}"
                                                            for k, p in priors.items()))
    print("\n" + pooled.catalogue_entry(f"{args.law}-pooled-families", source="bayeslaw examples/pooled_families.py"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
