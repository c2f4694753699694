"""The audit log (rows, events, chain) and `cpo audit verify` on small synthetic run folders."""
import csv
import hashlib
import json

import pytest

from flows.cli import main
from tasks.errors import InputError
from tasks.records import Variant, Verdict
from tasks.safety.anchor import ANCHOR_FILE, key_id, seal, sign
from tasks.safety.audit import (COLUMNS, AuditLog, chain_problems, export, final_decisions, read_rows,
                                record_hash, verify_run)
from tasks.safety.verify import verify

KEY = "k" * 64
POLICY = "p1"


def variant(i, status="passed", body="Hello. Unsubscribe: https://example.com/u"):
    return Variant(variant_id=f"v{i}", segment="s", slot=i, strategy="value", subject=f"S{i}", preheader=f"P{i}",
                   body=body, citations=["d"], status=status)


def record(v: Variant) -> dict:
    return {"variant_id": v.variant_id, "segment": v.segment, "subject": v.subject, "preheader": v.preheader,
            "body": v.body, "citations": v.citations, "status": v.status, "attempt": v.attempt}


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_status(run, status, **extra):
    (run / "run_status.json").write_text(json.dumps({"status": status, **extra}))


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv("CPO_AUDIT_KEY", KEY)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)


@pytest.fixture
def gate(tmp_path, keyed):
    """A run at the approval gate: three variants screened (v3 blocked), v1 and v2 assigned, sealed with KEY."""
    run = tmp_path / "run-1"
    run.mkdir()
    log = AuditLog(run / "audit_log.csv", "run-1", POLICY)
    variants = [variant(1), variant(2), variant(3, "blocked")]
    for v in variants:
        log.append(v, Verdict(decision="pass" if v.status == "passed" else "block", screener="local"))
    (run / "variants.jsonl").write_text("".join(json.dumps(record(v)) + "\n" for v in variants))
    (run / "assignments.csv").write_text("customer_id,segment,arm,variant_id\nc1,s,treatment_1,v1\n"
                                         "c2,s,treatment_2,v2\nc3,s,control,\n")
    (run / "design.json").write_text(json.dumps({"primary_metric": "clicked", "alpha": 0.05}))
    (run / "run_inputs.json").write_text(json.dumps({"policy_version": POLICY, "seed": 7}))
    write_status(run, "awaiting_approval", stage="design")
    seal(run)
    return run


@pytest.fixture
def run(gate):
    """The same run approved and complete."""
    AuditLog(gate / "audit_log.csv", "run-1", POLICY).record_event(
        "approval", "approve", "dana", sha(gate / "design.json"), "approved as designed")
    for name in ("outcomes.csv", "results.csv", "report.md", "report.html", "design.md", "attribute_lifts.csv"):
        (gate / name).write_text("x\n")
    (gate / "manifest.json").write_text(json.dumps({"status": "complete", "policy_version": POLICY}))
    write_status(gate, "complete")
    seal(gate)
    return gate


