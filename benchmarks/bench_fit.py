"""Benchmark: the Chinchilla law on the 240 kept real runs, bayeslaw's default NUTS against baselines.

Measured in one run, on the same model (same priors, Student-t likelihood on log loss):
  - bayeslaw.fit (nutpie, low-rank mass matrix, sampled natively: the density's numba code and nutpie's entry
    point read from PyTensor's on-disk numba cache, chains on every core; bayeslaw.native): first fit in this
    process and a refit (compiled density reused in memory);
  - the same through Python callbacks of the density compiled by PyTensor's C backend (``bayeslaw.sampling.NATIVE
    = "0"``, as ``BAYESLAW_NATIVE=0``), first such fit in this process and a refit;
  - bayeslaw.fit(sampler="jax") (blackjax NUTS in JAX, chains vectorised; bayeslaw.sampling_jax), when JAX is
    installed: the first fit in this process (its program read from the on-disk cache, or traced and compiled
    when the cache is cold: the row says which) and a refit (compiled program reused in memory);
  - nutpie's own numba backend with the low-rank mass matrix (compiles in every process);
  - nutpie's JAX backend (``backend="jax", gradient_backend="jax"``, JAX's persistent compilation cache on),
    when JAX is installed;
  - plain ``pm.sample()`` with default settings, 1000 tuning steps (the baseline all ratios refer to).
For each: compile seconds, sampling seconds, min bulk ESS over the law's parameters, sigma and nu (the baselines'
draws of the sampling coordinates mapped to them as fit() maps its own), and ESS
per second of compile + sampling. Run: ``python benchmarks/bench_fit.py`` (``--jax-cache DIR`` puts JAX's caches in
DIR, e.g. an empty folder for a cold start).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import arviz as az
import pandas as pd

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "chinchilla_epoch_extracted.csv"


def min_bulk_ess(posterior, names) -> float:
    ess = az.ess(posterior[names], method="bulk")
    return float(min(float(ess[n].min()) for n in names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--skip-baselines", action="store_true", help="only bayeslaw's own timings")
    parser.add_argument("--jax-cache", type=Path, help="folder of JAX's caches (default ~/.cache/bayeslaw/jax)")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"data not found: {args.data} (the benchmark needs ../shared/data beside the repository)")
        return 0
    warnings.filterwarnings("ignore")
    import pymc as pm

    import bayeslaw as bl
    from bayeslaw.fixed import resolve_fixed
    from bayeslaw.model import build_model, data_pivots, parameters_from_draws

    frame = pd.read_csv(args.data).sort_values("loss").iloc[:-5]
    runs = bl.load_runs(frame, "chinchilla")
    settings = {"chains": args.chains, "draws": args.draws}  # bayeslaw's defaults otherwise (tune 500)
    rows = []

    def record(name, compile_s, sample_s, posterior, names, divergences):
        if any(n not in posterior for n in names):  # a baseline's draws of the sampling coordinates
            pivots = data_pivots(runs)
            posterior = parameters_from_draws(runs.law, result.priors, posterior, pivots,
                                              resolve_fixed(runs.law, None, pivots))
        ess = min_bulk_ess(posterior, names)
        total = compile_s + sample_s
        rows.append({"method": name, "compile_s": compile_s, "sample_s": sample_s, "total_s": total,
                     "min_bulk_ess": ess, "ess_per_s": ess / total, "divergences": divergences})

    from bayeslaw import sampling

    labels = [("bayeslaw.fit (first in process)", "1"), ("bayeslaw.fit (refit, reused density)", "1"),
              ("callbacks (first in process)", "0"), ("callbacks (refit, reused density)", "0")]
    default = sampling.NATIVE
    for label, native in labels:
        sampling.NATIVE = native
        result = bl.fit("chinchilla", frame, seed=1, **settings)
        sampled = [n for n in result.law.params] + ["sigma", "nu"]
        record(label, result.info["compile_seconds"], result.info["sample_seconds"], result.posterior, sampled,
               result.diagnostics.divergences)
        print(f"{label}: {result.diagnostics}", file=sys.stderr)
        median = result.posterior[["E", "alpha", "beta", "a"]].median()
        print("  posterior medians: " + ", ".join(f"{k} {float(v):.4f}" for k, v in median.items()), file=sys.stderr)
    sampling.NATIVE = default

    from importlib.util import find_spec

    has_jax = all(find_spec(name) for name in ("jax", "blackjax", "flatbuffers"))
    if has_jax:
        import os

        from bayeslaw import sampling_jax

        if args.jax_cache:
            os.environ[sampling_jax.CACHE_ENV] = str(args.jax_cache)
        for label in ("sampler='jax' (first in process)", "sampler='jax' (refit, reused program)"):
            result = bl.fit("chinchilla", frame, seed=1, sampler="jax", **settings)
            if "first" in label:
                label += ", traced" if sum(sampling_jax.TRACES.values()) else ", program on disk"
            record(label, result.info["compile_seconds"], result.info["sample_seconds"], result.posterior, sampled,
                   result.diagnostics.divergences)
            print(f"{label}: {result.diagnostics}", file=sys.stderr)

    if not args.skip_baselines:
        model = build_model(runs, result.priors, "student_t")
        import nutpie

        t = time.perf_counter()
        compiled = nutpie.compile_pymc_model(model)
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        trace = nutpie.sample(compiled, seed=1, progress_bar=False, low_rank_modified_mass_matrix=True,
                              target_accept=0.9, tune=result.info["tune"], **settings)
        record("nutpie numba backend, low-rank", compile_s, time.perf_counter() - t, trace.posterior, sampled,
               int(trace.sample_stats.diverging.sum()))

        if has_jax:
            sampling_jax.import_jax()  # float64 and the persistent compilation cache, as for sampler="jax"
            try:
                t = time.perf_counter()
                plain = build_model(runs, result.priors, "student_t")  # its JAX path takes no initial values
                plain.rvs_to_initial_values = dict.fromkeys(plain.rvs_to_initial_values)
                compiled = nutpie.compile_pymc_model(plain, backend="jax", gradient_backend="jax")
                compile_s = time.perf_counter() - t
                t = time.perf_counter()
                trace = nutpie.sample(compiled, seed=1, progress_bar=False, low_rank_modified_mass_matrix=True,
                                      target_accept=0.9, tune=result.info["tune"], **settings)
                record("nutpie JAX backend, low-rank", compile_s, time.perf_counter() - t, trace.posterior, sampled,
                       int(trace.sample_stats.diverging.sum()))
            except Exception as error:  # a baseline that fails is reported, not fatal
                print(f"nutpie JAX backend failed: {type(error).__name__}: {error}", file=sys.stderr)

        t = time.perf_counter()
        with model:
            trace = pm.sample(random_seed=1, progressbar=False, chains=args.chains, draws=args.draws)
        record("pm.sample() defaults [baseline]", 0.0, time.perf_counter() - t, trace.posterior, sampled,
               int(trace.sample_stats.diverging.sum()))

    table = pd.DataFrame(rows).set_index("method")
    if not args.skip_baselines:
        base = table.loc["pm.sample() defaults [baseline]"]
        table["speedup_total"] = base["total_s"] / table["total_s"]
        table["ess_per_s_ratio"] = table["ess_per_s"] / base["ess_per_s"]
    print(f"{len(frame)} runs; "
          f"{args.chains} chains x {args.draws} draws (pm.sample compile is inside its sample_s)")
    print(table.to_string(float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
