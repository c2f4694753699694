"""`cpo run` with CPO_GENERATOR=openai against a local fake OpenAI-compatible server."""
import json

import polars as pl
import pytest

from flows.cli import main
from tests.fakes.openai_server import Fault, FakeOpenAI

pytestmark = pytest.mark.usefixtures("prefect_harness")
KEY = "sk-test-not-a-real-key-0123456789"


@pytest.fixture
def fake(monkeypatch, tmp_path):
    with FakeOpenAI() as server:
        monkeypatch.setenv("CPO_GENERATOR", "openai")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("CPO_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("CPO_OPENAI_BACKOFF", "0.05")
        yield server


def test_run_generates_through_the_server_and_screens_everything(fake, tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0
    variants = [json.loads(line) for line in (run / "variants.jsonl").read_text().splitlines()]
    assert variants and all(v["generator"] == "openai" for v in variants)
    audit = pl.read_csv(run / "audit_log.csv")
    assert set(v["variant_id"] for v in variants) <= set(audit["variant_id"])
    assert main(["audit", "verify", str(run)]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backends"]["generator"] == "openai" and manifest["generation_usage"]["totals"]["requests"] >= 1
    assert len(fake.requests) >= len(variants)
    everything = "".join(p.read_text(errors="ignore") for p in run.iterdir() if p.is_file())
    assert KEY not in everything  # secrets never reach the run directory


def test_endpoint_down_fails_closed_with_no_assignment(fake, tmp_path, capsys):
    fake.script(*[Fault.error(503)] * 500)
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 1
    assert not (run / "assignments.csv").exists() and not (run / "manifest.json").exists()
    err = capsys.readouterr().err
    assert "503" in err and KEY not in err


def test_missing_key_is_an_input_error_before_any_work(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CPO_GENERATOR", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["run", "--out", str(tmp_path / "run")]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err and not (tmp_path / "run").exists()
