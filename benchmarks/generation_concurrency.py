"""Generation concurrency benchmark: N variants through OpenAIGenerator.generate_batch against the local fake
OpenAI server, which answers every request after L seconds.

    .venv/bin/python benchmarks/generation_concurrency.py [--n 40] [--latency 0.2] [--concurrency 4]

With C requests in flight the ideal is ceil(N / C) * L; the achieved fraction is ideal / elapsed (1.0 means
the bound, not our code, sets the pace). One warm-up request first (not counted). No cache, no network
beyond 127.0.0.1; the fake runs in this process, so its CPU time counts against the client's.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config import load_brand  # noqa: E402
from tasks.content import load_documents  # noqa: E402
from tasks.generation.openai import OpenAIGenerator, Settings  # noqa: E402
from tasks.records import SegmentProfile  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI  # noqa: E402

STRATEGIES = ["value", "urgency", "loyalty", "spotlight", "education"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    docs = [d for d in load_documents(ROOT / "data" / "sample" / "content") if d.approval_status == "approved"]
    jobs = [{"profile": SegmentProfile(name=f"segment_{i}", size=100, share=0.1, tags=["all"],
                                       description="customers with similar value"),
             "documents": docs, "strategy": STRATEGIES[i % len(STRATEGIES)], "slot": 1} for i in range(args.n)]
    with FakeOpenAI() as fake:
        fake.latency = args.latency
        settings = Settings.from_env("openai", {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": fake.base_url,
                                                "CPO_CACHE_DIR": "off",
                                                "CPO_OPENAI_CONCURRENCY": str(args.concurrency)})
        generator = OpenAIGenerator(load_brand(), 60, settings)
        warm = time.perf_counter()  # the SDK imports its response types on first use: keep that out of the figure
        generator.generate(jobs[0]["profile"].model_copy(update={"name": "warm_up"}), docs, "value", 1, 1, set())
        warm, fake.requests[:], fake.max_in_flight = time.perf_counter() - warm, [], 0
        start = time.perf_counter()
        variants = generator.generate_batch(jobs)
        elapsed = time.perf_counter() - start
        requests, peak = len(fake.requests), fake.max_in_flight
    ideal = math.ceil(args.n / args.concurrency) * args.latency
    print(f"warm-up request (not counted): {warm:.2f} s")
    print(f"N={args.n} variants, L={args.latency:g} s, C={args.concurrency}: {len(variants)} variants, "
          f"{requests} requests, peak in flight {peak}")
    print(f"elapsed {elapsed:.2f} s, ideal ceil(N/C)*L = {ideal:.2f} s, achieved fraction {ideal / elapsed:.2f}")
    print(f"tokens {generator.usage_report()['totals']}")


if __name__ == "__main__":
    main()
