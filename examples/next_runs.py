"""Which runs to train next, on the real Chinchilla runs below 1e19 FLOPs.

Fits the Chinchilla law to the kept runs with C <= 1e19 (nearly one isoFLOP profile), then ranks the remaining
runs up to 1e21 FLOPs as candidates (their losses are not used) by the expected reduction of the decision's
loss at 5.76e23 FLOPs (expected regret by default, or CVaR) per FLOP of the run, and picks a batch greedily
under a FLOP spend (``bayeslaw.design.advise``; ``bayeslaw next`` on the command line).

    python examples/next_runs.py [--spend 1e20] [--risk mean] [--draws 1000] [--data PATH] [--no-retry]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bayeslaw as bl
from bayeslaw.datasets import chinchilla_runs
from bayeslaw.design import advise

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_epoch_extracted.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--budget", type=float, default=5.76e23)
    parser.add_argument("--spend", type=float, default=1e20)
    parser.add_argument("--risk", default="mean", help="mean (expected regret), quantile:Q or cvar:Q")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--outcomes", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="no second, longer attempt when a fit fails its convergence checks")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data} not found: this example needs ../shared/data beside the repository")
        return 0
    runs = chinchilla_runs(args.data)
    flops = runs["Training FLOP"]
    start = runs[flops <= 1e19].reset_index(drop=True)
    pool = runs[(flops > 1e19) & (flops <= 1e21)]
    result = bl.fit("chinchilla", start, chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed,
                    retry=args.retry)
    print(f"fit on {len(start)} runs with C <= 1e19: {result.diagnostics}")
    candidates = {"N": pool["Model Size"].to_numpy(), "C": flops[pool.index].to_numpy()}
    advice = advise(result, args.budget, args.spend, candidates=candidates, risk=args.risk, outcomes=args.outcomes)
    print(advice)
    print(advice.picks.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
