"""A real campaign end to end: export -> the email service's events -> cpo outcomes -> cpo rollout.

Events are generated from the exported sends.csv in each service's documented format, with planted effects,
at-least-once duplicates, machine opens, bounces, unknown recipients and the seed list's own events.
"""
import csv
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from flows.cli import main
from tests.fakes.esp_events import write_esp_events
from tests.flows.test_trust import config_with

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "customers.csv"
pytestmark = pytest.mark.usefixtures("prefect_harness")

BASE = {"open": 0.30, "click": 0.06, "convert": 0.02, "revenue": 60.0, "unsubscribe": 0.004, "complaint": 0.001}


def customers(tmp_path, copies: int) -> Path:
    """The sample `copies` times over, each copy with its own ids and addresses; one in ten opted out and
    one in eight without a first name."""
    base = pl.read_csv(SAMPLE, infer_schema_length=None)
    frames = []
    for k in range(copies):
        frames.append(base.with_columns(
            (pl.col("customer_id") + f"-{k}").alias("customer_id"),
            (pl.lit(f"r{k}.") + pl.col("email")).alias("email"),
            pl.when(pl.int_range(pl.len()) % 8 == k % 8).then(None).otherwise(pl.col("first_name")).alias("first_name")))
    df = pl.concat(frames)
    path = tmp_path / "customers.csv"
    df.write_csv(path)
    return path


def suppression(tmp_path, df: pl.DataFrame) -> tuple[Path, Path, set[str]]:
    """Forty customers by id and twenty by address (upper-cased, padded: how a CRM export looks)."""
    by_id = tmp_path / "unsubscribed.csv"
    ids = df["customer_id"].to_list()[5:45]
    by_id.write_text("customer_id\n" + "\n".join(ids) + "\n")
    by_email = tmp_path / "complaints.csv"
    rows = df.slice(100, 20)
    by_email.write_text("Email\n" + "\n".join(f"  {e.upper()} " for e in rows["email"]) + "\n")
    return by_id, by_email, set(ids) | set(rows["customer_id"])


def exported(tmp_path, copies=12, extra=()) -> tuple[Path, Path, set[str]]:
    path = customers(tmp_path, copies)
    by_id, by_email, suppressed = suppression(tmp_path, pl.read_csv(path, infer_schema_length=None))
    seeds = tmp_path / "seeds.csv"
    seeds.write_text("email,first_name\nqa1@harborandpine.example.com,QA\nqa2@harborandpine.example.com,\n")
    run = tmp_path / "run"
    assert main(["run", "--customers", str(path), "--out", str(run), "--send", "export", "--approve-as", "manager",
                 "--suppress", str(by_id), "--suppress", str(by_email), "--seed-list", str(seeds), *extra]) == 0
    return run, path, suppressed


def sends_of(run: Path) -> pl.DataFrame:
    return pl.read_csv(run / "sends.csv", infer_schema_length=None, schema_overrides={"customer_id": pl.String})


def status(run: Path) -> dict:
    return json.loads((run / "run_status.json").read_text())


def events_rows(run: Path) -> list[dict]:
    with (run / "audit_log.csv").open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["event"] != "screen"]


