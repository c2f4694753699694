"""Frequentist statistics for A/B/n email experiments, in the style of GrowthBook's gbstats.

Every estimator works on *sufficient statistics* (n, sum, sum of squares) so an arm can be
summarised once and compared many times.  Each formula carries a one-line comment naming
its method/source.  Degenerate input never raises: the result is neutral (NaN intervals,
p = 1) and carries an ``error`` code, one of ``ERROR_CODES``.

One test decides each comparison, and both intervals are that test inverted, so the p-value,
the absolute interval and the relative interval can never disagree:

- ``welch``: Welch's t-test on the difference of means; the relative interval is Fieller's
  interval for the ratio at the same t quantile (Fieller 1954), which excludes 0 exactly when
  the t-test rejects.
- ``score``: for a rate with few events in an arm, the Miettinen–Nurminen (1985) score test;
  the absolute and the relative interval are the score intervals for the difference and the
  ratio, whose statistics coincide at the null (both are the pooled-variance score statistic).

Notation (per arm): n, m = sum/n, s^2 = unbiased sample variance, v = s^2/n (variance of
the mean).  Subscript t = treatment, c = control.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize as spo
from scipy import stats as sps

ERR_EMPTY_ARM = "empty_arm"  # an arm has n == 0
ERR_TOO_FEW = "insufficient_n"  # an arm has n == 1 (variance undefined)
ERR_ZERO_VARIANCE = "zero_variance"  # neither arm varies: no sampling error, nothing to test
ERR_NON_FINITE = "non_finite"  # NaN/inf in the sufficient statistics
ERROR_CODES = (ERR_EMPTY_ARM, ERR_TOO_FEW, ERR_ZERO_VARIANCE, ERR_NON_FINITE)

# Notes: the comparison is valid, but part of it is undefined (never a reason to blank the test).
NOTE_ZERO_BASELINE = "zero_baseline"  # control mean is 0: relative lift undefined; absolute test still reported
NOTE_REL_UNBOUNDED = "rel_ci_unbounded"  # control mean not distinguishable from 0: Fieller's interval is unbounded
ERR_ZERO_BASELINE = NOTE_ZERO_BASELINE  # old name, kept for callers

METHOD_WELCH = "welch"
METHOD_SCORE = "score"

_NAN = float("nan")


@dataclass(frozen=True)
class SampleStats:
    """Sufficient statistics of one arm: n, sum(x), sum(x^2).

    mean = sum / n (0 when n == 0, as in gbstats);
    var  = (sum_sq - sum^2 / n) / (n - 1), the unbiased sample variance (0 when n < 2).
    For a binary metric with k successes: n, sum = k, sum_sq = k.
    """

    n: int
    sum: float
    sum_sq: float

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def var(self) -> float:
        if self.n < 2:
            return 0.0
        ss = self.sum_sq - self.sum**2 / self.n  # computational formula for sum of squared deviations
        if ss <= 1e-12 * abs(self.sum_sq):  # below float round-off of the subtraction: treat as 0
            return 0.0
        return ss / (self.n - 1)  # Bessel-corrected (unbiased) sample variance

    @classmethod
    def from_values(cls, values) -> SampleStats:
        x = np.asarray(values, dtype=float).ravel()
        return cls(n=int(x.size), sum=float(x.sum()), sum_sq=float(np.dot(x, x)))


@dataclass(frozen=True)
class CompareConfig:
    """How a comparison is made.  ``binary``: the metric is 0/1 (a rate); ``nonnegative``: values are >= 0,
    so a ratio below 0 (a relative lift below -100%) is outside the parameter space and is cut there;
    ``min_events``: fewer events (or non-events) than this in an arm and a rate is tested with the score
    test instead of Welch's t."""

    alpha: float = 0.05
    binary: bool = False
    nonnegative: bool = False
    min_events: int = 10


