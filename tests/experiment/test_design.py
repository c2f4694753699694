import polars as pl

from tasks.experiment.design import design_power, expected_baselines
from tasks.experiment.stats import mde


def test_design_mde_matches_formula_and_flags_small_designs():
    a = pl.DataFrame({"arm": ["control"] * 100 + ["treatment_1"] * 100})
    rows = design_power(a, {"opened": 0.2}, target_lift=0.1)
    assert abs(rows[0]["mde_rel"] - mde(100, 100, 0.2, 0.2 * 0.8)) < 1e-12 and rows[0]["detectable"] is False
    big = pl.DataFrame({"arm": ["control"] * 100000 + ["treatment_1"] * 100000})
    assert design_power(big, {"opened": 0.2}, target_lift=0.1)[0]["detectable"] is True


def test_baselines_from_history():
    f = pl.DataFrame({"historical_open_rate": [0.2, 0.4], "historical_click_rate": [0.02, 0.04]})
    b = expected_baselines(f, 0.22, 0.18, 0.5)
    assert abs(b["opened"] - 0.3) < 1e-12 and abs(b["clicked"] - 0.03) < 1e-12 and abs(b["converted"] - 0.015) < 1e-12
