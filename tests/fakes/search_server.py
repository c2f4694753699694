"""A local fake of Azure AI Search, speaking the REST protocol azure-search-documents 12.x sends.

    with FakeSearchService(api_key="k") as svc:      # svc.endpoint == "http://127.0.0.1:<port>"
        svc.script(status=429, retry_after="1")     # the next request gets a 429, then normal service
        ...
        svc.requests                                # every request: method, op, index, params, body

Routes (the SDK uses the OData key form; the plain form is accepted too):
    PUT    /indexes('name') | /indexes/name                    create or update the index (201 / 200)
    GET    /indexes('name')                                    the definition, or 404
    DELETE /indexes('name')                                    204
    POST   /indexes('name')/docs/search.index                  upload / merge / mergeOrUpload / delete
    POST   /indexes('name')/docs/search.post.search            search, filter, top, select
The api-key header must match (401 without it, 403 when wrong) and api-version must be a known version.
Search scores a document by how often the query's terms occur in its searchable fields (weighted by the
default scoring profile); `filter` is evaluated by a small OData parser covering the forms cpo emits:
eq/ne/lt/le/gt/ge with strings, dates and null, and/or/not, parentheses, `f/any(x: search.in(x, '...'))`.
"""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.local_http import JsonHandler, LocalServer

API_VERSIONS = {"2023-11-01", "2024-07-01", "2025-09-01", "2026-04-01"}
PATH = re.compile(r"^/indexes(?:\('((?:[^']|'')*)'\)|/([^/(]+))(/.*)?$")


class ODataError(ValueError):
    pass


# --- a tiny OData $filter evaluator ---------------------------------------------------------------

TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<date>\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d))"
                   r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][\w.]*(?:/[A-Za-z_]\w*)*)|(?P<sym>[(),:]))")
COMPARE = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
           "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        m = TOKEN.match(text, pos)
        if not m:
            raise ODataError(f"Invalid expression: unexpected text at position {pos}")
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return out


def _as_value(value):
    """Dates compare as datetimes; everything else as is."""
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT", value):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


