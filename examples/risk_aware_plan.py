"""A risk-aware allocation against the point-estimate one, on the real Chinchilla runs.

Fits the Chinchilla law, then for each budget commits to one (N, D) that minimises a risk measure
of the posterior predictive loss (CVaR at 0.9 by default: the mean of the worst 10% of outcomes),
and sets it beside the allocation a point estimate would choose: N, tokens per parameter, the risk,
the 90% interval of the loss, and the expected regret against each posterior draw's own optimum.

    python examples/risk_aware_plan.py [--risk cvar:0.9] [--budget 1e22 1e24] [--draws 1000] [--data PATH] [--no-retry]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bayeslaw as bl
from bayeslaw.datasets import chinchilla_runs
from bayeslaw.risk import decide

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_epoch_extracted.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--risk", default="cvar:0.9", help="mean, quantile:Q, cvar:Q or prob:TARGET")
    parser.add_argument("--budget", type=float, nargs="+", default=[1e22, 5.76e23, 1e25])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="no second, longer attempt when a fit fails its convergence checks")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data} not found: this example needs ../shared/data beside the repository")
        return 0
    result = bl.fit("chinchilla", chinchilla_runs(args.data), chains=args.chains, draws=args.draws,
                    tune=args.tune, seed=args.seed, retry=args.retry)
    print(f"fit: {result.diagnostics}")
    decision = decide(result, args.budget, args.risk, seed=args.seed)
    risk = str(decision.risk)
    for budget in decision.table.index:
        print(f"\nC = {budget:.3g} FLOPs")
        for label, allocation in decision.allocations.items():
            row = allocation.loc[budget]
            print(f"  {label:>14}: N {row['N']:.3e}, {row['tokens_per_param']:.1f} tokens/param, "
                  f"{risk} {row['risk']:.4f}, loss 90% [{row['loss_q05']:.4f}, {row['loss_q95']:.4f}], "
                  f"expected regret {row['expected_regret']:.2e} nats")
    return 0


if __name__ == "__main__":
    sys.exit(main())
