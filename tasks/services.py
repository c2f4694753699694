"""One retry, rate-limit and settings layer for every remote backend (generation, retrieval, screening).

Before this module each backend had its own copy, and they disagreed: which statuses are worth another
attempt, whether a Retry-After longer than we are willing to wait fails at once, whether backoff has jitter,
and even what a rate limiter is (a token bucket here, a rolling window there). Now:

- Retryable: 408, 409, 429 and every 5xx (the list the OpenAI SDK itself uses), timeouts, resets and refused
  connections. Everything else (400, 401, 403, 404, 422, a reply that does not parse) fails at once: trying
  again cannot fix it.
- Wait: the server's Retry-After when it sent one (`retry-after-ms`, `x-ms-retry-after-ms`, `Retry-After` in
  seconds or as an HTTP date); a Retry-After longer than `max_retry_after` means an exhausted quota, so we
  stop at once instead of stalling a run. Otherwise exponential backoff (`backoff * 2**(attempt-1)`, at most
  `max_backoff`) times a jitter in [0.5, 1], so clients throttled together do not come back together.
- Attempts are bounded and exact: every SDK's own retries are switched off, so `attempts` is the number of
  requests one call can make.
- Rate limit: at most `requests` requests (and optionally `tokens` tokens) in any rolling window of `per`
  seconds, shared by all threads of the process: the services count the same way, so we wait instead of
  collecting 429s.
- Settings: numbers read from the environment with bounds, and an error that names the variable.

Each backend keeps only what is its own: how its SDK reports a failure (`classify_openai`, `classify_azure`)
and which error its callers expect when the service cannot answer.
"""
from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tasks.errors import InputError

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 429})  # and every status >= 500


def retryable_status(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE_STATUS or status >= 500)


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms or x-ms-retry-after-ms (Azure), else Retry-After
    as seconds or an HTTP date (RFC 9110); None when it did not say."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("x-ms-retry-after-ms", 1e-3), ("Retry-After", 1.0)):
        value = (headers.get(name) or headers.get(name.lower()) or "").strip()
        if not value:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(timezone.utc)).total_seconds())
            except (TypeError, ValueError):
                continue
    return None


# ---------------------------------------------------------------- failures and the retry loop

@dataclass(frozen=True)
class Failure:
    """One failed attempt: what went wrong, whether another attempt can help, what the server asked."""

    reason: str
    retryable: bool
    retry_after: float | None = None
    status: int | None = None


class GaveUp(Exception):
    """The call did not succeed. `why`: refused (not retryable), exhausted (attempts used up) or
    too_long (the server asked to wait longer than we allow). Backends turn it into their own error."""

    def __init__(self, failure: Failure, attempts: int, why: str, waited_for: float | None = None):
        self.failure, self.attempts, self.why, self.waited_for = failure, attempts, why, waited_for
        super().__init__(self.describe())

    def describe(self) -> str:
        if self.why == "too_long":
            return f"{self.failure.reason}: asked to wait {self.waited_for:.0f} s, longer than we allow"
        if self.why == "exhausted":
            return f"still failing after {self.attempts} attempts (last: {self.failure.reason})"
        return self.failure.reason


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4               # requests per call, the first included
    backoff: float = 0.5            # seconds before the second attempt when the server did not say
    max_backoff: float = 8.0
    max_retry_after: float = 60.0   # a longer Retry-After fails the call at once
    jitter: bool = True

    def wait(self, attempt: int, asked: float | None) -> float | None:
        """Seconds before attempt `attempt + 1`; None when the server asks for longer than we allow."""
        if asked is not None:
            return asked if asked <= self.max_retry_after else None
        wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return wait * random.uniform(0.5, 1.0) if self.jitter else wait

    def run(self, operation: Callable[[], T], classify: Callable[[Exception], Failure], *,
            limiter: "RateLimiter | None" = None, cost: int = 0, sleep: Callable[[float], None] = time.sleep,
            on_retry: Callable[[Failure, int, float], None] | None = None) -> T:
        """`operation()` with at most `attempts` requests. `classify` turns an exception into a Failure and
        re-raises what is not about the service (a bug stays a bug). Raises GaveUp, never an SDK error (an
        SDK error may hold the request, and the request the key)."""
        attempts = max(1, self.attempts)
        for attempt in range(1, attempts + 1):
            if limiter is not None:
                limiter.acquire(cost)  # every attempt counts against the quota
            try:
                return operation()
            except Exception as err:  # noqa: BLE001 - classify decides; unknown errors propagate from it
                failure = classify(err)
            if not failure.retryable:
                raise GaveUp(failure, attempt, "refused")
            if attempt == attempts:
                break
            wait = self.wait(attempt, failure.retry_after)
            if wait is None:
                raise GaveUp(failure, attempt, "too_long", failure.retry_after)
            if on_retry is not None:
                on_retry(failure, attempt, wait)
            sleep(wait)
        raise GaveUp(failure, attempts, "exhausted")


