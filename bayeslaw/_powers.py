"""Powers of positive data as exponentials of their logs, in a model's graph of the law.

A law's terms are powers of its inputs, A N^-alpha. As written, every evaluation of log p computes pow(N, -alpha)
for every run, and its gradient log N (d/d alpha): two logarithms and an exponential per run and term, for data
that never change. With log N stored beside N as data, the same terms are

    N^y = exp(y log N),    d/dy = log N exp(y log N)

one exponential per run and term, and no logarithm: the graph of ``mu`` is rewritten so (pow(N, y) and log(N) of
a data input N, nothing else). Exact as mathematics; as floating point within a few ulps of pow. Only inputs
that load_runs guarantees > 0 (``bayeslaw.data``: every input but the sparsity S, which may be 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bayeslaw.data import RANGE_RULES

# PyTensor rewrites left out where bayeslaw compiles a density: they would fold a coefficient into the exponential
# (A exp(y log N) -> exp(log A + y log N), one exponential more per run in the gradient) and then, the law's
# terms being all exponentials, rewrite log(E + ...) as a log-sum-exp (its maximum and one exponential more per
# term). benchmarks/bench_gradient.py, 1e5 runs: chinchilla's log p and gradient 0.68x the law as written with
# every rewrite (6.74 -> 4.62 ms); with the powers rewritten and both rewrites kept, about half that gain (timed
# in separate processes: 7.0 -> 5.3 ms, against 3.4 ms with both left out)
SKIPPED_REWRITES = ("local_log_add_exp", "local_mul_exp_to_exp_add")
POSITIVE_EXCEPT = frozenset(name for name, (check, _) in RANGE_RULES.items() if check(np.array([0.0]))[0])


def powers_by_logs(mu: Any, inputs: Mapping[str, Any], values: Mapping[str, np.ndarray], dim: str) -> Any:
    """``mu`` with pow(X, y) replaced by exp(y log X) and log(X) by log X, for each input X of ``inputs`` (PyMC data
    containers, ``values`` their arrays) that is > 0; log X is added to the model as data ``log_{name}``."""
    import pymc as pm
    import pytensor.scalar as ps
    import pytensor.tensor as pt
    from pytensor.tensor.elemwise import Elemwise

    try:
        from pytensor.graph.traversal import graph_inputs, io_toposort
    except ImportError:  # pytensor < 2.32
        from pytensor.graph.basic import graph_inputs, io_toposort

    by_input = {var: name for name, var in inputs.items() if name not in POSITIVE_EXCEPT}
    logs: dict[str, Any] = {}
    replace = {}
    nodes = io_toposort(graph_inputs([mu]), [mu])
    for node in nodes:
        if not isinstance(node.op, Elemwise) or not node.inputs or node.inputs[0] not in by_input:
            continue
        scalar = node.op.scalar_op
        if not isinstance(scalar, (ps.Pow, ps.Log)):
            continue
        name = by_input[node.inputs[0]]
        if name not in logs:
            logs[name] = pm.Data(f"log_{name}", np.log(np.asarray(values[name], dtype=float)), dims=dim)
        log_x = logs[name]
        new = log_x if isinstance(scalar, ps.Log) else pt.exp(node.inputs[1] * log_x)
        replace[node.outputs[0]] = pt.cast(new, node.outputs[0].dtype)
    # rebuild only what lies downstream of a replaced term: the random variables upstream stay the model's own
    for node in nodes:
        if any(i in replace for i in node.inputs):
            rebuilt = node.clone_with_new_inputs([replace.get(i, i) for i in node.inputs], strict=False)
            replace |= dict(zip(node.outputs, rebuilt.outputs, strict=True))
    return replace.get(mu, mu)
