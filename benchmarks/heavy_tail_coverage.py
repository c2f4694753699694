"""Coverage of the 95% interval on heavy-tailed revenue with no true effect (issue 10).

Each simulated experiment: `--n` customers per arm, `--buyers` of them buy, spend ~ lognormal(mu, sigma),
the same distribution in both arms (true relative lift 0). Coverage = share of experiments whose 95%
interval contains 0. Methods: the old delta-method interval on the plain ratio (for reference), Welch +
Fieller on raw spend, the same on spend capped at the 99th percentile of non-zero values (the default for
revenue-like metrics), and the percentile bootstrap on capped spend.

    .venv/bin/python benchmarks/heavy_tail_coverage.py --n 3000 --sims 2000
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tasks.experiment.stats import CompareConfig, SampleStats, bootstrap_rel_ci, cap_value, compare  # noqa: E402


def delta_method_covers(t: SampleStats, c: SampleStats) -> bool:
    """The pre-issue-10 interval: rel -/+ t sqrt(var_rel), var_rel by the delta method on m_t/m_c."""
    m_t, m_c = t.mean, c.mean
    var_rel = t.var / (t.n * m_c**2) + c.var * m_t**2 / (c.n * m_c**4)
    v_t, v_c = t.var / t.n, c.var / c.n
    dof = (v_t + v_c) ** 2 / (v_t**2 / (t.n - 1) + v_c**2 / (c.n - 1))
    half = sps.t.ppf(0.975, dof) * math.sqrt(var_rel)
    rel = m_t / m_c - 1
    return rel - half <= 0 <= rel + half


def simulate(n: int, sims: int, buyers: float, mu: float, sigma: float, seed: int, percentile: float = 0.99,
             bootstrap: bool = True) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    hits = {"delta (old)": 0, "fieller raw": 0, "fieller capped": 0}
    if bootstrap:
        hits["bootstrap capped"] = 0
    cfg = CompareConfig(nonnegative=True)
    done = 0
    for i in range(sims):
        y = np.where(rng.random(2 * n) < buyers, rng.lognormal(mu, sigma, 2 * n), 0.0)
        y_t, y_c = y[:n], y[n:]
        if not (y_c > 0).any():
            continue
        done += 1
        t, c = SampleStats.from_values(y_t), SampleStats.from_values(y_c)
        hits["delta (old)"] += delta_method_covers(t, c)
        # Fieller's relative interval contains 0 exactly when the Welch interval for the difference does
        # (and it may be unbounded, which the difference interval handles without special cases).
        r = compare(t, c, config=cfg)
        hits["fieller raw"] += r.abs_ci_low <= 0 <= r.abs_ci_high
        cap = cap_value(y, percentile)
        ct, cc = np.minimum(y_t, cap), np.minimum(y_c, cap)
        r = compare(SampleStats.from_values(ct), SampleStats.from_values(cc), config=cfg)
        hits["fieller capped"] += r.abs_ci_low <= 0 <= r.abs_ci_high
        if bootstrap:
            lo, hi = bootstrap_rel_ci(ct, cc, draws=1000, seed=i)
            hits["bootstrap capped"] += lo <= 0 <= hi
    return {k: v / done for k, v in hits.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3000, help="customers per arm")
    ap.add_argument("--sims", type=int, default=2000)
    ap.add_argument("--buyers", type=float, default=0.05)
    ap.add_argument("--mu", type=float, default=3.0)
    ap.add_argument("--sigma", type=float, default=2.0)
    ap.add_argument("--percentile", type=float, default=0.99)
    ap.add_argument("--seed", type=int, default=10)
    args = ap.parse_args()
    start = time.perf_counter()
    cov = simulate(args.n, args.sims, args.buyers, args.mu, args.sigma, args.seed, args.percentile)
    se = math.sqrt(0.95 * 0.05 / args.sims)
    print(f"{args.sims} A/A experiments, {args.n} per arm, {args.buyers:.0%} buyers, spend ~ lognormal({args.mu}, "
          f"{args.sigma}), cap at P{args.percentile * 100:g} of non-zero spend; ±{1.96 * se:.1%} simulation error")
    for k, v in cov.items():
        print(f"  {k:<18} coverage {v:.1%}")
    print(f"  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
