"""Transparent complements to the uplift model: lift by attribute bucket, and variant-level factors."""
from __future__ import annotations

import math
import re

import numpy as np
import polars as pl

from tasks.experiment.analysis import ALL, default_caps, lift_table
from tasks.experiment.stats import ERROR_CODES, adjust_pvalues

BUCKET_COLUMNS = ["feature", "bucket", "metric", "arm", "n_treatment", "n_control", "rate_treatment", "rate_control",
                  "rel_lift", "rel_lift_ci_low", "rel_lift_ci_high", "p_value", "p_value_adjusted", "significant"]
MISSING = "(missing)"


def buckets(s: pl.Series, quantiles: int = 4, max_levels: int = 8) -> pl.Series:
    """Quartiles for numbers with many values, levels for the rest (rare levels pooled); missing is a bucket."""
    if s.dtype.is_numeric() and s.n_unique() > 6:
        return quantile_buckets(s.cast(pl.Float64), quantiles)
    text = s.cast(pl.String).fill_null(MISSING)
    top = text.value_counts(sort=True).head(max_levels)[text.name].to_list()
    return text.replace_strict({v: v for v in top}, default="(other)")


def quantile_buckets(s: pl.Series, quantiles: int) -> pl.Series:
    """Labels like '[18, 32)' from the data's quantiles; the top bucket is closed on the right."""
    values = s.to_numpy()
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, quantiles + 1)))
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    names = [f"[{edges[i]:.4g}, {edges[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}" for i in range(len(edges) - 1)]
    return pl.Series(s.name, [MISSING if np.isnan(v) else names[i] for v, i in zip(values, index)], dtype=pl.String)


def bucket_lifts(frame: pl.DataFrame, features: list[str], metrics: list[str], control: str, alpha: float,
                 correction: str) -> pl.DataFrame:
    """Per attribute bucket, arm and metric: the lift table, with p-values corrected over all of them."""
    parts = []
    for f in features:
        df = frame.select("arm", *metrics).with_columns(buckets(frame[f]).alias("bucket"))
        t = lift_table(df, metrics, control, alpha, correction, segment="bucket", caps=default_caps(metrics),
                       bootstrap=False)
        parts.append(t.filter(pl.col("segment") != ALL).rename({"segment": "bucket"}).with_columns(pl.lit(f).alias("feature")))
    if not parts:
        return pl.DataFrame(schema={c: pl.String for c in BUCKET_COLUMNS})
    out = pl.concat(parts)
    raw = [math.nan if n in ERROR_CODES else p for p, n in zip(out["p_value"], out["note"])]
    adjusted = np.nan_to_num(adjust_pvalues(raw, correction), nan=1.0)
    significant = (adjusted < alpha) & (out["note"] != "few_events").to_numpy()  # one family: every bucket row
    return out.with_columns(pl.Series("p_value_adjusted", adjusted),
                            pl.Series("significant", significant)).select(BUCKET_COLUMNS)


OFFER_TYPES = [("percent_off", re.compile(r"\d+\s?%")), ("amount_off", re.compile(r"\$\d")),
               ("free_shipping", re.compile(r"free shipping", re.I))]


def offer_type(text: str) -> str:
    return next((name for name, rx in OFFER_TYPES if rx.search(text)), "no_offer")


def variant_factors(results: pl.DataFrame, variants: list, metrics: list[str]) -> pl.DataFrame:
    """Which strategy, offer type and cited document go with higher lift: per-segment lifts of each passed
    variant, pooled per factor level with inverse-variance weights (fixed-effect meta-analysis)."""
    by_slot = {(v.segment, f"treatment_{v.slot}"): v for v in variants if v.status == "passed"}
    rows = []
    for r in results.filter((pl.col("segment") != ALL) & pl.col("rel_lift").is_not_nan()).to_dicts():
        v = by_slot.get((r["segment"], r["arm"]))
        se = (r["rel_lift_ci_high"] - r["rel_lift_ci_low"]) / (2 * 1.96)
        if v is None or not se > 0:
            continue
        levels = [("strategy", v.strategy), ("offer_type", offer_type(v.subject + " " + v.body))]
        levels += [("cited_document", c) for c in v.citations]
        rows += [{"factor": f, "level": lvl, "metric": r["metric"], "rel_lift": r["rel_lift"], "w": 1 / se**2}
                 for f, lvl in levels]
    if not rows:
        return pl.DataFrame(schema={"factor": pl.String, "level": pl.String, "metric": pl.String})
    pooled = (pl.DataFrame(rows).group_by("factor", "level", "metric")
              .agg(pl.len().alias("variants"), ((pl.col("rel_lift") * pl.col("w")).sum() / pl.col("w").sum()).alias("rel_lift"),
                   (1 / pl.col("w").sum()).sqrt().alias("se")))
    return pooled.with_columns((pl.col("rel_lift") - 1.96 * pl.col("se")).alias("ci_low"),
                               (pl.col("rel_lift") + 1.96 * pl.col("se")).alias("ci_high")).drop("se").sort(
        pl.col("metric").replace_strict({m: i for i, m in enumerate(metrics)}, default=99), "factor", "rel_lift",
        descending=[False, False, True])
