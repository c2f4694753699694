from datetime import date

from tasks.records import Document
from tasks.retrieval.local import LocalRetriever

TODAY = date(2026, 11, 24)


def doc(i, text, **kw):
    return Document(id=i, title=kw.pop("title", i), text=text, **kw)


def test_ranks_matching_text_first():
    r = LocalRetriever([doc("a", "tents and sleeping bags"), doc("b", "boots for hiking trails"), doc("c", "gift cards")])
    assert r.search("hiking boots", ["all"], 2, TODAY)[0].document_id == "b"


def test_filters_expired_and_draft():
    r = LocalRetriever([doc("old", "boots", expires_at=date(2025, 1, 1)), doc("draft", "boots", approval_status="draft"),
                        doc("ok", "boots")])
    assert [h.document_id for h in r.search("boots", ["all"], 5, TODAY)] == ["ok"]


def test_audience_filter_prefers_fitting_documents():
    r = LocalRetriever([doc("vip", "boots boots boots", audience=["high_value"]), doc("new", "boots", audience=["new"])])
    assert [h.document_id for h in r.search("boots", ["new"], 1, TODAY)] == ["new"]


def test_audience_filter_relaxes_when_too_few():
    r = LocalRetriever([doc("vip", "boots", audience=["high_value"]), doc("new", "boots", audience=["new"])])
    assert len(r.search("boots", ["new"], 2, TODAY)) == 2


def test_title_counts_more_than_text():
    r = LocalRetriever([doc("a", "a jacket for rain", title="Gift card"), doc("b", "something", title="Rain jacket")])
    assert r.search("rain jacket", ["all"], 1, TODAY)[0].document_id == "b"
