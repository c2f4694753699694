"""Segmentation: RFM scoring with named segments, or k-means with k chosen by silhouette.

Both segmenters follow scikit-learn's contract: hyperparameters in __init__, learning in fit() (which
returns self), learned state ending in `_`, and transform() adding a `segment` column.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from tasks.records import SegmentProfile
from tasks.threads import single_threaded

# Named RFM segments, first match wins (scores are quintiles 1..5; R=5 is the most recent).
RFM_RULES = [
    ("champions", lambda r, f, m: (r >= 4) & (f >= 4)),
    ("new_customers", lambda r, f, m: (r >= 4) & (f <= 2)),
    ("at_risk", lambda r, f, m: (r <= 2) & (f >= 3)),
    ("hibernating", lambda r, f, m: (r <= 2) & (f <= 2)),
    ("loyal", lambda r, f, m: f >= 3),
    ("promising", lambda r, f, m: np.ones_like(r, dtype=bool)),
]
# Audience tags per segment name: they pick which approved content fits (document `audience`).
SEGMENT_TAGS = {
    "champions": ["high_value", "loyal"], "loyal": ["loyal"], "new_customers": ["new"],
    "at_risk": ["lapsed", "loyal"], "hibernating": ["lapsed", "price_sensitive"],
    "promising": ["new", "price_sensitive"],
    "low_value": ["price_sensitive"], "mid_value": ["loyal"], "high_value": ["high_value"],
}
DESCRIPTIONS = {
    "champions": "bought recently, buy often and spend the most",
    "loyal": "buy regularly with solid spend",
    "new_customers": "recent first purchases, few orders so far",
    "at_risk": "used to buy often but have not bought for a while",
    "hibernating": "long since the last purchase, few orders and low spend",
    "promising": "recent-ish buyers with room to grow",
    "low_value": "the lowest third by combined RFM score", "mid_value": "the middle third by combined RFM score",
    "high_value": "the top third by combined RFM score",
}


def rfm_scores(df: pl.DataFrame) -> np.ndarray:
    """Quintile scores 1..5 for recency (inverted: fewer days is better), frequency and monetary."""
    def quintile(col: str, descending: bool) -> pl.Expr:
        rank = pl.col(col).rank("average", descending=descending)
        return ((rank - 1) / pl.len() * 5).floor().cast(pl.Int8).clip(0, 4) + 1
    scored = df.select(quintile("recency_days", True).alias("r"), quintile("frequency", False).alias("f"),
                       quintile("monetary", False).alias("m"))
    return scored.to_numpy()


RULE_NAMES = np.array([name for name, _ in RFM_RULES], dtype=object)


def name_by_rules(scores: np.ndarray) -> np.ndarray:
    """The first rule each row's (r, f, m) scores satisfy, by name (the last rule matches everyone)."""
    r, f, m = scores[:, 0], scores[:, 1], scores[:, 2]
    code = np.full(len(scores), len(RFM_RULES) - 1, dtype=np.int8)
    for i, (_, rule) in reversed(list(enumerate(RFM_RULES[:-1]))):  # the first match is written last
        code[rule(r, f, m)] = i
    return RULE_NAMES[code]


def merge_small(names: np.ndarray, points: np.ndarray, min_share: float, min_segments: int = 3) -> np.ndarray:
    """Fold segments below `min_share` into the segment with the nearest centroid (keeps >= min_segments)."""
    labels = np.array(sorted(set(names.tolist())), dtype=object)  # as np.unique, without sorting every row
    index = {name: i for i, name in enumerate(labels)}
    code = np.fromiter((index[n] for n in names), dtype=np.int64, count=len(names))
    alive = list(range(len(labels)))
    while True:
        counts = np.bincount(code, minlength=len(labels))
        if len(alive) <= min_segments or counts[alive].min() >= min_share * len(names):
            return labels[code]
        small = alive[int(np.argmin(counts[alive]))]
        centroids = {c: points[code == c].mean(axis=0) for c in alive}
        others = [c for c in alive if c != small]
        target = min(others, key=lambda c: np.linalg.norm(centroids[c] - centroids[small]))
        code[code == small] = target
        alive.remove(small)


