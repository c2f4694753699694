"""Engagement events from an ESP, read back into one outcome row per recipient.

    events, info = read_events_info(path, fmt)          # fmt: generic | sendgrid | mailchimp
    validate_events(events, source, docs_dir)           # GX checkpoint (expectations/events.json); exit 2 if it fails
    per_recipient, counts = outcomes_from_events(events, sends, info)

`read_events` / `read_events_info` return the normalised events, one row per event as the file gives it
(duplicates still in):

| column     | type              | meaning                                                                      |
| ---------- | ----------------- | ---------------------------------------------------------------------------- |
| recipient  | str               | the customer_id or the email address, as given                               |
| key_kind   | str               | "customer_id" or "email"                                                     |
| event      | str               | delivered, open, click, conversion, unsubscribe, complaint or bounce         |
| timestamp  | datetime UTC      | when it happened (nullable here; the checkpoint requires it)                 |
| value      | float             | a conversion's value (nullable)                                              |
| machine    | bool              | an open made by a machine (Apple Mail Privacy Protection, a proxy), not a person |
| event_id   | str               | the ESP's unique id of the event, for de-duplication (nullable)              |
| run        | str               | the `cpo_run` the message was sent under, when the ESP echoes it (nullable)  |

`info` holds what was read but is not an outcome: `{"format", "ignored_event_kinds": {kind: n}, ...}`.
Nothing in a message or in `info` quotes an email address unmasked.

## Format mapping

**generic** — a CSV (any encoding or delimiter `tasks.files.read_table` reads; Parquet and Excel too) with
`customer_id` or `email` (both allowed: a row uses its customer_id when it has one), `event`, `timestamp`,
optional `value`, and optional `machine` (true/false), `event_id`, `cpo_run`. Header names are matched
case-insensitively. Event names are case-insensitive and accept plural and past forms: `delivered`/`delivery`,
`open`/`opens`/`opened`, `click`/`clicks`/`clicked`, `conversion`/`conversions`/`converted`/`purchase`,
`unsubscribe`/`unsubscribed`/`unsub`, `complaint`/`complained`/`spamreport`/`abuse`, `bounce`/`bounced`, and
`machine_open` (an open with machine = true). Any other name is refused (exit 2), naming the file, the column
and example rows. Timestamps: ISO 8601 (a time without a zone is UTC), a date, or unix seconds (milliseconds
when above 1e11).

**sendgrid** — the Event Webhook payload as SendGrid documents it: a JSON array of event objects, one object
per line, or one array (one POST body) per line. Fields read: `email`, `timestamp` (unix seconds), `event`,
`sg_event_id` (the dedup key), `sg_machine_open` (on opens), and the custom args (`custom_args`/`unique_args`
appear as top-level keys of each event; also accepted nested under `custom_args` or `unique_args`):
`customer_id` identifies the recipient when present (otherwise the email does), `cpo_run` the run.
SendGrid warns that custom args are stored as non-PII: send the customer_id, never an email or name.

| SendGrid event                            | cpo event                                                |
| ----------------------------------------- | -------------------------------------------------------- |
| delivered                                 | delivered                                                |
| open                                      | open (machine when `sg_machine_open` is true)            |
| click                                     | click                                                    |
| bounce (type bounce or blocked), dropped  | bounce                                                   |
| spamreport                                | complaint                                                |
| unsubscribe, group_unsubscribe            | unsubscribe                                              |
| processed, deferred, group_resubscribe, account_status_change | ignored, counted in `ignored_event_kinds` |
| conversion (not a SendGrid event)         | conversion, with `value`: post your own conversion events to the same endpoint/file in the webhook's shape (`email` or `customer_id`, `timestamp`, `event: "conversion"`, `value`, a unique `sg_event_id`) |

Any other event name is refused: the file is probably not SendGrid's.

**mailchimp** — Mailchimp Marketing API reports, as JSON: one object, an array of objects (pages), or one
object per line. Each object may carry any of these top-level lists (the responses of the endpoints named,
merged or side by side):

| key             | endpoint                                     | cpo events                                           |
| --------------- | -------------------------------------------- | ---------------------------------------------------- |
| `emails`        | GET /reports/{campaign_id}/email-activity    | `activity[].action`: open, click, bounce (`type` hard/soft) |
| `members`       | GET /reports/{campaign_id}/open-details      | opens; `opens[].is_proxy_open` marks machine opens   |
| `unsubscribes`  | GET /reports/{campaign_id}/unsubscribed      | unsubscribe (`timestamp`)                            |
| `abuse_reports` | GET /reports/{campaign_id}/abuse-reports     | complaint (`date`; `id` is the dedup key)            |
| `orders`        | GET /ecommerce/stores/{store_id}/orders (filter on the campaign_id) | conversion: `customer.email_address`, `order_total` as value, `processed_at_foreign`, `id` as dedup key |

Or as CSV: the email-activity response flattened to one row per activity (as ETL tools such as Stitch's
`reports_email_activity` table write it): `email_address` (or `Email Address`/`email`), `action`, `timestamp`,
optional `type`, `url`, `ip`, `is_proxy_open`; actions open, click, bounce, and also `unsubscribe` and
`abuse` rows if you add them.

Not available from Mailchimp: no delivered events (a recipient counts as delivered unless it bounced, which
is how Mailchimp itself counts "successful deliveries"); no event ids in email-activity (duplicates are found
by recipient, event, timestamp and value); no machine flag in email-activity: Mailchimp marks Apple MPP
opens only in open-details (`is_proxy_open`), so export `members` too, or machine opens count as opens;
conversions only through e-commerce `orders`. A `type` of soft bounce is still a bounce here.

## From events to outcomes

`outcomes_from_events(events, sends)` joins events to the run's `sends.csv` rows — on customer_id when the
event has one, else on the email, trimmed and compared case-insensitively — and returns one row per non-seed
recipient (`customer_id`, `arm`, `variant_id`, `segment` when present, then `delivered`, `opened`, `clicked`,
`converted`, `revenue`, `unsubscribed`, `complained`; recipients without events get zeros), and counts:

* duplicates (at-least-once redelivery) count once: same `event_id`, or, without one, the same recipient,
  event, timestamp and value;
* machine opens are not opens. A click is a person's engagement, so a click makes `opened` 1 even when the
  only open seen was a machine open (or none: images blocked), as Mailchimp and SendGrid count it too;
* `delivered`: 0 when the recipient bounced, even if a delivered event also came. Otherwise 1 on a delivered
  event or any sign of receipt (an open, machine or not, a click, an unsubscribe or a complaint). When the
  events hold no delivered event at all (Mailchimp, or a CSV of engagement only) every recipient who did not
  bounce counts as delivered; `counts["delivered_basis"]` says which rule applied;
* `revenue` is the sum of the values of the recipient's distinct conversion events (a missing value is 0);
* unsubscribes and complaints count once per recipient; a later resubscribe does not undo an unsubscribe
  (a guardrail measures the reaction to the message);
* events of seed-list rows, of recipients not in `sends`, of an email shared by several sends rows, and of
  another run (`run` set and not the run given) are dropped and counted.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from tasks.errors import InputError
from tasks.files import decode, read_table, unneutralised
from tasks.privacy import mask, mask_text

EVENTS = ("delivered", "open", "click", "conversion", "unsubscribe", "complaint", "bounce")
FORMATS = ("generic", "sendgrid", "mailchimp")
SCHEMA = {"recipient": pl.String, "key_kind": pl.String, "event": pl.String,
          "timestamp": pl.Datetime("us", "UTC"), "value": pl.Float64, "machine": pl.Boolean,
          "event_id": pl.String, "run": pl.String}
CHECK_ROWS = 500_000  # events checked by Great Expectations at a time
OUTCOMES = ("delivered", "opened", "clicked", "converted", "revenue", "unsubscribed", "complained")

GENERIC_NAMES = {
    "delivered": "delivered", "delivery": "delivered", "deliveries": "delivered", "deliver": "delivered",
    "open": "open", "opens": "open", "opened": "open",
    "click": "click", "clicks": "click", "clicked": "click",
    "conversion": "conversion", "conversions": "conversion", "converted": "conversion", "convert": "conversion",
    "purchase": "conversion", "purchases": "conversion", "purchased": "conversion",
    "unsubscribe": "unsubscribe", "unsubscribes": "unsubscribe", "unsubscribed": "unsubscribe",
    "unsub": "unsubscribe", "unsubs": "unsubscribe",
    "complaint": "complaint", "complaints": "complaint", "complained": "complaint", "spamreport": "complaint",
    "spam_report": "complaint", "spam": "complaint", "abuse": "complaint",
    "bounce": "bounce", "bounces": "bounce", "bounced": "bounce",
    "machine_open": "open", "machine_opens": "open", "machine_opened": "open",
}
SENDGRID_NAMES = {"delivered": "delivered", "open": "open", "click": "click", "bounce": "bounce",
                  "dropped": "bounce", "spamreport": "complaint", "unsubscribe": "unsubscribe",
                  "group_unsubscribe": "unsubscribe", "conversion": "conversion"}
SENDGRID_IGNORED = {"processed", "deferred", "group_resubscribe", "account_status_change"}
MAILCHIMP_ACTIONS = {"open": "open", "click": "click", "bounce": "bounce", "unsubscribe": "unsubscribe",
                     "unsub": "unsubscribe", "abuse": "complaint", "complaint": "complaint"}
TRUE = {"true", "1", "yes", "y", "t"}
FALSE = {"false", "0", "no", "n", "f", ""}


# ----------------------------------------------------------------------------------------------- reading

def read_events(path: str | Path, fmt: str = "generic") -> pl.DataFrame:
    """The normalised events of an ESP export (see the module docstring for each format)."""
    return read_events_info(path, fmt)[0]


def read_events_info(path: str | Path, fmt: str = "generic") -> tuple[pl.DataFrame, dict]:
    """The normalised events and what was read but is not an outcome (`ignored_event_kinds`)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r} is not known; use one of {', '.join(FORMATS)}")
    if fmt == "generic":
        rows, info = _generic(path), {}
    elif fmt == "sendgrid":
        rows, info = _sendgrid(path)
    else:
        rows, info = _mailchimp(path)
    frame = rows if isinstance(rows, pl.DataFrame) else _frame(rows, path)
    return frame, {"format": fmt, "ignored_event_kinds": {}, **info}


