"""Tests for tasks.experiment.stats, pinned to hand computations and independent libraries."""

from __future__ import annotations

import math

import numpy as np
import pingouin
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep

from tasks.experiment.stats import (
    ERROR_CODES,
    CompareConfig,
    CupedResult,
    LiftResult,
    SampleStats,
    SrmResult,
    adjust_pvalues,
    chance_to_beat_control,
    compare,
    cuped_compare,
    fieller,
    mde,
    srm_test,
)


def binary(n: int, k: int) -> SampleStats:
    """Sufficient statistics of a 0/1 metric: sum = sum_sq = number of successes."""
    return SampleStats(n=n, sum=float(k), sum_sq=float(k))


# --------------------------------------------------------------------------- SampleStats


def test_sample_stats_from_values_matches_numpy():
    x = np.array([1.5, 2.0, 3.25, 7.0, 0.0])
    s = SampleStats.from_values(x)
    assert s.n == 5 and s.sum == pytest.approx(x.sum()) and s.sum_sq == pytest.approx((x**2).sum())
    assert s.mean == pytest.approx(x.mean(), abs=1e-12)
    assert s.var == pytest.approx(x.var(ddof=1), abs=1e-12)


def test_sample_stats_small_n_and_constant_values():
    assert SampleStats.from_values([]).mean == 0.0 and SampleStats.from_values([]).var == 0.0
    assert SampleStats.from_values([4.0]).var == 0.0
    assert SampleStats.from_values([0.1] * 7).var == 0.0  # round-off does not leak a tiny variance


# --------------------------------------------------------------------------- compare()


def test_compare_hand_computed_welch_and_fieller():
    # control 1000 users / 100 conversions, treatment 1000 / 130 (binary metric, many events: Welch)
    n_c, k_c, n_t, k_t = 1000, 100, 1000, 130
    m_c, m_t = k_c / n_c, k_t / n_t  # 0.10, 0.13
    s2_c = (k_c - k_c**2 / n_c) / (n_c - 1)  # (100 - 10) / 999 = 0.0900901
    s2_t = (k_t - k_t**2 / n_t) / (n_t - 1)  # (130 - 16.9) / 999 = 0.1132132
    v_t, v_c = s2_t / n_t, s2_c / n_c
    dof = (v_t + v_c) ** 2 / (v_t**2 / (n_t - 1) + v_c**2 / (n_c - 1))  # Welch-Satterthwaite
    q = sps.t.ppf(0.975, dof)
    p = 2 * sps.t.sf(0.03 / math.sqrt(v_t + v_c), dof)
    # Fieller for theta = d / m_c: (d - theta m_c)^2 = q^2 (v_t + v_c + 2 theta v_c + theta^2 v_c)
    a, b, c = m_c**2 - q**2 * v_c, 0.03 * m_c + q**2 * v_c, 0.03**2 - q**2 * (v_t + v_c)
    lo, hi = (b - math.sqrt(b * b - a * c)) / a, (b + math.sqrt(b * b - a * c)) / a
    assert (round(dof, 5), round(p, 5), round(lo, 5), round(hi, 5)) == (1972.48371, 0.0355, 0.01811, 0.67521)

    r = compare(binary(n_t, k_t), binary(n_c, k_c))
    assert r.error == "" and r.method == "welch"
    assert (r.mean_treatment, r.mean_control) == pytest.approx((0.13, 0.10))
    assert r.rel_lift == pytest.approx(0.3, abs=1e-12)
    assert r.dof == pytest.approx(dof, abs=1e-9)
    assert (r.rel_ci_low, r.rel_ci_high) == pytest.approx((lo, hi), abs=1e-10)
    assert r.p_value == pytest.approx(p, abs=1e-12) and r.abs_p_value == r.p_value
    assert r.abs_lift == pytest.approx(0.03, abs=1e-12)
    half = q * math.sqrt(v_t + v_c)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx((0.03 - half, 0.03 + half), abs=1e-10)


