"""OpenAI's moderation endpoint as the harm scorer (CPO_SCREENER=openai-moderation), through the `openai` SDK.

    OPENAI_API_KEY          the key (required)
    OPENAI_BASE_URL         any server speaking the same protocol (default https://api.openai.com/v1)
    CPO_MODERATION_MODEL    default omni-moderation-latest

Contract (the HarmScorer protocol): `score(text)` returns the four categories on the 0-7 scale or raises
ScreenerUnavailable. Retries, backoff, Retry-After and the rate limit are the shared layer's
(tasks/services.py); a reply without a 0-1 score for every category we read fails closed at once.

Mapping onto the 0-7 scale (documented in the README). The endpoint gives, per category, a probability-like
score in [0, 1] and a boolean `flagged` decided by OpenAI. Our category takes the highest score of the
service categories mapped onto it:

    hate       <- hate, hate/threatening
    self_harm  <- self-harm, self-harm/intent, self-harm/instructions
    sexual     <- sexual, sexual/minors
    violence   <- violence, violence/graphic, harassment/threatening, illicit/violent

and the score becomes a severity: < 0.05 -> 0, < 0.20 -> 2 (Low), < 0.50 -> 4 (Medium, warns), >= 0.50 -> 6
(High, blocks under the default policy), >= 0.90 -> 7. A category OpenAI itself flags is at least 6, and a
flagged severe sub-category (hate/threatening, self-harm/intent, self-harm/instructions, sexual/minors,
violence/graphic) is 7. `harassment` alone (not aimed at a protected group, no threat) and `illicit` have
no counterpart among our four and are not scored; they are kept in `last_other_flags` for logging.
A result that is `flagged` while none of its categories is contradicts itself and fails closed.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from tasks.errors import ScreenerUnavailable
from tasks.records import HARM_CATEGORIES
from tasks.safety.azure import split_text
from tasks.services import (GaveUp, RetryPolicy, rate_limiter, classify_openai, env_text, openai_http_client, redact,
                            require_env)

OPENAI_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "omni-moderation-latest"
MAX_CHARS = 8_000  # per input: well inside the model's 32k-token context; longer texts are split
MAX_INPUTS = 32    # inputs per request
SOURCES = {
    "hate": ("hate", "hate/threatening"),
    "self_harm": ("self-harm", "self-harm/intent", "self-harm/instructions"),
    "sexual": ("sexual", "sexual/minors"),
    "violence": ("violence", "violence/graphic", "harassment/threatening", "illicit/violent"),
}
SEVERE = {"hate/threatening", "self-harm/intent", "self-harm/instructions", "sexual/minors", "violence/graphic"}
# read when present, never required: older moderation models do not return them
OPTIONAL = {"illicit/violent", "illicit", "harassment"}
STEPS = ((0.90, 7), (0.50, 6), (0.20, 4), (0.05, 2))


def severity(score: float, flagged: bool, severe_flagged: bool) -> int:
    level = next((sev for at, sev in STEPS if score >= at), 0)
    if severe_flagged:
        return 7
    return max(level, 6) if flagged else level


def parse_moderation(payload, n_inputs: int) -> tuple[dict[str, int], list[str]]:
    """Our four severities (worst over the inputs) and the flagged categories we do not score.
    ScreenerUnavailable unless every result carries a 0-1 score and a boolean for every category we read."""
    def bad(why: str) -> ScreenerUnavailable:
        return ScreenerUnavailable(f"OpenAI moderation: malformed reply ({why}); failing closed")

    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list) or len(results) != n_inputs:
        raise bad(f"expected {n_inputs} result(s) in 'results'")
    out, other = dict.fromkeys(HARM_CATEGORIES, 0), set()
    for result in results:
        scores = result.get("category_scores") if isinstance(result, dict) else None
        flags = result.get("categories") if isinstance(result, dict) else None
        if not isinstance(scores, dict) or not isinstance(flags, dict):
            raise bad("a result without category_scores and categories")
        if result.get("flagged") is True and True not in flags.values():
            raise bad("flagged, but no category is")  # it contradicts itself: neither half is a verdict
        for ours, theirs in SOURCES.items():
            top, flagged, severe = 0.0, False, False
            for name in theirs:
                if name not in scores and name in OPTIONAL:
                    continue
                s, f = scores.get(name), flags.get(name)
                if type(s) not in (int, float) or not 0 <= s <= 1 or type(f) is not bool:
                    raise bad(f"no 0-1 score and flag for {name!r}")
                top, flagged, severe = max(top, float(s)), flagged or f, severe or (f and name in SEVERE)
            out[ours] = max(out[ours], severity(top, flagged, severe))
        other.update(name for name in ("harassment", "illicit") if flags.get(name) is True)
    return out, sorted(other)


class OpenAIModerationScorer:
    name = "openai-moderation"

    def __init__(self, api_key: str, *, base_url: str = OPENAI_URL, model: str = DEFAULT_MODEL,
                 timeout: float = 10.0, attempts: int = 4, backoff: float = 0.5, max_retry_after: float = 60.0,
                 rpm: int = 500, max_chars: int = MAX_CHARS):
        import openai

        self.base_url, self.model, self.max_chars = base_url.rstrip("/"), model, max_chars
        self._key = api_key
        # max_retries=0: the SDK's own retries are off; the shared policy is the only retry, so attempts are exact
        # openai_http_client: `timeout` bounds each attempt end to end, not each socket read
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=0,
                                     http_client=openai_http_client(timeout))
        self.retry = RetryPolicy(attempts=attempts, backoff=backoff, max_retry_after=max_retry_after)
        self._limiter = rate_limiter("openai-moderation", self.base_url, rpm, 60.0)
        self.last_other_flags: list[str] = []

    def __repr__(self) -> str:  # never the key
        return f"OpenAIModerationScorer(base_url={self.base_url!r}, model={self.model!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **options) -> "OpenAIModerationScorer":
        require_env(env, ["OPENAI_API_KEY"], "CPO_SCREENER=openai-moderation")
        return cls(env_text(env, "OPENAI_API_KEY"), base_url=env_text(env, "OPENAI_BASE_URL", OPENAI_URL),
                   model=env_text(env, "CPO_MODERATION_MODEL", DEFAULT_MODEL), **options)

    def score(self, text: str) -> dict[str, int]:
        scores = dict.fromkeys(HARM_CATEGORIES, 0)
        chunks = split_text(text, self.max_chars)
        other: set[str] = set()
        for i in range(0, len(chunks), MAX_INPUTS):
            batch = chunks[i:i + MAX_INPUTS]
            found, flags = parse_moderation(self._call(batch), len(batch))
            scores = {c: max(scores[c], found[c]) for c in HARM_CATEGORIES}  # as bad as the worst chunk
            other.update(flags)
        self.last_other_flags = sorted(other)
        return scores

    def _call(self, batch: list[str]) -> dict:
        def request():
            return self._client.moderations.create(model=self.model, input=batch).to_dict()

        try:
            return self.retry.run(request, classify_openai, limiter=self._limiter)
        except GaveUp as e:
            detail = e.describe()
            if e.failure.status in (401, 403):
                detail += " — the key was rejected: check OPENAI_API_KEY and OPENAI_BASE_URL"
            raise ScreenerUnavailable(redact(f"OpenAI moderation at {self.base_url}: {detail}; failing closed",
                                             self._key)) from None

    def close(self) -> None:
        self._client.close()

