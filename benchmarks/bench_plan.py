"""Benchmark: planning over 4,000 posterior draws x 100 budgets.

Posterior: the Chinchilla law fitted (4 x 1000 draws) to the embedded demo sweep, so the benchmark
needs no data. Measured in one run, best of ``--repeats``:
  - plan(), closed form (Hoffmann eq 4) and vectorised golden-section search, and their largest
    relative disagreement in N_opt;
  - the baseline: a per-draw, per-budget scipy ``minimize_scalar`` loop (the usual way), timed on a
    subset and reported per solve, so the table shows speed-ups per solve;
  - decide() with CVaR for 10 budgets, min_budget(), and inference_optimal() over all draws.
Run: ``python benchmarks/bench_plan.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np


def best_of(repeats: int, fn):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-solves", type=int, default=2000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from scipy.optimize import minimize_scalar

    import bayeslaw as bl
    from bayeslaw.demo import chinchilla_sweep
    from bayeslaw.plan import plan
    from bayeslaw.posterior import as_posterior
    from bayeslaw.risk import decide, min_budget
    from bayeslaw.serving import inference_optimal

    fit = bl.fit("chinchilla", chinchilla_sweep(), seed=0)
    post = as_posterior(fit)
    budgets = np.logspace(18, 26, args.budgets)
    solves = post.n_draws * len(budgets)
    rows = []

    t_closed, closed = best_of(args.repeats, lambda: plan(post, budgets))
    t_search, search = best_of(args.repeats, lambda: plan(post, budgets, method="numerical"))
    disagreement = float(np.abs(search.draws["N_opt"] / closed.draws["N_opt"] - 1).max())

    law, params = post.law, {k: v.values.ravel() for k, v in post.params().items()}
    rng = np.random.default_rng(0)
    picks = [(int(rng.integers(post.n_draws)), float(rng.choice(budgets))) for _ in range(args.baseline_solves)]

    def scipy_loop():
        out = []
        for i, c in picks:
            p = {k: v[i] for k, v in params.items()}
            res = minimize_scalar(lambda u, p=p, c=c: law.evaluate(p, {"N": np.exp(u), "D": c / (6 * np.exp(u))}),
                                  bounds=(0.0, np.log(c / 6)), method="bounded", options={"xatol": 1e-10})
            out.append(res.x)
        return out

    t_loop, _ = best_of(1, scipy_loop)
    per_solve_loop = t_loop / len(picks)
    rows.append(("scipy minimize_scalar loop [baseline]", per_solve_loop * solves, per_solve_loop, 1.0))
    rows.append(("plan(), closed form", t_closed, t_closed / solves, per_solve_loop / (t_closed / solves)))
    rows.append(("plan(), golden-section search", t_search, t_search / solves, per_solve_loop / (t_search / solves)))
    print(f"{post.n_draws} draws x {len(budgets)} budgets = {solves} allocations; baseline timed on "
          f"{len(picks)} solves and scaled; closed form vs search: max relative difference in N_opt "
          f"{disagreement:.1e}")
    print(f"{'method':<40}{'seconds':>10}{'us/solve':>12}{'speed-up':>10}")
    for name, seconds, per, ratio in rows:
        print(f"{name:<40}{seconds:>10.3f}{per * 1e6:>12.2f}{ratio:>10.0f}")

    t_decide, _ = best_of(1, lambda: decide(post, np.logspace(21, 25, 10), "cvar:0.9"))
    t_min, answer = best_of(1, lambda: min_budget(post, 2.0, 0.9))
    t_inf, _ = best_of(1, lambda: inference_optimal(post, 2.0, 5e12))
    print(f"decide(cvar:0.9, 10 budgets): {t_decide:.2f} s; min_budget(loss 2.0, p 0.9): {t_min:.2f} s "
          f"-> {answer['budget']:.3g} FLOPs; inference_optimal(all draws): {t_inf:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