@pytest.mark.parametrize("fmt", ["sendgrid", "mailchimp", "generic"])
def test_export_then_the_services_events_give_the_planted_lift(tmp_path, fmt):
    run, path, suppressed = exported(tmp_path)
    assert status(run)["status"] == "awaiting_outcomes"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["simulated"] is False and manifest["awaiting_outcomes"] is True
    assert main(["audit", "verify", str(run)]) == 0
    assert [r["event"] for r in events_rows(run)] == ["approval", "export"]

    sends, people = sends_of(run), pl.read_csv(path, infer_schema_length=None)
    real = sends.filter(pl.col("seed") == 0)
    opted_out = set(people.filter(~pl.col("email_opt_in"))["customer_id"])
    assert not set(real["customer_id"]) & (suppressed | opted_out)
    assert real.height == people.height - len(opted_out | suppressed)  # every other customer gets one email
    assert sends.filter(pl.col("seed") == 1).height == 2 * sends["variant_id"].n_unique()
    for r in sends.iter_rows(named=True):
        assert "Harbor & Pine Outfitters, 1200 Alder Street" in r["body"] and r["unsubscribe_url"] in r["body"]
        assert "{" not in r["subject"] + r["body"] and r["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    assert set(real.filter(pl.col("arm") == "control")["variant_id"]) == {"control.bau"}

    planted = {"control": BASE, "treatment_1": {**BASE, "click": 0.12}, "treatment_2": BASE, "treatment_3": BASE}
    ef = write_esp_events(sends, fmt, tmp_path / f"events.{'csv' if fmt == 'generic' else 'json'}", planted, seed=11,
                          run_id=run.name)
    assert main(["outcomes", str(run), "--events", str(ef.path), "--format", fmt]) == 0
    assert status(run)["status"] == "complete"
    assert main(["audit", "verify", str(run)]) == 0
    assert [r["event"] for r in events_rows(run)] == ["approval", "export", "outcomes"]

    # Duplicates, machine opens, bounces, seeds and strangers: outcomes.csv is the truth, recipient by recipient.
    outcomes = pl.read_csv(run / "outcomes.csv", schema_overrides={"customer_id": pl.String})
    truth = ef.truth.filter(pl.col("delivered") == 1)
    assert outcomes.height == truth.height
    joined = outcomes.join(truth, on="customer_id", suffix="_true")
    for metric in ("opened", "clicked", "unsubscribed", "complained"):
        assert (joined[metric] == joined[f"{metric}_true"]).all(), metric
    assert set(outcomes["customer_id"]).isdisjoint({"SEED0", "seed-001"})

    results = pl.read_csv(run / "results.csv")
    row = results.filter((pl.col("metric") == "clicked") & (pl.col("segment") == "all")
                         & (pl.col("arm") == "treatment_1")).row(0, named=True)
    assert row["rel_lift_ci_low"] <= 0.12 / 0.06 - 1 <= row["rel_lift_ci_high"], row
    assert row["significant"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["simulated"] is False and manifest["outcomes_read_back"]["duplicates"] > 0
    report = (run / "report.md").read_text()
    assert "MEASURED OUTCOMES" in report and "SIMULATED DATA" not in report
    assert "Guardrails" in report and "Winner per segment" in report
    assert not any(e in report for e in people["email"].head(200).to_list())


def test_control_without_email_is_analysed_as_intention_to_treat(tmp_path):
    run, _, _ = exported(tmp_path, copies=4, extra=["--config", config_with(tmp_path, **{"control_message.email": False})])
    sends = sends_of(run)
    assert "control" not in set(sends.filter(pl.col("seed") == 0)["arm"])
    assert not (run / "control_message.json").exists()
    assert "Control receives NO email" in (run / "design.md").read_text()
    assignments = pl.read_csv(run / "assignments.csv")
    ef = write_esp_events(sends, "generic", tmp_path / "events.csv", {a: BASE for a in set(sends["arm"])}, seed=2,
                          run_id=run.name)
    assert main(["outcomes", str(run), "--events", str(ef.path)]) == 0
    outcomes = pl.read_csv(run / "outcomes.csv")
    assert outcomes.height == assignments.filter(pl.col("arm") != "holdout").height  # every assigned customer
    assert "intention to treat" in (run / "report.md").read_text()


def test_outcomes_are_read_once_and_only_into_an_exported_run(tmp_path, capsys):
    simulated = tmp_path / "sim"
    assert main(["run", "--out", str(simulated), "--approve-as", "m"]) == 0
    events = tmp_path / "e.csv"
    events.write_text("customer_id,event,timestamp\nC00001,open,2026-11-30T10:00:00Z\n")
    assert main(["outcomes", str(simulated), "--events", str(events)]) == 2
    assert "no exported sends" in capsys.readouterr().err
    assert main(["rollout", str(simulated), "--customers", str(SAMPLE), "--out", str(tmp_path / "r")]) == 2
    assert "SIMULATED" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_ids_a_spreadsheet_would_run_are_the_same_in_every_csv_and_match_the_events_either_way(tmp_path):
    """sends.csv quotes `=X004` as `'=X004` like assignments.csv and outcomes.csv; the service sends back the id
    as it got it (or unquoted, after a spreadsheet): both match the recipient."""
    risky = ["=X004", "+X003", "-X001", "@u002"]
    people = pl.read_csv(SAMPLE, infer_schema_length=None).filter(pl.col("email_opt_in"))
    people = people.with_columns(pl.Series("customer_id", risky + people["customer_id"].to_list()[4:]))
    path, run = tmp_path / "customers.csv", tmp_path / "run"
    people.write_csv(path)
    assert main(["run", "--customers", str(path), "--out", str(run), "--send", "export", "--approve-as", "m"]) == 0
    read = lambda name: pl.read_csv(run / name, infer_schema=False)  # noqa: E731
    sent = read("sends.csv").filter(pl.col("seed") == "0")
    quoted = {"'" + i for i in risky}
    assert quoted <= set(sent["customer_id"]) and not set(risky) & set(sent["customer_id"])
    assert set(sent["customer_id"]) <= set(read("assignments.csv")["customer_id"])
    events = tmp_path / "events.csv"
    with events.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "event", "timestamp"])
        for i, cid in enumerate(sent["customer_id"]):
            cid = cid[1:] if i % 2 and cid in quoted else cid  # half come back unquoted
            out.writerows([[cid, "delivered", "2026-12-01T10:00:00Z"], [cid, "open", "2026-12-01T11:00:00Z"]])
    assert main(["outcomes", str(run), "--events", str(events), "--format", "generic"]) == 0
    outcomes = read("outcomes.csv")
    assert set(outcomes["customer_id"]) == set(sent["customer_id"]) and (outcomes["opened"] == "1").all()
    assert json.loads((run / "manifest.json").read_text())["outcomes_read_back"]["unknown_recipients"] == 0


