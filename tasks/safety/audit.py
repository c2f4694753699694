"""The audit log: our own append-only, hash-chained record of every screening decision and every event
of a run's life (approval, rejection, export, outcomes, rollout).

record_hash = SHA-256 of the JSON array of the row's other fields (contract column order, as strings,
`prev_hash` included); prev_hash of the first row is 64 zeros. Screening rows and event rows share one
chain. Each row is flushed and fsynced before the next, so evidence survives a crash.

Screening rows: `event` = "screen", `actor` = the screener that scored it. Event rows: `event` in EVENTS,
`decision` in approve / reject / record, `actor` who or what acted, `content_sha256` the hash of what the
event concerns, `reason` what happened; variant_id and segment empty, attempt 0, no severities.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from tasks.errors import InputError
from tasks.files import safe_cell
from tasks.records import Variant, Verdict

COLUMNS = ["run_id", "variant_id", "segment", "attempt", "decision", "screener", "hate", "self_harm", "sexual",
           "violence", "max_severity", "rules_triggered", "reason", "policy_version", "content_sha256",
           "screened_at", "prev_hash", "record_hash", "event", "actor"]
GENESIS = "0" * 64
SCREEN = "screen"
EVENTS = ("approval", "rejection", "export", "outcomes", "rollout")
EVENT_DECISIONS = ("approve", "reject", "record")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def record_hash(row: dict) -> str:
    fields = [str(row[c]) for c in COLUMNS if c != "record_hash"]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


class AuditLog:
    """Appends decisions and events to `path`; re-opening an existing log continues its chain (a resumed run,
    or `cpo approve` in another process)."""

    def __init__(self, path: str | Path, run_id: str, policy_version: str):
        self.path, self.run_id, self.policy_version = Path(path), run_id, policy_version
        self._load()

    def _load(self) -> None:
        """Read the chain's head, length and screening decisions from the file as it is now."""
        size = self.path.stat().st_size if self.path.exists() else 0
        rows = read_rows(self.path) if size else []
        if rows and (missing := [c for c in COLUMNS if c not in rows[0]]):
            raise InputError(f"{self.path}: written by an older cpo (columns {missing} are missing); its chain "
                             "cannot be continued: start the run in a new --out folder")
        self.head = rows[-1]["record_hash"] if rows else GENESIS
        self.count = len(rows)
        self.decided = {(r["variant_id"], r["attempt"], r["content_sha256"]): r for r in rows if r["event"] == SCREEN}
        self._size = size

    def lookup(self, variant: Variant) -> dict | None:
        """The recorded decision for this exact variant text and attempt, if it was already screened."""
        return self.decided.get((variant.variant_id, str(variant.attempt), variant.content_sha256))

    def append(self, variant: Variant, verdict: Verdict) -> dict:
        row = {"run_id": self.run_id, "variant_id": variant.variant_id, "segment": variant.segment,
               "attempt": variant.attempt, "decision": verdict.decision, "screener": verdict.screener,
               "hate": verdict.hate, "self_harm": verdict.self_harm, "sexual": verdict.sexual,
               "violence": verdict.violence, "max_severity": verdict.max_severity,
               "rules_triggered": ";".join(verdict.rules_triggered), "reason": verdict.reason,
               "policy_version": self.policy_version, "content_sha256": variant.content_sha256,
               "event": SCREEN, "actor": verdict.screener}
        row = self._write(row)
        self.decided[(variant.variant_id, str(variant.attempt), variant.content_sha256)] = row
        return row

    def record_event(self, event: str, decision: str, actor: str, content_sha256: str, reason: str) -> dict:
        """One event of the run's life (approval, rejection, export, outcomes, rollout) on the same chain."""
        if event not in EVENTS:
            raise ValueError(f"unknown audit event {event!r}; known: {', '.join(EVENTS)}")
        if decision not in EVENT_DECISIONS:
            raise ValueError(f"unknown event decision {decision!r}; known: {', '.join(EVENT_DECISIONS)}")
        if not str(actor).strip():
            raise ValueError(f"audit event {event!r} needs an actor (who or what acted)")
        if not _SHA256.fullmatch(str(content_sha256)):
            raise ValueError(f"audit event {event!r}: content_sha256 must be 64 lowercase hex digits, "
                             f"got {content_sha256!r}")
        row = {"run_id": self.run_id, "variant_id": "", "segment": "", "attempt": 0, "decision": decision,
               "screener": "", "hate": "", "self_harm": "", "sexual": "", "violence": "", "max_severity": "",
               "rules_triggered": "", "reason": reason, "policy_version": self.policy_version,
               "content_sha256": content_sha256, "event": event, "actor": actor}
        return self._write(row)

    def _write(self, row: dict) -> dict:
        """Stamp, chain, append and fsync one row; the row as written (strings) is returned."""
        if (self.path.stat().st_size if self.path.exists() else 0) != self._size:
            self._load()  # another AuditLog (another process: `cpo approve`) appended since: chain onto its head
        row = {**row, "screened_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
               "prev_hash": self.head}
        row = {c: safe_cell(str(row[c])) for c in COLUMNS if c != "record_hash"}  # as written, before hashing
        row["record_hash"] = record_hash(row)
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())
            self._size = f.tell()
        self.head, self.count = row["record_hash"], self.count + 1
        return row


def read_rows(path: str | Path) -> list[dict]:
    with Path(path).open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def chain_problems(rows: list[dict]) -> list[str]:
    """Edited, inserted, removed or reordered rows, each named by its data row number (1-based)."""
    problems, prev = [], GENESIS
    for i, row in enumerate(rows, 1):
        missing = [c for c in COLUMNS if c not in row or row[c] is None]
        if missing:
            return [f"row {i}: columns missing {missing}"]
        what = f"variant {row['variant_id']}" if row["event"] == SCREEN else f"{row['event'] or 'unnamed'} event"
        if row["record_hash"] != record_hash(row):
            problems.append(f"row {i} ({what}): content does not match its record_hash "
                            "(the row was edited or forged)")
        if row["prev_hash"] != prev:
            problems.append(f"row {i} ({what}): prev_hash does not match row {i - 1}'s "
                            "record_hash (a row was removed, inserted or moved before it)")
        prev = row["record_hash"]
    return problems


def screening_rows(rows: list[dict]) -> list[dict]:
    """The screening decisions of a log (event rows left out)."""
    return [r for r in rows if r.get("event", SCREEN) == SCREEN]


def final_decisions(rows: list[dict]) -> dict[str, str]:
    """The last decision per variant (a regenerated variant keeps its id only if it is the same slot/strategy)."""
    return {r["variant_id"]: r["decision"] for r in screening_rows(rows)}


def verify_run(run_dir: str | Path, allow_unkeyed: bool = False) -> list[str]:
    """Everything wrong with a run's evidence (tasks/safety/verify.py); empty when it all holds."""
    from tasks.safety.verify import verify

    return verify(run_dir, allow_unkeyed=allow_unkeyed).problems


def export(run_dir: str | Path, out: str | Path) -> int:
    rows = read_rows(Path(run_dir) / "audit_log.csv")
    with Path(out).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: safe_cell(str(row.get(k) or "")) for k in COLUMNS})
    return len(rows)
