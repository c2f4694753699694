"""Scale-out (INTERFACE: Scale-out): the same assignments.csv byte for byte and the same results.csv to 1e-9
whichever task runner and partition size runs the per-customer stages, on about 200K customers.

One run per setting on a shared customer file: local with one partition, and a local Dask cluster (2 worker
processes) with three uneven ones (tests/test_files.py and tests/experiment/test_analysis.py check any cut of a
file on generated data). About a minute on the 2-core machine."""
import json
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tasks.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.flow]
N = 200_000


@pytest.fixture(scope="module")
def customer_file(tmp_path_factory):
    from scale import customers

    path = tmp_path_factory.mktemp("scale") / "customers.parquet"
    customers(N, seed=11).write_parquet(path)
    return path


def run(customer_file, folder, monkeypatch, runner, rows):
    from flows.campaign import campaign_flow

    monkeypatch.setenv("CPO_TASK_RUNNER", runner)
    monkeypatch.setenv("CPO_PARTITION_ROWS", str(rows))
    result = campaign_flow(customers=str(customer_file), out=str(folder), approve_as="scale test")
    assert result["status"] == "complete"
    manifest = json.loads((folder / "manifest.json").read_text())
    return manifest


def test_same_outputs_whatever_the_runner_and_the_partitions(customer_file, tmp_path, monkeypatch):
    settings = [("local", 250_000, 1), ("dask", 70_000, 3)]  # another runner and another (uneven) partitioning
    folders = []
    for runner, rows, parts in settings:
        folder = tmp_path / f"{runner}-{rows}"
        manifest = run(customer_file, folder, monkeypatch, runner, rows)
        assert (manifest["task_runner"], manifest["partitions"]) == (runner, parts)
        assert len(list((folder / "stages" / "assign").glob("part-*.parquet"))) == parts
        folders.append(folder)
    first = folders[0]
    assigned = (first / "assignments.csv").read_bytes()
    assert assigned.count(b"\n") > 0.9 * N  # nearly every customer opted in and is assigned
    results = pl.read_csv(first / "results.csv")
    assert results.height > 20
    for other in folders[1:]:
        assert (other / "assignments.csv").read_bytes() == assigned, other.name
        assert (other / "outcomes.csv").read_bytes() == (first / "outcomes.csv").read_bytes(), other.name
        assert_frame_equal(pl.read_csv(other / "results.csv"), results, abs_tol=1e-9, rel_tol=0)


def test_bad_scale_settings_exit_2_before_any_work(tmp_path, monkeypatch, capsys):
    from flows.cli import main

    for name, value in (("CPO_TASK_RUNNER", "spark"), ("CPO_PARTITION_ROWS", "0")):
        monkeypatch.setenv(name, value)
        assert main(["run", "--out", str(tmp_path / "never"), "--approve-as", "x"]) == 2
        err = capsys.readouterr().err
        assert name in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "never").exists()
        monkeypatch.delenv(name)


def test_a_bad_row_in_a_later_partition_is_named_by_its_row_in_the_file(tmp_path, monkeypatch, capsys):
    from flows.cli import main

    sample = pl.read_csv(ROOT / "data" / "sample" / "customers.csv")
    bad = sample.with_columns(pl.when(pl.int_range(pl.len()) == 400).then(-5).otherwise(pl.col("recency_days"))
                              .alias("recency_days"))
    bad.write_csv(tmp_path / "customers.csv")
    monkeypatch.setenv("CPO_PARTITION_ROWS", "100")
    assert main(["run", "--customers", str(tmp_path / "customers.csv"), "--out", str(tmp_path / "run"),
                 "--approve-as", "x"]) == 2
    err = capsys.readouterr().err
    assert "rows 401-500, partition 5 of 5" in err and "e.g. row 401:" in err and "recency_days" in err
    assert not (tmp_path / "run").exists()


