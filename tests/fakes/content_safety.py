"""A local fake of Azure AI Content Safety (REST API 2023-10-01 / 2024-09-01), as the official SDK calls it.

    with FakeContentSafety(key="k") as fake:   # binds 127.0.0.1 on a free port
        client = ContentSafetyClient(fake.url, AzureKeyCredential("k"))
        fake.script(Fault.throttle(retry_after=1), Fault.error(500))   # the next two requests fail
        fake.down = True                                               # every request: 503
        fake.requests                                                  # what the client sent

Routes (the SDK's base URL is `{endpoint}/contentsafety`):
    POST  /contentsafety/text:analyze?api-version=...
    PATCH /contentsafety/text/blocklists/{name}?api-version=...
    POST  /contentsafety/text/blocklists/{name}:addOrUpdateBlocklistItems?api-version=...

Scoring is a tiny deterministic keyword table (SEVERITIES) so tests see real, non-zero severities come back.
Scripted faults apply to the next requests of any route, in order (Fault.ok() spaces them out); `down` wins
over the script. A wrong or missing key gets 401 unless a throttle/error fault answers first.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.local_http import Fault as BaseFault
from tests.fakes.local_http import JsonHandler, LocalServer

KEY_HEADER = "Ocp-Apim-Subscription-Key"
API_VERSIONS = {"2023-10-01", "2024-09-01"}
CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
# phrase -> (category, severity on the eight-level scale); odd severities show the client asked for eight levels
SEVERITIES = {
    "kill you": ("Violence", 6),
    "punch": ("Violence", 3),
    "hurt yourself": ("SelfHarm", 5),
    "vermin": ("Hate", 7),
    "explicit": ("Sexual", 4),
}
MAX_ITEMS_PER_CALL = 100  # the service's documented limit for addOrUpdateBlocklistItems


class Fault(BaseFault):
    """Shared kinds plus: malformed | reply."""

    @classmethod
    def malformed(cls) -> "Fault":
        """200 with a JSON content type and a body that is not JSON."""
        return cls("malformed")

    @classmethod
    def reply(cls, payload: object, status: int = 200) -> "Fault":
        """Answer with exactly this JSON (e.g. a reply without categoriesAnalysis)."""
        return cls("reply", status, payload=payload)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # without the subscription key
    body: object
    status: int = 0
    at: float = field(default_factory=time.monotonic)
    key_ok: bool = False


class FakeContentSafety:
    def __init__(self, key: str = "fake-key"):
        self.key = key
        self.down = False
        self.requests: list[Recorded] = []
        self.blocklists: dict[str, dict] = {}  # name -> {"description": str, "items": {id: text}}
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server = LocalServer(_handler_for(self))
        self.url = self._server.url

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> "FakeContentSafety":
        self._server.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.stop()

    # -- test helpers --------------------------------------------------------------------------------------
    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def analyze_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith("/text:analyze")]

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # -- the protocol --------------------------------------------------------------------------------------
    def analyze(self, body: dict) -> tuple[int, dict]:
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _error(400, "InvalidRequestBody", "text is required")
        if len(text) > 10_000:
            return _error(400, "InvalidRequestBody", "text exceeds 10000 characters")
        missing = [n for n in body.get("blocklistNames") or [] if n not in self.blocklists]
        if missing:
            return _error(404, "NotFound", f"blocklist {missing[0]} not found")
        matches = self._blocklist_matches(text, body.get("blocklistNames") or [])
        if matches and body.get("haltOnBlocklistHit"):
            return 200, {"blocklistsMatch": matches, "categoriesAnalysis": []}
        eight = body.get("outputType") == "EightSeverityLevels"
        wanted = body.get("categories") or list(CATEGORIES)
        scores = {c: 0 for c in wanted}
        for phrase, (category, severity) in SEVERITIES.items():
            if phrase in text.lower() and category in scores:
                scores[category] = max(scores[category], severity)
        analysis = [{"category": c, "severity": s if eight else s // 2 * 2} for c, s in scores.items()]
        return 200, {"blocklistsMatch": matches, "categoriesAnalysis": analysis}

    def _blocklist_matches(self, text: str, names: list[str]) -> list[dict]:
        return [{"blocklistName": n, "blocklistItemId": item_id, "blocklistItemText": item}
                for n in names for item_id, item in self.blocklists[n]["items"].items()
                if item.lower() in text.lower()]

    def upsert_blocklist(self, name: str, body: dict) -> tuple[int, dict]:
        status = 200 if name in self.blocklists else 201
        entry = self.blocklists.setdefault(name, {"description": "", "items": {}})
        entry["description"] = body.get("description", entry["description"])
        return status, {"blocklistName": name, "description": entry["description"]}

    def add_items(self, name: str, body: dict) -> tuple[int, dict]:
        if name not in self.blocklists:
            return _error(404, "NotFound", f"blocklist {name} not found")
        items = body.get("blocklistItems")
        if not isinstance(items, list) or not 0 < len(items) <= MAX_ITEMS_PER_CALL:
            return _error(400, "InvalidRequestBody", f"blocklistItems must hold 1-{MAX_ITEMS_PER_CALL} items")
        stored = self.blocklists[name]["items"]
        out = []
        for item in items:
            item_id = next((i for i, t in stored.items() if t == item["text"]), str(uuid.uuid4()))
            stored[item_id] = item["text"]
            out.append({"blocklistItemId": item_id, "text": item["text"], "description": item.get("description", "")})
        return 200, {"blocklistItems": out}

    def route(self, method: str, path: str, body) -> tuple[int, dict]:
        prefix = "/contentsafety/text"
        if method == "POST" and path == f"{prefix}:analyze":
            return self.analyze(body)
        if path.startswith(f"{prefix}/blocklists/"):
            name, _, action = unquote(path[len(prefix) + len("/blocklists/"):]).partition(":")
            if method == "PATCH" and not action:
                return self.upsert_blocklist(name, body)
            if method == "POST" and action == "addOrUpdateBlocklistItems":
                return self.add_items(name, body)
        return _error(404, "NotFound", f"no route {method} {path}")


def _error(status: int, code: str, message: str) -> tuple[int, dict]:
    return status, {"error": {"code": code, "message": message}}


def _handler_for(fake: FakeContentSafety):
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def _handle(self) -> None:
            url = urlsplit(self.path)
            _, body = self.read_body()
            rec = Recorded(self.command, url.path, {k: v[-1] for k, v in parse_qs(url.query).items()},
                           {k: v for k, v in self.headers.items() if k.lower() != KEY_HEADER.lower()}, body,
                           key_ok=self.headers.get(KEY_HEADER) == fake.key)
            with fake._lock:
                fake.requests.append(rec)
            self.record = rec
            self._reply(rec, body)

        def _reply(self, rec: Recorded, body) -> int:
            if fake.down:
                return self.send_json(*_error(503, "ServiceUnavailable", "the service is down"))
            fault = fake.next_fault()
            if fault and fault.kind == "throttle":
                return self.send_json(*_error(429, "TooManyRequests", "rate limit exceeded"), fault.retry_headers())
            if fault and fault.kind == "error":
                return self.send_json(*_error(fault.status, "InternalServerError", "scripted failure"))
            if not rec.key_ok:
                return self.send_json(*_error(401, "401", "Access denied due to invalid subscription key or wrong "
                                                      "API endpoint."))
            if rec.query.get("api-version") not in API_VERSIONS:
                return self.send_json(*_error(400, "UnsupportedApiVersion", "unsupported api-version"))
            if fault and fault.kind == "malformed":
                return self.send_json(200, b"{not json")
            if fault and fault.kind == "reply":
                return self.send_json(fault.status, fault.payload)
            if fault and fault.kind == "delay":
                time.sleep(fault.seconds)
            return self.send_json(*fake.route(rec.method, rec.path, body if isinstance(body, dict) else {}))

    return Handler