def test_fieller_reduces_to_the_wald_interval_when_the_denominator_is_exact():
    lo, hi = fieller(3.0, 2.0, 0.25, 0.0, 0.0, 1.96)
    assert (lo, hi) == pytest.approx(((3 - 1.96 * 0.5) / 2, (3 + 1.96 * 0.5) / 2), abs=1e-12)
    assert all(math.isnan(v) for v in fieller(1.0, 0.1, 0.01, 0.01, 0.0, 1.96))  # den not distinguishable from 0


def test_issue_example_20_of_1000_vs_36_of_1000_is_significant_and_consistent():
    # The issue's case: the old delta-method ratio test said p = 0.107 against an absolute CI excluding 0.
    r = compare(binary(1000, 36), binary(1000, 20), config=CompareConfig(binary=True, nonnegative=True))
    welch = sps.ttest_ind(np.r_[np.ones(36), np.zeros(964)], np.r_[np.ones(20), np.zeros(980)], equal_var=False)
    assert r.method == "welch" and r.p_value == pytest.approx(welch.pvalue, abs=1e-12)
    assert round(r.p_value, 5) == 0.03012
    assert (round(r.abs_ci_low, 5), round(r.abs_ci_high, 5)) == (0.00154, 0.03046)
    assert r.rel_lift == pytest.approx(0.8) and (round(r.rel_ci_low, 5), round(r.rel_ci_high, 5)) == (0.06083, 2.37631)
    assert r.rel_ci_low > 0 and r.abs_ci_low > 0
    assert sps.fisher_exact([[36, 964], [20, 980]]).pvalue == pytest.approx(0.041125, abs=1e-6)  # the issue's Fisher p


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels divides by the zero control rate internally
def test_issue_example_6_of_200_vs_0_of_200_is_tested_not_blanked():
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep
    r = compare(binary(200, 6), binary(200, 0), config=CompareConfig(binary=True, nonnegative=True))
    assert r.error == "" and r.method == "score" and r.note == "zero_baseline"
    ref = test_proportions_2indep(6, 200, 0, 200, method="score", compare="diff", correction=True)
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-12) and round(r.p_value, 5) == 0.01370
    lo, hi = confint_proportions_2indep(6, 200, 0, 200, method="score", compare="diff", correction=True)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx((lo, hi), abs=1e-9)
    assert r.abs_lift == pytest.approx(0.03) and math.isnan(r.rel_lift)  # relative lift undefined, the rest stands
    assert chance_to_beat_control(binary(200, 6), binary(200, 0), binary=True) > 0.98


def test_issue_example_0_of_200_vs_12_of_200_is_significant_and_never_below_minus_100():
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep
    r = compare(binary(200, 0), binary(200, 12), config=CompareConfig(binary=True, nonnegative=True))
    assert r.error == "" and r.method == "score" and r.note == ""
    ref = test_proportions_2indep(0, 200, 12, 200, method="score", compare="diff", correction=True)
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-12) and round(r.p_value, 5) == 0.00044
    lo, hi = confint_proportions_2indep(0, 200, 12, 200, method="score", compare="ratio", correction=True)
    assert r.rel_lift == -1.0 and r.rel_ci_low == -1.0 and r.rel_ci_high == pytest.approx(hi - 1, abs=1e-9)
    assert r.abs_ci_high < 0


@pytest.mark.parametrize("x_t,n_t,x_c,n_c,check_diff", [(5, 300, 9, 250, True), (7, 1000, 3, 900, False),
                                                        (200, 200, 190, 200, True)])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # statsmodels' odds ratio at a rate of 1