def score_cuts(values: np.ndarray, descending: bool, scores: np.ndarray | None = None) -> np.ndarray:
    """The 4 values where the quintile score of `rfm_scores` steps up, learned once on the whole file.
    score = 1 + (number of cuts reached) gives each customer of that file exactly its rank-based score (the
    score never decreases along the value), and scores a customer of any other frame (a partition) alike.
    `scores`: the file's scores for these values, when already computed."""
    if scores is None:
        rank = pl.col("v").rank("average", descending=descending)
        scores = pl.DataFrame({"v": values}).select(((rank - 1) / pl.len() * 5).floor().cast(pl.Int8).clip(0, 4) + 1)
        scores = scores["v"].to_numpy()
    order = -values if descending else values
    return np.array([order[scores >= s].min() if (scores >= s).any() else np.inf for s in range(2, 6)])


def apply_cuts(values: np.ndarray, cuts: np.ndarray, descending: bool) -> np.ndarray:
    order = -values if descending else values
    return (1 + np.searchsorted(cuts, order, side="right")).astype(np.int8)


class RFMSegmenter:
    def __init__(self, min_share: float = 0.05):
        self.min_share = min_share

    def fit(self, df: pl.DataFrame) -> "RFMSegmenter":
        scores = rfm_scores(df)
        x = df.select(pl.col(c).cast(pl.Float64) for c in ("recency_days", "frequency", "monetary")).to_numpy()
        self.cuts_ = [score_cuts(x[:, 0], True, scores[:, 0]), score_cuts(x[:, 1], False, scores[:, 1]),
                      score_cuts(x[:, 2], False, scores[:, 2])]
        raw = name_by_rules(scores)
        names = merge_small(raw, scores.astype(float), self.min_share)
        self.merged_ = dict(zip(raw.tolist(), names.tolist()))  # whole segments are merged, never part of one
        self.terciles_ = None
        if len(set(names.tolist())) < 3:  # degenerate data (e.g. everyone alike): fall back to value terciles
            names = value_terciles(scores)
            total = scores.sum(axis=1)
            self.terciles_ = np.quantile(total, [1 / 3, 2 / 3])
        self.segments_ = sorted(set(names))
        self.labels_ = names
        return self

    def scores(self, df: pl.DataFrame) -> np.ndarray:
        x = df.select(pl.col(c).cast(pl.Float64) for c in ("recency_days", "frequency", "monetary")).to_numpy()
        return np.column_stack([apply_cuts(x[:, 0], self.cuts_[0], True), apply_cuts(x[:, 1], self.cuts_[1], False),
                                apply_cuts(x[:, 2], self.cuts_[2], False)])

    def names(self, df: pl.DataFrame) -> np.ndarray:
        """Segment names for any frame (the file it was fitted on, or a partition of it), from what fit learned."""
        scores = self.scores(df)
        if self.terciles_ is not None:
            total = scores.sum(axis=1)
            return np.where(total <= self.terciles_[0], "low_value",
                            np.where(total <= self.terciles_[1], "mid_value", "high_value"))
        return np.array([self.merged_.get(n, n) for n in name_by_rules(scores)], dtype=object)

    def transform(self, df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(pl.Series("segment", self.names(df).tolist(), dtype=pl.String))


def value_terciles(scores: np.ndarray) -> np.ndarray:
    total = scores.sum(axis=1) + np.arange(len(scores)) * 1e-9  # tie-break keeps terciles non-empty
    cut = np.quantile(total, [1 / 3, 2 / 3])
    return np.where(total <= cut[0], "low_value", np.where(total <= cut[1], "mid_value", "high_value"))


class KMeansSegmenter:
    """k-means on standardised log RFM; k by silhouette (sampled); clusters named like RFM segments."""

    def __init__(self, k_range=(3, 6), min_share: float = 0.05, random_state: int = 0,
                 features=("recency_days", "frequency", "monetary"), fit_sample: int = 50_000):
        self.k_range, self.min_share, self.random_state = k_range, min_share, random_state
        self.features, self.fit_sample = features, fit_sample

    def _matrix(self, df: pl.DataFrame) -> np.ndarray:
        medians = getattr(self, "medians_", None)  # learned on the whole file, applied to any frame
        fill = [pl.lit(medians[i]) if medians else pl.col(c).median() for i, c in enumerate(self.features)]
        x = df.select([pl.col(c).cast(pl.Float64).fill_null(f) for c, f in zip(self.features, fill)]).to_numpy()
        return np.log1p(np.clip(x, 0, None))

    def fit(self, df: pl.DataFrame) -> "KMeansSegmenter":
        with single_threaded():
            return self._fit(df)

    def _fit(self, df: pl.DataFrame) -> "KMeansSegmenter":
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score
        from sklearn.preprocessing import StandardScaler

        rng = np.random.default_rng(self.random_state)
        self.medians_ = None
        x = self._matrix(df)
        self.medians_ = [df[c].cast(pl.Float64).median() for c in self.features]
        self.scaler_ = StandardScaler().fit(x)
        z = self.scaler_.transform(x)
        fit_rows = z[rng.choice(len(z), min(len(z), self.fit_sample), replace=False)]
        best = (float("nan"), 1, None)  # too few distinct customers for k-means: one cluster, named by RFM
        distinct = len(np.unique(fit_rows, axis=0))
        for k in range(self.k_range[0], min(self.k_range[1], distinct - 1, len(fit_rows) - 1) + 1):
            model = KMeans(n_clusters=k, n_init=4, random_state=self.random_state).fit(fit_rows)
            if len(np.unique(model.labels_)) < 2:
                continue
            score = silhouette_score(fit_rows, model.labels_, sample_size=min(len(fit_rows), 4000),
                                     random_state=self.random_state)
            if best[2] is None or score > best[0]:
                best = (score, k, model)
        self.silhouette_, self.k_, self.model_ = best
        clusters = self.model_.predict(z) if self.model_ is not None else np.zeros(len(z), dtype=int)
        names = self._name_clusters(clusters, rfm_scores(df))
        self.labels_ = merge_small(names, z, self.min_share)
        self.cluster_names_ = {int(c): self.labels_[np.argmax(clusters == c)] for c in np.unique(clusters)}
        self.segments_ = sorted(set(self.labels_))
        return self

    def names(self, df: pl.DataFrame) -> np.ndarray:
        """Segment names for any frame: its rows scaled and assigned to the fitted clusters, named as in fit."""
        z = self.scaler_.transform(self._matrix(df))
        clusters = self.model_.predict(z) if self.model_ is not None else np.zeros(len(z), dtype=int)
        return np.array([self.cluster_names_[int(c)] for c in clusters], dtype=object)

    def transform(self, df: pl.DataFrame) -> pl.DataFrame:
        with single_threaded():
            names = self.names(df)
        return df.with_columns(pl.Series("segment", names.tolist(), dtype=pl.String))

    @staticmethod
    def _name_clusters(clusters: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Name each cluster by the RFM rule its mean scores satisfy; repeated names get a suffix."""
        names, used = {}, {}
        for c in np.unique(clusters):
            mean = np.rint(scores[clusters == c].mean(axis=0)).reshape(1, 3)
            base = name_by_rules(mean)[0]
            used[base] = used.get(base, 0) + 1
            names[c] = base if used[base] == 1 else f"{base}_{used[base]}"
        return np.array([names[c] for c in clusters], dtype=object)



def make_segmenter(method: str, k_range, min_share: float, seed: int,
                   features=("recency_days", "frequency", "monetary")):
    if method == "kmeans":
        return KMeansSegmenter(k_range=tuple(k_range), min_share=min_share, random_state=seed, features=tuple(features))
    return RFMSegmenter(min_share=min_share)


def profile_segments(df: pl.DataFrame) -> list[SegmentProfile]:
    """Aggregates per segment: size, share, RFM means and the most common preferred category."""
    numeric = [c for c in ("recency_days", "frequency", "monetary", "age", "historical_open_rate") if c in df.columns]
    agg = [pl.len().alias("size")] + [pl.col(c).mean().alias(c) for c in numeric]
    if "preferred_category" in df.columns:
        agg.append(pl.col("preferred_category").drop_nulls().mode().first().alias("top_category"))
    rows = df.group_by("segment").agg(agg).sort("size", descending=True).to_dicts()
    total = df.height
    return [SegmentProfile(
        name=r["segment"], size=r["size"], share=r["size"] / total,
        tags=SEGMENT_TAGS.get(r["segment"].rstrip("_0123456789"), ["all"]),
        description=DESCRIPTIONS.get(r["segment"].rstrip("_0123456789"), "customers with similar value"),
        means={c: round(float(r[c]), 3) for c in numeric if r[c] is not None},
        top_category=r.get("top_category")) for r in rows]
