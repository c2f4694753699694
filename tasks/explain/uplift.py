"""Heterogeneous treatment effects: a cross-fitted R-learner and the permutation importance of its effect.

For one treatment arm vs control and one metric, with e = P(treated) known from the randomization:
  m(x)   = E[Y | x]  (outcome model on both arms, gradient boosting)
  tau(x) = argmin sum_i ((Y_i - m(x_i)) - (T_i - e) tau(x_i))^2          (R-learner, Nie & Wager 2021)
         = a regression of (Y - m(x)) / (T - e) on x with weights (T - e)^2.
Subtracting m(x) removes what drives the outcome in both arms (e.g. a customer's open history), so the
effect model sees only what changes with treatment. Cross-fitting (2 folds): m is fitted on the other
fold, and tau's model is fitted on one fold and predicts the other, so every customer's tau comes from
models that never saw them. Importance of attribute j = mean |tau(x) - tau(x with j shuffled)| on (at most
IMPORTANCE_ROWS rows of) the held-out fold, averaged over folds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

IMPORTANCE_ROWS = 3000
ASSIGNMENT = {"arm", "variant_id", "segment_arm", "treatment", "assigned_at", "sent_at"}


def screen_columns(df: pl.DataFrame, metrics: list[str], exclude=frozenset()) -> tuple[list[str], dict[str, str]]:
    """Split the columns into pre-treatment attributes to explain with, and the excluded ones with the reason.

    Never a feature: the arm and what the assignment set; every metric of the run and any column named like an
    outcome (measured after the send: using it would explain the effect with the effect); identifiers; personal
    data (the caller's `exclude`: a mapping column -> reason, or a set; and, whatever the caller found, a column
    named or filled like personal data, or holding the customers' own names however few they are: a category's
    levels are printed in the report); constants and free text (more than 50 levels, or fewer than 5 rows a level).
    """
    from tasks.experiment.outcomes import is_id, is_outcome
    from tasks.privacy import kind_by_content, kind_by_name, names_the_people

    given = dict(exclude) if isinstance(exclude, dict) else {c: "excluded by the caller" for c in exclude}
    features, excluded = [], {}
    for c in df.columns:
        if c == "arm" or c.startswith("cov:"):
            continue
        if c in given:
            excluded[c] = given[c] or "excluded by the caller"
        elif c in metrics:
            excluded[c] = "a metric of this run (measured after the send)"
        elif is_outcome(c):
            excluded[c] = "named like an outcome (measured after the send)"
        elif c in ASSIGNMENT:
            excluded[c] = "set by the assignment, not a customer attribute"
        elif is_id(c):
            excluded[c] = "identifier"
        elif kind := kind_by_name(c):
            excluded[c] = f"personal data ({kind})"
        elif not (df[c].dtype.is_numeric() or df[c].dtype in (pl.Boolean, pl.String, pl.Categorical)):
            excluded[c] = f"not a number or a category ({df[c].dtype})"
        elif df[c].n_unique() < 2:
            excluded[c] = "constant"
        elif df[c].dtype in (pl.String, pl.Categorical) and (df[c].n_unique() > 50 or df[c].n_unique() * 5 > df.height):
            excluded[c] = f"free text or too many levels ({df[c].n_unique()} in {df.height} rows)"
        elif df[c].dtype in (pl.String, pl.Categorical) and (kind := kind_by_content(df[c].cast(pl.String)) or (
                "name" if names_the_people(df, c) else None)):
            excluded[c] = f"personal data ({kind})"
        else:
            features.append(c)
    return features, excluded


def candidate_features(df: pl.DataFrame, metrics: list[str], extra_exclude=frozenset()) -> list[str]:
    """Attributes worth explaining with (see screen_columns)."""
    return screen_columns(df, metrics, extra_exclude)[0]


def feature_matrix(df: pl.DataFrame, features: list[str]) -> tuple[np.ndarray, np.ndarray, dict[str, list[str]]]:
    """Numbers as floats (NaN kept: the model handles missing values); categories and booleans as codes
    (missing as its own code). Also the level names behind each categorical code."""
    cols, categorical, levels_of = [], [], {}
    for f in features:
        s = df[f]
        if s.dtype.is_numeric():
            cols.append(s.cast(pl.Float64).to_numpy())
            categorical.append(False)
        else:
            text = s.cast(pl.String).fill_null("(missing)")
            names = sorted(text.unique().to_list())
            levels_of[f] = names
            cols.append(text.replace_strict({v: i for i, v in enumerate(names)}, return_dtype=pl.Float64).to_numpy())
            categorical.append(True)
    return np.column_stack(cols), np.array(categorical), levels_of


def model(categorical: np.ndarray, seed: int, min_leaf: int = 30):
    from sklearn.ensemble import HistGradientBoostingRegressor
    return HistGradientBoostingRegressor(max_iter=60, learning_rate=0.1, max_leaf_nodes=12, min_samples_leaf=min_leaf,
                                         l2_regularization=1.0, categorical_features=categorical, random_state=seed)


def effect_model(categorical: np.ndarray, seed: int, n: int):
    """Heavily regularised: the pseudo-outcome is noisy, and an effect model should find broad drivers."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    return HistGradientBoostingRegressor(max_iter=60, learning_rate=0.05, max_depth=3, min_samples_leaf=max(50, n // 40),
                                         l2_regularization=5.0, categorical_features=categorical, random_state=seed)


