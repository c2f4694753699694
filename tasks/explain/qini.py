"""Uplift-model quality: the Qini curve and a permutation test against random targeting.

Customers are ranked by their held-out predicted effect tau. After the top k:
  Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)          (Radcliffe 2007: incremental outcomes)
where Y_t, Y_c are summed outcomes and N_t, N_c counts of treated and control among the top k.
Random targeting traces the straight line from 0 to Q(n). The Qini coefficient is the mean gap between
the curve and that line, divided by n (so it is in outcome units per customer). Its p-value: the
share of random rankings (shuffled tau) whose coefficient is at least as large.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def qini_curve(tau: np.ndarray, y: np.ndarray, treated: np.ndarray) -> np.ndarray:
    order = np.argsort(-tau, kind="stable")
    t, yy = treated[order], y[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(yy * t), np.cumsum(yy * ~t)
    return y_t - y_c * np.divide(n_t, n_c, out=np.zeros(len(y)), where=n_c > 0)


def qini_coefficient(curve: np.ndarray) -> float:
    n = len(curve)
    random_line = curve[-1] * np.arange(1, n + 1) / n
    return float(np.mean(curve - random_line) / n)


@dataclass
class QiniResult:
    coefficient: float
    p_value: float
    curve: np.ndarray        # thinned to at most 101 points for the report

    @property
    def reliable(self) -> bool:
        return self.p_value < 0.05 and self.coefficient > 0


def qini_test(tau: np.ndarray, y: np.ndarray, treated: np.ndarray, seed: int, permutations: int = 199) -> QiniResult:
    observed = qini_coefficient(qini_curve(tau, y, treated))
    rng = np.random.default_rng([seed, 3])
    null = [qini_coefficient(qini_curve(rng.permutation(tau), y, treated)) for _ in range(permutations)]
    p = (1 + sum(v >= observed for v in null)) / (permutations + 1)  # permutation p-value (Phipson & Smyth 2010)
    curve = qini_curve(tau, y, treated)
    points = np.unique(np.linspace(0, len(curve) - 1, min(101, len(curve))).astype(int))
    return QiniResult(coefficient=observed, p_value=float(p), curve=curve[points])
