"""The Hillstrom e-mail experiment (MineThatData, 2008), or a synthetic table of the same shape.

The real file (64,000 customers; recency, history_segment, history, mens, womens, zip_code, newbie, channel,
segment, visit, conversion, spend) is not in this repository. Point CPO_HILLSTROM at a copy to use it;
checks that need it skip with that reason otherwise. `synthetic_hillstrom` draws the same columns with
similar margins and a planted heterogeneity like the real one: the women's e-mail raises visits mostly
among customers who bought women's merchandise (`womens` = 1).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

ARMS = ["No E-Mail", "Mens E-Mail", "Womens E-Mail"]
BINS = [(0, 100, "1) $0 - $100"), (100, 200, "2) $100 - $200"), (200, 350, "3) $200 - $350"),
        (350, 500, "4) $350 - $500"), (500, 750, "5) $500 - $750"), (750, 1000, "6) $750 - $1,000"),
        (1000, float("inf"), "7) $1,000 +")]


def hillstrom_path() -> Path | None:
    path = os.environ.get("CPO_HILLSTROM")
    return Path(path) if path and Path(path).is_file() else None


def load_hillstrom(path: Path | None = None) -> pl.DataFrame:
    return pl.read_csv(path or hillstrom_path(), infer_schema_length=None)


def synthetic_hillstrom(n: int = 64_000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(ARMS, n)
    history = np.round(np.maximum(29.99, rng.lognormal(5.0, 0.9, n)), 2)
    mens = (rng.random(n) < 0.55).astype(int)
    womens = np.where(mens == 0, 1, (rng.random(n) < 0.2).astype(int))
    newbie = (rng.random(n) < 0.5).astype(int)
    recency = rng.integers(1, 13, n)
    base = 0.07 + 0.05 * (history > 200) + 0.03 * (recency <= 3)
    lift = np.where(segment == "Mens E-Mail", 0.07 * (0.4 + mens), 0.0)
    lift += np.where(segment == "Womens E-Mail", 0.075 * womens, 0.0)
    visit = (rng.random(n) < base + lift).astype(int)
    conversion = visit * (rng.random(n) < 0.06 + 0.03 * (segment != "No E-Mail")).astype(int)
    spend = np.where(conversion == 1, np.round(rng.lognormal(4.4, 0.7, n), 2), 0.0)
    labels = [next(label for lo, hi, label in BINS if lo <= h < hi) for h in history]
    return pl.DataFrame({
        "recency": recency, "history_segment": labels, "history": history, "mens": mens, "womens": womens,
        "zip_code": rng.choice(["Urban", "Surburban", "Rural"], n, p=[0.4, 0.45, 0.15]), "newbie": newbie,
        "channel": rng.choice(["Web", "Phone", "Multichannel"], n, p=[0.44, 0.44, 0.12]), "segment": segment,
        "visit": visit, "conversion": conversion, "spend": spend})
