"""Explainability: which customer attributes drive each arm's effect.

Per treatment arm x binary metric, a T-learner (one gradient-boosting model on treated customers, one on
control) estimates each customer's effect tau(x) = mu1(x) - mu0(x). The models are fitted on one half of
the data; on the other half, permuting an attribute and measuring how far tau moves (mean |tau - tau_perm|)
gives that attribute's importance. Rank 1 is the strongest driver.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from tasks.experiment.assign import CONTROL
from tasks.threads import single_threaded

EXCLUDE = {"customer_id", "email", "first_name", "last_name", "name", "phone", "arm", "variant_id", "segment_id"}
METHOD = "t_learner_permutation"
ATTRIBUTION_COLUMNS = ["metric", "arm", "feature", "importance", "rank", "method"]


def feature_matrix(df: pl.DataFrame, features: list[str]) -> tuple[np.ndarray, list[bool]]:
    """Numbers as floats (NaN kept: the model handles missing values); categories and booleans as codes."""
    cols, categorical = [], []
    for f in features:
        s = df[f]
        if s.dtype.is_numeric():
            cols.append(s.cast(pl.Float64).to_numpy())
            categorical.append(False)
        else:
            codes = s.cast(pl.String).cast(pl.Categorical).to_physical().cast(pl.Float64)
            cols.append(codes.to_numpy())
            categorical.append(True)
    return np.column_stack(cols), categorical


def candidate_features(df: pl.DataFrame, metrics: list[str], extra_exclude: set[str] = frozenset()) -> list[str]:
    """Attributes worth explaining with: not ids or PII, not outcomes, not constant, not free text."""
    out = []
    for c in df.columns:
        if c in EXCLUDE or c in metrics or c in extra_exclude:
            continue
        s = df[c]
        if s.n_unique() < 2 or (not s.dtype.is_numeric() and s.dtype != pl.Boolean and s.n_unique() > 50):
            continue
        out.append(c)
    return out


def _model(categorical: list[bool], seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor
    return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=20,
                                         categorical_features=np.array(categorical), random_state=seed)


def arm_importance(x: np.ndarray, y: np.ndarray, treated: np.ndarray, categorical: list[bool], seed: int) -> np.ndarray:
    """Permutation importance of each feature for the T-learner's effect, on a held-out half."""
    rng = np.random.default_rng(seed)
    fit = rng.random(len(y)) < 0.5
    mu1 = _model(categorical, seed).fit(x[fit & treated], y[fit & treated])
    mu0 = _model(categorical, seed).fit(x[fit & ~treated], y[fit & ~treated])
    held = x[~fit]
    tau = mu1.predict(held) - mu0.predict(held)
    scores = np.zeros(x.shape[1])
    for j in range(x.shape[1]):
        perm = held.copy()
        perm[:, j] = rng.permutation(perm[:, j])
        scores[j] = np.mean(np.abs(tau - (mu1.predict(perm) - mu0.predict(perm))))
    return scores


def attribute(frame: pl.DataFrame, metrics: list[str], control: str = CONTROL, seed: int = 0,
              max_rows: int = 200_000, exclude: set[str] = frozenset()) -> pl.DataFrame:
    """attribution.csv: per arm x metric, features ranked by how much they move the estimated effect."""
    features = candidate_features(frame, metrics, set(exclude))
    if not features:
        return pl.DataFrame(schema={c: pl.String for c in ATTRIBUTION_COLUMNS})
    if frame.height > max_rows:  # fit on a seeded subsample; the report states its size
        frame = frame.sample(max_rows, seed=seed)
    x_all, categorical = feature_matrix(frame, features)
    with single_threaded():
        return _attribute(frame, x_all, categorical, features, metrics, control, seed)


def _attribute(frame, x_all, categorical, features, metrics, control, seed) -> pl.DataFrame:
    rows = []
    arms = frame["arm"].cast(pl.String).to_numpy()
    for arm in sorted(set(arms) - {control}):
        rows_in = (arms == arm) | (arms == control)
        for metric in metrics:
            y = frame[metric].cast(pl.Float64).to_numpy()
            ok = rows_in & ~np.isnan(y)
            treated = arms[ok] == arm
            if treated.sum() < 40 or (~treated).sum() < 40:
                continue
            imp = arm_importance(x_all[ok], y[ok], treated, categorical, seed)
            order = np.argsort(-imp)
            rows += [{"metric": metric, "arm": arm, "feature": features[j], "importance": float(imp[j]),
                      "rank": r + 1, "method": METHOD} for r, j in enumerate(order)]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema={c: pl.String for c in ATTRIBUTION_COLUMNS})