def _frame(rows: dict[str, list], path: Path) -> pl.DataFrame:
    raw_ts = rows.pop("timestamp")
    parsed, bad = _timestamps(raw_ts)
    if bad:
        examples = "; ".join(f"{where}: timestamp={mask_text(str(raw_ts[i]))!r}"
                             for i, where in bad[:5])
        raise InputError(f"{path}: column 'timestamp': {len(bad)} value(s) are not a date and time "
                         f"(ISO 8601 such as 2026-11-24T10:15:00Z, or unix seconds); e.g. {examples}")
    rows["timestamp"] = parsed
    return pl.DataFrame({k: rows[k] for k in SCHEMA}, schema=SCHEMA)


def _empty_rows() -> dict[str, list]:
    return {k: [] for k in SCHEMA}


def _add(rows: dict[str, list], recipient, key_kind, event, timestamp, value=None, machine=False,
         event_id=None, run=None, where: str = "") -> None:
    rows["recipient"].append(recipient)
    rows["key_kind"].append(key_kind)
    rows["event"].append(event)
    rows["timestamp"].append((timestamp, where))
    rows["value"].append(value)
    rows["machine"].append(machine)
    rows["event_id"].append(event_id)
    rows["run"].append(run)


def _timestamps(values: list[tuple[object, str]]) -> tuple[list[datetime | None], list[tuple[int, str]]]:
    """Parsed UTC datetimes, and (index, where) of every value that does not parse."""
    out, bad, cache = [], [], {}
    for i, (value, where) in enumerate(values):
        key = (type(value), value) if not isinstance(value, (dict, list)) else None
        if key is not None and key in cache:
            out.append(cache[key])
            continue
        try:
            parsed = _to_utc(value)
        except (ValueError, TypeError, OverflowError, OSError):
            bad.append((i, where))
            parsed = None
        if key is not None:
            cache[key] = parsed
        out.append(parsed)
    values[:] = [v for v, _ in values]  # the raw values, for the error message
    return out, bad


