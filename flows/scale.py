"""Scale-out wiring: the per-customer stages as Prefect tasks mapped over Parquet partitions.

`CPO_TASK_RUNNER=local` (default) maps them on Prefect's thread pool in the flow process; `dask` on Prefect's
`DaskTaskRunner`: a local cluster of 2 single-threaded worker processes, or the cluster at
`DASK_SCHEDULER_ADDRESS` (its workers need the run folder's file system and their own PREFECT_API_URL).
Only the partition tasks go to Dask; generation, screening and the audit log stay in the flow process.
Partition tasks get paths and plain values, never frames, and build nothing from the flow's objects.
All computing is in tasks/partitions.py; this module only wires.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from config import Scale, load_scale
from tasks.errors import InputError
from tasks import partitions as P

def _on_worker(fn):
    """A partition task: on a Dask worker, input and safety-gate errors are logged as the one masked message the
    CLI shows (no traceback), as in the flow process."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            from distributed import get_worker

            get_worker()
        except (ImportError, ValueError):
            pass
        else:
            from flows.cli import quiet_user_errors

            quiet_user_errors()
        return fn(*args, **kwargs)
    return run


validate_part = task(name="validate-customers-part", cache_policy=NO_CACHE)(_on_worker(P.validate_part))
segment_part = task(name="segment-part", cache_policy=NO_CACHE)(_on_worker(P.segment_part))
assign_part = task(name="assign-part", cache_policy=NO_CACHE)(_on_worker(P.assign_part))
simulate_part = task(name="simulate-part", cache_policy=NO_CACHE)(_on_worker(P.simulate_part))
export_part = task(name="export-part", cache_policy=NO_CACHE)(_on_worker(P.export_part))
outcomes_part = task(name="outcomes-part", cache_policy=NO_CACHE)(_on_worker(P.outcomes_part))
eligible_segments_part = task(name="eligible-segments-part", cache_policy=NO_CACHE)(_on_worker(P.eligible_segments_part))


@task(name="segment-fit", cache_policy=NO_CACHE)
def fit_segmenter(paths: list[str], method: str, k_range, min_share: float, seed: int, features):
    """The segmenter learned once on every customer's features (read here from the partitions)."""
    from tasks.segmentation import make_segmenter

    columns = list(dict.fromkeys([*features, "recency_days", "frequency", "monetary"]))
    segmenter = make_segmenter(method, k_range, min_share, seed, features).fit(P.read_parts(paths, columns))
    del segmenter.labels_  # one label per customer of the file: not shipped to every partition's task
    return segmenter


