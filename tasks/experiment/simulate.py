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
from tasks.experiment.assign import CONTROL, HOLDOUT, hash_unit

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


def typical_order_value(df: pl.DataFrame) -> float:
    """The median order value (monetary / frequency) of buyers: a global quantity, learned once on the file."""
    freq = df["frequency"].cast(pl.Float64).fill_null(0).to_numpy()
    money = df["monetary"].cast(pl.Float64).fill_null(0).to_numpy()
    return float(np.median(money[freq > 0] / freq[freq > 0])) if (freq > 0).any() else 50.0


def order_value(df: pl.DataFrame, typical: float | None = None) -> np.ndarray:
    freq = df["frequency"].cast(pl.Float64).fill_null(0).to_numpy()
    money = df["monetary"].cast(pl.Float64).fill_null(0).to_numpy()
    typical = typical_order_value(df) if typical is None else typical
    return np.where(freq > 0, money / np.maximum(freq, 1), typical)


_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer, vectorised."""
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return z ^ (z >> np.uint64(31))


def customer_uniforms(ids, seed: int, k: int) -> np.ndarray:
    """k uniform draws in (0, 1) per customer, from SHA-256(seed:simulate:id) and SplitMix64 streams: a customer's
    draws depend on its id and the seed only, never on which partition or position it has."""
    key = (hash_unit(ids, seed, "simulate") * float(1 << 52)).astype(np.uint64)
    out = np.empty((len(key), k))
    for j in range(k):
        bits = _splitmix64(key ^ _splitmix64(np.full(len(key), j + 1, dtype=np.uint64)))
        out[:, j] = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
    return out


def simulate(frame: pl.DataFrame, strategy_of_arm: dict[str, str], sim: Simulation, seed: int,
             typical: float | None = None) -> tuple[pl.DataFrame, dict]:
    """Outcomes for assigned customers (`frame` = assignments joined with customer attributes).

    Returns outcomes (customer_id, arm, segment, opened, clicked, converted, revenue), in the frame's order,
    and the truth: the expected relative lift of each treatment arm per metric over the same customers
    untreated. Every draw is seeded per customer, so a partition of the frame gets the same outcomes as the
    whole; `typical` (the median order value) is learned once on the whole file when partitions are used.
    """
    frame = frame.filter(pl.col("arm") != HOLDOUT)
    arms = frame["arm"].to_numpy()
    strategies = np.array([strategy_of_arm.get(v, "") for v in frame["variant_id"].fill_null("").to_list()], dtype=object)
    treated = arms != CONTROL
    base = baseline(frame, sim)
    p = expected_rates(base, multipliers(frame, strategies, treated, sim))
    u = customer_uniforms(frame["customer_id"], seed, 5)  # seeded per customer: partitioning changes nothing
    draws = {m: u[:, i] for i, m in enumerate(BINARY)}
    opened = draws["opened"] < p["opened"]
    clicked = opened & (draws["clicked"] < p["clicked"] / np.maximum(p["opened"], 1e-12))
    converted = clicked & (draws["converted"] < p["converted"] / np.maximum(p["clicked"], 1e-12))
    normal = np.sqrt(-2 * np.log(u[:, 3])) * np.cos(2 * np.pi * u[:, 4])  # Box-Muller: LogNormal(0, 0.3) below
    revenue = np.where(converted, order_value(frame, typical) * np.exp(0.3 * normal), 0.0)
    outcomes = frame.select("customer_id", "arm", "segment").with_columns(
        pl.Series("opened", opened.astype(np.int8)), pl.Series("clicked", clicked.astype(np.int8)),
        pl.Series("converted", converted.astype(np.int8)), pl.Series("revenue", np.round(revenue, 2)))
    return outcomes, true_lifts(truth_sums(frame, arms, strategies, base, sim))


def truth_sums(frame: pl.DataFrame, arms: np.ndarray, strategies: np.ndarray, base: dict, sim: Simulation) -> dict:
    """Per treatment arm and metric: [sum of P(metric | treated), sum of P(metric | untreated)] over its
    customers: sufficient statistics that partitions add up (merge_truth) before true_lifts divides them."""
    untreated = expected_rates(base, multipliers(frame, strategies, np.zeros(len(arms), bool), sim))
    treated = expected_rates(base, multipliers(frame, strategies, np.ones(len(arms), bool), sim))
    sums = {}
    for arm in sorted(set(arms) - {CONTROL}):
        rows = arms == arm
        sums[arm] = {m: [float(treated[m][rows].sum()), float(untreated[m][rows].sum())] for m in BINARY}
    return sums


def merge_truth(parts: list[dict]) -> dict:
    total: dict = {}
    for part in parts:
        for arm, metrics in part.items():
            for m, (t, u) in metrics.items():
                acc = total.setdefault(arm, {}).setdefault(m, [0.0, 0.0])
                acc[0] += t
                acc[1] += u
    return total


def true_lifts(sums: dict) -> dict:
    """Expected rel. lift per treatment arm and metric: E[p | treated] / E[p | same customers untreated] - 1."""
    return {arm: {m: round(t / u - 1, 5) for m, (t, u) in metrics.items()} for arm, metrics in sorted(sums.items())}
