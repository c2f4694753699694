"""The embedded generator: deterministic copy assembled from sentences of the retrieved documents.

It never invents a fact: every sentence that states one is quoted from a document and recorded as a claim
citing that document. Strategy words (subject templates, openers, closers) come from config/strategies.yaml
and carry no facts, numbers or offers.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from config import CONFIG_DIR, Brand
from tasks.generation import MERGE_FIELD, footer, variant_id
from tasks.records import Claim, Document, SegmentProfile, Variant
from tasks.safety.rules import NUMBER  # the screener's own idea of a number: copy and check agree

# Sentence ends before whitespace + a capital or digit, so "Summit Supply Co. and" stays whole.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")
OFFER = re.compile(r"(?:save )?\d+\s?%(?: off)?|\$\d[\d,]*(?:\.\d\d)?(?: off)?|free shipping(?: on orders over \$\d+)?", re.I)
MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
# A deadline is a date after a word that says something ends; "opens December 1" is not a deadline.
DEADLINE = re.compile(rf"\b(?:ends?|until|through|expires?|before|by) ((?:{MONTHS}) \d{{1,2}}(?:, \d{{4}})?)", re.I)
SEGMENT_GREETING = {"lapsed": "It has been a while, and we would love to see you back.",
                    "new": "Welcome, and thank you for your first orders with us."}


def sentences(text: str) -> list[str]:
    body = re.sub(r"^\s*#.*$", "", text, flags=re.M)  # markdown headings are titles, not copy
    return [s.strip() for s in SENTENCE_END.split(" ".join(body.split())) if len(s.strip()) > 12]


def load_strategies(path: Path = CONFIG_DIR / "strategies.yaml") -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


class LocalGenerator:
    name = "local"

    def __init__(self, brand: Brand, subject_max_chars: int = 60, strategies: dict | None = None):
        self.brand, self.subject_max_chars = brand, subject_max_chars
        self.strategies = strategies or load_strategies()

    def fit_score(self, doc: Document, strategy: dict) -> float:
        """How well a document serves a strategy: category match plus cue words in its text."""
        cues = sum(len(re.findall(c, doc.text, re.I)) for c in strategy.get("cues", []))
        category = 2.0 if doc.category in strategy.get("categories", []) else 0.0
        needs = strategy.get("requires")
        if needs == "deadline" and not DEADLINE.search(doc.text):
            return -1.0
        return category + min(cues, 4) * 0.5

    def pick_documents(self, documents: list[Document], strategy: dict, avoid: set[str]) -> list[Document]:
        ranked = sorted((d for d in documents if d.id not in avoid),
                        key=lambda d: -self.fit_score(d, strategy))  # stable: ties keep retrieval order
        usable = [d for d in ranked if self.fit_score(d, strategy) >= 0]
        return usable[:2]

    def claims_from(self, doc: Document, strategy: dict, limit: int) -> list[Claim]:
        """The document's sentences that best carry the strategy, in their original order."""
        found = sentences(doc.text)
        score = lambda s: sum(bool(re.search(c, s, re.I)) for c in strategy.get("cues", []))  # noqa: E731
        best = sorted(range(len(found)), key=lambda i: (-score(found[i]), i))[:limit]
        return [Claim(text=found[i], document_id=doc.id) for i in sorted(best)]

    def subject(self, strategy: dict, doc: Document) -> str:
        slots = {"title": doc.title if self._grounded(doc.title, doc) else None, "company": self.brand.company_name,
                 "offer": _match(OFFER, doc.text), "deadline": _match(DEADLINE, doc.text)}
        for template in strategy.get("subjects", []):
            needed = MERGE_FIELD.findall(template)
            if not all(slots.get(n) for n in needed) or self._says_twice(template, slots):
                continue
            text = template.format(**slots)
            text = text[0].upper() + text[1:]
            if len(text) <= self.subject_max_chars:
                return text
        return f"News from {self.brand.company_name}"[: self.subject_max_chars]

    @staticmethod
    def _says_twice(template: str, slots: dict) -> bool:
        """'{offer} on {title}' is redundant when the title already states the offer's number."""
        number = NUMBER.search(slots["offer"] or "")
        return "{offer}" in template and "{title}" in template and bool(number) and \
            number.group(0).lstrip("$") in slots["title"]

    @staticmethod
    def _grounded(text: str, doc: Document) -> bool:
        return all(n in doc.text for n in NUMBER.findall(text))

    def generate(self, profile: SegmentProfile, documents: list[Document], strategy: str, slot: int,
                 attempt: int, avoid: set[str]) -> Variant:
        spec = self.strategies[strategy]
        docs = self.pick_documents(documents, spec, avoid)
        if not docs:
            raise LookupError(f"no approved document fits strategy '{strategy}' for segment '{profile.name}'")
        claims = self.claims_from(docs[0], spec, 2) + (self.claims_from(docs[1], spec, 1) if len(docs) > 1 else [])
        greeting = next((SEGMENT_GREETING[t] for t in profile.tags if t in SEGMENT_GREETING), "")
        opener = spec["openers"][0].replace("{company}", self.brand.company_name)
        if "thank" in greeting.lower() and "thank" in opener.lower():
            greeting = ""  # one thank-you reads better than two
        lines = ["Hi {first_name},", " ".join(filter(None, [greeting, opener])),
                 " ".join(c.text for c in claims), spec["closers"][0]]
        body = "\n\n".join(lines) + footer(self.brand)
        preheader = claims[0].text if len(claims[0].text) <= 100 else claims[0].text[:97].rsplit(" ", 1)[0] + "..."
        return Variant(variant_id=variant_id(profile.name, slot, strategy), segment=profile.name, slot=slot,
                       strategy=strategy, attempt=attempt, subject=self.subject(spec, docs[0]),
                       preheader=preheader, body=body, citations=list(dict.fromkeys(c.document_id for c in claims)),
                       claims=claims, generator=self.name)



def _match(pattern: re.Pattern, text: str) -> str | None:
    """The pattern's first match (its first group, when it has one)."""
    m = pattern.search(text)
    return (m.group(1) if pattern.groups else m.group(0)) if m else None