# ---------------------------------------------------------------- rate limiting

class RateLimiter:
    """At most `requests` acquisitions (and, when `tokens` is set, that many tokens) in any rolling window of
    `per` seconds, shared by all threads. A request larger than the token allowance is charged the allowance
    (it would otherwise wait forever)."""

    def __init__(self, requests: int, per: float = 60.0, tokens: int | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        if requests < 1 or per <= 0 or (tokens is not None and tokens < 1):
            raise ValueError("a rate limit needs requests >= 1, per > 0 and tokens >= 1 (or None)")
        self.requests, self.per, self.tokens = requests, per, tokens
        self._clock, self._sleep = clock, sleep
        self._log: deque[list] = deque()  # [stamp, tokens] per acquisition, oldest first
        self._used = 0
        self._lock = threading.Lock()

    def acquire(self, tokens: int = 0) -> None:
        tokens = min(max(0, tokens), self.tokens) if self.tokens else 0
        while True:
            with self._lock:
                now = self._clock()
                while self._log and now - self._log[0][0] >= self.per:
                    self._used -= self._log.popleft()[1]
                fits = len(self._log) < self.requests and (not self.tokens or self._used + tokens <= self.tokens)
                if fits:
                    self._log.append([now, tokens])
                    self._used += tokens
                    return
                wait = self._wait_until_fits(now, tokens)
            self._sleep(max(wait, 0.001))  # outside the lock, so other threads still see the window move

    def _wait_until_fits(self, now: float, tokens: int) -> float:
        """Seconds until enough of the oldest acquisitions leave the window."""
        need_requests = len(self._log) - self.requests + 1
        freed, need = 0, max(0, self._used + tokens - self.tokens) if self.tokens else 0
        for i, (stamp, used) in enumerate(self._log):
            freed += used
            if i + 1 >= need_requests and freed >= need:
                return self.per - (now - stamp)
        return self.per

    def settle(self, estimated: int, actual: int) -> None:
        """Charge what the last request of this size really used (we reserved an estimate)."""
        if not self.tokens:
            return
        with self._lock:
            for entry in reversed(self._log):
                if entry[1] == min(estimated, self.tokens):
                    delta = max(0, actual) - entry[1]
                    entry[1] += delta
                    self._used += delta
                    return


class SharedRateLimiter:
    """RateLimiter's limits (`requests` per `per` seconds, and `tokens` when set) kept by the Prefect server as
    global concurrency limits with slot decay, so every process that reports to that server (Dask workers, two
    campaigns at once, a deployment's runs) shares one budget per service account. A limit refills at
    limit/per slots a second (a leaky bucket, where RateLimiter keeps a rolling window: the same long-run rate,
    bursts of at most `requests`). The limits are created or corrected on first use, named
    `cpo-rate-<service>-<account hash>-requests` / `-tokens`; Prefect's UI shows them under Concurrency."""

    def __init__(self, name: str, requests: int, per: float = 60.0, tokens: int | None = None):
        if requests < 1 or per <= 0 or (tokens is not None and tokens < 1):
            raise ValueError("a rate limit needs requests >= 1, per > 0 and tokens >= 1 (or None)")
        self.requests, self.per, self.tokens = requests, per, tokens
        self.names = {"requests": f"cpo-rate-{name}-requests", "tokens": f"cpo-rate-{name}-tokens"}
        self._ready = False
        self._lock = threading.Lock()

    def _limits(self) -> dict[str, int]:
        return {self.names["requests"]: self.requests, **({self.names["tokens"]: self.tokens} if self.tokens else {})}

    def _ensure(self) -> None:
        with self._lock:
            if self._ready:
                return
            from prefect.client.orchestration import get_client
            from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
            from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

            with get_client(sync_client=True) as client:
                for name, limit in self._limits().items():
                    decay = limit / self.per
                    try:
                        found = client.read_global_concurrency_limit_by_name(name)
                    except ObjectNotFound:
                        try:
                            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                                name=name, limit=limit, slot_decay_per_second=decay))
                        except ObjectAlreadyExists:  # another process created it meanwhile
                            pass
                        continue
                    if found.limit != limit or abs((found.slot_decay_per_second or 0) - decay) > 1e-9 or not found.active:
                        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(
                            limit=limit, slot_decay_per_second=decay, active=True))
            self._ready = True

    def acquire(self, tokens: int = 0) -> None:
        from prefect.concurrency.sync import rate_limit

        self._ensure()
        rate_limit(self.names["requests"], occupy=1, strict=True)
        tokens = min(max(0, tokens), self.tokens) if self.tokens else 0
        if tokens:
            rate_limit(self.names["tokens"], occupy=tokens, strict=True)

    def settle(self, estimated: int, actual: int) -> None:
        """Charge the tokens a request used beyond its estimate (a leaky bucket cannot give back the rest)."""
        if self.tokens and (extra := min(max(0, actual), self.tokens) - min(estimated, self.tokens)) > 0:
            from prefect.concurrency.sync import rate_limit

            rate_limit(self.names["tokens"], occupy=extra, strict=True)


