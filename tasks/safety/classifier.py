"""A learned complement to the harm lexicon, because a lexicon only catches the phrasings it was written for.

Trained offline, never at run time, by a committed command:

    .venv/bin/python -m tasks.safety.classifier train

It reads data/screening/train.jsonl (labelled sentences written for this project: High rows are the
positives of their category; Medium, Low, benign and idiom rows and other categories are negatives, so that
"block above Medium" holds) and writes a versioned artefact, data/models/harm-classifier.joblib, with its
card data/models/harm-classifier.json (version, SHA-256 of the artefact and of the training data, the
threshold, cross-validated figures, library versions). The artefact's hash is part of every audit row's
policy version (config.load_policy), so a retrained model is a new policy version.

Model: per category, a logistic regression on TF-IDF word 1-2-grams of the normalised text
(tasks/safety/normalize.py: disguises are undone before the model sees the text). Word n-grams only: char
n-grams cost 5x the time on long text, and normalisation already folds the spellings they were for.
The threshold HIGH_AT is the lowest whose out-of-fold benign false-positive rate is <= 1% in 5-fold
cross-validation on the training data; a probability at or above it scores severity 6.

At scoring time long text is cut into chunks of a few sentences (a long email with one harmful sentence is
judged by that sentence, not diluted by the rest), refusal sentences are left out (they name harm to decline
it), and the text's score is the worst chunk's.
"""
from __future__ import annotations

import hashlib
import json
import sys
import threading
from functools import lru_cache
from pathlib import Path

from config import PROJECT_DIR
from tasks.records import HARM_CATEGORIES

TRAINING_SET = PROJECT_DIR / "data" / "screening" / "train.jsonl"
MODEL = PROJECT_DIR / "data" / "models" / "harm-classifier.joblib"
CARD = MODEL.with_suffix(".json")
VERSION = "harm-classifier-2"
CHUNK = 600  # characters per scored chunk
_lock = threading.Lock()


def training_rows(path: Path = TRAINING_SET) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def is_positive(row: dict, category: str) -> bool:
    return row["kind"] == "harm" and row["category"] == category and row["severity"] == "high"


def fit(rows: list[dict]):
    """(vectorizer, {category: model}) fitted on `rows`."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from tasks.safety.normalize import fold

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)\b\w[\w']*\b")
    x = vectorizer.fit_transform([fold(r["text"]) for r in rows])
    models = {c: LogisticRegression(C=4, class_weight="balanced", max_iter=2000)
              .fit(x, [is_positive(r, c) for r in rows]) for c in HARM_CATEGORIES}
    return vectorizer, models


def choose_threshold(rows: list[dict], seed: int = 0) -> tuple[float, dict]:
    """The lowest threshold whose out-of-fold benign FPR is <= 1% (5-fold CV), and the CV figures."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    from tasks.safety.normalize import fold

    texts = [fold(r["text"]) for r in rows]
    oof = {c: np.zeros(len(rows)) for c in HARM_CATEGORIES}
    folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(texts, [r["category"] for r in rows])
    for train, test in folds:
        vectorizer, models = fit([rows[i] for i in train])
        x = vectorizer.transform([texts[i] for i in test])
        for c in HARM_CATEGORIES:
            oof[c][test] = models[c].predict_proba(x)[:, 1]
    benign = np.array([r["kind"] != "harm" for r in rows])
    top = np.max(np.column_stack(list(oof.values())), axis=1)
    for th in np.round(np.arange(0.30, 0.96, 0.05), 2):
        fpr = float(np.mean(top[benign] >= th))
        if fpr <= 0.01:
            recall = {c: round(float(np.mean([oof[c][i] >= th for i, r in enumerate(rows) if is_positive(r, c)])), 3)
                      for c in HARM_CATEGORIES}
            return float(th), {"cv_benign_fpr": round(fpr, 4), "cv_high_recall": recall}
    return 0.95, {"cv_benign_fpr": None, "cv_high_recall": None}


def train(out: Path = MODEL, data: Path = TRAINING_SET) -> dict:
    """Fit on all of `data`, write the artefact and its card; returns the card."""
    import joblib
    import sklearn

    rows = training_rows(data)
    threshold, figures = choose_threshold(rows)
    vectorizer, models = fit(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"version": VERSION, "threshold": threshold, "vectorizer": vectorizer, "models": models}, out,
                compress=3)
    card = {"version": VERSION, "artefact": out.name, "sha256": sha256(out), "threshold": threshold,
            "training_data": str(data.relative_to(PROJECT_DIR)) if data.is_relative_to(PROJECT_DIR) else str(data),
            "training_sha256": sha256(data), "training_rows": len(rows), **figures,
            "features": "TF-IDF word 1-2-grams of normalised text", "model": "logistic regression per category",
            "sklearn": sklearn.__version__, "python": sys.version.split()[0]}
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def _artefact() -> dict:
    import joblib

    from tasks.errors import ScreenerUnavailable

    try:
        card = json.loads(CARD.read_text("utf-8"))
        if sha256(MODEL) != card["sha256"]:
            raise ScreenerUnavailable(f"{MODEL}: does not match the hash in {CARD.name}; retrain with "
                                      "`python -m tasks.safety.classifier train`")
        return joblib.load(MODEL)
    except (OSError, KeyError, ValueError) as err:
        raise ScreenerUnavailable(f"harm classifier artefact {MODEL} cannot be loaded ({err}); failing closed; "
                                  "build it with `python -m tasks.safety.classifier train`") from None


def chunks(text) -> list[str]:
    """Normalised sentences, refusals left out, grouped into chunks of about CHUNK characters. `text` may be
    a harm.Prepared (normalised and split once for both embedded scorers)."""
    from tasks.safety.harm import Prepared, prepare, windows

    prepared = text if isinstance(text, Prepared) else prepare(text)
    out, current = [], ""
    for sentence, refusal in prepared.sentences:
        if refusal:
            continue
        for piece in windows(sentence, CHUNK, 100):
            if current and len(current) + len(piece) > CHUNK:
                out.append(current)
                current = ""
            current = f"{current} {piece}".strip()
    if current:
        out.append(current)
    return list(dict.fromkeys(out))  # a repeated chunk is scored once


def classifier_probabilities(text) -> dict[str, float]:
    """The worst chunk's probability per category."""
    with _lock:  # Prefect runs tasks in threads; load once
        model = _artefact()
    parts = chunks(text)
    if not parts:
        return dict.fromkeys(HARM_CATEGORIES, 0.0)
    x = model["vectorizer"].transform(parts)
    return {c: float(model["models"][c].predict_proba(x)[:, 1].max()) for c in HARM_CATEGORIES}


def classifier_scores(text) -> dict[str, int]:
    """Severity 6 for each category the classifier is confident about, else 0."""
    threshold = _artefact()["threshold"]
    return {c: 6 if p >= threshold else 0 for c, p in classifier_probabilities(text).items()}


if __name__ == "__main__":
    if sys.argv[1:2] != ["train"]:
        sys.exit("usage: python -m tasks.safety.classifier train")
    print(json.dumps(train(), indent=2))