def test_a_changed_or_missing_partition_is_redone_not_reused(tmp_path, monkeypatch):
    """The partitions are the stages' outputs: the run folder hashes them, so a partition edited or deleted
    after the gate is noticed and its stage (and every later one) recomputed, to the same result."""
    from flows.cli import main

    monkeypatch.setenv("CPO_PARTITION_ROWS", "200")
    run = tmp_path / "run"
    assert main(["run", "--out", str(run)]) == 0  # stops at the gate with every partition written
    assigned = (run / "assignments.csv").read_bytes()
    parts = sorted((run / "stages" / "assign").glob("part-*.parquet"))
    assert len(parts) == 3 and len(list((run / "stages" / "ingest").glob("part-*.parquet"))) == 3
    first = pl.read_parquet(parts[0])
    first.with_columns(pl.lit("treatment_1").alias("arm")).write_parquet(parts[0])  # everyone moved to one arm
    (run / "stages" / "segment" / "part-00002.parquet").unlink()
    assert main(["approve", str(run), "--by", "Maria Manager"]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    assert not {"segment", "assign", "engage"} & set(manifest["stages_reused"])
    assert (run / "assignments.csv").read_bytes() == assigned
    outcomes = pl.read_csv(run / "outcomes.csv")
    assert outcomes["arm"].value_counts()["count"].min() > 50  # not everyone in one arm


def exported(tmp_path, monkeypatch) -> tuple[Path, Path]:
    from flows.cli import main
    from tests.fakes.esp_events import write_esp_events

    monkeypatch.setenv("CPO_PARTITION_ROWS", "150")  # the sample in 4 partitions
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), "--send", "export", "--approve-as", "manager"]) == 0
    sends = pl.read_csv(run / "sends.csv", infer_schema_length=None, schema_overrides={"customer_id": pl.String})
    rates = {"open": 0.3, "click": 0.06, "convert": 0.02, "revenue": 60.0, "unsubscribe": 0.004, "complaint": 0.001}
    ef = write_esp_events(sends, "generic", tmp_path / "events.csv", {a: rates for a in set(sends["arm"])}, seed=2,
                          run_id=run.name)
    return run, ef.path


def test_a_partition_damaged_after_the_send_stops_the_run_and_nothing_is_sent_again(tmp_path, monkeypatch, capsys):
    """Once sends.csv is out, outcomes are analysed only against what was sent: a partition of an earlier stage
    changed or deleted since is an input error (exit 2) naming the stage; no stage is redone, no marker dropped,
    no second export (found by an attack on the partitioned stages: it re-exported, or crashed). The export's
    own partitions are rendered again and must give the sends.csv the audit log recorded; an edited sends.csv
    stops the run. The audit log keeps one export row throughout."""
    import csv

    from flows.cli import main

    def logged():
        with (run / "audit_log.csv").open(newline="") as f:
            return [r["event"] for r in csv.DictReader(f) if r["event"] != "screen"]

    run, events = exported(tmp_path, monkeypatch)
    markers = sorted(p.name for p in (run / "stages").glob("*.done.json"))
    sends = run / "sends.csv"
    for part, words in ((run / "stages" / "ingest" / "part-00001.parquet", "stage ingest"),
                        (run / "stages" / "segment" / "part-00001.parquet", "stage segment"),
                        (sends, "changed since it was exported")):
        kept = part.read_bytes()
        part.unlink() if "ingest" in str(part) else part.write_bytes(kept[:-8] + b"\0" * 8)  # deleted, changed
        assert main(["outcomes", str(run), "--events", str(events)]) == 2
        assert words in capsys.readouterr().err, words
        assert sorted(p.name for p in (run / "stages").glob("*.done.json")) == markers
        assert logged() == ["approval", "export"]
        part.write_bytes(kept)
    (run / "stages" / "export" / "part-00002.parquet").unlink()  # who was sent what: derived again, and checked
    (run / "stages" / "export.done.json").unlink()  # as if killed between the export's audit row and its marker
    before = sends.read_bytes()
    assert main(["outcomes", str(run), "--events", str(events)]) == 0
    assert sends.read_bytes() == before and logged() == ["approval", "export", "outcomes"]
    assert main(["audit", "verify", str(run)]) == 0
    # a recipients' partition lost: the evidence no longer verifies, and no rollout emails its customers again
    from tasks.experiment.rollout import _recipient_files

    _recipient_files(run)[1].unlink()
    capsys.readouterr()
    assert main(["audit", "verify", str(run)]) != 0
    assert "recipients-00001.parquet (listed by stages/outcomes.done.json, sealed with the run) is missing" in \
        capsys.readouterr().out
    with pytest.raises(InputError, match="recipients-00001.parquet is missing or changed"):
        _recipient_files(run)


