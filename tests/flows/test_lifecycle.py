"""The life of a run: the approval gate, resume after kill -9, one run per folder, refused changes."""
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from flows.cli import main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("prefect_harness")
CRASH = Path(__file__).with_name("crash_after.py")


def status(run):
    return json.loads((run / "run_status.json").read_text())


def audit_rows(run):
    with (run / "audit_log.csv").open() as f:
        return list(csv.DictReader(f))


def child_env():
    """Subprocesses use the session's Prefect server instead of starting their own."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted, pre-approved run to compare crashed-and-resumed runs with."""
    run = tmp_path_factory.mktemp("ref") / "run"
    assert main(["run", "--approve-as", "test-manager", "--out", str(run)]) == 0
    return run


def test_run_stops_at_the_gate_then_approve_completes_it(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"cpo approve {run} --by NAME" in out and f"cpo reject {run}" in out
    assert status(run)["status"] == "awaiting_approval"
    assert (run / "design.md").exists() and json.loads((run / "design.json").read_text())["primary_metric"] == "clicked"
    assert not (run / "outcomes.csv").exists() and not (run / "results.csv").exists()
    sealed = json.loads((run / "audit_anchor.json").read_text())["files"]
    assert {"design.md", "design.json", "run_inputs.json"} <= set(sealed)  # what the manager reads is evidence
    assert main(["approve", str(run), "--by", "Maria Manager", "--comment", "go"]) == 0
    assert status(run)["status"] == "complete" and (run / "results.csv").exists()
    sealed = json.loads((run / "audit_anchor.json").read_text())["files"]
    assert {"design.md", "approval.json", "report.md", "report.html", "attribute_lifts.csv",
            "variant_factors.csv"} <= set(sealed)
    approval = [r for r in audit_rows(run) if r["event"] == "approval"]
    assert len(approval) == 1 and approval[0]["actor"] == "Maria Manager"
    from tasks.rundir import sha256_of
    assert approval[0]["content_sha256"] == sha256_of(run / "design.json")
    manifest = json.loads((run / "manifest.json").read_text())
    assert {"segment", "generate+screen", "assign", "design"} <= set(manifest["stages_reused"])
    assert main(["audit", "verify", str(run)]) == 0


def test_reject_ends_the_run_with_nothing_sent(tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0
    assert main(["reject", str(run), "--by", "Maria Manager", "--reason", "wrong season"]) == 0
    assert status(run)["status"] == "rejected"
    assert not (run / "outcomes.csv").exists() and not (run / "manifest.json").exists()
    assert [r["decision"] for r in audit_rows(run) if r["event"] == "rejection"] == ["reject"]
    assert main(["approve", str(run), "--by", "someone else"]) == 2  # a rejected run stays rejected


def test_a_changed_policy_refuses_the_old_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config", folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    policy = yaml.safe_load((folder / "policy.yaml").read_text())
    policy["category_thresholds"]["hate"] = 4  # stricter: a new policy all the same
    (folder / "policy.yaml").write_text(yaml.safe_dump(policy))
    before = sorted(p.name for p in run.iterdir())
    assert main(["run", "--config", str(folder / "campaign.yaml"), "--out", str(run)]) == 2
    assert "screening policy" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_second_run_into_a_live_folder_exits_2_at_once(tmp_path, capsys):
    run = tmp_path / "run"
    base = pl.read_csv(ROOT / "data" / "sample" / "customers.csv", infer_schema_length=None)
    big = tmp_path / "customers.csv"  # 60,000 customers: the first run is still live when the second arrives
    pl.concat([base.with_columns(pl.col("customer_id") + f"-{k}") for k in range(120)]).write_csv(big)
    first = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", "--approve-as", "m", "--out", str(run),
                              "--customers", str(big)],
                             cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not ((run / "run_status.json").exists() and status(run).get("status") == "running"):
            assert time.time() < deadline and first.poll() is None, "the first run never started"
            time.sleep(0.1)
        started = time.time()
        assert main(["run", "--approve-as", "m", "--out", str(run), "--customers", str(big)]) == 2
        assert time.time() - started < 30
        assert f"pid {first.pid}" in capsys.readouterr().err
    finally:
        assert first.wait(timeout=300) == 0
    assert status(run)["status"] == "complete" and main(["audit", "verify", str(run)]) == 0


def test_kill_9_at_every_stage_boundary_then_the_same_command_resumes_to_the_same_result(tmp_path, reference):
    """One folder, killed with SIGKILL after each stage in turn (and once in the middle of screening); each time
    the same command again resumes it, until an uninterrupted last run completes it."""
    run = tmp_path / "run"
    args = ["run", "--approve-as", "test-manager", "--out", str(run)]
    for where in ["segment", "audit:7", "generate+screen", "assign", "approval", "engage", "analyze", "explain"]:
        crashed = subprocess.run([sys.executable, str(CRASH), where, *args], cwd=ROOT, env=child_env(),
                                 capture_output=True, timeout=300)
        assert crashed.returncode == -9, (where, crashed.stderr[-2000:])
        assert status(run)["status"] == "running"  # what a dead run looks like until the next start
        marker = run / "stages" / f"{where.replace('+', '_')}.done.json"
        assert where.startswith("audit") or marker.exists(), where
        screens = [(r["variant_id"], r["attempt"]) for r in audit_rows(run) if r["event"] == "screen"] \
            if (run / "audit_log.csv").exists() else []
        assert len(screens) == len(set(screens)), f"a variant was screened twice (after {where})"
    assert main(args) == 0
    assert status(run)["status"] == "complete"
    assert (run / "assignments.csv").read_bytes() == (reference / "assignments.csv").read_bytes()
    assert pl.read_csv(run / "results.csv").equals(pl.read_csv(reference / "results.csv"))
    assert (run / "variants.jsonl").read_bytes() == (reference / "variants.jsonl").read_bytes()
    assert (run / "design.json").read_bytes() == (reference / "design.json").read_bytes()  # no `rollout_plan: null`
    screens = [(r["variant_id"], r["attempt"]) for r in audit_rows(run) if r["event"] == "screen"]
    assert len(screens) == len(set(screens)) == len(json.loads("[" + ",".join(
        (reference / "variants.jsonl").read_text().splitlines()) + "]")) + 1  # and the control message
    assert len([r for r in audit_rows(run) if r["event"] == "approval"]) == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert {"segment", "generate+screen", "assign", "engage", "analyze"} <= set(manifest["stages_reused"])
    assert main(["audit", "verify", str(run)]) == 0


def test_a_deployment_run_waits_for_the_resume_form_in_prefect(tmp_path):
    """Through a real Prefect server: `cpo serve` runs the deployment; its run suspends at the gate; the Resume
    form's input approves it (the audit names the approver) or rejects it (nothing sent)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.flow_runs import resume_flow_run

    env = {**child_env(), "CPO_RUNS_DIR": str(tmp_path / "runs"), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    server = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--name", "gate-test", "--limit", "2"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for(flow_run_id, done, what, limit=240):
        deadline = time.time() + limit
        with get_client(sync_client=True) as client:
            while time.time() < deadline:
                state = client.read_flow_run(flow_run_id).state
                if done(state):
                    return state
                assert server.poll() is None, "cpo serve stopped"
                time.sleep(0.5)
        raise AssertionError(f"flow run never {what}; last state {state}")

    try:
        deadline = time.time() + 120
        runs = {}
        for name in ("approved", "rejected"):
            parameters = {"out": str(tmp_path / name)} if name == "rejected" else {}  # approved: under CPO_RUNS_DIR
            while True:
                try:
                    runs[name] = run_deployment("campaign/gate-test", parameters=parameters, timeout=0)
                    break
                except Exception:  # noqa: BLE001 - the deployment appears once `cpo serve` has started
                    assert time.time() < deadline and server.poll() is None, "cpo serve never registered"
                    time.sleep(1)
        folders = {"approved": tmp_path / "runs" / f"winter-outdoor-{str(runs['approved'].id)[:8]}",
                   "rejected": tmp_path / "rejected"}
        for name, flow_run in runs.items():
            wait_for(flow_run.id, lambda s: s is not None and s.is_paused(), "suspended")
            assert status(folders[name])["status"] == "awaiting_approval"
            assert not (folders[name] / "outcomes.csv").exists()
        resume_flow_run(runs["approved"].id, run_input={"approve": True, "approver": "Dana Director"})
        resume_flow_run(runs["rejected"].id, run_input={"approve": False, "approver": "Dana Director",
                                                        "comment": "not this week"})
        for name, flow_run in runs.items():
            state = wait_for(flow_run.id, lambda s: s is not None and s.is_final(), "finished")
            assert state.is_completed(), state
        approved, rejected = folders["approved"], folders["rejected"]
        assert [p.name for p in (tmp_path / "runs").iterdir()] == [approved.name]  # resumed in its own folder
        assert status(approved)["status"] == "complete" and (approved / "results.csv").exists()
        assert [(r["event"], r["actor"]) for r in audit_rows(approved) if r["event"] != "screen"] == [
            ("approval", "Dana Director")]
        assert main(["audit", "verify", str(approved)]) == 0
        assert status(rejected)["status"] == "rejected" and not (rejected / "outcomes.csv").exists()
        assert [r["reason"] for r in audit_rows(rejected) if r["event"] == "rejection"] == ["Prefect UI: not this week"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_nobody_approves_by_editing_a_file(tmp_path, capsys):
    from tasks.rundir import sha256_of

    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0
    (run / "approval.json").write_text(json.dumps({"decision": "approve", "by": "nobody", "text": "", "how": "x",
                                                   "at": "x", "design_sha256": sha256_of(run / "design.json")}))
    assert main(["run", "--out", str(run)]) == 2
    assert "audit log does not record" in capsys.readouterr().err
    assert not (run / "outcomes.csv").exists()


def test_a_refused_run_leaves_the_folder_status_alone(tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0
    before = (run / "run_status.json").read_text()
    assert main(["run", "--seed", "99", "--out", str(run)]) == 2
    assert (run / "run_status.json").read_text() == before
    assert main(["approve", str(run), "--by", "Maria Manager"]) == 0


def test_a_folder_without_run_inputs_is_not_resumed(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0
    (run / "run_inputs.json").unlink()
    assert main(["run", "--seed", "99", "--out", str(run)]) == 2
    assert "no run_inputs.json" in capsys.readouterr().err


def test_another_column_mapping_refuses_the_folder_and_approve_as_does_not(tmp_path, capsys):
    """--column is a run parameter, not a file: a folder started under one consent column is never resumed under
    another (its ingest and consent decision would be reused), while --approve-as changes no decision."""
    base = pl.read_csv(ROOT / "data" / "sample" / "customers.csv", infer_schema_length=None).drop("email_opt_in")
    customers = tmp_path / "customers.csv"
    base.with_columns(pl.lit("yes").alias("gdpr_a"),
                      pl.when(pl.int_range(pl.len()) % 2 == 1).then(pl.lit("yes")).otherwise(pl.lit("no"))
                      .alias("gdpr_b")).write_csv(customers)
    run = tmp_path / "run"
    common = ["run", "--customers", str(customers), "--send", "export", "--out", str(run)]
    assert main([*common, "--column", "email_opt_in=gdpr_a"]) == 0
    before = sorted(p.name for p in run.iterdir())
    capsys.readouterr()
    assert main([*common, "--column", "email_opt_in=gdpr_b", "--approve-as", "t"]) == 2
    err = capsys.readouterr().err
    assert "--column mapping" in err and "Use a new --out" in err and "Traceback" not in err
    assert sorted(p.name for p in run.iterdir()) == before and status(run)["status"] == "awaiting_approval"
    assert main([*common, "--column", "email_opt_in=gdpr_a", "--approve-as", "t"]) == 0  # the same run, approved
    assert status(run)["status"] == "awaiting_outcomes" and (run / "sends.csv").exists()


def test_what_a_resume_compares():
    from tasks.lifecycle import differences

    def inputs(columns=None, suppress=("s1", "s2"), **parameters):
        return {"parameters": {"columns": columns, **parameters}, "config": {}, "policy_version": "p", "brand": {},
                "strategies_sha256": "s", "backends": {}, "seed": 1,
                "inputs": {"customers": {"path": "c.csv", "sha256": "c"},
                           **{f"suppress_{i}": {"path": f"x{i}", "sha256": s} for i, s in enumerate(suppress, 1)}}}

    old = inputs({"email_opt_in": "gdpr_a"})
    assert differences(old, inputs({"email_opt_in": "gdpr_b"})) == ["--column mapping"]
    assert differences(inputs(None), inputs({"recency_days": "r"})) == ["--column mapping"]
    assert differences(inputs(None), inputs({})) == []  # no mapping either way (CLI {} or deployment None)
    assert differences(old, inputs({"email_opt_in": "gdpr_a"}, suppress=("s2", "s1"))) == []  # order of --suppress
    assert differences(old, inputs({"email_opt_in": "gdpr_a"}, suppress=("s1",))) == ["input 'suppress'"]
    assert differences(old, inputs({"email_opt_in": "gdpr_a"}, approve_as="someone")) == []
    old_folder = {k: v for k, v in inputs().items() if k != "parameters"}  # run_inputs.json of an older cpo
    assert differences({**old_folder, "parameters": {}}, inputs()) == []


def test_an_approve_the_run_refuses_records_nothing(tmp_path, capsys):
    """`cpo approve` records the approval only once every check of the run passed: refused (a policy changed
    since the gate, a design edited before approval), it leaves the log, the status and the evidence as they were."""
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config", folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    run = tmp_path / "run"
    assert main(["run", "--config", str(folder / "campaign.yaml"), "--out", str(run), "--send", "export"]) == 0
    log, design = (run / "audit_log.csv").read_bytes(), (run / "design.json").read_bytes()

    (run / "design.json").write_bytes(design.replace(b'"clicked"', b'"opened"', 1))
    capsys.readouterr()
    assert main(["approve", str(run), "--by", "Maria"]) == 2
    err = capsys.readouterr().err
    assert "edited after the run wrote it and before anyone approved it" in err and "after it was approved" not in err
    (run / "design.json").write_bytes(design)

    policy = folder / "policy.yaml"
    original = policy.read_text()
    changed = yaml.safe_load(original)
    changed["category_thresholds"]["hate"] -= 1
    policy.write_text(yaml.safe_dump(changed))
    assert main(["approve", str(run), "--by", "Maria"]) == 2
    assert "screening policy" in capsys.readouterr().err
    assert (run / "audit_log.csv").read_bytes() == log and not (run / "approval.json").exists()
    assert status(run)["status"] == "awaiting_approval"
    assert main(["audit", "verify", str(run)]) == 0
    policy.write_text(original)
    assert main(["reject", str(run), "--by", "Maria", "--reason", "not this season"]) == 0  # never "already approved"
    assert [r["event"] for r in audit_rows(run) if r["event"] != "screen"] == ["rejection"]
