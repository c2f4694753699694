"""End to end: `cpo run` with CPO_RETRIEVER=azure-search against the local fake Azure AI Search service."""
import json

import pytest

from flows.cli import main
from tests.conftest import SAMPLE
from tests.fakes.search_server import FakeSearchService

KEY = "sk-flow-test-0a1b2c3d"

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_campaign_retrieves_from_azure_search(tmp_path, monkeypatch, capsys, documents):
    run = tmp_path / "run"
    with FakeSearchService(api_key=KEY) as svc:
        env = {"AZURE_SEARCH_ENDPOINT": svc.endpoint, "AZURE_SEARCH_API_KEY": KEY, "AZURE_SEARCH_INDEX": "cpo-sample"}
        for name, value in {**env, "CPO_RETRIEVER": "azure-search"}.items():
            monkeypatch.setenv(name, value)
        from flows.content import cmd_content_index
        assert cmd_content_index(type("Args", (), {"content": str(SAMPLE / "content")})()) == 0
        assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 0
        searches = svc.ops("docs:search")
    assert searches and all(r["key_ok"] and "approval_status eq 'approved'" in r["body"]["filter"] for r in searches)
    variants = [json.loads(line) for line in (run / "variants.jsonl").read_text().splitlines() if line.strip()]
    sample_ids = {d.id for d in documents}
    assert variants and all(v["citations"] and set(v["citations"]) <= sample_ids for v in variants)
    assert not {"promo-holiday-preview", "promo-spring-clearance"} & {c for v in variants for c in v["citations"]}
    texts = [p.read_text(errors="ignore") for p in run.rglob("*") if p.is_file()] + [capsys.readouterr().out]
    assert all(KEY not in t for t in texts)  # the key is never written to the run directory or the console