def rate_limiter(service: str, account: str, requests: int, per: float = 60.0, tokens: int | None = None,
                 shared: str | None = None):
    """The rate limiter of one service account: this process's (`process`, the default), or the Prefect
    server's, shared by every process reporting to it (`prefect`; CPO_RATE_LIMITS). `account` (an endpoint or
    base URL, never a key) tells accounts apart."""
    import hashlib
    import os

    if (shared or os.environ.get("CPO_RATE_LIMITS", "process").strip().lower() or "process") == "prefect":
        return SharedRateLimiter(f"{service}-{hashlib.sha256(account.encode()).hexdigest()[:8]}", requests, per,
                                 tokens)
    return RateLimiter(requests, per, tokens=tokens)


# ---------------------------------------------------------------- how each SDK family reports failure

def classify_openai(err: Exception) -> Failure:
    """The openai SDK (OpenAI, Azure OpenAI, any compatible server)."""
    import openai

    if isinstance(err, openai.APIStatusError):
        status = err.status_code
        code = getattr(err, "code", None)
        reason = f"HTTP {status}{f' ({code})' if code else ''}"
        return Failure(reason, retryable_status(status), retry_after(err.response.headers), status)
    if isinstance(err, openai.APITimeoutError):
        return Failure("no reply in time", True)
    if isinstance(err, openai.APIConnectionError):
        return Failure("could not connect", True)
    if isinstance(err, (openai.APIResponseValidationError, ValueError, TypeError, LookupError, AttributeError)):
        return Failure(f"malformed reply ({type(err).__name__})", False)  # not JSON, or JSON of the wrong shape
    raise err


