"""A guard model (Llama Guard 3/4 or any model with the same output format) on an OpenAI-compatible chat
endpoint as the harm scorer (CPO_SCREENER=guard-model), through the `openai` SDK.

    CPO_GUARD_BASE_URL   the server, e.g. http://gpu-box:8000/v1 (vLLM, TGI, Ollama, llama.cpp) (required)
    CPO_GUARD_MODEL      the served model name, e.g. meta-llama/Llama-Guard-3-8B (required)
    CPO_GUARD_API_KEY    the server's key, when it wants one

The message is sent as the user turn of a chat completion; the server applies the guard model's chat
template, which carries the hazard taxonomy (MLCommons S1-S14). The reply is parsed strictly:

    safe
    unsafe\\nS1,S10          (one or more codes S1-S14, comma separated, on the second line)

Anything else — another word, a code outside S1-S14, "unsafe" without codes, extra lines, an empty reply, a
completion cut off by the token limit — is not a verdict and fails closed (ScreenerUnavailable, exit 3).

Mapping onto our categories (a guard model gives no severity, so an unsafe verdict blocks: 6, or 7 for the
gravest hazards):

    S1  Violent Crimes            -> violence 6
    S3  Sex-Related Crimes        -> sexual 6
    S4  Child Sexual Exploitation -> sexual 7
    S9  Indiscriminate Weapons    -> violence 7
    S10 Hate                      -> hate 6
    S11 Suicide & Self-Harm       -> self_harm 6
    S12 Sexual Content            -> sexual 6

S2 Non-Violent Crimes, S5 Defamation, S6 Specialized Advice, S7 Privacy, S8 Intellectual Property,
S13 Elections and S14 Code Interpreter Abuse have no counterpart among the four harm categories: they
score 0 there and are written into the verdict's reason as a warning (`notes()`), so a reviewer sees them.
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

from tasks.errors import ScreenerUnavailable
from tasks.records import HARM_CATEGORIES
from tasks.safety.azure import split_text
from tasks.services import (Failure, GaveUp, RetryPolicy, rate_limiter, classify_openai, env_text,
                            openai_http_client, redact, require_env)

HAZARDS = {
    "S1": "Violent Crimes", "S2": "Non-Violent Crimes", "S3": "Sex-Related Crimes",
    "S4": "Child Sexual Exploitation", "S5": "Defamation", "S6": "Specialized Advice", "S7": "Privacy",
    "S8": "Intellectual Property", "S9": "Indiscriminate Weapons", "S10": "Hate", "S11": "Suicide & Self-Harm",
    "S12": "Sexual Content", "S13": "Elections", "S14": "Code Interpreter Abuse",
}
MAPPING = {"S1": ("violence", 6), "S3": ("sexual", 6), "S4": ("sexual", 7), "S9": ("violence", 7),
           "S10": ("hate", 6), "S11": ("self_harm", 6), "S12": ("sexual", 6)}
VERDICT = re.compile(r"\A\s*(?:(safe)|unsafe\s*\n\s*(S\d{1,2}(?:\s*,\s*S\d{1,2})*))\s*\Z")
MAX_CHARS = 8_000  # per request: guard models take ~8k tokens of conversation


class GuardVerdictError(ValueError):
    pass


def parse_verdict(content) -> list[str]:
    """The hazard codes of an unsafe verdict ([] for safe); GuardVerdictError for anything else."""
    if not isinstance(content, str):
        raise GuardVerdictError("no text in the reply")
    m = VERDICT.match(content)
    if not m:
        raise GuardVerdictError(f"not a guard verdict: {content[:80]!r}")
    if m.group(1):
        return []
    codes = list(dict.fromkeys(c.strip() for c in m.group(2).split(",")))
    unknown = [c for c in codes if c not in HAZARDS]
    if unknown:
        raise GuardVerdictError(f"unknown hazard code(s) {unknown}")
    return codes


def scores_of(codes: list[str]) -> dict[str, int]:
    scores = dict.fromkeys(HARM_CATEGORIES, 0)
    for code in codes:
        if code in MAPPING:
            category, sev = MAPPING[code]
            scores[category] = max(scores[category], sev)
    return scores


class GuardModelScorer:
    name = "guard-model"

    def __init__(self, base_url: str, model: str, api_key: str = "", *, timeout: float = 20.0, attempts: int = 4,
                 backoff: float = 0.5, max_retry_after: float = 60.0, rpm: int = 600, max_chars: int = MAX_CHARS):
        import openai

        self.base_url, self.model, self.max_chars = base_url.rstrip("/"), model, max_chars
        self._key = api_key
        # a local server may want no key, but the SDK wants one: "none" is sent then
        # openai_http_client: `timeout` bounds each attempt end to end, not each socket read
        self._client = openai.OpenAI(api_key=api_key or "none", base_url=self.base_url, timeout=timeout,
                                     max_retries=0, http_client=openai_http_client(timeout))
        self.retry = RetryPolicy(attempts=attempts, backoff=backoff, max_retry_after=max_retry_after)
        self._limiter = rate_limiter("guard-model", self.base_url, rpm, 60.0)
        self._local = threading.local()

    def __repr__(self) -> str:  # never the key
        return f"GuardModelScorer(base_url={self.base_url!r}, model={self.model!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **options) -> "GuardModelScorer":
        require_env(env, ["CPO_GUARD_BASE_URL", "CPO_GUARD_MODEL"], "CPO_SCREENER=guard-model")
        return cls(env_text(env, "CPO_GUARD_BASE_URL"), env_text(env, "CPO_GUARD_MODEL"),
                   env_text(env, "CPO_GUARD_API_KEY"), **options)

    def notes(self) -> list[str]:
        """Hazards of this thread's last score() call that our four categories do not cover."""
        return [f"guard-model hazard {c} ({HAZARDS[c]})" for c in getattr(self._local, "codes", []) if c not in MAPPING]

    def score(self, text: str) -> dict[str, int]:
        scores, codes = dict.fromkeys(HARM_CATEGORIES, 0), []
        for chunk in split_text(text, self.max_chars):
            found = self._verdict(chunk)
            codes += [c for c in found if c not in codes]
            scores = {c: max(scores[c], v) for c, v in scores_of(found).items()}
        self._local.codes = codes
        return scores

    def _verdict(self, chunk: str) -> list[str]:
        def request():
            resp = self._client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": chunk}], temperature=0, max_tokens=32)
            choice = resp.choices[0]
            if choice.finish_reason not in ("stop", None):
                raise GuardVerdictError(f"the completion ended with finish_reason={choice.finish_reason!r}")
            return parse_verdict(choice.message.content)

        try:
            return self.retry.run(request, classify, limiter=self._limiter)
        except GaveUp as e:
            detail = e.describe()
            if e.failure.status in (401, 403):
                detail += " — the key was rejected: check CPO_GUARD_API_KEY and CPO_GUARD_BASE_URL"
            if e.failure.status == 404:
                detail += f" — is {self.model!r} served there? check CPO_GUARD_MODEL"
            raise ScreenerUnavailable(redact(f"guard model {self.model!r} at {self.base_url}: {detail}; failing closed",
                                             self._key)) from None

    def close(self) -> None:
        self._client.close()


def classify(err: Exception) -> Failure:
    if isinstance(err, GuardVerdictError):  # a reply, but not a verdict: asking again is not our call to make
        return Failure(f"malformed reply: {err}", False)
    return classify_openai(err)
