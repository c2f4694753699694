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
from collections.abc import Callable, Iterable

import numpy as np
import polars as pl

from tasks.experiment.stats import (ERROR_CODES, CompareConfig, CupedMoments, SampleStats, adjust_pvalues,
                                    bootstrap_rel_ci, cap_value, chance_to_beat_control, compare, cuped_from_moments,
                                    fisher_exact_p, mde, srm_test)

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
        cols.append(segment_name(segment))
    return df.select(cols).filter(pl.col("arm").is_not_null())


def segment_name(column: str) -> pl.Expr:
    """The segment as text; a segment called "all" would be added into the pooled rows, so it is marked."""
    name = pl.col(column).cast(pl.String).fill_null("(missing)")
    return pl.when(name == ALL).then(pl.lit(f"{ALL} (a segment)")).otherwise(name).alias("segment")


CUPED_MOMENTS = ["c_n", "c_sy", "c_sx", "c_syy", "c_sxx", "c_sxy"]


def sufficient_stats(df: pl.DataFrame, metrics: list[str]) -> pl.DataFrame:
    """One row per (metric, segment, arm): n, sum, sum_sq, sum_cu and events (non-zero values: conversions, or
    orders behind a revenue mean), and for a metric with a covariate (`cov:<metric>`) CUPED's moments over the
    rows that have both (c_n, c_sy, c_sx, c_syy, c_sxx, c_sxy); segment 'all' pools everyone. Nulls are not
    counted. Every column is a sum, so the statistics of partitions add up to those of the whole file."""
    def moments(m: str) -> list[pl.Expr]:
        y, cov = pl.col(m), f"cov:{m}"
        out = [pl.lit(m).alias("metric"), y.is_not_null().sum().cast(pl.Int64).alias("n"), y.sum().alias("sum"),
               (y ** 2).sum().alias("sum_sq"), (y ** 3).sum().alias("sum_cu"),
               (y != 0).sum().cast(pl.Int64).alias("events")]
        if cov not in df.columns:
            return out + [pl.lit(0, pl.Int64).alias("c_n")] + [pl.lit(0.0).alias(c) for c in CUPED_MOMENTS[1:]]
        both = y.is_not_null() & pl.col(cov).is_not_null()
        yy, xx = y.filter(both), pl.col(cov).filter(both)
        return out + [both.sum().cast(pl.Int64).alias("c_n"), yy.sum().alias("c_sy"), xx.sum().alias("c_sx"),
                      (yy * yy).sum().alias("c_syy"), (xx * xx).sum().alias("c_sxx"), (yy * xx).sum().alias("c_sxy")]

    def agg(by: list[str]) -> pl.DataFrame:
        return pl.concat([df.group_by(by).agg(moments(m)) for m in metrics], how="vertical_relaxed")
    frames = [agg(["arm"]).with_columns(pl.lit(ALL).alias("segment"))]
    if "segment" in df.columns:
        frames.append(agg(["arm", "segment"]))
    columns = ["metric", "segment", "arm", "n", "sum", "sum_sq", "sum_cu", "events", *CUPED_MOMENTS]
    return pl.concat([f.select(pl.col(c).cast(pl.Float64) if c.startswith(("sum", "c_s")) else pl.col(c)
                               for c in columns) for f in frames], how="vertical_relaxed").sort("metric", "segment", "arm")


