"""Great Expectations Data Docs written into a run folder as evidence, by GX's own Checkpoint."""
import html
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import polars as pl
import pytest

from tasks import checkpoints
from tasks.checkpoints import run_checkpoint


@pytest.fixture(scope="module", autouse=True)
def gx_ready():
    checkpoints._gx()


def customers(**overrides) -> pl.DataFrame:
    data = {"customer_id": ["a", "b", "c"], "recency_days": [3.0, 40.0, 300.0], "frequency": [12, 4, 0],
            "monetary": [900.0, 200.0, 0.0], "email": ["ana@example.com", "bo@example.com", "cy@example.com"],
            "email_opt_in": [True, True, False]}
    data.update(overrides)
    return pl.DataFrame(data)


def page_of(result):
    assert result.docs_page.startswith("file://")
    return Path(unquote(urlparse(result.docs_page).path))


def validation_pages(docs):
    return sorted(p.relative_to(docs).parts[1] for p in (docs / "validations").rglob("*.html"))


def test_a_validation_leaves_gx_data_docs_in_the_folder(tmp_path):
    docs = tmp_path / "data_docs"
    result = run_checkpoint("customers", customers(monetary=[900.0, -5.0, 0.0]), docs)
    assert not result.success and result.failures[0].column == "monetary"
    page = page_of(result)
    assert page.is_file() and page.is_relative_to(docs.resolve()) and page.parent.parent.parent.name == "customers"
    assert "monetary (total spend) must be 0 or more" in page.read_text()  # our plain words: GX's description
    assert (docs / "index.html").is_file() and (docs / "expectations" / "customers.html").is_file()
    stored = [json.loads(p.read_text()) for p in (docs / "results" / "customers").rglob("*.json")]
    assert len(stored) == 1 and stored[0]["success"] is False
    assert stored[0]["statistics"]["evaluated_expectations"] == result.evaluated == 7


def test_no_customer_value_reaches_the_docs(tmp_path):
    """GX is asked for row numbers only (exclude_unexpected_values): a bad address is reported, masked,
    by our message, and appears nowhere in the Data Docs or the stored results."""
    docs = tmp_path / "data_docs"
    result = run_checkpoint("customers", customers(email=["ana@example.com", "jose.garcia@", None]), docs)
    assert [e["email"] for e in result.failures[0].examples] == ["j***"]
    written = "".join(p.read_text(errors="ignore") for p in docs.rglob("*") if p.is_file() and "static" not in p.parts)
    assert "partial_unexpected_index_list" in written and "jose" not in written


def test_a_missing_required_column_is_gx_own_check_and_in_the_docs(tmp_path):
    docs = tmp_path / "data_docs"
    frame = pl.DataFrame({"variant_id": ["v1"], "decision": ["pass"]})
    result = run_checkpoint("screening", frame, docs)
    failure = next(f for f in result.failures if f.column == "status")
    assert failure.expectation == "expect_column_to_exist"
    assert "required column 'status' is missing; the frame has variant_id, decision" in failure.description
    assert "required column 'status' is missing" in html.unescape(page_of(result).read_text())


def test_every_checkpoint_of_a_run_is_in_one_index_even_across_processes(tmp_path):
    docs = tmp_path / "data_docs"
    run_checkpoint("customers", customers(), docs)
    run_checkpoint("screening", pl.DataFrame({"variant_id": ["v1"], "decision": ["pass"], "status": ["passed"]}),
                   docs)
    checkpoints._docs_states.clear()  # as a resumed run in a new process: a new GX context on the same folder
    run_checkpoint("assignments", pl.DataFrame({"customer_id": ["a"], "segment": ["s"], "arm": ["control"]}), docs)
    assert validation_pages(docs) == ["assignments", "customers", "screening"]
    index = (docs / "index.html").read_text()
    assert all(re.search(rf"validations/{s}/", index) for s in ("customers", "screening", "assignments"))


def test_without_a_docs_folder_nothing_is_written_or_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_checkpoint("customers", customers(monetary=[900.0, -5.0, 0.0]))
    assert not result.success and result.docs_page is None
    assert list(tmp_path.iterdir()) == []
    assert checkpoints._gx().context.validation_results_store.list_keys() == []
