"""Analysis: per metric, per treatment arm vs control, overall and per segment.

Outcomes are reduced to sufficient statistics (n, sum, sum of squares) in polars first; the tests in
tasks/experiment/stats.py run on those. Multiple comparisons are corrected within *families*:

- ``headline``: the overall rows (segment ``all``), i.e. every treatment arm x every pre-registered metric;
- ``segment:<column>``: the rows of one segment breakdown, a family of its own.

So a breakdown never changes the headline: the overall rows are identical with and without a segment
column. Revenue-like metrics are winsorised (capped) at a stated percentile before any test, and skewed
numeric metrics get a bootstrap interval beside the analytic one. CUPED, when a pre-period covariate is
given for a metric, is reported beside the plain estimate (which stays the primary result).
"""
from __future__ import annotations

import math
import re

import numpy as np
import polars as pl

from tasks.experiment.stats import (ERROR_CODES, CompareConfig, SampleStats, adjust_pvalues, bootstrap_rel_ci,
                                    cap_value, chance_to_beat_control, compare, cuped_compare, fisher_exact_p, mde,
                                    skewness, srm_test)

ALL = "all"
HEADLINE = "headline"
MIN_EVENTS = 10  # fewer events (or non-events) in an arm: a rate is tested with the score test; a mean is flagged
SKEWED = 2.0  # sample skewness above which a numeric metric also gets a bootstrap interval
REVENUE_LIKE = re.compile(r"revenue|spend|amount|order_value|sales|value|gmv|basket", re.I)
RESULT_COLUMNS = ["metric", "segment", "arm", "control_arm", "n_treatment", "n_control", "rate_treatment",
                  "rate_control", "abs_lift", "rel_lift", "rel_lift_ci_low", "rel_lift_ci_high", "p_value",
                  "p_value_adjusted", "significant", "family", "test", "abs_lift_ci_low", "abs_lift_ci_high",
                  "fisher_p_value", "boot_ci_low", "boot_ci_high", "capped_at", "mde_rel", "chance_to_beat_control",
                  "cuped_rel_lift", "cuped_ci_low", "cuped_ci_high", "cuped_p_value", "cuped_rho2",
                  "variance_reduction", "metric_type", "note"]

TEXT_COLUMNS = {"metric", "segment", "arm", "control_arm", "family", "test", "metric_type", "note"}
RESULT_SCHEMA = {c: pl.String if c in TEXT_COLUMNS else pl.Int64 if c.startswith("n_") else
                 pl.Boolean if c == "significant" else pl.Float64 for c in RESULT_COLUMNS}


def default_caps(metrics: list[str], percentile: float | None = 0.99) -> dict[str, float]:
    """Winsorising on by default for revenue-like metric names (revenue, spend, order value ...)."""
    return {m: percentile for m in metrics if percentile and REVENUE_LIKE.search(m)}


def canonical(df: pl.DataFrame, metrics: list[str], arm: str, segment: str | None,
              covariates: dict[str, str] | None = None) -> pl.DataFrame:
    """Arm and segment under canonical names as strings; metrics and covariates (`cov:<metric>`) as floats."""
    cols = [pl.col(arm).cast(pl.String).alias("arm")] + [pl.col(m).cast(pl.Float64) for m in metrics]
    cols += [pl.col(c).cast(pl.Float64).alias(f"cov:{m}") for m, c in (covariates or {}).items() if m in metrics]
    if segment:
        cols.append(pl.col(segment).cast(pl.String).fill_null("(missing)").alias("segment"))
    return df.select(cols).filter(pl.col("arm").is_not_null())


def apply_caps(df: pl.DataFrame, caps: dict[str, float] | None) -> tuple[pl.DataFrame, dict[str, float]]:
    """Winsorise each capped metric at its percentile, computed once over all arms and rows (so every arm
    and every segment shares one cap). Returns the frame and the cap value per metric."""
    values: dict[str, float] = {}
    for metric, percentile in (caps or {}).items():
        if metric not in df.columns or not percentile:
            continue
        cap = cap_value(df[metric].to_numpy(), percentile)
        if math.isfinite(cap):
            values[metric] = cap
            df = df.with_columns(pl.col(metric).clip(upper_bound=cap))
    return df, values


def sufficient_stats(df: pl.DataFrame, metrics: list[str]) -> pl.DataFrame:
    """One row per (metric, segment, arm): n, sum, sum_sq and events (non-zero values: conversions, or orders
    behind a revenue mean); segment 'all' pools everyone. Nulls are not counted."""
    def agg(by: list[str]) -> pl.DataFrame:
        return pl.concat([df.group_by(by).agg(pl.lit(m).alias("metric"), pl.col(m).is_not_null().sum().alias("n"),
                                              pl.col(m).sum().alias("sum"), (pl.col(m) ** 2).sum().alias("sum_sq"),
                                              (pl.col(m) != 0).sum().alias("events"))
                          for m in metrics])
    frames = [agg(["arm"]).with_columns(pl.lit(ALL).alias("segment"))]
    if "segment" in df.columns:
        frames.append(agg(["arm", "segment"]))
    return pl.concat([f.select("metric", "segment", "arm", "n", "sum", "sum_sq", "events") for f in frames]).sort(
        "metric", "segment", "arm")


