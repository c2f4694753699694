import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from tasks.experiment.analysis import RESULT_COLUMNS, lift_table, srm_checks, sufficient_stats, canonical


def outcomes():
    return pl.DataFrame({"arm": ["control"] * 4 + ["t1"] * 4, "segment": ["a", "a", "b", "b"] * 2,
                         "opened": [0, 1, 0, 0, 1, 1, 0, 1], "revenue": [0.0, 10.0, 0.0, 0.0, 5.0, 20.0, 0.0, 0.0]})


def test_sufficient_stats_pool_and_split():
    s = sufficient_stats(canonical(outcomes(), ["opened"], "arm", "segment"), ["opened"])
    row = s.filter((pl.col("segment") == "all") & (pl.col("arm") == "t1")).row(0, named=True)
    assert (row["n"], row["sum"], row["sum_sq"]) == (4, 3.0, 3.0)
    assert s.height == 6


def test_lift_table_has_contract_columns_and_values():
    t = lift_table(outcomes(), ["opened", "revenue"], "control")
    assert t.columns == RESULT_COLUMNS
    row = t.filter((pl.col("metric") == "opened") & (pl.col("segment") == "all")).row(0, named=True)
    assert row["rate_treatment"] == 0.75 and row["rate_control"] == 0.25 and math.isclose(row["rel_lift"], 2.0)
    assert row["p_value_adjusted"] >= row["p_value"]
    assert t.filter(pl.col("metric") == "revenue")["metric_type"][0] == "numeric"


def test_degenerate_segment_reports_error_not_crash():
    t = lift_table(outcomes(), ["opened"], "control")
    b = t.filter(pl.col("segment") == "b").row(0, named=True)
    assert b["note"] == "zero_baseline" and b["significant"] is False


def test_other_column_names():
    df = outcomes().rename({"arm": "group", "segment": "region"}).with_columns(pl.col("group").replace({"control": "A"}))
    t = lift_table(df, ["opened"], "A", arm="group", segment="region")
    assert set(t["segment"]) == {"all", "a", "b"} and t["control_arm"][0] == "A"


def test_srm_flags_planted_mismatch():
    df = pl.DataFrame({"arm": ["control"] * 5000 + ["t1"] * 5600, "segment": "s"})
    checks = srm_checks(df, {"s": {"control": 0.5, "t1": 0.5}})
    assert checks[0]["segment"] == "all" and checks[0]["mismatch"]
    clean = pl.DataFrame({"arm": ["control"] * 5000 + ["t1"] * 5030, "segment": "s"})
    assert not srm_checks(clean, {"s": {"control": 0.5, "t1": 0.5}})[0]["mismatch"]


def test_cuped_reported_beside_plain_estimate_with_reduction():
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(10, 2, n)
    arm = np.where(rng.random(n) < 0.5, "control", "t1")
    y = x + rng.normal(0, 1, n) + np.where(arm == "t1", 0.5, 0.0)
    t = lift_table(pl.DataFrame({"arm": arm, "y": y, "pre": x}), ["y"], "control", segment=None, covariates={"y": "pre"})
    row = t.row(0, named=True)
    assert row["variance_reduction"] > 0.7
    assert row["cuped_ci_high"] - row["cuped_ci_low"] < 0.6 * (row["rel_lift_ci_high"] - row["rel_lift_ci_low"])


def test_few_events_in_a_rate_use_the_score_test():
    df = pl.DataFrame({"arm": ["control"] * 50 + ["t1"] * 50, "c": [1] * 3 + [0] * 47 + [1] * 6 + [0] * 44})
    row = lift_table(df, ["c"], "control", segment=None).row(0, named=True)
    assert row["test"] == "score" and row["note"] == "" and 0 < row["fisher_p_value"] < 1
    assert row["significant"] == (row["p_value_adjusted"] < 0.05)


def test_few_orders_behind_a_revenue_mean_are_flagged():
    revenue = [0.0] * 95 + [50.0] * 5
    df = pl.DataFrame({"arm": ["control"] * 100 + ["t1"] * 100, "revenue": revenue + revenue[::-1]})
    assert lift_table(df, ["revenue"], "control", segment=None)["note"][0] == "few_events"


def _experiment(n=6000, seed=1):
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "t1", "t2"], n)
    region = rng.choice(["n", "s", "e", "w"], n)
    opened = (rng.random(n) < np.where(arm == "t1", 0.24, 0.2)).astype(int)
    spend = np.where(rng.random(n) < 0.05, rng.lognormal(3, 1.5, n), 0.0)
    return pl.DataFrame({"arm": arm, "region": region, "opened": opened, "spend": spend})


