"""Azure AI Search backend (CPO_RETRIEVER=azure-search), through the official azure-search-documents SDK.

The service applies the same metadata rules as the embedded index (approved, approved by today, not expired,
audience with the same relaxation), and documents are cut into the same passages (local.chunk_text), one
search document per passage carrying its `document_id`. Hits are then checked against the run's own content
folder: the generator quotes the local copy, so a hit the local copy does not allow is dropped.

Retries are ours, not the SDK's: azure-core does not retry a POST on a read timeout and retries 429 only
when Retry-After is present, and search is a POST. We retry 408/429/5xx and timeouts a bounded number of
times, honouring Retry-After; when the service stays down we raise SearchUnavailable (exit 1) — retrieval
failing is an outage, not a safety decision. The API key is held only by the SDK credential, never logged.
"""
from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

from tasks.services import Failure, GaveUp, RetryPolicy, classify_azure
from tasks.errors import CpoError, InputError
from tasks.records import Document
from tasks.retrieval import Hit
from tasks.retrieval.local import CHUNK_WORDS, FIELD_WEIGHT, STOPWORDS, chunk_text, tokens

ENV_VARS = ("AZURE_SEARCH_ENDPOINT", "AZURE_SEARCH_API_KEY", "AZURE_SEARCH_INDEX")
BATCH_SIZE = 1000  # the service's limit on actions per indexing request
OVERFETCH = 3  # passages per wanted document: several passages of one document collapse into one hit
SCORING_PROFILE = "cpo-fields"  # the embedded index's field weights, so both backends rank alike
T = TypeVar("T")


class SearchUnavailable(CpoError):
    """Azure AI Search could not answer (down, throttled beyond our budget, or not speaking its protocol)."""


class SearchSettings:
    """Endpoint, key and index from the environment. repr never shows the key."""

    def __init__(self, endpoint: str, api_key: str, index: str):
        self.endpoint, self.api_key, self.index = endpoint.rstrip("/"), api_key, index

    def __repr__(self) -> str:
        return f"SearchSettings(endpoint={self.endpoint!r}, index={self.index!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SearchSettings:
        env = os.environ if env is None else env
        missing = [name for name in ENV_VARS if not (env.get(name) or "").strip()]
        if missing:
            raise InputError(f"environment: {', '.join(missing)} not set; CPO_RETRIEVER=azure-search needs "
                             f"{', '.join(ENV_VARS)}")
        endpoint = env["AZURE_SEARCH_ENDPOINT"].strip()
        host = endpoint.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        if not endpoint.startswith(("https://", "http://")):
            raise InputError(f"environment: AZURE_SEARCH_ENDPOINT must be an https:// URL, got {endpoint!r}")
        if endpoint.startswith("http://") and host not in ("127.0.0.1", "localhost", "::1"):
            # the key travels in a header: plain http is only acceptable on this machine
            raise InputError(f"environment: AZURE_SEARCH_ENDPOINT must use https:// (got {endpoint!r})")
        return cls(endpoint, env["AZURE_SEARCH_API_KEY"].strip(), env["AZURE_SEARCH_INDEX"].strip())


def _client_options(timeout: float) -> dict:
    # retry_total=0: our loop (_Caller) is the only retry layer, so attempts stay bounded and countable
    return {"retry_total": 0, "connection_timeout": timeout, "read_timeout": timeout}


