"""The engagement simulator. SIMULATED, NOT OBSERVED: it exists so the pipeline can be judged against a
known truth before a real send.

Model (all parameters in config/campaign.yaml `simulation`):
  P(open)            = historical_open_rate (default when missing), clipped to [0.01, 0.95]
  P(click | open)    = historical_click_rate / historical_open_rate (default when missing)
  P(convert | click) = convert_given_click
  A treatment multiplies P(open) and P(click | open) by (1 + personalization_lift[metric]), and each planted
  effect whose strategy and customer condition match multiplies its metric's probability by (1 + rel_lift)
  (for `converted` the conditional P(convert | click)). Probabilities are capped at 0.99.
  revenue = converted x order value, order value = monetary / frequency x LogNormal(0, 0.3).
The true expected lift per arm and metric (same customers, treated vs not) is computed exactly from
these probabilities and written to the manifest, so the analysis can be checked against it.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from config import Effect, Simulation
from tasks.experiment.assign import CONTROL, HOLDOUT

BINARY = ("opened", "clicked", "converted")
OPS = {"<=": np.less_equal, ">=": np.greater_equal, "<": np.less, ">": np.greater, "==": np.equal}


def condition(df: pl.DataFrame, effect: Effect) -> np.ndarray:
    if effect.attribute not in df.columns:
        return np.zeros(df.height, dtype=bool)
    col = df[effect.attribute]
    if effect.op == "in":
        return col.cast(pl.String).is_in([str(v) for v in effect.value]).fill_null(False).to_numpy()
    return np.nan_to_num(OPS[effect.op](col.cast(pl.Float64).to_numpy(), float(effect.value)), nan=0).astype(bool)


def baseline(df: pl.DataFrame, sim: Simulation) -> dict[str, np.ndarray]:
    """Per-customer probabilities without treatment: P(open), P(click|open), P(convert|click)."""
    def column(name: str, default: float) -> np.ndarray:
        if name not in df.columns:
            return np.full(df.height, default)
        return df[name].cast(pl.Float64).fill_null(default).to_numpy()
    p_open = np.clip(column("historical_open_rate", sim.default_open_rate), 0.01, 0.95)
    click = column("historical_click_rate", sim.default_open_rate * sim.default_click_given_open)
    p_click = np.clip(np.where("historical_click_rate" in df.columns, click / p_open, sim.default_click_given_open),
                      0.01, 0.95)
    return {"opened": p_open, "clicked": p_click, "converted": np.full(df.height, sim.convert_given_click)}


def multipliers(df: pl.DataFrame, strategies: np.ndarray, treated: np.ndarray, sim: Simulation) -> dict[str, np.ndarray]:
    """The factor each treated customer's probabilities are multiplied by (1 for control)."""
    out = {m: np.where(treated, 1 + sim.personalization_lift.get(m, 0.0), 1.0) for m in BINARY}
    for effect in sim.effects:
        hit = treated & (strategies == effect.strategy) & condition(df, effect)
        out[effect.metric] = out[effect.metric] * np.where(hit, 1 + effect.rel_lift, 1.0)
    return out


def expected_rates(base: dict[str, np.ndarray], mult: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Marginal P(opened), P(clicked), P(converted) per customer."""
    p_open = np.minimum(base["opened"] * mult["opened"], 0.99)
    p_click = p_open * np.minimum(base["clicked"] * mult["clicked"], 0.99)
    return {"opened": p_open, "clicked": p_click,
            "converted": p_click * np.minimum(base["converted"] * mult["converted"], 0.99)}


def order_value(df: pl.DataFrame) -> np.ndarray:
    freq = df["frequency"].cast(pl.Float64).fill_null(0).to_numpy()
    money = df["monetary"].cast(pl.Float64).fill_null(0).to_numpy()
    typical = np.median(money[freq > 0] / freq[freq > 0]) if (freq > 0).any() else 50.0
    return np.where(freq > 0, money / np.maximum(freq, 1), typical)


def simulate(frame: pl.DataFrame, strategy_of_arm: dict[str, str], sim: Simulation, seed: int) -> tuple[pl.DataFrame, dict]:
    """Outcomes for assigned customers (`frame` = assignments joined with customer attributes).

    Returns outcomes (customer_id, arm, segment, opened, clicked, converted, revenue) and the truth:
    the expected relative lift of each treatment arm per metric over the same customers untreated.
    """
    frame = frame.filter(pl.col("arm") != HOLDOUT).sort("customer_id")
    arms = frame["arm"].to_numpy()
    strategies = np.array([strategy_of_arm.get(v, "") for v in frame["variant_id"].fill_null("").to_list()], dtype=object)
    treated = arms != CONTROL
    base = baseline(frame, sim)
    p = expected_rates(base, multipliers(frame, strategies, treated, sim))
    rng = np.random.default_rng(seed)
    draws = {m: rng.random(frame.height) for m in BINARY}
    opened = draws["opened"] < p["opened"]
    clicked = opened & (draws["clicked"] < p["clicked"] / np.maximum(p["opened"], 1e-12))
    converted = clicked & (draws["converted"] < p["converted"] / np.maximum(p["clicked"], 1e-12))
    revenue = np.where(converted, order_value(frame) * rng.lognormal(0, 0.3, frame.height), 0.0)
    outcomes = frame.select("customer_id", "arm", "segment").with_columns(
        pl.Series("opened", opened.astype(np.int8)), pl.Series("clicked", clicked.astype(np.int8)),
        pl.Series("converted", converted.astype(np.int8)), pl.Series("revenue", np.round(revenue, 2)))
    return outcomes, true_lifts(frame, arms, strategies, base, sim)


def true_lifts(frame: pl.DataFrame, arms: np.ndarray, strategies: np.ndarray, base: dict, sim: Simulation) -> dict:
    """Expected rel. lift per treatment arm and metric: E[p | treated] / E[p | same customers untreated] - 1."""
    untreated = expected_rates(base, multipliers(frame, strategies, np.zeros(len(arms), bool), sim))
    treated = expected_rates(base, multipliers(frame, strategies, np.ones(len(arms), bool), sim))
    truth = {}
    for arm in sorted(set(arms) - {CONTROL}):
        rows = arms == arm
        truth[arm] = {m: round(float(treated[m][rows].mean() / untreated[m][rows].mean() - 1), 5) for m in BINARY}
    return truth
