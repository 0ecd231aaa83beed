"""GPU check: a million synthetic Chinchilla runs fitted with sampler="jax" on one GPU; prints R-hat, ESS and seconds.

The issue's target: 1e6 runs fitted to convergence (R-hat <= 1.01) in under 60 s on one GPU. The runs are
benchmarks/bench_scale.py's table (Besiroglu's constants, 1% noise, N 1e7-1e10, 1-100 tokens per parameter). The
fit is the default one (4 chains x 1000 draws after 500 tuning steps, default discrepancy), one attempt. Run it
twice: the first run traces and compiles the program (written to the cache, ``~/.cache/bayeslaw/jax``), the second
is what a user's next fit costs. Needs a CUDA build of JAX (``pip install -e ".[jax]" "jax[cuda12]"``):

    python benchmarks/gpu_check.py            # twice; --runs 1e5 for a shorter check
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=float, default=1e6)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--discrepancy", default="gp", help="gp (default) or none")
    parser.add_argument("--allow-cpu", action="store_true", help="run even when JAX finds no GPU")
    args = parser.parse_args()
    import jax

    device = jax.devices()[0]
    print(f"JAX {jax.__version__} on {device.platform}: {device.device_kind}", flush=True)
    if device.platform != "gpu" and not args.allow_cpu:
        print("no GPU found by JAX (install jax[cuda12]); --allow-cpu runs the check on the CPU anyway")
        return 2

    from bench_scale import runs_table  # this folder is on the path when the script runs

    import bayeslaw as bl
    from bayeslaw.laws import get_law

    n_runs, law = int(args.runs), get_law("chinchilla")
    frame = runs_table(n_runs)
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    result = bl.fit("chinchilla", frame, sampler="jax", seed=0, chains=args.chains, draws=args.draws, tune=args.tune,
                    retry=False, discrepancy=None if args.discrepancy == "none" else args.discrepancy)
    seconds = time.perf_counter() - start
    d = result.diagnostics
    print(f"{n_runs:,} runs, {args.chains} chains x {args.draws} draws after {args.tune} tuning steps")
    print(f"fit {seconds:.1f} s (compile or load {result.info['compile_seconds']:.1f} s, sampling "
          f"{result.info['sample_seconds']:.1f} s); R-hat max {d.max_rhat:.4f}, bulk ESS min {d.min_ess_bulk:.0f}, "
          f"tail ESS min {d.min_ess_tail:.0f}, divergences {d.divergences}; converged: {d.converged}")
    medians = result.posterior[["E", "A", "B", "alpha", "beta"]].median()
    print("medians: " + ", ".join(f"{k} {float(v):.4g}" for k, v in medians.items())
          + "  (truth: " + ", ".join(f"{k} {law.presets['besiroglu2024'].values[k]:.4g}" for k in medians) + ")")
    target = d.converged and d.max_rhat <= 1.01 and seconds < 60
    print(f"target (R-hat <= 1.01 in under 60 s): {'met' if target else 'not met'}")
    return 0 if target else 1


if __name__ == "__main__":
    sys.exit(main())