def test_score_test_matches_statsmodels_miettinen_nurminen(x_t, n_t, x_c, n_c, check_diff):
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep
    r = compare(binary(n_t, x_t), binary(n_c, x_c), config=CompareConfig(binary=True, nonnegative=True))
    assert r.method == "score"
    kw = dict(method="score", correction=True)
    assert r.p_value == pytest.approx(test_proportions_2indep(x_t, n_t, x_c, n_c, compare="diff", **kw).pvalue, abs=1e-12)
    r_lo, r_hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, compare="ratio", **kw)
    assert (r.rel_ci_low, r.rel_ci_high) == pytest.approx((r_lo - 1, r_hi - 1), abs=1e-8)
    if check_diff:  # statsmodels' own diff inversion fails to bracket its root for (7/1000, 3/900)
        d_lo, d_hi = confint_proportions_2indep(x_t, n_t, x_c, n_c, compare="diff", **kw)
        assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx((d_lo, d_hi), abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(n_t=st.integers(20, 3000), n_c=st.integers(20, 3000), f_t=st.floats(0, 1), f_c=st.floats(0, 1))
def test_p_value_absolute_and_relative_intervals_never_disagree(n_t, n_c, f_t, f_c):
    k_t, k_c = round(n_t * f_t * 0.2), round(n_c * f_c * 0.2)
    r = compare(binary(n_t, k_t), binary(n_c, k_c), config=CompareConfig(binary=True, nonnegative=True))
    if r.error or abs(r.p_value - 0.05) < 1e-6:
        return
    rejects = r.p_value < 0.05
    assert rejects == (r.abs_ci_low > 0 or r.abs_ci_high < 0)
    if not math.isnan(r.rel_ci_low):
        assert rejects == (r.rel_ci_low > 0 or r.rel_ci_high < 0)
        assert r.rel_ci_low >= -1.0


@pytest.mark.parametrize("method", ["log", "score"])
def test_compare_rel_ci_close_to_statsmodels_ratio_ci(method):
    # n = 5000 per arm, 10% vs 11.5%: Fieller's interval on ratio-1 vs statsmodels' ratio CIs.
    # Stated tolerance: 0.005 absolute on each bound (the methods agree to the third decimal at this size).
    n, k_c, k_t = 5000, 500, 575
    lo, hi = confint_proportions_2indep(k_t, n, k_c, n, compare="ratio", method=method, alpha=0.05)
    r = compare(binary(n, k_t), binary(n, k_c))
    assert r.rel_ci_low == pytest.approx(lo - 1, abs=0.005)
    assert r.rel_ci_high == pytest.approx(hi - 1, abs=0.005)


def test_compare_numeric_metric_matches_scipy_welch():
    rng = np.random.default_rng(7)
    y_t, y_c = rng.gamma(2.0, 6.0, 800), rng.gamma(2.0, 5.5, 1100)  # revenue-like, unequal n and variance
    r = compare(SampleStats.from_values(y_t), SampleStats.from_values(y_c), alpha=0.1)
    welch = sps.ttest_ind(y_t, y_c, equal_var=False)
    assert r.abs_p_value == pytest.approx(welch.pvalue, abs=1e-10)
    assert r.dof == pytest.approx(welch.df, rel=1e-10)
    ci = welch.confidence_interval(confidence_level=0.9)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx((ci.low, ci.high), abs=1e-10)
    assert r.rel_lift == pytest.approx(y_t.mean() / y_c.mean() - 1, abs=1e-12)


def test_compare_negative_effect_and_symmetry():
    r = compare(binary(1000, 100), binary(1000, 130))
    assert r.rel_lift == pytest.approx(100 / 130 - 1) and r.rel_ci_high > r.rel_lift > r.rel_ci_low
    assert r.abs_lift == pytest.approx(-0.03)


def test_compare_rejects_bad_alpha():
    with pytest.raises(ValueError):
        compare(binary(10, 1), binary(10, 2), alpha=0)


# --------------------------------------------------------------------------- degenerate input


def _assert_neutral(r: LiftResult, code: str):
    assert r.error == code and code in ERROR_CODES
    assert r.p_value == 1.0
    for v in (r.abs_ci_low, r.abs_ci_high, r.rel_ci_low, r.rel_ci_high):
        assert math.isnan(v)


def test_degenerate_empty_arm():
    _assert_neutral(compare(SampleStats(0, 0.0, 0.0), binary(100, 10)), "empty_arm")
    _assert_neutral(compare(binary(100, 10), SampleStats.from_values([])), "empty_arm")


def test_degenerate_n_equals_one():
    _assert_neutral(compare(SampleStats.from_values([3.0]), SampleStats.from_values([1.0, 2.0, 4.0])), "insufficient_n")


def test_zero_baseline_numeric_keeps_the_absolute_welch_test():
    y_t = np.r_[np.zeros(190), [5.0, 12.0, 7.5, 30.0, 9.0, 4.0, 18.0, 6.0, 11.0, 2.5]]
    r = compare(SampleStats.from_values(y_t), SampleStats.from_values(np.zeros(200)))
    ref = sps.ttest_ind(y_t, np.zeros(200), equal_var=False)
    assert r.error == "" and r.note == "zero_baseline" and math.isnan(r.rel_lift) and math.isnan(r.rel_ci_low)
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-12) and r.dof == pytest.approx(199)
    assert r.abs_lift == pytest.approx(y_t.mean()) and r.abs_ci_low > 0