@dataclass(frozen=True)
class LiftResult:
    """Treatment vs control.  abs = m_t - m_c; rel = (m_t - m_c) / |m_c| (= m_t/m_c - 1 for m_c > 0).

    ``p_value`` tests m_t = m_c with ``method``; both intervals invert that same test.  ``abs_p_value``
    is the same number (kept for callers).  ``note`` marks a part that is undefined (zero baseline,
    unbounded relative interval) while the rest stands; ``error`` marks a neutral, untestable result.
    """

    mean_treatment: float
    mean_control: float
    abs_lift: float
    abs_ci_low: float
    abs_ci_high: float
    rel_lift: float
    rel_ci_low: float
    rel_ci_high: float
    p_value: float
    dof: float
    error: str = ""
    abs_p_value: float = _NAN
    method: str = METHOD_WELCH
    note: str = ""


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _degenerate(t: SampleStats, c: SampleStats) -> str:
    """Error code for input on which no test is defined, else ''."""
    if t.n <= 0 or c.n <= 0:
        return ERR_EMPTY_ARM
    if t.n < 2 or c.n < 2:
        return ERR_TOO_FEW
    if not all(map(math.isfinite, (t.sum, t.sum_sq, c.sum, c.sum_sq))):
        return ERR_NON_FINITE
    if t.var == 0.0 and c.var == 0.0:
        return ERR_ZERO_VARIANCE
    return ""


def _neutral(t: SampleStats, c: SampleStats, error: str) -> LiftResult:
    m_t = t.mean if t.n > 0 else _NAN
    m_c = c.mean if c.n > 0 else _NAN
    known = error == ERR_ZERO_VARIANCE  # both means are exact: the difference is known, just not testable
    abs_lift = m_t - m_c if known else _NAN
    rel = (m_t - m_c) / abs(m_c) if known and m_c != 0 else _NAN
    return LiftResult(m_t, m_c, abs_lift, _NAN, _NAN, rel, _NAN, _NAN, p_value=1.0, dof=_NAN, error=error,
                      abs_p_value=1.0)


def _welch_dof(v_t: float, v_c: float, n_t: int, n_c: int) -> float:
    """nu = (v_t + v_c)^2 / (v_t^2/(n_t-1) + v_c^2/(n_c-1)), with v = s^2/n."""
    return (v_t + v_c) ** 2 / (v_t**2 / (n_t - 1) + v_c**2 / (n_c - 1))  # Welch (1947)-Satterthwaite (1946)


def fieller(num: float, den: float, var_num: float, var_den: float, cov: float, q: float) -> tuple[float, float]:
    """Fieller's interval for theta = num/den: {theta : (num - theta den)^2 <= q^2 Var(num - theta den)}.

    a theta^2 - 2 b theta + c <= 0 with a = den^2 - q^2 var_den, b = num den - q^2 cov, c = num^2 - q^2 var_num
    (Fieller 1954).  When a <= 0 the denominator is not distinguishable from 0 and the set is unbounded:
    (nan, nan) is returned.
    """
    a = den**2 - q**2 * var_den
    b = num * den - q**2 * cov
    c = num**2 - q**2 * var_num
    if a <= 0.0:
        return _NAN, _NAN
    root = math.sqrt(max(b * b - a * c, 0.0))  # b^2 - ac >= 0 whenever a > 0 (theta_hat is inside the set)
    return (b - root) / a, (b + root) / a


def _relative_interval(d: float, m_c: float, var_d: float, var_c: float, cov_dc: float, q: float,
                       nonnegative: bool) -> tuple[float, float, float, str]:
    """(rel, low, high, note) for rel = d / |m_c| by Fieller; cut at -100% when values cannot be negative."""
    if m_c == 0.0:
        return _NAN, _NAN, _NAN, NOTE_ZERO_BASELINE
    rel = d / abs(m_c)
    lo, hi = fieller(d, m_c, var_d, var_c, cov_dc, q)  # interval for d / m_c
    if m_c < 0:  # rel = d / |m_c| = -(d / m_c)
        lo, hi = -hi, -lo
    if math.isnan(lo):
        return rel, _NAN, _NAN, NOTE_REL_UNBOUNDED
    if nonnegative:
        lo = max(lo, -1.0)  # the ratio m_t/m_c of non-negative means cannot be below 0
    return rel, lo, hi, ""