def test_a_run_killed_while_checking_the_file_leaves_its_copy_beside_the_folder_until_the_next_start(tmp_path):
    """The partitions checked before the run folder exists live in a staging folder beside it (the run folder's
    file system: a remote Dask worker that sees the run folder sees them), never in /tmp; a start killed there
    leaves them, and the next start into the same folder removes them."""
    import os
    import subprocess

    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    args = ["run", "--out", str(tmp_path / "run"), "--approve-as", "me"]
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "flows" / "kill_in_ingest.py"), *args], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == -9, out.stderr[-2000:]
    line = next(x for x in out.stderr.splitlines() if x.startswith("staging folder:"))
    left = Path(line.split("staging folder:", 1)[1].strip())
    assert left.parent == tmp_path and list(left.rglob("*.parquet"))  # beside the run folder, not in /tmp
    from flows.cli import main

    assert main(args) == 0  # the next start, in this process
    assert not left.exists() and [p.name for p in tmp_path.iterdir()] == ["run"]


def test_sends_and_real_outcomes_are_the_same_whatever_the_partitions(tmp_path, monkeypatch):
    """The export renders sends.csv partition by partition (customer file order, then the seeds' messages) and
    the outcomes are read back partition by partition: one partition or four, on the local runner or Dask,
    the same sends.csv and outcomes.csv byte for byte, the same counts, results to 1e-9."""
    from flows.cli import main
    from tests.fakes.esp_events import write_esp_events

    seeds = tmp_path / "seeds.csv"
    seeds.write_text("email,first_name\nqa1@harborandpine.example.com,QA\n")
    runs, events = [], None
    for runner, rows in (("local", 100_000), ("local", 150)):
        monkeypatch.setenv("CPO_TASK_RUNNER", runner)
        monkeypatch.setenv("CPO_PARTITION_ROWS", str(rows))
        run = tmp_path / str(rows) / "run"  # one run id for both: the events name it
        assert main(["run", "--out", str(run), "--send", "export", "--approve-as", "manager",
                     "--seed-list", str(seeds)]) == 0
        if events is None:
            sends = pl.read_csv(run / "sends.csv", infer_schema_length=None, schema_overrides={"customer_id": pl.String})
            assert sends["seed"].to_list() == sorted(sends["seed"].to_list())  # the seeds' messages last
            rates = {"open": 0.3, "click": 0.06, "convert": 0.02, "revenue": 60.0, "unsubscribe": 0.004,
                     "complaint": 0.001}
            events = write_esp_events(sends, "sendgrid", tmp_path / "events.json", {a: rates for a in set(sends["arm"])},
                                      seed=2, run_id=run.name).path
        assert main(["outcomes", str(run), "--events", str(events), "--format", "sendgrid"]) == 0
        manifest = json.loads((run / "manifest.json").read_text())
        assert (manifest["task_runner"], manifest["partitions"]) == (runner, 1 if rows > 1000 else 4)
        runs.append((run, manifest))
    (first, one), (other, four) = runs
    for name in ("sends.csv", "assignments.csv", "outcomes.csv"):
        assert (other / name).read_bytes() == (first / name).read_bytes(), name
    assert four["outcomes_read_back"] == one["outcomes_read_back"]
    assert one["outcomes_read_back"]["seed_events"] > 0 and one["outcomes_read_back"]["unknown_recipient_events"] > 0
    assert_frame_equal(pl.read_csv(other / "results.csv"), pl.read_csv(first / "results.csv"), abs_tol=1e-9, rel_tol=0)
    assert len(list((other / "stages" / "outcomes").glob("recipients-*.parquet"))) == 4
