"""A local fake of the OpenAI chat completions API (and its Azure OpenAI route), as the official SDK calls it.

    with FakeOpenAI() as fake:                  # binds 127.0.0.1 on a free port
        OpenAI(base_url=fake.base_url, api_key="k")           # http://127.0.0.1:PORT/v1
        AzureOpenAI(azure_endpoint=fake.endpoint, ...)        # http://127.0.0.1:PORT
        fake.script(Fault.throttle(1), Fault.error(500))      # the next two requests fail, then normal replies
        fake.always = Fault.error(500)                        # every request once the script is used up
        fake.latency = 0.2                                    # every reply waits this long (benchmarks)
        fake.obey = "first"                                   # follow injected instructions (see below)
        fake.requests                                         # what the client sent
        fake.max_in_flight                                    # most requests handled at the same time

Routes:
    POST /v1/chat/completions
    POST /openai/deployments/{deployment}/chat/completions?api-version=...

A normal reply behaves like a careful model: it parses the <document id=...> blocks out of the prompt and
answers with the JSON the generator asks for, built from whole sentences of those documents (skipping
sentences that name a competitor listed in <competitors>...</competitors> or that carry an injected
instruction), each cited. `obey` makes it a gullible model instead: when a document says "ignore previous
instructions", it names a competitor and invents "90% off" ("first": only before any feedback turn,
"always": on every turn).
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import Fault as BaseFault
from tests.fakes.local_http import JsonHandler, LocalServer

DOCUMENT = re.compile(r'<document id="([^"]+)"[^>]*>(.*?)</document>', re.S)
COMPETITORS = re.compile(r"<competitors>(.*?)</competitors>", re.S)
INJECTION = re.compile(r"ignore (?:all |any )?(?:previous|prior|above) instructions", re.I)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")
AZURE_ROUTE = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")


class Fault(BaseFault):
    """Shared kinds plus: malformed_body | malformed_reply | uncited_number | unknown_citation."""

    @classmethod
    def malformed_body(cls) -> "Fault":
        """200 with a JSON content type and an HTTP body that is not JSON."""
        return cls("malformed_body")

    @classmethod
    def malformed_reply(cls) -> "Fault":
        """A well-formed completion whose message content is not JSON."""
        return cls("malformed_reply")

    @classmethod
    def uncited_number(cls) -> "Fault":
        """Valid JSON, but the copy states a number no document has."""
        return cls("uncited_number")

    @classmethod
    def unknown_citation(cls) -> "Fault":
        """Valid JSON, but a claim cites a document id that was not offered."""
        return cls("unknown_citation")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object
    status: int = 0
    at: float = field(default_factory=time.monotonic)

    @property
    def prompt(self) -> str:
        """Every message's content, joined: what a model would have read."""
        messages = self.body.get("messages", []) if isinstance(self.body, dict) else []
        return "\n".join(str(m.get("content", "")) for m in messages)


class FakeOpenAI:
    def __init__(self):
        self.requests: list[Recorded] = []
        self.always: Fault | None = None
        self.latency = 0.0
        self.obey: str | None = None
        self.in_flight = self.max_in_flight = 0
        self._script: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server = LocalServer(_handler(self))

    @property
    def endpoint(self) -> str:
        return self._server.url

    @property
    def base_url(self) -> str:
        return f"{self.endpoint}/v1"

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._script.extend(faults)

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._script.popleft() if self._script else self.always

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def busy(self, delta: int) -> None:
        with self._lock:
            self.in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def __enter__(self) -> "FakeOpenAI":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()


