"""Azure AI Content Safety as the harm scorer (CPO_SCREENER=azure), through the official SDK.

Contract (the HarmScorer protocol): `score(text)` returns the four categories on the eight-level scale (0-7),
or raises ScreenerUnavailable — never a guess. We fail closed: throttling, 5xx, timeouts and dropped
connections are retried a bounded number of times; a malformed reply, a rejected key or a service that stays
down ends with ScreenerUnavailable (exit 3, nothing assigned). A wrong key is ScreenerUnavailable rather than
InputError because it is only discovered mid-run, by the screening call, and the protocol's one failure is
"cannot give a verdict"; its message names AZURE_CONTENT_SAFETY_KEY. No message ever contains the key.

Blocklist hits: `sync_blocklist` uploads the brand's competitors to a service-side text blocklist that every
analyze call names. Matches do not change the four scores (they are not harm); the matched terms of the last
`score()` call on this thread are in `last_blocklist_hits`, for logging. What blocks a competitor mention is
the local `competitor_mention` rule, which always runs — and the service may take minutes to apply a new
blocklist, so it must not be the only guard.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping

from tasks.errors import InputError, ScreenerUnavailable
from tasks.services import Failure, GaveUp, RetryPolicy, classify_azure, rate_limiter
from tasks.records import HARM_CATEGORIES

ENDPOINT_VAR, KEY_VAR = "AZURE_CONTENT_SAFETY_ENDPOINT", "AZURE_CONTENT_SAFETY_KEY"
COMPETITOR_BLOCKLIST = "cpo-competitors"
MAX_CHARS = 10_000  # the service's limit per text:analyze request
MAX_ITEMS_PER_CALL = 100  # the service's limit per addOrUpdateBlocklistItems request
MAX_ITEM_CHARS = 128  # the service's limit per blocklist item
CATEGORY_KEYS = {"Hate": "hate", "SelfHarm": "self_harm", "Sexual": "sexual", "Violence": "violence"}


class AzureHarmScorer:
    name = "azure"

    def __init__(self, endpoint: str, key: str, *, blocklists: Iterable[str] = (), attempts: int = 4,
                 timeout: float = 10.0, backoff: float = 0.5, max_backoff: float = 60.0, rate_limit: int = 1000,
                 rate_window: float = 10.0, max_chars: int = MAX_CHARS):
        from azure.ai.contentsafety import BlocklistClient, ContentSafetyClient
        from azure.core.credentials import AzureKeyCredential

        self.endpoint = endpoint.strip().rstrip("/")  # the SDK appends "/contentsafety" verbatim
        self._credential = AzureKeyCredential(key)
        # retry_total=0 switches the SDK's RetryPolicy off: it retries a POST on 429 only when Retry-After is
        # present and would multiply our attempts. Our loop in _call is the only retry, so attempts are bounded.
        sdk = {"retry_total": 0, "connection_timeout": timeout, "read_timeout": timeout}
        self._client = ContentSafetyClient(self.endpoint, self._credential, **sdk)
        self._blocklist_client = BlocklistClient(self.endpoint, self._credential, **sdk)
        self.blocklists = list(blocklists)
        self.max_chars = max_chars
        # max_backoff bounds both our own backoff and the Retry-After we accept (the shared layer's policy)
        self.retry = RetryPolicy(attempts=max(1, attempts), backoff=backoff, max_backoff=min(8.0, max_backoff),
                                 max_retry_after=max_backoff)
        self._limiter = rate_limiter("azure-content-safety", self.endpoint, rate_limit, rate_window)
        self._local = threading.local()  # per-thread last_blocklist_hits: screening may run on several threads

    def __repr__(self) -> str:  # never the key
        return f"AzureHarmScorer(endpoint={self.endpoint!r}, blocklists={self.blocklists!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, competitors: Iterable[str] = (),
                 **options) -> "AzureHarmScorer":
        missing = [var for var in (ENDPOINT_VAR, KEY_VAR) if not (env.get(var) or "").strip()]
        if missing:
            raise InputError(f"environment: CPO_SCREENER=azure needs {' and '.join(missing)} "
                             f"(the Azure AI Content Safety resource's endpoint and key)")
        if not env[ENDPOINT_VAR].strip().startswith(("https://", "http://")):
            raise InputError(f"environment: {ENDPOINT_VAR} must be a URL such as "
                             f"https://<resource>.cognitiveservices.azure.com")
        scorer = cls(env[ENDPOINT_VAR], env[KEY_VAR].strip(), **options)
        if competitors:
            scorer.sync_blocklist(COMPETITOR_BLOCKLIST, competitors)
        return scorer

    @property
    def last_blocklist_hits(self) -> list[str]:
        """Blocklist terms matched by this thread's last score() call (see the module docstring)."""
        return getattr(self._local, "hits", [])

    def score(self, text: str) -> dict[str, int]:
        from azure.ai.contentsafety.models import AnalyzeTextOptions

        scores, hits = dict.fromkeys(HARM_CATEGORIES, 0), set()
        for chunk in split_text(text, self.max_chars):
            options = AnalyzeTextOptions(text=chunk, categories=list(CATEGORY_KEYS),
                                         output_type="EightSeverityLevels",
                                         blocklist_names=self.blocklists or None, halt_on_blocklist_hit=False)
            found, matched = parse_analysis(self._call("text:analyze", self._client.analyze_text, options))
            scores = {c: max(scores[c], found[c]) for c in HARM_CATEGORIES}  # a text is as bad as its worst chunk
            hits.update(matched)
        self._local.hits = sorted(hits)
        return scores

    def sync_blocklist(self, name: str, terms: Iterable[str]) -> int:
        """Create or update the text blocklist `name` and add `terms` to it; returns how many terms were sent."""
        from azure.ai.contentsafety.models import AddOrUpdateTextBlocklistItemsOptions, TextBlocklist, TextBlocklistItem

        terms = sorted({t.strip() for t in terms if t and t.strip()})
        too_long = [t for t in terms if len(t) > MAX_ITEM_CHARS]
        if too_long:
            raise InputError(f"brand.yaml: competitor names longer than {MAX_ITEM_CHARS} characters cannot be a "
                             f"Content Safety blocklist item: {too_long[:3]}")
        self._call("create blocklist", self._blocklist_client.create_or_update_text_blocklist, name,
                   TextBlocklist(blocklist_name=name, description="cpo: competitor names from brand.yaml"))
        for i in range(0, len(terms), MAX_ITEMS_PER_CALL):
            items = [TextBlocklistItem(text=t) for t in terms[i:i + MAX_ITEMS_PER_CALL]]
            self._call("add blocklist items", self._blocklist_client.add_or_update_blocklist_items, name,
                       AddOrUpdateTextBlocklistItemsOptions(blocklist_items=items))
        if name not in self.blocklists:
            self.blocklists.append(name)
        return len(terms)

    def close(self) -> None:
        self._client.close()
        self._blocklist_client.close()

    # -- one call, bounded retries (tasks/services.py) -----------------------------------------------------
    def _call(self, what: str, operation: Callable, *args):
        try:
            return self.retry.run(lambda: operation(*args), classify, limiter=self._limiter)
        except GaveUp as gave_up:
            raise self._unavailable(f"{what} {'failed: ' if gave_up.why == 'refused' else ''}{gave_up.describe()}") from None

    def _unavailable(self, reason: str) -> ScreenerUnavailable:
        key = self._credential.key
        message = f"Azure Content Safety at {self.endpoint}: {reason}; failing closed"
        return ScreenerUnavailable(message.replace(key, "***") if key else message)


