import csv
import json

import pytest

from tasks.records import Variant, Verdict
from tasks.safety.audit import AuditLog, COLUMNS, export, read_rows, verify_run


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