def test_rollout_sends_each_segments_planted_winner_with_the_holdout(tmp_path):
    """Each segment gets its own planted winner; in one segment a louder arm also drives people away: the
    guardrail stops it and the planted arm wins. The rollout keeps the configured holdout on control's message
    and never emails again anyone who was suppressed, unsubscribed, complained or bounced in the source run."""
    run, path, suppressed = exported(tmp_path, copies=24)
    sends = sends_of(run)
    segments = sorted(set(sends.filter(pl.col("seed") == 0)["segment"]))
    planted, expected = {}, {}
    for i, seg in enumerate(segments):
        arms = sorted(set(sends.filter((pl.col("segment") == seg) & (pl.col("seed") == 0))["arm"]) - {"control"})
        win = [a for a in arms if a != "treatment_2"][i % 2 if len(arms) > 2 else 0]
        expected[seg] = win
        for a in ["control", *arms]:
            planted[(seg, a)] = {**BASE, "click": 0.16} if a == win else BASE
        if i == 0:  # a louder arm that drives people away
            planted[(seg, "treatment_2")] = {**BASE, "click": 0.24, "unsubscribe": 0.06}
    planted.update({a: BASE for a in set(sends["arm"])})  # seeds' rows
    ef = write_esp_events(sends, "sendgrid", tmp_path / "events.json", planted, seed=5, run_id=run.name)
    assert main(["outcomes", str(run), "--events", str(ef.path), "--format", "sendgrid"]) == 0
    winners = {r["segment"]: r["arm"] for r in pl.read_csv(run / "winners.csv").iter_rows(named=True)}
    assert winners == expected
    guards = pl.read_csv(run / "guardrails.csv")
    assert guards.filter(pl.col("flagged") & (pl.col("metric") == "unsubscribed") & (pl.col("segment") == segments[0])
                         & (pl.col("arm") == "treatment_2")).height == 1

    rollout = tmp_path / "rollout"
    assert main(["rollout", str(run), "--customers", str(path), "--holdout", "0.2", "--out", str(rollout)]) == 0
    assert status(rollout)["status"] == "awaiting_approval"  # the same gate: nothing exported before approval
    assert not (rollout / "sends.csv").exists()
    assert run.name in (rollout / "design.md").read_text()
    assert main(["approve", str(rollout), "--by", "manager"]) == 0
    assert status(rollout)["status"] == "awaiting_outcomes"
    assert main(["audit", "verify", str(rollout)]) == 0
    assert [r["event"] for r in events_rows(rollout)] == ["rollout", "approval", "export"]
    out = sends_of(rollout).filter(pl.col("seed") == 0)
    harmed = set(ef.truth.filter((pl.col("unsubscribed") == 1) | (pl.col("complained") == 1)
                                 | (pl.col("delivered") == 0))["customer_id"])
    assert harmed and not set(out["customer_id"]) & (harmed | suppressed)
    source_variants = {(v["segment"], v["slot"]): v["variant_id"] for v in map(json.loads, (run / "variants.jsonl").open())
                       if v["status"] == "passed"}
    for seg, win in expected.items():
        got = out.filter(pl.col("segment") == seg)
        treated = got.filter(pl.col("arm") == "treatment_1")
        assert set(treated["variant_id"]) == {source_variants[(seg, int(win.rsplit("_", 1)[1]))]}
        assert set(got.filter(pl.col("arm") == "control")["variant_id"]) == {"control.bau"}
    share = out.filter(pl.col("arm") == "control").height / out.height
    assert abs(share - 0.2) < 3 * (0.2 * 0.8 / out.height) ** 0.5, share
    assert str(run.resolve()) in json.loads((rollout / "design.json").read_text())["send"]["rollout"]["source_path"]
    assert main(["rollout", str(run), "--customers", str(path), "--holdout", "0.9", "--out", str(tmp_path / "r9")]) == 2
    assert not (tmp_path / "r9").exists()