def is_binary(df: pl.DataFrame, metric: str) -> bool:
    values = df[metric].drop_nulls().unique()
    return values.len() > 0 and values.cast(pl.Float64).is_in([0.0, 1.0]).all()


def lift_rows(stats: pl.DataFrame, control: str, alpha: float, metric_types: dict[str, str],
              nonnegative: dict[str, bool] | None = None, family: str = "segment") -> list[dict]:
    rows = []
    records = stats.to_dicts()
    by_key = {(r["metric"], r["segment"], r["arm"]): SampleStats(int(r["n"]), r["sum"], r["sum_sq"]) for r in records}
    events = {(r["metric"], r["segment"], r["arm"]): r["events"] for r in records}
    for (metric, segment, arm), t in sorted(by_key.items()):
        c = by_key.get((metric, segment, control))
        if arm == control or c is None:
            continue
        binary = metric_types.get(metric, "binary") == "binary"
        cfg = CompareConfig(alpha=alpha, binary=binary, nonnegative=binary or (nonnegative or {}).get(metric, False),
                            min_events=MIN_EVENTS)
        res = compare(t, c, config=cfg)
        # a mean over few non-zero values: Welch's normal approximation is unreliable (rates use the score test)
        few = not binary and min(events[(metric, segment, arm)], events[(metric, segment, control)]) < MIN_EVENTS
        note = res.error or res.note or ("few_events" if few else "")
        rows.append({
            "metric": metric, "segment": segment, "arm": arm, "control_arm": control,
            "n_treatment": t.n, "n_control": c.n, "rate_treatment": t.mean, "rate_control": c.mean,
            "abs_lift": res.abs_lift, "rel_lift": res.rel_lift, "rel_lift_ci_low": res.rel_ci_low,
            "rel_lift_ci_high": res.rel_ci_high, "p_value": res.p_value,
            "family": HEADLINE if segment == ALL else family, "test": res.method if not res.error else "none",
            "abs_lift_ci_low": res.abs_ci_low, "abs_lift_ci_high": res.abs_ci_high,
            "fisher_p_value": fisher_exact_p(t, c) if binary and res.method == "score" else math.nan,
            "mde_rel": mde(t.n, c.n, c.mean, c.var, alpha),
            "chance_to_beat_control": chance_to_beat_control(t, c, binary),
            "metric_type": "binary" if binary else "numeric", "note": note, "_error": res.error, "_few": few})
    return rows


def _parts(df: pl.DataFrame) -> dict[str, pl.DataFrame]:
    parts = {ALL: df}
    if "segment" in df.columns:
        parts.update({str(k[0]): g for k, g in df.group_by("segment")})
    return parts


def add_cuped(rows: list[dict], df: pl.DataFrame, control: str, alpha: float) -> None:
    """CUPED columns for each row whose metric has a covariate (`cov:<metric>` in df); NaN otherwise."""
    parts = _parts(df)
    for r in rows:
        r.update(cuped_rel_lift=math.nan, cuped_ci_low=math.nan, cuped_ci_high=math.nan, cuped_p_value=math.nan,
                 cuped_rho2=math.nan, variance_reduction=math.nan)
        cov = f"cov:{r['metric']}"
        if cov not in df.columns or r["_error"]:
            continue
        g = parts[r["segment"]].select("arm", r["metric"], cov).drop_nulls()
        t, c = g.filter(pl.col("arm") == r["arm"]), g.filter(pl.col("arm") == control)
        res = cuped_compare(t[r["metric"]].to_numpy(), t[cov].to_numpy(), c[r["metric"]].to_numpy(),
                            c[cov].to_numpy(), alpha, nonnegative=r["metric_type"] == "binary")
        if not res.lift.error:
            r.update(cuped_rel_lift=res.lift.rel_lift, cuped_ci_low=res.lift.rel_ci_low,
                     cuped_ci_high=res.lift.rel_ci_high, cuped_p_value=res.lift.p_value, cuped_rho2=res.rho2,
                     variance_reduction=res.variance_reduction)


def add_bootstrap(rows: list[dict], df: pl.DataFrame, control: str, alpha: float, skewed: set[str],
                  seed: int = 0) -> None:
    """A percentile-bootstrap interval on the relative lift for skewed numeric metrics, on the headline rows (the
    check the report shows; segment rows would multiply the cost on large files); NaN otherwise."""
    parts = _parts(df)
    for r in rows:
        r.update(boot_ci_low=math.nan, boot_ci_high=math.nan)
        if r["metric"] not in skewed or r["_error"] or r["segment"] != ALL:
            continue
        g = parts[r["segment"]].select("arm", r["metric"]).drop_nulls()
        y_t = g.filter(pl.col("arm") == r["arm"])[r["metric"]].to_numpy()
        y_c = g.filter(pl.col("arm") == control)[r["metric"]].to_numpy()
        r["boot_ci_low"], r["boot_ci_high"] = bootstrap_rel_ci(y_t, y_c, alpha, seed=seed)


