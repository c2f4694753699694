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
    assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 0
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
    assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 1
    assert not (run / "assignments.csv").exists() and not (run / "manifest.json").exists()
    err = capsys.readouterr().err
    assert "503" in err and KEY not in err


def test_missing_key_is_an_input_error_before_any_work(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CPO_GENERATOR", "openai")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["run", "--approve-as", "test-manager", "--out", str(tmp_path / "run")]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_all_three_cloud_backends_together(fake, tmp_path, monkeypatch, documents):
    """Generation (OpenAI-compatible), retrieval (Azure AI Search) and screening (Azure AI Content Safety),
    each against its local fake, in one run."""
    from flows.content import cmd_content_index
    from tests.conftest import SAMPLE
    from tests.fakes.content_safety import FakeContentSafety
    from tests.fakes.search_server import FakeSearchService

    with FakeSearchService(api_key="search-key-123") as search, FakeContentSafety(key="cs-key-456") as safety:
        for name, value in {"CPO_RETRIEVER": "azure-search", "AZURE_SEARCH_ENDPOINT": search.endpoint,
                            "AZURE_SEARCH_API_KEY": "search-key-123", "AZURE_SEARCH_INDEX": "cpo",
                            "CPO_SCREENER": "azure", "AZURE_CONTENT_SAFETY_ENDPOINT": safety.url,
                            "AZURE_CONTENT_SAFETY_KEY": "cs-key-456"}.items():
            monkeypatch.setenv(name, value)
        assert cmd_content_index(type("Args", (), {"content": str(SAMPLE / "content")})()) == 0
        run = tmp_path / "run"
        assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 0
        assert search.ops("docs:search") and safety.requests and fake.requests
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["backends"] == {"generator": "openai", "retriever": "azure-search", "screener": "azure",
                                    "rate_limits": "process"}
    audit = pl.read_csv(run / "audit_log.csv").filter(pl.col("event") == "screen")
    assert set(audit["screener"]) == {"azure"}
    assert main(["audit", "verify", str(run)]) == 0
    everything = "".join(p.read_text(errors="ignore") for p in run.iterdir() if p.is_file())
    assert not any(k in everything for k in (KEY, "search-key-123", "cs-key-456"))
