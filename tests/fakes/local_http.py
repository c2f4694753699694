"""What every fake service shares: a JSON HTTP handler, a server on a free loopback port, scripted faults."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid ~40 ms delayed-ACK stalls
    content_type = "application/json; charset=utf-8"
    record = None  # the fake's record of this request: its status is set before the reply leaves, so a test
    #                reading it right after the client returns never sees a status that is not there yet

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def read_body(self) -> tuple[bytes, object]:
        """The raw body and its JSON (None when empty, the text when it is not JSON)."""
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not raw:
            return raw, None
        try:
            return raw, json.loads(raw)
        except ValueError:
            return raw, raw.decode("utf-8", "replace")

    def send_json(self, status: int, payload, headers: dict | None = None, trickle: "Fault | None" = None) -> int:
        """`payload` as JSON (bytes are sent as they are, e.g. a malformed body); returns the status. With a
        trickle fault the body goes out a byte every `trickle.every` seconds, and the server hangs up once
        `trickle.seconds` have passed, finished or not (so a test's server always stops by itself)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        if self.record is not None:
            self.record.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", self.content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if trickle is None:
                self.wfile.write(data)
                return status
            self.wfile.flush()
            stop = time.monotonic() + trickle.seconds
            for i in range(len(data)):
                if time.monotonic() >= stop:
                    self.close_connection = True
                    break
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(trickle.every)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and hung up: fine
            pass
        return status


class LocalServer:
    """Serves a handler class on 127.0.0.1 (a free port) from a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True  # a delayed reply must not hold up shutdown
        host, port = self.server.server_address[:2]
        self.url = f"http://{host}:{port}"

    def start(self) -> "LocalServer":
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Fault:
    """One scripted reply. The shared kinds: ok | throttle | error | delay | trickle; each fake adds its own."""

    kind: str
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    payload: object = None
    every: float = 0.0

    @classmethod
    def ok(cls):
        """No fault: lets a script spread its faults over several calls."""
        return cls("ok")

    @classmethod
    def throttle(cls, retry_after: float | None = None):
        return cls("throttle", 429, None if retry_after is None else f"{retry_after:g}")

    @classmethod
    def error(cls, status: int = 500):
        return cls("error", status)

    @classmethod
    def delay(cls, seconds: float):
        """Answer correctly, but only after `seconds` (longer than the client's timeout)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def trickle(cls, every: float, seconds: float):
        """Answer correctly, but one byte every `every` seconds (each read well inside any timeout), hanging
        up after `seconds` if the body is not out by then."""
        return cls("trickle", seconds=seconds, every=every)

    def retry_headers(self) -> dict:
        return {"Retry-After": self.retry_after} if self.retry_after else {}
