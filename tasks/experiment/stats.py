"""Frequentist statistics for A/B/n email experiments, in the style of GrowthBook's gbstats.

Every estimator works on *sufficient statistics* (n, sum, sum of squares) so an arm can be
summarised once and compared many times.  Each formula carries a one-line comment naming
its method/source.  Degenerate input never raises: the result is neutral (NaN lifts,
p = 1) and carries an ``error`` code, one of ``ERROR_CODES``.

Notation (per arm): n, m = sum/n, s^2 = unbiased sample variance, v = s^2/n (variance of
the mean).  Subscript t = treatment, c = control.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ERR_EMPTY_ARM = "empty_arm"  # an arm has n == 0
ERR_TOO_FEW = "insufficient_n"  # an arm has n == 1 (variance undefined)
ERR_ZERO_BASELINE = "zero_baseline"  # control mean is 0: relative lift undefined
ERR_ZERO_VARIANCE = "zero_variance"  # both arms have zero variance: no sampling error
ERR_NON_FINITE = "non_finite"  # NaN/inf in the sufficient statistics
ERROR_CODES = (ERR_EMPTY_ARM, ERR_TOO_FEW, ERR_ZERO_BASELINE, ERR_ZERO_VARIANCE, ERR_NON_FINITE)

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
class LiftResult:
    """Treatment vs control.  rel = (m_t - m_c) / |m_c| (= m_t/m_c - 1 for m_c > 0).

    ``p_value`` tests rel = 0 (delta method, Welch t); ``abs_p_value`` tests m_t - m_c = 0
    (Welch t, identical to scipy.stats.ttest_ind(equal_var=False)).
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


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")


def _degenerate(t: SampleStats, c: SampleStats, baseline: float) -> str:
    """Error code for input on which the t-test is undefined, else ''."""
    if t.n <= 0 or c.n <= 0:
        return ERR_EMPTY_ARM
    if t.n < 2 or c.n < 2:
        return ERR_TOO_FEW
    if not all(map(math.isfinite, (t.sum, t.sum_sq, c.sum, c.sum_sq, baseline))):
        return ERR_NON_FINITE
    if baseline == 0.0:
        return ERR_ZERO_BASELINE
    if t.var == 0.0 and c.var == 0.0:
        return ERR_ZERO_VARIANCE
    return ""


def _neutral(t: SampleStats, c: SampleStats, error: str) -> LiftResult:
    m_t = t.mean if t.n > 0 else _NAN
    m_c = c.mean if c.n > 0 else _NAN
    return LiftResult(m_t, m_c, *[_NAN] * 6, p_value=1.0, dof=_NAN, error=error, abs_p_value=1.0)


def _welch_dof(v_t: float, v_c: float, n_t: int, n_c: int) -> float:
    """nu = (v_t + v_c)^2 / (v_t^2/(n_t-1) + v_c^2/(n_c-1)), with v = s^2/n."""
    return (v_t + v_c) ** 2 / (v_t**2 / (n_t - 1) + v_c**2 / (n_c - 1))  # Welch (1947)-Satterthwaite (1946)


def _t_test(est: float, var: float, dof: float, alpha: float) -> tuple[float, float, float]:
    """(low, high, p): est -/+ t_{1-alpha/2, dof} * sqrt(var); p = 2 * P(T_dof > |est|/sqrt(var))."""
    se = math.sqrt(var)
    half = float(sps.t.ppf(1.0 - alpha / 2.0, dof)) * se  # Student-t critical value
    p = 2.0 * float(sps.t.sf(abs(est) / se, dof))  # two-sided t p-value
    return est - half, est + half, p


def _result(m_t, m_c, v_t, v_c, dof, rel, var_rel, alpha) -> LiftResult:
    abs_lo, abs_hi, abs_p = _t_test(m_t - m_c, v_t + v_c, dof, alpha)  # Welch CI on the difference
    rel_lo, rel_hi, rel_p = _t_test(rel, var_rel, dof, alpha)  # gbstats: delta-method CI on relative lift
    return LiftResult(
        m_t, m_c, m_t - m_c, abs_lo, abs_hi, rel, rel_lo, rel_hi,
        p_value=rel_p, dof=dof, abs_p_value=abs_p,
    )


def compare(treatment: SampleStats, control: SampleStats, alpha: float = 0.05) -> LiftResult:
    """gbstats frequentist two-sample t-test on the relative lift.

    rel     = m_t / m_c - 1                      (computed as (m_t - m_c) / |m_c|)
    var_rel = s_t^2 / (n_t m_c^2) + s_c^2 m_t^2 / (n_c m_c^4)          (delta method)
    dof     = (v_t + v_c)^2 / (v_t^2/(n_t-1) + v_c^2/(n_c-1)), v = s^2/n  (Welch-Satterthwaite)
    CI      = rel -/+ t_{1-alpha/2, dof} sqrt(var_rel);  p = 2 P(T_dof > |rel| / sqrt(var_rel))
    abs     = m_t - m_c, CI -/+ t_{1-alpha/2, dof} sqrt(v_t + v_c)     (Welch t-test)
    """
    _check_alpha(alpha)
    error = _degenerate(treatment, control, control.mean)
    if error:
        return _neutral(treatment, control, error)
    v_t, v_c = treatment.var / treatment.n, control.var / control.n
    rel, var_rel = _relative(treatment, control)
    if var_rel <= 0.0:  # e.g. no event at all in treatment: the delta-method variance collapses to 0
        return _neutral(treatment, control, ERR_ZERO_VARIANCE)
    dof = _welch_dof(v_t, v_c, treatment.n, control.n)
    return _result(treatment.mean, control.mean, v_t, v_c, dof, rel, var_rel, alpha)


