"""Model discrepancy: the law plus a Gaussian process for what the law misses.

    log y_i = log f(theta; x_i) + delta(z_i) + eps_i,   eps_i ~ N(0, s^2)
    delta ~ GP(0, k),  k(z, z') = eta^2 exp(-sum_d (z_d - z'_d)^2 / (2 ell_d^2)) + tau^2 t(z) . t(z')
    z_d = (log x_d - centre_d) / halfwidth_d      (the fitted runs span [-1, 1] in every input)
    t(z) = (w_N z_N + w_D z_D) / (w_N + w_D)      (log N D from the fitted box's centre; laws in N and D)
    t(z) = z                                       (every other law: a trend along each input)

The first term is a smooth misfit (squared exponential, ARD); the second a linear trend along the scale,
an exponent the law gets slightly wrong, whose spread grows with the distance from the fitted runs (Rasmussen
& Williams 2006, sec. 5.4.3: sums of covariance functions; the linear term is Bayesian linear regression on
t). For laws in N and D the trend runs along log compute, so it is the same at every allocation of an
isoFLOP line and gives a risk-averse plan no direction of its own.

A scaling law is not exactly right (Kennedy & O'Hagan 2001, JRSS B 63:425; Brynjarsdottir & O'Hagan 2014,
Inverse Problems 30:114007): with independent noise alone the posterior believes the law's form exactly
and its intervals shrink with the number of runs however far out one predicts. Fitting is modular (Liu,
Bayarri & Berger 2009, Bayesian Analysis 4:119): the law is sampled alone (a GP sampled jointly took 2
minutes, R-hat 1.6, and absorbed the exponents), then the GP is estimated from the residuals of the
law's posterior-median fit, r_i = log y_i - median_s log f(theta_s; x_i), and conditioned, on every law
draw s, on that draw's residuals:

    delta_s(x*) = k*^T (K + s^2 I)^-1 r_s + sqrt(k(x*, x*) - k*^T (K + s^2 I)^-1 k*) xi,   xi ~ N(0, 1)

Three parts make it robust and decision-safe:
1. Outliers are capped. Residuals beyond +-CAP = 0.038 on log target (the amplitude prior's 90% quantile:
   a smooth misfit that large has prior probability 10%) are capped at it, for estimating and for
   conditioning, as in robust kriging on edited data (Hawkins & Cressie 1984, Math. Geol. 16:3). A run far
   off the law can then tell the GP "the law misses here, by at least CAP", but not set its amplitude.
2. The hyperparameters' uncertainty is propagated: (log eta, log ell_d, log s, log tau) are drawn from their
   posterior given the capped residuals by importance sampling from a mixture of multivariate t (4 df)
   centred at the modes of a grid of L-BFGS starts (scale: inverse Hessian; weights: Laplace evidence),
   in batches of 400 until the weights' ESS is twice the sets kept (4,000 proposals at most; one batch left
   an ESS of 16-26 on the kept Chinchilla runs below 1e20), then resampled systematically to HYPER_DRAWS
   sets; each law draw is conditioned on one set, the sets sharing the draws in proportion to their
   weights. One to a few seconds per fit.
3. A new run's noise is the discrepancy's nugget, N(0, s^2) of the draw's set: once the GP takes the smooth
   misfit, what is left is run-to-run scatter. (The law's own likelihood takes the misfit for noise: its
   Student-t nu is 1.3-2.8 on the Chinchilla runs, which makes intervals too peaked.) Outliers exist, as the
   capped runs show: with probability (capped + 1) / (runs + 2) a new run is one, drawn from the law's own
   likelihood (a contaminated normal, Tukey 1960). Without that, one held-out datablations run 0.135 off
   gave a log density of -10 to -15 per run (the plain law: +1.3).

Priors (units: log target, and each coordinate's fitted half-width):
  eta ~ Exponential(60): penalised complexity (Simpson et al. 2017, Stat. Sci. 32:1), mode at the exact law;
      P(eta > 0.05) = 5%, median 1.2%.
  tau ~ Exponential(60): the same for the trend's slope per half-width of t.
  ell_d ~ LogNormal(0, 0.5): misfit correlated over about the fitted half-width.
  s ~ HalfNormal(0.1): the scatter of single runs on log target.
None of the priors was tuned to a data set; for an exact law eta and tau sit near 0 and the intervals are
the plain law's.

Measured on the real Chinchilla runs (raw 245 and the 240 kept by Besiroglu et al.; fit on C <= 1e20 and
C <= 1e21, score the 104 and 23 runs above; sampler seeds 0-3: 16 cells). A cell passes when the 90% and
50% coverage lie inside the binomial 95% range (87-99 and 42-62 of 104; 18-23 and 7-16 of 23), the held-out
lpd beats the plain law's and the median error is at most 1.5%. Decisions on the full fits: decide(1e24,
"cvar:0.9") tokens per parameter (the point estimate's: 17-19), and min_budget(2.0, 0.9). Rows above the
line were measured on an earlier set of fits per cell, rows below on today's (every row of a block saw the
same draws; the hyperparameters re-estimated for each):
  model                                               cells  tokens/param  min_budget
  the previous default (no robustness, mode only)      6/16  raw 0.9-1.0   raw: none; kept 1.7e25-1.9e25
  likelihood weights: nugget s^2/w_i, w_i the law's
    Student-t precision weight of each run             0/16  31-36         2.5e23-3.3e23
    ... iterated on the GP's residuals (EM)           8/16  40-42         5.3e22-6.6e22
    ... leave-one-out residuals, from unit weights     8/16  38-39         kept 6e22; raw: none
  no robustness, hyperparameters sampled               6/16  -             -
  (log C, log D/N) coordinates, no robustness          5/16  40-49         7.3e22-7.9e22
  (log C, log D/N) coordinates, as chosen otherwise    8/16  39-42         7.6e22-9.7e22
  cap at the law's 99% noise quantile                 11/16  14-30         2.6e23-1.8e24
  cap 0.050 (eta's 95% quantile)                      14/16  11-23         kept 1.1e25-2.9e25 (> 1e25)
  the law's likelihood as a new run's noise (cap .05) 11/16  -             -
  ell ~ LogNormal(0, 1)                                7/16  15-28         5.5e23-1.1e24
  ----
  cap 0.038, sampled, nugget noise, no trend          14/16  19-25         1.8e23-3.6e23
  ... with a Matern 5/2 kernel                         8/16  -             -
  ... with a Matern 3/2 kernel                         4/16  -             -
  ... rational quadratic, alpha 1 / 2 / 4          12 / 13 / 14  -          -
  ... ell ~ inverse gamma, 1% below 0.05 or 0.1
      half-widths and 1% beyond the span (Betancourt) 8 / 12  -             -
  ... eta ~ Exponential(30) / Exponential(120)      15 / 12  -             -
  ... the law's draws widened to the linearised
      joint posterior (Kennedy-O'Hagan GLS)          11/16  -             -
  ... linear trend along each input (isotropic)      16/16  kept 34-35,    1.2e23-3.7e23
                                                             raw 18-20
  chosen: linear trend along log N D                 16/16  12-27         1.3e23-6.2e23
  ... trend ~ Exponential(30) / Exponential(120)    16 / 16  -             -
Without the trend the model missed kept runs, C <= 1e20, seeds 0 and 3, with 41 and 40 of 104 inside the 50%
intervals (92 and 93 inside the 90%). The held-out runs' PIT values showed why: at C > 1e20 the law under-predicts
the runs with fewer than 10 tokens per parameter (PIT 0.75-0.90) and over-predicts those with 30-100 (0.21), a
drift the runs below 1e20 cannot show and a stationary GP reverts from. Rougher kernels widen the intervals
everywhere beyond the runs: Matern 5/2 passes every C <= 1e20 cell but covers 17-18 of 23 at 50% above 1e21 (16
at most), and the evidence (Laplace, 4-10 nats) and held-out lpd favour Matern 3/2, which over-covers most (4/16).
The trend widens the intervals in proportion to the distance along the scale, so two decades out (C > 1e20: 49-60
of 104 at 50%, 93-96 at 90%, lpd 3.18-3.27 against 3.18-3.23 without it, median error 0.58-0.63% against
0.64-0.68%) more than one decade out (C > 1e21: 9-10 of 23 at 50%, 22-23 at 90%; lpd 3.53-3.61 against 3.55-3.63,
median error 0.48-0.58% against 0.43-0.54%). A trend along each input also passes 16/16 but leads CVaR
towards the allocation nearest the fitted box's centre (34-35 tokens per parameter on the kept runs): a
direction set by the runs' design, not by the law.
Decisions with the chosen model (full fits, sampler seeds 0-3 and 7): CVaR at 1e24 takes 20-27 (kept) and 12-17
(raw) tokens per parameter at 0.84-1.21 times the point plan's N, and 2.0 nats are reached with probability 0.9
at 1.3e23-6.2e23 FLOPs. On runs drawn exactly from the law (``bayeslaw.demo.chinchilla_sweep``) the 90% width is
0.94-0.98 times the plain law's (tests/test_discrepancy.py).
``COORDINATES``, ``ROBUST``, ``HYPERPARAMETERS``, ``NOISE``, ``CAP``, ``KERNEL`` and ``TREND`` select the
alternatives (set them before fitting; "weights" needs the law's noise passed to ``estimate``, which
``bayeslaw.fit`` does not do); ``benchmarks/calibration.py`` scores the default on every shared run table.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bayeslaw._gp import KERNELS, Sets, correlation
from bayeslaw._threads import one_thread
from bayeslaw.errors import BayeslawError
from bayeslaw.likelihoods import get_likelihood

KINDS = ("gp",)
ETA_RATE = 60.0          # eta ~ Exponential(60)
ELL_LOG_SD = 0.5         # ell ~ LogNormal(0, 0.5)
NUGGET_SD = 0.1          # s ~ HalfNormal(0.1)
TREND_RATE = 60.0        # tau ~ Exponential(60): the linear trend's slope per half-width of the trend coordinate
MAX_ESTIMATE_RUNS = 400  # hyperparameters from a seeded subset of larger tables (O(n^3) per evaluation)
MAX_CONDITION_RUNS = 1000
START_ELLS = (0.3, 1.0, 3.0)  # starting length scales of the mode search, per coordinate
PROPOSALS = 400          # importance-sampling proposals for the hyperparameters, per batch
MIN_ESS_PER_SET = 2.0    # batches are added until the weights' ESS is this many times the sets kept ...
MAX_PROPOSALS = 4000     # ... or this many proposals were drawn
PROPOSAL_DF = 4.0        # multivariate t proposal around each mode (heavier tails than the Laplace approximation)
HYPER_DRAWS = 32         # hyperparameter sets kept (each law draw is conditioned on one of them)
MAX_FACTOR_FLOATS = 2e7  # sets x runs^2 held as Cholesky inverses: fewer sets for large tables
# The alternatives measured in the module docstring (the defaults are the chosen model):
COORDINATES = "inputs"   # "inputs": the standardised log inputs; "compute": (log C, log D/N) for laws in N and D
ROBUST = "cap"           # "cap": residuals capped at CAP; "weights": nugget s^2 / w_i with the likelihood's
#                          precision weight w_i of each run (needs the law's noise); "none"
KERNEL = "se"            # the GP's kernel: "se" (squared exponential), "matern32" or "matern52"
TREND = "scale"          # the linear trend: "scale" (along log compute for laws in N and D, else along each input)
#                          or "none" (the squared exponential alone)
HYPERPARAMETERS = "sample"  # "sample": draws from the posterior given the residuals; "mode": the mode alone
NOISE = "nugget"         # a new run's noise: "nugget" N(0, s^2) of its hyperparameter set; "law": the law's own
CAP = float(np.log(10.0) / ETA_RATE)  # 0.0384: eta's prior 90% quantile, P(eta > CAP) = 10%
LOG_BOUNDS = {"eta": (np.log(1e-6), np.log(5.0)), "ell": (np.log(0.02), np.log(50.0)), "s": (np.log(1e-6), np.log(5.0))}

HyperSet = tuple[float, float, tuple[float, ...], float, float]  # (weight, eta, ells, nugget, trend)


def check_kind(kind: str | None) -> str | None:
    """None (or 'none') for no discrepancy, else one of KINDS."""
    if kind is None or str(kind).lower() in ("none", "off", ""):
        return None
    if kind not in KINDS:
        raise BayeslawError(f"unknown discrepancy '{kind}'; allowed: {', '.join(KINDS)} or none")
    return kind


def robust_weights(residuals: np.ndarray, likelihood: str | None, sigma: float | None = None,
                   nu: float | None = None) -> np.ndarray:
    """Each run's posterior precision weight under the likelihood's scale mixture of normals, capped at 1
    (``Likelihood.precision_weights``: Student-t (nu + 1) / (nu + (r / sigma)^2), Laplace sigma / |r|, normal and
    no likelihood 1). Capped at 1: runs are only ever down-weighted.
    """
    r = np.abs(np.asarray(residuals, dtype=float))
    if likelihood is None:
        return np.ones_like(r)
    return np.minimum(get_likelihood(likelihood).precision_weights(r, sigma, nu), 1.0)


def _coordinate_values(values: Mapping[str, Any], inputs: tuple[str, ...], transform: str,
                       log: tuple[bool, ...] | None = None) -> tuple[list[np.ndarray], tuple[bool, ...]]:
    """The GP's coordinates before standardisation, (log N D, log D/N, other inputs) or the inputs themselves,
    each on the log scale where ``log`` says so (without ``log``: where every value is positive), and the flags."""
    arrays = {name: np.asarray(values[name], dtype=float) for name in inputs}
    out: list[np.ndarray] = []
    rest = list(inputs)
    if transform == "compute":
        log_n, log_d = np.log(arrays["N"]), np.log(arrays["D"])
        out = [log_n + log_d, log_d - log_n]
        rest = [name for name in inputs if name not in ("N", "D")]
    first = len(out)
    flags = list(log[:first]) if log is not None else [True] * first
    for i, name in enumerate(rest):
        v = arrays[name]
        use_log = bool(np.all(v > 0)) if log is None else log[first + i]
        flags.append(use_log)
        out.append(np.log(v) if use_log else v)
    return out, tuple(flags)


@dataclass(frozen=True)
class Discrepancy:
    """A GP discrepancy: its coordinates' standardisation, hyperparameters, and the fitted runs' weights.

    ``eta``, ``ells``, ``nugget`` are the posterior mode of the hyperparameters; ``draws`` holds the
    weighted hyperparameter sets (weight, eta, ells, nugget, trend) the law draws are conditioned on (empty: the
    mode alone); ``weights`` the robust precision weight of each fitted run (empty: all 1).
    """

    kind: str
    inputs: tuple[str, ...]
    log: tuple[bool, ...]
    centre: tuple[float, ...]
    halfwidth: tuple[float, ...]
    eta: float
    ells: tuple[float, ...]
    nugget: float
    draws: tuple[HyperSet, ...] = ()
    weights: tuple[float, ...] = ()
    transform: str = "inputs"
    cap: float = 0.0  # residuals are capped at +-cap before estimating and conditioning (0: not capped)
    noise: str = "law"  # a new run's noise: "nugget" (N(0, s^2) of its hyperparameter set) or "law"
    capped: int = 0  # fitted runs whose residual exceeded the cap
    n_runs: int = 0  # fitted runs (for the outlier rate of new runs)
    ess: float = 0.0  # effective sample size of the hyperparameters' importance sampling (0: not sampled)
    covariance: str = "se"  # the kernel's family: "se" (squared exponential), "matern32" or "matern52"
    trend: float = 0.0  # the linear trend's slope tau at the mode (0: no trend)
    trend_axis: str = "none"  # "compute": along log N D; "inputs": along each coordinate; "none" (fits before it)

    def __post_init__(self):
        if self.covariance not in KERNELS:
            raise BayeslawError(f"unknown discrepancy kernel '{self.covariance}'; allowed: {', '.join(KERNELS)}")
        if self.noise not in ("nugget", "law"):
            raise BayeslawError(f"unknown discrepancy noise '{self.noise}'; allowed: nugget, law")
        if self.transform not in ("inputs", "compute"):
            raise BayeslawError(f"unknown discrepancy coordinates '{self.transform}'; allowed: inputs, compute")
        if self.trend_axis not in TREND_AXES:
            raise BayeslawError(f"unknown discrepancy trend axis '{self.trend_axis}'; allowed: {', '.join(TREND_AXES)}")
        if "compute" in (self.transform, self.trend_axis) and not {"N", "D"} <= set(self.inputs):
            raise BayeslawError("discrepancy coordinates or trend 'compute' (log C, log D/N) need inputs N and D, got "
                                f"{', '.join(self.inputs)}")

    @property
    def coordinates(self) -> tuple[str, ...]:
        """Names of the GP's coordinates: C and D/N for laws in N and D (with 'compute'), else the inputs."""
        if self.transform == "compute":
            return ("C", "D/N", *(x for x in self.inputs if x not in ("N", "D")))
        return self.inputs

    def to_json(self) -> str:
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()})

    @classmethod
    def from_json(cls, text: str) -> Discrepancy | None:
        if not text:
            return None
        raw = json.loads(text)

        def number(value: Any, what: str, whole: bool = False) -> Any:
            if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
                raise ValueError(f"{what} must be a {'whole ' if whole else ''}number, got {str(value)[:40]}")
            return value if whole else float(value)

        stored = raw.get("draws", raw.get("modes", []))  # "modes": fits saved before hyperparameter draws
        sets = tuple((number(w, "a draw's weight"), number(e, "a draw's eta"), tuple(ls), number(n, "a draw's nugget"),
                      number(t[0] if t else 0.0, "a draw's trend"))
                     for w, e, ls, n, *t in stored)  # four numbers: fits saved before the trend
        return cls(raw["kind"], *(tuple(raw[k]) for k in ("inputs", "log", "centre", "halfwidth")),
                   number(raw["eta"], "eta"), tuple(raw["ells"]), number(raw["nugget"], "nugget"), sets,
                   tuple(number(w, "a weight") for w in raw.get("weights", [])), raw.get("transform", "inputs"),
                   number(raw.get("cap", 0.0), "cap"), raw.get("noise", "law"),
                   number(raw.get("capped", 0), "capped", whole=True),
                   number(raw.get("n_runs", 0), "n_runs", whole=True), number(raw.get("ess", 0.0), "ess"),
                   raw.get("covariance", "se"), number(raw.get("trend", 0.0), "trend"), raw.get("trend_axis", "none"))

    def validate(self, inputs: Sequence[str]) -> None:
        """Raise ValueError naming the field when a stored discrepancy does not fit a law with ``inputs``."""
        def numbers(values: Any, what: str, n: int | None, positive: bool = False) -> None:
            ok = isinstance(values, tuple) and (n is None or len(values) == n) and all(
                isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
                and (v > 0 if positive else True) for v in values)
            if not ok:
                size = f"{n} " if n is not None else ""
                raise ValueError(f"{what} must be {size}finite{' positive' if positive else ''} numbers")

        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.inputs != tuple(inputs):
            raise ValueError(f"inputs must be the law's ({', '.join(inputs)}), got {self.inputs!r}")
        d = len(self.coordinates)
        if len(self.log) != d or not all(isinstance(v, bool) for v in self.log):
            raise ValueError(f"log must be {d} true/false values")
        numbers(self.centre, "centre", d)
        numbers(self.halfwidth, "halfwidth", d, positive=True)
        numbers(self.ells, "ells", d, positive=True)
        numbers((self.eta, self.nugget), "eta and nugget", 2, positive=True)
        numbers((self.trend,), "trend", 1)
        for i, (w, eta, ells, nugget, trend) in enumerate(self.draws):
            numbers((w, eta, nugget, trend), f"draws[{i}] weight, eta, nugget and trend", 4)
            numbers(ells, f"draws[{i}] length scales", d, positive=True)
            if w < 0 or eta <= 0 or nugget <= 0 or trend < 0:
                raise ValueError(f"draws[{i}] needs a weight >= 0, eta, nugget > 0 and a trend >= 0")
        if self.draws and not sum(w for w, *_ in self.draws) > 0:
            raise ValueError("the hyperparameter draws' weights must not all be 0")
        if self.weights:
            numbers(self.weights, "weights", self.n_runs, positive=True)
        numbers((self.cap, self.ess), "cap and ess", 2)
        if self.cap < 0 or not 0 <= self.capped <= self.n_runs:
            raise ValueError("cap must be >= 0 and capped between 0 and n_runs")

    def to_dataset(self) -> Any:
        """The hyperparameter sets as ArviZ-style variables along ``hyperset`` (weight, eta, ell per coordinate,
        nugget, trend) with the coordinates' centre and half-width: a view of the stored JSON, which stays the
        source of truth (an ``xarray.Dataset``)."""
        import xarray as xr

        sets = self.hyperparameters()
        hyper = {"hyperset": np.arange(len(sets)), "coordinate": list(self.coordinates)}
        return xr.Dataset(
            {"weight": ("hyperset", [s[0] for s in sets]), "eta": ("hyperset", [s[1] for s in sets]),
             "ell": (("hyperset", "coordinate"), [list(s[2]) for s in sets]),
             "nugget": ("hyperset", [s[3] for s in sets]), "trend": ("hyperset", [s[4] for s in sets]),
             "centre": ("coordinate", list(self.centre)), "halfwidth": ("coordinate", list(self.halfwidth))},
            coords=hyper, attrs={"kind": self.kind, "covariance": self.covariance, "trend_axis": self.trend_axis,
                                 "transform": self.transform, "ess": self.ess})

    def hyperparameters(self) -> tuple[HyperSet, ...]:
        """(weight, eta, ells, nugget, trend) of each hyperparameter set; the mode alone when there are no draws."""
        return self.draws or ((1.0, self.eta, self.ells, self.nugget, self.trend),)

    @property
    def outlier_rate(self) -> float:
        """The chance that a new run is an outlier, (capped + 1) / (runs + 2): the posterior mean of a rate with a
        uniform prior given the fitted runs whose residuals were capped (0 without a cap)."""
        return (self.capped + 1) / (self.n_runs + 2) if self.cap > 0 and self.n_runs > 0 else 0.0

    def amplitude(self, q: float = 0.5) -> float:
        """The q-quantile of eta over the hyperparameter sets (by weight)."""
        return self._quantile(q, 1)

    def trend_slope(self, q: float = 0.5) -> float:
        """The q-quantile of the trend's slope tau over the hyperparameter sets (by weight; 0 without a trend)."""
        return self._quantile(q, 4)

    def _quantile(self, q: float, which: int) -> float:
        sets = self.hyperparameters()
        order = np.argsort([h[which] for h in sets])
        cum = np.cumsum([sets[i][0] for i in order])
        return float(sets[order[min(int(np.searchsorted(cum, q * cum[-1])), len(order) - 1)]][which])

    def describe(self) -> str:
        """One line: coordinates, amplitude with its 90% interval, length scales, and the runs treated as outliers."""
        over = ", ".join(f"log {x}" if lg else x for x, lg in zip(self.coordinates, self.log, strict=True))
        outliers = sum(w < 0.5 for w in self.weights)
        robust = f"; {outliers} run(s) down-weighted below half as outliers of the likelihood" if outliers else ""
        if self.capped:
            robust += f"; {self.capped} run(s) with residuals beyond +-{self.cap:.2g} capped as outliers"
        if max(self.amplitude(0.95), self.trend_slope(0.95)) < 1e-4:
            return (f"GP discrepancy over {over}: none found in the residuals (amplitude and trend < 1e-4; the plain "
                    f"law's intervals){robust}")
        ells = ", ".join(f"{x} {e:.2g}" for x, e in zip(self.coordinates, self.ells, strict=True))

        def spread(quantile: Callable[[float], float]) -> str:
            if len(self.hyperparameters()) == 1:
                return f"{quantile(0.5):.2g}"
            return f"{quantile(0.5):.2g} (90%: {quantile(0.05):.2g}-{quantile(0.95):.2g})"
        more = (f"; {len(self.draws)} hyperparameter draws (importance-sampling ESS {self.ess:.0f})"
                if len(self.hyperparameters()) > 1 else "")
        trend = ""
        if self.trend_axis != "none":
            axis = "log N D" if self.trend_axis == "compute" else "each coordinate"
            trend = f"; linear trend along {axis} {spread(self.trend_slope)} per half-width"
        return (f"GP discrepancy over {over}: amplitude {spread(self.amplitude)} on log target, length scales at the "
                f"mode {ells}{trend}{more}{robust}")

    def standardise(self, values: Mapping[str, Any]) -> np.ndarray:
        """z of the given inputs, shape (broadcast shape of the inputs) + (number of coordinates,)."""
        raw, _ = _coordinate_values(values, self.inputs, self.transform, self.log)
        out = [(u - c) / w for u, c, w in zip(raw, self.centre, self.halfwidth, strict=True)]
        return np.stack(np.broadcast_arrays(*out), axis=-1)

    def trend_basis(self, z: np.ndarray) -> np.ndarray:
        """The trend's coordinates t(z), shape (..., m): for "compute" one column, log N D relative to the centre
        of the fitted box in units of its half-width, (w_N z_N + w_D z_D) / (w_N + w_D) (the first coordinate
        with ``transform`` "compute"), constant along an isoFLOP line; for "inputs" z itself; for "none" nothing."""
        if self.trend_axis == "none":
            return z[..., :0]
        if self.trend_axis == "inputs":
            return z
        if self.transform == "compute":
            return z[..., :1]
        w = np.zeros(z.shape[-1])
        for name in ("N", "D"):
            i = self.inputs.index(name)
            w[i] = self.halfwidth[i]
        return (z @ w / w.sum())[..., None]

    def kernel(self, a: np.ndarray, b: np.ndarray, eta: float | None = None, ells=None,
               trend: float | None = None) -> np.ndarray:
        """k(a_i, b_j) = eta^2 R(a_i - b_j; ell) + tau^2 t(a_i) . t(b_j) for standardised a (..., d), b (n, d)."""
        eta = self.eta if eta is None else eta
        trend = self.trend if trend is None else trend
        diff = (a[..., None, :] - b) / np.asarray(self.ells if ells is None else ells)
        out = eta ** 2 * correlation(self.covariance, np.sum(diff ** 2, axis=-1))[0]
        if trend > 0:
            out = out + trend ** 2 * (self.trend_basis(a) @ self.trend_basis(b).T)
        return out

    def prior_variance(self, a: np.ndarray, eta: float, trend: float) -> np.ndarray:
        """k(a, a) = eta^2 + tau^2 |t(a)|^2: grows with the distance from the fitted box's centre along the trend."""
        return eta ** 2 + trend ** 2 * np.sum(self.trend_basis(a) ** 2, axis=-1)


