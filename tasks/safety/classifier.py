"""A learned complement to the harm lexicon, because a lexicon only catches the phrasings it was written for.

Per category, a logistic regression on TF-IDF word (1-2) and character (3-5) n-grams, trained at first use
(~1 s) on the main split of the labelled set (tests/data/screening_eval.jsonl: its High rows are the positives
of their category; Medium and Low rows, benign, idiom and other categories are negatives, so that "block
above Medium" holds). A probability at or
above HIGH_AT scores severity 6 (blocks under the default policy). HIGH_AT = 0.65 is the lowest threshold
whose out-of-fold benign false-positive rate is <= 1% in 5-fold cross-validation on that split
(`.venv/bin/python benchmarks/harm_classifier_cv.py`). The held-out and blind sets are never trained on.
"""
from __future__ import annotations

import json
import threading
from functools import lru_cache

from config import PROJECT_DIR
from tasks.records import HARM_CATEGORIES

TRAINING_SET = PROJECT_DIR / "tests" / "data" / "screening_eval.jsonl"
HIGH_AT = 0.65
_lock = threading.Lock()


def training_rows(path=TRAINING_SET) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["kind"] in ("harm", "benign", "idiom") and not r["id"].startswith("heldout-")]


def is_positive(row: dict, category: str) -> bool:
    return row["category"] == category and row["severity"] == "high"


def fit(rows: list[dict]):
    """(vectorizer, {category: model}) fitted on `rows`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_union

    vectorizer = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                            TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2))
    x = vectorizer.fit_transform([r["text"] for r in rows])
    models = {c: LogisticRegression(C=4, class_weight="balanced", max_iter=2000)
              .fit(x, [is_positive(r, c) for r in rows]) for c in HARM_CATEGORIES}
    return vectorizer, models


@lru_cache(maxsize=1)
def _fitted():
    return fit(training_rows())


def classifier_scores(text: str) -> dict[str, int]:
    """Severity 6 for each category the classifier is confident about, else 0."""
    with _lock:  # Prefect runs tasks in threads; fit once
        vectorizer, models = _fitted()
    x = vectorizer.transform([text])
    return {c: 6 if models[c].predict_proba(x)[0, 1] >= HIGH_AT else 0 for c in HARM_CATEGORIES}
