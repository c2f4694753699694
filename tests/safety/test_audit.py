import csv
import json

import pytest

from tasks.records import Variant, Verdict
from tasks.errors import InputError
from tasks.safety.audit import AuditLog, COLUMNS, chain_problems, export, final_decisions, read_rows, verify_run


def variant(i, status="passed"):
    return Variant(variant_id=f"v{i}", segment="s", slot=i, strategy="value", subject=f"S{i}", body="b",
                   citations=["d"], status=status)


@pytest.fixture
def run(tmp_path):
    log = AuditLog(tmp_path / "audit_log.csv", "run-1", "p1")
    for i in range(1, 4):
        log.append(variant(i), Verdict(decision="pass" if i < 3 else "block", screener="local"))
    (tmp_path / "variants.jsonl").write_text("".join(json.dumps({"variant_id": f"v{i}", "status": s}) + "\n"
                                                     for i, s in [(1, "passed"), (2, "passed"), (3, "blocked")]))
    (tmp_path / "assignments.csv").write_text("customer_id,segment,arm,variant_id\nc1,s,treatment_1,v1\nc2,s,control,\n")
    (tmp_path / "manifest.json").write_text(json.dumps({"audit": {"rows": log.count, "head": log.head}}))
    return tmp_path


def rewrite(run, rows):
    with (run / "audit_log.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def test_intact_run_verifies(run):
    assert verify_run(run) == []


def test_edited_row_is_named(run):
    rows = read_rows(run / "audit_log.csv")
    rows[1]["decision"] = "pass" if rows[1]["decision"] == "block" else "block"
    rewrite(run, rows)
    assert any(p.startswith("row 2") and "edited" in p for p in verify_run(run))


def test_deleted_row_is_named(run):
    rows = read_rows(run / "audit_log.csv")
    rewrite(run, [rows[0], rows[2]])
    problems = verify_run(run)
    assert any(p.startswith("row 2") and "removed" in p for p in problems)


def test_reordered_rows_detected(run):
    rows = read_rows(run / "audit_log.csv")
    rewrite(run, [rows[1], rows[0], rows[2]])
    assert any(p.startswith("row 1") for p in verify_run(run))


def test_truncated_tail_detected_by_manifest(run):
    rewrite(run, read_rows(run / "audit_log.csv")[:2])
    assert any("manifest recorded 3" in p for p in verify_run(run))


def test_blocked_variant_assigned_is_named(run):
    (run / "assignments.csv").write_text("customer_id,segment,arm,variant_id\nc1,s,treatment_3,v3\n")
    assert any("v3" in p and "blocked" in p for p in verify_run(run))


def test_unscreened_variant_is_named(run):
    with (run / "variants.jsonl").open("a") as f:
        f.write(json.dumps({"variant_id": "v9", "status": "passed"}) + "\n")
    assert any("v9" in p and "no screening decision" in p for p in verify_run(run))


def test_reopened_log_continues_chain_without_duplicates(run):
    log = AuditLog(run / "audit_log.csv", "run-1", "p1")
    assert log.lookup(variant(1)) is not None and log.count == 3
    log.append(variant(4), Verdict(decision="pass", screener="local"))
    rows = read_rows(run / "audit_log.csv")
    assert rows[3]["prev_hash"] == rows[2]["record_hash"]


def test_export_neutralises_formulas(run, tmp_path):
    rows = read_rows(run / "audit_log.csv")
    rows[0]["reason"] = "=HYPERLINK(\"http://x\")"
    rewrite(run, rows)
    export(run, tmp_path / "out.csv")
    assert read_rows(tmp_path / "out.csv")[0]["reason"].startswith("'=")


def test_inserted_row_is_named(run):
    rows = read_rows(run / "audit_log.csv")
    forged = dict(rows[1], variant_id="v9")
    rewrite(run, [rows[0], rows[1], forged, rows[2]])
    problems = verify_run(run)
    assert any(p.startswith("row 3") for p in problems)


# ------------------------------------------------------------------------------------------ audit events

DESIGN_SHA = "a" * 64


def test_screening_rows_name_the_event_and_the_screener(run):
    rows = read_rows(run / "audit_log.csv")
    assert list(rows[0]) == COLUMNS and COLUMNS[-2:] == ["event", "actor"]
    assert {(r["event"], r["actor"]) for r in rows} == {("screen", "local")}


def test_event_rows_share_the_screening_chain(run):
    log = AuditLog(run / "audit_log.csv", "run-1", "p1")
    row = log.record_event("approval", "approve", "dana@example.com", DESIGN_SHA, "approved as designed")
    rows = read_rows(run / "audit_log.csv")
    assert rows[-1] == row and log.count == 4 and log.head == row["record_hash"]
    assert row["prev_hash"] == rows[2]["record_hash"]
    assert (row["event"], row["decision"], row["actor"], row["content_sha256"]) == (
        "approval", "approve", "dana@example.com", DESIGN_SHA)
    assert (row["variant_id"], row["segment"], row["attempt"], row["policy_version"]) == ("", "", "0", "p1")
    assert chain_problems(rows) == []


def test_an_edited_event_row_breaks_the_chain(run):
    AuditLog(run / "audit_log.csv", "run-1", "p1").record_event("rejection", "reject", "dana", DESIGN_SHA, "too risky")
    rows = read_rows(run / "audit_log.csv")
    rows[-1]["actor"] = "someone else"
    assert any(p.startswith("row 4") and "edited" in p for p in chain_problems(rows))


def test_event_rows_are_not_screening_decisions(run):
    log = AuditLog(run / "audit_log.csv", "run-1", "p1")
    log.record_event("export", "record", "cpo", DESIGN_SHA, "sends.csv written")
    rows = read_rows(run / "audit_log.csv")
    assert final_decisions(rows) == {"v1": "pass", "v2": "pass", "v3": "block"}
    assert AuditLog(run / "audit_log.csv", "run-1", "p1").lookup(variant(1))["event"] == "screen"


@pytest.mark.parametrize("event, decision, actor, sha, named", [
    ("approved", "approve", "dana", DESIGN_SHA, "unknown audit event 'approved'"),
    ("approval", "pass", "dana", DESIGN_SHA, "unknown event decision 'pass'"),
    ("approval", "approve", " ", DESIGN_SHA, "needs an actor"),
    ("approval", "approve", "dana", "not-a-hash", "64 lowercase hex"),
])
def test_malformed_events_are_refused_before_anything_is_written(run, event, decision, actor, sha, named):
    before = (run / "audit_log.csv").read_bytes()
    with pytest.raises(ValueError, match=named):
        AuditLog(run / "audit_log.csv", "run-1", "p1").record_event(event, decision, actor, sha, "x")
    assert (run / "audit_log.csv").read_bytes() == before


def test_two_writers_keep_one_chain(run):
    """The flow's log object and `cpo approve`'s (another process) append to one file: each chains onto the
    file's real head, never onto a head it remembered."""
    flow_log = AuditLog(run / "audit_log.csv", "run-1", "p1")
    AuditLog(run / "audit_log.csv", "run-1", "p1").record_event("approval", "approve", "dana", DESIGN_SHA, "ok")
    flow_log.append(variant(4), Verdict(decision="pass", screener="local"))
    rows = read_rows(run / "audit_log.csv")
    assert len(rows) == 5 and chain_problems(rows) == [] and flow_log.count == 5


def test_an_old_log_without_event_columns_is_not_continued(tmp_path):
    old = [c for c in COLUMNS if c not in ("event", "actor")]
    (tmp_path / "audit_log.csv").write_text(",".join(old) + "\n" + ",".join("x" for _ in old) + "\n")
    with pytest.raises(InputError, match="older cpo"):
        AuditLog(tmp_path / "audit_log.csv", "run-1", "p1")