def compare(treatment: SampleStats, control: SampleStats, alpha: float = 0.05,
            config: CompareConfig | None = None) -> LiftResult:
    """Treatment vs control: Welch's t-test with Fieller's relative interval, or, for a rate with few
    events, the Miettinen–Nurminen score test with its score intervals (see the module docstring).

    abs  = m_t - m_c; CI = abs -/+ t_{1-alpha/2, dof} sqrt(v_t + v_c)            (Welch t-test)
    dof  = (v_t + v_c)^2 / (v_t^2/(n_t-1) + v_c^2/(n_c-1))                       (Welch-Satterthwaite)
    rel  = abs / |m_c|; CI = Fieller's interval for abs / m_c at the same t quantile, where
           Var(abs) = v_t + v_c, Var(m_c) = v_c, Cov(abs, m_c) = -v_c            (Fieller 1954)
    A zero control mean leaves rel undefined (note ``zero_baseline``) and the absolute test standing.
    """
    cfg = config or CompareConfig(alpha=alpha)
    alpha = cfg.alpha if config is not None else alpha
    _check_alpha(alpha)
    error = _degenerate(treatment, control)
    if error:
        return _neutral(treatment, control, error)
    if cfg.binary and _few_events(treatment, control, cfg.min_events):
        return score_compare(treatment, control, alpha)
    return _welch(treatment, control, alpha, cfg.nonnegative)


def _few_events(t: SampleStats, c: SampleStats, min_events: int) -> bool:
    return min(t.sum, c.sum, t.n - t.sum, c.n - c.sum) < min_events


def _welch(t: SampleStats, c: SampleStats, alpha: float, nonnegative: bool) -> LiftResult:
    m_t, m_c = t.mean, c.mean
    v_t, v_c = t.var / t.n, c.var / c.n
    dof = _welch_dof(v_t, v_c, t.n, c.n)
    q = float(sps.t.ppf(1.0 - alpha / 2.0, dof))  # Student-t critical value
    d, se = m_t - m_c, math.sqrt(v_t + v_c)
    p = 2.0 * float(sps.t.sf(abs(d) / se, dof))  # two-sided Welch t p-value
    rel, lo, hi, note = _relative_interval(d, m_c, v_t + v_c, v_c, -v_c, q, nonnegative)
    return LiftResult(m_t, m_c, d, d - q * se, d + q * se, rel, lo, hi, p_value=p, dof=dof, abs_p_value=p,
                      method=METHOD_WELCH, note=note)


# --------------------------------------------------------------------------- score test for rates


def _mn_correction(n_t: int, n_c: int) -> float:
    return (n_t + n_c) / (n_t + n_c - 1.0)  # Miettinen-Nurminen variance correction N / (N - 1)


def score_z_diff(x_t: float, n_t: int, x_c: float, n_c: int, delta: float) -> float:
    """Score statistic for H: p_t - p_c = delta, z = (p^_t - p^_c - delta) / sqrt(V~), V~ at the restricted
    MLE under H, in closed form from a cubic (Miettinen & Nurminen 1985, appendix)."""
    p1, p2 = x_t / n_t, x_c / n_c
    big_n, total = n_t + n_c, x_t + x_c
    if delta == 0.0:
        pr2 = pr1 = total / big_n  # pooled estimate under equality
    else:
        t3 = big_n
        t2 = (n_t + 2 * n_c) * delta - big_n - total
        t1 = (x_c * delta - big_n - 2 * x_c) * delta + total
        t0 = x_c * delta * (1 - delta)
        v = (t2 / (3 * t3)) ** 3 - t1 * t2 / (6 * t3**2) + t0 / (2 * t3)
        u = math.copysign(math.sqrt(max((t2 / (3 * t3)) ** 2 - t1 / (3 * t3), 0.0)), v)
        w = (math.pi + math.acos(max(-1.0, min(1.0, v / u**3)) if u != 0 else 0.0)) / 3
        pr2 = min(1.0, max(0.0, 2 * u * math.cos(w) - t2 / (3 * t3)))  # restricted MLE of p_c under H
        pr1 = min(1.0, max(0.0, pr2 + delta))
    var = (pr1 * (1 - pr1) / n_t + pr2 * (1 - pr2) / n_c) * _mn_correction(n_t, n_c)
    diff = p1 - p2 - delta
    if var <= 0.0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def score_z_ratio(x_t: float, n_t: int, x_c: float, n_c: int, rho: float) -> float:
    """Score statistic for H: p_t / p_c = rho (Miettinen & Nurminen 1985; restricted MLE by the quadratic
    a p_c^2 + b p_c + c = 0 with a = N rho, b = -(n_t rho + x_t + n_c + x_c rho), c = x_t + x_c)."""
    p1, p2 = x_t / n_t, x_c / n_c
    a = (n_t + n_c) * rho
    b = -(n_t * rho + x_t + n_c + x_c * rho)
    c = x_t + x_c
    pr2 = (-b - math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)  # restricted MLE of p_c under H
    pr1 = min(1.0, rho * pr2)
    var = (pr1 * (1 - pr1) / n_t + rho**2 * pr2 * (1 - pr2) / n_c) * _mn_correction(n_t, n_c)
    diff = p1 - rho * p2
    if var <= 0.0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(var)


