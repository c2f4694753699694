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
import re
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


class _Counts:
    """The term-count matrix `CountVectorizer.transform` builds for word 1-2-grams, built with one vocabulary
    lookup per token and array operations instead of sklearn's Python loop over every n-gram string (on 1 MB of
    text that loop was most of the classifier's time). The matrix is the same (same counts, same sorted
    indices, same dtype), so the TF-IDF weights and the probabilities are the same to the last bit
    (tests/safety/test_speed.py compares them)."""

    def __init__(self, vectorizer):
        import numpy as np

        self.rx = re.compile(vectorizer.token_pattern)
        self.n_features = len(vectorizer.vocabulary_)
        self.token_ids: dict[str, int] = {}
        unigram, pairs, features = {}, [], []
        for term, feature in vectorizer.vocabulary_.items():
            words = term.split(" ")
            ids = [self.token_ids.setdefault(w, len(self.token_ids)) for w in words]
            if len(ids) == 1:
                unigram[ids[0]] = feature
            else:
                pairs.append(ids[0] * (1 << 32) + ids[1])
                features.append(feature)
        self.unigram = np.full(len(self.token_ids) + 1, -1, dtype=np.int64)  # the last slot: a token not in the vocabulary
        for token, feature in unigram.items():
            self.unigram[token] = feature
        order = np.argsort(np.asarray(pairs, dtype=np.int64), kind="stable")
        self.pairs = np.asarray(pairs, dtype=np.int64)[order]
        self.pair_features = np.asarray(features, dtype=np.int64)[order]

    @staticmethod
    def supported(vectorizer) -> bool:
        v = vectorizer
        return (v.analyzer == "word" and v.ngram_range == (1, 2) and v.input == "content" and v.lowercase
                and v.strip_accents is None and v.stop_words is None and v.tokenizer is None
                and v.preprocessor is None and not v.binary and re.compile(v.token_pattern).groups == 0)

    def transform(self, docs: list[str]):
        import numpy as np
        import scipy.sparse as sp

        missing, ids, doc_of = len(self.token_ids), [], []
        get, findall = self.token_ids.get, self.rx.findall
        for i, doc in enumerate(docs):
            tokens = [get(t, missing) for t in findall(doc.lower())]
            ids += tokens
            doc_of += [i] * len(tokens)
        ids, doc_of = np.asarray(ids, dtype=np.int64), np.asarray(doc_of, dtype=np.int64)
        uni = self.unigram[ids]
        rows, cols = [doc_of[uni >= 0]], [uni[uni >= 0]]
        if len(ids) > 1 and len(self.pairs):
            a, b = ids[:-1], ids[1:]
            ok = (doc_of[:-1] == doc_of[1:]) & (a < missing) & (b < missing)
            code = a[ok] * (1 << 32) + b[ok]
            at = np.minimum(np.searchsorted(self.pairs, code), len(self.pairs) - 1)
            hit = self.pairs[at] == code
            rows.append(doc_of[:-1][ok][hit])
            cols.append(self.pair_features[at[hit]])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        x = sp.csr_array((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(len(docs), self.n_features),
                         dtype=np.float64)
        x.sum_duplicates()
        x.sort_indices()
        x.indices, x.indptr = x.indices.astype(np.int32), x.indptr.astype(np.int32)
        return x


@lru_cache(maxsize=4)
def _counter(model_id: int):
    model = _artefact()
    return _Counts(model["vectorizer"]) if _Counts.supported(model["vectorizer"]) else None


def features(model: dict, parts: list[str]):
    """TF-IDF features of `parts`: `vectorizer.transform(parts)`, counted fast where the vectorizer allows."""
    vectorizer = model["vectorizer"]
    counter = _counter(id(model)) if model is _artefact() else None
    if counter is None:
        return vectorizer.transform(parts)
    return vectorizer._tfidf.transform(counter.transform(parts), copy=False)


def classifier_probabilities(text) -> dict[str, float]:
    """The worst chunk's probability per category."""
    with _lock:  # Prefect runs tasks in threads; load once
        model = _artefact()
        _counter(id(model))
    parts = chunks(text)
    if not parts:
        return dict.fromkeys(HARM_CATEGORIES, 0.0)
    x = features(model, parts)
    return {c: float(model["models"][c].predict_proba(x)[:, 1].max()) for c in HARM_CATEGORIES}


def classifier_scores(text) -> dict[str, int]:
    """Severity 6 for each category the classifier is confident about, else 0."""
    threshold = _artefact()["threshold"]
    return {c: 6 if p >= threshold else 0 for c, p in classifier_probabilities(text).items()}


if __name__ == "__main__":
    if sys.argv[1:2] != ["train"]:
        sys.exit("usage: python -m tasks.safety.classifier train")
    print(json.dumps(train(), indent=2))
