"""`cpo audit verify` on a folder written by the real campaign flow, with both anchors: the keyed file
anchor and the Prefect artifact published on the session's temporary Prefect server."""
import hashlib
import json
import os
import secrets
import shutil

import pytest
from prefect import flow

from flows.cli import main
from tasks.safety.anchor import ANCHOR_FILE, artifact_key, prefect_anchors, seal
from tasks.safety.audit import COLUMNS, AuditLog, read_rows
from tasks.safety.verify import verify
from tests.safety.test_audit import rewrite

pytestmark = pytest.mark.usefixtures("prefect_harness")
KEY = secrets.token_hex(32)


@flow(name="seal-audit-anchor")
def seal_in_flow(run_dir: str) -> dict:
    return seal(run_dir)


@pytest.fixture(scope="module")
def key():
    before = os.environ.get("CPO_AUDIT_KEY")
    os.environ["CPO_AUDIT_KEY"] = KEY
    yield KEY
    if before is None:
        os.environ.pop("CPO_AUDIT_KEY", None)
    else:
        os.environ["CPO_AUDIT_KEY"] = before


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory, key):
    """`cpo run` on the bundled sample, taken to the end of its lifecycle where the flow does not do so
    itself yet (design, run inputs, approval, status), then sealed inside a Prefect flow run."""
    run = tmp_path_factory.mktemp("evidence") / "evidence-run"
    assert main(["run", "--out", str(run)]) == 0
    if not (run / "run_status.json").exists():
        manifest = json.loads((run / "manifest.json").read_text())
        (run / "design.json").write_text(json.dumps(manifest["design"], indent=2))
        (run / "run_inputs.json").write_text(json.dumps({"policy_version": manifest["policy_version"]}))
        AuditLog(run / "audit_log.csv", run.name, manifest["policy_version"]).record_event(
            "approval", "approve", "test-suite", hashlib.sha256((run / "design.json").read_bytes()).hexdigest(),
            "approved in advance (--approve-as)")
        (run / "run_status.json").write_text(json.dumps({"status": "complete", "stage": "report"}))
    seal_in_flow(str(run))
    return run


@pytest.fixture
def copy(flow_run, tmp_path):
    """A copy of the run to tamper with; its run id (folder name) stays the same, so its Prefect anchor is
    the original's."""
    target = tmp_path / flow_run.name
    shutil.copytree(flow_run, target)
    return target


def test_flow_run_verifies_against_both_anchors(flow_run, capsys):
    anchor = json.loads((flow_run / ANCHOR_FILE).read_text())
    rows = read_rows(flow_run / "audit_log.csv")
    assert anchor["rows"] == len(rows) and anchor["prefect_artifact"]["key"] == artifact_key(flow_run.name)
    published = prefect_anchors(flow_run.name)
    assert published[0]["rows"] == len(rows) and published[0]["head"] == rows[-1]["record_hash"]
    assert main(["audit", "verify", str(flow_run)]) == 0
    out = capsys.readouterr().out
    assert "  file anchor: HMAC-SHA256" in out
    assert "  Prefect anchor: artifact audit-anchor-evidence-run" in out
    assert f"the newest covers rows 1–{len(rows)} of {len(rows)}" in out


def test_without_the_key_the_prefect_anchor_still_vouches(flow_run, monkeypatch):
    monkeypatch.delenv("CPO_AUDIT_KEY")
    result = verify(flow_run)
    assert result.problems == [] and "the Prefect anchor covers the whole chain" in result.checked[0]


def test_a_rewritten_chain_is_caught_by_both_anchors(copy, monkeypatch, capsys):
    """Flip a blocked-or-passed decision, rehash everything, reseal without the key: the chain holds, the
    file anchor is unkeyed and the Prefect anchor does not know this chain."""
    rows = read_rows(copy / "audit_log.csv")
    rows[0]["reason"] = "reviewed by hand"
    rewrite(copy, rehash=True, rows=rows)
    monkeypatch.delenv("CPO_AUDIT_KEY")
    seal(copy)
    assert main(["audit", "verify", str(copy), "--allow-unkeyed"]) == 1
    out = capsys.readouterr().out
    assert "none for this chain (its first row differs): the log was rewritten" in out
    monkeypatch.setenv("CPO_AUDIT_KEY", KEY)
    assert main(["audit", "verify", str(copy)]) == 1
    assert "unsigned though CPO_AUDIT_KEY is set" in capsys.readouterr().out


