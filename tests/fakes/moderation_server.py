"""Local fakes of two OpenAI-protocol screening services, as the official `openai` SDK calls them.

    with FakeModeration(key="k") as fake:      # POST /v1/moderations        (OpenAI's moderation endpoint)
    with FakeGuard(key="k") as fake:           # POST /v1/chat/completions   (a Llama Guard model behind vLLM & co.)
        OpenAI(base_url=fake.base_url, api_key="k")
        fake.script(Fault.throttle(retry_after=1), Fault.error(500))  # the next requests fail, in order
        fake.down = True                                              # every request: 503
        fake.requests                                                 # what the client sent (no key)

Both score with a tiny keyword table (PHRASES) so tests see real verdicts come back. The moderation fake
answers the documented object: `{"id", "model", "results": [{"flagged", "categories": {name: bool},
"category_scores": {name: float}, "category_applied_input_types": ...}]}`, one result per input. The guard
fake answers a chat.completion whose content is Llama Guard's format: "safe" or "unsafe\\nS1,S10".
Faults beyond the shared ones: malformed (a body that is not JSON), reply (this exact JSON), content (this
exact message content, guard only). A wrong key gets 401 in the service's error shape.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.fakes.local_http import Fault as BaseFault
from tests.fakes.local_http import JsonHandler, LocalServer

CATEGORIES = ("harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
              "self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence",
              "violence/graphic")
# phrase -> (moderation category, score, guard hazard code)
PHRASES = {
    "kill you": ("violence", 0.97, "S1"),
    "punch": ("violence", 0.30, None),
    "hurt yourself": ("self-harm/instructions", 0.92, "S11"),
    "vermin": ("hate", 0.88, "S10"),
    "explicit": ("sexual", 0.60, "S12"),
    "wire the money": ("illicit", 0.85, "S2"),
}


class Fault(BaseFault):
    @classmethod
    def malformed(cls) -> "Fault":
        return cls("malformed")

    @classmethod
    def reply(cls, payload: object, status: int = 200) -> "Fault":
        return cls("reply", status, payload=payload)

    @classmethod
    def content(cls, text: str | None, finish_reason: str = "stop") -> "Fault":
        """Guard only: a well-formed completion carrying exactly this message content."""
        return cls("content", payload=(text, finish_reason))


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: object
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    key_ok: bool = False


def moderation_result(text: str) -> dict:
    scores = dict.fromkeys(CATEGORIES, 0.0001)
    for phrase, (category, score, _) in PHRASES.items():
        if phrase in text.lower():
            scores[category] = max(scores[category], score)
    flags = {c: s >= 0.5 for c, s in scores.items()}
    return {"flagged": any(flags.values()), "categories": flags, "category_scores": scores,
            "category_applied_input_types": {c: ["text"] for c in CATEGORIES}}


def guard_content(text: str) -> str:
    codes = [code for phrase, (_, _, code) in PHRASES.items() if code and phrase in text.lower()]
    return "unsafe\n" + ",".join(dict.fromkeys(codes)) if codes else "safe"


class _Fake:
    route = ""

    def __init__(self, key: str = "fake-key"):
        self.key = key
        self.down = False
        self.requests: list[Recorded] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server = LocalServer(_handler_for(self))

    @property
    def base_url(self) -> str:
        return f"{self._server.url}/v1"

    def __enter__(self):
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def answer(self, body: dict, fault: Fault | None) -> tuple[int, object]:
        raise NotImplementedError


class FakeModeration(_Fake):
    route = "/v1/moderations"

    def answer(self, body: dict, fault: Fault | None) -> tuple[int, object]:
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            return _error(400, "input must be a string or an array of strings", "invalid_request_error")
        return 200, {"id": f"modr-{uuid.uuid4().hex[:12]}", "model": body.get("model") or "omni-moderation-latest",
                     "results": [moderation_result(i) for i in inputs]}


class FakeGuard(_Fake):
    route = "/v1/chat/completions"

    def answer(self, body: dict, fault: Fault | None) -> tuple[int, object]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages required", "invalid_request_error")
        if fault and fault.kind == "content":
            content, finish = fault.payload
        else:
            content, finish = guard_content(str(messages[-1].get("content", ""))), "stop"
        return 200, {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                     "created": int(time.time()), "model": body.get("model") or "llama-guard",
                     "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                                  "message": {"role": "assistant", "content": content}}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}


def _error(status: int, message: str, kind: str) -> tuple[int, dict]:
    return status, {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _handler_for(fake: _Fake):
    class Handler(JsonHandler):
        content_type = "application/json"

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            _, body = self.read_body()
            auth = self.headers.get("Authorization") or ""
            rec = Recorded(url.path, {k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"},
                           body, key_ok=auth == f"Bearer {fake.key}")
            with fake._lock:
                fake.requests.append(rec)
            self.record = rec
            if fake.down:
                return self.send_json(*_error(503, "The server is overloaded or not ready yet.", "server_error"))
            fault = fake.next_fault()
            if fault and fault.kind == "throttle":
                return self.send_json(*_error(429, "Rate limit reached for requests", "requests"),
                                      fault.retry_headers())
            if fault and fault.kind == "error":
                return self.send_json(*_error(fault.status, "The server had an error", "server_error"))
            if not rec.key_ok:
                return self.send_json(*_error(401, "Incorrect API key provided.", "invalid_request_error"))
            if url.path != fake.route:
                return self.send_json(*_error(404, f"no route {url.path}", "invalid_request_error"))
            if fault and fault.kind == "delay":
                time.sleep(fault.seconds)
            if fault and fault.kind == "malformed":
                return self.send_json(200, b'{"id": "broken", "results": [')
            if fault and fault.kind == "reply":
                return self.send_json(fault.status, fault.payload)
            trickle = fault if fault and fault.kind == "trickle" else None
            return self.send_json(*fake.answer(body if isinstance(body, dict) else {}, fault), trickle=trickle)

    return Handler