def classify_azure(err: Exception) -> Failure:
    """azure-core based SDKs (Content Safety, AI Search)."""
    from azure.core.exceptions import (AzureError, DecodeError, DeserializationError, HttpResponseError,
                                       ServiceRequestError, ServiceResponseError)

    if isinstance(err, (DecodeError, DeserializationError, ValueError, TypeError, KeyError, AttributeError)):
        # before HttpResponseError: DecodeError is one. AttributeError/TypeError: JSON of the wrong shape
        return Failure(f"malformed reply ({type(err).__name__})", False)
    if isinstance(err, HttpResponseError):
        status = err.status_code
        code = getattr(getattr(err, "error", None), "code", None)
        headers = err.response.headers if err.response is not None else None
        return Failure(f"HTTP {status}{f' {code}' if code and not retryable_status(status) else ''}",
                       retryable_status(status), retry_after(headers), status)
    if isinstance(err, ServiceResponseError):
        return Failure("no reply in time (ServiceResponseError)", True)
    if isinstance(err, ServiceRequestError):
        return Failure("could not connect (ServiceRequestError)", True)
    if isinstance(err, AzureError):
        return Failure(type(err).__name__, False)
    raise err


# ---------------------------------------------------------------- a whole-call deadline for the openai SDK

_deadline = threading.local()  # .at: monotonic time by which this thread's current request must be over


class _DeadlineStream:
    """A connection whose every read and write waits at most until the current request's deadline."""

    def __init__(self, stream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        import httpcore2

        return self._stream.read(max_bytes, _left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore2

        self._stream.write(buffer, _left(timeout, httpcore2.WriteTimeout))

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        import httpcore2

        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                      _left(timeout, httpcore2.ConnectTimeout)))

    def close(self) -> None:
        self._stream.close()

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend:
    """httpcore's network backend with the deadline applied to connecting and to every connection."""

    def __init__(self, backend):
        self._backend = backend

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        import httpcore2

        return _DeadlineStream(self._backend.connect_tcp(host, port, _left(timeout, httpcore2.ConnectTimeout),
                                                         local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        import httpcore2

        return _DeadlineStream(self._backend.connect_unix_socket(path, _left(timeout, httpcore2.ConnectTimeout),
                                                                 socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _left(timeout: float | None, expired: type[Exception]) -> float | None:
    """The wait one socket operation may take: its own timeout, cut to what is left of the request's deadline."""
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise expired("the whole call took longer than its timeout")
    return left if timeout is None else min(timeout, left)


def openai_http_client(timeout: float):
    """The openai SDK's HTTP client, with `timeout` bounding each request end to end. The SDK's timeout (httpx's)
    applies to each phase and each socket read, so a server that trickles its reply a byte at a time holds a
    call for as long as it likes; here every read and write of a request also waits at most until `timeout`
    seconds after the request started (then httpx's ReadTimeout: the SDK's APITimeoutError, retried by
    RetryPolicy like any timeout). Proxies from the environment and the SDK's defaults are kept: the
    deadline is installed in the network backend of each connection pool the client made."""
    import httpx2
    import openai

    def start(request) -> None:
        _deadline.at = time.monotonic() + timeout

    client = openai.DefaultHttpxClient(timeout=timeout, event_hooks={"request": [start]})
    for transport in [t for t in (client._transport, *client._mounts.values()) if t is not None]:
        pool = getattr(transport, "_pool", None)
        if not isinstance(transport, httpx2.HTTPTransport) or not hasattr(pool, "_network_backend"):
            raise RuntimeError(f"cannot install the request deadline in {type(transport).__name__} "
                               f"(httpx2's internals changed?)")
        pool._network_backend = _DeadlineBackend(pool._network_backend)
    return client


# ---------------------------------------------------------------- settings

def env_number(env: Mapping[str, str], name: str, default, cast, low, high):
    """A bounded number from the environment; InputError (exit 2) naming the variable otherwise."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise InputError(f"environment: {name} must be a number (got {raw!r})") from None
    if not low <= value <= high:
        raise InputError(f"environment: {name} must be between {low} and {high} (got {raw!r})")
    return value


def env_text(env: Mapping[str, str], name: str, default: str = "") -> str:
    return (env.get(name) or "").strip() or default


def require_env(env: Mapping[str, str], names: list[str], what: str) -> None:
    """InputError naming the missing variables (never their values: a value may be a secret)."""
    missing = [n for n in names if not (env.get(n) or "").strip()]
    if missing:
        raise InputError(f"environment: {what} needs {', '.join(missing)}")


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
