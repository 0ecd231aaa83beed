"""Leave-one-family-out: pooled fits against each family fitted alone (README, Pooling across families).

    python tools/pooled_lofo.py ../shared/data [--chains 2] [--draws 300] [--seed 0] [--out table.csv]

For each of the four families (``bayeslaw.families``) its runs at its largest model sizes are held out; (a) a
pooled chinchilla fit on the rest of that family plus every run of the other three, scored on the family's
view, and (b) the family's kept runs alone with the default priors; both scored by ``holdout.score_heldout``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from bayeslaw import fit
from bayeslaw.data import load_runs
from bayeslaw.errors import ConvergenceWarning
from bayeslaw.families import FAMILIES, four_families
from bayeslaw.holdout import score_heldout, split_runs
from bayeslaw.pooling import fit_pooled

LAW = "chinchilla"


def one_family(table: pd.DataFrame, family: str, chains: int, draws: int, seed: int, law: str = LAW,
               pool: list[str] | None = None, retry: bool = True) -> list[dict]:
    """Scores of the pooled and the alone fit of ``family``'s held-out runs, one row each."""
    mine = table["family"] == family
    own = table[mine].reset_index(drop=True)
    kept_runs, heldout = split_runs(load_runs(own.drop(columns=["family", "held_out"]), law),
                                    own["held_out"].to_numpy())
    kept = kept_runs.frame
    pooled_table = table[~(mine & table["held_out"])].drop(columns="held_out")
    rows = []
    settings = {"chains": chains, "draws": draws, "seed": seed, "retry": retry}
    start = time.perf_counter()
    pooled = fit_pooled(law, pooled_table, group="family", pool=pool, **settings)
    view = pooled.family(family)
    spreads = pooled.spreads()
    rows.append({"family": family, "fit": "pooled", "n_fit": len(pooled_table), **score_heldout(view, heldout),
                 "converged": pooled.converged, "seconds": time.perf_counter() - start,
                 **{f"spread_{k}": float(spreads.loc[k, "spread_median"]) for k in spreads.index},
                 "diagnostics": pooled.diagnostics.brief(),
                 **{k: float(view.posterior[k].median()) for k in ("alpha", "beta")}})
    start = time.perf_counter()
    alone = fit(law, kept.reset_index(drop=True), **settings)
    rows.append({"family": family, "fit": "alone", "n_fit": len(kept), **score_heldout(alone, heldout),
                 "converged": alone.converged, "seconds": time.perf_counter() - start,
                 **{k: float(alone.posterior[k].median()) for k in ("alpha", "beta")}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="the folder of the shared data (../shared/data)")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="write the table as CSV")
    parser.add_argument("--law", default=LAW, help="chinchilla (default) or muennighoff")
    parser.add_argument("--pool", default=None, help="comma-separated pooled parameters (default: the exponents)")
    parser.add_argument("--no-retry", dest="retry", action="store_false", help="no second attempt")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated; default all four")
    args = parser.parse_args()
    table = four_families(args.data)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for family in args.families.split(","):
            rows += one_family(table, family, args.chains, args.draws, args.seed, args.law,
                               args.pool.split(",") if args.pool else None, args.retry)
            print(pd.DataFrame(rows[-2:]).to_string(), flush=True)
    result = pd.DataFrame(rows)
    columns = ["family", "fit", "n_fit", "n_heldout", "lpd", "median_relative_error", "coverage_90", "alpha", "beta",
               "spread_alpha", "spread_beta", "converged", "seconds"]
    print(result[[c for c in columns if c in result]].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        result.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
