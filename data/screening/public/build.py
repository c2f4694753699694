"""Builds the compact public training files in this folder from the upstream repositories (run once; the
outputs are committed, so training never needs the network):

    python data/screening/public/build.py HATECHECK_REPO_DIR DAVIDSON_REPO_DIR

HATECHECK_REPO_DIR: a checkout of github.com/paul-rottger/hatecheck-data (test_suite_cases.csv), CC BY 4.0.
DAVIDSON_REPO_DIR: a checkout of github.com/t-davidson/hate-speech-and-offensive-language (data/labeled_data.csv), MIT.

Rows are written in the format of data/screening/train.jsonl plus `source` and, where a row is a negative
for some categories only, `only` (the categories whose model it trains; absent = all).
"""
from __future__ import annotations

import csv
import html
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# HateCheck functionalities whose cases are not hate but may be abuse or threats at a non-protected target:
# negatives for the hate model only (a threat at an individual is still violence)
HATE_ONLY_NEGATIVE = {"target_indiv_nh", "target_group_nh"}
THREAT = {"threat_dir_h", "threat_norm_h"}  # hateful threats: hate, and violence too


def hatecheck(repo: Path) -> list[dict]:
    out = []
    with (repo / "test_suite_cases.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            text, func = r["test_case"].strip(), r["functionality"]
            row = {"id": f"hatecheck-{r['case_id']}", "text": text, "source": "hatecheck", "group": r["templ_id"]}
            if r["label_gold"] == "hateful":
                row.update(kind="harm", category="hate", severity="high")
                if func in THREAT:
                    row["also"] = ["violence"]
            elif func in HATE_ONLY_NEGATIVE:
                row.update(kind="other", category="none", severity="none", only=["hate"])
            else:
                row.update(kind="benign", category="none", severity="none")
            out.append(row)
    return out


def _clean_tweet(t: str) -> str:
    t = html.unescape(t)
    t = re.sub(r"\bRT\b:?|@\w+:?|https?://\S+", " ", t)
    return " ".join(t.split())


def davidson(repo: Path, seed: int = 0) -> list[dict]:
    """Every tweet the annotators' majority called hate speech; a seeded sample of the offensive-not-hate ones
    (negatives for hate only: profanity is not hate) and of the neither ones (benign)."""
    with (repo / "data" / "labeled_data.csv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f)]
    rng = random.Random(seed)
    by = {c: [r for r in rows if r["class"] == c] for c in "012"}
    picked = by["0"] + rng.sample(by["1"], 2000) + rng.sample(by["2"], 2000)
    out = []
    for r in picked:
        text = _clean_tweet(r["tweet"])
        if len(text.split()) < 3:
            continue
        row = {"id": f"davidson-{r['']}", "text": text, "source": "davidson"}
        if r["class"] == "0":
            row.update(kind="harm", category="hate", severity="high")
        elif r["class"] == "1":
            row.update(kind="other", category="none", severity="none", only=["hate"])
        else:
            row.update(kind="benign", category="none", severity="none")
        out.append(row)
    return out


def write(rows: list[dict], path: Path) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{path.name}: {len(rows)} rows")


if __name__ == "__main__":
    write(hatecheck(Path(sys.argv[1])), HERE / "hatecheck.jsonl")
    write(davidson(Path(sys.argv[2])), HERE / "davidson.jsonl")
