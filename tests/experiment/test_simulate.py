import numpy as np
import polars as pl

from config import Effect, Simulation
from tasks.experiment.simulate import simulate


def frame(n=40000, seed=0):
    rng = np.random.default_rng(seed)
    arms = np.where(rng.random(n) < 0.5, "control", "treatment_1")
    return pl.DataFrame({"customer_id": [f"c{i:06d}" for i in range(n)], "arm": arms, "segment": "s",
                         "variant_id": np.where(arms == "control", None, "s.t1.urgency"),
                         "recency_days": rng.integers(0, 200, n).astype(float), "frequency": rng.integers(1, 10, n).astype(float),
                         "monetary": rng.gamma(2, 100, n), "historical_open_rate": rng.uniform(0.1, 0.5, n),
                         "historical_click_rate": rng.uniform(0.01, 0.08, n)})


SIM = Simulation(personalization_lift={"opened": 0.0},
                 effects=[Effect(strategy="urgency", metric="opened", attribute="recency_days", op="<=", value=45, rel_lift=0.5)])


def test_outcomes_are_nested_and_binary():
    out, _ = simulate(frame(5000), {"s.t1.urgency": "urgency"}, SIM, 1)
    assert (out["clicked"] <= out["opened"]).all() and (out["converted"] <= out["clicked"]).all()
    assert (out.filter(pl.col("converted") == 0)["revenue"] == 0).all()


def test_planted_effect_shows_where_planted():
    f = frame()
    out, truth = simulate(f, {"s.t1.urgency": "urgency"}, SIM, 1)
    data = out.join(f.select("customer_id", "recency_days"), on="customer_id")
    def lift(mask):
        g = data.filter(mask).group_by("arm").agg(pl.col("opened").mean()).sort("arm")["opened"].to_list()
        return g[1] / g[0] - 1
    assert lift(pl.col("recency_days") <= 45) > 0.3
    assert abs(lift(pl.col("recency_days") > 45)) < 0.08
    assert 0.05 < truth["treatment_1"]["opened"] < 0.2


def test_same_seed_same_outcomes():
    a, _ = simulate(frame(2000), {"s.t1.urgency": "urgency"}, SIM, 3)
    b, _ = simulate(frame(2000), {"s.t1.urgency": "urgency"}, SIM, 3)
    assert a.equals(b)


def test_draws_are_seeded_per_customer_so_partitions_change_nothing():
    from tasks.experiment.simulate import (baseline, customer_uniforms, merge_truth, true_lifts, truth_sums,
                                           typical_order_value)

    f, strategies = frame(9000), {"s.t1.urgency": "urgency"}
    typical = typical_order_value(f)
    whole, truth = simulate(f, strategies, SIM, 5, typical)
    parts = [simulate(f.slice(o, 2500), strategies, SIM, 5, typical) for o in range(0, f.height, 2500)]
    assert pl.concat([p[0] for p in parts]).equals(whole)
    sums = [truth_sums(p, p["arm"].to_numpy(), np.where(p["arm"].to_numpy() == "control", "", "urgency"),
                       baseline(p, SIM), SIM) for p in (f.slice(o, 2500) for o in range(0, f.height, 2500))]
    assert true_lifts(merge_truth(sums)) == truth
    u = customer_uniforms(f["customer_id"], 5, 5)
    assert ((u > 0) & (u < 1)).all() and abs(u.mean() - 0.5) < 0.01
    assert np.array_equal(customer_uniforms(f["customer_id"][100:200], 5, 5), u[100:200])
    assert not np.array_equal(customer_uniforms(f["customer_id"], 6, 5), u)  # another seed, other draws