def test_degenerate_zero_variance_only_when_neither_arm_varies():
    _assert_neutral(compare(binary(200, 200), binary(200, 200)), "zero_variance")  # same mean
    r = compare(SampleStats.from_values([2.0] * 5), SampleStats.from_values([1.0] * 5))
    _assert_neutral(r, "zero_variance")
    assert r.abs_lift == 1.0 and r.rel_lift == 1.0  # the difference is known exactly; there is nothing to test
    _assert_neutral(compare(binary(200, 0), binary(200, 0)), "zero_variance")


def test_degenerate_non_finite():
    _assert_neutral(compare(SampleStats(10, float("nan"), 1.0), binary(10, 3)), "non_finite")


def test_zero_variance_in_one_arm_is_fine():
    r = compare(binary(300, 30), binary(300, 300))  # control all converted (var 0), treatment 10%
    assert r.error == "" and r.rel_lift == pytest.approx(-0.9) and r.dof == pytest.approx(299)


# --------------------------------------------------------------------------- adjust_pvalues


@pytest.mark.parametrize("method,pg", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_pvalues_matches_pingouin(method, pg):
    rng = np.random.default_rng(3)
    for p in (rng.uniform(0, 0.2, 12), np.array([0.01, 0.04, 0.03, 0.04, 0.5, 0.001, 0.02])):
        np.testing.assert_allclose(adjust_pvalues(p, method), pingouin.multicomp(p, method=pg)[1], atol=1e-12)


@pytest.mark.parametrize("method,pg", [("holm", "holm"), ("bh", "fdr_bh")])
def test_adjust_pvalues_with_nans_matches_pingouin(method, pg):
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan, 0.2, 0.005])
    got = adjust_pvalues(p, method)
    np.testing.assert_allclose(got, pingouin.multicomp(p, method=pg)[1], atol=1e-12)  # NaNs compare equal
    assert np.isnan(got[[1, 4]]).all()
    np.testing.assert_allclose(got[~np.isnan(p)], adjust_pvalues(p[~np.isnan(p)], method), atol=1e-12)


def test_adjust_pvalues_edge_cases():
    assert adjust_pvalues([]).shape == (0,)
    assert np.isnan(adjust_pvalues([np.nan, np.nan], "bh")).all()
    assert adjust_pvalues([0.03], "holm")[0] == pytest.approx(0.03)
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "bonferroni")


# --------------------------------------------------------------------------- srm_test


def test_srm_matches_scipy_chisquare_unequal_weights():
    observed, weights = [5120, 2480, 2400], [2, 1, 1]
    r = srm_test(observed, weights)
    ref = sps.chisquare(observed, f_exp=np.array([0.5, 0.25, 0.25]) * sum(observed))
    assert r.chi2 == pytest.approx(ref.statistic, abs=1e-10)
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert r.expected == pytest.approx((5000.0, 2500.0, 2500.0)) and r.observed == (5120, 2480, 2400)
    assert isinstance(r, SrmResult)


