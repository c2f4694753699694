"""Scale benchmark: the campaign on N synthetic customers, seconds per stage.

    .venv/bin/python benchmarks/scale.py [N ...]          stage functions only (default: 10K 100K 1M)
    .venv/bin/python benchmarks/scale.py --flow [--runner local|dask] [--rows R] [--compare] [--csv] [--export] N ...
                                                          a whole `cpo run` (pre-approved, temporary Prefect
                                                          server) per N, as a user runs it; --export: sends.csv,
                                                          then `cpo outcomes` on generated events

The first form runs the pure stage functions (no Prefect server), so the figures are the work itself;
the second is what a user gets: Prefect, Great Expectations, the run directory and the report included.
It prints the wall time, the seconds per stage (manifest), the peak RSS of every process of the run (the CLI,
Prefect's server, Dask's scheduler, nannies and workers; from each process's VmHWM, sampled every 0.2 s), the
ratio of wall times between the largest and the smallest N, and with --compare a second run of each N on the
other runner with another partition size, checking assignments.csv byte for byte and results.csv to 1e-9.
The customer file is Parquet unless --csv.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from config import load_settings  # noqa: E402
from tasks.checkpoints import run_checkpoint  # noqa: E402
from tasks.experiment.analysis import lift_table, srm_checks  # noqa: E402
from tasks.experiment.assign import assign  # noqa: E402
from tasks.experiment.simulate import simulate  # noqa: E402
from tasks.explain import explain  # noqa: E402
from tasks.segmentation import make_segmenter  # noqa: E402


def customers(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    freq = rng.poisson(6, n).astype(float)
    return pl.DataFrame({
        "customer_id": [f"C{i:08d}" for i in range(n)], "email": [f"c{i}@example.com" for i in range(n)],
        "email_opt_in": rng.random(n) > 0.04, "age": rng.integers(18, 80, n).astype(float),
        "tier": rng.choice(["bronze", "silver", "gold", "platinum"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "recency_days": rng.integers(0, 365, n).astype(float), "frequency": freq,
        "monetary": np.round(freq * rng.gamma(2, 40, n), 2), "historical_open_rate": rng.beta(2, 6, n),
        "historical_click_rate": rng.beta(1, 30, n)})


def run(n: int) -> dict[str, float]:
    campaign, _, _ = load_settings()
    seconds, t = {}, time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        seconds[name] = round(now - t, 2)
        t = now
    df = customers(n)
    lap("make data")
    run_checkpoint("customers", df)
    lap("validate (GX)")
    seg = make_segmenter("rfm", (3, 6), 0.05, 1).fit(df)
    df = seg.transform(df)
    lap("segment (rfm)")
    passed = {s: {1: f"{s}.t1.value", 2: f"{s}.t2.urgency", 3: f"{s}.t3.loyalty"} for s in seg.segments_}
    assignments, weights = assign(df, passed, 0.25, 42, "bench")
    lap("assign")
    strategy = {v: v.rsplit(".", 1)[1] for slots in passed.values() for v in slots.values()}
    outcomes, _ = simulate(assignments.join(df.drop("segment"), on="customer_id"), strategy, campaign.simulation, 42)
    lap("simulate")
    lift_table(outcomes, campaign.experiment.metrics, "control")
    srm_checks(outcomes, weights)
    lap("analyze")
    explain(outcomes.join(df.drop("segment"), on="customer_id"), ["opened", "clicked"], seed=1,
            max_rows=50_000, exclude={"email"})
    lap("explain (50K subsample)")
    return seconds


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _label(proc) -> str:
    try:
        cmd = " ".join(proc.cmdline())
    except Exception:  # noqa: BLE001 - gone meanwhile
        return "?"
    for key, name in (("uvicorn", "prefect-server"), ("flows.cli", "cpo (flow; with dask also the scheduler and nannies)"),
                      ("spawn_main", "dask-worker"), ("resource_tracker", "multiprocessing resource tracker")):
        if key in cmd:
            return name
    return cmd[:40]


def run_flow(n: int, runner: str = "local", rows: int | None = None, folder: Path | None = None,
             csv: bool = False, export: bool = False) -> dict:
    """One `cpo run` on n customers; returns wall seconds, stage seconds and peak RSS (MB) per process. With
    `export`: `--send export`, then events for every recipient (tests/fakes/esp_events.py, generic CSV, not
    timed) and `cpo outcomes`, timed the same way (`outcomes`)."""
    import json
    import tempfile

    folder = folder or Path(tempfile.mkdtemp(prefix="cpo-scale-"))
    data = folder.parent / f"customers-{n}.{'csv' if csv else 'parquet'}"
    if not data.exists():
        frame = customers(n)
        frame.write_csv(data) if csv else frame.write_parquet(data)
        del frame
    env = {**os.environ, "CPO_TASK_RUNNER": runner, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if rows:
        env["CPO_PARTITION_ROWS"] = str(rows)
    run = folder / "run"
    result = _timed(["run", "--customers", str(data), "--out", str(run), "--approve-as", "benchmark",
                     *(["--send", "export"] if export else [])], env)
    if export:
        from tests.fakes.esp_events import write_esp_events

        sends = pl.read_csv(run / "sends.csv", columns=["customer_id", "email", "arm", "seed"],
                            schema_overrides={"customer_id": pl.String})
        rates = {"open": 0.3, "click": 0.06, "convert": 0.02, "revenue": 60.0, "unsubscribe": 0.004,
                 "complaint": 0.001}
        events = write_esp_events(sends, "generic", folder / "events.csv", {a: rates for a in set(sends["arm"])},
                                  seed=1, run_id=run.name)
        del sends
        result["outcomes"] = _timed(["outcomes", str(run), "--events", str(events.path)], env)
        result["outcomes"]["events"] = sum(1 for _ in events.path.open()) - 1
    manifest = json.loads((run / "manifest.json").read_text())
    return {"n": n, "runner": runner, "partitions": manifest.get("partitions"), "seconds": manifest["seconds"],
            "run": run, **result}


def _timed(args: list[str], env: dict) -> dict:
    """`cpo ARGS` in a process of its own: wall seconds and the peak RSS of it and every process it starts."""
    import subprocess

    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    parent, peaks = psutil.Process(proc.pid), {}
    while proc.poll() is None:
        try:
            for p in [parent, *parent.children(recursive=True)]:
                kb = _hwm_kb(p.pid)  # the process's own high-water mark, so no peak falls between samples
                if kb:
                    seen = peaks.setdefault(p.pid, {"label": "", "mb": 0.0})
                    if not seen["label"].strip():  # a process just started may not show its command line yet
                        seen["label"] = _label(p)
                    seen["mb"] = max(seen["mb"], kb / 1024)
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    if proc.returncode:
        raise SystemExit(f"cpo {args[0]} failed (exit {proc.returncode}):\n{err[-3000:]}")
    return {"wall": wall, "peaks": sorted(((v["label"], pid, round(v["mb"])) for pid, v in peaks.items()),
                                          key=lambda x: -x[2])}


def same_outputs(a: Path, b: Path) -> str:
    from polars.testing import assert_frame_equal

    files = ["assignments.csv", "outcomes.csv", *(["sends.csv"] if (a / "sends.csv").exists() else [])]
    for name in files:
        if (a / name).read_bytes() != (b / name).read_bytes():
            return f"DIFFERENT {name}"
    try:
        assert_frame_equal(pl.read_csv(a / "results.csv"), pl.read_csv(b / "results.csv"), abs_tol=1e-9, rel_tol=0)
    except AssertionError as e:
        return f"DIFFERENT results.csv: {e}"
    return f"same {', '.join(files)} (bytes) and results.csv (1e-9)"


def report(r: dict) -> None:
    print(f"cpo run n={r['n']:,} runner={r['runner']} partitions={r['partitions']}: wall {r['wall']:.1f}s "
          f"(incl. Prefect server start)", flush=True)
    print("  stages: " + "  ".join(f"{k}={v}" for k, v in r["seconds"].items()), flush=True)
    print("  peak RSS: " + ", ".join(f"{label} (pid {pid}) {mb} MB" for label, pid, mb in r["peaks"]), flush=True)
    if "outcomes" in r:
        o = r["outcomes"]
        print(f"  cpo outcomes ({o['events']:,} events): wall {o['wall']:.1f}s; stages: "
              + "  ".join(f"{k}={r['seconds'][k]}" for k in ("outcomes", "engage", "analyze", "explain", "report")
                          if k in r["seconds"]), flush=True)
        print("  peak RSS: " + ", ".join(f"{label} (pid {pid}) {mb} MB" for label, pid, mb in o["peaks"]), flush=True)


def flow_main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="scale.py --flow")
    parser.add_argument("--runner", default="local", choices=["local", "dask"])
    parser.add_argument("--rows", type=int, default=None, help="CPO_PARTITION_ROWS (default: the product's)")
    parser.add_argument("--compare", action="store_true", help="run each N again on the other runner, other rows")
    parser.add_argument("--csv", action="store_true", help="a CSV customer file instead of Parquet")
    parser.add_argument("--export", action="store_true", help="--send export, then cpo outcomes on generated events")
    parser.add_argument("sizes", type=int, nargs="*", default=[1_000_000])
    args = parser.parse_args(argv)
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="cpo-scale-"))
    results = []
    for n in args.sizes:
        r = run_flow(n, args.runner, args.rows, base / f"{n}-{args.runner}", args.csv, args.export)
        report(r)
        results.append(r)
        if args.compare:
            other = "dask" if args.runner == "local" else "local"
            rows = max(1, (args.rows or 250_000) // 3)
            o = run_flow(n, other, rows, base / f"{n}-{other}", args.csv, args.export)
            report(o)
            print(f"  same-output check ({args.runner} vs {other}, {r['partitions']} vs {o['partitions']} "
                  f"partitions): {same_outputs(r['run'], o['run'])}", flush=True)
    if len(results) > 1:
        small, large = min(results, key=lambda r: r["n"]), max(results, key=lambda r: r["n"])
        print(f"wall {large['n']:,} / {small['n']:,}: {large['wall'] / small['wall']:.2f} "
              f"(for {large['n'] / small['n']:.0f}x the customers)", flush=True)
    import shutil

    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--flow"]:
        flow_main(sys.argv[2:])
        sys.exit(0)
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    for n in sizes:
        seconds = run(n)
        print(f"n={n:>9,}  total={sum(seconds.values()):7.1f}s  " + "  ".join(f"{k}={v}" for k, v in seconds.items()),
              flush=True)
