"""Design-time power: before anything is sent, the smallest lift each arm can detect.

Baselines come from what is known before the send: each customer's historical open and click rates
(P(click) = historical_click_rate; P(convert) = P(click) x the assumed conversion rate). For a binary
metric with baseline p the per-customer variance is p(1 - p); the MDE is the normal-approximation
formula in stats.mde (two-sided alpha, 80% power).
"""
from __future__ import annotations

import polars as pl

from tasks.experiment.assign import CONTROL, HOLDOUT
from tasks.experiment.stats import mde


def expected_baselines(frame: pl.DataFrame, default_open: float, default_click_given_open: float,
                       convert_given_click: float) -> dict[str, float]:
    def mean(col: str, default: float) -> float:
        return float(frame[col].cast(pl.Float64).mean()) if col in frame.columns and frame[col].null_count() < frame.height else default
    p_open = mean("historical_open_rate", default_open)
    p_click = mean("historical_click_rate", p_open * default_click_given_open)
    return {"opened": p_open, "clicked": p_click, "converted": p_click * convert_given_click}


def design_power(assignments: pl.DataFrame, baselines: dict[str, float], alpha: float = 0.05,
                 power: float = 0.8, target_lift: float | None = None) -> list[dict]:
    """Per treatment arm and metric: n, baseline, MDE, and whether the hoped-for lift is detectable."""
    counts = dict(assignments.filter(pl.col("arm") != HOLDOUT).group_by("arm").len().iter_rows())
    n_c = counts.get(CONTROL, 0)
    rows = []
    for arm in sorted(a for a in counts if a != CONTROL):
        for metric, p in baselines.items():
            m = mde(counts[arm], n_c, p, p * (1 - p), alpha, power)
            rows.append({"arm": arm, "metric": metric, "n_treatment": counts[arm], "n_control": n_c,
                         "baseline": p, "mde_rel": m,
                         "detectable": None if target_lift is None else bool(m == m and m <= target_lift)})
    return rows
