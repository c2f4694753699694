"""`cpo run` on inputs and settings of other people's making: refused with exit 2 or 3, one clear message,
no traceback, nothing written, personal data masked everywhere (terminal, run_status.json, Prefect's log)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from flows.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
pytestmark = pytest.mark.usefixtures("prefect_harness")


def sample(tmp_path, name="c.csv", transform=lambda df: df):
    path = tmp_path / name
    transform(pl.read_csv(SAMPLE / "customers.csv")).write_csv(path)
    return str(path)


def config_with(tmp_path, **campaign_changes):
    folder = tmp_path / "cfg"
    shutil.copytree(ROOT / "config", folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    data = yaml.safe_load((folder / "campaign.yaml").read_text())
    for dotted, value in campaign_changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    (folder / "campaign.yaml").write_text(yaml.safe_dump(data))
    return str(folder / "campaign.yaml")


CASES = {
    "no consent column": lambda t: ["--customers", sample(t, transform=lambda d: d.drop("email_opt_in"))],
    "header only": lambda t: ["--customers", sample(t, transform=lambda d: d.head(0))],
    "all opted out": lambda t: ["--customers", sample(t, transform=lambda d: d.with_columns(email_opt_in=False))],
    "one customer": lambda t: ["--customers", sample(t, transform=lambda d: d.head(1))],
    "negative seed": lambda t: ["--seed", "-3"],
    "zero treatment weight": lambda t: ["--config", config_with(
        t, **{"experiment.treatment_weights": {"treatment_1": 1, "treatment_2": 0, "treatment_3": 1}})],
    "unknown metric": lambda t: ["--config", config_with(t, **{"experiment.metrics": ["opened", "purchases"]})],
    "only expired content": lambda t: ["--content", str(expired_content(t))],
    "out is a file": lambda t: ["--out", str(t / "afile")],
    "semicolon latin-1 file with a comma decimal": lambda t: ["--customers", str(european(t))],
}


def expired_content(tmp_path):
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / "old.json").write_text(json.dumps({"id": "old", "title": "Old", "content": "An old offer.",
                                                 "expires_at": "2020-01-01"}))
    return folder


def european(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_bytes("customer_id;recency_days;frequency;monetary;email_opt_in;first_name\n"
                     "c1;3;2;1.234,50;ja;José\n".encode("latin-1"))
    return path


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, case):
    (tmp_path / "afile").write_text("not a folder")
    args = CASES[case](tmp_path)
    out = ["--out", str(tmp_path / "run")] if "--out" not in args else []
    assert main(["run", "--approve-as", "test-manager", *args, *out]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run").exists(), "a refused run wrote files"


def test_no_consent_message_says_how_to_fix(tmp_path, capsys):
    assert main(["run", "--approve-as", "test-manager", *CASES["no consent column"](tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--column email_opt_in=" in err and "--all-opted-in" in err


def test_declared_consent_is_stated_in_manifest_and_report(tmp_path):
    run = tmp_path / "run"
    customers = sample(tmp_path, transform=lambda d: d.drop("email_opt_in"))
    assert main(["run", "--approve-as", "test-manager", "--customers", customers, "--all-opted-in", "double opt-in at sign-up (CRM 2026-11)",
                 "--out", str(run)]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["consent"]["basis"] == "double opt-in at sign-up (CRM 2026-11)"
    assert "Consent DECLARED" in manifest["declarations"][0]
    report = (run / "report.md").read_text()
    assert report.index("Declared by the operator") < report.index("Headline")
    assert "double opt-in at sign-up" in report


def test_personal_data_never_reaches_prefect_or_the_terminal(tmp_path, capsys):
    """A validation failure on a file full of names and emails: masked in the terminal and in Prefect's
    logs and flow-run state."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, LogFilter, LogFilterFlowRunId

    path = tmp_path / "c.csv"
    pl.DataFrame({"customer_id": ["c1", "c2"], "recency_days": [1, -9], "frequency": [1, 1], "monetary": [1, 1],
                  "email_opt_in": [True, True], "email": ["zelda.fitzgerald@example.org", "ann.bee@example.org"],
                  "first_name": ["Zelda", "Ann"]}).write_csv(path)
    assert main(["run", "--approve-as", "test-manager", "--customers", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "recency_days" in err and "zelda" not in err.lower() and "ann.bee" not in err

    async def prefect_text():
        async with get_client() as client:
            runs = await client.read_flow_runs(sort="START_TIME_DESC", limit=1)
            logs = await client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[runs[0].id])))
            return " ".join([runs[0].state.message or ""] + [log.message for log in logs])
    text = asyncio.run(prefect_text())
    assert "recency_days" in text, "the message should be in Prefect's log"
    assert "zelda" not in text.lower() and "ann.bee" not in text and "Traceback" not in text


def test_the_terminal_shows_one_message_and_no_traceback(tmp_path):
    """A real process: exit 2 prints the message once, without Prefect's tracebacks; --debug shows them."""
    customers = sample(tmp_path, transform=lambda d: d.drop("email_opt_in"))
    cmd = [sys.executable, "-m", "flows.cli", "run", "--customers", customers, "--out", str(tmp_path / "r")]
    from prefect.settings import PREFECT_API_URL

    env = {"PATH": "/usr/bin:/bin", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "HOME": str(tmp_path),
           "PREFECT_HOME": str(tmp_path / ".prefect"),
           "PREFECT_API_URL": PREFECT_API_URL.value()}  # the session's server: no temporary one to start twice
    quiet = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert quiet.returncode == 2, quiet.stderr
    assert "Traceback" not in quiet.stderr + quiet.stdout
    assert (quiet.stderr + quiet.stdout).count("no consent column") == 1
    loud = subprocess.run([*cmd[:3], "--debug", *cmd[3:]], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert loud.returncode == 2 and "Traceback" in loud.stderr
