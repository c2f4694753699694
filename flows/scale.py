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
import shutil
import tempfile
from pathlib import Path

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from config import Scale, load_scale
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


@task(name="segment-fit", cache_policy=NO_CACHE)
def fit_segmenter(df: pl.DataFrame, method: str, k_range, min_share: float, seed: int, features):
    from tasks.segmentation import make_segmenter

    return make_segmenter(method, k_range, min_share, seed, features).fit(df)


class Partitioned:
    """The partitions of one run and the task runner they are mapped on (opened at the first map)."""

    def __init__(self, settings: Scale | None = None):
        self.settings = settings or load_scale()
        self.kind = self.settings.task_runner
        self.rows = self.settings.partition_rows
        self.count = 0  # partitions of the customer file
        self.parts: dict[str, list[str]] = {}  # stage -> partition files written by this process
        self._runner = None
        self._tmp = Path(tempfile.mkdtemp(prefix="cpo-parts-"))  # before the run folder exists

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
        shutil.rmtree(self._tmp, ignore_errors=True)

    def record(self) -> dict:
        return {"task_runner": self.kind, "partitions": self.count, "partition_rows": self.rows}

    # ------------------------------------------------------------------------------------ stages
    def validate(self, df: pl.DataFrame, source: str, docs_dir: Path) -> None:
        """Global id uniqueness, then the customer checkpoint mapped over the partitions."""
        P.check_unique_ids(df, source)
        paths = P.write_parts(df, self._tmp / "ingest", self.rows)
        self.count = len(paths)
        self.map(validate_part, [{"path": p, "source": str(source), "index": i, "docs_dir": self._docs(docs_dir, i),
                                  "offset": o, "partitions": len(paths)}
                                 for i, (p, (o, _)) in enumerate(zip(paths, P.bounds(df.height, self.rows)))])
        self.parts["ingest"] = paths

    def settle(self, run_path: Path) -> None:
        """Move the checked partitions into the run folder once it is the run's (stages/ingest/)."""
        if "ingest" in self.parts:
            target = run_path / "stages" / "ingest"
            target.mkdir(parents=True, exist_ok=True)
            self.parts["ingest"] = [str(Path(shutil.move(p, target / Path(p).name))) for p in self.parts["ingest"]]

    def _docs(self, docs_dir: Path | None, index: int) -> str | None:
        if docs_dir is None:
            return None
        return str(docs_dir if self.count <= 1 else Path(docs_dir) / f"part-{index:05d}")

    def _inputs(self, run_path: Path, stage: str, frame: pl.DataFrame) -> list[str]:
        """This stage's input partitions: as written earlier in this process, else cut from the frame (a
        resumed run whose earlier stages were reused)."""
        if stage not in self.parts:
            self.parts[stage] = P.write_parts(frame, run_path / "stages" / stage, self.rows)
            self.count = len(self.parts[stage])
        return self.parts[stage]

    def segment(self, run_path: Path, df: pl.DataFrame, seg, seed: int):
        from tasks.segmentation import profile_segments

        columns = [c for c in dict.fromkeys([*seg.features, "recency_days", "frequency", "monetary"]) if c in df.columns]
        segmenter = fit_segmenter(df.select(columns), seg.method, seg.k_range, seg.min_segment_share, seed,
                                  seg.features)
        sources = self._inputs(run_path, "ingest", df)
        outputs = [P.part_path(run_path / "stages" / "segment", i) for i in range(len(sources))]
        self.map(segment_part, [{"src": s, "segmenter": segmenter, "dst": d} for s, d in zip(sources, outputs)])
        self.parts["segment"] = outputs
        out = P.read_parts(outputs)
        profiles = profile_segments(out)
        get_run_logger().info("segments: %s", {p.name: p.size for p in profiles})
        return out, profiles

    def assign(self, run_path: Path, df: pl.DataFrame, passed: dict, control_weight: float, seed: int, salt: str,
               holdout: float, treatment_weights: dict | None, docs_dir: Path):
        from tasks.experiment.assign import arm_weights, eligible

        present = sorted(set(df.filter(eligible(df))["segment"].unique().drop_nulls().to_list()))
        weights = {s: arm_weights(list(passed.get(s, {})), control_weight, treatment_weights) for s in present}
        sources = self._inputs(run_path, "segment", df)
        outputs = [P.part_path(run_path / "stages" / "assign", i) for i in range(len(sources))]
        self.map(assign_part, [{"src": s, "passed": passed, "weights": weights, "seed": seed, "salt": salt,
                                "holdout": holdout, "dst": d, "docs_dir": self._docs(docs_dir, i)}
                               for i, (s, d) in enumerate(zip(sources, outputs))])
        self.parts["assign"] = outputs
        assignments = P.read_parts(outputs)
        sizes = dict(assignments.group_by("arm").len().sort("arm").iter_rows())
        get_run_logger().info("assigned %d customers: %s", assignments.height, sizes)
        return assignments, weights

    def simulate(self, run_path: Path, frame: pl.DataFrame, df: pl.DataFrame, strategy_of: dict, sim, seed: int):
        from tasks.experiment.simulate import merge_truth, true_lifts, typical_order_value

        typical = typical_order_value(df)
        if "assign" in self.parts and "segment" in self.parts:
            pairs = list(zip(self.parts["assign"], self.parts["segment"]))
        else:  # reused stages: the assigned customers with their attributes, cut afresh
            pairs = [(p, p) for p in P.write_parts(frame, run_path / "stages" / "engage" / "input", self.rows)]
        outputs = [P.part_path(run_path / "stages" / "engage", i) for i in range(len(pairs))]
        sums = self.map(simulate_part, [{"assign_src": a, "customers_src": c, "strategy_of": strategy_of, "sim": sim,
                                         "seed": seed, "typical": typical, "dst": d}
                                        for (a, c), d in zip(pairs, outputs)])
        return P.read_parts(outputs), true_lifts(merge_truth(sums))


def worker_env() -> dict:
    """PREFECT_API_URL for local Dask workers: the API this flow run reports to (its temporary server's too)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    url = getattr(getattr(ctx, "client", None), "api_url", None) if ctx else None
    return {"PREFECT_API_URL": str(url).rstrip("/")} if url else {}
