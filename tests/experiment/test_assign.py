import numpy as np
import polars as pl

from tasks.experiment.assign import arm_weights, assign, hash_unit


def people(n, segments=("a", "b")):
    return pl.DataFrame({"customer_id": [f"c{i}" for i in range(n)], "segment": [segments[i % len(segments)] for i in range(n)],
                         "email_opt_in": [i % 25 != 0 for i in range(n)]})


PASSED = {"a": {1: "a.t1.value", 2: "a.t2.urgency"}, "b": {1: "b.t1.value", 2: "b.t2.urgency"}}


def test_hash_unit_is_uniform_and_stable():
    u = hash_unit([str(i) for i in range(20000)], 1, "x")
    assert abs(u.mean() - 0.5) < 0.01 and (u >= 0).all() and (u < 1).all()
    assert np.array_equal(u[:10], hash_unit([str(i) for i in range(10)], 1, "x"))


def test_same_seed_same_arms_and_adding_customers_moves_nobody():
    first, _ = assign(people(1000), PASSED, 0.25, 7, "camp")
    more, _ = assign(people(1500), PASSED, 0.25, 7, "camp")
    joined = first.join(more, on="customer_id", suffix="_new")
    assert (joined["arm"] == joined["arm_new"]).all()


def test_opted_out_never_assigned():
    out, _ = assign(people(1000), PASSED, 0.25, 7, "camp")
    assert out.height == 960 and not out["customer_id"].is_in([f"c{i}" for i in range(0, 1000, 25)]).any()


def test_arm_shares_follow_weights_within_segment():
    out, weights = assign(people(20000), PASSED, 0.25, 7, "camp")
    share = out.filter(pl.col("segment") == "a")["arm"].value_counts(normalize=True)
    control = share.filter(pl.col("arm") == "control")["proportion"][0]
    assert abs(control - 0.25) < 0.02 and weights["a"] == {"control": 0.25, "treatment_1": 0.375, "treatment_2": 0.375}


def test_treatment_gets_its_segments_variant_and_control_none():
    out, _ = assign(people(400), PASSED, 0.25, 7, "camp")
    t = out.filter(pl.col("arm") == "treatment_2")
    assert (t["variant_id"] == t["segment"] + ".t2.urgency").all()
    assert out.filter(pl.col("arm") == "control")["variant_id"].is_null().all()


def test_holdout_is_never_sent():
    out, _ = assign(people(4000), PASSED, 0.25, 7, "camp", holdout_weight=0.1)
    held = out.filter(pl.col("arm") == "holdout")
    assert 0.07 < held.height / out.height < 0.13 and held["variant_id"].is_null().all()


def test_weights_with_missing_slot():
    assert arm_weights([1], 0.25) == {"control": 0.25, "treatment_1": 0.75}


def test_configured_treatment_weights_are_renormalised():
    w = arm_weights([1, 2], 0.2, {"treatment_1": 3, "treatment_2": 1, "treatment_3": 4})
    assert w["control"] == 0.2 and abs(w["treatment_1"] - 0.6) < 1e-12 and abs(w["treatment_2"] - 0.2) < 1e-12


def test_control_first_in_file_order_does_not_crash():
    """`cpo run --seed 1` crashed here: an object column whose first value was None could not be cast."""
    import polars as pl

    from tasks.experiment.assign import assign

    df = pl.DataFrame({"customer_id": [str(i) for i in range(200)], "segment": ["s"] * 200})
    for seed in range(30):
        out, _ = assign(df, {"s": {1: "s.t1.value"}}, 0.99, seed, "c")
        assert out.height == 200 and out.filter(pl.col("arm") == "control")["variant_id"].null_count() == \
            out.filter(pl.col("arm") == "control").height


def test_too_few_eligible_customers_is_an_input_error_that_says_why():
    import polars as pl
    import pytest

    from tasks.errors import InputError
    from tasks.experiment.assign import check_eligible

    df = pl.DataFrame({"customer_id": ["a", "b", "c"], "email_opt_in": [False, False, True],
                       "email": ["a@x.org", "b@x.org", None]})
    with pytest.raises(InputError, match=r"only 0 of 3 customers.*2 have not opted in; 1 have no email address"):
        check_eligible(df, "c.csv", 1)


# --- the bulk hashing and the vectorised arms give exactly what the per-customer loop gave -----------------
import hashlib  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402

from tasks.experiment.assign import HOLDOUT, eligible, treatment_arm  # noqa: E402


def reference_hash_unit(ids, seed, salt):
    """The per-customer loop assignments were made with before the bulk version (kept here as the oracle)."""
    prefix = f"{seed}:{salt}:".encode()
    return np.array([int.from_bytes(hashlib.sha256(prefix + i.encode()).digest()[:7], "big") >> 4 for i in ids],
                    dtype=np.float64) / float(1 << 52)


def reference_assign(customers, passed, control_weight, seed, salt, holdout_weight=0.0):
    pool = customers.filter(eligible(customers)).select("customer_id", "segment")
    u = reference_hash_unit(pool["customer_id"].to_list(), seed, salt)
    held = u < holdout_weight
    u = (u - holdout_weight) / (1 - holdout_weight)
    segments = pool["segment"].to_numpy()
    arms = np.full(pool.height, HOLDOUT, dtype=object)
    variants = np.full(pool.height, None, dtype=object)
    for segment in sorted(set(segments)):
        slots = passed.get(segment, {})
        w = arm_weights(list(slots), control_weight)
        rows = (segments == segment) & ~held
        edges = np.cumsum(list(w.values()))
        arms[rows] = np.array(list(w), dtype=object)[np.minimum(np.searchsorted(edges, u[rows], side="right"),
                                                                 len(w) - 1)]
        for slot, vid in slots.items():
            variants[rows & (arms == treatment_arm(slot))] = vid
    return pool.with_columns(pl.Series("arm", arms.tolist(), dtype=pl.String),
                             pl.Series("variant_id", variants.tolist(), dtype=pl.String))


ids_strategy = st.lists(st.text(min_size=0, max_size=80), min_size=0, max_size=60)


@settings(max_examples=200, deadline=None)
@given(ids=ids_strategy, seed=st.integers(-10**12, 10**12), salt=st.text(max_size=30))
def test_bulk_hash_is_bit_identical_to_the_per_customer_loop(ids, seed, salt):
    ids = [i.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for i in ids]  # polars holds valid UTF-8
    got, want = hash_unit(ids, seed, salt), reference_hash_unit(ids, seed, salt)
    assert got.dtype == np.float64 and np.array_equal(got, want)
    assert np.array_equal(hash_unit(pl.Series(ids, dtype=pl.String), seed, salt), want)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 400), seed=st.integers(0, 2**31), holdout=st.sampled_from([0.0, 0.1]),
       control=st.sampled_from([0.1, 0.25, 0.5]))
def test_vectorised_assign_equals_the_loop(n, seed, holdout, control):
    passed = {"a": {1: "a.t1.value", 2: "a.t2.urgency"}, "b": {2: "b.t2.urgency"}, "c": {}}
    df = people(n, ("a", "b", "c"))
    got, _ = assign(df, passed, control, seed, "camp", holdout)
    want = reference_assign(df, passed, control, seed, "camp", holdout)
    assert got.equals(want) and got.schema == want.schema


def test_many_generated_ids_keep_their_arms():
    ids = [f"C{i:08d}" for i in range(0, 3_000_000, 7)] + ["josé", "Ĳ", "a\u200bb", "", " x "]
    assert np.array_equal(hash_unit(ids, 42, "spring"), reference_hash_unit(ids, 42, "spring"))