def test_srm_flags_planted_mismatch_not_clean_split():
    # 5000 vs 5300 on an intended 50/50 split: chi2 = 2 * 150^2 / 5150 = 8.7379, p = 0.0031.
    planted = srm_test([5000, 5300], [1, 1], threshold=0.01)
    assert planted.chi2 == pytest.approx(2 * 150**2 / 5150, abs=1e-10) and planted.mismatch
    assert not srm_test([5000, 5300], [1, 1]).mismatch  # p = 0.0031 is not below the default 0.001
    bad = srm_test([5000, 5500], [1, 1])  # p ~ 1e-6: flagged at the default threshold
    assert bad.mismatch and bad.p_value < 0.001
    clean = srm_test([5012, 4988], [0.5, 0.5])
    assert not clean.mismatch and clean.p_value > 0.5


def test_srm_degenerate_and_misuse():
    r = srm_test([0, 0], [1, 1])
    assert (r.p_value, r.mismatch, r.error) == (1.0, False, "empty_arm")
    with pytest.raises(ValueError):
        srm_test([10, 10], [1, 1, 1])


# --------------------------------------------------------------------------- mde


def test_mde_hand_formula():
    n_t, n_c, m_c, v_c = 4000, 6000, 0.1, 0.09
    expected = (sps.norm.ppf(0.975) + sps.norm.ppf(0.8)) * math.sqrt(v_c / n_t + v_c / n_c) / m_c
    assert (1.959964 + 0.841621) * math.sqrt(0.09 / 4000 + 0.09 / 6000) / 0.1 == pytest.approx(expected, abs=1e-5)
    assert mde(n_t, n_c, m_c, v_c) == pytest.approx(expected, abs=1e-12)
    assert round(mde(n_t, n_c, m_c, v_c), 5) == 0.17156  # 2.801585 * sqrt(3.75e-5) / 0.1


@pytest.mark.parametrize("n_t,n_c,alpha,power", [(4000, 6000, 0.05, 0.8), (2500, 2500, 0.01, 0.9)])
def test_mde_consistent_with_statsmodels_power(n_t, n_c, alpha, power):
    m_c, v_c = 12.0, 30.0
    rel = mde(n_t, n_c, m_c, v_c, alpha=alpha, power=power)
    d = rel * m_c / math.sqrt(v_c)  # standardised effect size (Cohen's d)
    solver = NormalIndPower()
    nobs1 = solver.solve_power(effect_size=d, nobs1=None, alpha=alpha, power=power, ratio=n_t / n_c)
    assert nobs1 == pytest.approx(n_c, rel=0.01)
    d_sm = solver.solve_power(effect_size=None, nobs1=n_c, alpha=alpha, power=power, ratio=n_t / n_c)
    assert d == pytest.approx(d_sm, rel=0.01)


def test_mde_degenerate_is_nan():
    assert math.isnan(mde(0, 100, 0.1, 0.09))
    assert math.isnan(mde(100, 100, 0.0, 0.09))
    assert math.isnan(mde(100, 100, 0.1, 0.0))


# --------------------------------------------------------------------------- CUPED


def _cuped_data(rng, n, rho, lift):
    """x ~ N(10, 2); corr(y, x) = rho within arm; treatment multiplies y by (1 + lift)."""
    x_t, x_c = rng.normal(10, 2, n), rng.normal(10, 2, n)
    y_c = 10 + rho * (x_c - 10) + math.sqrt(1 - rho**2) * rng.normal(0, 2, n)
    y_t = (10 + rho * (x_t - 10) + math.sqrt(1 - rho**2) * rng.normal(0, 2, n)) * (1 + lift)
    return y_t, x_t, y_c, x_c


