import numpy as np
import polars as pl

from tasks.explain import attribute, candidate_features


def test_planted_driver_ranks_first():
    rng = np.random.default_rng(0)
    n = 8000
    recency = rng.integers(0, 200, n).astype(float)
    arm = np.where(rng.random(n) < 0.5, "control", "treatment_1")
    p = 0.2 + np.where((arm == "treatment_1") & (recency <= 45), 0.25, 0.0)
    df = pl.DataFrame({"customer_id": [str(i) for i in range(n)], "arm": arm, "recency_days": recency,
                       "age": rng.integers(18, 80, n).astype(float), "tier": rng.choice(["a", "b", "c"], n),
                       "email": "x@example.com", "opened": (rng.random(n) < p).astype(int)})
    out = attribute(df, ["opened"], seed=1)
    top = out.filter(pl.col("rank") == 1).row(0, named=True)
    assert top["feature"] == "recency_days" and top["arm"] == "treatment_1"
    assert "email" not in out["feature"].to_list() and "customer_id" not in out["feature"].to_list()


def test_candidate_features_skip_ids_pii_and_constants():
    df = pl.DataFrame({"customer_id": ["1", "2"], "email": ["a", "b"], "c": [1, 1], "x": [1.0, 2.0], "opened": [0, 1]})
    assert candidate_features(df, ["opened"]) == ["x"]
