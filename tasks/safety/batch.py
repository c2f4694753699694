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


def read_messages(path: str | Path) -> pl.DataFrame:
    path = Path(path)
    if path.suffix.lower() == ".jsonl":
        try:
            rows = [json.loads(line) for line in path.read_text("utf-8-sig").splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON lines: {e}") from None
        return pl.DataFrame(rows, infer_schema_length=None)
    return read_table(path)


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
