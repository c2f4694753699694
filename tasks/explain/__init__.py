"""Explainability: which customer attributes drive each arm's effect, how sure we are, and whom to send what.

Per treatment arm x metric: a cross-fitted R-learner (uplift.py) ranks attributes by how much they move
the estimated effect; its Qini against random targeting (qini.py) says whether the model found anything
at all. Lift by attribute bucket (buckets.py) is the transparent complement; a targeting policy
(targeting.py) turns the models into a recommendation with an honest, held-out estimate of its gain.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tasks.experiment.assign import CONTROL
from tasks.explain.buckets import bucket_lifts
from tasks.explain.qini import QiniResult, qini_test
from tasks.explain.targeting import describe_policy, targeting_gain
from tasks.explain.uplift import feature_matrix, fit_uplift, outcome_residuals, screen_columns
from tasks.threads import single_threaded

METHOD = "r_learner_crossfit_permutation"
ATTRIBUTION_COLUMNS = ["metric", "arm", "feature", "importance", "rank", "method", "qini", "qini_p_value",
                       "reliable", "n_fit"]
MIN_PER_ARM = 40


@dataclass
class Explanation:
    attribution: pl.DataFrame
    qini: dict = field(default_factory=dict)          # (metric, arm) -> QiniResult
    buckets: pl.DataFrame = field(default_factory=pl.DataFrame)
    targeting: dict = field(default_factory=dict)
    n_fit: int = 0
    n_total: int = 0
    excluded: dict = field(default_factory=dict)      # column -> why it is not a feature
    features: list = field(default_factory=list)


def explain(frame: pl.DataFrame, metrics: list[str], control: str = CONTROL, seed: int = 0, max_rows: int = 50_000,
            exclude: dict[str, str] | set[str] = frozenset(), alpha: float = 0.05, correction: str = "holm",
            target_metric: str | None = None) -> Explanation:
    """Everything the report's 'what drives the effect' sections need; `frame` has `arm`, metrics, attributes.

    `exclude`: columns never to use (personal data found by the caller), as column -> reason (or a set).
    Outcomes, metrics, identifiers and assignment columns are excluded here too; every exclusion and its
    reason is kept in the result for the report. Bucket lifts use all rows; the models a seeded subsample."""
    features, excluded = screen_columns(frame, metrics, exclude)
    n_total = frame.height
    buckets = bucket_lifts(frame, features, metrics, control, alpha, correction)  # cheap: all rows
    if frame.height > max_rows:  # fit on a seeded subsample; the report states its size
        frame = frame.sample(max_rows, seed=seed)
    if not features:
        return Explanation(pl.DataFrame(schema={c: pl.String for c in ATTRIBUTION_COLUMNS}), n_fit=frame.height,
                           n_total=n_total, excluded=excluded, buckets=buckets)
    x, categorical, levels = feature_matrix(frame, features)
    arms = frame["arm"].cast(pl.String).to_numpy().astype(object)
    with single_threaded():
        rows, qini = attribution_rows(frame, x, categorical, features, arms, metrics, control, seed)
        target_metric = target_metric or next((m for m in ("clicked", "converted", "opened") if m in metrics), metrics[0])
        targeting = recommend(frame, x, categorical, features, levels, arms, target_metric, seed)
    attribution = pl.DataFrame(rows) if rows else pl.DataFrame(schema={c: pl.String for c in ATTRIBUTION_COLUMNS})
    return Explanation(attribution=attribution, qini=qini, n_fit=frame.height, n_total=n_total, buckets=buckets,
                       targeting=targeting, excluded=excluded, features=features)


def attribution_rows(frame, x, categorical, features, arms, metrics, control, seed) -> tuple[list[dict], dict]:
    rows, qini = [], {}
    fold = np.random.default_rng([seed, 0]).integers(0, 2, len(arms))  # its own stream, not the data's
    for metric in metrics:
        y = frame[metric].cast(pl.Float64).to_numpy()
        known = ~np.isnan(y)
        residual = np.full(len(y), np.nan)
        residual[known] = outcome_residuals(x[known], y[known], fold[known], categorical, seed)
        for arm in sorted(set(arms) - {control}):
            ok = ((arms == arm) | (arms == control)) & known
            treated = arms[ok] == arm
            if treated.sum() < MIN_PER_ARM or (~treated).sum() < MIN_PER_ARM:
                continue
            fit = fit_uplift(x[ok], residual[ok], treated, fold[ok], categorical, seed)
            q = qini_test(fit.tau, y[ok], treated, seed)
            qini[(metric, arm)] = q
            for rank, j in enumerate(np.argsort(-fit.importance), 1):
                rows.append({"metric": metric, "arm": arm, "feature": features[j], "importance": float(fit.importance[j]),
                             "rank": rank, "method": METHOD, "qini": q.coefficient, "qini_p_value": q.p_value,
                             "reliable": q.reliable, "n_fit": int(ok.sum())})
    return rows, qini


def recommend(frame, x, categorical, features, levels, arms, metric, seed) -> dict:
    y = frame[metric].cast(pl.Float64).to_numpy()
    ok = ~np.isnan(y)
    counts = {a: int(np.sum(arms[ok] == a)) for a in set(arms[ok])}
    if len(counts) < 2 or min(counts.values()) < MIN_PER_ARM:
        return {}
    fold = np.random.default_rng([seed, 2]).integers(0, 2, int(ok.sum()))  # its own stream, as in uplift
    result = targeting_gain(x[ok], y[ok], arms[ok], categorical, fold, seed)
    result["rules"] = describe_policy(x[ok], result.pop("policy"), features, categorical, levels, seed)
    result["metric"] = metric
    return result


__all__ = ["Explanation", "QiniResult", "explain", "ATTRIBUTION_COLUMNS"]
