"""The embedded index: Okapi BM25 over title, keywords and text, with metadata filters."""
from __future__ import annotations

import math
import re
from collections import Counter
from datetime import date

from tasks.records import Document
from tasks.retrieval import Hit, audience_fits

FIELD_BOOST = {"title": 2, "keywords": 2, "category": 1, "text": 1}  # a term in the title counts twice


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class LocalRetriever:
    name = "local"

    def __init__(self, documents: list[Document], k1: float = 1.5, b: float = 0.75):
        self.documents, self.k1, self.b = documents, k1, b
        self.bags = [self._bag(d) for d in documents]
        self.avg_len = sum(sum(bag.values()) for bag in self.bags) / max(1, len(self.bags))
        df = Counter(term for bag in self.bags for term in bag)
        n = len(documents)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}  # BM25+ style idf, >= 0

    @staticmethod
    def _bag(doc: Document) -> Counter:
        fields = {"title": doc.title, "keywords": " ".join(doc.keywords), "category": doc.category, "text": doc.text}
        bag = Counter()
        for field, text in fields.items():
            for term in tokens(text):
                bag[term] += FIELD_BOOST[field]
        return bag

    def score(self, i: int, query: list[str]) -> float:
        """Okapi BM25: sum idf(t) * tf (k1+1) / (tf + k1 (1 - b + b |d|/avgdl))."""
        bag, length = self.bags[i], sum(self.bags[i].values())
        norm = self.k1 * (1 - self.b + self.b * length / self.avg_len)
        return sum(self.idf.get(t, 0) * bag[t] * (self.k1 + 1) / (bag[t] + norm) for t in query if bag[t])

    def search(self, query: str, tags: list[str], top_k: int, today: date) -> list[Hit]:
        """Top-k usable documents (approved, not expired) for the audience; relaxes the audience filter
        only when it would leave fewer than top_k documents, so unseen content without audience tags works."""
        q = tokens(query)
        usable = [i for i, d in enumerate(self.documents) if d.usable_on(today)]
        fitting = [i for i in usable if audience_fits(self.documents[i], tags)]
        pool = fitting + [i for i in usable if i not in fitting] if len(fitting) < top_k else fitting
        ranked = sorted(pool, key=lambda i: (-(self.score(i, q) + (1.0 if i in fitting else 0.0)), self.documents[i].id))
        return [Hit(document_id=self.documents[i].id, title=self.documents[i].title,
                    score=round(self.score(i, q), 4)) for i in ranked[:top_k]]
