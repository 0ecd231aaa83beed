"""Benchmark: planning over 4,000 posterior draws x 100 budgets, with and without the GP discrepancy.

Posterior: the Chinchilla law fitted (4 x 1000 draws) to the embedded demo sweep (63 runs) with the default
GP discrepancy, so the benchmark needs no data; "without" is the same draws with the discrepancy left out.
Measured in one run, best of ``--repeats``:
  - plan(), closed form (Hoffmann eq 4) and vectorised golden-section search, and their largest
    relative disagreement in N_opt;
  - the baseline: a per-draw, per-budget scipy ``minimize_scalar`` loop (the usual way), timed on a
    subset and reported per solve, so the table shows speed-ups per solve;
  - decide() with CVaR for 10 budgets, min_budget(), and inference_optimal() over all draws;
  - with the discrepancy also on one thread ("GP, 1 thread": ``bayeslaw._threads.CORES = 1``; by default the
    discrepancy's sets in plan() and the budgets in decide() run on a thread per core), and "before": its
    conditional evaluated one hyperparameter set at a time, as before it was cached per posterior
    (``reference_evaluate`` in tests/test_conditional.py, the replaced code), and
    the largest relative difference between the two in every result (``--no-before`` leaves it out).
Run: ``python benchmarks/bench_plan.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import warnings
from pathlib import Path

import numpy as np


def best_of(repeats: int, fn):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def before_evaluation():
    """A context that evaluates the discrepancy's conditional as before the caches (tests/test_conditional.py)."""
    import contextlib

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_conditional import reference_evaluate, reference_sample

    from bayeslaw.discrepancy import Conditional

    @contextlib.contextmanager
    def swapped():
        saved = Conditional.evaluate, Conditional.sample
        Conditional.evaluate, Conditional.sample = reference_evaluate, reference_sample
        try:
            yield
        finally:
            Conditional.evaluate, Conditional.sample = saved
    return swapped


def largest_difference(new, old) -> float:
    """Largest relative difference between two results (plans, decision tables, min_budget answers)."""
    pairs = [(new.draws[k].values, old.draws[k].values) for k in old.draws.data_vars] if hasattr(old, "draws") else \
        [(new.table.to_numpy(), old.table.to_numpy())] if hasattr(old, "table") else \
        [(np.array([new[k]]), np.array([old[k]])) for k in ("budget", "N", "D", "probability")]
    return max(float(np.nanmax(np.abs(a / b - 1))) for a, b in pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-solves", type=int, default=2000)
    parser.add_argument("--no-before", action="store_true", help="leave out the evaluation before the caches")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from scipy.optimize import minimize_scalar

    import bayeslaw as bl
    from bayeslaw import _threads
    from bayeslaw.demo import chinchilla_sweep
    from bayeslaw.plan import plan
    from bayeslaw.posterior import as_posterior
    from bayeslaw.risk import decide, min_budget
    from bayeslaw.serving import inference_optimal

    fit = bl.fit("chinchilla", chinchilla_sweep(), seed=0)
    post = as_posterior(fit)
    plain = dataclasses.replace(post, discrepancy=None)  # the same draws without the discrepancy
    _ = post.conditional  # conditioned once per posterior (each set's factor and weights): not part of any timing
    budgets = np.logspace(18, 26, args.budgets)
    solves = post.n_draws * len(budgets)

    law, params = post.law, {k: v.values.ravel() for k, v in post.published_draws().items()}
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
    tasks = {
        "plan(), closed form": (lambda p: plan(p, budgets), args.repeats, solves),
        "plan(), golden-section search": (lambda p: plan(p, budgets, method="numerical"), args.repeats, solves),
        "decide(cvar:0.9), 10 budgets": (lambda p: decide(p, np.logspace(21, 25, 10), "cvar:0.9"), 1, None),
        "min_budget(loss 2.0, p 0.9)": (lambda p: min_budget(p, 2.0, 0.9), 1, None),
    }
    rows, notes = [("scipy minimize_scalar loop [baseline]", "none", per_solve_loop * solves, per_solve_loop, None)], []
    swapped = None if args.no_before else before_evaluation()
    results = {}
    for name, (task, repeats, count) in tasks.items():
        t_gp, results[name] = best_of(repeats, lambda task=task: task(post))
        t_plain, _ = best_of(repeats, lambda task=task: task(plain))
        rows.append((name, "GP", t_gp, count and t_gp / count, t_gp / t_plain))
        cores, _threads.CORES = _threads.CORES, 1  # the same work on one thread (bayeslaw._threads)
        try:
            t_one, _ = best_of(repeats, lambda task=task: task(post))
        finally:
            _threads.CORES = cores
        rows.append((name, "GP, 1 thread", t_one, count and t_one / count, t_one / t_plain))
        if swapped is not None:
            with swapped():
                t_before, old = best_of(repeats, lambda task=task: task(post))
            rows.append((name, "GP, before", t_before, count and t_before / count, t_before / t_plain))
            notes.append(f"{name}: now {t_before / t_gp:.1f}x faster than before; largest relative difference "
                         f"{largest_difference(results[name], old):.1e}")
        rows.append((name, "none", t_plain, count and t_plain / count, 1.0))
    disagreement = float(np.abs(results["plan(), golden-section search"].draws["N_opt"]
                                / results["plan(), closed form"].draws["N_opt"] - 1).max())
    print(f"{post.n_draws} draws x {len(budgets)} budgets = {solves} allocations; baseline timed on "
          f"{len(picks)} solves and scaled; closed form vs search: max relative difference in N_opt "
          f"{disagreement:.1e}; discrepancy: {post.discrepancy.describe()}")
    print(f"{'method':<40}{'discrepancy':<13}{'seconds':>9}{'us/solve':>10}{'vs loop':>9}{'vs none':>9}")
    for name, kind, seconds, per, ratio in rows:
        per_text = f"{per * 1e6:>10.2f}" if per else f"{'':>10}"
        loop = f"{per_solve_loop / per:>9.0f}" if per else f"{'':>9}"
        versus = f"{ratio:>8.1f}x" if ratio is not None else f"{'':>9}"
        print(f"{name:<40}{kind:<13}{seconds:>9.3f}{per_text}{loop}{versus}")
    for note in notes:
        print(note)
    t_inf, _ = best_of(1, lambda: inference_optimal(post, 2.0, 5e12))
    print(f"min_budget -> {results['min_budget(loss 2.0, p 0.9)']['budget']:.3g} FLOPs; "
          f"inference_optimal(all draws): {t_inf:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
