"""The embedded index: field-weighted BM25 over passages of each document, with metadata filters.

Long documents are cut into ~120-word passages on sentence boundaries so one relevant paragraph in a long
policy page is not drowned by the rest of it; a document scores as its best passage and hits still name
the document, because the generator quotes whole sentences of the document, not of the passage.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from datetime import date

from tasks.records import Document
from tasks.retrieval import Hit, audience_fits

# A term in the title or keywords says more about what a document is for than one in running text.
FIELD_WEIGHT = {"title": 2.0, "keywords": 2.0, "category": 0.5, "text": 1.0}
PHRASE_BONUS = 0.5  # per query bigram found verbatim in a passage: "rain jacket" beats "jacket ... rain"
AUDIENCE_BONUS = 1.0  # when the audience filter is relaxed, fitting documents keep a head start
CHUNK_WORDS = 120  # the Azure index chunks with the same function and size (azure_search.py)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
# Function words: no evidence of topic on their own, and no phrase meaning in a bigram ("of the").
STOPWORDS = frozenset("a an and are as at be by for from has have in is it of on or our so that the this to "
                      "was we with you your".split())


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def split_sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(" ".join(text.split())) if s]


def chunk_text(text: str, max_words: int = CHUNK_WORDS) -> list[str]:
    """Whole sentences packed into passages of at most `max_words` words; a longer sentence is cut by words."""
    passages, current = [], []
    for sentence in split_sentences(text):
        words = sentence.split()
        if current and len(current) + len(words) > max_words:
            passages.append(" ".join(current))
            current = []
        while len(words) > max_words:  # a run-on sentence (or a list without full stops)
            passages.append(" ".join(words[:max_words]))
            words = words[max_words:]
        current += words
    if current:
        passages.append(" ".join(current))
    return passages or [text]


def query_bigrams(words: list[str]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in zip(words, words[1:]) if a not in STOPWORDS and b not in STOPWORDS}


class LocalRetriever:
    """Index = one term bag per passage and field (built in C by Counter); postings of a term are gathered
    the first time a query uses it and cached, so building stays about as cheap as tokenizing."""

    name = "local"

    def __init__(self, documents: list[Document], k1: float = 1.5, b: float = 0.75, chunk_words: int = CHUNK_WORDS):
        self.documents, self.k1, self.b = documents, k1, b
        self.bags: dict[str, list[Counter]] = {f: [] for f in FIELD_WEIGHT}
        self.owner: list[int] = []  # passage -> index of its document
        self.phrase_texts: list[str] = []  # " title | kw 1 | kw 2 | passage ": f" {a} {b} " in it is a bigram test
        for i, doc in enumerate(documents):
            keywords = [" ".join(tokens(k)) for k in doc.keywords]
            shared = {"title": Counter(tokens(doc.title)), "category": Counter(tokens(doc.category)),
                      "keywords": Counter(" ".join(keywords).split())}
            head = " | ".join([" ".join(tokens(doc.title)), *keywords])
            for part in chunk_text(doc.text, chunk_words):
                words = tokens(part)
                for field, bag in {**shared, "text": Counter(words)}.items():
                    self.bags[field].append(bag)
                self.owner.append(i)
                self.phrase_texts.append(f" {head} | {' '.join(words)} ")
        self.lengths = {f: [sum(bag.values()) for bag in bags] for f, bags in self.bags.items()}
        self.avg_len = {f: (sum(v) / len(v) if sum(v) else 1.0) for f, v in self.lengths.items()}
        self._postings: dict[tuple[str, str], list[tuple[int, int]]] = {}

    def postings(self, field: str, term: str) -> list[tuple[int, int]]:
        """[(passage, term frequency)] for the passages whose `field` holds `term`."""
        key = (field, term)
        if key not in self._postings:
            self._postings[key] = [(j, bag[term]) for j, bag in enumerate(self.bags[field]) if term in bag]
        return self._postings[key]

    def passage_scores(self, query: str) -> dict[int, float]:
        """Okapi BM25 per field, weighted, plus PHRASE_BONUS per query bigram the passage contains verbatim."""
        words, n, k1, b = tokens(query), len(self.owner), self.k1, self.b
        scores: dict[int, float] = defaultdict(float)
        for term, count in Counter(w for w in words if w not in STOPWORDS).items():  # "the" is noise
            for field, weight in FIELD_WEIGHT.items():
                postings, lengths, avg = self.postings(field, term), self.lengths[field], self.avg_len[field]
                idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))  # BM25+ style idf, >= 0
                for j, tf in postings:
                    scores[j] += count * weight * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[j] / avg))
        for a, b_ in query_bigrams(words):
            needle = f" {a} {b_} "
            for j in [j for j in scores if needle in self.phrase_texts[j]]:
                scores[j] += PHRASE_BONUS
        return scores

    def document_scores(self, query: str) -> dict[int, float]:
        """A document is as relevant as its best passage."""
        best: dict[int, float] = {}
        for j, s in self.passage_scores(query).items():
            i = self.owner[j]
            best[i] = max(best.get(i, 0.0), s)
        return best

    def search(self, query: str, tags: list[str], top_k: int, today: date) -> list[Hit]:
        """Top-k usable documents (approved, not expired) for the audience; relaxes the audience filter
        only when it would leave fewer than top_k documents, so unseen content without audience tags works."""
        scores = self.document_scores(query)
        usable = [i for i, d in enumerate(self.documents) if d.usable_on(today)]
        fitting = {i for i in usable if audience_fits(self.documents[i], tags)}
        pool = usable if len(fitting) < top_k else [i for i in usable if i in fitting]

        def rank(i: int) -> tuple[float, str]:
            return -(scores.get(i, 0.0) + (AUDIENCE_BONUS if i in fitting else 0.0)), self.documents[i].id

        return [Hit(document_id=self.documents[i].id, title=self.documents[i].title,
                    score=round(scores.get(i, 0.0), 4)) for i in sorted(pool, key=rank)[:top_k]]