class _Caller:
    """Runs one SDK call through the shared retry layer (tasks/services.py) and turns failures into errors a
    user can act on."""

    def __init__(self, settings: SearchSettings, attempts: int, timeout: float, max_retry_after: float,
                 sleep: Callable[[float], None]):
        self.settings, self.timeout, self.sleep = settings, timeout, sleep
        self.policy = RetryPolicy(attempts=attempts, backoff=0.5, max_backoff=8.0, max_retry_after=max_retry_after)

    def __call__(self, fn: Callable[[], T], what: str) -> T:
        where = f"Azure AI Search at {self.settings.endpoint}"
        try:
            return self.policy.run(fn, self._classify, sleep=self.sleep)
        except GaveUp as e:
            f = e.failure
            if f.reason.startswith("malformed"):
                raise malformed(self.settings, what, f.reason[len("malformed reply "):].strip("()")) from None
            if f.status in (401, 403):
                raise InputError(f"{where} refused the API key (HTTP {f.status}); check AZURE_SEARCH_API_KEY") from None
            if f.status == 404:
                raise InputError(f"{where} has no index '{self.settings.index}' (HTTP 404); create it with "
                                 "`cpo content index --content PATH` or check AZURE_SEARCH_INDEX") from None
            if e.why == "too_long":
                raise SearchUnavailable(f"{where} is throttling: it asked to wait {e.waited_for:g} s, more than the "
                                        f"{self.policy.max_retry_after:g} s cpo waits") from None
            if e.why == "refused":
                raise SearchUnavailable(f"{where} rejected the {what} ({f.reason})") from None
            raise SearchUnavailable(f"{where} is unavailable: the {what} failed {e.attempts} times (last: {f.reason}); "
                                    "try again later, or run with CPO_RETRIEVER=local") from None

    def _classify(self, e: Exception) -> Failure:
        failure = classify_azure(e)
        if failure.reason.startswith("no reply"):
            return Failure(f"no reply within {self.timeout:g} s", True)
        if failure.status is not None and not failure.retryable:
            detail = (getattr(getattr(e, "error", None), "message", None) or "")[:300]
            return Failure(f"HTTP {failure.status}: {detail}" if detail else f"HTTP {failure.status}", False,
                           status=failure.status)
        return failure


def malformed(settings: SearchSettings, what: str, detail: str) -> SearchUnavailable:
    return SearchUnavailable(f"Azure AI Search at {settings.endpoint} sent a reply to the {what} that is not "
                             f"valid search JSON ({detail}); is AZURE_SEARCH_ENDPOINT a search service?")


# --- filters: the OData form of Document.usable_on and audience_fits ---------------------------------

def _odata_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _day(d: date) -> str:
    return f"{d.isoformat()}T00:00:00Z"


def usable_filter(today: date) -> str:
    """Document.usable_on(today): approved, approved on or before today, not expired before today."""
    day = _day(today)
    return (f"approval_status eq 'approved' and (approved_at eq null or approved_at le {day}) "
            f"and (expires_at eq null or expires_at ge {day})")


def audience_filter(tags: list[str]) -> str:
    """audience_fits: the document is for 'all' or for one of the segment's tags."""
    values = ",".join(dict.fromkeys(t.replace(",", " ").strip() for t in ["all", *tags] if t.strip()))
    return f"audience/any(a: search.in(a, {_odata_str(values)}, ','))"


# --- retriever -----------------------------------------------------------------------------------------

class AzureSearchRetriever:
    name = "azure-search"

    def __init__(self, settings: SearchSettings, documents: list[Document] | None = None, *, timeout: float = 10.0,
                 attempts: int = 4, max_retry_after: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        from azure.core.credentials import AzureKeyCredential
        from azure.search.documents import SearchClient

        self.settings = settings
        self.known = {d.id: d for d in documents} if documents is not None else None
        self.client = SearchClient(settings.endpoint, settings.index, AzureKeyCredential(settings.api_key),
                                   **_client_options(timeout))
        self.call = _Caller(settings, attempts, timeout, max_retry_after, sleep)

    def __repr__(self) -> str:
        return f"AzureSearchRetriever({self.settings!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, documents: list[Document] | None = None,
                 **options: Any) -> AzureSearchRetriever:
        return cls(SearchSettings.from_env(env), documents, **options)

    def search(self, query: str, tags: list[str], top_k: int, today: date) -> list[Hit]:
        """Same contract as LocalRetriever.search: the audience filter is relaxed only when it leaves fewer than
        top_k documents, and then the fitting documents come first and the others fill the rest."""
        base = usable_filter(today)
        hits = self._query(query, f"{base} and {audience_filter(tags)}", top_k, today)
        if len(hits) < top_k:
            seen = {h.document_id for h in hits}
            hits += [h for h in self._query(query, base, top_k, today) if h.document_id not in seen]
        return hits[:top_k]

    def _query(self, query: str, odata_filter: str, top_k: int, today: date) -> list[Hit]:
        # plain words only (the simple query syntax would read "-" or "|" as operators), and the same terms
        # the embedded index scores: with searchMode any, "the" alone would match every document
        text = " ".join(w for w in tokens(query) if w not in STOPWORDS) or "*"
        rows = self.call(lambda: list(self.client.search(
            search_text=text, filter=odata_filter, top=min(1000, top_k * OVERFETCH),
            select=["document_id", "title"])), "search")
        best: dict[str, Hit] = {}
        for row in rows:
            doc_id, score = row.get("document_id"), row.get("@search.score")
            if not isinstance(doc_id, str) or not isinstance(score, (int, float)):
                raise malformed(self.settings, "search", "a result without document_id or @search.score")
            if doc_id in best or not self._allowed(doc_id, today):
                continue  # rows come best first: the first passage of a document is its best
            title = self.known[doc_id].title if self.known else str(row.get("title") or doc_id)
            best[doc_id] = Hit(document_id=doc_id, title=title, score=round(score, 4))
        return list(best.values())[:top_k]

    def _allowed(self, doc_id: str, today: date) -> bool:
        """The run's content folder is the source of truth: an index older than it must not resurrect a
        document that was removed, withdrawn or has expired since it was indexed."""
        return self.known is None or (doc_id in self.known and self.known[doc_id].usable_on(today))


