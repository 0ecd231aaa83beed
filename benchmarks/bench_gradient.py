"""Benchmark: one evaluation of log p and its gradient (the native density) per law, on a large table.

Each law's synthetic ladder (``bayeslaw.synthetic.ladder``: ``--sizes`` model sizes x ``--multiples`` token
multiples, 1e5 runs by default), its default model compiled natively twice in this process: as bayeslaw builds it
(powers of positive inputs as exp(y log X) from stored logs, two PyTensor rewrites left out: ``bayeslaw._powers``)
and as the law is written (pow, every rewrite): the baseline. Best of ``--repeats`` batches of 20 calls each, the
two taken in turn, and the ratio to the baseline, measured in the same run (single calls on this shared machine
vary by a third from one process to the next).

    python benchmarks/bench_gradient.py                    # every law, 1e5 runs
    python benchmarks/bench_gradient.py --laws chinchilla power-N --sizes 100 --multiples 10
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings

import numpy as np


@contextlib.contextmanager
def as_written():
    """The model as the law is written: no powers through logs, PyTensor's rewrites all on."""
    from bayeslaw import _powers, model

    saved = model.powers_by_logs, _powers.SKIPPED_REWRITES
    model.powers_by_logs, _powers.SKIPPED_REWRITES = (lambda mu, *args: mu), ()
    try:
        yield
    finally:
        model.powers_by_logs, _powers.SKIPPED_REWRITES = saved


def density_call(law: str, table):
    """The law's default model on ``table``, compiled natively: a call of log p and gradient at its initial point."""
    from pymc.initial_point import make_initial_point_fn

    from bayeslaw import sampling
    from bayeslaw.data import load_runs
    from bayeslaw.laws import get_law
    from bayeslaw.model import build_model, model_priors

    model = build_model(load_runs(table, law), model_priors(get_law(law), "student_t"))
    density = sampling.compile_native_density(model)
    data = sampling.data_values(model, density.data_names)
    point = make_initial_point_fn(model=model, return_transformed=True)(0)
    x = np.concatenate([np.ravel(point[name]) for name in density.value_names]).astype("float64")
    density.logp_dlogp(x, *data)
    return lambda: density.logp_dlogp(x, *data)


def best_of_alternating(calls: list, repeats: int, batch: int = 20) -> list[float]:
    """Seconds per call of each, the best of ``repeats`` batches, the batches taken in turn (one, the other, ...)
    so that a slow spell of the shared machine falls on both."""
    best = [np.inf] * len(calls)
    for _ in range(repeats):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            for _ in range(batch):
                call()
            best[i] = min(best[i], (time.perf_counter() - start) / batch)
    return best


def main() -> int:
    import bayeslaw as bl
    from bayeslaw.synthetic import ladder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", nargs="*", default=list(bl.LAWS))
    parser.add_argument("--sizes", type=int, default=1000)
    parser.add_argument("--multiples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    multiples = tuple(np.geomspace(0.25, 4.0, args.multiples))
    print(f"{'law':<20}{'runs':>9}{'written ms':>12}{'bayeslaw ms':>13}{'ratio':>8}")
    for law in args.laws:
        table = ladder(law, sizes=args.sizes, multiples=multiples)
        with as_written():
            baseline = density_call(law, table)
        written, ours = best_of_alternating([baseline, density_call(law, table)], args.repeats)
        print(f"{law:<20}{len(table):>9}{written * 1e3:>12.2f}{ours * 1e3:>13.2f}{ours / written:>7.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