def test_cuped_correlated_covariate_reduces_variance_and_is_unbiased():
    rng = np.random.default_rng(11)
    true, results, widths = 0.10, [], []
    for _ in range(200):
        y_t, x_t, y_c, x_c = _cuped_data(rng, 500, 0.9, true)
        r = cuped_compare(y_t, x_t, y_c, x_c)
        plain = compare(SampleStats.from_values(y_t), SampleStats.from_values(y_c))
        results.append(r)
        widths.append((r.lift.rel_ci_high - r.lift.rel_ci_low) / (plain.rel_ci_high - plain.rel_ci_low))
    assert isinstance(results[0], CupedResult)
    assert min(r.variance_reduction for r in results) > 0.5 and min(r.rho2 for r in results) > 0.5
    est = np.array([r.lift.rel_lift for r in results])
    assert abs(est.mean() - true) < 3 * est.std(ddof=1) / math.sqrt(est.size)  # unbiased
    assert np.mean(widths) < 0.6  # CI shrinks ~ sqrt(1 - 0.81)
    coverage = np.mean([r.lift.rel_ci_low <= true <= r.lift.rel_ci_high for r in results])
    assert coverage >= 0.90


def test_cuped_independent_covariate_no_reduction():
    rng = np.random.default_rng(12)
    y_t, x_t, y_c, x_c = _cuped_data(rng, 5000, 0.0, 0.05)
    r = cuped_compare(y_t, x_t, y_c, x_c)
    plain = compare(SampleStats.from_values(y_t), SampleStats.from_values(y_c))
    assert abs(r.variance_reduction) < 0.005 and abs(r.theta) < 0.05
    assert r.lift.rel_lift == pytest.approx(plain.rel_lift, abs=0.005)
    assert r.lift.p_value == pytest.approx(plain.p_value, abs=0.02)


def test_cuped_theta_and_reduction_by_hand():
    rng = np.random.default_rng(5)
    y_t, x_t, y_c, x_c = _cuped_data(rng, 300, 0.7, 0.0)
    r = cuped_compare(y_t, x_t, y_c, x_c)
    dx = np.concatenate([x_t - x_t.mean(), x_c - x_c.mean()])
    dy = np.concatenate([y_t - y_t.mean(), y_c - y_c.mean()])
    theta = (dy @ dx) / (dx @ dx)
    assert r.theta == pytest.approx(theta, abs=1e-12)
    assert r.rho2 == pytest.approx((dy @ dx) ** 2 / ((dx @ dx) * (dy @ dy)), abs=1e-12)  # rho^2
    # the reduction in the variance of the lift estimate, by hand
    plain = y_t.var(ddof=1) / y_t.size + y_c.var(ddof=1) / y_c.size
    x_bar = np.concatenate([x_t, x_c]).mean()
    adj_t, adj_c = y_t - theta * (x_t - x_bar), y_c - theta * (x_c - x_bar)
    adjusted = adj_t.var(ddof=1) / adj_t.size + adj_c.var(ddof=1) / adj_c.size
    assert r.variance_reduction == pytest.approx(1 - adjusted / plain, abs=1e-12)
    assert r.lift.abs_lift == pytest.approx(adj_t.mean() - adj_c.mean(), abs=1e-12)
    assert r.lift.rel_lift == pytest.approx((adj_t.mean() - adj_c.mean()) / y_c.mean(), abs=1e-12)


def test_cuped_constant_covariate_reduces_to_compare():
    rng = np.random.default_rng(6)
    y_t, y_c = rng.normal(5.5, 1, 400), rng.normal(5, 1, 400)
    r = cuped_compare(y_t, np.ones(400), y_c, np.ones(400))
    plain = compare(SampleStats.from_values(y_t), SampleStats.from_values(y_c))
    assert r.theta == 0.0 and r.variance_reduction == pytest.approx(0.0, abs=1e-12) and r.rho2 == pytest.approx(0.0, abs=1e-12)
    for f in ("rel_lift", "rel_ci_low", "rel_ci_high", "p_value", "abs_p_value", "dof"):
        assert getattr(r.lift, f) == pytest.approx(getattr(plain, f), abs=1e-10)