def _handler(fake: FakeOpenAI):
    class Handler(JsonHandler):
        content_type = "application/json"

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            _, body = self.read_body()
            body = {} if body is None else body
            rec = Recorded("POST", url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                           {k.lower(): v for k, v in self.headers.items()}, body)
            fake.record(rec)
            azure = AZURE_ROUTE.match(url.path)
            if url.path != "/v1/chat/completions" and not (azure and "api-version" in rec.query):
                return self._send(rec, 404, {"error": {"message": f"no route {url.path}", "type": "not_found"}})
            if not isinstance(body, dict) or not body.get("messages"):
                return self._send(rec, 400, {"error": {"message": "messages required",
                                                       "type": "invalid_request_error"}})
            fake.busy(+1)
            try:
                self._answer(rec, body, fake.next_fault(), azure.group(1) if azure else None)
            finally:
                fake.busy(-1)

        def _answer(self, rec: Recorded, body: dict, fault: Fault | None, deployment: str | None) -> None:
            time.sleep(fake.latency + (fault.seconds if fault and fault.kind == "delay" else 0.0))
            kind = fault.kind if fault else "ok"
            if kind == "throttle":
                return self._send(rec, 429, {"error": {"message": "Rate limit reached", "type": "requests",
                                                       "code": "rate_limit_exceeded"}}, fault.retry_headers())
            if kind == "error":
                return self._send(rec, fault.status, {"error": {"message": "The server had an error",
                                                                "type": "server_error"}})
            if kind == "malformed_body":
                return self._send(rec, 200, b'{"id": "chatcmpl-broken", "choices": [')
            content = reply_content(body["messages"], "ok" if kind == "trickle" else kind, fake.obey)
            self._send(rec, 200, completion(body, content, deployment), trickle=fault if kind == "trickle" else None)

        def _send(self, rec: Recorded, status: int, payload, headers: dict | None = None,
                  trickle: Fault | None = None) -> None:
            self.record = rec
            self.send_json(status, payload, headers, trickle=trickle)

    return Handler


def completion(body: dict, content: str, deployment: str | None) -> dict:
    """The documented chat.completion object, with rough token counts (4 characters a token)."""
    prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // 4
    completion_tokens = max(1, len(content) // 4)
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model") or deployment or "fake-model", "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def reply_content(messages: list[dict], kind: str, obey: str | None) -> str:
    """The model's message content for one request."""
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    docs = DOCUMENT.findall(prompt)
    if kind == "malformed_reply":
        return "Sure! Here is a great email for your customers: subject Picked for you"
    feedback_turn = any(m.get("role") == "assistant" for m in messages)
    injected = any(INJECTION.search(text) for _, text in docs)
    if injected and (obey == "always" or (obey == "first" and not feedback_turn)):
        return json.dumps(obeyed(docs))
    draft = careful(docs, competitors(prompt))
    if kind == "uncited_number":
        draft["paragraphs"].insert(0, "Save 37% on everything this week.")
    if kind == "unknown_citation":
        draft["claims"][0]["document_id"] = "doc-that-does-not-exist"
    return json.dumps(draft)


def competitors(prompt: str) -> list[str]:
    m = COMPETITORS.search(prompt)
    return [c.strip() for c in m.group(1).split(";") if c.strip()] if m else []


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(" ".join(text.split())) if len(s.strip()) > 12]


def careful(docs: list[tuple[str, str]], rivals: list[str]) -> dict:
    """Two sentences of the first usable document and one of the second, quoted and cited."""
    def usable(s: str) -> bool:
        return not INJECTION.search(s) and not any(r.lower() in s.lower() for r in rivals)

    claims = []
    for n, (doc_id, text) in zip((2, 1), [(i, t) for i, t in docs if any(usable(s) for s in sentences(t))]):
        claims += [{"text": s, "document_id": doc_id} for s in [s for s in sentences(text) if usable(s)][:n]]
    if not claims:
        return {"subject": "Picked for you", "preheader": "", "greeting": "Hi {first_name},",
                "paragraphs": ["We have nothing to say."], "claims": []}
    first = claims[0]["text"]
    return {"subject": "Picked for you", "preheader": first if len(first) <= 100 else "",
            "greeting": "Hi {first_name},",
            "paragraphs": [" ".join(c["text"] for c in claims), "Take a look whenever you are ready."],
            "claims": claims}


def obeyed(docs: list[tuple[str, str]]) -> dict:
    """What a model that follows the injected instruction writes: a competitor and an invented discount."""
    clean = next(((i, s) for i, t in docs for s in sentences(t) if not INJECTION.search(s)), None)
    claims = [{"text": clean[1], "document_id": clean[0]}] if clean else []
    return {"subject": "90% off at Summit Supply Co.", "preheader": "Our biggest sale ever",
            "greeting": "Hi {first_name},",
            "paragraphs": ["Get 90% off at Summit Supply Co. today!"] + [c["text"] for c in claims],
            "claims": claims}
