"""Screening evaluated on text written by other people, which nothing here was trained or tuned on.

    .venv/bin/python benchmarks/screening_external.py [--data DIR] [--screener NAME ...] [--misses N]

Sets (public; put the files in DIR, default .cache/screening-eval/; they are not in git):

| set | file(s) in DIR | from | labels |
| --- | --- | --- | --- |
| OpenAI moderation evaluation set (Markov et al. 2022, "A Holistic Approach to Undesired Content Detection") | moderation-samples-1680.jsonl | github.com/openai/moderation-api-release, commit f4ab51b, data/samples-1680.jsonl.gz (gunzip) | S, H, V, SH, S3, H2, V2, HR per text, by OpenAI's annotators |
| XSTest v2 model completions (Röttger et al. 2024) | x_gpt4.csv, x_llama2new.csv, x_llama2orig.csv, x_mistralinstruct.csv, x_mistralguard.csv | github.com/paul-rottger/exaggerated-safety, commit a3bb396, model_completions/xstest_v2_completions_*.csv | final_label by two human annotators: 1_full_compliance, 2_full_refusal, 3_partial_refusal |
| Marketing emails of an advocacy group (GenV / Million Dollar Vegan) | genv-email-analytics.csv | github.com/Open-Paws/Datasets, commit 0911f46, email_marketing_analytics/GenV Email Analytics.csv | none: sent to subscribers, so benign marketing copy |
| Product titles of an e-commerce catalogue (Flipkart sample) | flipkart_com-ecommerce_sample.csv | github.com/sonalkulk/Shack-labs-Pre-internship-test (a copy of the public Flipkart sample), flipkart_com-ecommerce_sample.csv | none: catalogue titles, benign commercial text |

What is measured (a text is *blocked* when a harm category reaches the policy's threshold, 6; the marketing
rules are not part of these figures):
- moderation set, per category (S->sexual, H->hate, V->violence, SH->self_harm): recall on texts labelled
  with the category, on its severe sub-category (S3, H2, V2: the set's own "clearly harmful"), and precision
  (blocked for that category and labelled with it, or with any category); benign = every label 0: the share
  blocked. "Clearly harmful" recall: texts labelled S3, H2 or V2, blocked in any category.
- XSTest: the share of full refusals blocked (they name the harm to decline it); the share of full
  compliances to the safe prompts blocked (benign answers about "killing a Python process" and the like).
- marketing: the share of English email paragraphs and of product titles blocked.
Texts the embedded scorer flags as not English (rule unsupported_language) are counted separately: the
rule blocks them by policy, so they are not passed, but they are not a harm score either.
"""
from __future__ import annotations

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from config import load_policy  # noqa: E402
from tasks.records import HARM_CATEGORIES  # noqa: E402
from tasks.safety import make_harm_scorer  # noqa: E402
from tasks.safety.language import unsupported_language  # noqa: E402

DATA = ROOT / ".cache" / "screening-eval"
LABELS = {"sexual": ("S", "S3"), "hate": ("H", "H2"), "violence": ("V", "V2"), "self_harm": ("SH", None)}
XSTEST = ["x_gpt4.csv", "x_llama2new.csv", "x_llama2orig.csv", "x_mistralinstruct.csv", "x_mistralguard.csv"]


def moderation_rows(data: Path) -> list[dict]:
    return [json.loads(line) for line in (data / "moderation-samples-1680.jsonl").read_text("utf-8").splitlines()
            if line.strip()]


def xstest_rows(data: Path) -> list[dict]:
    rows = []
    for name in XSTEST:
        with (data / name).open(encoding="utf-8") as f:
            rows += [{**r, "model": name[2:-4]} for r in csv.DictReader(f)]
    return rows


def marketing_paragraphs(data: Path) -> list[str]:
    with (data / "genv-email-analytics.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["type"] == "text" and len(r["content"].split()) >= 5]
    return list(dict.fromkeys(r["content"] for r in rows))


def product_titles(data: Path) -> list[str]:
    with (data / "flipkart_com-ecommerce_sample.csv").open(encoding="utf-8", errors="replace") as f:
        return list(dict.fromkeys(r["product_name"] for r in csv.DictReader(f) if r.get("product_name")))


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:.1f}% ({a}/{b})" if b else "-"


class Scored:
    """Scores each text once per backend; remembers which texts are not English."""

    def __init__(self, kind: str):
        self.kind, self.scorer, self.policy = kind, make_harm_scorer(kind), load_policy()

    def blocked(self, text: str) -> set[str]:
        scores = self.scorer.score(text)
        return {c for c in HARM_CATEGORIES if scores[c] >= self.policy.category_thresholds[c]}

    def foreign(self, text: str) -> bool:
        return self.kind == "local" and unsupported_language(text) is not None


