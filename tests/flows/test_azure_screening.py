"""End to end with CPO_SCREENER=azure against the local fake Content Safety service (no network)."""
import csv

import pytest

from config import load_settings
from flows.cli import main
from tasks.safety.azure import COMPETITOR_BLOCKLIST
from tests.fakes.content_safety import FakeContentSafety, Fault

KEY = "flow-k3y-71c0a9e4-secret"

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.flow]


@pytest.fixture
def fake(monkeypatch):
    with FakeContentSafety(key=KEY) as f:
        monkeypatch.setenv("CPO_SCREENER", "azure")
        monkeypatch.setenv("AZURE_CONTENT_SAFETY_ENDPOINT", f.url)
        monkeypatch.setenv("AZURE_CONTENT_SAFETY_KEY", KEY)
        yield f


def audit_rows(run):
    """The screening decisions (the approval is an audit row too)."""
    with (run / "audit_log.csv").open() as f:
        return [r for r in csv.DictReader(f) if r["event"] == "screen"]


def assert_key_in_no_file(run):
    leaked = [p.name for p in run.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert not leaked, f"the key was written to {leaked}"


def test_a_run_screened_by_azure_completes_and_verifies(fake, tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 0
    rows = audit_rows(run)
    assert rows and {r["screener"] for r in rows} == {"azure"}
    analyzed = fake.analyze_requests()
    assert len(analyzed) >= len(rows) and all(r.key_ok for r in analyzed)
    assert main(["audit", "verify", str(run)]) == 0
    assert_key_in_no_file(run)
    _, _, brand = load_settings()
    synced = fake.blocklists[COMPETITOR_BLOCKLIST]["items"].values()
    assert sorted(synced) == sorted(brand.competitors)  # the flow passes brand.competitors to the scorer
    assert all(r.body.get("blocklistNames") == [COMPETITOR_BLOCKLIST] for r in analyzed)


def test_a_throttled_service_still_completes(fake, tmp_path):
    # spread over several calls: no single call uses up its four attempts
    fake.script(Fault.throttle(), Fault.ok(), Fault.throttle(retry_after=1), Fault.ok(), Fault.throttle(), Fault.throttle())
    run = tmp_path / "run"
    assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 0
    assert sum(r.status == 429 for r in fake.requests) == 4
    assert {r["screener"] for r in audit_rows(run)} == {"azure"}


@pytest.mark.parametrize("when", ["from-the-start", "after-blocklist-sync"])
def test_a_service_that_is_down_stops_the_run_before_assignment(fake, tmp_path, when):
    if when == "from-the-start":
        fake.down = True  # the blocklist sync, before any screening, fails closed
    else:
        fake.script(Fault.ok(), Fault.ok(), *[Fault.error(503)] * 8)  # sync works, then the first analyze fails
    run = tmp_path / "run"
    assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 3
    assert not (run / "assignments.csv").exists() and not (run / "manifest.json").exists()
    if when == "after-blocklist-sync":  # the flow builds its backends (and syncs) before the run directory exists
        assert (run / "run_status.json").exists()
    failed = [r for r in fake.requests if r.status >= 400]
    assert len(failed) == 4 and all(r.status == 503 for r in failed)  # 4 bounded attempts; the task is not retried
    assert_key_in_no_file(run)
