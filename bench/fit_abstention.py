"""Fit the abstention model (qa/answering.py: ABSTAIN_MODEL) on SQuAD 2.0 questions held out from the evaluation.

    python bench/fit_abstention.py [--tune 500] [--out /tmp/abstain-features.json]

The evaluation sample (100 answerable + 100 unanswerable, seed 13, as `qa eval --answers 100 --impossible 100`)
is excluded; the tuning sample is drawn from the remaining questions with seed 7. Every tuning question is
answered with abstention switched off, its signals are recorded, and a logistic regression learns
P(the answer is right and its citation covers the gold answer). Prints the model dict to paste into
qa/answering.py and the trade-off between abstention and false refusals on the tuning set.
"""

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from tuning import SQUAD, tuning_sample

from qa.answering import ABSTAIN_FEATURES, answer_many
from qa.config import Settings
from qa.evaluation import f1_score

parser = argparse.ArgumentParser()
parser.add_argument("--squad", default=SQUAD)
parser.add_argument("--tune", type=int, default=500, help="answerable and unanswerable questions each")
parser.add_argument("--out", default=None, help="save the raw features as JSON")
parser.add_argument("--features", default=None, help="fit from a JSON saved by --out instead of answering again")
args = parser.parse_args()

if args.features:
    rows = json.loads(Path(args.features).read_text())
else:
    settings = dataclasses.replace(Settings.from_env(progress=False), abstain_threshold=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        tune_ans, tune_imp, index_dir = tuning_sample(args.squad, Path(tmp), args.tune, args.tune, settings)
        rows = []
        for i, q in enumerate(tune_ans + tune_imp):
            (a, feats), = answer_many([q.question], index_dir, settings)
            text = a.text.replace(" [1]", "")
            correct = (not q.impossible and not a.abstained and bool(feats)
                       and any(c.source == q.source and any(c.start <= s and e <= c.end for s, e, _ in q.golds)
                               for c in a.citations))
            f1 = max((f1_score(text, t) for _, _, t in q.golds), default=0.0)
            rows.append({"id": q.id, "impossible": q.impossible, "correct": correct, "f1": f1, "features": feats})
            if (i + 1) % 50 == 0:
                print(f"  {i + 1}/{len(tune_ans) + len(tune_imp)}", file=sys.stderr, flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows))

from sklearn.linear_model import LogisticRegression  # noqa: E402

rows = [r for r in rows if r["features"]]
X = np.array([[r["features"][k] for k in ABSTAIN_FEATURES] for r in rows])
y = np.array([r["correct"] for r in rows], dtype=int)
mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
clf = LogisticRegression(C=1.0, max_iter=1000).fit((X - mean) / scale, y)
model = {"mean": mean.round(4).tolist(), "scale": scale.round(4).tolist(),
         "coef": clf.coef_[0].round(4).tolist(), "intercept": round(float(clf.intercept_[0]), 4)}
print("ABSTAIN_MODEL =", json.dumps(model))
p = clf.predict_proba((X - mean) / scale)[:, 1]
imp = np.array([r["impossible"] for r in rows])
f1 = np.array([r["f1"] for r in rows])
print(f"tuning set: {int((~imp).sum())} answerable, {int(imp.sum())} unanswerable; "
      f"right citation when forced to answer: {y[~imp].mean():.3f}; F1 when forced: {f1[~imp].mean():.3f}")
print("threshold  abstain(unans)  false-refusal  F1(ans)  cit.acc(answered)")
for t in (0.2, 0.25, 0.275, 0.3, 0.325, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6):
    keep = p >= t
    ans_keep = keep & ~imp
    print(f"{t:9.2f}  {(~keep[imp]).mean():14.3f}  {(~keep[~imp]).mean():13.3f}  {(f1 * ans_keep)[~imp].mean():7.3f}"
          f"  {y[ans_keep].mean() if ans_keep.any() else 0:.3f}")