def test_overall_rows_are_identical_with_and_without_a_segment_breakdown():
    df = _experiment()
    plain = lift_table(df, ["opened", "spend"], "control", segment=None, caps={"spend": 0.99})
    split = lift_table(df, ["opened", "spend"], "control", segment="region", caps={"spend": 0.99})
    overall = split.filter(pl.col("segment") == "all")
    assert overall.height == plain.height == 4
    for a, b in zip(plain.to_dicts(), overall.to_dicts()):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])), k
    assert set(overall["family"]) == {"headline"} and set(split.filter(pl.col("segment") != "all")["family"]) == {"segment:region"}


def test_each_family_is_adjusted_on_its_own():
    df = _experiment()
    t = lift_table(df, ["opened", "spend"], "control", segment="region", correction="holm")
    from tasks.experiment.stats import adjust_pvalues
    for family, g in t.group_by("family"):
        np.testing.assert_allclose(g["p_value_adjusted"].to_numpy(), adjust_pvalues(g["p_value"].to_numpy(), "holm"))
    assert t.filter(pl.col("family") == "headline").height == 4 and t.filter(pl.col("family") == "segment:region").height == 16


def test_zero_baseline_rows_keep_their_absolute_test_and_enter_the_family():
    df = pl.DataFrame({"arm": ["control"] * 200 + ["t1"] * 200, "c": [0] * 200 + [1] * 6 + [0] * 194})
    row = lift_table(df, ["c"], "control", segment=None).row(0, named=True)
    assert row["note"] == "zero_baseline" and row["test"] == "score"
    assert math.isnan(row["rel_lift"]) and row["abs_lift"] == pytest.approx(0.03)
    assert row["p_value"] == pytest.approx(0.0137020, abs=1e-6) and row["p_value_adjusted"] == row["p_value"]
    assert row["significant"] and row["chance_to_beat_control"] > 0.98
    assert row["fisher_p_value"] == pytest.approx(0.030084, abs=1e-6)


def test_revenue_like_metrics_are_capped_at_the_stated_percentile():
    from tasks.experiment.analysis import default_caps
    assert default_caps(["opened", "spend", "revenue", "order_value"]) == {"spend": 0.99, "revenue": 0.99, "order_value": 0.99}
    df = _experiment()
    t = lift_table(df, ["spend"], "control", segment=None, caps={"spend": 0.99})
    nonzero = df.filter(pl.col("spend") > 0)["spend"].to_numpy()
    assert t["capped_at"][0] == pytest.approx(np.quantile(nonzero, 0.99))
    capped = df.with_columns(pl.col("spend").clip(upper_bound=np.quantile(nonzero, 0.99)))
    assert t["rate_control"][0] == pytest.approx(capped.filter(pl.col("arm") == "control")["spend"].mean())
    assert math.isnan(lift_table(df, ["spend"], "control", segment=None)["capped_at"][0])


def test_skewed_metrics_get_a_bootstrap_interval_near_the_analytic_one():
    t = lift_table(_experiment(20000), ["opened", "spend"], "control", segment=None, caps={"spend": 0.99})
    spend = t.filter(pl.col("metric") == "spend").row(0, named=True)
    assert spend["boot_ci_low"] == pytest.approx(spend["rel_lift_ci_low"], abs=0.08)
    assert spend["boot_ci_high"] == pytest.approx(spend["rel_lift_ci_high"], abs=0.08)
    assert t.filter(pl.col("metric") == "opened")["boot_ci_low"].is_nan().all()


def _outcome_frame(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.gamma(2, 0.1, n)
    arm = rng.choice(["control", "treatment_1", "treatment_2"], n)
    clicked = (rng.random(n) < 0.05 + 0.3 * x + 0.02 * (arm != "control")).astype(np.int8)
    revenue = np.where(rng.random(n) < 0.03, rng.lognormal(3, 1.2, n), 0.0)  # skewed: capped and bootstrapped
    return pl.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "arm": arm,
                         "segment": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]), "clicked": clicked,
                         "revenue": revenue, "history": x}).with_columns(
        pl.when(pl.Series(rng.random(n) < 0.02)).then(None).otherwise(pl.col("history")).alias("history"))