def classify(err: Exception) -> Failure:
    """The shared azure-core classification; a rejected key names the variables to check."""
    failure = classify_azure(err)
    if failure.status in (401, 403):
        return Failure(f"HTTP {failure.status}: the key was rejected — check {KEY_VAR} and {ENDPOINT_VAR}", False,
                       status=failure.status)
    return failure


def parse_analysis(result) -> tuple[dict[str, int], list[str]]:
    """Our four scores and the matched blocklist terms; ScreenerUnavailable unless all four are valid 0-7."""
    try:
        listed = [a["category"] for a in result["categoriesAnalysis"] if a["category"] in CATEGORY_KEYS]
        found = {CATEGORY_KEYS[a["category"]]: a["severity"] for a in result["categoriesAnalysis"]
                 if a["category"] in CATEGORY_KEYS}
        hits = [m["blocklistItemText"] for m in result.get("blocklistsMatch") or []]
    except (KeyError, TypeError, AttributeError) as err:
        raise ScreenerUnavailable(f"Azure Content Safety: malformed text:analyze reply ({type(err).__name__}: "
                                  f"no categoriesAnalysis with category and severity); failing closed") from None
    repeated = sorted({c for c in listed if listed.count(c) > 1})
    if repeated:  # the protocol lists each category once: which of two severities would be the verdict?
        raise ScreenerUnavailable(f"Azure Content Safety: malformed text:analyze reply (category listed more "
                                  f"than once: {', '.join(repeated)}); failing closed")
    bad = {c: found.get(c) for c in HARM_CATEGORIES if type(found.get(c)) is not int or not 0 <= found[c] <= 7}
    if bad:
        raise ScreenerUnavailable(f"Azure Content Safety: text:analyze reply lacks a 0-7 severity for {bad}; "
                                  f"failing closed")
    return found, hits


def split_text(text: str, limit: int = MAX_CHARS) -> list[str]:
    """Chunks of at most `limit` characters, cut at whitespace (a longer run without whitespace is cut hard).
    Empty or blank text gives no chunks: there is nothing to score and the service rejects empty text."""
    if not text.strip():
        return []
    if len(text) <= limit:
        return [text]
    chunks, current = [], ""
    for piece in re.findall(r"\s*\S+", text):  # each word with the whitespace before it
        if len(current) + len(piece) <= limit:
            current += piece
            continue
        if current.strip():
            chunks.append(current)
        piece = piece.lstrip()
        while len(piece) > limit:
            chunks.append(piece[:limit])
            piece = piece[limit:]
        current = piece
    if current.strip():
        chunks.append(current)
    return chunks
