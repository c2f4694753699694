"""Uplift-model quality: the Qini curve and a permutation test against random targeting.

Customers are ranked by their held-out predicted effect tau. After the top k:
  Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)          (Radcliffe 2007: incremental outcomes)
where Y_t, Y_c are summed outcomes and N_t, N_c counts of treated and control among the top k.
Random targeting traces the straight line from 0 to Q(n). The Qini coefficient is the mean gap between
the curve and that line, divided by n (so it is in outcome units per customer).

Its p-value is the share of random rankings whose coefficient is at least as large. A random ranking is a
uniformly random order of the customers (the same null as shuffling tau, without sorting each time), and the
test stops early once the evidence is decided (Besag & Clifford 1991 sequential Monte Carlo p-value): after
`h` null coefficients reach the observed one, p = h / l at the l-th permutation; otherwise all `permutations`
run and p = (1 + #exceed) / (permutations + 1) (Phipson & Smyth 2010). A model no better than random stops
after about 2h permutations; a real driver runs them all and keeps its full resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _curve(t: np.ndarray, yy: np.ndarray) -> np.ndarray:
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(yy * t), np.cumsum(yy * ~t)
    return y_t - y_c * np.divide(n_t, n_c, out=np.zeros(len(yy)), where=n_c > 0)


def qini_curve(tau: np.ndarray, y: np.ndarray, treated: np.ndarray) -> np.ndarray:
    order = np.argsort(-tau, kind="stable")
    return _curve(treated[order], y[order])


def qini_coefficient(curve: np.ndarray) -> float:
    n = len(curve)
    random_line = curve[-1] * np.arange(1, n + 1) / n
    return float(np.mean(curve - random_line) / n)


@dataclass
class QiniResult:
    coefficient: float
    p_value: float
    curve: np.ndarray        # thinned to at most 101 points for the report
    permutations: int = 0    # how many random rankings the sequential test drew

    @property
    def reliable(self) -> bool:
        return self.p_value < 0.05 and self.coefficient > 0


def qini_test(tau: np.ndarray, y: np.ndarray, treated: np.ndarray, seed: int, permutations: int = 199,
              stop_after: int = 10) -> QiniResult:
    curve = qini_curve(tau, y, treated)
    observed = qini_coefficient(curve)
    rng = np.random.default_rng([seed, 3])
    exceed, drawn = 0, 0
    while drawn < permutations and exceed < stop_after:
        order = rng.permutation(len(y))  # a random ranking
        exceed += qini_coefficient(_curve(treated[order], y[order])) >= observed
        drawn += 1
    if exceed >= stop_after:
        p = exceed / drawn  # Besag & Clifford (1991) sequential p-value
    else:
        p = (1 + exceed) / (permutations + 1)  # permutation p-value (Phipson & Smyth 2010)
    points = np.unique(np.linspace(0, len(curve) - 1, min(101, len(curve))).astype(int))
    return QiniResult(coefficient=observed, p_value=float(p), curve=curve[points], permutations=drawn)