@settings(max_examples=30)  # each example bootstraps a skewed metric: 2,000 resamples
@given(st.integers(0, 10_000), st.integers(2, 3_000), st.lists(st.floats(0, 1), max_size=6))
def test_partitions_give_the_whole_files_results(seed, n, cuts):
    """The campaign analyses its outcomes partition by partition (sufficient statistics added up, CUPED's
    cross-products, the cap and the bootstrap's values gathered across partitions): the results must be the whole
    file's, whatever the cut (empty partitions too)."""
    from polars.testing import assert_frame_equal

    from tasks.experiment.analysis import analyze_parts, srm_from_counts

    df = _outcome_frame(seed, n)
    bounds = sorted({0, n, *[int(c * n) for c in cuts]})
    parts = [df.slice(a, b - a) for a, b in zip(bounds, bounds[1:])] + [df.head(0)]
    kwargs = {"covariates": {"clicked": "history"}, "caps": {"revenue": 0.99}, "seed": 3}
    whole = lift_table(df, ["clicked", "revenue"], "control", **kwargs)
    results, arms = analyze_parts(lambda: parts, ["clicked", "revenue"], "control", **kwargs)
    assert_frame_equal(results, whole, abs_tol=1e-9, rel_tol=1e-9)
    weights = {s: {"control": 1 / 3, "treatment_1": 1 / 3, "treatment_2": 1 / 3} for s in "abc"}
    assert srm_from_counts(arms, weights) == srm_checks(df, weights)


def test_cuped_from_sums_is_cuped_from_values():
    from tasks.experiment.stats import CupedMoments, cuped_compare, cuped_from_moments

    rng = np.random.default_rng(5)
    for k in range(50):
        n_t, n_c = rng.integers(2, 2000, 2)
        x_t, x_c = rng.gamma(2, 3, n_t), rng.gamma(2, 3, n_c)
        y_t, y_c = 2 * x_t + rng.normal(0, 3, n_t) + (k % 5), 2 * x_c + rng.normal(0, 3, n_c)
        a = cuped_compare(y_t, x_t, y_c, x_c)
        b = cuped_from_moments(CupedMoments.from_values(y_t, x_t), CupedMoments.from_values(y_c, x_c))
        for got, want in [(b.theta, a.theta), (b.rho2, a.rho2), (b.variance_reduction, a.variance_reduction),
                          (b.lift.rel_lift, a.lift.rel_lift), (b.lift.rel_ci_low, a.lift.rel_ci_low),
                          (b.lift.rel_ci_high, a.lift.rel_ci_high), (b.lift.p_value, a.lift.p_value)]:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def _shifted(offset: float) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.normal(50, 10, 4000)
    return pl.DataFrame({"arm": rng.choice(["control", "t1"], 4000),
                         "revenue": np.maximum(0, 0.5 * x + rng.normal(0, 5, 4000)), "pre_period": x + offset})


@pytest.mark.parametrize("offset", [1e7, 1.7e9])  # a covariate in cents, or an epoch timestamp
def test_cuped_does_not_depend_on_where_the_covariate_is_centred(offset):
    """CUPED sees only x - mean(x); from raw sums of x^2 a covariate whose mean is 1e8 times its spread lost every
    digit (rho2 0.49 -> 0.09, found by an attack): the analysis centres x before summing."""
    kw = dict(metrics=["revenue"], control="control", segment=None, covariates={"revenue": "pre_period"}, caps={})
    plain, shifted = lift_table(_shifted(0.0), **kw).row(0, named=True), lift_table(_shifted(offset), **kw).row(0, named=True)
    for c in ["cuped_rel_lift", "cuped_ci_low", "cuped_ci_high", "cuped_p_value", "cuped_rho2", "variance_reduction"]:
        assert shifted[c] == pytest.approx(plain[c], rel=1e-6), c


def test_a_segment_called_all_is_not_added_into_the_headline():
    rng = np.random.default_rng(2)
    df = pl.DataFrame({"arm": rng.choice(["control", "t1"], 3000), "region": rng.choice(["all", "north"], 3000),
                       "opened": (rng.random(3000) < 0.2).astype(np.int8)})
    t = lift_table(df, ["opened"], "control", segment="region")
    head = t.filter(pl.col("family") == "headline").row(0, named=True)
    assert (head["n_treatment"], head["n_control"]) == (int((df["arm"] == "t1").sum()), int((df["arm"] == "control").sum()))
    assert set(t["segment"]) == {"all", "all (a segment)", "north"}
    assert [c["segment"] for c in srm_checks(df, None, segment="region")] == ["all", "all (a segment)", "north"]
