"""End-to-end: the whole campaign flow on a temporary Prefect server (one per session)."""
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
CHECK_RUN_DIR = ROOT.parent / "shared" / "tools" / "check-run-dir"
CONTRACT_FILES = ["report.md", "report.html", "audit_log.csv", "variants.jsonl", "assignments.csv", "outcomes.csv",
                  "results.csv", "attribution.csv", "manifest.json"]
NUMBER = re.compile(r"(?<![\w.])\$?\d[\d,]*(?:\.\d+)?%?")

pytestmark = pytest.mark.usefixtures("prefect_harness")


def variants_of(run):
    return [json.loads(line) for line in (run / "variants.jsonl").read_text().splitlines() if line.strip()]


def rows_of(run, name):
    with (run / name).open() as f:
        return list(csv.DictReader(f))


def grounded(variant, texts):
    norm = lambda n: n.replace(",", "").replace("$", "").rstrip("%")  # noqa: E731
    cited = {norm(n) for c in variant["citations"] for n in NUMBER.findall(texts[c])}
    brand = {norm(n) for n in NUMBER.findall((ROOT / "config" / "brand.yaml").read_text())}
    body = re.sub(r"https?://\S+", " ", variant["subject"] + " " + variant["body"])
    return [n for n in NUMBER.findall(body) if norm(n) not in cited | brand]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "demo"
    assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 0
    return run


def test_demo_writes_every_contract_file(demo_run):
    assert all((demo_run / f).is_file() for f in CONTRACT_FILES)
    manifest = json.loads((demo_run / "manifest.json").read_text())
    assert manifest["simulated"] is True and manifest["status"] == "complete"
    assert set(manifest["seconds"]) >= {"ingest", "segment", "generate+screen", "assign", "analyze", "report"}
    assert all(len(v["sha256"]) == 64 for v in manifest["inputs"].values())


def test_demo_meets_the_poc_bar(demo_run):
    variants = variants_of(demo_run)
    passed = [v for v in variants if v["status"] == "passed"]
    per_segment = {}
    for v in passed:
        per_segment[v["segment"]] = per_segment.get(v["segment"], 0) + 1
    assert sum(n >= 3 for n in per_segment.values()) >= 3
    assert len(passed) / len(variants) > 0.9


def test_only_passed_variants_and_no_opted_out_customers_assigned(demo_run):
    status = {v["variant_id"]: v["status"] for v in variants_of(demo_run)}
    assignments = rows_of(demo_run, "assignments.csv")
    assert all(status[a["variant_id"]] == "passed" for a in assignments if a["variant_id"])
    opted_out = set(pl.read_csv(SAMPLE / "customers.csv").filter(~pl.col("email_opt_in"))["customer_id"])
    assert opted_out and not opted_out & {a["customer_id"] for a in assignments}


def test_citations_and_numbers_are_grounded(demo_run, documents):
    texts = {d.id: d.text for d in documents}
    for v in variants_of(demo_run):
        if v["status"] == "passed":
            assert v["citations"] and set(v["citations"]) <= set(texts)
            assert grounded(v, texts) == [], v["variant_id"]


def test_results_and_report(demo_run):
    results = pl.read_csv(demo_run / "results.csv")
    assert {"opened", "clicked", "converted"} <= set(results["metric"])
    assert (results["p_value_adjusted"] >= results["p_value"] - 1e-12).all()
    report = (demo_run / "report.md").read_text()
    assert "SIMULATED" in report and "Sample-ratio" in report
    assert "<svg" in (demo_run / "report.html").read_text()


def test_audit_verify_passes_and_catches_tampering(demo_run, tmp_path, capsys):
    assert main(["audit", "verify", str(demo_run)]) == 0
    copy = tmp_path / "tampered"
    shutil.copytree(demo_run, copy)
    text = (copy / "audit_log.csv").read_text().splitlines()
    text[1] = text[1].replace(",pass,", ",block,", 1)
    (copy / "audit_log.csv").write_text("\n".join(text) + "\n")
    assert main(["audit", "verify", str(copy)]) == 1
    assert "row 1" in capsys.readouterr().out