def rewrite(run, rows, rehash=False):
    """Write rows back; with rehash, recompute every hash as a forger who can edit the folder would."""
    if rehash:
        prev = "0" * 64
        for r in rows:
            r["prev_hash"] = prev
            r["record_hash"] = prev = record_hash(r)
    with (run / "audit_log.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def rewrite_anchor(run, **changes):
    anchor = json.loads((run / ANCHOR_FILE).read_text())
    anchor.update(changes)
    (run / ANCHOR_FILE).write_text(json.dumps(anchor))


def one(problems, *words):
    """The problem naming all `words`; fails the test when none does."""
    hits = [p for p in problems if all(w in p for w in words)]
    assert hits, f"no problem names {words}: {problems}"
    return hits[0]


# ------------------------------------------------------------------------------------- an intact run

def test_a_complete_run_verifies_and_says_which_anchor_was_checked(run):
    result = verify(run)
    assert result.problems == [] and result.status == "complete"
    assert result.checked[0].startswith(f"file anchor: HMAC-SHA256 with CPO_AUDIT_KEY (key {key_id(KEY)}) verified "
                                        "over 4 rows")
    # the Prefect anchor is reported too: not checked without PREFECT_API_URL, or (when the session's Prefect
    # server is up) none published, since this folder was sealed outside a flow run
    assert any(c.startswith(("Prefect anchor: not checked (PREFECT_API_URL is not set)", "Prefect anchor: none"))
               for c in result.checked)


def test_a_run_at_the_gate_verifies_without_outcomes(gate):
    assert verify_run(gate) == []


def test_the_cli_prints_the_anchors_and_exits_0(run, capsys):
    assert main(["audit", "verify", str(run)]) == 0
    out = capsys.readouterr().out
    assert "  file anchor: HMAC-SHA256" in out and "audit OK (complete)" in out


# --------------------------------------------------------------- the tampering cases of issue 11

def test_edited_row_is_named(run):
    rows = read_rows(run / "audit_log.csv")
    rows[2]["decision"] = "pass"
    rewrite(run, rows)
    one(verify_run(run), "row 3 (variant v3)", "edited")


def test_rehashed_chain_with_anchor_updated_without_the_key_fails(run):
    """The forger flips v3 to pass, rehashes the whole chain and updates the anchor's rows and head: the
    chain holds, but the HMAC (which needs the key) no longer matches."""
    rows = read_rows(run / "audit_log.csv")
    rows[2]["decision"] = "pass"
    rewrite(run, rows, rehash=True)
    rewrite_anchor(run, head=rows[-1]["record_hash"])
    problems = verify_run(run)
    assert chain_problems(read_rows(run / "audit_log.csv")) == []
    one(problems, ANCHOR_FILE, "HMAC does not match", "edited after it was signed")


def test_rehashed_chain_with_signature_stripped_fails_when_the_key_is_set(run):
    rows = read_rows(run / "audit_log.csv")
    rewrite(run, rows[:1] + rows[2:], rehash=True)
    rewrite_anchor(run, rows=3, head=read_rows(run / "audit_log.csv")[-1]["record_hash"], hmac=None, key_id=None)
    one(verify_run(run), "unsigned though CPO_AUDIT_KEY is set")


def test_rehashed_chain_resealed_with_another_key_fails(run, monkeypatch):
    rows = read_rows(run / "audit_log.csv")
    rows[2]["decision"] = "pass"
    rewrite(run, rows, rehash=True)
    monkeypatch.setenv("CPO_AUDIT_KEY", "forger's own key")
    seal(run)
    monkeypatch.setenv("CPO_AUDIT_KEY", KEY)
    one(verify_run(run), f"signed with key {key_id('forger' + chr(39) + 's own key')}", f"is key {key_id(KEY)}")


@pytest.mark.parametrize("name", ["variants.jsonl", "assignments.csv", "design.json", "run_inputs.json",
                                  "audit_log.csv", "outcomes.csv", "results.csv", "report.md", "manifest.json"])
def test_a_deleted_required_file_is_named(run, name):
    (run / name).unlink()
    one(verify_run(run), f"{name} is missing", "'complete'")


def test_replaced_body_of_a_passed_variant_is_named(run):
    records = [json.loads(line) for line in (run / "variants.jsonl").read_text().splitlines()]
    records[0]["body"] = "Buy now, guaranteed results! Unsubscribe: https://example.com/u"
    (run / "variants.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    one(verify_run(run), "variant v1", "does not hash to the content_sha256", "row 1", "changed after screening")


@pytest.mark.parametrize("field", ["subject", "preheader"])
def test_a_changed_subject_or_preheader_is_named_too(run, field):
    records = [json.loads(line) for line in (run / "variants.jsonl").read_text().splitlines()]
    records[1][field] += " — today only"
    (run / "variants.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    one(verify_run(run), "variant v2", "does not hash")


def test_empty_log_fails_even_when_sealed_empty(gate):
    (gate / "audit_log.csv").write_text(",".join(COLUMNS) + "\n")
    seal(gate)  # as a forger with the key, or a run that sealed before screening, would leave it
    problems = verify_run(gate)
    one(problems, "holds no screening decision", "3 variants")
    one(problems, "assigned variant v1", "never screened")


@pytest.mark.parametrize("status, extra, words", [
    ("crashed", {"stage": "assign"}, ("'crashed'", "stage 'assign'", "not verifiable")),
    ("failed", {"stage": "generate+screen", "error": "screener unavailable"},
     ("'failed'", "screener unavailable", "not verifiable")),
    ("running", {"stage": "generate+screen", "pid": 2 ** 22 + 7},
     ("'running'", "generate+screen", "that process is gone", "not verifiable")),
])
def test_crashed_failed_and_half_screened_folders_are_not_verifiable(gate, status, extra, words):
    write_status(gate, status, **extra)
    assert verify_run(gate) == [one(verify_run(gate), *words)]


def test_a_folder_with_neither_status_nor_complete_manifest_is_not_verifiable(gate):
    """A half-screened folder from a run that died before run_status.json existed."""
    (gate / "run_status.json").unlink()
    one(verify_run(gate), "no run_status.json", "never finished")


def test_an_unknown_status_is_named(gate):
    write_status(gate, "done")
    one(verify_run(gate), "'done'", "no status cpo writes")


def test_decisions_under_another_policy_are_named(tmp_path, keyed):
    """An old folder re-used: its pass decisions were made under p0, the run now says p1."""
    run = tmp_path / "reused"
    run.mkdir()
    old = AuditLog(run / "audit_log.csv", "reused", "p0")
    old.append(variant(1), Verdict(decision="pass", screener="local"))
    AuditLog(run / "audit_log.csv", "reused", POLICY).append(variant(2), Verdict(decision="pass", screener="local"))
    (run / "variants.jsonl").write_text(json.dumps(record(variant(1))) + "\n" + json.dumps(record(variant(2))) + "\n")
    (run / "assignments.csv").write_text("customer_id,segment,arm,variant_id\nc1,s,treatment_1,v1\n"
                                         "c2,s,treatment_2,v2\n")
    (run / "design.json").write_text("{}")
    (run / "run_inputs.json").write_text(json.dumps({"policy_version": POLICY}))
    write_status(run, "awaiting_approval")
    seal(run)
    problems = verify_run(run)
    assert problems == [one(problems, "variant v1 (assigned to 1 customers)", "row 1", "policy 'p0'",
                            "run's policy 'p1'")]


def test_the_manifest_names_the_policy_when_run_inputs_does_not(run):
    (run / "run_inputs.json").write_text("{}")
    (run / "manifest.json").write_text(json.dumps({"status": "complete", "policy_version": "p9"}))
    one(verify_run(run), "variant v1", "policy 'p1'", "run's policy 'p9'")


# ----------------------------------------------------------------------------------------- anchors

def test_unkeyed_anchor_fails_unless_allowed(run, monkeypatch, capsys):
    monkeypatch.delenv("CPO_AUDIT_KEY")
    seal(run)
    anchor = json.loads((run / ANCHOR_FILE).read_text())
    assert anchor["hmac"] is None and anchor["key_id"] is None
    one(verify_run(run), "unkeyed", "an editor of the folder could forge it", "--allow-unkeyed")
    result = verify(run, allow_unkeyed=True)
    assert result.problems == [] and "could have forged" in result.warnings[0]
    assert main(["audit", "verify", str(run), "--allow-unkeyed"]) == 0
    assert "WARNING the anchor is not checked with a key" in capsys.readouterr().out


def test_a_signed_anchor_cannot_be_checked_without_the_key(run, monkeypatch):
    monkeypatch.delenv("CPO_AUDIT_KEY")
    one(verify_run(run), f"signed with key {key_id(KEY)}, not checked (CPO_AUDIT_KEY is not set)", "could forge it")


def test_missing_anchor_is_named(run):
    (run / ANCHOR_FILE).unlink()
    one(verify_run(run), f"{ANCHOR_FILE} is missing", "anchored nowhere")


def test_truncated_tail_is_named(run):
    rewrite(run, read_rows(run / "audit_log.csv")[:3])
    one(verify_run(run), "has 3 rows but audit_anchor.json sealed 4", "removed from the end")


def test_rows_added_after_the_last_seal_are_named(run):
    AuditLog(run / "audit_log.csv", "run-1", POLICY).record_event("export", "record", "cpo", "b" * 64, "x")
    one(verify_run(run), "has 5 rows but audit_anchor.json sealed 4", "rows 5–5 were added after the last seal")


def test_the_anchor_file_never_holds_the_key(run):
    text = (run / ANCHOR_FILE).read_text()
    anchor = json.loads(text)
    assert KEY not in text and anchor["hmac"] == sign(KEY, "run-1", 4, anchor["head"], anchor["files"])
    assert set(anchor) == {"run_id", "rows", "head", "files", "signed_at", "hmac", "key_id", "prefect_artifact"}


@pytest.mark.parametrize("name", ["assignments.csv", "design.json", "variants.jsonl", "design.md", "report.html",
                                  "attribute_lifts.csv", "run_inputs.json"])
def test_an_evidence_file_edited_after_the_seal_is_named(run, name):
    """Not only the log: a result or an assignment rewritten after the run fails the signed anchor."""
    assert name in json.loads((run / ANCHOR_FILE).read_text())["files"]
    with (run / name).open("a") as f:
        f.write("\n")
    assert any(f"{name} has changed since the run was sealed" in p for p in verify_run(run))
    (run / name).unlink()
    assert any(f"{name} was sealed with the run but is missing" in p for p in verify_run(run))


@pytest.mark.parametrize("name", ["approval.json", "report.html", "results.csv"])
def test_an_evidence_file_added_after_the_seal_is_named(gate, name):
    """The second attack: a forged approval.json or a report dropped into a folder awaiting approval verified."""
    assert not verify_run(gate)
    (gate / name).write_text("x\n")
    assert any(f"{name} is in the folder but was not sealed" in p for p in verify_run(gate))


# ------------------------------------------------------------------------------------ gate events

def test_a_design_changed_after_approval_is_named(run):
    (run / "design.json").write_text(json.dumps({"primary_metric": "revenue", "alpha": 0.2}))
    one(verify_run(run), "approval by dana", "design.json has changed since it was approved")


def test_a_complete_run_without_approval_is_named(gate):
    for name in ("outcomes.csv", "results.csv", "report.md", "report.html", "design.md", "attribute_lifts.csv"):
        (gate / name).write_text("x\n")
    (gate / "manifest.json").write_text(json.dumps({"status": "complete"}))
    write_status(gate, "complete")
    one(verify_run(gate), "complete but the audit log holds no approval")


def test_a_rejected_run_needs_its_rejection(gate):
    write_status(gate, "rejected")
    one(verify_run(gate), "rejected but the audit log holds no rejection")
    AuditLog(gate / "audit_log.csv", "run-1", POLICY).record_event("rejection", "reject", "dana",
                                                                   sha(gate / "design.json"), "not now")
    seal(gate)
    assert verify_run(gate) == []


def test_sends_changed_after_export_are_named(run):
    (run / "sends.csv").write_text("customer_id,email,variant_id\nc1,a@example.com,\n")
    one(verify_run(run), "sends.csv exists but no export was recorded")
    AuditLog(run / "audit_log.csv", "run-1", POLICY).record_event("export", "record", "cpo", sha(run / "sends.csv"),
                                                                  "1 recipient")
    seal(run)
    assert verify_run(run) == []
    (run / "sends.csv").write_text("customer_id,email,variant_id\nc1,a@example.com,\nc9,x@example.com,\n")
    one(verify_run(run), "row 5 (export)", "sends.csv has changed since its export was recorded")


# --------------------------------------------------------------------------------- chain details

def test_deleted_row_is_named(run):
    rows = read_rows(run / "audit_log.csv")
    rewrite(run, [rows[0], rows[2], rows[3]])
    one(verify_run(run), "row 2", "removed")


def test_reordered_rows_detected(run):
    rows = read_rows(run / "audit_log.csv")
    rewrite(run, [rows[1], rows[0], rows[2], rows[3]])
    one(verify_run(run), "row 1")


def test_inserted_row_is_named(run):
    rows = read_rows(run / "audit_log.csv")
    rewrite(run, [rows[0], rows[1], dict(rows[1], variant_id="v9"), rows[2], rows[3]])
    one(verify_run(run), "row 3")


def test_blocked_variant_assigned_is_named(run):
    (run / "assignments.csv").write_text("customer_id,segment,arm,variant_id\nc1,s,treatment_3,v3\n")
    one(verify_run(run), "assigned variant v3", "was blocked (row 3)")


def test_unscreened_variant_is_named(run):
    with (run / "variants.jsonl").open("a") as f:
        f.write(json.dumps(record(variant(9))) + "\n")
    one(verify_run(run), "v9", "no screening decision")


def test_rows_of_another_run_are_named(run):
    rows = read_rows(run / "audit_log.csv")
    rows[1]["run_id"] = "run-2"
    rewrite(run, rows, rehash=True)
    one(verify_run(run), "row 2: run_id 'run-2'")


def test_an_old_log_fails_by_name(run):
    rows = read_rows(run / "audit_log.csv")
    old = [c for c in COLUMNS if c not in ("event", "actor")]
    with (run / "audit_log.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=old, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    one(verify_run(run), "lacks the columns ['event', 'actor']")


def test_a_run_before_the_lifecycle_is_treated_as_complete(run):
    (run / "run_status.json").unlink()
    assert verify(run).status == "complete" and verify_run(run) == []
    (run / "run_inputs.json").unlink()
    one(verify_run(run), "run_inputs.json is missing")


def test_reopened_log_continues_chain_without_duplicates(run):
    log = AuditLog(run / "audit_log.csv", "run-1", POLICY)
    assert log.lookup(variant(1)) is not None and log.count == 4
    log.append(variant(4), Verdict(decision="pass", screener="local"))
    rows = read_rows(run / "audit_log.csv")
    assert rows[4]["prev_hash"] == rows[3]["record_hash"]


def test_export_neutralises_formulas(run, tmp_path):
    rows = read_rows(run / "audit_log.csv")
    rows[0]["reason"] = "=HYPERLINK(\"http://x\")"
    rewrite(run, rows)
    export(run, tmp_path / "out.csv")
    assert read_rows(tmp_path / "out.csv")[0]["reason"].startswith("'=")


# ------------------------------------------------------------------------------------------ audit events

DESIGN_SHA = "a" * 64


def test_screening_rows_name_the_event_and_the_screener(gate):
    rows = read_rows(gate / "audit_log.csv")
    assert list(rows[0]) == COLUMNS and COLUMNS[-2:] == ["event", "actor"]
    assert {(r["event"], r["actor"]) for r in rows} == {("screen", "local")}


def test_event_rows_share_the_screening_chain(gate):
    log = AuditLog(gate / "audit_log.csv", "run-1", POLICY)
    row = log.record_event("approval", "approve", "dana@example.com", DESIGN_SHA, "approved as designed")
    rows = read_rows(gate / "audit_log.csv")
    assert rows[-1] == row and log.count == 4 and log.head == row["record_hash"]
    assert row["prev_hash"] == rows[2]["record_hash"]
    assert (row["event"], row["decision"], row["actor"], row["content_sha256"]) == (
        "approval", "approve", "dana@example.com", DESIGN_SHA)
    assert (row["variant_id"], row["segment"], row["attempt"], row["policy_version"]) == ("", "", "0", POLICY)
    assert chain_problems(rows) == []


def test_an_edited_event_row_breaks_the_chain(gate):
    AuditLog(gate / "audit_log.csv", "run-1", POLICY).record_event("rejection", "reject", "dana", DESIGN_SHA, "no")
    rows = read_rows(gate / "audit_log.csv")
    rows[-1]["actor"] = "someone else"
    one(chain_problems(rows), "row 4 (rejection event)", "edited")


def test_event_rows_are_not_screening_decisions(gate):
    AuditLog(gate / "audit_log.csv", "run-1", POLICY).record_event("export", "record", "cpo", DESIGN_SHA, "sent")
    rows = read_rows(gate / "audit_log.csv")
    assert final_decisions(rows) == {"v1": "pass", "v2": "pass", "v3": "block"}
    assert AuditLog(gate / "audit_log.csv", "run-1", POLICY).lookup(variant(1))["event"] == "screen"


def test_an_event_whose_decision_contradicts_it_is_named(run):
    rows = read_rows(run / "audit_log.csv")
    rows[3]["decision"] = "reject"
    rewrite(run, rows, rehash=True)
    seal(run)  # even a key holder cannot make an approval that rejects verify
    one(verify_run(run), "row 4 (approval event)", "'reject' contradicts the event")


@pytest.mark.parametrize("event, decision, actor, digest, named", [
    ("approved", "approve", "dana", DESIGN_SHA, "unknown audit event 'approved'"),
    ("approval", "pass", "dana", DESIGN_SHA, "unknown event decision 'pass'"),
    ("approval", "approve", " ", DESIGN_SHA, "needs an actor"),
    ("approval", "approve", "dana", "not-a-hash", "64 lowercase hex"),
])
def test_malformed_events_are_refused_before_anything_is_written(gate, event, decision, actor, digest, named):
    before = (gate / "audit_log.csv").read_bytes()
    with pytest.raises(ValueError, match=named):
        AuditLog(gate / "audit_log.csv", "run-1", POLICY).record_event(event, decision, actor, digest, "x")
    assert (gate / "audit_log.csv").read_bytes() == before


def test_two_writers_keep_one_chain(gate):
    """The flow's log object and `cpo approve`'s (another process) append to one file: each chains onto the
    file's real head, never onto a head it remembered."""
    flow_log = AuditLog(gate / "audit_log.csv", "run-1", POLICY)
    AuditLog(gate / "audit_log.csv", "run-1", POLICY).record_event("approval", "approve", "dana", DESIGN_SHA, "ok")
    flow_log.append(variant(4), Verdict(decision="pass", screener="local"))
    rows = read_rows(gate / "audit_log.csv")
    assert len(rows) == 5 and chain_problems(rows) == [] and flow_log.count == 5


def test_an_old_log_without_event_columns_is_not_continued(tmp_path):
    old = [c for c in COLUMNS if c not in ("event", "actor")]
    (tmp_path / "audit_log.csv").write_text(",".join(old) + "\n" + ",".join("x" for _ in old) + "\n")
    with pytest.raises(InputError, match="older cpo"):
        AuditLog(tmp_path / "audit_log.csv", "run-1", POLICY)
