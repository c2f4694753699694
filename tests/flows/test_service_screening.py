"""End to end with CPO_SCREENER=openai-moderation and guard-model against local fakes (no network)."""
import csv

import pytest

from flows.cli import main
from tests.fakes.moderation_server import FakeGuard, FakeModeration, Fault

KEY = "sk-flow-5b2e8d71-secret"

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.flow]


@pytest.fixture(params=["openai-moderation", "guard-model"])
def backend(request, monkeypatch):
    kind = request.param
    with (FakeModeration if kind == "openai-moderation" else FakeGuard)(key=KEY) as fake:
        monkeypatch.setenv("CPO_SCREENER", kind)
        if kind == "openai-moderation":
            monkeypatch.setenv("OPENAI_API_KEY", KEY)
            monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        else:
            monkeypatch.setenv("CPO_GUARD_BASE_URL", fake.base_url)
            monkeypatch.setenv("CPO_GUARD_MODEL", "llama-guard-3-8b")
            monkeypatch.setenv("CPO_GUARD_API_KEY", KEY)
        yield kind, fake


def audit_rows(run):
    with (run / "audit_log.csv").open() as f:
        return list(csv.DictReader(f))


def test_a_run_screened_by_the_service_completes_and_verifies(backend, tmp_path):
    kind, fake = backend
    fake.script(Fault.throttle(), Fault.ok(), Fault.throttle(retry_after=0.2), Fault.error(502))
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0
    rows = [r for r in audit_rows(run) if r.get("event", "screen") == "screen"]
    assert rows and {r["screener"] for r in rows} == {kind}
    assert sum(r.status == 200 for r in fake.requests) >= len(rows) and all(r.key_ok for r in fake.requests)
    assert main(["audit", "verify", str(run)]) == 0
    leaked = [p.name for p in run.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert not leaked


def test_a_service_that_is_down_stops_the_run_before_assignment(backend, tmp_path):
    _, fake = backend
    fake.down = True
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 3
    assert not (run / "assignments.csv").exists() and not (run / "manifest.json").exists()


def test_cpo_screen_compares_backends_on_one_file(backend, tmp_path):
    kind, _ = backend
    src = tmp_path / "in.csv"
    src.write_text("subject,text\nHi,Our boots are waterproof.\nHey,I will kill you\n")
    out = tmp_path / "out.csv"
    assert main(["screen", "--input", str(src), "--out", str(out), "--screener", "local", "--screener", kind]) == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["screener"] for r in rows] == ["local", "local", kind, kind]
    assert int(rows[3]["violence"]) >= 6 and rows[3]["decision"] == "block"