def merged_stats(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The sufficient statistics of partitions, added up."""
    return pl.concat(parts, how="vertical_relaxed").group_by("metric", "segment", "arm", maintain_order=True).agg(
        pl.all().sum()).sort("metric", "segment", "arm")


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


def add_cuped(rows: list[dict], stats: pl.DataFrame, control: str, alpha: float) -> None:
    """CUPED columns for each row whose metric has a covariate (its CUPED moments in `stats`); NaN otherwise."""
    moments = {(r["metric"], r["segment"], r["arm"]): CupedMoments(int(r["c_n"]), r["c_sy"], r["c_sx"], r["c_syy"],
                                                                   r["c_sxx"], r["c_sxy"])
               for r in stats.iter_rows(named=True)}
    for r in rows:
        r.update(cuped_rel_lift=math.nan, cuped_ci_low=math.nan, cuped_ci_high=math.nan, cuped_p_value=math.nan,
                 cuped_rho2=math.nan, variance_reduction=math.nan)
        t, c = moments[(r["metric"], r["segment"], r["arm"])], moments[(r["metric"], r["segment"], control)]
        if r["_error"] or not r["_covariate"]:
            continue
        res = cuped_from_moments(t, c, alpha, nonnegative=r["metric_type"] == "binary")
        if not res.lift.error:
            r.update(cuped_rel_lift=res.lift.rel_lift, cuped_ci_low=res.lift.rel_ci_low,
                     cuped_ci_high=res.lift.rel_ci_high, cuped_p_value=res.lift.p_value, cuped_rho2=res.rho2,
                     variance_reduction=res.variance_reduction)


def add_bootstrap(rows: list[dict], values: dict[str, dict[str, list[np.ndarray]]], counts: dict[tuple, int],
                  control: str, alpha: float, skewed: set[str], seed: int = 0) -> None:
    """A percentile-bootstrap interval on the relative lift for skewed numeric metrics, on the headline rows (the
    check the report shows; segment rows would multiply the cost on large files); NaN otherwise. `values`: each
    metric's non-zero values per arm in file order, `counts`: its non-null values per (metric, arm) (the zeros
    are the rest: a resample needs no more)."""
    def arm_values(metric: str, arm: str) -> np.ndarray:
        nz = np.concatenate(values[metric].get(arm) or [np.zeros(0)])
        return np.concatenate([nz, np.zeros(counts[(metric, arm)] - nz.size)])
    for r in rows:
        r.update(boot_ci_low=math.nan, boot_ci_high=math.nan)
        if r["metric"] not in skewed or r["_error"] or r["segment"] != ALL:
            continue
        r["boot_ci_low"], r["boot_ci_high"] = bootstrap_rel_ci(arm_values(r["metric"], r["arm"]),
                                                               arm_values(r["metric"], control), alpha, seed=seed)


def lift_table(df: pl.DataFrame, metrics: list[str], control: str, alpha: float = 0.05, correction: str = "holm",
               arm: str = "arm", segment: str | None = "segment", covariates: dict[str, str] | None = None,
               caps: dict[str, float] | None = None, bootstrap: bool = True, seed: int = 0) -> pl.DataFrame:
    """The contract's results.csv: rates, lifts, CIs, raw and corrected p-values (per family), significance,
    MDE, CUPED, the winsorising cap and, for skewed metrics, a bootstrap interval."""
    return analyze_parts(lambda: [df], metrics, control, alpha, correction, arm, segment, covariates, caps,
                         bootstrap, seed)[0]


def analyze_parts(parts: Callable[[], Iterable[pl.DataFrame]], metrics: list[str], control: str, alpha: float = 0.05,
                  correction: str = "holm", arm: str = "arm", segment: str | None = "segment",
                  covariates: dict[str, str] | None = None, caps: dict[str, float] | None = None,
                  bootstrap: bool = True, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """results.csv (see lift_table) and the arm counts per segment (for the SRM checks) from the partitions of
    the outcomes, which `parts()` yields in file order, one at a time; the whole file is never held. Two passes:
    what every row decides first (each metric's type and sign, the winsorising cap), then sufficient statistics
    per partition, added up (CUPED's moments and the bootstrap's non-zero values among them)."""
    family = f"segment:{segment}" if segment else "segment"
    covariates = {m: c for m, c in (covariates or {}).items() if m in metrics}
    n = {m: 0 for m in metrics}
    not01, negative, nonzero = dict(n), dict(n), {m: [] for m in metrics}
    x_sum, x_n = {m: 0.0 for m in covariates}, {m: 0 for m in covariates}
    for df in parts():
        df = canonical(df, metrics, arm, segment, covariates)
        for m in covariates:
            x_sum[m] += float(df[f"cov:{m}"].sum() or 0.0)
            x_n[m] += df[f"cov:{m}"].drop_nulls().len()
        for m in metrics:
            v = df[m].drop_nulls()
            n[m] += v.len()
            not01[m] += int((~v.is_in([0.0, 1.0])).sum())
            negative[m] += int((~(v >= 0)).sum())
            if (caps or {}).get(m):
                nonzero[m].append(v.filter(v != 0).to_numpy())
    types = {m: "binary" if n[m] and not not01[m] else "numeric" for m in metrics}
    nonneg = {m: not negative[m] for m in metrics}
    cap_values = {}
    for m, percentile in (caps or {}).items():
        if types.get(m) == "numeric" and percentile:
            cap = cap_value(np.concatenate(nonzero[m] or [np.zeros(0)]), percentile, ignore_zeros=False)
            if math.isfinite(cap):
                cap_values[m] = cap
    # CUPED is the same for x and x - c; centring x on its mean keeps its sums of squares precise however large
    # its values (timestamps, ids), where the computational formulas would lose the spread in rounding.
    centre = {m: x_sum[m] / x_n[m] for m in covariates if x_n[m]}
    stats, arms, values = [], [], {m: {} for m in metrics if types[m] == "numeric"}
    for df in parts():
        df = canonical(df, metrics, arm, segment, covariates).with_columns(
            *[pl.col(m).clip(upper_bound=cap) for m, cap in cap_values.items()],
            *[(pl.col(f"cov:{m}") - c).alias(f"cov:{m}") for m, c in centre.items()])
        stats.append(sufficient_stats(df, metrics))
        arms.append(df.group_by(["segment", "arm"] if segment else ["arm"]).len())
        for m in values if bootstrap else ():
            for (a,), g in df.select("arm", m).filter(pl.col(m).is_not_null() & (pl.col(m) != 0)).group_by(
                    "arm", maintain_order=True):
                values[m].setdefault(a, []).append(g[m].to_numpy())
    stats = merged_stats(stats)
    whole = stats.filter(pl.col("segment") == ALL).group_by("metric").agg(pl.col("n", "sum", "sum_sq", "sum_cu").sum())
    skew = {r["metric"]: skewness_from_sums(r["n"], r["sum"], r["sum_sq"], r["sum_cu"]) for r in whole.to_dicts()}
    rows = lift_rows(stats, control, alpha, types, nonneg, family)
    for r in rows:
        r["_covariate"] = r["metric"] in covariates
    add_cuped(rows, stats, control, alpha)
    skewed = {m for m in values if bootstrap and skew.get(m, 0.0) > SKEWED}
    counts = {(r["metric"], r["arm"]): int(r["n"]) for r in stats.filter(pl.col("segment") == ALL).to_dicts()}
    add_bootstrap(rows, values, counts, control, alpha, skewed, seed)
    for name in {r["family"] for r in rows}:
        members = [r for r in rows if r["family"] == name]
        adjusted = adjust_pvalues([math.nan if r["_error"] else r["p_value"] for r in members], correction)
        for r, p in zip(members, adjusted):
            r["p_value_adjusted"] = 1.0 if math.isnan(p) else float(p)
            # Significance is not claimed for a mean over too few non-zero values (the t approximation fails).
            r["significant"] = bool(r["p_value_adjusted"] < alpha) and not r["_error"] and not r["_few"]
    for r in rows:
        r["capped_at"] = cap_values.get(r["metric"], math.nan)
    arm_counts = pl.concat(arms).group_by(["segment", "arm"] if segment else ["arm"], maintain_order=True).agg(
        pl.col("len").sum())
    if not rows:
        return pl.DataFrame(schema=RESULT_SCHEMA), arm_counts  # typed: readers filter and sort it like a full table
    order = {m: i for i, m in enumerate(metrics)}
    results = (pl.DataFrame(rows, schema_overrides={"note": pl.String}, infer_schema_length=None).select(RESULT_COLUMNS)
               .sort(pl.col("metric").replace_strict(order, default=99), pl.col("segment") != ALL, "segment", "arm"))
    return results, arm_counts


def skewness_from_sums(n: int, s1: float, s2: float, s3: float) -> float:
    """Sample skewness g1 = m3 / m2^1.5 (as stats.skewness) from the sums of x, x^2 and x^3; 0 for constant input."""
    if n < 3:
        return 0.0
    mean = s1 / n
    m2 = s2 / n - mean**2
    if m2 <= 1e-12 * max(abs(s2 / n), 1e-300):
        return 0.0
    return float((s3 / n - 3 * mean * s2 / n + 2 * mean**3) / m2**1.5)


def srm_checks(df: pl.DataFrame, weights: dict[str, dict[str, float]] | None, arm: str = "arm",
               segment: str | None = "segment", threshold: float = 0.001) -> list[dict]:
    """Sample-ratio mismatch per segment against the intended weights, and overall.

    Without intended weights (an experiment analysed from a file), equal weights are assumed and said so.
    Weights must name every arm present with a positive weight (checked with the user's words upstream by
    tasks.experiment.outcomes.check_weights).
    """
    df = df.select(pl.col(arm).cast(pl.String).alias("arm"),
                   *([segment_name(segment)] if segment else []))
    return srm_from_counts(df.group_by(["segment", "arm"] if segment else ["arm"]).len(), weights, threshold)


def srm_from_counts(counts: pl.DataFrame, weights: dict[str, dict[str, float]] | None,
                    threshold: float = 0.001) -> list[dict]:
    """srm_checks from the number of customers per (segment,) arm: `len` (analyze_parts' arm counts)."""
    sizes = dict(counts.group_by("segment").agg(pl.col("len").sum()).iter_rows()) if "segment" in counts.columns \
        else {}
    groups = [(ALL, counts.group_by("arm").agg(pl.col("len").sum()))]
    groups += [(name, counts.filter(pl.col("segment") == name).select("arm", "len")) for name in sizes]
    checks = []
    for name, frame in sorted(groups, key=lambda x: (x[0] != ALL, x[0])):
        observed = dict(frame.iter_rows())
        intended = _intended(weights, name, sizes) if weights else {a: 1.0 for a in observed}
        labels = sorted(intended)
        res = srm_test([observed.get(a, 0) for a in labels], [intended[a] for a in labels], threshold)
        checks.append({"segment": name, "arms": labels, "observed": list(res.observed),
                       "expected": [round(e, 1) for e in res.expected], "chi2": res.chi2, "p_value": res.p_value,
                       "mismatch": res.mismatch, "weights_assumed": weights is None})
    return checks


def _intended(weights: dict[str, dict[str, float]], name: str, sizes: dict[str, int]) -> dict[str, float]:
    """One design for all ({'all': w}), or each segment's own weights mixed by segment size overall."""
    if ALL in weights:
        return weights[ALL]
    if name != ALL:
        return weights[name]
    mixed: dict[str, float] = {}
    for seg, w in weights.items():
        for a, share in w.items():
            mixed[a] = mixed.get(a, 0.0) + share * sizes.get(seg, 0)
    return mixed


__all__ = ["ALL", "HEADLINE", "RESULT_COLUMNS", "ERROR_CODES", "default_caps", "lift_table", "analyze_parts",
           "srm_checks", "srm_from_counts", "sufficient_stats", "canonical"]