TREND_AXES = ("compute", "inputs", "none")


def standardisation(values: Mapping[str, np.ndarray], transform: str = "inputs"
                    ) -> tuple[tuple[bool, ...], tuple[float, ...], tuple[float, ...]]:
    """Log flags of the coordinates, and the centre and half-width of the fitted range of each."""
    raw, logs = _coordinate_values(values, tuple(values), transform)
    centres, widths = [], []
    for u in raw:
        lo, hi = float(np.min(u)), float(np.max(u))
        centres.append((lo + hi) / 2)
        widths.append((hi - lo) / 2 if hi > lo else 1.0)
    return tuple(logs), tuple(centres), tuple(widths)


class _HyperPosterior:
    """-log p(u | r) up to a constant, u = (log eta, log ell_1..d, log s[, log tau]), with its gradient.

        r ~ N(0, eta^2 R(ell) + s^2 diag(1 / w) [+ tau^2 T T^T]),  R the kernel's correlation of the runs,
        T their trend coordinates (``basis``, n x m; None or m = 0: no trend)
    plus the priors (and the Jacobian of the log transform): eta ~ Exponential(ETA_RATE),
    log ell ~ Normal(0, ELL_LOG_SD), s ~ HalfNormal(NUGGET_SD), tau ~ Exponential(TREND_RATE).
    """

    def __init__(self, z: np.ndarray, r: np.ndarray, weights: np.ndarray, covariance: str = "se",
                 basis: np.ndarray | None = None):
        self.sq = (z[None, :, :] - z[:, None, :]).transpose(2, 0, 1) ** 2  # (d, n, n)
        self.r, self.inverse_w, self.covariance = r, 1.0 / weights, covariance
        self.d = z.shape[1]
        self.has_trend = basis is not None and basis.shape[-1] > 0
        self.outer = basis @ basis.T if self.has_trend else None

    def __call__(self, u: np.ndarray, gradient: bool = True):
        from scipy import linalg

        d = self.d
        eta, log_ells, s = np.exp(u[0]), u[1:1 + d], np.exp(u[1 + d])
        scaled = self.sq / np.exp(2 * log_ells)[:, None, None]
        base, slope = correlation(self.covariance, scaled.sum(axis=0))
        cov = eta ** 2 * base + np.diag(s ** 2 * self.inverse_w + 1e-12)
        prior = ETA_RATE * eta - u[0] + np.sum(log_ells ** 2) / (2 * ELL_LOG_SD ** 2) + s ** 2 / (2 * NUGGET_SD ** 2)
        prior -= u[1 + d]
        if self.has_trend:
            tau = np.exp(u[2 + d])
            cov = cov + tau ** 2 * self.outer
            prior += TREND_RATE * tau - u[2 + d]
        try:
            chol = linalg.cholesky(cov, lower=True)
        except linalg.LinAlgError:
            return (1e10, np.zeros_like(u)) if gradient else np.inf
        alpha = linalg.cho_solve((chol, True), self.r)
        value = 0.5 * self.r @ alpha + np.sum(np.log(np.diag(chol))) + prior
        if not gradient:
            return float(value)
        inverse, _ = linalg.lapack.dpotri(chol, lower=True)
        inverse = np.tril(inverse) + np.tril(inverse, -1).T
        w = inverse - np.outer(alpha, alpha)  # 2 d nll / d cov
        grad = np.empty_like(u)
        grad[0] = np.sum(w * eta ** 2 * base) + ETA_RATE * eta - 1
        for i in range(d):
            grad[1 + i] = 0.5 * np.sum(w * eta ** 2 * slope * scaled[i]) + log_ells[i] / ELL_LOG_SD ** 2
        grad[1 + d] = np.sum(np.diag(w) * s ** 2 * self.inverse_w) + s ** 2 / NUGGET_SD ** 2 - 1
        if self.has_trend:
            grad[2 + d] = np.sum(w * tau ** 2 * self.outer) + TREND_RATE * tau - 1
        return float(value), grad