def _relative(t: SampleStats, c: SampleStats) -> tuple[float, float]:
    """(rel, var_rel) for rel = m_t/m_c - 1; assumes non-degenerate input."""
    m_t, m_c = t.mean, c.mean
    rel = (m_t - m_c) / abs(m_c)  # relative lift; |m_c| keeps the sign of the effect (gbstats)
    var_rel = t.var / (t.n * m_c**2) + c.var * m_t**2 / (c.n * m_c**4)  # delta method, Var(m_t/m_c) (gbstats)
    return rel, var_rel


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
    Raises ValueError only on misuse (length mismatch, non-positive weight).
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


@dataclass(frozen=True)
class CupedResult:
    theta: float
    variance_reduction: float
    lift: LiftResult


def _pooled_within(a_t: np.ndarray, b_t: np.ndarray, a_c: np.ndarray, b_c: np.ndarray) -> float:
    """Pooled within-arm covariance: sum_arms sum (a - a_bar_arm)(b - b_bar_arm) / (N - 2)."""
    dev = lambda a, b: float(np.dot(a - a.mean(), b - b.mean()))  # noqa: E731
    return (dev(a_t, b_t) + dev(a_c, b_c)) / (a_t.size + a_c.size - 2)


def cuped_compare(y_t, x_t, y_c, x_c, alpha: float = 0.05) -> CupedResult:
    """CUPED (Deng, Xu, Kohavi & Walker 2013) with a pre-period covariate x.

    theta = cov(y, x) / var(x), pooled within arms over both arms
    y_adj = y - theta (x - mean_x_pooled)
    abs   = m_t,adj - m_c,adj with Welch CI on the adjusted sufficient statistics
    rel   = (m_t,adj - m_c,adj) / |m_c|, m_c = raw (unadjusted) control mean; by the delta
            method with A = m_c,adj, R = m_c, D = m_t,adj - m_c,adj:
            var_rel = (v_t,adj + v_c,adj)/R^2 + 2 D cov(A, R)/R^3 + D^2 var(R)/R^4,
            cov(A, R) = cov_c(y_adj, y)/n_c, var(R) = s_c^2/n_c.  (With theta = 0 this
            reduces exactly to compare().)
    variance_reduction = 1 - var(y_adj)/var(y), both pooled within arms (= rho^2).
    The reported means are the adjusted ones, so abs_lift = mean_treatment - mean_control.
    """
    _check_alpha(alpha)
    y_t, x_t, y_c, x_c = (np.asarray(a, dtype=float).ravel() for a in (y_t, x_t, y_c, x_c))
    if y_t.shape != x_t.shape or y_c.shape != x_c.shape:
        raise ValueError("y and x must have the same length within each arm")
    if y_t.size < 2 or y_c.size < 2:  # too small to estimate theta: fall back to compare()
        return CupedResult(0.0, 0.0, compare(SampleStats.from_values(y_t), SampleStats.from_values(y_c), alpha))
    var_x = _pooled_within(x_t, x_t, x_c, x_c)
    theta = _pooled_within(y_t, x_t, y_c, x_c) / var_x if var_x > 0 else 0.0  # CUPED optimal theta
    x_bar = np.concatenate([x_t, x_c]).mean()
    a_t, a_c = y_t - theta * (x_t - x_bar), y_c - theta * (x_c - x_bar)  # CUPED adjustment
    var_y = _pooled_within(y_t, y_t, y_c, y_c)
    reduction = 1.0 - _pooled_within(a_t, a_t, a_c, a_c) / var_y if var_y > 0 else 0.0
    lift = _cuped_lift(a_t, a_c, y_c, alpha)
    return CupedResult(float(theta), float(reduction), lift)


def _cuped_lift(a_t: np.ndarray, a_c: np.ndarray, y_c: np.ndarray, alpha: float) -> LiftResult:
    st, sc = SampleStats.from_values(a_t), SampleStats.from_values(a_c)
    raw_c = SampleStats.from_values(y_c)
    error = _degenerate(st, sc, raw_c.mean)
    if error:
        return _neutral(st, sc, error)
    n_t, n_c, r = st.n, sc.n, raw_c.mean
    v_t, v_c = st.var / n_t, sc.var / n_c
    d = st.mean - sc.mean
    cov_ar = float(np.cov(a_c, y_c)[0, 1]) / n_c  # Cov(m_c,adj, m_c) of the two control means
    var_rel = (v_t + v_c) / r**2 + 2 * d * cov_ar / r**3 + d**2 * (raw_c.var / n_c) / r**4  # delta method
    if var_rel <= 0.0:
        return _neutral(st, sc, ERR_ZERO_VARIANCE)
    dof = _welch_dof(v_t, v_c, n_t, n_c)
    return _result(st.mean, sc.mean, v_t, v_c, dof, d / abs(r), var_rel, alpha)


def chance_to_beat_control(treatment: SampleStats, control: SampleStats) -> float:
    """BAYESIAN VIEW (not a p-value): posterior P(rel > 0) under a flat prior and a normal
    approximation to the relative lift, rel ~ N(rel_hat, var_rel) (delta method as in compare()):

    P(rel > 0) = Phi(rel_hat / sqrt(var_rel)).   Degenerate input returns 0.5 (no information).
    """
    error = _degenerate(treatment, control, control.mean)
    if error:
        return 0.5
    rel, var_rel = _relative(treatment, control)
    if var_rel <= 0.0:
        return 0.5
    return float(sps.norm.cdf(rel / math.sqrt(var_rel)))  # flat-prior normal posterior (gbstats-style)