def test_a_rollout_never_emails_again_an_address_that_unsubscribed_or_bounced_whatever_its_id(tmp_path):
    """Today's customer file re-keys every id (`N-C00001`): the addresses that unsubscribed, complained or
    bounced in the source run are still left out."""
    people = pl.read_csv(SAMPLE, infer_schema_length=None)
    run = tmp_path / "run"
    assert main(["run", "--customers", str(SAMPLE), "--out", str(run), "--send", "export", "--approve-as", "m"]) == 0
    sent = sends_of(run).filter(pl.col("seed") == 0)
    harmed = {i: ("unsubscribe", "complaint", "bounce")[i % 3] for i in range(0, sent.height, 16)}
    events = tmp_path / "events.csv"
    with events.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["customer_id", "event", "timestamp"])
        for i, cid in enumerate(sent["customer_id"]):
            if harmed.get(i) != "bounce":
                out.writerow([cid, "delivered", "2026-12-01T10:00:00Z"])
            if i in harmed:
                out.writerow([cid, harmed[i], "2026-12-01T12:00:00Z"])
    assert main(["outcomes", str(run), "--events", str(events), "--format", "generic"]) == 0
    rekeyed = tmp_path / "rekeyed.csv"
    people.with_columns((pl.lit("N-") + pl.col("customer_id")).alias("customer_id")).write_csv(rekeyed)
    rollout = tmp_path / "rollout"
    assert main(["rollout", str(run), "--customers", str(rekeyed), "--out", str(rollout), "--approve-as", "m"]) == 0
    again = sends_of(rollout).filter(pl.col("seed") == 0)
    assert again["customer_id"].str.starts_with("N-").all()
    again = {e.strip().lower() for e in again["email"]}
    gone = {sent["email"][i].lower() for i in harmed}
    assert len(gone) == len(harmed) and again and not again & gone


def test_outcomes_survive_a_bad_file_a_crash_and_a_changed_customer_file(tmp_path, capsys):
    """Nothing is recorded from a file without this run's events; the customer file moving on after the export
    does not block the run; the same file again finishes it; another file is refused."""
    run, path, _ = exported(tmp_path, copies=2)
    sends = sends_of(run)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    other = write_esp_events(sends, "sendgrid", tmp_path / "other.json", {a: BASE for a in set(sends["arm"])},
                             seed=1, run_id="another-run")
    for bad in (empty, other.path):
        assert main(["outcomes", str(run), "--events", str(bad), "--format", "sendgrid"]) == 2
        assert "Nothing was recorded" in capsys.readouterr().err
        assert status(run)["status"] == "awaiting_outcomes" and [r["event"] for r in events_rows(run)] == [
            "approval", "export"]
    with path.open("a") as f:  # the CRM export of the next day
        f.write(path.read_text().splitlines()[1].replace("C00001", "C99999") + "\n")
    good = write_esp_events(sends, "generic", tmp_path / "good.csv", {a: BASE for a in set(sends["arm"])}, seed=4,
                            run_id=run.name)
    assert main(["outcomes", str(run), "--events", str(good.path)]) == 0
    assert status(run)["status"] == "complete"
    assert main(["outcomes", str(run), "--events", str(good.path)]) == 0  # the same file: nothing new
    assert [r["event"] for r in events_rows(run)] == ["approval", "export", "outcomes"]
    assert main(["outcomes", str(run), "--events", str(other.path), "--format", "sendgrid"]) == 2
    assert main(["audit", "verify", str(run)]) == 0
    for name in ("outcomes.csv", "results.csv", "winners.csv"):
        shutil.copy(run / name, tmp_path / name)
        with (run / name).open("a") as f:
            f.write("\n")
        assert main(["audit", "verify", str(run)]) == 1
        shutil.copy(tmp_path / name, run / name)


def test_a_copied_or_renamed_run_folder_keeps_its_run_id(tmp_path):
    """The run id comes from the run (run_inputs.json, the audit log), never from the folder's name: a folder
    copied elsewhere (cp -a R R2) is approved, read back and verified as the run it is."""
    path = customers(tmp_path, 2)
    run, moved = tmp_path / "R", tmp_path / "R2"
    assert main(["run", "--customers", str(path), "--out", str(run), "--send", "export"]) == 0  # at the gate
    shutil.copytree(run, moved, symlinks=True)
    assert main(["approve", str(moved), "--by", "Maria"]) == 0
    ef = write_esp_events(sends_of(moved), "generic", tmp_path / "events.csv",
                          {arm: BASE for arm in sends_of(moved)["arm"].unique()}, seed=3, run_id="R")
    assert main(["outcomes", str(moved), "--events", str(ef.path)]) == 0
    with (moved / "audit_log.csv").open(newline="") as f:
        assert {r["run_id"] for r in csv.DictReader(f)} == {"R"}
    assert json.loads((moved / "manifest.json").read_text())["run_id"] == "R"
    assert main(["audit", "verify", str(moved)]) == 0