def _hessian(f: _HyperPosterior, u: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central differences of the analytic gradient, symmetrised."""
    cols = [(f(u + step * e)[1] - f(u - step * e)[1]) / (2 * step) for e in np.eye(len(u))]
    h = np.array(cols)
    return (h + h.T) / 2


def _proposal_covariance(h: np.ndarray) -> np.ndarray:
    """Inverse Hessian with eigenvalues kept in [1/16, 4] e-folds^2 (a mode on a bound, a flat direction)."""
    values, vectors = np.linalg.eigh(h)
    values = np.clip(values, 0.25, 16.0)
    return (vectors / values) @ vectors.T


def _bounds(f: _HyperPosterior) -> list[tuple[float, float]]:
    """Bounds of u = (log eta, log ell_1..d, log s[, log tau])."""
    return [LOG_BOUNDS["eta"], *([LOG_BOUNDS["ell"]] * f.d), LOG_BOUNDS["s"], *([LOG_BOUNDS["eta"]] * f.has_trend)]


def _modes(f: _HyperPosterior, spread: float) -> list[tuple[float, np.ndarray]]:
    """Local minima of -log p from a grid of starting length scales, best first, duplicates removed."""
    from scipy import optimize

    d = f.d
    grid = itertools.product(*[START_ELLS] * d) if d <= 2 else [(e,) * d for e in START_ELLS]
    found: list[tuple[float, np.ndarray]] = []
    for ells0 in grid:  # the posterior can be multimodal in the length scales: start from a grid
        start = np.array([np.log(spread), *np.log(ells0), np.log(spread / 2), *[np.log(spread / 2)] * f.has_trend])
        res = optimize.minimize(f, start, jac=True, method="L-BFGS-B", bounds=_bounds(f))
        if np.isfinite(res.fun) and not any(np.allclose(res.x, x, atol=0.05) for _, x in found):
            found.append((float(res.fun), res.x))
    found.sort(key=lambda item: item[0])
    return found


def _sample(f: _HyperPosterior, modes: list[tuple[float, np.ndarray]], rng: np.random.Generator,
            n_sets: int) -> tuple[list[tuple[float, np.ndarray]], float]:
    """Importance sampling from a mixture of multivariate t around the modes (scale: inverse Hessian),
    each mode weighted by its Laplace evidence; systematic resampling to ``n_sets`` equally weighted
    draws, duplicates merged. Returns (weight, u) sets and the importance weights' effective sample size."""
    from scipy import stats
    from scipy.special import logsumexp

    centres = [u for _, u in modes]
    covs = [_proposal_covariance(_hessian(f, u)) for u in centres]
    log_mix = np.array([-v + 0.5 * np.linalg.slogdet(c)[1] for (v, _), c in zip(modes, covs, strict=True)])
    log_mix -= logsumexp(log_mix)
    dists = [stats.multivariate_t(loc=m, shape=c, df=PROPOSAL_DF) for m, c in zip(centres, covs, strict=True)]
    lo, hi = np.array(_bounds(f)).T
    batches: list[tuple[np.ndarray, np.ndarray]] = []
    while True:  # batches of proposals until the weights' ESS reaches MIN_ESS_PER_SET per kept set
        comp = rng.choice(len(modes), PROPOSALS, p=np.exp(log_mix))
        draws = np.clip(np.array([dists[k].rvs(random_state=rng) for k in comp]).reshape(PROPOSALS, -1), lo, hi)
        log_q = logsumexp(np.stack([lm + d.logpdf(draws) for lm, d in zip(log_mix, dists, strict=True)]), axis=0)
        log_p = -np.array([f(u, gradient=False) for u in draws])
        batches.append((draws, np.where(np.isfinite(log_p), log_p - log_q, -np.inf)))
        log_w = np.concatenate([b[1] for b in batches])
        w = np.exp(log_w - logsumexp(log_w))
        ess = float(1.0 / np.sum(w ** 2))
        if ess >= MIN_ESS_PER_SET * n_sets or len(batches) * PROPOSALS >= MAX_PROPOSALS:
            break
    draws = np.concatenate([b[0] for b in batches])
    positions = (rng.uniform() + np.arange(n_sets)) / n_sets  # systematic resampling
    picked = np.minimum(np.searchsorted(np.cumsum(w), positions), len(w) - 1)
    index, counts = np.unique(picked, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return [(counts[i] / n_sets, draws[index[i]]) for i in order], ess


def _as_set(weight: float, u: np.ndarray, d: int) -> HyperSet:
    """(weight, eta, ells, nugget, trend) from u = (log eta, log ell_1..d, log s[, log tau])."""
    trend = float(np.exp(u[2 + d])) if len(u) > 2 + d else 0.0
    ells = tuple(float(v) for v in np.exp(u[1:1 + d]))
    return float(weight), float(np.exp(u[0])), ells, float(np.exp(u[1 + d])), trend


def estimate(kind: str, inputs: Mapping[str, np.ndarray], residuals: np.ndarray, seed: int = 0, *,
             likelihood: str | None = None, sigma: float | None = None, nu: float | None = None) -> Discrepancy:
    """The GP discrepancy given the residuals of the law's fit at its runs (log target minus the law's fit).

    Residuals are capped at +-CAP (``ROBUST = "cap"``); the hyperparameters' mode and draws from their
    posterior (``HYPERPARAMETERS``) are stored in the result. ``likelihood``, ``sigma`` and ``nu`` (the law's
    noise, posterior medians) are needed only by the measured alternative ``ROBUST = "weights"``.
    """
    kind = check_kind(kind)
    if kind is None:
        raise BayeslawError("estimate needs a discrepancy kind, e.g. 'gp'")
    names = tuple(inputs)
    r = np.asarray(residuals, dtype=float)
    if r.ndim != 1 or any(np.shape(inputs[x]) != r.shape for x in names):
        raise BayeslawError(f"estimate needs one residual per run: {r.shape} residuals for inputs of shape "
                            f"{', '.join(str(np.shape(inputs[x])) for x in names)}")
    if not np.all(np.isfinite(r)):
        raise BayeslawError("estimate needs finite residuals (log target minus the law's log fit)")
    transform = "compute" if COORDINATES == "compute" and {"N", "D"} <= set(names) else "inputs"
    logs, centres, widths = standardisation(inputs, transform)
    trend_axis = "none" if TREND == "none" else "compute" if {"N", "D"} <= set(names) else "inputs"
    cap = CAP if ROBUST == "cap" else 0.0
    capped = int(np.sum(np.abs(r) > cap)) if cap else 0
    if cap:
        r = np.clip(r, -cap, cap)
    if ROBUST == "weights" and likelihood is None:
        raise BayeslawError("ROBUST = 'weights' needs the law's likelihood and noise (estimate(..., likelihood=, "
                            "sigma=, nu=)); bayeslaw.fit passes none")
    weights = robust_weights(r, likelihood, sigma, nu) if ROBUST == "weights" else np.ones_like(r)
    stored_weights = tuple(float(w) for w in weights) if np.any(weights < 1) else ()
    spec = Discrepancy(kind, names, logs, centres, widths, 0.0, (1.0,) * len(logs), 1.0, transform=transform,
                       covariance=KERNEL, trend_axis=trend_axis)
    z = spec.standardise(inputs)
    rng = np.random.default_rng(seed)
    if len(r) > MAX_ESTIMATE_RUNS:
        keep = np.sort(rng.choice(len(r), MAX_ESTIMATE_RUNS, replace=False))
        z, r, weights = z[keep], r[keep], weights[keep]
    spread = max(float(np.sqrt(np.average(r ** 2, weights=weights))), 1e-6)
    posterior = _HyperPosterior(z, r, weights, KERNEL, spec.trend_basis(z))
    sets, ess = (), 0.0
    with one_thread():  # small matrices: BLAS threads only contend
        modes = _modes(posterior, spread)
        if HYPERPARAMETERS == "sample":
            n_sets = int(np.clip(MAX_FACTOR_FLOATS // min(len(residuals), MAX_CONDITION_RUNS) ** 2, 4, HYPER_DRAWS))
            drawn, ess = _sample(posterior, modes, rng, n_sets)
            sets = tuple(_as_set(w, u, z.shape[1]) for w, u in drawn)
    _, eta, ells, nugget, trend = _as_set(1.0, modes[0][1], z.shape[1])
    return Discrepancy(kind, names, logs, centres, widths, eta, ells, nugget, sets, stored_weights, transform,
                       cap=cap, noise="nugget" if NOISE == "nugget" else "law", capped=capped, n_runs=len(residuals),
                       ess=ess, covariance=KERNEL, trend=trend, trend_axis=trend_axis)


def _cholesky(cov: np.ndarray, eta: float) -> np.ndarray:
    """Lower Cholesky factor, with jitter growing from 1e-12 until it succeeds (repeated runs, tiny nugget)."""
    from scipy import linalg

    jitter = 1e-12
    while True:
        try:
            return linalg.cholesky(cov + jitter * np.eye(len(cov)), lower=True)
        except linalg.LinAlgError:
            if jitter > 1e-2 * max(eta ** 2, 1e-12):
                raise
            jitter *= 100


class Conditional:
    """The discrepancy conditioned, on every posterior draw, on that draw's residuals at the fitted runs.

    Each posterior draw is assigned one hyperparameter set (seeded, in proportion to the sets' weights),
    so the predictive averages over the hyperparameters' posterior. What depends only on the fit (each set's
    Cholesky inverse, the weights alpha = K^-1 r of its draws, the runs' trend basis) is computed here once;
    ``bayeslaw._gp`` evaluates the conditional from it.
    """

    def __init__(self, spec: Discrepancy, inputs: Mapping[str, np.ndarray],
                 residuals: np.ndarray | Callable[[np.ndarray], np.ndarray], seed: int = 0):
        """``residuals``: (n, S), log target minus the law's log mean on each of S flattened draws; or a function
        of the indices of the runs conditioned on (at most ``MAX_CONDITION_RUNS``) that returns their rows, so
        that a large table never needs all n x S residuals in memory."""
        from scipy import linalg

        z = spec.standardise(inputs)
        weights = np.asarray(spec.weights, dtype=float) if spec.weights else np.ones(len(z))
        if len(weights) != len(z):
            raise BayeslawError(f"the discrepancy holds weights for {len(weights)} runs, given {len(z)} runs")
        rng = np.random.default_rng(seed)
        keep = np.arange(len(z))
        if len(z) > MAX_CONDITION_RUNS:
            keep = np.sort(rng.choice(len(z), MAX_CONDITION_RUNS, replace=False))
            z, weights = z[keep], weights[keep]
        residuals = residuals(keep) if callable(residuals) else np.asarray(residuals)[keep]
        if spec.cap > 0:
            residuals = np.clip(residuals, -spec.cap, spec.cap)
        self.spec, self.z, self.n_draws = spec, z, residuals.shape[1]
        sets = spec.hyperparameters()
        share = np.array([w for w, *_ in sets]) / sum(w for w, *_ in sets)
        counts = np.floor(share * self.n_draws).astype(int)
        counts[np.argsort(share * self.n_draws - counts)[::-1][: self.n_draws - counts.sum()]] += 1
        owner = rng.permutation(np.repeat(np.arange(len(sets)), counts))  # each set's share of the draws, exactly
        self.nuggets = np.array([sets[k][3] for k in owner])  # each draw's nugget: a new run's noise scale
        self.parts = []
        with one_thread():
            for k, (_, eta, ells, nugget, trend) in enumerate(sets):
                draws = np.flatnonzero(owner == k)
                if not len(draws):
                    continue
                chol = _cholesky(spec.kernel(z, z, eta, ells, trend) + np.diag(nugget ** 2 / weights), eta)
                alpha = linalg.cho_solve((chol, True), residuals[:, draws])           # (n, S_k)
                whiten = linalg.solve_triangular(chol, np.eye(len(z)), lower=True)    # L^-1
                self.parts.append((draws, eta, ells, trend, alpha, whiten))
        self.sets = Sets(self.parts, z, spec.trend_basis(z), spec.covariance, spec.trend_basis)
        self.parts = self.sets.parts  # (draws, eta, ells, trend, alpha, W) of each set, as views of its stacks

    def _points(self, values: Mapping[str, Any]) -> tuple[np.ndarray, bool, tuple[int, ...]]:
        """Standardised points, flattened to (q, d) when the draws share them or (L, S, d) with one per draw; whether
        one per draw; the shape of the result."""
        z = self.spec.standardise(values)
        shape = z.shape[:-1]
        per_draw = bool(shape) and shape[-1] != 1
        if per_draw and shape[-1] != self.n_draws:
            raise BayeslawError(f"points for the discrepancy must have a last axis of 1 or {self.n_draws} (one per "
                                f"draw), got shape {shape}")
        flat = z.reshape(-1, self.n_draws, z.shape[-1]) if per_draw else z.reshape(-1, z.shape[-1])
        return flat, per_draw, (*shape[:-1], self.n_draws)

    def evaluate(self, values: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Conditional mean and variance of delta, both (..., S), at points broadcast to (..., S or 1): points
        shared by the draws (last axis 1) or one per draw (last axis S)."""
        points, per_draw, shape = self._points(values)
        with one_thread():
            mean, var = self.sets.per_draw(points) if per_draw else self.sets.shared(points)
        return mean.reshape(shape), np.maximum(var, 0.0).reshape(shape)

    def sample(self, values: Mapping[str, Any], xi: np.ndarray) -> np.ndarray:
        """mean + sqrt(var) xi at points as for ``evaluate``, with one standard normal xi (S,) per draw: a smooth
        draw of delta on each posterior draw."""
        points, per_draw, shape = self._points(values)
        with one_thread():
            if per_draw:
                mean, var = self.sets.per_draw(points)
                return (mean + np.sqrt(np.maximum(var, 0.0)) * xi).reshape(shape)
            return self.sets.shared_draw(points, xi).reshape(shape)
