"""Great Expectations checkpoints: one behaviour per test, on 3-row frames built here."""
import json

import polars as pl
import pytest

from tasks import checkpoints
from tasks.checkpoints import CheckpointResult, FailedExpectation, run_checkpoint


@pytest.fixture(scope="module", autouse=True)
def gx_ready():
    """Pay GX's one-time import (~5 s) once for the whole module."""
    checkpoints._gx()


def customers(**overrides) -> pl.DataFrame:
    data = {"customer_id": ["a", "b", "c"], "recency_days": [3.0, 40.0, 300.0], "frequency": [12, 4, 0],
            "monetary": [900.0, 200.0, 0.0], "email": ["a@example.com", "b@example.com", "c@example.com"],
            "email_opt_in": [True, True, False]}
    data.update(overrides)
    return pl.DataFrame(data)


def only_failure(result: CheckpointResult) -> FailedExpectation:
    assert not result.success
    assert len(result.failures) == 1, result.summary()
    return result.failures[0]


def screening(**overrides) -> pl.DataFrame:
    data = {"variant_id": ["v1", "v2", "v3"], "decision": ["pass", "block", "pass"],
            "status": ["passed", "blocked", "passed"]}
    data.update(overrides)
    return pl.DataFrame(data, schema={"variant_id": pl.String, "decision": pl.String, "status": pl.String})


def assignments(**overrides) -> pl.DataFrame:
    data = {"customer_id": ["a", "b", "c"], "segment": ["s1", "s1", "s2"], "arm": ["control", "treatment_1", "holdout"]}
    data.update(overrides)
    return pl.DataFrame(data, schema={"customer_id": pl.String, "segment": pl.String, "arm": pl.String})


# --------------------------------------------------------------------------------------------- customers

def test_clean_customers_pass():
    result = run_checkpoint("customers", customers())
    assert result.success and result.failures == [] and result.skipped == []
    assert result.suite == "customers" and result.evaluated == 7


def test_duplicate_customer_id_fails_with_the_duplicated_rows():
    failure = only_failure(run_checkpoint("customers", customers(customer_id=["a", "b", "a"])))
    assert failure.expectation == "expect_column_values_to_be_unique"
    assert failure.column == "customer_id" and "unique" in failure.description
    assert failure.unexpected_count == 2
    assert [e["row"] for e in failure.examples] == [1, 3]
    assert all(e["customer_id"] == "a" for e in failure.examples)
    assert failure.examples[1]["recency_days"] == 300.0  # whole rows, not just the key


def test_negative_monetary_fails_with_the_row_without_personal_data():
    failure = only_failure(run_checkpoint("customers", customers(monetary=[900.0, -5.0, 0.0])))
    assert failure.column == "monetary" and failure.unexpected_count == 1
    assert failure.examples == [{"row": 2, "customer_id": "b", "recency_days": 40.0, "frequency": 4,
                                 "monetary": -5.0, "email_opt_in": True}]  # the email column is left out


def test_a_name_column_in_another_language_is_left_out_of_the_example_rows():
    failure = only_failure(run_checkpoint("customers", customers(monetary=[900.0, -5.0, 0.0],
                                                                 Nachname=["Okafor", "Mueller", "Okafor"])))
    assert "Nachname" not in failure.examples[0] and "Mueller" not in failure.line()


def test_a_bad_email_is_shown_masked():
    failure = only_failure(run_checkpoint("customers", customers(email=["a@example.com", "jose.garcia@", None])))
    assert failure.column == "email"
    assert [e["email"] for e in failure.examples] == ["j***"]
    assert "jose" not in failure.line()


def test_recency_out_of_range_fails():
    failure = only_failure(run_checkpoint("customers", customers(recency_days=[3.0, 40.0, 40000.0])))
    assert failure.column == "recency_days" and [e["row"] for e in failure.examples] == [3]


def test_bad_email_fails():
    failure = only_failure(run_checkpoint("customers", customers(email=["a@example.com", "not-an-email", None])))
    assert failure.expectation == "expect_column_values_to_match_regex" and failure.column == "email"
    assert failure.unexpected_count == 1 and failure.examples[0]["row"] == 2