def test_cuped_degenerate_empty_arm():
    r = cuped_compare([], [], [1.0, 2.0], [0.5, 0.7])
    assert r.lift.error == "empty_arm" and r.lift.p_value == 1.0


# --------------------------------------------------------------------------- Bayesian view


def test_chance_to_beat_control_numeric_is_normal_on_the_difference():
    rng = np.random.default_rng(4)
    y_t, y_c = rng.gamma(2, 5.5, 400), rng.gamma(2, 5, 400)
    t, c = SampleStats.from_values(y_t), SampleStats.from_values(y_c)
    se = math.sqrt(y_t.var(ddof=1) / 400 + y_c.var(ddof=1) / 400)
    assert chance_to_beat_control(t, c) == pytest.approx(sps.norm.cdf((y_t.mean() - y_c.mean()) / se), abs=1e-12)


def test_chance_to_beat_control_binary_matches_monte_carlo_beta_posteriors():
    rng = np.random.default_rng(8)
    draws = rng.beta(1 + 130, 1 + 870, 400_000) > rng.beta(1 + 100, 1 + 900, 400_000)
    assert chance_to_beat_control(binary(1000, 130), binary(1000, 100), binary=True) == pytest.approx(draws.mean(), abs=0.003)
    assert math.isnan(chance_to_beat_control(binary(100, 0), binary(100, 0), binary=True))  # no information


# --------------------------------------------------------------------------- simulations


def _binary_comparisons(k_t, k_c, n):
    return [compare(binary(n, int(a)), binary(n, int(b))) for a, b in zip(k_t, k_c)]


def test_simulated_aa_false_positive_rate_and_uniform_pvalues():
    rng = np.random.default_rng(2024)
    n, sims = 2000, 1000
    k_t, k_c = rng.binomial(n, 0.1, sims), rng.binomial(n, 0.1, sims)  # A/A: same p in both arms
    p = np.array([r.p_value for r in _binary_comparisons(k_t, k_c, n)])
    fpr = float(np.mean(p < 0.05))
    assert 0.035 <= fpr <= 0.065, fpr
    assert sps.kstest(p, "uniform").pvalue > 0.01


def test_simulated_ci_coverage_of_planted_relative_lift():
    # Long-run coverage of this interval here is ~95.1% (checked with 20,000 sims); with 500 sims the
    # 93% floor is ~2 sd below that, so about 1 seed in 20 would fail by chance. This seed gives 94.4%.
    rng = np.random.default_rng(2025)
    n, sims, true = 2000, 500, 0.15
    k_t, k_c = rng.binomial(n, 0.1 * (1 + true), sims), rng.binomial(n, 0.1, sims)
    results = _binary_comparisons(k_t, k_c, n)
    coverage = np.mean([r.rel_ci_low <= true <= r.rel_ci_high for r in results])
    assert coverage >= 0.93, coverage


def test_treatment_without_events_is_tested_not_a_crash():
    res = compare(SampleStats(50, 0.0, 0.0), SampleStats(50, 5.0, 5.0), config=CompareConfig(binary=True, nonnegative=True))
    assert res.error == "" and res.method == "score" and res.rel_lift == -1.0 and res.rel_ci_low == -1.0


# --------------------------------------------------------------------------- heavy tails


def test_cap_value_is_the_percentile_of_non_zero_values():
    from tasks.experiment.stats import cap_value
    x = np.r_[np.zeros(900), np.arange(1.0, 101.0)]
    assert cap_value(x, 0.99) == pytest.approx(np.quantile(np.arange(1.0, 101.0), 0.99))
    assert cap_value(x, 0.99, ignore_zeros=False) == pytest.approx(np.quantile(x, 0.99))
    assert math.isnan(cap_value(np.zeros(5), 0.99))
    with pytest.raises(ValueError):
        cap_value(x, 1.5)


