"""How HIGH_AT in tasks/safety/classifier.py was chosen: 5-fold cross-validation on the labelled set's main split.

    .venv/bin/python benchmarks/harm_classifier_cv.py

Prints, per threshold, the out-of-fold benign false-positive rate and High recall per category; HIGH_AT is
the lowest threshold whose benign FPR is <= 1%.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tasks.records import HARM_CATEGORIES  # noqa: E402
from tasks.safety.classifier import fit, training_rows  # noqa: E402


def main() -> None:
    rows = training_rows()
    texts = np.array([r["text"] for r in rows])
    oof = {c: np.zeros(len(rows)) for c in HARM_CATEGORIES}
    folds = StratifiedKFold(5, shuffle=True, random_state=0).split(texts, [r["category"] for r in rows])
    for train, test in folds:
        vectorizer, models = fit([rows[i] for i in train])
        x = vectorizer.transform(texts[test])
        for c in HARM_CATEGORIES:
            oof[c][test] = models[c].predict_proba(x)[:, 1]
    benign = np.array([r["kind"] != "harm" for r in rows])
    top = np.max(np.column_stack(list(oof.values())), axis=1)
    for th in np.arange(0.40, 0.96, 0.05):
        recall = {c: np.mean([oof[c][i] >= th for i, r in enumerate(rows)
                              if r["category"] == c and r["severity"] == "high"]) for c in HARM_CATEGORIES}
        print(f"threshold {th:.2f}  benign FPR {np.mean(top[benign] >= th):.4f}  High recall " +
              "  ".join(f"{c} {v:.3f}" for c, v in recall.items()))


if __name__ == "__main__":
    main()