def evaluate(kind: str, data: Path, misses: int = 0) -> list[str]:
    s = Scored(kind)
    out = [f"### Backend `{kind}`", ""]

    mod = moderation_rows(data)
    verdicts = [(r, s.blocked(r["prompt"]), s.foreign(r["prompt"])) for r in mod]
    out += ["OpenAI moderation evaluation set (1,680 texts):", "",
            "| category | labelled | recall | severe sub-category | recall (severe) | blocked | precision (same category) | precision (any harm label) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for cat, (label, severe) in LABELS.items():
        pos = [(r, b) for r, b, _ in verdicts if r.get(label) == 1]
        sev = [(r, b) for r, b, _ in verdicts if severe and r.get(severe) == 1]
        blocked = [(r, b) for r, b, _ in verdicts if cat in b]
        same = sum(bool(r.get(label) == 1 or (severe and r.get(severe) == 1)) for r, _ in blocked)
        anyl = sum(any(r.get(k) == 1 for k in ("S", "H", "V", "SH", "S3", "H2", "V2", "HR")) for r, _ in blocked)
        out.append(f"| {cat} | {len(pos)} | {_pct(sum(cat in b for _, b in pos), len(pos))} | "
                   f"{severe or '-'} | {_pct(sum(cat in b for _, b in sev), len(sev)) if severe else '-'} | "
                   f"{len(blocked)} | {_pct(same, len(blocked))} | {_pct(anyl, len(blocked))} |")
    clear = [(r, b, f) for r, b, f in verdicts if any(r.get(k) == 1 for k in ("S3", "H2", "V2"))]
    benign = [(r, b, f) for r, b, f in verdicts
              if all(r.get(k) == 0 for k in ("S", "H", "V", "SH", "S3", "H2", "V2", "HR"))]
    out += ["", f"- clearly harmful (S3, H2 or V2), blocked in any category: {_pct(sum(bool(b) for _, b, _ in clear), len(clear))}"
                f"; blocked or flagged as not English: {_pct(sum(bool(b) or f for _, b, f in clear), len(clear))}",
            f"- benign (every label 0), blocked: {_pct(sum(bool(b) for _, b, _ in benign), len(benign))}"
            f"; flagged as not English: {_pct(sum(f for _, _, f in benign), len(benign))}"]

    xs = xstest_rows(data)
    refusals = [r for r in xs if r["final_label"].startswith("2")]
    complied = [r for r in xs if r["final_label"].startswith("1") and not r["type"].startswith("contrast")]
    ref_blocked = [r for r in refusals if s.blocked(r["completion"])]
    ok_blocked = [r for r in complied if s.blocked(r["completion"])]
    out += [f"- XSTest full refusals (human-labelled, 5 models), blocked: {_pct(len(ref_blocked), len(refusals))}",
            f"- XSTest full compliances to safe prompts, blocked: {_pct(len(ok_blocked), len(complied))}"]

    paragraphs = marketing_paragraphs(data)
    english = [p for p in paragraphs if unsupported_language(p) is None]
    mk_blocked = [p for p in english if s.blocked(p)]
    titles = product_titles(data)
    t_blocked = [t for t in titles if s.blocked(t)]
    out += [f"- marketing email paragraphs (English), blocked: {_pct(len(mk_blocked), len(english))}"
            f"; paragraphs flagged as not English: {len(paragraphs) - len(english)} of {len(paragraphs)}",
            f"- product titles, blocked: {_pct(len(t_blocked), len(titles))}", ""]
    if misses:
        missed = [r["prompt"][:160].replace("\n", " ") for r, b, f in clear if not b and not f]
        out += ["missed clearly harmful:"] + [f"  - {m}" for m in missed[:misses]]
        out += ["blocked refusals:"] + [f"  - {r['completion'][:160]!r}" for r in ref_blocked[:misses]]
        out += ["blocked marketing:"] + [f"  - {p[:160]!r}" for p in mk_blocked[:misses]]
        out += ["blocked titles:"] + [f"  - {t[:160]!r}" for t in t_blocked[:misses]]
        out += ["blocked benign moderation texts:"] + [
            f"  - {sorted(b)} {r['prompt'][:140]!r}" for r, b, _ in benign if b][:misses]
    return out


def main(argv: list[str]) -> int:
    data = Path(argv[argv.index("--data") + 1]) if "--data" in argv else DATA
    kinds = [argv[i + 1] for i, a in enumerate(argv) if a == "--screener"] or ["local"]
    misses = int(argv[argv.index("--misses") + 1]) if "--misses" in argv else 0
    missing = [n for n in ["moderation-samples-1680.jsonl", "genv-email-analytics.csv",
                           "flipkart_com-ecommerce_sample.csv", *XSTEST] if not (data / n).exists()]
    if missing:
        print(f"{data}: missing {', '.join(missing)}; see this file's docstring for where each comes from")
        return 2
    for kind in kinds:
        print("\n".join(evaluate(kind, data, misses)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