def _root(f, lo: float, hi: float, default: float) -> float:
    """The root of a monotone f on [lo, hi], or `default` (the end of the parameter space) if f keeps its sign."""
    f_lo, f_hi = f(lo), f(hi)
    if f_lo * f_hi > 0 or not (math.isfinite(f_lo) or math.isfinite(f_hi)):
        return default
    return float(spo.brentq(f, lo, hi, xtol=1e-12, rtol=1e-10))


def score_compare(treatment: SampleStats, control: SampleStats, alpha: float = 0.05) -> LiftResult:
    """Rates with few events: Miettinen–Nurminen score test of p_t = p_c (two-sided normal p-value), the score
    interval for p_t - p_c and the score interval for p_t / p_c (minus 1 for the relative lift).  At the null
    both statistics equal the pooled score statistic, so the intervals exclude 0 exactly when p < alpha."""
    _check_alpha(alpha)
    n_t, n_c, x_t, x_c = treatment.n, control.n, treatment.sum, control.sum
    p1, p2 = x_t / n_t, x_c / n_c
    z = float(sps.norm.ppf(1.0 - alpha / 2.0))  # normal critical value
    z0 = score_z_diff(x_t, n_t, x_c, n_c, 0.0)
    p = 2.0 * float(sps.norm.sf(abs(z0)))  # two-sided score-test p-value
    eps = 1e-10
    d = p1 - p2
    d_lo = _root(lambda s: score_z_diff(x_t, n_t, x_c, n_c, s) - z, -1 + eps, d, -1.0) if d > -1 else -1.0
    d_hi = _root(lambda s: score_z_diff(x_t, n_t, x_c, n_c, s) + z, d, 1 - eps, 1.0) if d < 1 else 1.0
    if x_c == 0:
        rel, r_lo, r_hi, note = _NAN, _NAN, _NAN, NOTE_ZERO_BASELINE
    else:
        rho = p1 / p2
        g = lambda lr: score_z_ratio(x_t, n_t, x_c, n_c, math.exp(lr))  # noqa: E731 - decreasing in log rho
        top = math.log(max(rho, 1e-12)) if rho > 0 else -30.0
        r_lo = 0.0 if x_t == 0 else math.exp(_root(lambda lr: g(lr) - z, -30.0, top, -math.inf))
        r_hi = math.exp(_root(lambda lr: g(lr) + z, top, 30.0, math.inf))
        rel, r_lo, r_hi, note = rho - 1.0, r_lo - 1.0, r_hi - 1.0, ""
    return LiftResult(p1, p2, d, d_lo, d_hi, rel, r_lo, r_hi, p_value=p, dof=_NAN, abs_p_value=p,
                      method=METHOD_SCORE, note=note)


def fisher_exact_p(treatment: SampleStats, control: SampleStats) -> float:
    """Fisher's exact test (two-sided) of a 2x2 table of events / non-events: a reference for small counts."""
    table = [[int(round(treatment.sum)), int(round(treatment.n - treatment.sum))],
             [int(round(control.sum)), int(round(control.n - control.sum))]]
    return float(sps.fisher_exact(table).pvalue)  # hypergeometric, conditional on the margins (Fisher 1935)


# --------------------------------------------------------------------------- multiple comparisons


