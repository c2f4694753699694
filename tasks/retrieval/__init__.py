"""Retrieval: approved content for each segment. One interface, backends chosen by settings."""
from __future__ import annotations

from datetime import date
from typing import Protocol

from pydantic import BaseModel

from tasks.records import Document, SegmentProfile


class Hit(BaseModel):
    document_id: str
    title: str
    score: float


class Retriever(Protocol):
    name: str

    def search(self, query: str, tags: list[str], top_k: int, today: date) -> list[Hit]: ...


def segment_query(profile: SegmentProfile) -> str:
    """What a segment is about, in words the content uses."""
    words = [profile.description, " ".join(profile.tags).replace("_", " ")]
    if profile.top_category:
        words.append(profile.top_category)
    return " ".join(words)


def retrieve_for_segments(retriever: Retriever, profiles: list[SegmentProfile], top_k: int,
                          today: date) -> dict[str, list[Hit]]:
    return {p.name: retriever.search(segment_query(p), p.tags, top_k, today) for p in profiles}


def audience_fits(doc: Document, tags: list[str]) -> bool:
    return "all" in doc.audience or bool(set(doc.audience) & set(tags))


def make_retriever(kind: str, documents: list[Document]) -> Retriever:
    if kind == "local":
        from tasks.retrieval.local import LocalRetriever
        return LocalRetriever(documents)
    if kind == "azure-search":
        from tasks.retrieval.azure_search import AzureSearchRetriever
        return AzureSearchRetriever.from_env(documents=documents)
    raise ValueError(f"unknown retriever {kind!r}")