def test_bootstrap_interval_agrees_with_plain_resampling():
    from tasks.experiment.stats import bootstrap_rel_ci
    rng = np.random.default_rng(3)
    y_t = np.where(rng.random(1500) < 0.1, rng.lognormal(3, 1, 1500), 0.0)
    y_c = np.where(rng.random(1500) < 0.1, rng.lognormal(3, 1, 1500), 0.0)
    lo, hi = bootstrap_rel_ci(y_t, y_c, draws=4000, seed=1)
    naive = np.array([rng.choice(y_t, y_t.size).mean() / rng.choice(y_c, y_c.size).mean() - 1 for _ in range(4000)])
    ref_lo, ref_hi = np.quantile(naive, [0.025, 0.975])
    assert lo == pytest.approx(ref_lo, abs=0.03) and hi == pytest.approx(ref_hi, abs=0.03)
    assert lo > -1.0
    assert all(math.isnan(v) for v in bootstrap_rel_ci([1.0], [1.0, 2.0]))  # too small to resample


def test_heavy_tailed_revenue_coverage_loosely():
    # The issue's case (benchmarks/heavy_tail_coverage.py): 5% buyers, lognormal(3, 2) spend, no effect, 3,000
    # per arm. The old delta-method interval covered ~86.7%; capped Welch/Fieller covers ~96% (2,000 sims).
    # 300 sims give +/-2.5%: the 0.92 floor fails only if coverage really dropped.
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "heavy_tail_coverage.py"
    spec = importlib.util.spec_from_file_location("heavy_tail_coverage", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cov = bench.simulate(3000, 300, 0.05, 3.0, 2.0, seed=21, bootstrap=False)
    assert cov["fieller capped"] >= 0.92, cov
    assert cov["delta (old)"] < cov["fieller capped"], cov


def test_simulated_aa_with_few_events_score_test_keeps_its_size():
    # 300 per arm at a 2% rate (about 6 events per arm): nearly every comparison takes the score path.
    rng = np.random.default_rng(77)
    n, sims = 300, 1000
    cfg = CompareConfig(binary=True, nonnegative=True)
    res = [compare(binary(n, int(a)), binary(n, int(b)), config=cfg)
           for a, b in zip(rng.binomial(n, 0.02, sims), rng.binomial(n, 0.02, sims))]
    assert np.mean([r.method == "score" for r in res]) > 0.95
    fpr = float(np.mean([r.p_value < 0.05 for r in res]))
    assert 0.025 <= fpr <= 0.075, fpr  # measured 5.35% over 4,000 sims
    planted = [compare(binary(n, int(a)), binary(n, int(b)), config=cfg)
               for a, b in zip(rng.binomial(n, 0.06, 300), rng.binomial(n, 0.02, 300))]
    assert np.mean([r.rel_ci_low <= 2.0 <= r.rel_ci_high for r in planted]) >= 0.92  # true relative lift +200%


@pytest.mark.parametrize("huge", [1e308, 1e200, 1e160])
def test_cuped_with_a_covariate_too_large_for_sums_is_neutral_not_a_crash(huge):
    """A finite covariate whose squares overflow (e.g. a monetary value of 1e308) gives a neutral CUPED result
    with an error code, never an OverflowError deep inside the analysis."""
    from tasks.experiment.stats import ERR_NON_FINITE, CupedMoments, cuped_from_moments

    rng = np.random.default_rng(3)
    y_t, y_c = rng.integers(0, 2, 50).astype(float), rng.integers(0, 2, 50).astype(float)
    x_t, x_c = rng.uniform(0, 100, 50), rng.uniform(0, 100, 50)
    x_t[7] = huge
    with np.errstate(over="ignore", invalid="ignore"):
        r = cuped_from_moments(CupedMoments.from_values(y_t, x_t), CupedMoments.from_values(y_c, x_c))
    assert r.lift.error == ERR_NON_FINITE and math.isnan(r.lift.rel_lift) and r.lift.p_value == 1.0
