"""Fit the Chinchilla law to the real Chinchilla runs and plan compute-optimal allocations.

Besiroglu et al. 2024 protocol: drop the 5 runs with the largest loss (240 kept), D = C / (6 N).
Prints the posterior summary beside the replication's estimates, then for each budget the
distribution of the compute-optimal N, D and tokens per parameter (Gopher's 5.76e23 FLOPs by default).

    python examples/fit_chinchilla_runs.py [--draws 1000] [--chains 4] [--budget 1e22 5.76e23] [--data PATH]
                                           [--no-retry]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import bayeslaw as bl
from bayeslaw.datasets import chinchilla_runs
from bayeslaw.plan import plan

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_epoch_extracted.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--budget", type=float, nargs="+", default=[5.76e23])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-retry", dest="retry", action="store_false",
                        help="no second, longer attempt when a fit fails its convergence checks")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data} not found: this example needs ../shared/data beside the repository")
        return 0
    result = bl.fit("chinchilla", chinchilla_runs(args.data), chains=args.chains, draws=args.draws,
                    tune=args.tune, seed=args.seed, retry=args.retry)
    print(result.summary()[["median", "hdi_3%", "hdi_97%", "ess_bulk", "r_hat"]].to_string(float_format="%.4g"))
    print(f"\n{result.diagnostics}")
    published = result.law.published_with_derived(result.law.presets["besiroglu2024"].values)
    print("\nBesiroglu et al. 2024 point estimates: "
          + ", ".join(f"{k} {published[k]:.4g}" for k in ("E", "alpha", "beta", "a")))
    table = plan(result, args.budget).summary((0.9,))
    print("\ncompute-optimal allocation (posterior median and 90% interval):")
    for budget, row in table.iterrows():
        print(f"at C = {budget:.3g}: N_opt {row['N_opt median']:.3e} [{row['N_opt 90% lo']:.3e}, "
              f"{row['N_opt 90% hi']:.3e}], D_opt {row['D_opt median']:.3e}, tokens per parameter "
              f"{row['tokens_per_param median']:.1f} [{row['tokens_per_param 90% lo']:.1f}, "
              f"{row['tokens_per_param 90% hi']:.1f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