def _to_utc(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("not finite")
        seconds = value / 1000 if abs(value) > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str):
        raise ValueError("not a time")
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return _to_utc(float(text))
    text = re.sub(r"\s*(?:UTC|GMT)$", "+00:00", text)
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def _flag(value: object, where: str, path: Path, column: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE | FALSE:
        return text in TRUE
    raise InputError(f"{path}: {column} must be true or false; {where} has {mask_text(str(value))!r}")


def _number(value: object, where: str, path: Path, column: str = "value") -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InputError(f"{path}: {column} must be a number; {where} has {value!r}")
    try:
        number = float(str(value).strip().lstrip("$€£").replace(",", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {column} must be a number; {where} has {mask_text(str(value))!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{path}: {column} must be a finite number; {where} has {value!r}")
    return number


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _masked(value: object) -> str:
    return mask(value) if value is not None else "None"


# ------------------------------------------------------------------------------------------------ generic

def _generic(path: Path) -> pl.DataFrame | dict[str, list]:
    df = read_table(path, "events file", text_columns=("customer_id", "email", "event_id", "cpo_run"))
    lower = {c.lower().strip(): c for c in df.columns}
    lower.update({re.sub(r"[^0-9a-z]+", "_", c.lower()).strip("_"): c for c in df.columns})
    names = {"customer_id": lower.get("customer_id"),
             "email": lower.get("email") or lower.get("email_address"),
             "event": lower.get("event") or lower.get("event_type"),
             "timestamp": lower.get("timestamp") or lower.get("time") or lower.get("event_time"),
             "value": lower.get("value") or lower.get("revenue") or lower.get("amount"),
             "machine": lower.get("machine") or lower.get("machine_open"),
             "event_id": lower.get("event_id"), "run": lower.get("cpo_run") or lower.get("run")}
    missing = [c for c in ("event", "timestamp") if names[c] is None]
    if names["customer_id"] is None and names["email"] is None:
        missing.insert(0, "customer_id or email")
    if missing:
        raise InputError(f"{path}: required column(s) {', '.join(missing)} missing; the events file has "
                         f"{', '.join(df.columns) or 'no columns'} (a generic events file has customer_id or "
                         f"email, event, timestamp and optionally value)")
    df = df.filter(~pl.all_horizontal(pl.all().is_null()))
    fast = _generic_columns(df, names)
    return fast if fast is not None else _generic_rows(df, names, path)


ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\dZ$"  # 2026-11-24T10:15:00Z: what services write


def _generic_columns(df: pl.DataFrame, names: dict) -> pl.DataFrame | None:
    """The events of a generic file column by column (a file of millions of events), or None when a value needs
    the row-by-row reader, which reads every form it accepts and names the row of any it refuses. Both give the
    same events (a Hypothesis test)."""
    schema = df.schema
    if any(names[k] and schema[names[k]] != pl.String for k in ("customer_id", "email", "event", "event_id", "run")):
        return None  # str() of another type: row by row

    def text(key: str) -> pl.Expr:
        t = pl.col(names[key]).str.strip_chars() if names[key] else pl.lit(None, pl.String)
        return pl.when(t == "").then(None).otherwise(t)

    raw = text("event").str.to_lowercase().str.replace_all(r"[\s-]+", "_")
    event = raw.replace_strict(GENERIC_NAMES, default=None, return_dtype=pl.String)
    cid, email, ok = text("customer_id"), text("email"), [event.is_not_null()]
    ok.append(cid.is_not_null() | email.is_not_null())
    flag, kind = pl.lit(False), schema.get(names["machine"]) if names["machine"] else None
    if kind == pl.Boolean:
        flag = pl.col(names["machine"]).fill_null(False)
    elif kind is not None and kind.is_numeric():
        flag = pl.col(names["machine"]) == 1
        ok.append(pl.col(names["machine"]).is_null() | pl.col(names["machine"]).is_in([0, 1]))
    elif kind == pl.String:
        word = pl.col(names["machine"]).str.strip_chars().str.to_lowercase()
        flag = word.is_in(list(TRUE)).fill_null(False)
        ok.append(word.is_null() | word.is_in(list(TRUE | FALSE)))
    elif kind is not None:
        return None
    value, kind = pl.lit(None, pl.Float64), schema.get(names["value"]) if names["value"] else None
    if kind is not None and kind.is_numeric():
        value = pl.col(names["value"]).cast(pl.Float64)
    elif kind == pl.String:
        given = pl.col(names["value"]).str.strip_chars()
        given = pl.when(given == "").then(None).otherwise(given)
        value = given.str.strip_chars_start("$€£").str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)
        ok.append(given.is_null() | value.is_not_null())
    elif kind is not None:
        return None
    ok.append(value.is_null() | value.is_finite())
    stamp = pl.col(names["timestamp"])
    iso = (stamp.str.strip_chars().str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False)
           .alias("_iso") if schema[names["timestamp"]] == pl.String else pl.lit(None, pl.Datetime("us", "UTC")))
    iso = pl.when(stamp.cast(pl.String).str.strip_chars().str.contains(ISO_UTC)).then(iso)  # chrono takes :60
    out = df.select(
        pl.coalesce(cid, email).alias("recipient"),
        pl.when(cid.is_not_null()).then(pl.lit("customer_id")).otherwise(pl.lit("email")).alias("key_kind"),
        event.alias("event"), iso.alias("timestamp"), value.alias("value"),
        ((raw.str.starts_with("machine_") | flag) & (event == "open")).fill_null(False).alias("machine"),
        text("event_id").alias("event_id"), text("run").alias("run"), pl.all_horizontal(ok).alias("_ok"),
        stamp.alias("_stamp"))
    if not out["_ok"].all():
        return None
    other = out.filter(pl.col("timestamp").is_null() & pl.col("_stamp").is_not_null())
    if other.height:  # any other form of a time, one value at a time (unix seconds, offsets, naive)
        values = other["_stamp"].unique(maintain_order=True).to_list()
        parsed, bad = _timestamps([(v, "") for v in values])
        if bad:
            return None
        out = out.with_columns(pl.col("timestamp").fill_null(
            pl.col("_stamp").replace_strict(values, parsed, default=None, return_dtype=pl.Datetime("us", "UTC"))))
    return out.select(pl.col(k).cast(t) for k, t in SCHEMA.items())


def _generic_rows(df: pl.DataFrame, names: dict, path: Path) -> dict[str, list]:
    cols = {k: (df[c].to_list() if c else [None] * df.height) for k, c in names.items()}
    events = [_text(e) for e in cols["event"]]
    canon = [GENERIC_NAMES.get(re.sub(r"[\s-]+", "_", e.lower())) if e else None for e in events]
    bad = [i for i, c in enumerate(canon) if c is None]
    if bad:
        shown = "; ".join(_generic_example(i, cols, names) for i in bad[:5])
        kinds = sorted({mask_text(str(events[i])) for i in bad})[:10]
        raise InputError(f"{path}: column '{names['event']}': {len(bad)} row(s) have an event that is not one of "
                         f"{', '.join(EVENTS)} (plural and past forms accepted): {kinds}; e.g. {shown}")
    rows = _empty_rows()
    for i, event in enumerate(canon):
        where = f"row {i + 1}"
        cid, email = _text(cols["customer_id"][i]), _text(cols["email"][i])
        if cid is None and email is None:
            raise InputError(f"{path}: {where} has neither a customer_id nor an email; every event must name "
                             f"its recipient")
        raw_name = re.sub(r"[\s-]+", "_", events[i].lower())
        machine = raw_name.startswith("machine_") or _flag(cols["machine"][i], where, path, "machine")
        _add(rows, cid or email, "customer_id" if cid else "email", event, cols["timestamp"][i],
             _number(cols["value"][i], where, path), machine and event == "open", _text(cols["event_id"][i]),
             _text(cols["run"][i]), where)
    return rows


def _generic_example(i: int, cols: dict, names: dict) -> str:
    parts = [f"row {i + 1}"]
    for key in ("customer_id", "email", "event", "timestamp"):
        if names[key]:
            value = cols[key][i]
            parts.append(f"{names[key]}={(_masked(value) if key == 'email' else mask_text(str(value)))!r}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------- JSON in

def _json_items(path: Path, what: str) -> list:
    """The top-level JSON values of a file: a whole JSON document, or one per line (JSON Lines)."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the {what} file")
    if not path.is_file():
        raise InputError(f"{path}: {what} file not found")
    data = path.read_bytes()
    if not data.strip():
        raise InputError(f"{path}: the {what} file is empty")
    text = decode(data, path)[0].lstrip("\ufeff")
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as whole:
        lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) < 2:
            raise InputError(f"{path}: not valid JSON ({whole.msg} at line {whole.lineno}, column {whole.colno}); "
                             f"the {what} must be a JSON array of events or one JSON object per line") from None
        out = []
        for n, line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: line {n} is not valid JSON ({e.msg} at column {e.colno}); the {what} "
                                 f"must be a JSON array of events or one JSON object per line") from None
        return out


# ---------------------------------------------------------------------------------------------- sendgrid

def _sendgrid(path: Path) -> tuple[dict[str, list], dict]:
    items = []
    for top in _json_items(path, "SendGrid events"):
        items.extend(top if isinstance(top, list) else [top])
    rows, ignored, unknown = _empty_rows(), Counter(), Counter()
    for n, item in enumerate(items, 1):
        where = f"event #{n}"
        if not isinstance(item, dict):
            raise InputError(f"{path}: {where} is a JSON {type(item).__name__}, not an event object; SendGrid's "
                             f"Event Webhook posts objects with email, timestamp and event")
        kind = _text(item.get("event"))
        if kind is None:
            raise InputError(f"{path}: {where} has no 'event' field ({_sg_example(item)}); is this SendGrid's "
                             f"Event Webhook JSON? Try --format generic or mailchimp")
        kind = kind.lower()
        if kind in SENDGRID_IGNORED:
            ignored[kind] += 1
            continue
        if kind not in SENDGRID_NAMES:
            unknown[kind] += 1
            continue
        args = {}
        for nested in ("unique_args", "custom_args"):
            if isinstance(item.get(nested), dict):
                args.update(item[nested])
        args.update(item)  # top-level custom args, as the webhook posts them, win
        cid, email = _text(args.get("customer_id")), _text(item.get("email"))
        if cid is None and email is None:
            raise InputError(f"{path}: {where} ({kind}) has neither 'email' nor a 'customer_id' custom arg "
                             f"({_sg_example(item)})")
        if "timestamp" not in item:
            raise InputError(f"{path}: {where} ({kind}) has no 'timestamp' ({_sg_example(item)})")
        machine = kind == "open" and _flag(item.get("sg_machine_open"), where, path, "sg_machine_open")
        value = _number(item.get("value"), where, path) if kind == "conversion" else None
        _add(rows, cid or email, "customer_id" if cid else "email", SENDGRID_NAMES[kind], item.get("timestamp"),
             value, machine, _text(item.get("sg_event_id")), _text(args.get("cpo_run")), where)
    if unknown:
        raise InputError(f"{path}: {sum(unknown.values())} event(s) of kinds SendGrid's Event Webhook does not "
                         f"document: {sorted(unknown)[:10]}; known: {', '.join(sorted(SENDGRID_NAMES))}, and "
                         f"{', '.join(sorted(SENDGRID_IGNORED))} (ignored). Is this the right --format?")
    return rows, {"ignored_event_kinds": dict(sorted(ignored.items()))}


def _sg_example(item: dict) -> str:
    keys = ("event", "email", "customer_id", "timestamp", "sg_event_id")
    return ", ".join(f"{k}={(_masked(item[k]) if k == 'email' else mask_text(str(item[k])))!r}"
                     for k in keys if k in item) or "no known fields"


# --------------------------------------------------------------------------------------------- mailchimp

def _mailchimp(path: Path) -> tuple[dict[str, list], dict]:
    if path.is_file() and path.read_bytes()[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        return _mailchimp_json(path)
    return _mailchimp_csv(path), {}


MAILCHIMP_KEYS = ("emails", "members", "unsubscribes", "abuse_reports", "orders")


def _mailchimp_json(path: Path) -> tuple[dict[str, list], dict]:
    pages = []
    for top in _json_items(path, "Mailchimp report"):
        pages.extend(top if isinstance(top, list) else [top])
    found = Counter()
    rows = _empty_rows()
    proxy: dict[tuple, list] = {}   # open-details: (email, time) -> [is_proxy_open, email, raw time]
    activity_opens: set[tuple[str, object]] = set()
    for p, page in enumerate(pages, 1):
        if not isinstance(page, dict) or not any(isinstance(page.get(k), list) for k in MAILCHIMP_KEYS):
            keys = sorted(page)[:10] if isinstance(page, dict) else type(page).__name__
            raise InputError(f"{path}: object #{p} is not a Mailchimp report: expected a top-level list "
                             f"{', '.join(map(repr, MAILCHIMP_KEYS))} (GET /reports/{{campaign_id}}/email-activity "
                             f"returns 'emails'); found {keys}")
        for n, member in enumerate(page.get("emails") or [], 1):
            email = _mc_email(member, path, f"emails[{n}] of object #{p}")
            for a, act in enumerate(member.get("activity") or [], 1):
                where = f"emails[{n}].activity[{a}] of object #{p}"
                if not isinstance(act, dict):
                    raise InputError(f"{path}: {where} is not an object")
                action = (_text(act.get("action")) or "").lower()
                if action not in MAILCHIMP_ACTIONS:
                    raise InputError(f"{path}: {where} has action {mask_text(str(act.get('action')))!r}; "
                                     f"Mailchimp's email activity has open, click and bounce")
                event = MAILCHIMP_ACTIONS[action]
                if event == "open":
                    activity_opens.add((email.lower(), _ts_key(act.get("timestamp"))))
                _add(rows, email, "email", event, act.get("timestamp"), None,
                     _flag(act.get("is_proxy_open"), where, path, "is_proxy_open") if event == "open" else False,
                     None, None, where)
                found["activity"] += 1
        for n, member in enumerate(page.get("members") or [], 1):
            email = _mc_email(member, path, f"members[{n}] of object #{p}")
            for o, one in enumerate(member.get("opens") or [], 1):
                where = f"members[{n}].opens[{o}] of object #{p}"
                if not isinstance(one, dict):
                    raise InputError(f"{path}: {where} is not an object")
                key = (email.lower(), _ts_key(one.get("timestamp")))
                flagged = _flag(one.get("is_proxy_open"), where, path, "is_proxy_open")
                entry = proxy.setdefault(key, [False, email, one.get("timestamp")])
                entry[0] = entry[0] or flagged
        for n, member in enumerate(page.get("unsubscribes") or [], 1):
            where = f"unsubscribes[{n}] of object #{p}"
            _add(rows, _mc_email(member, path, where), "email", "unsubscribe", member.get("timestamp"),
                 where=where)
            found["unsubscribes"] += 1
        for n, member in enumerate(page.get("abuse_reports") or [], 1):
            where = f"abuse_reports[{n}] of object #{p}"
            report_id = _text(member.get("id"))
            _add(rows, _mc_email(member, path, where), "email", "complaint", member.get("date"),
                 event_id=f"abuse:{report_id}" if report_id else None, where=where)
            found["abuse_reports"] += 1
        for n, order in enumerate(page.get("orders") or [], 1):
            where = f"orders[{n}] of object #{p}"
            if not isinstance(order, dict):
                raise InputError(f"{path}: {where} is not an object")
            customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
            email = _text(customer.get("email_address")) or _text(order.get("email_address"))
            if email is None:
                raise InputError(f"{path}: {where} has no customer.email_address")
            order_id = _text(order.get("id"))
            _add(rows, email, "email", "conversion", order.get("processed_at_foreign") or order.get("updated_at_foreign"),
                 _number(order.get("order_total"), where, path, "order_total"), False,
                 f"order:{order_id}" if order_id else None, None, where)
            found["orders"] += 1
    # open-details: flag the email-activity opens it marks as proxy opens; add the opens email-activity lacks
    for i, (event, recipient) in enumerate(zip(rows["event"], rows["recipient"])):
        if event == "open" and proxy.get((recipient.lower(), _ts_key(rows["timestamp"][i][0])), [False])[0]:
            rows["machine"][i] = True
    only_in_details = [(key, entry) for key, entry in proxy.items() if key not in activity_opens]
    for _, (flagged, email, stamp) in only_in_details:
        _add(rows, email, "email", "open", stamp, None, flagged, None, None, "open-details")
    return rows, {"mailchimp_sections": dict(found), "open_details": bool(proxy),
                  "opens_only_in_open_details": len(only_in_details)}


def _ts_key(value: object) -> object:
    """A timestamp as a matching key: the instant when it parses, the raw value otherwise."""
    try:
        return _to_utc(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return value


def _mc_email(member: object, path: Path, where: str) -> str:
    if not isinstance(member, dict):
        raise InputError(f"{path}: {where} is not an object")
    email = _text(member.get("email_address"))
    if email is None:
        raise InputError(f"{path}: {where} has no email_address")
    return email


def _mailchimp_csv(path: Path) -> dict[str, list]:
    df = read_table(path, "Mailchimp activity file", text_columns=("email_address", "Email Address", "email"))
    norm = {re.sub(r"[^0-9a-z]+", "_", c.lower()).strip("_"): c for c in df.columns}
    email_col = norm.get("email_address") or norm.get("email")
    action_col = norm.get("action") or norm.get("activity")
    ts_col = norm.get("timestamp") or norm.get("time") or norm.get("date")
    missing = [n for n, c in (("email_address", email_col), ("action", action_col), ("timestamp", ts_col)) if c is None]
    if missing:
        raise InputError(f"{path}: required column(s) {', '.join(missing)} missing; a Mailchimp activity CSV has "
                         f"one row per activity with email_address, action and timestamp; the file has "
                         f"{', '.join(df.columns)}")
    proxy_col = norm.get("is_proxy_open")
    df = df.filter(~pl.all_horizontal(pl.all().is_null()))
    emails, actions, stamps = df[email_col].to_list(), df[action_col].to_list(), df[ts_col].to_list()
    proxies = df[proxy_col].to_list() if proxy_col else [None] * df.height
    bad = [i for i, a in enumerate(actions) if (_text(a) or "").lower() not in MAILCHIMP_ACTIONS]
    if bad:
        shown = "; ".join(f"row {i + 1}: {email_col}={_masked(emails[i])!r}, {action_col}="
                          f"{mask_text(str(actions[i]))!r}" for i in bad[:5])
        raise InputError(f"{path}: column '{action_col}': {len(bad)} row(s) have an action that is not open, "
                         f"click or bounce (or unsubscribe, abuse); e.g. {shown}")
    rows = _empty_rows()
    for i, (email, action) in enumerate(zip(emails, actions)):
        where = f"row {i + 1}"
        email = _text(email)
        if email is None:
            raise InputError(f"{path}: {where} has no {email_col}")
        event = MAILCHIMP_ACTIONS[_text(action).lower()]
        machine = event == "open" and _flag(proxies[i], where, path, "is_proxy_open")
        _add(rows, email, "email", event, stamps[i], None, machine, None, None, where)
    return rows


# ---------------------------------------------------------------------------------------------- outcomes

def normalised_key(events: pl.DataFrame) -> pl.Expr:
    """The join key: a customer_id trimmed and as it was before sends.csv quoted it (`'=X004` -> `=X004`: the
    service may send back either), an email trimmed and lower-cased."""
    trimmed = pl.col("recipient").cast(pl.String).str.strip_chars()
    return pl.when(pl.col("key_kind") == "email").then(trimmed.str.to_lowercase()).otherwise(unneutralised(trimmed))


def dedupe(events: pl.DataFrame) -> pl.DataFrame:
    """One row per distinct event: the same event_id, or without one the same key, event, timestamp and value."""
    keyed = events.with_columns(normalised_key(events).alias("_key"))
    with_id = keyed.filter(pl.col("event_id").is_not_null()).unique(subset=["key_kind", "event_id"],
                                                                     keep="first", maintain_order=True)
    without = keyed.filter(pl.col("event_id").is_null())
    # machine is part of the identity only in that a flagged copy wins (a proxy open is the same open)
    without = (without.sort("machine", descending=True, maintain_order=True)
               .unique(subset=["_key", "key_kind", "event", "timestamp", "value"], keep="first", maintain_order=True))
    return pl.concat([with_id, without])


def outcomes_from_events(events: pl.DataFrame, sends: pl.DataFrame, read_info: dict | None = None,
                         run_id: str | None = None) -> tuple[pl.DataFrame, dict]:
    """One outcome row per non-seed sends row, and the counts of what was dropped and why (no emails): the
    one-partition case of `distinct_events`, `recipient_outcomes` per partition and `outcome_counts`."""
    distinct, counts = distinct_events(events, read_info, run_id)
    shared = shared_emails(sends.lazy())
    out, part = recipient_outcomes(distinct, sends, shared, any_delivered(distinct))
    return out, outcome_counts(distinct, counts, shared, [part])


def distinct_events(events: pl.DataFrame, read_info: dict | None = None,
                    run_id: str | None = None) -> tuple[pl.DataFrame, dict]:
    """The file's distinct events of this run (`_key`: the join key), and the counts of what was read."""
    ignored = dict((read_info or {}).get("ignored_event_kinds") or {})
    counts: dict = {"events_read": events.height, "ignored_event_kinds": ignored,
                    "ignored_events": sum(ignored.values())}
    distinct = dedupe(events.select(list(SCHEMA)))
    counts["duplicates"] = events.height - distinct.height
    counts["machine_opens"] = distinct.filter((pl.col("event") == "open") & pl.col("machine")).height
    if run_id is not None:
        other = distinct.filter(pl.col("run").is_not_null() & (pl.col("run") != run_id))
        counts["other_run_events"] = other.height
        distinct = distinct.filter(pl.col("run").is_null() | (pl.col("run") == run_id))
    return distinct, counts


def any_delivered(distinct: pl.DataFrame) -> bool:
    """Whether the file reports deliveries at all (else every recipient who did not bounce was delivered)."""
    return distinct.filter(pl.col("event") == "delivered").height > 0


def _email(column: str = "email") -> pl.Expr:
    return pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()


def shared_emails(sends: pl.LazyFrame) -> pl.Series:
    """The addresses (trimmed, lower-cased) of more than one sends row, over every partition: an event keyed by
    such an address cannot say whose it is."""
    if "email" not in sends.collect_schema():
        return pl.Series("_email", [], pl.String)
    return (sends.select(_email().alias("_email")).filter(pl.col("_email").is_not_null() & (pl.col("_email") != ""))
            .group_by("_email").len().filter(pl.col("len") > 1).collect()["_email"].sort())


def events_of(distinct: pl.LazyFrame, sends: pl.DataFrame) -> pl.DataFrame:
    """The distinct events keyed by one of these sends rows' ids or addresses: all `recipient_outcomes` can
    use for them (a partition need not hold every event of the file)."""
    keys = [pl.col("customer_id").cast(pl.String).str.strip_chars()]
    if "email" in sends.columns:
        keys.append(_email())
    wanted = pl.concat([sends.select(k.alias("_key")) for k in keys])["_key"].drop_nulls().unique()
    return distinct.filter(pl.col("_key").is_in(wanted.implode())).collect()


def recipient_outcomes(distinct: pl.DataFrame, sends: pl.DataFrame, shared: pl.Series,
                       delivered_events: bool) -> tuple[pl.DataFrame, dict]:
    """One partition of the sends (population) rows: one outcome row per non-seed row, in its order, from the
    events that are its recipients' (`shared` addresses excluded: ambiguous), and this partition's counts."""
    for column in ("customer_id", "arm"):
        if column not in sends.columns:
            raise InputError(f"sends: required column {column!r} missing; columns are {', '.join(sends.columns)}")
    seed = (pl.col("seed").cast(pl.String).str.strip_chars().is_in(["1", "true", "True", "1.0"]).fill_null(False)
            if "seed" in sends.columns else pl.lit(False))
    table = sends.with_row_index("_row").with_columns(
        seed.alias("_seed"),
        pl.col("customer_id").cast(pl.String).str.strip_chars().alias("_cid"),
        (_email() if "email" in sends.columns else pl.lit(None, pl.String)).alias("_email"))
    by_cid = table.filter(pl.col("_cid").is_not_null()).group_by("_cid").agg(pl.col("_row").first().alias("_row_c"))
    by_email = (table.filter(pl.col("_email").is_not_null() & (pl.col("_email") != "") &
                             ~pl.col("_email").is_in(shared.implode()))
                .group_by("_email").agg(pl.col("_row").first().alias("_row_e")))
    joined = (distinct
              .join(by_cid, left_on="_key", right_on="_cid", how="left")
              .join(by_email, left_on="_key", right_on="_email", how="left")
              .with_columns(pl.when(pl.col("key_kind") == "customer_id").then(pl.col("_row_c"))
                            .otherwise(pl.col("_row_e")).alias("_row")))
    matched = joined.filter(pl.col("_row").is_not_null()).join(table.select("_row", "_seed"), on="_row", how="left")
    used = matched.filter(~pl.col("_seed"))
    # The same event keyed once by customer_id and once by email is one event of one recipient.
    once = pl.concat([used.filter(pl.col("event_id").is_not_null()).unique(["_row", "event_id"], keep="first",
                                                                         maintain_order=True),
                      used.filter(pl.col("event_id").is_null()).unique(["_row", "event", "timestamp", "value"],
                                                                       keep="first", maintain_order=True)])
    counts = {"matched_events": matched.height, "matched_keys": matched.select("key_kind", "_key").unique().height,
              "seed_events": matched.filter(pl.col("_seed")).height, "duplicates": used.height - once.height,
              "events_used": once.height}
    used = once

    is_ = lambda name: (pl.col("event") == name)  # noqa: E731
    per_row = used.group_by("_row").agg(
        is_("delivered").any().alias("_delivered_event"),
        is_("bounce").any().alias("_bounced"),
        (is_("open") & ~pl.col("machine")).any().alias("_human_open"),
        (is_("open") | is_("click") | is_("unsubscribe") | is_("complaint")).any().alias("_receipt"),
        is_("click").any().alias("_clicked"),
        is_("conversion").any().alias("_converted"),
        pl.when(is_("conversion")).then(pl.col("value").fill_null(0.0)).otherwise(0.0).sum().alias("_revenue"),
        is_("unsubscribe").any().alias("_unsubscribed"),
        is_("complaint").any().alias("_complained"))

    recipients = table.filter(~pl.col("_seed")).join(per_row, on="_row", how="left")
    flag = lambda c: pl.col(c).fill_null(False)  # noqa: E731
    delivered = ((flag("_delivered_event") | flag("_receipt")) if delivered_events else pl.lit(True)) & ~flag("_bounced")
    keep = [c for c in ("customer_id", "arm", "variant_id", "segment") if c in sends.columns]
    out = recipients.sort("_row").select(
        *keep,
        delivered.cast(pl.Int8).alias("delivered"),
        (flag("_human_open") | flag("_clicked")).cast(pl.Int8).alias("opened"),
        flag("_clicked").cast(pl.Int8).alias("clicked"),
        flag("_converted").cast(pl.Int8).alias("converted"),
        pl.col("_revenue").fill_null(0.0).alias("revenue"),
        flag("_unsubscribed").cast(pl.Int8).alias("unsubscribed"),
        flag("_complained").cast(pl.Int8).alias("complained"),
        flag("_bounced").cast(pl.Int8).alias("bounced"))
    counts.update(recipients=out.height, seed_rows=table.filter(pl.col("_seed")).height,
                  bounced_recipients=recipients.filter(flag("_bounced")).height,
                  recipients_with_events=per_row.join(table.filter(~pl.col("_seed")).select("_row"), on="_row").height,
                  delivered_recipients=int(out["delivered"].sum()),
                  opened_via_click_only=recipients.filter(flag("_clicked") & ~flag("_human_open")).height)
    return out, counts


def outcome_counts(distinct: pl.DataFrame, counts: dict, shared: pl.Series, parts: list[dict]) -> dict:
    """The counts of the whole file from `distinct_events`' and each partition's: an id or an unshared address
    is one partition's, so what no partition matched (and is not ambiguous) is unknown."""
    total = lambda name: sum(p[name] for p in parts)  # noqa: E731
    ambiguous = distinct.filter((pl.col("key_kind") == "email") & pl.col("_key").is_in(shared.implode()))
    counts = {**counts, "duplicates": counts["duplicates"] + total("duplicates"),
              "ambiguous_email_events": ambiguous.height,
              "unknown_recipient_events": distinct.height - ambiguous.height - total("matched_events"),
              "unknown_recipients": (distinct.select("key_kind", "_key").unique().height
                                     - ambiguous.select("key_kind", "_key").unique().height - total("matched_keys")),
              "seed_events": total("seed_events"), "events_used": total("events_used"),
              "delivered_basis": "events" if any_delivered(distinct) else "sent_not_bounced"}
    for name in ("recipients", "seed_rows", "bounced_recipients", "recipients_with_events", "delivered_recipients",
                 "opened_via_click_only"):
        counts[name] = total(name)
    return counts


# ------------------------------------------------------------------------------------------- checkpoint

def validate_events(events: pl.DataFrame, source: str, docs_dir: Path | None = None):
    """Great Expectations checkpoint on the normalised events (expectations/events.json), CHECK_ROWS events at a
    time (GX checks a pandas copy): exit 2 naming each failed expectation with masked example rows, numbered in
    the whole file."""
    from tasks.checkpoints import run_checkpoint
    from tasks.partitions import bounds, where_in

    parts = bounds(events.height, CHECK_ROWS)
    for i, (offset, rows) in enumerate(parts):
        docs = None if docs_dir is None else Path(docs_dir) / (f"events-part-{i:05d}" if len(parts) > 1 else "")
        result = run_checkpoint("events", events.slice(offset, rows), docs)
        if not result.success:
            raise InputError(mask_text(f"{source}: the engagement events failed validation"
                                       f"{where_in(offset, rows, i, len(parts))}\n{result.rows_from(offset).summary()}"))
    return result