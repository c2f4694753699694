"""The embedded screener against the labelled evaluation set (tests/data/screening_eval.jsonl), at the issue's bar:
High recall >= 95% per harm category, false-positive rate on benign marketing copy <= 1% (overall and per category),
and every marketing rule with recall >= 90% and FPR <= 10% on its examples.

The numbers come from benchmarks/screening_eval.py (run it for the full table). The bar applies to the main split;
the "heldout-" rows measure new phrasings and are reported by the benchmark, not asserted here.
"""
import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from tasks.records import HARM_CATEGORIES

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("screening_eval", ROOT / "benchmarks" / "screening_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _benchmark()


@pytest.fixture(scope="module")
def result(bench):
    return bench.evaluate()


@pytest.fixture(scope="module")
def rows(bench):
    return [r for r in bench.load() if not bench.heldout(r)]


def test_eval_set_has_what_the_bar_needs(rows, settings):
    kinds = Counter((r["kind"], r["category"], r["severity"]) for r in rows)
    for cat in HARM_CATEGORIES:
        assert kinds[("harm", cat, "high")] >= 30, cat
        assert kinds[("harm", cat, "medium")] >= 10, cat
        assert kinds[("harm", cat, "low")] >= 10, cat
    assert kinds[("benign", "none", "none")] + kinds[("idiom", "none", "none")] >= 250
    assert kinds[("idiom", "none", "none")] >= 80
    _, policy, _ = settings
    rule_rows = [r for r in rows if r["kind"] == "rule"]
    for rule in policy.rules:
        assert sum(r["rule"] == rule for r in rule_rows) >= 5, rule
        assert sum(r["rule"] is None and r["id"].startswith(f"rule-{rule}-neg") for r in rule_rows) >= 5, rule


@pytest.mark.parametrize("category", HARM_CATEGORIES)
def test_high_recall_per_category(result, category):
    m = result["harm"][category]
    misses = result["misses"][f"{category}: High not blocked"]
    assert m["recall_high"] >= 0.95, misses


@pytest.mark.parametrize("category", HARM_CATEGORIES)
def test_benign_false_positive_rate_per_category(result, category):
    assert result["harm"][category]["fpr_benign"] <= 0.01, result["misses"][f"{category}: benign blocked"]


def test_benign_false_positive_rate_overall(result):
    overall = result["harm"]["overall"]
    assert overall["fpr_benign"] <= 0.01
    assert overall["fpr_idiom"] <= 0.01


def test_medium_and_low_are_not_blocked_wholesale(result):
    """"Block above Medium": the Medium and Low examples should mostly warn or pass, not block."""
    for cat in HARM_CATEGORIES:
        m = result["harm"][cat]
        assert m["medium_blocked"] <= m["n_medium"] // 2, cat
        assert m["low_blocked"] == 0, cat


def test_every_rule_meets_the_bar(result):
    weak = {rule: m for rule, m in result["rules"].items() if m["recall"] < 0.9 or m["fpr"] > 0.1}
    detail = {rule: (result["misses"][f"{rule}: missed"], result["misses"][f"{rule}: fired on clean"]) for rule in weak}
    assert not weak, detail
