import re

import pytest

from tasks.generation import next_strategy, render
from tasks.generation.local import LocalGenerator, sentences
from tasks.records import SegmentProfile
from tasks.safety import Screener, LocalHarmScorer, message_of

PROFILE = SegmentProfile(name="loyal", size=10, share=0.5, tags=["loyal"], description="buy regularly")
NUMBER = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)?%?")


@pytest.fixture(scope="module")
def generator(settings):
    return LocalGenerator(settings[2], 60)


def usable(documents):
    return [d for d in documents if d.approval_status == "approved" and d.id != "promo-spring-clearance"]


@pytest.mark.parametrize("strategy", ["value", "urgency", "loyalty", "spotlight", "education"])
def test_every_number_comes_from_a_cited_document(generator, documents, strategy):
    v = generator.generate(PROFILE, usable(documents), strategy, 1, 1, set())
    cited = " ".join(d.text for d in documents if d.id in v.citations)
    brand = generator.brand.postal_address
    text = re.sub(r"https?://\S+", " ", v.subject + " " + v.body)
    for n in NUMBER.findall(text):
        assert n.rstrip("%").lstrip("$") in cited + brand, (strategy, n)
    assert len(v.subject) <= 60 and "unsubscribe" in v.body.lower() and brand in v.body
    assert all(c.document_id in v.citations and c.text in cited for c in v.claims)


def test_strategies_differ(generator, documents):
    subjects = {generator.generate(PROFILE, usable(documents), s, 1, 1, set()).subject
                for s in ["value", "urgency", "loyalty"]}
    assert len(subjects) == 3


def test_avoided_documents_are_not_cited(generator, documents):
    first = generator.generate(PROFILE, usable(documents), "value", 1, 1, set())
    again = generator.generate(PROFILE, usable(documents), "value", 1, 2, set(first.citations))
    assert not set(first.citations) & set(again.citations)


def test_generated_copy_passes_screening(generator, documents, context):
    screener = Screener(LocalHarmScorer(), context)
    for s in ["value", "urgency", "loyalty", "spotlight", "education"]:
        v = generator.generate(PROFILE, usable(documents), s, 1, 1, set())
        assert screener.screen(message_of(v)).decision == "pass", s


def test_sentences_keep_abbreviations_whole():
    assert sentences("Bring a receipt from Summit Supply Co. and we match it. Next one here.") == [
        "Bring a receipt from Summit Supply Co. and we match it.", "Next one here."]


def test_render_fills_merge_fields_with_fallback():
    assert render("Hi {first_name},", {"first_name": "Ana"}) == "Hi Ana,"
    assert render("Hi {first_name},", {"first_name": None}) == "Hi there,"


def test_next_strategy_skips_used():
    assert next_strategy(["a", "b", "c"], {"a", "b"}) == "c" and next_strategy(["a"], {"a"}) is None
