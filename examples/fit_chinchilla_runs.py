"""Fit the Chinchilla law to the real Chinchilla runs and compare with the published replication.

Besiroglu et al. 2024 protocol: drop the 5 runs with the largest loss (240 kept), D = C / (6 N).
Prints the posterior summary, the replication's estimates beside it, and the compute-optimal
N and D at Gopher's budget (5.76e23 FLOPs).

    python examples/fit_chinchilla_runs.py [--draws 1000] [--chains 4] [--data PATH]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import bayeslaw as bl
from bayeslaw.laws import chinchilla_optimum

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_epoch_extracted.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--budget", type=float, default=5.76e23)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"{args.data} not found: this example needs ../shared/data beside the repository")
        return 0
    runs = pd.read_csv(args.data).sort_values("loss").iloc[:-5]
    result = bl.fit("chinchilla", runs, chains=args.chains, draws=args.draws, tune=args.tune, seed=args.seed)
    print(result.summary()[["median", "hdi_3%", "hdi_97%", "ess_bulk", "r_hat"]].to_string(float_format="%.4g"))
    print(f"\n{result.diagnostics}")
    published = result.law.published_with_derived(result.law.presets["besiroglu2024"].values)
    print("\nBesiroglu et al. 2024 point estimates: "
          + ", ".join(f"{k} {published[k]:.4g}" for k in ("E", "alpha", "beta", "a")))
    n_opt, d_opt = chinchilla_optimum(result.posterior, args.budget)
    ratio = np.asarray(d_opt / n_opt)
    print(f"at C = {args.budget:.3g}: N_opt median {float(np.median(n_opt)):.3e}, D_opt median "
          f"{float(np.median(d_opt)):.3e}, tokens per parameter {np.median(ratio):.1f} "
          f"[94%: {np.quantile(ratio, 0.03):.1f}, {np.quantile(ratio, 0.97):.1f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