class _Parser:
    """Recursive descent: or > and > not > comparison | any-lambda | search.in | (expr). Builds closures."""

    def __init__(self, text: str, fields: dict):
        self.toks, self.i, self.fields, self.used = _tokens(text), 0, fields, set()

    def peek(self, value=None):
        tok = self.toks[self.i] if self.i < len(self.toks) else (None, None)
        return tok if value is None or tok[1] == value else None

    def take(self, value=None):
        tok = self.peek()
        if tok[0] is None or (value is not None and tok[1] != value):
            raise ODataError(f"Invalid expression: expected {value or 'more input'}, got {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self):
        expr = self.expr({})
        if self.i != len(self.toks):
            raise ODataError(f"Invalid expression: unexpected {self.toks[self.i][1]!r}")
        return expr

    def expr(self, scope):
        left = self.conj(scope)
        while self.peek("or"):
            self.take()
            right, prev = self.conj(scope), left
            left = lambda d, v, a=prev, b=right: a(d, v) or b(d, v)  # noqa: E731
        return left

    def conj(self, scope):
        left = self.unary(scope)
        while self.peek("and"):
            self.take()
            right, prev = self.unary(scope), left
            left = lambda d, v, a=prev, b=right: a(d, v) and b(d, v)  # noqa: E731
        return left

    def unary(self, scope):
        if self.peek("not"):
            self.take()
            inner = self.unary(scope)
            return lambda d, v: not inner(d, v)
        if self.peek("("):
            self.take("(")
            inner = self.expr(scope)
            self.take(")")
            return inner
        kind, text = self.peek()
        if text == "search.in":
            return self.search_in(scope)
        if kind == "name" and text.endswith("/any"):
            return self.any(text[:-4], scope)
        return self.comparison(scope)

    def operand(self, scope):
        kind, text = self.take()
        if kind == "str":
            value = text[1:-1].replace("''", "'")
            return lambda d, v: value
        if kind == "date":
            value = _as_value(text)
            return lambda d, v: value
        if kind == "num":
            value = float(text)
            return lambda d, v: value
        if text in ("null", "true", "false"):
            value = {"null": None, "true": True, "false": False}[text]
            return lambda d, v: value
        if kind == "name" and text in scope:
            return lambda d, v: v[text]
        if kind == "name":
            self.field(text)
            return lambda d, v: _as_value(d.get(text))
        raise ODataError(f"Invalid expression: unexpected {text!r}")

    def field(self, name: str):
        spec = self.fields.get(name)
        if spec is None:
            raise ODataError(f"Invalid expression: Could not find a property named '{name}' on type 'search.document'.")
        if not spec.get("filterable"):
            raise ODataError(f"Invalid expression: The field '{name}' is not filterable.")
        self.used.add(name)

    def comparison(self, scope):
        left = self.operand(scope)
        op = self.take()[1]
        if op not in COMPARE:
            raise ODataError(f"Invalid expression: unknown operator {op!r}")
        right, cmp = self.operand(scope), COMPARE[op]

        def test(d, v):
            a, b = left(d, v), right(d, v)
            if a is None or b is None:  # OData: ordering against null is false; eq/ne compare nullness
                return cmp(a is None, b is None) if op in ("eq", "ne") else False
            return cmp(a, b)
        return test

    def any(self, name: str, scope):
        self.take()
        self.field(name)
        self.take("(")
        var = self.take()[1]
        self.take(":")
        body = self.expr({**scope, var: True})
        self.take(")")
        return lambda d, v: any(body(d, {**v, var: item}) for item in (d.get(name) or []))

    def search_in(self, scope):
        self.take("search.in")
        self.take("(")
        subject = self.operand(scope)
        self.take(",")
        values = self.take()[1]
        delimiters = " ,"
        if self.peek(","):
            self.take(",")
            delimiters = self.take()[1][1:-1]
        self.take(")")
        allowed = {x for x in re.split("[" + re.escape(delimiters) + "]", values[1:-1].replace("''", "'")) if x}
        return lambda d, v: subject(d, v) in allowed


def compile_filter(text: str, fields: dict):
    """A predicate doc -> bool for an OData filter; raises ODataError for anything outside the subset."""
    return (lambda d: True) if not text else (lambda p: lambda d: bool(p(d, {})))(_Parser(text, fields).parse())


# --- the service ------------------------------------------------------------------------------------

def _words(text) -> list[str]:
    if isinstance(text, list):
        return [w for item in text for w in _words(item)]
    return re.findall(r"[a-z0-9]+", str(text or "").lower())


class FakeSearchService:
    def __init__(self, api_key: str = "test-admin-key"):
        self.api_key = api_key
        self.indexes: dict[str, dict] = {}  # name -> {"definition": ..., "docs": {key: doc}}
        self.requests: list[dict] = []
        self.faults: list[dict] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.endpoint = ""

    # scripted faults: each applies to the next `times` requests whose op matches (None: forever)
    def script(self, *, status: int | None = None, retry_after: str | None = None, delay: float = 0.0,
               malformed: bool | bytes = False, times: int | None = 1, op: str | None = None) -> None:
        with self.lock:
            self.faults.append({"status": status, "retry_after": retry_after, "delay": delay,
                                "malformed": malformed, "times": times, "op": op})

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def ops(self, op: str) -> list[dict]:
        return [r for r in self.requests if r["op"] == op]

    def __enter__(self) -> FakeSearchService:
        self.server = LocalServer(_handler(self)).start()
        self.endpoint = self.server.url
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()  # cuts scripted delays short
        self.server.stop()

    def take_fault(self, op: str) -> dict | None:
        with self.lock:
            for fault in self.faults:
                if fault["op"] in (None, op):
                    if fault["times"] is not None:
                        fault["times"] -= 1
                        if fault["times"] <= 0:
                            self.faults.remove(fault)
                    return fault
        return None

    # operations: each returns (status, body)
    def put_index(self, name: str, body: dict) -> tuple[int, dict]:
        keys = [f for f in body.get("fields", []) if f.get("key")]
        if body.get("name") != name or len(keys) != 1 or keys[0].get("type") != "Edm.String":
            return 400, _error("InvalidRequestParameter",
                               "The index must be named as in the URL and have one Edm.String key.")
        definition = {**body, "@odata.etag": f'"0x{len(self.requests):X}"'}
        with self.lock:
            created = name not in self.indexes
            docs = {} if created else self.indexes[name]["docs"]
            self.indexes[name] = {"definition": definition, "docs": docs}
        return (201 if created else 200), definition

    def index_docs(self, name: str, body: dict) -> tuple[int, dict]:
        index = self.indexes[name]
        key_field = next(f["name"] for f in index["definition"]["fields"] if f.get("key"))
        results = [self._apply(index["docs"], key_field, action) for action in body.get("value", [])]
        return (200 if all(r["status"] for r in results) else 207), {"value": results}

    def _apply(self, docs: dict, key_field: str, action: dict) -> dict:
        kind, doc = action.get("@search.action", "upload"), {k: v for k, v in action.items() if k != "@search.action"}
        key = doc.get(key_field)
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_\-=]+", key) or key.startswith("_"):
            return {"key": key, "status": False, "errorMessage": f"Invalid document key: '{key}'.", "statusCode": 400}
        with self.lock:
            existed = key in docs
            if kind == "delete":
                docs.pop(key, None)
            elif kind == "merge" and not existed:
                return {"key": key, "status": False, "errorMessage": "Document not found.", "statusCode": 404}
            elif kind in ("merge", "mergeOrUpload"):
                docs[key] = {**docs.get(key, {}), **doc}
            else:
                docs[key] = doc
        status = 200 if existed or kind == "delete" else 201
        return {"key": key, "status": True, "errorMessage": None, "statusCode": status}

    def search(self, name: str, body: dict) -> tuple[int, dict]:
        index = self.indexes[name]
        definition = index["definition"]
        fields = {f["name"]: f for f in definition["fields"]}
        try:
            keep = compile_filter(body.get("filter") or "", fields)
        except ODataError as e:
            return 400, _error("InvalidRequestParameter", str(e))
        weights = next((p.get("text", {}).get("weights", {}) for p in definition.get("scoringProfiles") or []
                        if p["name"] == definition.get("defaultScoringProfile")), {})
        terms = set(_words(body.get("search") or ""))
        searchable = [f for f, spec in fields.items() if spec.get("searchable")]
        with self.lock:
            docs = list(index["docs"].values())
        scored = []
        for doc in docs:
            if not keep(doc):
                continue
            score = sum(weights.get(f, 1.0) * sum(w in terms for w in _words(doc.get(f))) for f in searchable)
            if score > 0 or not terms:
                scored.append((float(score) if terms else 1.0, doc))
        key_field = next(f for f, spec in fields.items() if spec.get("key"))
        scored.sort(key=lambda sd: (-sd[0], str(sd[1].get(key_field))))
        top = int(body.get("top") or 50)
        select = body.get("select")
        select = select.split(",") if isinstance(select, str) else select
        value = [{"@search.score": s, **({k: d.get(k) for k in select} if select else d)} for s, d in scored[:top]]
        return 200, {"value": value}


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _handler(service: FakeSearchService):
    class Handler(JsonHandler):
        content_type = "application/json; odata.metadata=none; charset=utf-8"

        def do_GET(self):
            self.route("GET")

        def do_PUT(self):
            self.route("PUT")

        def do_POST(self):
            self.route("POST")

        def do_DELETE(self):
            self.route("DELETE")

        def route(self, method: str) -> None:
            url = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(url.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            match = PATH.match(unquote(url.path))
            name = None if not match else match.group(2) if match.group(1) is None else match.group(1).replace("''", "'")
            op = _op(method, match.group(3) if match else None) if match else "unknown"
            try:
                body = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                body = None
            with service.lock:
                service.requests.append({"method": method, "path": url.path, "op": op, "index": name, "params": params,
                                         "body": body, "key_ok": self.headers.get("api-key") == service.api_key})
            self.send_json(*self.dispatch(method, op, name, params, body))

        def dispatch(self, method, op, name, params, body):
            key = self.headers.get("api-key")
            if not key:
                return 401, _error("Unauthorized", "Access denied: no api-key header.")
            if key != service.api_key:
                return 403, _error("Forbidden", "Authorization failed.")
            if params.get("api-version") not in API_VERSIONS:
                return 400, _error("InvalidApiVersion", "Invalid or missing api-version query string parameter.")
            fault = service.take_fault(op)
            if fault:
                if fault["delay"]:
                    service.stopping.wait(fault["delay"])
                if fault["status"]:
                    headers = {"Retry-After": fault["retry_after"]} if fault["retry_after"] else {}
                    return fault["status"], _error("Fault", f"scripted HTTP {fault['status']}"), headers
                if fault["malformed"]:  # True: truncated JSON; bytes: that body, e.g. a proxy's HTML page
                    body = fault["malformed"] if isinstance(fault["malformed"], bytes) else b'{"value": [{"id": '
                    return 200, body, {}
            if body is None:
                return 400, _error("InvalidRequestBody", "The request body is not valid JSON.")
            if op == "index:put":
                return service.put_index(name, body)
            if name not in service.indexes:
                return 404, _error("ResourceNotFound", f"The index '{name}' for service was not found.")
            if op == "index:get":
                return 200, service.indexes[name]["definition"]
            if op == "index:delete":
                service.indexes.pop(name, None)
                return 204, b""
            if op == "docs:index":
                return service.index_docs(name, body)
            if op == "docs:search":
                return service.search(name, body)
            return 404, _error("NotFound", f"{method} {self.path} is not supported by the fake.")

    return Handler


def _op(method: str, rest: str | None) -> str:
    rest = rest or ""
    if rest == "":
        return {"PUT": "index:put", "GET": "index:get", "DELETE": "index:delete"}.get(method, "unknown")
    if method == "POST" and rest == "/docs/search.index":
        return "docs:index"
    if method == "POST" and rest == "/docs/search.post.search":
        return "docs:search"
    return "unknown"
