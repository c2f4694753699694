"""Screening evaluation: the embedded screener on the hand-labelled set in tests/data/screening_eval.jsonl.

    .venv/bin/python benchmarks/screening_eval.py [EVAL.jsonl] [--misses]

Harm (rows of kind harm / benign / idiom), per category, at the policy's thresholds:
  precision   of "blocks" (score >= block threshold): blocked rows labelled with that category / all blocked rows
  recall High share of High rows of the category that block; Medium: share of Medium rows that at least warn
  (score >= warn_at); Low: share of Low rows scored >= 2
  FPR         share of benign rows (kind benign + idiom) the category blocks; idiom: the idiom subset only;
  warn        share of benign rows the category at least warns on (not counted as a false positive: warns do not block)
Rules (rows of kind rule), per rule id: positives are the rows labelled with that rule, negatives the clean rows
(rule null, written as near misses for each rule); "also" counts other rules' positives on which it fired too.
Rows whose id starts with "heldout-" are a held-out split: written after the last change to the scorer and never
tuned against. They are reported in their own table and left out of the main one (and of tests/safety/test_eval.py),
so the main table says how the scorer does on the text it was developed with and the held-out table how it does on
new phrasings.
Exits 0; --misses lists every miss and false positive by id.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config import load_settings  # noqa: E402
from tasks.content import load_documents  # noqa: E402
from tasks.records import HARM_CATEGORIES  # noqa: E402
from tasks.safety import LocalHarmScorer  # noqa: E402
from tasks.safety.rules import RULES, Context, Message  # noqa: E402

EVAL = ROOT / "tests" / "data" / "screening_eval.jsonl"
# Written by someone who never saw the scorer's patterns or the eval set: the honest generalisation figure.
BLIND = ROOT / "tests" / "data" / "screening_blind.jsonl"
TODAY = date(2026, 11, 24)  # the day the sample content's approvals and expiries are judged on (as in tests)
LOW = 2


def load(path: Path = EVAL) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def context() -> Context:
    _, policy, brand = load_settings()
    docs = load_documents(ROOT / "data" / "sample" / "content")
    return Context(brand, policy, {d.id: d for d in docs}, TODAY, 60)


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def harm_metrics(rows: list[dict], policy) -> dict:
    harm_rows = [r for r in rows if r["kind"] in ("harm", "benign", "idiom")]
    scorer = LocalHarmScorer()
    scored = [(r, scorer.score(r["text"])) for r in harm_rows]
    benign = [(r, s) for r, s in scored if r["kind"] in ("benign", "idiom")]
    idiom = [(r, s) for r, s in benign if r["kind"] == "idiom"]
    out, misses = {}, defaultdict(list)
    for cat in HARM_CATEGORIES:
        block, warn = policy.category_thresholds[cat], policy.warn_at
        mine = [(r, s) for r, s in scored if r["kind"] == "harm" and r["category"] == cat]
        by_sev = {sev: [(r, s) for r, s in mine if r["severity"] == sev] for sev in ("high", "medium", "low")}
        blocked = [(r, s) for r, s in scored if s[cat] >= block]
        tp = [r for r, s in blocked if r["kind"] == "harm" and r["category"] == cat]
        hit = {"high": [r for r, s in by_sev["high"] if s[cat] >= block],
               "medium": [r for r, s in by_sev["medium"] if s[cat] >= warn],
               "low": [r for r, s in by_sev["low"] if s[cat] >= LOW]}
        fp = [r for r, s in benign if s[cat] >= block]
        out[cat] = {
            "blocked": len(blocked), "precision": _ratio(len(tp), len(blocked)),
            "n_high": len(by_sev["high"]), "recall_high": _ratio(len(hit["high"]), len(by_sev["high"])),
            "n_medium": len(by_sev["medium"]), "recall_medium": _ratio(len(hit["medium"]), len(by_sev["medium"])),
            "n_low": len(by_sev["low"]), "recall_low": _ratio(len(hit["low"]), len(by_sev["low"])),
            "medium_blocked": sum(s[cat] >= block for _, s in by_sev["medium"]),
            "low_blocked": sum(s[cat] >= block for _, s in by_sev["low"]),
            "fpr_benign": _ratio(len(fp), len(benign)),
            "fpr_idiom": _ratio(sum(s[cat] >= block for _, s in idiom), len(idiom)),
            "warn_benign": _ratio(sum(s[cat] >= warn for _, s in benign), len(benign)),
        }
        ids = {r["id"] for r in hit["high"]}
        misses[f"{cat}: High not blocked"] = [(r["id"], s[cat], r["text"]) for r, s in by_sev["high"]
                                              if r["id"] not in ids]
        misses[f"{cat}: benign blocked"] = [(r["id"], s[cat], r["text"]) for r, s in benign if s[cat] >= block]
        misses[f"{cat}: benign warned"] = [(r["id"], s[cat], r["text"]) for r, s in benign if warn <= s[cat] < block]
        misses[f"{cat}: blocked but labelled otherwise"] = [
            (r["id"], s[cat], r["text"]) for r, s in blocked if r["kind"] == "harm" and r["category"] != cat]
    any_block = [r for r, s in benign if any(s[c] >= policy.category_thresholds[c] for c in HARM_CATEGORIES)]
    all_high = [(r, s) for r, s in scored if r["kind"] == "harm" and r["severity"] == "high"]
    out["overall"] = {
        "n_high": len(all_high),
        "recall_high": _ratio(sum(s[r["category"]] >= policy.category_thresholds[r["category"]] for r, s in all_high),
                              len(all_high)),
        "n_benign": len(benign), "n_idiom": len(idiom),
        "fpr_benign": _ratio(len(any_block), len(benign)),
        "fpr_idiom": _ratio(sum(r["kind"] == "idiom" for r in any_block), len(idiom)),
    }
    return {"categories": out, "misses": dict(misses)}


def rule_metrics(rows: list[dict], ctx: Context) -> dict:
    rule_rows = [r for r in rows if r["kind"] == "rule"]
    fired = {}
    for r in rule_rows:
        m = Message(subject=r["subject"], body=r["body"], citations=list(r.get("citations") or []))
        fired[r["id"]] = {rule for rule in ctx.policy.rules if rule in RULES and RULES[rule](m, ctx)}
    clean = [r for r in rule_rows if r["rule"] is None]
    out, misses = {}, defaultdict(list)
    for rule in ctx.policy.rules:
        pos = [r for r in rule_rows if r["rule"] == rule]
        tp = [r for r in pos if rule in fired[r["id"]]]
        fp = [r for r in clean if rule in fired[r["id"]]]
        also = [r for r in rule_rows if r["rule"] not in (None, rule) and rule in fired[r["id"]]]
        out[rule] = {"n_pos": len(pos), "n_neg": len(clean), "precision": _ratio(len(tp), len(tp) + len(fp)),
                     "recall": _ratio(len(tp), len(pos)), "fpr": _ratio(len(fp), len(clean)), "also": len(also)}
        misses[f"{rule}: missed"] = [(r["id"], r["subject"]) for r in pos if r not in tp]
        misses[f"{rule}: fired on clean"] = [(r["id"], r["subject"]) for r in fp]
        misses[f"{rule}: also fired on"] = [(r["id"], r["rule"]) for r in also]
    return {"rules": out, "misses": dict(misses)}


def heldout(row: dict) -> bool:
    return row["id"].startswith("heldout-")


def evaluate(path: Path = EVAL) -> dict:
    rows = load(path)
    main_rows, held_rows = [r for r in rows if not heldout(r)], [r for r in rows if heldout(r)]
    ctx = context()
    harm, rules = harm_metrics(main_rows, ctx.policy), rule_metrics(main_rows, ctx)
    held = harm_metrics(held_rows, ctx.policy) if held_rows else {"categories": {}, "misses": {}}
    kinds = defaultdict(int)
    for r in rows:
        kinds[("heldout" if heldout(r) else "main", r["kind"], r["category"], r["severity"])] += 1
    return {"harm": harm["categories"], "heldout": held["categories"], "rules": rules["rules"],
            "misses": {**harm["misses"], **rules["misses"], **{f"heldout {k}": v for k, v in held["misses"].items()}},
            "counts": dict(kinds), "n": len(rows), "n_main": len(main_rows), "n_heldout": len(held_rows)}


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def _harm_table(title: str, harm: dict) -> None:
    print(f"\n{title}")
    print(f"{'category':<10} {'prec':>6} {'High':>4} {'rec High':>8} {'Med':>4} {'rec Med':>7} {'Low':>4} "
          f"{'rec Low':>7} {'Med blk':>7} {'FPR ben':>7} {'FPR idm':>7} {'warn ben':>8}")
    for cat in HARM_CATEGORIES:
        m = harm[cat]
        print(f"{cat:<10} {_pct(m['precision']):>6} {m['n_high']:>4} {_pct(m['recall_high']):>8} {m['n_medium']:>4} "
              f"{_pct(m['recall_medium']):>7} {m['n_low']:>4} {_pct(m['recall_low']):>7} {m['medium_blocked']:>7} "
              f"{_pct(m['fpr_benign']):>7} {_pct(m['fpr_idiom']):>7} {_pct(m['warn_benign']):>8}")
    o = harm["overall"]
    print(f"{'overall':<10} {'':>6} {o['n_high']:>4} {_pct(o['recall_high']):>8} {'':>4} {'':>7} {'':>4} {'':>7} "
          f"{'':>7} {_pct(o['fpr_benign']):>7} {_pct(o['fpr_idiom']):>7}   "
          f"(benign {o['n_benign']}, of which idiom {o['n_idiom']})")


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    path = Path(args[0]) if args else EVAL
    res = evaluate(path)
    print(f"eval set: {path} ({res['n']} rows: {res['n_main']} main, {res['n_heldout']} held-out)")
    _harm_table("harm categories, main split (block >= threshold, warn >= warn_at; benign = benign + idiom rows)",
                res["harm"])
    if res["heldout"]:
        _harm_table("harm categories, held-out split (new phrasings, never tuned against)", res["heldout"])
    if path == EVAL and BLIND.exists():
        blind = harm_metrics(load(BLIND), context().policy)["categories"]
        _harm_table(f"harm categories, blind set ({BLIND.name}: written without seeing the scorer)", blind)
    print("\nmarketing rules (negatives = clean rule rows)")
    print(f"{'rule':<24} {'pos':>4} {'neg':>4} {'prec':>6} {'recall':>7} {'FPR':>6} {'also':>5}")
    for rule, m in res["rules"].items():
        print(f"{rule:<24} {m['n_pos']:>4} {m['n_neg']:>4} {_pct(m['precision']):>6} {_pct(m['recall']):>7} "
              f"{_pct(m['fpr']):>6} {m['also']:>5}")
    if "--misses" in argv:
        for key, items in res["misses"].items():
            for item in items:
                print(f"  {key}: {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
