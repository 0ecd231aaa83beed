"""Calibration suite: leave-future-out on every real run table, plain law against the default model.

For each table and split the law is fitted once (package defaults: Student-t noise, the default model
discrepancy, 4 chains x 1000 draws) on the runs the split keeps, and the held-out runs are scored twice from
the same draws (``bayeslaw.calibrate.calibrate``): the plain law with its own noise, and the default model
(law + discrepancy + its run noise). Repeated over sampler seeds.

  chinchilla kept / raw  Hoffmann et al.'s runs, the 240 Besiroglu et al. keep / all 245; law chinchilla;
                         hold out C > 1e20 (104 runs) and C > 1e21 (23)
  frantar-t5             Frantar et al.'s sparse T5 runs; law frantar; hold out, for each sparsity, the runs
                         of its largest model (its largest non-zero N: 12 of 48 runs, 3 token counts each)
  datablations           Muennighoff et al.'s final checkpoints (C4); law muennighoff; hold out the largest
                         model (8.7B: 8 of 24 runs; fewer than the model's 9 parameters, which calibrate
                         allows here with min_heldout)

Printed: one row per table, split, seed and model with the coverage of the 50/80/90% predictive intervals
(share of held-out runs inside), the mean log predictive density per held-out run (log target), the median
relative error of the predictive median, and whether the fit converged (R-hat, ESS, divergences).
``--markdown`` prints the per-table summary used in README.md. Data: ``../shared/data`` beside the checkout
(``--data`` to change). Run: ``python benchmarks/calibration.py`` (about 10 minutes on 2 cores);
``--quick`` for one seed, 2 chains x 300 draws and the Chinchilla kept table only. The (table, seed) cells
run at once on local processes (``--workers N``, default one per CPU) or a Dask cluster (``--scheduler
ADDRESS``), with the same numbers as one after another (``--workers 1``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TABLES = ("chinchilla-kept", "chinchilla-raw", "frantar-t5", "datablations")


def frantar_largest_scale(frame: pd.DataFrame) -> np.ndarray:
    """True for the runs of each sparsity's largest model (largest non-zero N at that sparsity)."""
    return (frame["N"] >= frame.groupby("S")["N"].transform("max") * (1 - 1e-9)).to_numpy()


def splits(table: str, data: Path):
    """(law, runs frame, holdouts) of one table."""
    from bayeslaw import datasets

    if table.startswith("chinchilla"):
        frame = datasets.chinchilla_runs(data / "chinchilla_epoch_extracted.csv",
                                         drop_largest=5 if table.endswith("kept") else 0)
        return "chinchilla", frame, ["C>1e20", "C>1e21"]
    if table == "frantar-t5":
        frame = datasets.frantar_t5_runs(data / "frantar_t5_sparsity.csv")
        return "frantar", frame, [("largest model per sparsity", frantar_largest_scale(frame))]
    frame = datasets.datablations_runs(data / "datablations_losses.csv")
    largest = frame["N"].max()
    held = (frame["N"] == largest).to_numpy()
    return "muennighoff", frame[["N", "D", "U", "loss"]], [(f"N={largest:.2g} (largest)", held)]


def run(tables, seeds, data: Path, workers: int | None = None, client: str | None = None,
        **fit_kwargs) -> pd.DataFrame:
    """Every (table, seed) cell, fanned out (``bayeslaw.fanout``: local processes, or a Dask scheduler)."""
    from bayeslaw.fanout import map_jobs

    jobs = [{"table": table, "seed": seed, "data": data, "fit_kwargs": fit_kwargs} for table in tables
            for seed in seeds]
    return pd.DataFrame([row for rows in map_jobs(cell, jobs, workers=workers, client=client) for row in rows])


def cell(table: str, seed: int, data: Path, fit_kwargs: dict) -> list[dict]:
    """One job: calibrate one table at one sampler seed (its splits one after another), as table rows."""
    from bayeslaw.calibrate import calibrate

    warnings.filterwarnings("ignore")
    law, frame, holdouts = splits(table, data)
    start = time.perf_counter()
    result = calibrate(frame, law, holdouts, seed=seed, min_heldout=1, workers=1, **fit_kwargs)
    seconds = (time.perf_counter() - start) / len(holdouts)
    rows = []
    for (holdout, model), row in result.iterrows():
        rows.append({"table": table, "split": holdout, "seed": seed, "model": model,
                     "n_fit": row["n_fit"], "n_heldout": row["n_heldout"],
                     **{c: row[c] for c in row.index if c.startswith("coverage")},
                     "lpd_per_run": row["lpd_per_run"], "median rel error": row["median_relative_error"],
                     "converged": bool(row["converged"]), "fit s": seconds})
    print(f"  {table} seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return rows


def markdown(results: pd.DataFrame) -> str:
    """Per table and split: coverage range over seeds, mean lpd and median error, plain vs default."""
    lines = ["| table, split (held out) | model | coverage 50 / 80 / 90% (range over seeds) | lpd per run | "
             "median error | converged |", "|---|---|---|---|---|---|"]
    for (table, split, model), group in results.groupby(["table", "split", "model"], sort=False):
        n = int(group["n_heldout"].iloc[0])
        cover = " / ".join(_range(group[c] * n) for c in ("coverage_50", "coverage_80", "coverage_90"))
        lines.append(f"| {table}, {split} ({n}) | {'default' if model != 'plain' else 'plain law'} | {cover} of {n} | "
                     f"{group['lpd_per_run'].mean():.2f} | {group['median rel error'].median():.2%} | "
                     f"{int(group['converged'].sum())}/{len(group)} |")
    return "\n".join(lines)


def _range(values: pd.Series) -> str:
    lo, hi = int(np.rint(values.min())), int(np.rint(values.max()))
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="sampler seeds")
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="seed 0, 2 chains x 300 draws, chinchilla-kept only")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the shared run tables")
    parser.add_argument("--markdown", action="store_true", help="also print the per-table summary (README)")
    parser.add_argument("--csv", type=Path, help="also write every row to this CSV file")
    parser.add_argument("--workers", type=int, help="local processes, one (table, seed) cell each at a time "
                        "(default: one per CPU)")
    parser.add_argument("--scheduler", help="run the cells on a Dask cluster: its scheduler address")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"no data folder {args.data}; give --data")
    warnings.filterwarnings("ignore")
    seeds, tables, sampling = args.seeds, args.tables, {"chains": args.chains, "draws": args.draws}
    if args.quick:
        seeds, tables, sampling = [0], ["chinchilla-kept"], {"chains": 2, "draws": 300}
    results = run(tables, seeds, args.data, workers=args.workers, client=args.scheduler, **sampling)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(results.drop(columns=["fit s"]).round(4).to_string(index=False))
    if args.csv:
        results.to_csv(args.csv, index=False)
    if args.markdown:
        print("\n" + markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
