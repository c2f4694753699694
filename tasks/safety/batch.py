"""Screen any batch of messages (`cpo screen`): one verdict per input row, with the audit columns."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from tasks.errors import InputError
from tasks.files import read_table
from tasks.safety import Screener
from tasks.safety.rules import Message

VERDICT_COLUMNS = ["row", "decision", "screener", "hate", "self_harm", "sexual", "violence", "max_severity",
                   "rules_triggered", "reason"]


MESSAGE_FIELDS = ("preheader",)  # besides the text and subject columns: read as text when present
I64 = range(-2**63, 2**63)


def read_messages(path: str | Path, text_column: str = "text", subject_column: str | None = "subject") -> pl.DataFrame:
    """The messages of a CSV/Excel/Parquet file (read_table) or of JSON lines, one object per line. A JSON lines
    file is checked line by line, so every error names the line: UTF-8, valid JSON, an object without a key given
    twice, text/subject/preheader strings (or null), citations a string or a list of strings. Any other column is
    passed through to the output; one whose values are not all of one kind (numbers, text, true/false) or that
    holds objects or lists is passed through as JSON text, so polars never meets two types in one column."""
    path = Path(path)
    if path.suffix.lower() != ".jsonl":
        return read_table(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    rows = [_message_row(path, n, line, text_column, subject_column)
            for n, line in enumerate(path.read_bytes().split(b"\n"), 1) if line.strip()]
    if not rows:
        raise InputError(f"{path}: no messages (the file is empty; one JSON object per line, e.g. "
                         f'{{"{text_column}": "..."}})')
    for row in rows:  # one type for the column: a list of ids
        if row.get("citations") is not None:
            row["citations"] = citations_of(row["citations"])
    columns = list(dict.fromkeys(k for r in rows for k in r))
    kinds = {c: {_kind(r[c]) for r in rows if r.get(c) is not None} for c in columns if c != "citations"}
    as_text = {c for c, k in kinds.items() if len(k) > 1 or k & {"array", "object", "big integer"}}
    rows = [{c: json.dumps(r.get(c), ensure_ascii=False) if c in as_text and r.get(c) is not None
             and not isinstance(r[c], str) else r.get(c) for c in columns} for r in rows]
    return pl.DataFrame(rows, schema={c: pl.String if c in as_text else None for c in columns} if as_text else None,
                        infer_schema_length=None)


def _message_row(path: Path, n: int, line: bytes, text_column: str, subject_column: str | None) -> dict:
    where = f"{path}: line {n}"
    try:
        text = line.decode("utf-8-sig")  # a byte order mark at the start of a line (files joined) is not text
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 text (byte 0x{line[e.start]:02x} at position {e.start + 1}); "
                         "save the file as UTF-8") from None

    def no_repeats(pairs):
        keys = [k for k, _ in pairs]
        if repeated := sorted({k for k in keys if keys.count(k) > 1}):
            raise InputError(f"{where}: key {repeated[0]!r} appears more than once in one object")
        return dict(pairs)

    try:
        row = json.loads(text, object_pairs_hook=no_repeats)
    except (json.JSONDecodeError, RecursionError) as e:
        raise InputError(f"{where}: not valid JSON ({getattr(e, 'msg', 'nested too deeply')})") from None
    if not isinstance(row, dict):
        raise InputError(f"{where}: a JSON {_kind(row)}, not an object; each line must be one message such as "
                         f'{{"{text_column}": "..."}}')
    for field in (text_column, subject_column, *MESSAGE_FIELDS):
        if field and row.get(field) is not None and not isinstance(row[field], str):
            raise InputError(f"{where}: '{field}' is a JSON {_kind(row[field])}; it must be a string")
    cited = row.get("citations")
    if cited is not None and not isinstance(cited, str) and not (
            isinstance(cited, list) and all(isinstance(c, str) for c in cited)):
        raise InputError(f"{where}: 'citations' must be a list of document ids (strings) or one string of ids "
                         "separated by commas")
    return row


def _kind(value) -> str:
    """The JSON kind of a value, as polars needs one per column (an integer beyond 64 bits is not a number there)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "number" if value in I64 else "big integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def citations_of(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [c.strip() for c in str(value).replace(";", ",").split(",") if c.strip()]


def screen_rows(df: pl.DataFrame, screener: Screener, text_column: str, subject_column: str | None,
                source: Path) -> pl.DataFrame:
    if text_column not in df.columns:
        raise InputError(f"{source}: text column '{text_column}' not found (use --text-column); "
                         f"columns are: {', '.join(df.columns)}")
    out = []
    for i, r in enumerate(df.to_dicts(), 1):
        message = Message(subject=str(r.get(subject_column) or "") if subject_column else "",
                          body=str(r.get(text_column) or ""), preheader=str(r.get("preheader") or ""),
                          citations=citations_of(r.get("citations")))
        v = screener.screen(message)
        out.append({"row": i, "decision": v.decision, "screener": v.screener, "hate": v.hate,
                    "self_harm": v.self_harm, "sexual": v.sexual, "violence": v.violence,
                    "max_severity": v.max_severity, "rules_triggered": ";".join(v.rules_triggered), "reason": v.reason})
    verdicts = pl.DataFrame(out, schema_overrides={"rules_triggered": pl.String}) if out else pl.DataFrame(
        schema={c: pl.String for c in VERDICT_COLUMNS})
    keep = [c for c in df.columns if c not in VERDICT_COLUMNS]
    return pl.concat([df.select(keep), verdicts], how="horizontal") if out else verdicts
