"""Typed records passed between stages: document, segment profile, variant, verdict."""
from __future__ import annotations

import hashlib
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

HARM_CATEGORIES = ("hate", "self_harm", "sexual", "violence")


class Document(BaseModel):
    """One piece of approved content; `text` is what copy may quote and cite."""

    id: str
    title: str
    text: str
    category: str = ""
    audience: list[str] = ["all"]
    keywords: list[str] = []
    approval_status: str = "approved"
    approved_at: date | None = None
    expires_at: date | None = None
    source: str = ""

    def usable_on(self, day: date) -> bool:
        """Approved, already approved on `day`, and not expired."""
        if self.approval_status.lower() != "approved":
            return False
        if self.approved_at and self.approved_at > day:
            return False
        return not (self.expires_at and self.expires_at < day)


class SegmentProfile(BaseModel):
    """What the generator may know about a segment: aggregates only, never a customer's identity."""

    name: str
    size: int
    share: float
    tags: list[str] = Field(description="audience tags used to filter content, e.g. loyal, lapsed")
    description: str
    means: dict[str, float] = {}
    top_category: str | None = None


class Claim(BaseModel):
    text: str
    document_id: str


class Variant(BaseModel):
    variant_id: str
    segment: str
    slot: int = Field(description="1-based treatment slot: the variant is sent to arm treatment_<slot>")
    strategy: str
    attempt: int = 1
    subject: str
    preheader: str = ""
    body: str
    citations: list[str]
    claims: list[Claim] = []
    generator: str = "local"
    status: Literal["pending", "passed", "blocked"] = "pending"

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.preheader}\n{self.body}"

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


class Verdict(BaseModel):
    decision: Literal["pass", "block"]
    screener: str
    hate: int = 0
    self_harm: int = 0
    sexual: int = 0
    violence: int = 0
    rules_triggered: list[str] = []
    reason: str = ""

    @property
    def max_severity(self) -> int:
        return max(self.hate, self.self_harm, self.sexual, self.violence)
