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