def adjust_pvalues(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Multiple-comparison adjustment; NaN entries stay NaN and are not counted in the family.

    With sorted p_(1) <= ... <= p_(m):
    holm: p~_(i) = max_{j<=i} min(1, (m - j + 1) p_(j))     (Holm 1979 step-down FWER)
    bh:   p~_(i) = min_{j>=i} min(1, m p_(j) / j)           (Benjamini-Hochberg 1995 step-up FDR)
    """
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    ps, rank = p[ok][order], np.arange(1, m + 1)
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, (m - rank + 1) * ps))  # Holm step-down
    elif method in ("bh", "fdr_bh"):
        adj = np.minimum.accumulate(np.minimum(1.0, m * ps / rank)[::-1])[::-1]  # BH step-up
    else:
        raise ValueError(f"unknown method {method!r}; use 'holm' or 'bh'")
    sub = np.empty(m)
    sub[order] = adj
    out[ok] = sub
    return out


# --------------------------------------------------------------------------- sample ratio


@dataclass(frozen=True)
class SrmResult:
    """Sample-ratio-mismatch check; mismatch = p_value < threshold."""

    chi2: float
    p_value: float
    expected: tuple[float, ...]
    observed: tuple[int, ...]
    mismatch: bool
    error: str = ""


def srm_test(observed: Sequence[int], weights: Sequence[float], threshold: float = 0.001) -> SrmResult:
    """Pearson chi-square goodness of fit of arm counts against intended traffic weights.

    E_i = N w_i / sum(w);  chi2 = sum (O_i - E_i)^2 / E_i;  p = P(chi2_{k-1} > chi2).
    Degenerate (N == 0 or a single arm): chi2 = 0, p = 1, no mismatch, error code set.
    Raises ValueError only on misuse (length mismatch, non-positive weight); callers validate user weights
    first (tasks.experiment.outcomes.check_weights) so a user never meets this error.
    """
    obs = np.asarray(observed, dtype=float).ravel()
    w = np.asarray(weights, dtype=float).ravel()
    if obs.shape != w.shape or np.any(~(w > 0)) or np.any(obs < 0):
        raise ValueError("observed and weights must have equal length, weights > 0, counts >= 0")
    total = obs.sum()
    expected = total * w / w.sum()  # expected counts under the intended allocation
    observed_t = tuple(int(o) for o in obs)
    if total == 0 or obs.size < 2:
        error = ERR_EMPTY_ARM if total == 0 else ERR_TOO_FEW
        return SrmResult(0.0, 1.0, tuple(map(float, expected)), observed_t, False, error)
    chi2 = float(np.sum((obs - expected) ** 2 / expected))  # Pearson (1900) chi-square statistic
    p = float(sps.chi2.sf(chi2, obs.size - 1))  # upper tail, k - 1 degrees of freedom
    return SrmResult(chi2, p, tuple(map(float, expected)), observed_t, p < threshold)


def mde(
    n_treatment: int,
    n_control: int,
    mean_control: float,
    var_control: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Smallest relative lift detectable with the given power (two-sided z approximation).

    mde = (z_{1-alpha/2} + z_{power}) sqrt(var_c/n_t + var_c/n_c) / |m_c|
    NaN when an arm has n < 1, m_c == 0, var_c <= 0 or input is non-finite.
    """
    _check_alpha(alpha)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must be in (0, 1), got {power!r}")
    finite = all(map(math.isfinite, (mean_control, var_control)))
    if n_treatment < 1 or n_control < 1 or not finite or mean_control == 0 or var_control <= 0:
        return _NAN
    z = sps.norm.ppf(1.0 - alpha / 2.0) + sps.norm.ppf(power)  # normal power analysis (e.g. Cohen 1988)
    se = math.sqrt(var_control / n_treatment + var_control / n_control)  # SE of the difference, equal variances
    return float(z * se / abs(mean_control))


# --------------------------------------------------------------------------- CUPED


@dataclass(frozen=True)
class CupedResult:
    """theta: the CUPED coefficient; rho2: the squared within-arm correlation of outcome and covariate
    (1 - var(y_adj)/var(y)); variance_reduction: the achieved reduction in the variance of the
    absolute-lift estimate, 1 - Var(abs_adj) / Var(abs_plain) (<= rho2 up to sampling noise)."""

    theta: float
    rho2: float
    lift: LiftResult
    variance_reduction: float = _NAN


def _pooled_within(a_t: np.ndarray, b_t: np.ndarray, a_c: np.ndarray, b_c: np.ndarray) -> float:
    """Pooled within-arm covariance: sum_arms sum (a - a_bar_arm)(b - b_bar_arm) / (N - 2)."""
    dev = lambda a, b: float(np.dot(a - a.mean(), b - b.mean()))  # noqa: E731
    return (dev(a_t, b_t) + dev(a_c, b_c)) / (a_t.size + a_c.size - 2)


def cuped_compare(y_t, x_t, y_c, x_c, alpha: float = 0.05, nonnegative: bool = False) -> CupedResult:
    """CUPED (Deng, Xu, Kohavi & Walker 2013) with a pre-period covariate x.

    theta = cov(y, x) / var(x), pooled within arms over both arms
    y_adj = y - theta (x - mean_x_pooled)
    abs   = m_t,adj - m_c,adj, Welch t-test on the adjusted sufficient statistics
    rel   = abs / |m_c| with m_c the raw control mean; Fieller's interval for abs / m_c with
            Var(abs) = v_t,adj + v_c,adj, Var(m_c) = s_c^2/n_c, Cov(abs, m_c) = -cov_c(y_adj, y)/n_c.
            (With theta = 0 this is exactly compare().)
    rho2 = 1 - var(y_adj)/var(y), pooled within arms; variance_reduction = 1 - Var(abs_adj)/Var(abs).
    """
    _check_alpha(alpha)
    y_t, x_t, y_c, x_c = (np.asarray(a, dtype=float).ravel() for a in (y_t, x_t, y_c, x_c))
    if y_t.shape != x_t.shape or y_c.shape != x_c.shape:
        raise ValueError("y and x must have the same length within each arm")
    if y_t.size < 2 or y_c.size < 2:  # too small to estimate theta: fall back to compare()
        plain = compare(SampleStats.from_values(y_t), SampleStats.from_values(y_c), alpha)
        return CupedResult(0.0, 0.0, plain, 0.0)
    var_x = _pooled_within(x_t, x_t, x_c, x_c)
    theta = _pooled_within(y_t, x_t, y_c, x_c) / var_x if var_x > 0 else 0.0  # CUPED optimal theta
    x_bar = np.concatenate([x_t, x_c]).mean()
    a_t, a_c = y_t - theta * (x_t - x_bar), y_c - theta * (x_c - x_bar)  # CUPED adjustment
    var_y = _pooled_within(y_t, y_t, y_c, y_c)
    rho2 = 1.0 - _pooled_within(a_t, a_t, a_c, a_c) / var_y if var_y > 0 else 0.0
    lift = _cuped_lift(a_t, a_c, y_c, alpha, nonnegative)
    plain_var = np.var(y_t, ddof=1) / y_t.size + np.var(y_c, ddof=1) / y_c.size
    adj_var = np.var(a_t, ddof=1) / a_t.size + np.var(a_c, ddof=1) / a_c.size
    reduction = 1.0 - adj_var / plain_var if plain_var > 0 else 0.0  # achieved variance reduction of the lift
    return CupedResult(float(theta), float(rho2), lift, float(reduction))


@dataclass(frozen=True)
class CupedMoments:
    """One arm's sufficient statistics for CUPED over its rows with both y and x: n, sums, sums of squares and
    the cross-product. They add up over partitions of the arm, so CUPED needs no row-level data."""

    n: int
    sy: float
    sx: float
    syy: float
    sxx: float
    sxy: float

    @classmethod
    def from_values(cls, y, x) -> CupedMoments:
        y, x = (np.asarray(a, dtype=float).ravel() for a in (y, x))
        return cls(int(y.size), float(y.sum()), float(x.sum()), float(np.dot(y, y)), float(np.dot(x, x)),
                   float(np.dot(y, x)))


def _co(s_ab: float, s_a: float, s_b: float, n: int) -> float:
    """Sum of (a - a_bar)(b - b_bar) from sums (the computational formula)."""
    return s_ab - s_a * s_b / n if n else 0.0


def cuped_from_moments(t: CupedMoments, c: CupedMoments, alpha: float = 0.05, nonnegative: bool = False) -> CupedResult:
    """cuped_compare from each arm's CupedMoments: the same estimator, written in sums (y_adj = y - theta (x -
    x_bar) expands into sums of y, x, y^2, x^2 and xy), so partitions of the data merge exactly before it runs.
    Equal to cuped_compare up to floating-point rounding (tests/experiment/test_stats.py)."""
    _check_alpha(alpha)
    if t.n < 2 or c.n < 2:  # too small to estimate theta: fall back to compare()
        plain = compare(SampleStats(t.n, t.sy, t.syy), SampleStats(c.n, c.sy, c.syy), alpha)
        return CupedResult(0.0, 0.0, plain, 0.0)
    dof = t.n + c.n - 2
    var_x = (_co(t.sxx, t.sx, t.sx, t.n) + _co(c.sxx, c.sx, c.sx, c.n)) / dof
    cov_yx = (_co(t.sxy, t.sy, t.sx, t.n) + _co(c.sxy, c.sy, c.sx, c.n)) / dof
    theta = cov_yx / var_x if var_x > 0 else 0.0
    x_bar = (t.sx + c.sx) / (t.n + c.n)

    def adjusted(m: CupedMoments) -> tuple[float, float, float]:
        """Sums of a = y - theta (x - x_bar): sum a, sum a^2, sum a*y."""
        dx, dxx, dxy = m.sx - m.n * x_bar, m.sxx - 2 * x_bar * m.sx + m.n * x_bar * x_bar, m.sxy - x_bar * m.sy
        return m.sy - theta * dx, m.syy - 2 * theta * dxy + theta * theta * dxx, m.syy - theta * dxy

    (sa_t, saa_t, _), (sa_c, saa_c, say_c) = adjusted(t), adjusted(c)
    if not all(map(math.isfinite, (theta, sa_t, saa_t, sa_c, saa_c, say_c))):  # a covariate too large for sums
        raw_t, raw_c = SampleStats(t.n, t.sy, t.syy), SampleStats(c.n, c.sy, c.syy)
        return CupedResult(_NAN, _NAN, _neutral(raw_t, raw_c, ERR_NON_FINITE), _NAN)
    var_y = (_co(t.syy, t.sy, t.sy, t.n) + _co(c.syy, c.sy, c.sy, c.n)) / dof
    var_a = (_co(saa_t, sa_t, sa_t, t.n) + _co(saa_c, sa_c, sa_c, c.n)) / dof
    rho2 = 1.0 - var_a / var_y if var_y > 0 else 0.0
    st, sc, raw_c = SampleStats(t.n, sa_t, saa_t), SampleStats(c.n, sa_c, saa_c), SampleStats(c.n, c.sy, c.syy)
    lift = _cuped_lift_stats(st, sc, raw_c, _co(say_c, sa_c, c.sy, c.n) / (c.n - 1), alpha, nonnegative)
    plain_var = SampleStats(t.n, t.sy, t.syy).var / t.n + raw_c.var / c.n
    adj_var = st.var / t.n + sc.var / c.n
    reduction = 1.0 - adj_var / plain_var if plain_var > 0 else 0.0
    return CupedResult(float(theta), float(rho2), lift, float(reduction))


def _cuped_lift(a_t: np.ndarray, a_c: np.ndarray, y_c: np.ndarray, alpha: float, nonnegative: bool) -> LiftResult:
    cov_ay = float(np.cov(a_c, y_c)[0, 1]) if a_c.size > 1 else 0.0  # sample covariance of the control's a and y
    return _cuped_lift_stats(SampleStats.from_values(a_t), SampleStats.from_values(a_c), SampleStats.from_values(y_c),
                             cov_ay, alpha, nonnegative)


def _cuped_lift_stats(st: SampleStats, sc: SampleStats, raw_c: SampleStats, cov_ay: float, alpha: float,
                      nonnegative: bool) -> LiftResult:
    error = _degenerate(st, sc)
    if error:
        return _neutral(st, sc, error)
    n_t, n_c = st.n, sc.n
    v_t, v_c = st.var / n_t, sc.var / n_c
    dof = _welch_dof(v_t, v_c, n_t, n_c)
    q = float(sps.t.ppf(1.0 - alpha / 2.0, dof))  # Student-t critical value
    d, se = st.mean - sc.mean, math.sqrt(v_t + v_c)
    p = 2.0 * float(sps.t.sf(abs(d) / se, dof))  # Welch t-test on the adjusted means
    cov_ar = cov_ay / n_c  # Cov(m_c,adj, m_c) of the two control means
    rel, lo, hi, note = _relative_interval(d, raw_c.mean, v_t + v_c, raw_c.var / n_c, -cov_ar, q, nonnegative)
    return LiftResult(st.mean, sc.mean, d, d - q * se, d + q * se, rel, lo, hi, p_value=p, dof=dof,
                      abs_p_value=p, note=note)


# --------------------------------------------------------------------------- heavy tails


def cap_value(values, percentile: float, ignore_zeros: bool = True) -> float:
    """The winsorising cap for one metric: the `percentile` quantile of its values pooled over all arms
    (of its non-zero values when `ignore_zeros`, as GrowthBook's percentile capping offers), so the same
    cap applies to every arm and every segment.  NaN when there is nothing to cap."""
    if not 0.0 < percentile < 1.0:
        raise ValueError(f"percentile must be in (0, 1), got {percentile!r}")
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if ignore_zeros:
        x = x[x != 0]
    return float(np.quantile(x, percentile)) if x.size else _NAN  # empirical quantile (linear interpolation)


def skewness(values) -> float:
    """Sample skewness g1 = m3 / m2^1.5 (Fisher-Pearson, biased); 0 for constant input."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size < 3:
        return 0.0
    dev = x - x.mean()
    m2 = float(np.mean(dev**2))
    return float(np.mean(dev**3) / m2**1.5) if m2 > 0 else 0.0


def _resampled_means(y: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """`draws` bootstrap means of y.  Exact multinomial resampling, done in two steps because most values
    of a revenue metric are 0: the count of non-zero values in a resample is Binomial(n, k/n), and given
    that count they are drawn uniformly with replacement from the k non-zero values."""
    n = y.size
    nz = y[y != 0]
    if nz.size == 0:
        return np.zeros(draws)
    counts = rng.binomial(n, nz.size / n, draws)
    out = np.empty(draws)
    for i, k in enumerate(counts):
        out[i] = nz[rng.integers(0, nz.size, k)].sum() / n
    return out


def bootstrap_rel_ci(y_t, y_c, alpha: float = 0.05, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval (Efron 1979) for the relative lift m_t/m_c - 1, resampling each arm
    independently; resamples whose control mean is 0 are dropped.  (nan, nan) when there is nothing to resample."""
    _check_alpha(alpha)
    y_t, y_c = (np.asarray(a, dtype=float).ravel() for a in (y_t, y_c))
    y_t, y_c = y_t[~np.isnan(y_t)], y_c[~np.isnan(y_c)]
    if y_t.size < 2 or y_c.size < 2:
        return _NAN, _NAN
    rng = np.random.default_rng([seed, 7])
    m_t, m_c = _resampled_means(y_t, draws, rng), _resampled_means(y_c, draws, rng)
    ok = m_c != 0
    if ok.sum() < draws // 2:
        return _NAN, _NAN
    rel = m_t[ok] / m_c[ok] - 1.0
    lo, hi = np.quantile(rel, [alpha / 2.0, 1.0 - alpha / 2.0])  # percentile interval
    return float(lo), float(hi)


# --------------------------------------------------------------------------- a Bayesian view


def chance_to_beat_control(treatment: SampleStats, control: SampleStats, binary: bool = False) -> float:
    """BAYESIAN VIEW (not a p-value): posterior P(m_t > m_c) under flat priors.

    binary: Beta(1 + k, 1 + n - k) posterior per arm, P(p_t > p_c) = int f_t(x) F_c(x) dx (numerical; with more
            than 100 events and non-events per arm, the normal approximation with the Beta means and variances);
    numeric: normal approximation to the difference, Phi((m_t - m_c) / sqrt(v_t + v_c)).
    NaN when an arm is empty or neither arm varies (no information either way).
    """
    if _degenerate(treatment, control):
        return _NAN
    if binary:
        a_t, b_t = 1 + treatment.sum, 1 + treatment.n - treatment.sum
        a_c, b_c = 1 + control.sum, 1 + control.n - control.sum
        if min(a_t, b_t, a_c, b_c) > 100:  # Beta posteriors this concentrated are normal to ~1e-3: use their moments
            mean = a_t / (a_t + b_t) - a_c / (a_c + b_c)
            var = sum(a * b / ((a + b) ** 2 * (a + b + 1)) for a, b in ((a_t, b_t), (a_c, b_c)))  # Beta variance
            return float(sps.norm.cdf(mean / math.sqrt(var)))
        lo = min(sps.beta.ppf(1e-9, a_t, b_t), sps.beta.ppf(1e-9, a_c, b_c))
        hi = max(sps.beta.ppf(1 - 1e-9, a_t, b_t), sps.beta.ppf(1 - 1e-9, a_c, b_c))
        x = np.linspace(lo, hi, 4001)
        f = sps.beta.pdf(x, a_t, b_t) * sps.beta.cdf(x, a_c, b_c)  # Beta-Binomial posteriors (flat prior)
        return float(min(1.0, max(0.0, np.trapezoid(f, x))))
    se = math.sqrt(treatment.var / treatment.n + control.var / control.n)
    return float(sps.norm.cdf((treatment.mean - control.mean) / se))  # flat-prior normal posterior
