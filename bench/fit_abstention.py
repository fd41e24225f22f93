"""Fit the abstention models (qa/answering.py: ABSTAIN_MODEL_ALONE, and the probe in qa/abstain_probe.json) on
SQuAD 2.0 questions held out from the evaluation.

    python bench/fit_abstention.py [--tune 605] [--out /tmp/abstain.json] [--save qa/abstain_probe.json]

The evaluation sample (100 answerable + 100 unanswerable, seed 13, as `qa eval --answers 100 --impossible 100`)
is excluded; the tuning sample is drawn from the remaining questions with seed 7 (605 of each is all of them).
Every tuning question is answered with abstention switched off, its signals and the reader's hidden state
(Extraction.hidden) are recorded, and logistic regressions learn P(the answer is right and its citation covers the
gold answer): one from the signals alone, one (the probe) from the signals and the hidden state, its
regularisation chosen by 5-fold cross-validation. Prints both, with cross-validated ROC AUC and the trade-off
between abstention and false refusals; --save writes the probe.
"""

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from tuning import SQUAD, record_reads, tuning_sample

from qa.answering import ABSTAIN_FEATURES, answer_many
from qa.config import Settings
from qa.evaluation import f1_score
from qa.generation import HIDDEN_LAYER

parser = argparse.ArgumentParser()
parser.add_argument("--squad", default=SQUAD)
parser.add_argument("--tune", type=int, default=605, help="answerable and unanswerable questions each")
parser.add_argument("--out", default=None, help="save the recorded signals and hidden states as JSON")
parser.add_argument("--features", default=None, help="fit from a JSON saved by --out instead of answering again")
parser.add_argument("--save", default=None, help="write the probe here (qa/abstain_probe.json)")
args = parser.parse_args()
settings = dataclasses.replace(Settings.from_env(progress=False), abstain_threshold=0.0)

if args.features:
    rows = json.loads(Path(args.features).read_text())
else:
    seen: dict = {}
    record_reads(settings, seen)
    with tempfile.TemporaryDirectory() as tmp:
        tune_ans, tune_imp, index_dir = tuning_sample(args.squad, Path(tmp), args.tune, args.tune, settings)
        rows = []
        for i, q in enumerate(tune_ans + tune_imp):
            seen.clear()
            (a, feats), = answer_many([q.question], index_dir, settings)
            text = a.text.replace(" [1]", "")
            correct = (not q.impossible and not a.abstained and bool(feats)
                       and any(c.source == q.source and any(c.start <= s and e <= c.end for s, e, _ in q.golds)
                               for c in a.citations))
            f1 = max((f1_score(text, t) for _, _, t in q.golds), default=0.0)
            hidden = list(seen["ext"].hidden) if "ext" in seen else []
            rows.append({"id": q.id, "impossible": q.impossible, "correct": correct, "f1": f1, "features": feats,
                         "hidden": hidden})
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{len(tune_ans) + len(tune_imp)}", file=sys.stderr, flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows))

rows = [r for r in rows if r["features"] and r["hidden"]]
X = np.array([[r["features"][k] for k in ABSTAIN_FEATURES] for r in rows])
H = np.array([r["hidden"] for r in rows])
y = np.array([r["correct"] for r in rows], dtype=int)
imp = np.array([r["impossible"] for r in rows])
f1 = np.array([r["f1"] for r in rows])


def fit(F: np.ndarray, y: np.ndarray, C: float):
    mean, scale = F.mean(axis=0), F.std(axis=0) + 1e-9
    return mean, scale, LogisticRegression(C=C, max_iter=5000).fit((F - mean) / scale, y)


def cross_validated(F: np.ndarray, C: float) -> np.ndarray:
    p = np.zeros(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(F, y):
        mean, scale, clf = fit(F[train], y[train], C)
        p[test] = clf.predict_proba((F[test] - mean) / scale)[:, 1]
    return p


def trade_off(name: str, p: np.ndarray) -> None:
    print(f"{name}: cross-validated ROC AUC {roc_auc_score(y, p):.3f} (right answer), "
          f"{roc_auc_score(~imp, p):.3f} (answerable vs not)")
    print("  threshold  abstain(unans)  false-refusal  F1(ans)  cit.acc(answered)")
    for t in (0.2, 0.25, 0.28, 0.3, 0.325, 0.35, 0.4, 0.45, 0.5):
        keep = p >= t
        ans_keep = keep & ~imp
        print(f"  {t:9.3f}  {(~keep[imp]).mean():14.3f}  {(~keep[~imp]).mean():13.3f}  {(f1 * ans_keep)[~imp].mean():7.3f}"
              f"  {y[ans_keep].mean() if ans_keep.any() else 0:.3f}")


print(f"tuning set: {int((~imp).sum())} answerable, {int(imp.sum())} unanswerable; "
      f"right citation when forced to answer: {y[~imp].mean():.3f}; F1 when forced: {f1[~imp].mean():.3f}")

mean, scale, clf = fit(X, y, 1.0)
alone = {"mean": mean.round(4).tolist(), "scale": scale.round(4).tolist(),
         "coef": clf.coef_[0].round(4).tolist(), "intercept": round(float(clf.intercept_[0]), 4)}
print("ABSTAIN_MODEL_ALONE =", json.dumps(alone))
trade_off("signals alone", cross_validated(X, 1.0))

F = np.hstack([X, H])
scores = {C: cross_validated(F, C) for C in (0.001, 0.003, 0.01, 0.03, 0.1)}
for C, p in scores.items():
    print(f"probe C={C}: cross-validated ROC AUC {roc_auc_score(y, p):.3f}")
C = max(scores, key=lambda c: roc_auc_score(y, scores[c]))
trade_off(f"probe (C={C})", scores[C])

mean, scale, clf = fit(F, y, C)
coef, n = clf.coef_[0], len(ABSTAIN_FEATURES)
# The hidden state's standardisation folds into its weights and the intercept, so the file holds one weight each.
hidden_weights = coef[n:] / scale[n:]
probe = {"reader": settings.generator, "backend": settings.reader_backend, "layer": HIDDEN_LAYER,
         "features": list(ABSTAIN_FEATURES), "C": C, "questions": len(rows),
         "mean": mean[:n].round(4).tolist(), "scale": scale[:n].round(4).tolist(), "coef": coef[:n].round(5).tolist(),
         "intercept": round(float(clf.intercept_[0] - hidden_weights @ mean[n:]), 5),
         "hidden_weights": [float(f"{w:.5g}") for w in hidden_weights]}
if args.save:
    # One key per line: a refit shows in a diff as the lines that changed.
    text = "{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in probe.items()) + "\n}\n"
    Path(args.save).write_text(text, encoding="utf-8")
    print(f"wrote {args.save}")
