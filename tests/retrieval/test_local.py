import time
from datetime import date

import pytest

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


def sentences(n, word="filler"):
    return " ".join(f"Sentence {i} is about {word} things only." for i in range(n))  # 7 words each


def test_chunks_are_whole_sentences_of_at_most_120_words():
    from tasks.retrieval.local import chunk_text
    text = sentences(60)  # 420 words
    parts = chunk_text(text)
    assert len(parts) == 4 and all(len(p.split()) <= 120 for p in parts)
    assert all(p.endswith("only.") for p in parts) and " ".join(parts) == text


def test_run_on_sentence_is_cut_by_words():
    from tasks.retrieval.local import chunk_text
    parts = chunk_text(" ".join(["word"] * 300))
    assert [len(p.split()) for p in parts] == [120, 120, 60]


def test_long_document_scores_by_its_best_passage_and_hits_name_the_document():
    long_doc = doc("manual", sentences(40) + " The waterproof hiking boots resist snow. " + sentences(40))
    r = LocalRetriever([long_doc, doc("short", "Tents for camping."), doc("other", "Gift cards for anyone.")])
    assert len(r.owner) > 3  # the manual was cut into several passages
    hits = r.search("waterproof hiking boots", ["all"], 3, TODAY)
    assert hits[0].document_id == "manual" and [h.document_id for h in hits].count("manual") == 1
    assert hits[0].score == round(max(r.passage_scores("waterproof hiking boots").values()), 4)


def test_best_passage_beats_diluted_whole_document():
    """Without chunking the one relevant sentence of a long page is drowned by its length."""
    long_doc = doc("long", sentences(60) + " Our rain jacket keeps you dry.")
    short_doc = doc("short", "A rain jacket and rain pants for storms. " + sentences(10))
    chunked = LocalRetriever([long_doc, short_doc]).document_scores("rain jacket")
    whole = LocalRetriever([long_doc, short_doc], chunk_words=10_000).document_scores("rain jacket")
    assert chunked[0] / chunked[1] > whole[0] / whole[1]


def test_exact_phrase_beats_scattered_words():
    r = LocalRetriever([doc("scattered", "The jacket shrugs off rain and wind."),
                        doc("phrase", "The rain jacket shrugs off wind and more.")])
    assert [h.document_id for h in r.search("rain jacket", ["all"], 2, TODAY)] == ["phrase", "scattered"]


def test_phrase_bonus_ignores_stopword_pairs_and_keyword_boundaries():
    from tasks.retrieval.local import PHRASE_BONUS
    r = LocalRetriever([doc("phrase", "Boots and tents.", keywords=["rain jacket"]),
                        doc("split", "Boots and tents.", keywords=["rain", "jacket"])])
    s = r.passage_scores("rain jacket")  # same bags, so the only difference is the bonus
    assert s[0] - s[1] == pytest.approx(PHRASE_BONUS)
    assert r.passage_scores("boots and tents") == r.passage_scores("tents boots")  # "and": neither term nor phrase


def test_thousands_of_documents_query_well_under_a_second():
    words = [f"w{i}" for i in range(3000)]
    docs = [doc(f"d{i}", " ".join(f"{words[(i * 7 + j) % 3000]} {words[(i + j * 13) % 3000]} gear." for j in range(30)),
                keywords=[words[i % 3000]]) for i in range(3000)]
    r = LocalRetriever(docs)
    start = time.perf_counter()
    hits = r.search("w10 w20 gear w30 rain jacket", ["all"], 8, TODAY)
    assert time.perf_counter() - start < 1.0 and len(hits) == 8
