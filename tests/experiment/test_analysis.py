import math

import numpy as np
import polars as pl

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


def test_few_events_are_flagged():
    df = pl.DataFrame({"arm": ["control"] * 50 + ["t1"] * 50, "c": [1] * 3 + [0] * 47 + [1] * 6 + [0] * 44})
    assert lift_table(df, ["c"], "control", segment=None)["note"][0] == "few_events"


def test_few_orders_behind_a_revenue_mean_are_flagged():
    revenue = [0.0] * 95 + [50.0] * 5
    df = pl.DataFrame({"arm": ["control"] * 100 + ["t1"] * 100, "revenue": revenue + revenue[::-1]})
    assert lift_table(df, ["revenue"], "control", segment=None)["note"][0] == "few_events"
