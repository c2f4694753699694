"""Scale benchmark: the campaign on N synthetic customers, seconds per stage.

    .venv/bin/python benchmarks/scale.py [N ...]          stage functions only (default: 10K 100K 1M)
    .venv/bin/python benchmarks/scale.py --flow N         a whole `cpo run` on an N-customer CSV

The first form runs the pure stage functions (no Prefect server), so the figures are the work itself;
the second is what a user gets, Prefect, Great Expectations, the run directory and the report included.
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


def run_flow(n: int) -> None:
    import json
    import subprocess
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="cpo-scale-"))
    customers(n).write_csv(folder / "customers.csv")
    cpo = Path(sys.executable).with_name("cpo")
    start = time.perf_counter()
    subprocess.run([str(cpo), "run", "--customers", str(folder / "customers.csv"), "--out", str(folder / "run")],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    seconds = json.loads((folder / "run" / "manifest.json").read_text())["seconds"]
    print(f"cpo run, n={n:,}: wall {wall:.1f}s (incl. Prefect server start)  " +
          "  ".join(f"{k}={v}" for k, v in seconds.items()), flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--flow"]:
        for n in [int(a) for a in sys.argv[2:]] or [1_000_000]:
            run_flow(n)
        sys.exit(0)
    sizes = [int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000]
    for n in sizes:
        seconds = run(n)
        print(f"n={n:>9,}  total={sum(seconds.values()):7.1f}s  " + "  ".join(f"{k}={v}" for k, v in seconds.items()),
              flush=True)
