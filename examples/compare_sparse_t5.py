"""Compare sparse and dense scaling laws on Frantar et al.'s T5/C4 runs at several sparsities.

Fits Frantar et al.'s L(S, N, D), Hossain et al.'s generalised Eq 7 and Chinchilla's dense L(N, D)
(which sees only the non-zero parameters and ignores sparsity) to the same 48 runs, then ranks
them for extrapolation (leave-future-out: refitted without the largest-compute fifth of the runs,
scored on it) and by PSIS-LOO with stacking weights, and prints each sparse law's key exponents.

    python examples/compare_sparse_t5.py [--draws 1000] [--chains 4] [--data PATH] [--no-retry]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bayeslaw as bl
from bayeslaw.compare import compare
from bayeslaw.datasets import frantar_t5_runs

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "frantar_t5_sparsity.csv"
# the sparse laws' posteriors have long ridges on 48 runs: small steps (see tests/test_laws_sparse.py)
LAWS = {"frantar": 0.95, "hossain": 0.99, "chinchilla": 0.9}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="no second, longer attempt when a fit fails its convergence checks")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data} not found: this example needs ../shared/data beside the repository")
        return 0
    runs = frantar_t5_runs(args.data)
    print(f"{len(runs)} runs, sparsity {sorted(runs['S'].unique())}")
    fits = {}
    for name, target_accept in LAWS.items():
        columns = ["S", "N", "D", "loss"] if "S" in bl.get_law(name).inputs else ["N", "D", "loss"]
        fits[name] = bl.fit(name, runs[columns], chains=args.chains, draws=args.draws, tune=args.tune,
                            seed=args.seed, target_accept=target_accept, retry=args.retry)
        print(f"{name}: {fits[name].diagnostics}")
    result = compare(fits)
    print(f"\nfor extrapolation (leave-future-out, held out {result.split['rule']}: {result.split['n_heldout']} runs; "
          "log predictive density per held-out run, higher is better):")
    columns = ["rank", "lpd_per_run", "coverage_90", "median_relative_error"]
    print(result.extrapolation[columns].to_string(float_format="%.3g"))
    table = result.table
    print("\nPSIS-LOO ranking (elpd on log loss; higher is better):")
    print(table[["rank", "elpd", "elpd se", "elpd diff", "diff se", "weight"]].to_string(float_format="%.3g"))
    for name in ("frantar", "hossain"):
        summary = fits[name].summary()
        shown = [p for p in fits[name].law.published if summary.loc[p, "median"] < 10]
        print(f"\n{name} posterior medians: " + ", ".join(f"{p} {summary.loc[p, 'median']:.3g}" for p in shown))
    print(f"\nbest for extrapolation: {result.extrapolation.index[0]}")
    print(f"best by LOO: {table.index[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
