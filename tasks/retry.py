"""What a throttled service asks of its clients, read the same way for every backend."""
from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Mapping


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
