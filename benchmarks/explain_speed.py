"""How long `explain` takes on Hillstrom-sized data: 64,000 rows, 2 treatment arms, 3 metrics (goal <= 5 s).

    CPO_HILLSTROM=/path/to/hillstrom.csv .venv/bin/python benchmarks/explain_speed.py [--profile]

Without CPO_HILLSTROM it runs on the synthetic table of the same shape (benchmarks/hillstrom_data.py).
Prints the seconds per part, the top drivers per arm x metric with their Qini p-values.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hillstrom_data import hillstrom_path, load_hillstrom, synthetic_hillstrom  # noqa: E402

from tasks.explain import explain  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--repeat", type=int, default=2, help="runs; the best is reported (the first pays imports)")
    args = ap.parse_args()
    path = hillstrom_path()
    df = (load_hillstrom(path) if path else synthetic_hillstrom()).rename({"segment": "arm"})
    print(f"data: {path or 'synthetic Hillstrom-shaped table'}, {df.height} rows")
    best = float("inf")
    for _ in range(args.repeat):
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile()
            prof.enable()
        start = time.perf_counter()
        e = explain(df, ["visit", "conversion", "spend"], control="No E-Mail", seed=0)
        best = min(best, time.perf_counter() - start)
        if args.profile:
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(18)
    print(f"explain: {best:.2f} s (best of {args.repeat}); fitted on {e.n_fit} of {e.n_total} rows")
    for (metric, arm), q in e.qini.items():
        top = e.attribution.filter((pl.col("metric") == metric) & (pl.col("arm") == arm)).sort("rank")["feature"]
        print(f"  {metric:<10} {arm:<14} Qini p {q.p_value:.3f} ({q.permutations} permutations) "
              f"{'reliable' if q.reliable else 'not reliable':<12} top: {', '.join(top.head(3))}")
    print("excluded:", e.excluded)


if __name__ == "__main__":
    main()