def test_missing_email_values_are_allowed():
    assert run_checkpoint("customers", customers(email=["a@example.com", None, None])).success


def test_non_boolean_opt_in_fails():
    failure = only_failure(run_checkpoint("customers", customers(email_opt_in=["yes", "true", "no"])))
    assert failure.column == "email_opt_in" and failure.unexpected_count == 3


def test_missing_optional_column_is_skipped():
    result = run_checkpoint("customers", customers().drop("email", "email_opt_in"))
    assert result.success and result.evaluated == 5
    assert result.skipped == ["expect_column_values_to_match_regex(email)",
                              "expect_column_values_to_be_in_set(email_opt_in)"]


def test_missing_customer_id_column_fails_clearly():
    failure = only_failure(run_checkpoint("customers", customers().drop("customer_id")))
    assert failure.expectation == "expect_column_to_exist" and failure.column == "customer_id"
    assert "required column 'customer_id' is missing" in failure.description


def test_summary_names_column_description_count_and_row():
    text = run_checkpoint("customers", customers(monetary=[900.0, -5.0, 0.0])).summary()
    assert "FAILED 1 of 7" in text
    assert "monetary: monetary (total spend) must be 0 or more -- 1 row; e.g. row 2: customer_id='b'" in text


# ------------------------------------------------------------------------------------------- assignments

def test_assignments_pass():
    assert run_checkpoint("assignments", assignments()).success


def test_assignment_without_arm_fails():
    failure = only_failure(run_checkpoint("assignments", assignments(arm=["control", None, "holdout"])))
    assert failure.column == "arm" and failure.examples[0]["row"] == 2


def test_customer_assigned_twice_fails():
    failure = only_failure(run_checkpoint("assignments", assignments(customer_id=["a", "a", "c"])))
    assert failure.column == "customer_id" and [e["row"] for e in failure.examples] == [1, 2]


def test_assignments_without_segment_column_fail():
    failure = only_failure(run_checkpoint("assignments", assignments().drop("segment")))
    assert failure.expectation == "expect_column_to_exist" and failure.column == "segment"


# --------------------------------------------------------------------------------------------- screening

def test_screening_passes():
    assert run_checkpoint("screening", screening()).success


def test_screening_unknown_decision_fails():
    result = run_checkpoint("screening", screening(decision=["pass", "maybe", "pass"]))
    assert not result.success
    in_set = [f for f in result.failures if f.expectation == "expect_column_values_to_be_in_set"]
    assert len(in_set) == 1 and in_set[0].column == "decision" and in_set[0].examples[0]["row"] == 2


def test_screening_missing_decision_fails():
    result = run_checkpoint("screening", screening(decision=["pass", None, "pass"]))
    assert not result.success
    nulls = [f for f in result.failures if f.expectation == "expect_column_values_to_not_be_null"]
    assert len(nulls) == 1 and nulls[0].column == "decision" and nulls[0].examples[0]["row"] == 2


def test_screening_status_contradicting_decision_fails():
    failure = only_failure(run_checkpoint("screening", screening(status=["passed", "passed", "passed"])))
    assert failure.expectation == "expect_column_pair_values_to_be_in_set"
    assert failure.examples[0] == {"row": 2, "variant_id": "v2", "decision": "block", "status": "passed"}


def test_screening_duplicate_variant_fails():
    failure = only_failure(run_checkpoint("screening", screening(variant_id=["v1", "v1", "v3"])))
    assert failure.column == "variant_id" and failure.unexpected_count == 2


# ---------------------------------------------------------------------------------------- suite loading

def test_unknown_suite_names_the_known_ones():
    with pytest.raises(FileNotFoundError, match="customers"):
        run_checkpoint("no-such-suite", customers())


def test_misspelt_expectation_is_an_error_not_silently_dropped(tmp_path, monkeypatch):
    (tmp_path / "typo.json").write_text(json.dumps({"name": "typo", "expectations": [
        {"type": "expect_column_values_to_be_uniq", "kwargs": {"column": "customer_id"}}]}))
    monkeypatch.setattr(checkpoints, "EXPECTATIONS_DIR", tmp_path)
    with pytest.raises(ValueError, match="expect_column_values_to_be_uniq"):
        run_checkpoint("typo", customers())