class Partitioned:
    """The partitions of one run and the task runner they are mapped on (opened at the first map)."""

    def __init__(self, run_path: Path, settings: Scale | None = None):
        self.settings = settings or load_scale()
        self.kind = self.settings.task_runner
        self.rows = self.settings.partition_rows
        self.count = 0  # partitions of the customer file
        self.parts: dict[str, list[str]] = {}  # stage -> partition files written by this process
        self._runner = None
        self.staged, self._made = staging(Path(run_path))  # before the run folder exists
        self.docs = self.staged / "data_docs"  # GX's pages of the checks, moved into the folder once it exists
        self.docs.mkdir()

    # ------------------------------------------------------------------------------------ runner
    def _open(self):
        if self._runner is None:
            if self.kind == "dask":
                from prefect_dask import DaskTaskRunner

                if self.settings.scheduler_address:
                    runner = DaskTaskRunner(address=self.settings.scheduler_address)
                else:  # the workers report to this flow's Prefect API, not to temporary servers of their own
                    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1,
                                                            "processes": True, "dashboard_address": None,
                                                            "env": worker_env()})
            else:
                from prefect.task_runners import ThreadPoolTaskRunner

                runner = ThreadPoolTaskRunner(max_workers=2)
            self._runner = runner.__enter__()
        return self._runner

    def map(self, fn, calls: list[dict]) -> list:
        runner = self._open()
        futures = [runner.submit(fn, params) for params in calls]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            runner.__exit__(None, None, None)
        shutil.rmtree(self.staged, ignore_errors=True)
        for folder in self._made:  # parents made for the staging folder, if nothing else came into them
            try:
                folder.rmdir()
            except OSError:
                break

    def record(self) -> dict:
        return {"task_runner": self.kind, "partitions": self.count, "partition_rows": self.rows}

    # ------------------------------------------------------------------------------------ stages
    def ingest(self, docs_dir: Path, customers: str, *args, **kwargs) -> dict:
        """The customer file read and written as partitions (the ingest task: `stages.ingest`'s arguments),
        then the customer checkpoint (Great Expectations) mapped over them."""
        from flows import stages

        info = stages.ingest(customers, *args, folder=str(self.staged / "ingest"), rows=self.rows, **kwargs)
        paths = self.parts["ingest"] = info["parts"]
        self.count = len(paths)
        offsets = [o for o, _ in P.bounds(info["table"]["rows"], self.rows)]
        self.map(validate_part, [{"path": p, "source": str(customers), "index": i, "docs_dir": self._docs(docs_dir, i),
                                  "offset": o, "partitions": len(paths)} for i, (p, o) in enumerate(zip(paths, offsets))])
        return info

    def settle(self, run_path: Path) -> None:
        """Move the checked partitions into the run folder once it is the run's (stages/ingest/)."""
        if any(Path(p).is_relative_to(self.staged) for p in self.parts.get("ingest", [])):  # read by this start
            target = run_path / "stages" / "ingest"
            target.mkdir(parents=True, exist_ok=True)
            for stale in target.glob("part-*.parquet"):  # an earlier start's partitions (another partition size)
                stale.unlink()
            self.parts["ingest"] = [str(Path(shutil.move(p, target / Path(p).name))) for p in self.parts["ingest"]]

    def _docs(self, docs_dir: Path | None, index: int) -> str | None:
        if docs_dir is None:
            return None
        return str(docs_dir if self.count <= 1 else Path(docs_dir) / f"part-{index:05d}")

    # ------------------------------------------------------------------------------------ the catalog
    # A stage's partitions are its output: the run folder records them (relative paths, hashed with the stage),
    # so a resumed run, a Dask worker and the flow all read the same files; the flow holds no customer rows.
    def files(self, run_path: Path, stage: str) -> list[str]:
        """`stage`'s partition files relative to the run folder (for RunDir.finish)."""
        return [str(Path(p).relative_to(run_path)) for p in self.parts[stage]]

    def restore(self, run_path: Path, stage: str, files: list[str] | None) -> None:
        """The partitions of a stage a resumed run reuses."""
        if files is None:
            raise InputError(f"{run_path}: this run folder was written by an earlier version of cpo, which kept the "
                             f"customers in one file; start a new run (a new --out folder)")
        self.parts[stage] = [str(run_path / f) for f in files]
        self.count = len(files)

    def read(self, stage: str, columns: list[str] | None = None) -> pl.DataFrame:
        """`columns` of a stage's rows, concatenated in file order (a narrow frame: keep it narrow)."""
        return P.read_parts(self.parts[stage], columns)

    def rows_of(self, stage: str, columns: list[str] | None = None, sample: tuple[int, int] | None = None) -> P.Rows:
        """A stage's rows (assignments, outcomes) with their customers' `columns` (all by default), described
        for a task to load; `sample=(seed, rows)`: only the explanation's seeded sample of them."""
        return P.Rows(tuple(self.parts[stage]), tuple(self.parts["segment"]),
                      tuple(columns) if columns is not None else None, sample)

    def columns_of(self, stage: str, columns: list[str]) -> pl.DataFrame:
        """Just the customers' `columns` (those the file has) for a stage's rows, in file order."""
        return pl.concat([p.select(c for c in columns if c in p.columns) for p in self.rows_of(stage, columns).parts()],
                         how="vertical", rechunk=True)  # one chunk: its mean adds alike whatever the partitioning

    def write_csv(self, run, name: str, stage: str, columns: list[str]) -> None:
        """A contract CSV (assignments.csv, outcomes.csv) written from a stage's partitions, one at a time."""
        run.write_csv(name, (pl.read_parquet(p, columns=columns) for p in self.parts[stage]))

    # ------------------------------------------------------------------------------------ stages
    def segment(self, run_path: Path, seg, seed: int):
        """Fit the segmenter once on the features of every customer, apply it to each partition; the profiles
        from the segmented partitions."""
        from tasks.segmentation import profile_segments

        segmenter = fit_segmenter(self.parts["ingest"], seg.method, seg.k_range, seg.min_segment_share, seed,
                                  seg.features)
        sources = self.parts["ingest"]
        outputs = [P.part_path(run_path / "stages" / "segment", i) for i in range(len(sources))]
        self.map(segment_part, [{"src": s, "segmenter": segmenter, "dst": d} for s, d in zip(sources, outputs)])
        self.parts["segment"] = outputs
        profiles = profile_segments(self.read("segment", ["segment", "recency_days", "frequency", "monetary", "age",
                                                          "historical_open_rate", "preferred_category"]))
        get_run_logger().info("segments: %s", {p.name: p.size for p in profiles})
        return profiles

    def assign(self, run_path: Path, passed: dict, control_weight: float, seed: int, salt: str, holdout: float,
               treatment_weights: dict | None, docs_dir: Path):
        """Arms per partition; returns who is in which segment and arm (narrow: no customer data) and the weights."""
        from tasks.experiment.assign import arm_weights

        sources = self.parts["segment"]
        present = sorted(set().union(*self.map(eligible_segments_part, [{"src": s} for s in sources])))
        weights = {s: arm_weights(list(passed.get(s, {})), control_weight, treatment_weights) for s in present}
        outputs = [P.part_path(run_path / "stages" / "assign", i) for i in range(len(sources))]
        self.map(assign_part, [{"src": s, "passed": passed, "weights": weights, "seed": seed, "salt": salt,
                                "holdout": holdout, "dst": d, "docs_dir": self._docs(docs_dir, i)}
                               for i, (s, d) in enumerate(zip(sources, outputs))])
        self.parts["assign"] = outputs
        arms = self.read("assign", ["segment", "arm"])
        get_run_logger().info("assigned %d customers: %s", arms.height,
                              dict(arms.group_by("arm").len().sort("arm").iter_rows()))
        return arms, weights

    def simulate(self, run_path: Path, strategy_of: dict, sim, seed: int) -> dict:
        """Simulated outcomes per partition (stages/engage/); returns the true lifts, merged from each
        partition's sufficient statistics."""
        from tasks.experiment.simulate import merge_truth, true_lifts, typical_order_value

        typical = typical_order_value(self.read("ingest", ["frequency", "monetary"]))
        outputs = [P.part_path(run_path / "stages" / "engage", i) for i in range(len(self.parts["assign"]))]
        sums = self.map(simulate_part, [{"assign_src": a, "customers_src": c, "strategy_of": strategy_of, "sim": sim,
                                         "seed": seed, "typical": typical, "dst": d}
                                        for a, c, d in zip(self.parts["assign"], self.parts["segment"], outputs)])
        self.parts["engage"] = outputs
        return true_lifts(merge_truth(sums))

    def export(self, run_path: Path, messages: dict, brand, send, run_id: str, seeds: pl.DataFrame | None,
               control_id: str | None) -> tuple[list[str], int]:
        """Each partition's messages rendered, and who was sent what (stages/export/); returns the rendered pieces
        of sends.csv in order (in the staging folder: sends.csv is what stays) and how many recipients' merge
        values were not used (not a name: the fallback took their place)."""
        count = len(self.parts["assign"])
        prefixes = [str(self.staged / "sends" / f"part-{i:05d}") for i in range(count)]
        outputs = [P.part_path(run_path / "stages" / "export", i) for i in range(count)]
        pieces = self.map(export_part, [{"assign_src": a, "customers_src": c, "messages": messages, "brand": brand,
                                         "fallbacks": send.merge_fallbacks, "run_id": run_id,
                                         "mailto": send.list_unsubscribe_mailto, "seeds": seeds,
                                         "control_id": control_id, "sends_dst": p, "dst": d}
                                        for a, c, p, d in zip(self.parts["assign"], self.parts["segment"], prefixes,
                                                              outputs)])
        self.parts["export"] = outputs
        return [piece for part, _ in pieces for piece in part], sum(unused for _, unused in pieces)

    def outcomes(self, run_path: Path, read: dict, seeds: pl.DataFrame, analysed_only: bool) -> list[dict]:
        """Each partition's recipients' outcomes from the events `stages.read_events` kept (stages/outcomes/:
        `part-*` analysed, `recipients-*` all); returns the counts of each partition and of the seeds."""
        count = len(self.parts["export"])
        folder = run_path / "stages" / "outcomes"
        outputs = [P.part_path(folder, i) for i in range(count)]
        everyone = [str(folder / f"recipients-{i:05d}.parquet") for i in range(count)]
        seeds_src = P.write_part(seeds, self.staged / "seeds.parquet")
        calls = [{"events_src": read["events"], "sends_src": s, "shared": read["shared"],
                  "delivered_events": read["delivered_events"], "analysed_only": analysed_only, "dst": d,
                  "recipients_dst": r} for s, d, r in zip(self.parts["export"], outputs, everyone)]
        counts = self.map(outcomes_part, [*calls, {**calls[0], "sends_src": seeds_src, "dst": None,
                                                   "recipients_dst": None}])
        self.parts["outcomes"] = outputs
        self.parts["recipients"] = everyone
        return counts


def staging(run_path: Path) -> tuple[Path, list[Path]]:
    """A private folder beside the run folder for what is checked before the run folder exists (the ingest
    partitions, GX's pages): on the run folder's file system, so the workers of a Dask cluster that see the run
    folder see it too, and never in /tmp, where a killed run would leave the customers' data for good. Named
    `.<run>.staging-<pid>-<random>`; one left by a start that was killed (its process gone) is removed by the next
    start into the same folder. Returns it and the parent folders made for it (removed again when empty)."""
    parent = run_path.resolve().parent
    made = [p for p in [parent, *parent.parents] if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob(f".{run_path.name}.staging-*"):
        try:
            os.kill(int(old.name.rsplit("-", 2)[-2]), 0)
        except ProcessLookupError:
            shutil.rmtree(old, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue
    return Path(tempfile.mkdtemp(prefix=f".{run_path.name}.staging-{os.getpid()}-", dir=parent)), made


def worker_env() -> dict:
    """PREFECT_API_URL for local Dask workers: the API this flow run reports to (its temporary server's too)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    url = getattr(getattr(ctx, "client", None), "api_url", None) if ctx else None
    return {"PREFECT_API_URL": str(url).rstrip("/")} if url else {}