@dataclass
class UpliftFit:
    tau: np.ndarray          # out-of-fold effect estimate per row
    importance: np.ndarray   # per feature
    fold: np.ndarray         # fold of each row


def outcome_residuals(x: np.ndarray, y: np.ndarray, fold: np.ndarray, categorical: np.ndarray, seed: int) -> np.ndarray:
    """Y - m(x) with m fitted on the other fold. One m per metric serves every arm: it is fitted on all arms,
    which the R-learner tolerates (its effect estimate is first-order insensitive to errors in m)."""
    residual = np.zeros(len(y))
    for k in (0, 1):
        m = model(categorical, seed).fit(x[fold != k], y[fold != k])
        residual[fold == k] = y[fold == k] - m.predict(x[fold == k])
    return residual


def fit_uplift(x: np.ndarray, residual: np.ndarray, treated: np.ndarray, fold: np.ndarray, categorical: np.ndarray,
               seed: int) -> UpliftFit:
    """The effect model on (Y - m(x)) / (T - e). With randomized arms e is a constant near 1/2, so the
    R-learner weights (T - e)^2 are nearly equal and are left out (sample weights make sklearn's binning
    take a slow weighted-percentile path)."""
    rng = np.random.default_rng([seed, 1])  # its own stream: permutations must not echo how the data were drawn
    target = residual / (treated - treated.mean())
    tau, importance = np.zeros(len(residual)), np.zeros(x.shape[1])
    for k in (0, 1):
        train, test = fold != k, fold == k
        g = effect_model(categorical, seed, int(train.sum())).fit(x[train], target[train])
        tau[test] = g.predict(x[test])
        rows = np.flatnonzero(test)
        if rows.size > IMPORTANCE_ROWS:  # a seeded subsample is enough to rank attributes by a mean shift
            rows = np.sort(rng.choice(rows, IMPORTANCE_ROWS, replace=False))
        held, base = x[rows], tau[rows]
        stacked = np.tile(held, (x.shape[1], 1))  # one copy per attribute, that attribute shuffled: one predict call
        for j in range(x.shape[1]):
            stacked[j * len(rows):(j + 1) * len(rows), j] = rng.permutation(held[:, j])
        shifted = np.abs(g.predict(stacked).reshape(x.shape[1], len(rows)) - base)
        importance += shifted.mean(axis=1) / 2
    return UpliftFit(tau=tau, importance=importance, fold=fold)
