import numpy as np
import pytest
import polars as pl

from tasks.segmentation import KMeansSegmenter, RFMSegmenter, merge_small, profile_segments


def population(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"customer_id": [str(i) for i in range(n)], "recency_days": rng.integers(0, 365, n).astype(float),
                         "frequency": rng.integers(0, 30, n).astype(float), "monetary": rng.gamma(2, 200, n)})


def test_rfm_names_at_least_three_segments():
    seg = RFMSegmenter(min_share=0.05).fit(population())
    assert len(seg.segments_) >= 3 and "champions" in seg.segments_


def test_rfm_champions_are_recent_and_frequent():
    df = RFMSegmenter().fit(population()).transform(population())
    champs = df.filter(pl.col("segment") == "champions")
    assert champs["recency_days"].mean() < df["recency_days"].mean()
    assert champs["frequency"].mean() > df["frequency"].mean()


def test_small_segments_merge_into_nearest():
    names = np.array(["a"] * 50 + ["b"] * 45 + ["c"] * 3 + ["d"] * 40, dtype=object)
    points = np.array([[0.0]] * 50 + [[10.0]] * 45 + [[9.0]] * 3 + [[20.0]] * 40)
    merged = merge_small(names, points, 0.05)
    assert set(merged) == {"a", "b", "d"} and (merged[95:98] == "b").all()


def test_identical_customers_still_give_three_segments():
    df = pl.DataFrame({"customer_id": [str(i) for i in range(30)], "recency_days": [5.0] * 30,
                       "frequency": [2.0] * 30, "monetary": [50.0] * 30})
    assert len(RFMSegmenter().fit(df).segments_) == 3


def test_kmeans_is_seeded_and_picks_k_in_range():
    a = KMeansSegmenter(k_range=(3, 5), random_state=1).fit(population())
    b = KMeansSegmenter(k_range=(3, 5), random_state=1).fit(population())
    assert 3 <= a.k_ <= 5 and list(a.labels_) == list(b.labels_) and len(a.segments_) >= 3


def test_profiles_are_aggregates_only():
    df = RFMSegmenter().fit(population()).transform(population())
    profiles = profile_segments(df)
    assert sum(p.size for p in profiles) == df.height
    assert all("customer_id" not in p.means for p in profiles)


# --- learned once, applied to any frame: partitions get the segments the whole file gets -----------------
def _customers(n, seed=3):
    import numpy as np

    rng = np.random.default_rng(seed)
    freq = rng.poisson(4, n).astype(float)
    return pl.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "recency_days": rng.integers(0, 400, n) * 1.0,
                         "frequency": freq, "monetary": np.round(freq * rng.gamma(2, 30, n), 2)})


@pytest.mark.parametrize("method", ["rfm", "kmeans"])
def test_transform_of_any_partition_equals_the_fitted_labels(method):
    from tasks.segmentation import make_segmenter

    df = _customers(6000)
    seg = make_segmenter(method, (3, 5), 0.05, 1).fit(df)
    whole = seg.transform(df)["segment"]
    assert whole.to_list() == [str(v) for v in seg.labels_]  # the rank-based scores, reproduced from cut points
    parts = pl.concat([seg.transform(df.slice(o, 1700)) for o in range(0, df.height, 1700)])["segment"]
    assert parts.equals(whole) and set(whole.unique()) == set(seg.segments_)