# --- index management ----------------------------------------------------------------------------------

def passage_key(document_id: str, number: int) -> str:
    """Keys allow only letters, digits, _ - =; base64url of the id keeps any id valid and distinct."""
    return base64.urlsafe_b64encode(document_id.encode("utf-8")).decode("ascii").rstrip("=") + f"-{number}"


def index_definition(name: str):
    from azure.search.documents.indexes.models import (
        ScoringProfile,
        SearchableField,
        SearchFieldDataType as DataType,
        SearchIndex,
        SimpleField,
        TextWeights,
    )

    fields = [
        SimpleField(name="id", type=DataType.String, key=True),
        SimpleField(name="document_id", type=DataType.String, filterable=True),
        SimpleField(name="chunk", type=DataType.Int32),
        SearchableField(name="title"),
        SearchableField(name="text"),
        SearchableField(name="keywords", collection=True),
        SearchableField(name="category", filterable=True),
        SimpleField(name="audience", type=DataType.Collection(DataType.String), filterable=True),
        SimpleField(name="approval_status", type=DataType.String, filterable=True),
        SimpleField(name="approved_at", type=DataType.DateTimeOffset, filterable=True),
        SimpleField(name="expires_at", type=DataType.DateTimeOffset, filterable=True),
    ]
    profile = ScoringProfile(name=SCORING_PROFILE, text_weights=TextWeights(weights=dict(FIELD_WEIGHT)))
    return SearchIndex(name=name, fields=fields, scoring_profiles=[profile], default_scoring_profile=SCORING_PROFILE)


def passage_rows(doc: Document) -> list[dict]:
    """One search document per passage; metadata repeated so each passage filters on its own."""
    meta = {"document_id": doc.id, "title": doc.title, "keywords": list(doc.keywords), "category": doc.category,
            "audience": list(doc.audience), "approval_status": doc.approval_status.lower(),
            "approved_at": _day(doc.approved_at) if doc.approved_at else None,
            "expires_at": _day(doc.expires_at) if doc.expires_at else None}
    return [{"id": passage_key(doc.id, n), "chunk": n, "text": part, **meta}
            for n, part in enumerate(chunk_text(doc.text, CHUNK_WORDS))]


def index_documents(documents: list[Document], env: Mapping[str, str] | None = None, *, timeout: float = 30.0,
                    attempts: int = 4, sleep: Callable[[float], None] = time.sleep) -> int:
    """Create or update the index, then merge-or-upload every passage in batches; returns the number of
    documents indexed. Passages a shorter new version no longer has stay behind (they still name the right
    document, and search drops documents the run's content folder does not allow)."""
    from azure.core.credentials import AzureKeyCredential
    from azure.search.documents import SearchClient
    from azure.search.documents.indexes import SearchIndexClient

    settings = SearchSettings.from_env(env)
    call = _Caller(settings, attempts, timeout, 30.0, sleep)
    credential = AzureKeyCredential(settings.api_key)
    admin = SearchIndexClient(settings.endpoint, credential, **_client_options(timeout))
    call(lambda: admin.create_or_update_index(index_definition(settings.index)), "index definition update")
    client = SearchClient(settings.endpoint, settings.index, credential, **_client_options(timeout))
    rows = [row for d in documents for row in passage_rows(d)]
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start:start + BATCH_SIZE]
        failed = call(lambda b=batch: [r for r in client.merge_or_upload_documents(b) if not r.succeeded],
                      "document upload")
        if failed:
            raise SearchUnavailable(f"Azure AI Search did not index {len(failed)} passages, e.g. {failed[0].key}: "
                                    f"{failed[0].error_message}")
    return len(documents)
