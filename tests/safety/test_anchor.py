"""audit_anchor.json: what seal writes, with and without the key, outside a Prefect run."""
import hashlib
import hmac
import json

import pytest

from tasks.records import Variant, Verdict
from tasks.safety.anchor import ANCHOR_FILE, artifact_key, audit_key, key_id, seal, sign
from tasks.safety.audit import GENESIS, AuditLog


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.delenv("CPO_AUDIT_KEY", raising=False)
    run = tmp_path / "Spring Sale 2026"
    run.mkdir()
    log = AuditLog(run / "audit_log.csv", "Spring Sale 2026", "p1")
    log.append(Variant(variant_id="v1", segment="s", slot=1, strategy="value", subject="S", body="b",
                       citations=["d"]), Verdict(decision="pass", screener="local"))
    return run, log


def test_the_hmac_is_rfc2104_sha256_over_canonical_json():
    expected = hmac.new(b"secret", b'{"head":"ab","rows":3,"run_id":"r"}', hashlib.sha256).hexdigest()
    assert sign("secret", "r", 3, "ab") == expected
    assert sign("secret", "r", 3, "ab") != sign("secret", "r", 4, "ab") != sign("other", "r", 3, "ab")


def test_seal_with_the_key_signs_head_and_length(run, monkeypatch):
    path, log = run
    monkeypatch.setenv("CPO_AUDIT_KEY", "s3cret-key")
    anchor = seal(path)
    assert anchor == json.loads((path / ANCHOR_FILE).read_text())
    assert (anchor["rows"], anchor["head"], anchor["run_id"]) == (1, log.head, "Spring Sale 2026")
    assert anchor["hmac"] == sign("s3cret-key", "Spring Sale 2026", 1, log.head, anchor["files"])
    assert anchor["hmac"] != sign("s3cret-key", "Spring Sale 2026", 1, log.head, {**anchor["files"], "x.csv": "0"})
    assert anchor["key_id"] == hashlib.sha256(b"s3cret-key").hexdigest()[:8] == key_id("s3cret-key")
    assert "s3cret-key" not in (path / ANCHOR_FILE).read_text()
    assert anchor["prefect_artifact"] is None  # not inside a Prefect flow run


def test_seal_without_the_key_is_unkeyed(run):
    path, _ = run
    anchor = seal(path)
    assert anchor["hmac"] is None and anchor["key_id"] is None and audit_key() is None


def test_a_blank_key_counts_as_unset(monkeypatch):
    monkeypatch.setenv("CPO_AUDIT_KEY", "  ")
    assert audit_key() is None


def test_each_seal_follows_the_chain(run, monkeypatch):
    path, log = run
    monkeypatch.setenv("CPO_AUDIT_KEY", "k")
    first = seal(path)
    log.record_event("approval", "approve", "dana", "a" * 64, "ok")
    second = seal(path)
    assert (second["rows"], second["head"]) == (2, log.head) and second["head"] != first["head"]


def test_a_seal_outside_a_flow_keeps_the_record_of_the_last_publication(run):
    path, _ = run
    published = {"key": "audit-anchor-spring-sale-2026", "rows": 1, "head": "x", "flow_run_id": "f",
                 "api_url": "http://127.0.0.1:4200/api"}
    (path / ANCHOR_FILE).write_text(json.dumps({"prefect_artifact": published}))
    assert seal(path)["prefect_artifact"] == published


def test_no_log_no_seal(tmp_path):
    with pytest.raises(FileNotFoundError, match="no audit log to seal"):
        seal(tmp_path)


def test_an_empty_log_seals_the_genesis(tmp_path):
    (tmp_path / "audit_log.csv").write_text("")
    anchor = seal(tmp_path)
    assert (anchor["rows"], anchor["head"], anchor["run_id"]) == (0, GENESIS, tmp_path.name)


@pytest.mark.parametrize("run_id, key", [
    ("Spring Sale 2026", "audit-anchor-spring-sale-2026"),
    ("demo-20261201T101500Z", "audit-anchor-demo-20261201t101500z"),
    ("__weird__..id__", "audit-anchor-weird-id"),
    ("ÄÖ", "audit-anchor-run"),
])
def test_artifact_keys_are_lowercase_letters_digits_and_dashes(run_id, key):
    assert artifact_key(run_id) == key
