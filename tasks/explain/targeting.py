"""Whom to send what: a targeting policy learned and evaluated with cross-fitting.

On each fold, one outcome model per arm (control included) is fitted on the other fold; each held-out
customer is recommended the arm with the highest predicted outcome. The policy's value is estimated by
inverse propensity weighting on the held-out fold, which is unbiased because arms were randomized:
  V(pi) = mean_i[ Y_i * 1{A_i = pi(x_i)} / P(A_i) ]          (Horvitz-Thompson / IPW)
The baseline is the best single arm chosen on the training fold. The gain's CI uses the per-customer
differences of the two IPW contributions (normal approximation).
"""
from __future__ import annotations

import numpy as np

from tasks.explain.uplift import model


def targeting_gain(x: np.ndarray, y: np.ndarray, arms: np.ndarray, categorical: np.ndarray, fold: np.ndarray,
                   seed: int) -> dict:
    labels = sorted(set(arms))
    share = {a: float(np.mean(arms == a)) for a in labels}
    policy = np.empty(len(y), dtype=object)
    single = np.empty(len(y), dtype=object)
    for k in (0, 1):
        train, test = fold != k, fold == k
        means = {a: y[train & (arms == a)].mean() for a in labels}
        single[test] = max(means, key=means.get)
        predicted = np.column_stack([model(categorical, seed).fit(x[train & (arms == a)], y[train & (arms == a)])
                                     .predict(x[test]) for a in labels])
        policy[test] = np.array(labels, dtype=object)[predicted.argmax(axis=1)]
    p = np.array([share[a] for a in arms])
    c_policy = y * (arms == policy) / p
    c_single = y * (arms == single) / p
    diff = c_policy - c_single
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return {"value_targeted": float(c_policy.mean()), "value_best_single": float(c_single.mean()),
            "gain": float(diff.mean()), "gain_ci_low": float(diff.mean() - 1.96 * se),
            "gain_ci_high": float(diff.mean() + 1.96 * se),
            "best_single_arm": _mode(single), "share_by_arm": {a: float(np.mean(policy == a)) for a in labels},
            "policy": policy}


def _mode(values: np.ndarray) -> str:
    labels, counts = np.unique(values.astype(str), return_counts=True)
    return str(labels[counts.argmax()])


def describe_policy(x: np.ndarray, policy: np.ndarray, features: list[str], categorical: np.ndarray,
                    level_names: dict[str, list[str]], seed: int) -> list[str]:
    """Plain-words rules: a depth-2 tree that mimics the policy (an explanation, not the policy itself)."""
    from sklearn.tree import DecisionTreeClassifier

    filled = np.where(np.isnan(x), -1.0, x)
    tree = DecisionTreeClassifier(max_depth=2, min_samples_leaf=max(20, len(x) // 50), random_state=seed)
    tree.fit(filled, policy.astype(str))
    t = tree.tree_
    rules: list[str] = []

    def walk(node: int, conditions: list[str]) -> None:
        if t.children_left[node] == -1:
            arm = tree.classes_[t.value[node][0].argmax()]
            share = t.n_node_samples[node] / len(x)
            rules.append(f"{' and '.join(conditions) or 'everyone'} ({share:.0%} of customers): send {arm}")
            return
        f, cut = t.feature[node], t.threshold[node]
        name = features[f]
        if categorical[f]:
            names = level_names.get(name, [])
            low = [n for i, n in enumerate(names) if i <= cut]
            left, right = f"{name} in {low}", f"{name} not in {low}"
        else:
            left, right = f"{name} <= {cut:.4g}", f"{name} > {cut:.4g}"
        walk(t.children_left[node], conditions + [left])
        walk(t.children_right[node], conditions + [right])

    walk(0, [])
    return rules
