"""Plan a training run when unique data is scarce, with Muennighoff et al.'s data-constrained law.

Fits the law (base constants and the repetition constants R_D*, R_N* together) to the final
checkpoints of the datablations C4 runs (2.8B to 8.7B parameters, 1 to 44 epochs), then, for a stock of
unique tokens, gives per budget the posterior of the compute-optimal N, D and epochs, beside the
allocation at the published constants (whose base constants were fitted to Chinchilla's C4 runs).

    python examples/data_constrained_plan.py [--unique-tokens 25e9] [--budget 1e21 1e22 1e23] [--data PATH] [--no-retry]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bayeslaw as bl
from bayeslaw.datasets import datablations_runs
from bayeslaw.plan import plan
from bayeslaw.posterior import from_constants

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "datablations_losses.csv"
# 24 runs at three compute budgets along one N/D line cannot separate the two exponents: Chinchilla-
# scale priors (Hoffmann 0.34/0.28, Besiroglu 0.35/0.37, Muennighoff 0.35); Laplace noise is the Bayesian
# counterpart of the Huber loss the published fits minimise.
PRIORS = {"alpha": "LogNormal(mu=-1.05, sigma=0.2)", "beta": "LogNormal(mu=-1.05, sigma=0.2)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--unique-tokens", type=float, default=25e9)
    parser.add_argument("--budget", type=float, nargs="+", default=[1e21, 1e22, 1e23])
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="no second, longer attempt when a fit fails its convergence checks")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data} not found: this example needs ../shared/data beside the repository")
        return 0
    runs = datablations_runs(args.data, "c4")
    result = bl.fit("muennighoff", runs[["N", "D", "U", "loss"]], priors=PRIORS, likelihood="laplace",
                    chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed, retry=args.retry)
    print(f"fit on {len(runs)} C4 runs: {result.diagnostics}")
    summary = result.summary()
    for name in ("R_D_star", "R_N_star", "alpha", "beta", "E"):
        print(f"  {name}: median {summary.loc[name, 'median']:.3g} "
              f"[94%: {summary.loc[name, 'hdi_3%']:.3g}, {summary.loc[name, 'hdi_97%']:.3g}]")
    columns = ["N_opt median", "D_opt median", "epochs median", "epochs 90% lo", "epochs 90% hi", "loss median"]
    print(f"\nwith {args.unique_tokens:.3g} unique tokens, posterior of the fit:")
    print(plan(result, args.budget, unique_tokens=args.unique_tokens).summary((0.9,))[columns]
          .to_string(float_format="%.3g"))
    published = plan(from_constants("muennighoff", "muennighoff2023"), args.budget, unique_tokens=args.unique_tokens)
    print("\nat the published constants (Muennighoff et al. 2023):")
    print(published.summary((0.9,))[["N_opt median", "D_opt median", "epochs median", "loss median"]]
          .to_string(float_format="%.3g"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