@pytest.mark.skipif(not CHECK_RUN_DIR.exists(), reason="shared/tools/check-run-dir is not beside the repo")
def test_contract_checker_accepts_the_demo(demo_run):
    opted = demo_run.parent / "opted_out.txt"
    opted.write_text("\n".join(pl.read_csv(SAMPLE / "customers.csv").filter(~pl.col("email_opt_in"))["customer_id"]))
    out = subprocess.run([sys.executable, str(CHECK_RUN_DIR), str(demo_run), str(SAMPLE / "content"), str(opted)],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_renamed_columns_and_unseen_json_content(tmp_path, documents):
    df = pl.read_csv(SAMPLE / "customers.csv").rename(
        {"customer_id": "id", "recency_days": "last_engagement_days", "frequency": "orders_12m", "monetary": "spend_usd"})
    df.write_csv(tmp_path / "crm_export.csv")
    content = tmp_path / "content"
    content.mkdir()
    docs = [("k-101", "Alpine Stove", "The Alpine stove boils a litre of water in 3 minutes and costs $89."),
            ("k-102", "Winter Sale", "Save 25% on all stoves until January 15, 2030. Use code STOVE25 at checkout."),
            ("k-103", "Member Points", "Members earn 2 points per dollar on every stove. Points never expire."),
            ("k-104", "Repairs", "We repair any stove we sell for free within 2 years of purchase."),
            ("k-105", "Fuel Canisters", "Our fuel canisters hold 230 grams and fit every Alpine stove.")]
    for i, title, text in docs:
        (content / f"{i}.json").write_text(json.dumps({"document_id": i, "title": title, "body": text}))
    run = tmp_path / "run"
    code = main(["run", "--approve-as", "test-manager", "--customers", str(tmp_path / "crm_export.csv"), "--content", str(content), "--out", str(run),
                 "--column", "customer_id=id", "--column", "recency_days=last_engagement_days",
                 "--column", "frequency=orders_12m", "--column", "monetary=spend_usd"])
    assert code == 0
    texts = {i: t for i, _, t in docs}
    passed = [v for v in variants_of(run) if v["status"] == "passed"]
    assert len(passed) >= 9
    for v in passed:
        assert set(v["citations"]) <= set(texts) and grounded(v, texts) == []
    assert main(["audit", "verify", str(run)]) == 0


def test_safety_gate_fails_closed(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(ROOT / "config" / "campaign.yaml", config)
    policy = (ROOT / "config" / "policy.yaml").read_text()
    (config / "policy.yaml").write_text(re.sub(r"category_thresholds: .*", "category_thresholds: {hate: 0, self_harm: 0, sexual: 0, violence: 0}", policy))
    run = tmp_path / "run"
    assert main(["run", "--approve-as", "test-manager", "--config", str(config / "campaign.yaml"), "--out", str(run)]) == 3
    assert not (run / "assignments.csv").exists() and not (run / "manifest.json").exists()
    assert json.loads((run / "run_status.json").read_text())["status"] == "failed"
    assert rows_of(run, "audit_log.csv")  # the evidence of every block is kept


def test_bad_customer_file_exits_2_naming_column_and_rows(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,recency_days,frequency,monetary,email\n1,5,2,10,a@example.com\n1,5,2,-3,not-an-email\n")
    assert main(["run", "--approve-as", "test-manager", "--customers", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "customer_id" in err and "monetary" in err
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_blocked_variant_is_regenerated_with_another_strategy(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(ROOT / "config" / "campaign.yaml", config)
    brand = (ROOT / "config" / "brand.yaml").read_text()
    (config / "brand.yaml").write_text(brand.replace("competitors: [", "competitors: [Trail Points, "))
    run = tmp_path / "run"
    assert main(["run", "--approve-as", "test-manager", "--config", str(config / "campaign.yaml"), "--out", str(run)]) == 0
    variants = variants_of(run)
    blocked = [v for v in variants if v["status"] == "blocked"]
    assert blocked, "some copy quotes 'Trail Points' and must be blocked"
    for b in blocked:
        again = [v for v in variants if v["segment"] == b["segment"] and v["slot"] == b["slot"] and v["attempt"] > b["attempt"]]
        assert again and again[0]["strategy"] != b["strategy"]
    audit = [r for r in rows_of(run, "audit_log.csv") if r["event"] == "screen" and r["variant_id"] != "control.bau"]
    assert len(audit) == len(variants) and {r["decision"] for r in audit} == {"pass", "block"}
    assert main(["audit", "verify", str(run)]) == 0
