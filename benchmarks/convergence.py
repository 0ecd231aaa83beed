"""Do default fits converge on the small ladders people have? Every law, ladders of 3 to 6 model sizes, seeds.

For each law and ladder size (``bayeslaw.synthetic.ladder``: sizes x 6 token multiples, 1% noise, the law's
first preset) and sampler seed, fit with default settings (no discrepancy: the law's sampler is measured)
and print one row per law and size: fits converged on the first attempt, after the automatic second
attempt, the worst R-hat, min bulk and tail ESS, divergences, the share of published parameters whose
90% interval covers the truth, and seconds per fit (``--literature``: also with literature priors).
With ../shared/data, also the Chinchilla runs with C <= 1e19 (kept and raw), default and literature priors.

    python benchmarks/convergence.py                       # every law, sizes 3 4 6, seeds 0-3 (long)
    python benchmarks/convergence.py --laws chinchilla quokka --sizes 4 --seeds 0 1 --literature
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayeslaw as bl
from bayeslaw.literature import published_fits
from bayeslaw.synthetic import ladder

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def one(name: str, frame: pd.DataFrame, seed: int, truth: dict | None = None, **kwargs) -> dict:
    """One default fit: convergence, cost and, with ``truth``, the share of published parameters whose
    central 90% interval covers it."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bl.fit(name, frame, seed=seed, discrepancy=None, **kwargs)
    d = result.diagnostics
    attempts = result.info["attempts"]
    covered = np.nan
    if truth is not None:
        hits = [np.quantile(result.posterior[k].values, 0.05) <= v <= np.quantile(result.posterior[k].values, 0.95)
                for k, v in truth.items()]
        covered = float(np.mean(hits))
    return {"first": attempts[0]["converged"], "converged": d.converged, "rhat": d.max_rhat,
            "ess_bulk": d.min_ess_bulk, "ess_tail": d.min_ess_tail, "divergences": d.divergences,
            "covered": covered, "seconds": time.perf_counter() - start}


def summarise(rows: list[dict]) -> dict:
    frame = pd.DataFrame(rows)
    return {"fits": len(frame), "first attempt": int(frame["first"].sum()), "converged": int(frame["converged"].sum()),
            "max R-hat": f"{frame['rhat'].max():.3f}", "min ESS bulk": frame["ess_bulk"].min(),
            "min ESS tail": frame["ess_tail"].min(), "divergences": int(frame["divergences"].sum()),
            "truth in 90%": frame["covered"].mean(), "s per fit": frame["seconds"].mean()}


def markdown(frame: pd.DataFrame) -> str:
    """A markdown table (for the README), numbers to 3 significant digits."""
    cells = [[f"{v:.3g}" if isinstance(v, float | np.floating) else str(v) for v in row] for row in frame.values]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--laws", nargs="*", default=list(bl.LAWS))
    parser.add_argument("--sizes", nargs="*", type=int, default=[3, 4, 6])
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--no-real", action="store_true", help="skip the real Chinchilla runs")
    parser.add_argument("--literature", action="store_true",
                        help="also fit with literature priors (laws with published fits in the catalogue)")
    args = parser.parse_args()
    table = []
    for name in args.laws:
        law = bl.get_law(name)
        truth = dict(next(iter(law.presets.values())).values)
        variants = [None] + (["literature"] if args.literature and published_fits(law) else [])
        for sizes, prior_from in itertools.product(args.sizes, variants):
            rows = [one(name, ladder(name, sizes=sizes, seed=seed), seed, truth, prior_from=prior_from)
                    for seed in args.seeds]
            label = name + (" (literature priors)" if prior_from else "")
            table.append({"law": label, "data": f"ladder of {sizes}", **summarise(rows)})
            print(pd.DataFrame([table[-1]]).to_string(index=False, header=len(table) == 1, float_format="%.3g"),
                  flush=True)
    path = SHARED / "chinchilla_epoch_extracted.csv"
    if path.is_file() and not args.no_real:
        from bayeslaw.datasets import chinchilla_runs

        for drop, label in ((5, "kept"), (0, "raw")):
            runs = chinchilla_runs(path, drop_largest=drop)
            runs = runs[runs["Training FLOP"] <= 1e19]
            for priors in (None, "literature"):
                rows = [one("chinchilla", runs, seed, prior_from=priors) for seed in args.seeds]
                table.append({"law": "chinchilla" + (" (literature priors)" if priors else ""),
                              "data": f"{label} real runs C <= 1e19 ({len(runs)})", **summarise(rows)})
                print(pd.DataFrame([table[-1]]).to_string(index=False, header=False, float_format="%.3g"),
                      flush=True)
    print("\n" + markdown(pd.DataFrame(table)))
    failed = [f"{r['law']} on {r['data']}" for r in table if r["converged"] < r["fits"]]
    print("\nnot converged in every fit: " + (", ".join(failed) if failed else "none"))


if __name__ == "__main__":
    main()