def test_a_rolled_back_folder_is_caught_by_the_prefect_anchor(copy, tmp_path, capsys):
    """An earlier sealed state (log and anchor file together) passes the key check: the anchor was honestly
    signed. Prefect's newest anchor has more rows, so the removed event is found. (A run id of its own, so
    the shared run's anchor artifact is left alone.)"""
    rows = read_rows(copy / "audit_log.csv")
    rewrite(copy, rehash=True, rows=[{**r, "run_id": "rollback-run"} for r in rows])
    seal_in_flow(str(copy))
    assert verify(copy).problems == []
    before = tmp_path / "before"
    shutil.copytree(copy, before)
    AuditLog(copy / "audit_log.csv", "rollback-run", "x").record_event(
        "outcomes", "record", "cpo outcomes", "c" * 64, "events read back")
    seal_in_flow(str(copy))
    assert verify(copy).problems == []
    for name in ("audit_log.csv", ANCHOR_FILE):
        shutil.copy(before / name, copy / name)
    assert main(["audit", "verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "  file anchor: HMAC-SHA256" in out and "rows were removed from the end" in out


@pytest.mark.parametrize("tamper, named", [
    ("edit", "content does not match its record_hash"),
    ("variants.jsonl", "variants.jsonl is missing"),
    ("assignments.csv", "assignments.csv is missing"),
    ("body", "does not hash to the content_sha256"),
    ("empty", "holds no screening decision"),
    ("crashed", "run_status.json says 'crashed'"),
])
def test_each_tampering_case_exits_1_naming_it(copy, tamper, named, capsys):
    if tamper == "edit":
        text = (copy / "audit_log.csv").read_text().splitlines()
        text[1] = text[1].replace(",pass,", ",block,", 1)
        (copy / "audit_log.csv").write_text("\n".join(text) + "\n")
    elif tamper == "body":
        records = [json.loads(line) for line in (copy / "variants.jsonl").read_text().splitlines()]
        passed = next(r for r in records if r["status"] == "passed")
        passed["body"] = passed["body"].replace("Unsubscribe", "Guaranteed results. Unsubscribe")
        (copy / "variants.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    elif tamper == "empty":
        (copy / "audit_log.csv").write_text(",".join(COLUMNS) + "\n")
    elif tamper == "crashed":
        (copy / "run_status.json").write_text(json.dumps({"status": "crashed", "stage": "assign"}))
    else:
        (copy / tamper).unlink()
    assert main(["audit", "verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert named in out and "audit verification FAILED" in out


def test_an_anchor_published_to_another_server_is_said_not_checked(copy):
    """A run that used its own temporary Prefect server published its anchor there: verifying against
    another server says the Prefect anchor was not checked (the keyed file anchor still is); against the
    same server, a claimed artifact that is absent fails."""
    rows = read_rows(copy / "audit_log.csv")
    rewrite(copy, rehash=True, rows=[{**r, "run_id": "elsewhere-run"} for r in rows])
    seal(copy)  # outside a flow run: keeps the record of the last publication
    anchor = json.loads((copy / ANCHOR_FILE).read_text())
    assert anchor["prefect_artifact"]["api_url"]
    assert any("has no such artifact" in p for p in verify(copy).problems)
    anchor["prefect_artifact"]["api_url"] = "http://127.0.0.1:9/api"
    (copy / ANCHOR_FILE).write_text(json.dumps(anchor))
    result = verify(copy)
    assert result.problems == []
    assert any("not checked: artifact audit-anchor-elsewhere-run was published to http://127.0.0.1:9/api" in c
               for c in result.checked)
    assert result.checked[0].startswith("file anchor: HMAC-SHA256")