def lift_table(df: pl.DataFrame, metrics: list[str], control: str, alpha: float = 0.05, correction: str = "holm",
               arm: str = "arm", segment: str | None = "segment", covariates: dict[str, str] | None = None,
               caps: dict[str, float] | None = None, bootstrap: bool = True, seed: int = 0) -> pl.DataFrame:
    """The contract's results.csv: rates, lifts, CIs, raw and corrected p-values (per family), significance,
    MDE, CUPED, the winsorising cap and, for skewed metrics, a bootstrap interval."""
    family = f"segment:{segment}" if segment else "segment"
    df = canonical(df, metrics, arm, segment, covariates)
    types = {m: "binary" if is_binary(df, m) else "numeric" for m in metrics}
    df, cap_values = apply_caps(df, {m: p for m, p in (caps or {}).items() if types.get(m) == "numeric"})
    nonneg = {m: bool((df[m].drop_nulls() >= 0).all()) for m in metrics}
    rows = lift_rows(sufficient_stats(df, metrics), control, alpha, types, nonneg, family)
    add_cuped(rows, df, control, alpha)
    skewed = {m for m in metrics if bootstrap and types[m] == "numeric" and skewness(df[m].to_numpy()) > SKEWED}
    add_bootstrap(rows, df, control, alpha, skewed, seed)
    for name in {r["family"] for r in rows}:
        members = [r for r in rows if r["family"] == name]
        adjusted = adjust_pvalues([math.nan if r["_error"] else r["p_value"] for r in members], correction)
        for r, p in zip(members, adjusted):
            r["p_value_adjusted"] = 1.0 if math.isnan(p) else float(p)
            # Significance is not claimed for a mean over too few non-zero values (the t approximation fails).
            r["significant"] = bool(r["p_value_adjusted"] < alpha) and not r["_error"] and not r["_few"]
    for r in rows:
        r["capped_at"] = cap_values.get(r["metric"], math.nan)
    if not rows:
        return pl.DataFrame(schema=RESULT_SCHEMA)  # typed: readers filter and sort it like a full table
    order = {m: i for i, m in enumerate(metrics)}
    return (pl.DataFrame(rows, schema_overrides={"note": pl.String}, infer_schema_length=None).select(RESULT_COLUMNS)
            .sort(pl.col("metric").replace_strict(order, default=99), pl.col("segment") != ALL, "segment", "arm"))


def srm_checks(df: pl.DataFrame, weights: dict[str, dict[str, float]] | None, arm: str = "arm",
               segment: str | None = "segment", threshold: float = 0.001) -> list[dict]:
    """Sample-ratio mismatch per segment against the intended weights, and overall.

    Without intended weights (an experiment analysed from a file), equal weights are assumed and said so.
    Weights must name every arm present with a positive weight (checked with the user's words upstream by
    tasks.experiment.outcomes.check_weights).
    """
    df = df.select(pl.col(arm).cast(pl.String).alias("arm"),
                   *([pl.col(segment).cast(pl.String).fill_null("(missing)").alias("segment")] if segment else []))
    groups = [(ALL, df)] + ([(str(k[0]), g) for k, g in df.group_by("segment")] if segment else [])
    checks = []
    for name, frame in sorted(groups, key=lambda x: (x[0] != ALL, x[0])):
        counts = dict(frame.group_by("arm").len().iter_rows())
        intended = _intended(weights, name, df) if weights else {a: 1.0 for a in counts}
        labels = sorted(intended)
        res = srm_test([counts.get(a, 0) for a in labels], [intended[a] for a in labels], threshold)
        checks.append({"segment": name, "arms": labels, "observed": list(res.observed),
                       "expected": [round(e, 1) for e in res.expected], "chi2": res.chi2, "p_value": res.p_value,
                       "mismatch": res.mismatch, "weights_assumed": weights is None})
    return checks


def _intended(weights: dict[str, dict[str, float]], name: str, df: pl.DataFrame) -> dict[str, float]:
    """One design for all ({'all': w}), or each segment's own weights mixed by segment size overall."""
    if ALL in weights:
        return weights[ALL]
    if name != ALL:
        return weights[name]
    sizes = dict(df.group_by("segment").len().iter_rows()) if "segment" in df.columns else {}
    mixed: dict[str, float] = {}
    for seg, w in weights.items():
        for a, share in w.items():
            mixed[a] = mixed.get(a, 0.0) + share * sizes.get(seg, 0)
    return mixed


__all__ = ["ALL", "HEADLINE", "RESULT_COLUMNS", "ERROR_CODES", "default_caps", "lift_table", "srm_checks",
           "sufficient_stats", "canonical", "is_binary", "apply_caps"]
