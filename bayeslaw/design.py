"""Which runs to train next: the expected value of sample information (EVSI) of a candidate run, per FLOP.

The decision is the allocation of one big run of ``budget`` FLOPs (``bayeslaw.risk``). Its loss under the
posterior is, for ``risk="mean"``, the expected regret R(w) = min_N sum_s w_s L_s(N) - sum_s w_s min_N L_s(N)
(L_s the expected loss of draw s, with the fit's model discrepancy), or for a risk measure rho (``cvar:q``,
``quantile:q``) min_N rho_w(L(N)) over the predictive loss; w are weights on the posterior draws
(uniform now). For a candidate run x = (N, D), outcomes y_j are simulated from the posterior predictive
(draw s_j, the discrepancy's conditional mean and spread at x, a new run's noise), the posterior is updated
by importance reweighting, w_js proportional to p(y_j | theta_s) (Smith & Gelfand 1992; the preposterior
analysis of Raiffa & Schlaifer 1961), and the expected gain is

    EVSI(x) = R(uniform) - (1/J) sum_j R(w_j),

in the units of the decision's loss; the ranking is by EVSI(x) / FLOPs(x), FLOPs = k N D. A batch is chosen
greedily under a FLOP spend: after each pick the next gain is the marginal one, with the picks' outcomes
simulated jointly from the same draw s_j as the candidate's. The update does not refit the discrepancy: the
new run's likelihood adds the discrepancy's conditional variance at x to the noise, so the run teaches the
law's parameters only. When the importance weights collapse (median effective sample size over the outcomes
below ``min_ess``) the estimate is flagged; ``refit_gain`` estimates the same gain by refitting with NUTS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayeslaw._draws import derived_seed, flat
from bayeslaw.errors import BayeslawError
from bayeslaw.likelihoods import get_likelihood
from bayeslaw.plan import optimal_allocation, require_allocation_inputs
from bayeslaw.posterior import LawPosterior, as_posterior
from bayeslaw.risk import Risk, _Problem, _problem

GRID = 121  # candidate allocations of the big run (log N) on which every weighted decision is taken
RISK_STEP = 3  # quantile and CVaR decisions are taken on every third grid point (41 of 121)
OUTCOMES = 64  # simulated outcomes per candidate
MIN_ESS = 0.02  # a share of the draws: below it (median over outcomes) the importance estimate is flagged
DESIGN_STREAM = 11  # the simulated outcomes' random stream, apart from the decision's noise and discrepancy


@dataclass(frozen=True)
class Advice:
    """The candidates ranked by expected gain per FLOP, the greedy picks under the spend, and the verdict.

    ``table``: one row per candidate (N, D, flops, gain, gain_se, gain_per_flop, why, shrink, ess, picked: the
    pick's order or 0), best gain per FLOP first. ``picks``: the picks in order with their marginal gains.
    ``decision``: the decision now (budget, risk, chosen N, its loss value, the loss one more FLOP buys the big
    run). ``worth``: whether any candidate's gain beats both its Monte Carlo error and the loss its FLOPs would
    buy if added to the big run instead. ``simulated``: on request, the picks' simulated outcomes and the
    importance weights of the draws after them (dims outcome, pick / outcome, sample)."""

    table: pd.DataFrame
    picks: pd.DataFrame
    decision: dict[str, Any]
    worth: bool
    message: str
    notes: list[str] = field(default_factory=list)
    simulated: xr.Dataset | None = None

    def to_dict(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                    for row in frame.to_dict(orient="records")]
        return {"decision": self.decision, "worth": self.worth, "message": self.message, "notes": self.notes,
                "candidates": records(self.table), "picks": records(self.picks)}

    def __str__(self) -> str:
        d = self.decision
        head = (f"decision at {d['budget']:.3g} FLOPs ({d['risk']}): N = {d['N']:.3g}, "
                f"{d['value name']} {d['value']:.3g}")
        shown = self.table.head(15)
        cols = ["N", "D", "flops", "gain", "gain_se", "gain_per_flop", "why", "ess", "picked"]
        return "\n".join([head, shown[cols].to_string(float_format=lambda v: f"{v:.3g}"), self.message,
                          *self.notes])


@dataclass(frozen=True)
class _FixedU(_Problem):
    """The allocation problem of a data-constrained law with the unique tokens U held fixed."""

    unique_tokens: float = 0.0

    def expected(self, n, budget):
        inputs = {"N": n, "D": budget / (self.k * n), "U": np.full(np.shape(n), self.unique_tokens)}
        mean = self.law.function(self.params, inputs, np)
        return mean if self.delta is None else mean * np.exp(self.delta(inputs))

    def optimum(self, budget: float) -> np.ndarray:
        n, _ = optimal_allocation(self.law, self.params, np.asarray(budget), flops_per_param_token=self.k,
                                  max_params=self.max_params, max_tokens=self.max_tokens,
                                  unique_tokens=self.unique_tokens)
        return np.asarray(n)


def _allocation_problem(post: LawPosterior, k: float, max_params, max_tokens, unique_tokens, seed) -> _Problem:
    if "U" not in post.law.inputs:
        return _problem(post, k, max_params, max_tokens, seed)
    require_allocation_inputs(post.law, "the expected value of a run", unique_tokens)
    params = {name: flat(v.values) for name, v in post.published_draws().items()}
    return _FixedU(post.law, params, flat(post.log_noise(seed).values), k, max_params, max_tokens,
                   post.discrepancy_function(derived_seed(seed, 1)), float(unique_tokens))


class _Decision:
    """The big run's decision over posterior draws, evaluated under any weights on the draws."""

    def __init__(self, post: LawPosterior, budget: float, risk: Risk, k: float, max_params, max_tokens, seed,
                 unique_tokens: float | None = None):
        self.problem = problem = _allocation_problem(post, k, max_params, max_tokens, unique_tokens, seed)
        self.budget, self.risk = budget, risk
        n_opt = problem.optimum(budget)
        grid = problem.log_grid(budget, n_opt, 1.0, GRID)
        if grid is None:
            raise BayeslawError(f"budget {budget:.3g} cannot meet the caps on N and D")
        self.n = np.exp(grid)
        self.expected = problem.expected(self.n[:, None], budget)       # (G, S)
        self.by_draw = np.ascontiguousarray(self.expected.T)               # (S, G) for the weighted means
        self.best = self.expected.min(axis=0)                              # each draw's optimum on the grid
        self.n_opt = self.n[self.expected.argmin(axis=0)]
        if risk.name != "mean":  # risk measures sort the losses: on every RISK_STEP-th grid point (fewer sorts)
            self.n = self.n[::RISK_STEP]
            self.loss = self.expected[::RISK_STEP] * np.exp(problem.noise)  # (G', S) predictive loss
            self.order = np.argsort(self.loss, axis=1)
            self.sorted = np.take_along_axis(self.loss, self.order, axis=1)

    def values(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The decision's loss value and chosen N under each row of weights ``w`` (J, S), rows summing to 1."""
        if self.risk.name == "mean":
            means = w @ self.by_draw                                       # (J, G)
            best = means.argmin(axis=1)
            return means[np.arange(len(w)), best] - w @ self.best, self.n[best]
        risk = np.concatenate([self._risk(w[i:i + 4]) for i in range(0, len(w), 4)])
        best = risk.argmin(axis=1)
        return risk[np.arange(len(w)), best], self.n[best]

    def _risk(self, w: np.ndarray) -> np.ndarray:
        """The weighted quantile or CVaR of the predictive loss at every grid point: (J, G)."""
        q = self.risk.level
        ws = w[:, self.order]                                              # (J, G, S) in each row's loss order
        cum = np.cumsum(ws, axis=2)
        if self.risk.name == "quantile":
            idx = np.minimum((cum < q).sum(axis=2), cum.shape[2] - 1)
            return np.take_along_axis(np.broadcast_to(self.sorted, ws.shape), idx[..., None], axis=2)[..., 0]
        tail = np.clip(cum - q, 0.0, ws)  # CVaR_q: the weighted mean of the worst 1 - q of the mass
        return np.einsum("jgs,gs->jg", tail, self.sorted) / (1 - q)

    def marginal(self) -> float:
        """Loss per FLOP that adding FLOPs to the big run buys: the mean optimum's slope at the budget."""
        step = 1.1
        here = float(self.best.mean())
        more = float(self.problem.expected(self.n[:, None] * np.sqrt(step), self.budget * step).min(axis=0).mean())
        return max(here - more, 0.0) / (self.budget * (step - 1))


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Quantiles of ``values`` under normalised ``weights`` (the inverse of the weighted empirical CDF)."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    cum /= cum[-1]
    return values[order][np.minimum(np.searchsorted(cum, q), len(values) - 1)]


def ess_limit(min_ess: float, draws: int) -> float:
    """The ESS below which importance weights count as collapsed: ``min_ess`` of the draws if below 1, else itself."""
    return min_ess * draws if min_ess < 1 else min_ess


def ess(log_w: np.ndarray) -> np.ndarray:
    """Kish's effective sample size 1 / sum w^2 of normalised weights, per row of log weights."""
    w = np.exp(log_w - log_w.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    return 1.0 / (w ** 2).sum(axis=-1)


def _normalise(log_w: np.ndarray) -> np.ndarray:
    w = np.exp(log_w - log_w.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


class _Simulator:
    """Outcomes of candidate runs simulated from the posterior predictive, and their log likelihood per draw."""

    def __init__(self, post: LawPosterior):
        self.post, self.law = post, post.law
        self.params = {k: flat(v.values) for k, v in post.published_draws().items()}
        self.family, noise = post.run_noise()
        if self.family is None:
            raise BayeslawError("the expected value of a run needs a posterior with a noise model (a fit), "
                                "not published constants")
        self.noise = {k: flat(v) if isinstance(v, np.ndarray) else v for k, v in noise.items()}

    def mean(self, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """log mean and extra variance (the discrepancy's conditional mean in, its variance beside) at
        candidate inputs (M,): both (M, S)."""
        at = {k: np.asarray(v, dtype=float)[:, None] for k, v in inputs.items()}
        mu = np.log(self.law.function(self.params, at, np))
        cond = self.post.conditional
        if cond is None:
            return mu, np.zeros_like(mu)
        m, v = cond.evaluate(at)
        return mu + m, v

    def draw(self, mu: np.ndarray, var: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One outcome per row (draw index s_j) and candidate: mu[:, s_j] + spread + a new run's noise: (J, M)."""
        m, v = mu[:, rows].T, var[:, rows].T
        sel = {k: (val[rows][:, None] if isinstance(val, np.ndarray) else val) for k, val in self.noise.items()}
        shape = m.shape
        if self.family == "contaminated":
            regular = get_likelihood("normal").draw(rng, {"sigma": sel["sigma"]}, shape)
            out = {k.removeprefix("outlier_"): x for k, x in sel.items() if k.startswith("outlier_")}
            outlier = get_likelihood(sel["outlier"]).draw(rng, out, shape)
            eps = np.where(rng.uniform(size=shape) < sel["rate"], outlier, regular)
        else:
            eps = get_likelihood(self.family).draw(rng, sel, shape)
        return m + np.sqrt(v) * rng.standard_normal(shape) + eps

    def log_lik(self, y: np.ndarray, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
        """log p(y_j | theta_s) for outcomes y (J,) at one candidate whose mu, var are (S,): (J, S)."""
        r = y[:, None] - mu[None, :]
        n = self.noise
        if self.family == "contaminated":
            normal = get_likelihood("normal").logpdf(r, {"sigma": np.sqrt(n["sigma"] ** 2 + var)})
            out = {k.removeprefix("outlier_"): x for k, x in n.items() if k.startswith("outlier_")}
            outlier = get_likelihood(n["outlier"]).logpdf(r, out)
            with np.errstate(divide="ignore"):
                return np.logaddexp(np.log1p(-n["rate"]) + normal, np.log(n["rate"]) + outlier)
        return get_likelihood(self.family).logpdf(r, n)


def check_candidates(candidates: pd.DataFrame | str, k: float) -> pd.DataFrame:
    """Candidate runs as a frame with N and D (or N and C, D = C / (k N)), every value finite and > 0."""
    frame = pd.read_csv(candidates) if isinstance(candidates, str) else pd.DataFrame(candidates).copy()
    if "N" not in frame.columns or not ({"D", "C"} & set(frame.columns)):
        raise BayeslawError(f"candidates need columns N and D (or N and C); got {', '.join(map(str, frame.columns))}")
    if "D" not in frame.columns:
        frame["D"] = frame["C"] / (k * frame["N"])
    for col in ("N", "D", *(["U"] if "U" in frame.columns else [])):
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
        if len(bad):
            raise BayeslawError(f"candidates: column {col}, row {bad[0]}: must be a number > 0, got "
                                f"{frame[col].iloc[bad[0]]!r}")
        frame[col] = values
    if frame.empty:
        raise BayeslawError("no candidate runs")
    return frame[["N", "D", *(["U"] if "U" in frame.columns else [])]].reset_index(drop=True)


def candidate_grid(post: LawPosterior, spend: float, k: float, max_params: float | None = None,
                   points: int = 10) -> pd.DataFrame:
    """A log grid over (N, D) from the fitted runs' smallest N and D to 10 times their largest (N capped at
    ``max_params``), kept where a run costs at most ``spend`` FLOPs."""
    if not post.fitted_ranges or not {"N", "D"} <= set(post.fitted_ranges):
        raise BayeslawError("a grid of candidates needs the fitted runs' N and D: give --candidates FILE.csv")
    (n_lo, n_hi), (d_lo, d_hi) = post.fitted_ranges["N"], post.fitted_ranges["D"]
    n_hi = 10 * n_hi if max_params is None else min(10 * n_hi, max_params)
    n, d = np.meshgrid(np.geomspace(n_lo, n_hi, points), np.geomspace(d_lo, 10 * d_hi, points), indexing="ij")
    frame = pd.DataFrame({"N": n.ravel(), "D": d.ravel()})
    frame = frame[k * frame["N"] * frame["D"] <= spend].reset_index(drop=True)
    if frame.empty:
        raise BayeslawError(f"no run on the grid costs at most the spend {spend:.3g} FLOPs")
    return frame


def advise(source: Any, budget: float, spend: float, *, candidates: pd.DataFrame | str | None = None,
           risk: str | Risk = "mean", flops_per_param_token: float = 6.0, max_params: float | None = None,
           max_tokens: float | None = None, unique_tokens: float | None = None, outcomes: int = OUTCOMES,
           min_ess: float = MIN_ESS, seed: int | None = 0, simulated: bool = False,
           log_weights: np.ndarray | None = None, max_picks: int | None = None, refit: str = "auto") -> Advice:
    """Rank candidate runs by expected gain (EVSI) per FLOP for the decision at ``budget`` and pick a batch
    greedily under ``spend`` FLOPs (module docstring). ``candidates``: a frame or CSV with N and D (or C);
    None: ``candidate_grid``. ``unique_tokens`` fixes U for data-constrained laws (the decision and every
    candidate). ``simulated`` returns the picks' simulated outcomes and the draws' weights. ``log_weights`` (one
    per flattened draw) start from a reweighted posterior, e.g. after runs revealed with ``reveal``.
    ``max_picks`` stops the greedy batch after that many picks (one: the next run only).
    ``refit="auto"`` (default): a pick whose importance weights collapsed (median ESS below ``min_ess``) has its
    gain re-estimated by refitting with NUTS (:func:`refit_gain`, ``REFIT_OUTCOMES`` outcomes, at most
    ``MAX_REFITS`` picks; columns refit_gain and refit_gain_se of ``picks``, and a note); "never" only flags it."""
    if refit not in ("auto", "never"):
        raise BayeslawError(f"refit must be 'auto' or 'never', got {refit!r}")
    post = as_posterior(source)
    risk = Risk.parse(risk)
    if risk.name == "prob":
        raise BayeslawError("risk 'prob' is a step function of the outcome; use mean, quantile:Q or cvar:Q")
    if not spend > 0 or not budget > 0:
        raise BayeslawError(f"budget and spend must be > 0 FLOPs, got {budget:g} and {spend:g}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small products many times: threads only contend
        advice = _advise(post, float(budget), float(spend), candidates, risk, float(flops_per_param_token),
                         max_params, max_tokens, unique_tokens, outcomes, min_ess, seed, simulated, log_weights,
                         max_picks)
    if refit == "auto":
        advice = _refit_collapsed(advice, source, budget, risk, seed, float(flops_per_param_token), min_ess,
                                  unique_tokens is None and log_weights is None and max_params is None
                                  and max_tokens is None)
    return advice


REFIT_OUTCOMES = 5  # simulated outcomes refitted with NUTS for a pick whose importance weights collapsed
MAX_REFITS = 3  # picks re-estimated so at most


def _refit_collapsed(advice: Advice, source: Any, budget: float, risk: Risk, seed: int | None, k: float,
                     min_ess: float, can: bool) -> Advice:
    """The picks whose importance weights collapsed, with their gain re-estimated by refitting (said in a note)."""
    draws = advice.decision["draws"]
    limit = ess_limit(min_ess, draws)
    collapsed = [i for i, e in enumerate(advice.picks["ess"]) if e < limit]
    if not collapsed:
        return advice
    if not can or not hasattr(source, "runs"):
        why = ("the source is a posterior, not a fit with its runs" if not hasattr(source, "runs") else
               "the refit does not take unique_tokens, log_weights, max_params or max_tokens")
        return replace(advice, notes=[*advice.notes, f"picks {', '.join(str(i + 1) for i in collapsed)}: importance "
                                      f"weights collapsed and no refit was run ({why})"])
    picks = advice.picks.assign(refit_gain=np.nan, refit_gain_se=np.nan)
    lines = []
    for i in collapsed[:MAX_REFITS]:
        row = picks.iloc[i]
        got = refit_gain(source, {"N": row["N"], "D": row["D"]}, budget, outcomes=REFIT_OUTCOMES, risk=risk,
                         seed=seed, flops_per_param_token=k)
        picks.loc[picks.index[i], ["refit_gain", "refit_gain_se"]] = [got["gain"], got["se"]]
        lines.append(f"pick {i + 1}: {got['gain']:.3g} (se {got['se']:.2g}) against {row['marginal_gain']:.3g} by "
                     "importance weights")
    note = (f"importance weights collapsed for {len(collapsed)} pick(s) (median ESS below {limit:.0f} of {draws} "
            f"draws): gains re-estimated by refitting with NUTS on {REFIT_OUTCOMES} simulated outcomes each: "
            + "; ".join(lines))
    if len(collapsed) > MAX_REFITS:
        note += f" (the other {len(collapsed) - MAX_REFITS} not refitted)"
    return replace(advice, picks=picks, notes=[*advice.notes, note])


def _advise(post, budget, spend, candidates, risk, k, max_params, max_tokens, unique_tokens, outcomes, min_ess,
            seed, simulated, log_weights, max_picks) -> Advice:
    decision = _Decision(post, float(budget), risk, k, max_params, max_tokens, seed, unique_tokens)
    frame = candidate_grid(post, spend, k, max_params) if candidates is None else check_candidates(candidates, k)
    frame["flops"] = k * frame["N"] * frame["D"]
    over = int((frame["flops"] > spend).sum())
    frame = frame[frame["flops"] <= spend].reset_index(drop=True)
    if frame.empty:
        raise BayeslawError(f"no candidate run costs at most the spend {spend:.3g} FLOPs")
    sim = _Simulator(post)
    inputs = {"N": frame["N"].to_numpy(), "D": frame["D"].to_numpy()}
    if "U" in post.law.inputs:  # a candidate's own unique tokens, else the decision's
        inputs["U"] = frame["U"].to_numpy() if "U" in frame else np.full(len(frame), _unique(post, unique_tokens))
    mu, var = sim.mean(inputs)                                             # (M, S)
    S = mu.shape[1]
    rng = np.random.default_rng(derived_seed(seed, DESIGN_STREAM))
    log_w0 = np.zeros(S) if log_weights is None else np.asarray(log_weights, dtype=float)
    if log_w0.shape != (S,):
        raise BayeslawError(f"log_weights must hold one value per draw ({S}), got shape {log_w0.shape}")
    w0 = _normalise(log_w0)
    rows = (rng.choice(S, size=min(outcomes, S), replace=False) if log_weights is None else
            rng.choice(S, size=outcomes, p=w0))                            # the draw behind each outcome
    y = sim.draw(mu, var, rows, rng)                                       # (J, M), common to every round
    J = len(rows)
    value_now, n_now = decision.values(w0[None, :])
    picked_log_w = np.tile(log_w0, (J, 1))
    base_values = np.repeat(value_now, J)
    shrink_params = _shrinkable(post)
    order, marginal = [], []
    spent = 0.0
    first = None
    limit_ess = ess_limit(min_ess, S)
    cost = decision.marginal()
    while True:
        if max_picks is not None and len(order) >= max_picks:
            break
        affordable = [m for m in range(len(frame)) if m not in order and spent + frame["flops"].iloc[m] <= spend]
        if not affordable:
            if first is None:
                raise BayeslawError(f"no candidate run costs at most the spend {spend:.3g} FLOPs")
            break
        scores = {}
        for m in affordable:
            log_w = picked_log_w + sim.log_lik(y[:, m], mu[m], var[m])
            w = _normalise(log_w)
            values, _ = decision.values(w)
            gains = base_values - values
            scores[m] = (gains.mean(), gains.std(ddof=1) / np.sqrt(J), float(np.median(ess(log_w))), w)
        if first is None:
            first = scores
        eligible = [m for m in affordable if scores[m][0] > 2 * scores[m][1]
                    and scores[m][0] > cost * frame["flops"].iloc[m]]
        if not eligible:
            break
        best = max(eligible, key=lambda m: scores[m][0] / frame["flops"].iloc[m])
        gain, se, eff, w = scores[best]
        order.append(best)
        marginal.append((gain, se, eff))
        picked_log_w = picked_log_w + sim.log_lik(y[:, best], mu[best], var[best])
        base_values = decision.values(_normalise(picked_log_w))[0]
        spent += frame["flops"].iloc[best]
    table = frame.copy()
    table["gain"] = [first[m][0] for m in range(len(frame))]
    table["gain_se"] = [first[m][1] for m in range(len(frame))]
    table["gain_per_flop"] = table["gain"] / table["flops"]
    table["ess"] = [first[m][2] for m in range(len(frame))]
    why, shrink = zip(*[_why(shrink_params, first[m][3], w0) for m in range(len(frame))], strict=True)
    table["why"], table["shrink"] = list(why), list(shrink)
    table["picked"] = 0
    for i, m in enumerate(order, 1):
        table.loc[m, "picked"] = i
    table = table.sort_values("gain_per_flop", ascending=False).rename_axis("candidate").reset_index()
    picks = pd.DataFrame([{"pick": i + 1, "N": frame["N"].iloc[m], "D": frame["D"].iloc[m],
                           "flops": frame["flops"].iloc[m], "marginal_gain": g, "marginal_gain_se": se, "ess": e}
                          for i, (m, (g, se, e)) in enumerate(zip(order, marginal, strict=True))],
                         columns=["pick", "N", "D", "flops", "marginal_gain", "marginal_gain_se", "ess"])
    worth = bool(order)
    notes = [f"{over} candidate(s) cost more than the spend and were left out"] if over else []
    collapsed = table[table["ess"] < limit_ess]
    if len(collapsed):
        notes.append(f"importance weights collapsed for {len(collapsed)} of {len(table)} candidates (median ESS "
                     f"below {limit_ess:.0f} of {S} draws): their gains are unreliable; refit_gain estimates "
                     "them by refitting with NUTS")
    if worth:
        message = (f"{len(order)} run(s) advised for {spent:.3g} of {spend:.3g} FLOPs: expected gain "
                   f"{sum(g for g, _, _ in marginal):.3g} in the decision's {_value_name(risk)}")
    else:
        top = table.iloc[0]
        message = (f"more runs are not worth their cost: the best candidate's expected gain {top['gain']:.3g} "
                   f"(Monte Carlo se {top['gain_se']:.2g}) is within twice its Monte Carlo error or below the "
                   f"{cost * top['flops']:.3g} its {top['flops']:.3g} FLOPs would buy added to the big run")
    info = {"budget": float(budget), "risk": str(risk), "N": float(n_now[0]),
            "D": float(budget / (k * n_now[0])), "value": float(value_now[0]), "value name": _value_name(risk),
            "loss per FLOP": cost, "spend": float(spend), "spent": spent, "outcomes": J, "draws": S}
    sims = None
    if simulated:
        sims = xr.Dataset({"y": (("outcome", "pick"), y[:, order] if order else np.zeros((J, 0))),
                           "weight": (("outcome", "sample"), _normalise(picked_log_w)),
                           "draw_behind": (("outcome",), rows)},
                          coords={"pick": np.arange(1, len(order) + 1)})
    return Advice(table, picks, info, worth, message, notes, sims)


def _value_name(risk: Risk) -> str:
    return "expected regret" if risk.name == "mean" else f"{risk}"


def _shrinkable(post: LawPosterior) -> dict[str, np.ndarray]:
    """The published parameters that vary over the draws (a Fixed one does not), on the log scale when > 0."""
    out = {}
    for name, da in post.published_draws().items():
        v = flat(da.values).astype(float)
        v = np.log(v) if np.all(v > 0) else v
        if np.std(v) > 1e-12 * max(1.0, float(np.abs(v).mean())):
            out[name] = v
    return out


def _why(params: Mapping[str, np.ndarray], w: np.ndarray, w0: np.ndarray) -> tuple[str, float]:
    """The parameter whose posterior variance the run shrinks most: 1 - E_j[Var_wj] / Var_w0, the largest."""
    if not params:
        return "none", 0.0
    shares = {}
    for name, v in params.items():
        var = np.maximum(w @ v ** 2 - (w @ v) ** 2, 0.0)
        now = max(float(w0 @ v ** 2 - (w0 @ v) ** 2), 1e-300)
        shares[name] = 1.0 - float(np.mean(var)) / now
    name = max(shares, key=shares.get)
    return name, shares[name]


def _unique(post: LawPosterior, unique_tokens: float | None) -> float:
    if unique_tokens is None:
        raise BayeslawError(f"law '{post.law.name}' takes unique tokens U: give unique_tokens (--unique-tokens)")
    return float(unique_tokens)


def decision_summary(source: Any, budget: float, weights: np.ndarray | None = None, *,
                     flops_per_param_token: float = 6.0, unique_tokens: float | None = None,
                     seed: int | None = 0) -> dict[str, float]:
    """The median and 90% interval of each draw's optimal N at ``budget`` (with the fit's discrepancy), under
    ``weights`` on the flattened draws (uniform when None): the decision a retrospective compares."""
    post = as_posterior(source)
    dec = _Decision(post, float(budget), Risk("mean"), flops_per_param_token, None, None, seed, unique_tokens)
    w = np.full(len(dec.n_opt), 1.0 / len(dec.n_opt)) if weights is None else np.asarray(weights) / np.sum(weights)
    lo, med, hi = weighted_quantile(np.log(dec.n_opt), w, [0.05, 0.5, 0.95])
    return {"median": float(np.exp(med)), "lo": float(np.exp(lo)), "hi": float(np.exp(hi)),
            "width": float(hi - lo)}


def reveal(source: Any, runs: pd.DataFrame) -> np.ndarray:
    """log importance weights (flattened draws) after observing ``runs`` (columns of the law's inputs and
    target) with their real losses: the sum of each run's log likelihood as in ``advise``."""
    post = as_posterior(source)
    sim = _Simulator(post)
    law = post.law
    mu, var = sim.mean({x: runs[x].to_numpy(dtype=float) for x in law.inputs})
    y = np.log(runs[law.target].to_numpy(dtype=float))
    log_w = np.zeros(mu.shape[1])
    for i in range(len(y)):
        log_w += sim.log_lik(y[i:i + 1], mu[i], var[i])[0]
    return log_w


def figure(advice: Advice, source: Any):
    """The fitted runs, the candidates coloured by log10 expected gain per FLOP, and the picks numbered, over
    (log N, log D); the decision's allocation is starred."""
    from matplotlib.figure import Figure

    post = as_posterior(source)
    fig = Figure(figsize=(7, 5.5), layout="constrained")
    ax = fig.subplots()
    runs = post.fitted_runs or {}
    if "N" in runs and "D" in runs:
        ax.scatter(runs["N"], runs["D"], s=14, color="0.35", marker="o", label="fitted runs")
    table = advice.table
    score = np.log10(np.clip(table["gain_per_flop"].to_numpy(dtype=float), 1e-300, None))
    floor = np.nanmax(score) - 6 if np.isfinite(np.nanmax(score)) else 0.0
    points = ax.scatter(table["N"], table["D"], c=np.maximum(score, floor), s=40, marker="s", cmap="viridis",
                        label="candidates")
    fig.colorbar(points, ax=ax, label="log10 expected gain per FLOP")
    picked = table[table["picked"] > 0].sort_values("picked")
    ax.scatter(picked["N"], picked["D"], s=160, facecolors="none", edgecolors="C3", linewidths=2, label="picks")
    for _, row in picked.iterrows():
        ax.annotate(str(int(row["picked"])), (row["N"], row["D"]), xytext=(6, 6), textcoords="offset points",
                    color="C3")
    d = advice.decision
    ax.scatter([d["N"]], [d["D"]], marker="*", s=200, color="C1", label=f"decision at {d['budget']:.3g} FLOPs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("training tokens D")
    ax.set_title(advice.message if len(advice.message) < 70 else advice.message[:67] + "...", fontsize=9)
    ax.legend(fontsize=8, loc="best")
    return fig


def refit_gain(source: Any, candidate: Mapping[str, float], budget: float, *, outcomes: int = 5,
               risk: str | Risk = "mean", seed: int | None = 0, flops_per_param_token: float = 6.0,
               settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The expected gain of one candidate run by brute force: ``outcomes`` outcomes simulated as ``advise`` does,
    each added to the fit's runs and refitted with NUTS (the fit's settings, updated by ``settings``), and the
    decision's loss value taken on each refit. Returned beside the importance estimate on the same outcomes:
    gain, se, importance gain, paired se (of the per-outcome differences), importance se (the importance estimate's
    Monte Carlo error from the fit's draws, common to every outcome: between-chain batch means), and the per-outcome
    values."""
    import bayeslaw as bl
    from bayeslaw.compare import refit_settings

    if not hasattr(source, "runs"):
        raise BayeslawError("refit_gain needs a fit (its runs and settings), not a posterior")
    post = as_posterior(source)
    risk = Risk.parse(risk)
    k = float(flops_per_param_token)
    law = post.law
    at = {"N": np.array([float(candidate["N"])]), "D": np.array([float(candidate["D"])])}
    sim = _Simulator(post)
    mu, var = sim.mean(at)
    S = mu.shape[1]
    rng = np.random.default_rng(derived_seed(seed, DESIGN_STREAM))
    rows = rng.choice(S, size=outcomes, replace=False)
    y = sim.draw(mu, var, rows, rng)[:, 0]
    decision = _Decision(post, float(budget), risk, k, None, None, seed)
    now = float(decision.values(np.full((1, S), 1.0 / S))[0][0])
    log_w = sim.log_lik(y, mu[0], var[0])
    weighted = decision.values(_normalise(log_w))[0]
    # the importance estimate's own Monte Carlo error, common to every outcome (the same draws): its spread over
    # the chains, each chain's draws reweighted alone (batch means, one batch a chain)
    chains = post.draws.sizes.get("chain", 1)
    chain_of_draw = np.arange(S) // (S // chains)
    per_chain = [now - float(np.mean(decision.values(_normalise(np.where(chain_of_draw == c, log_w, -np.inf)))[0]))
                 for c in range(chains)]
    cols = [*law.inputs, law.target]
    refitted = []
    for value in y:
        frame = pd.concat([source.runs.frame[cols], pd.DataFrame({**at, law.target: [float(np.exp(value))]})],
                          ignore_index=True)
        result = bl.fit(law, frame, **{**refit_settings(source), **dict(settings or {})})
        after = as_posterior(result)
        dec = _Decision(after, float(budget), risk, k, None, None, seed)
        n = after.n_draws
        refitted.append(float(dec.values(np.full((1, n), 1.0 / n))[0][0]))
    refitted = np.array(refitted)
    return {"gain": now - refitted.mean(), "se": refitted.std(ddof=1) / np.sqrt(outcomes),
            "importance gain": now - weighted.mean(),
            "paired se": (refitted - weighted).std(ddof=1) / np.sqrt(outcomes),
            "importance se": float(np.std(per_chain, ddof=1) / np.sqrt(chains)) if chains > 1 else np.nan,
            "value now": now, "refit values": refitted, "importance values": weighted, "outcomes": y}
