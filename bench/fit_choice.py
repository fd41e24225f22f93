"""Fit how the evidence sentence is chosen (qa/answering.py: CHOICE_MODEL) on held-out SQuAD 2.0 questions.

    python bench/fit_choice.py [--tune 300]

Same held-out sample as bench/fit_abstention.py (the seed-13 evaluation questions excluded, answerable tuning
questions drawn with seed 7). For each question the reader's fit for every evidence sentence is recorded, with the
sentence's dense and BM25 scores and whether it lacks a number the question asks for; a conditional logit (softmax
over the candidates, the label being the candidates that hold the gold answer) learns their weights. Prints the
weights in units of fit, and the right-sentence rate in 5-fold cross-validation against the rank-penalty rule
(``Settings.reader_rank_penalty``) that readers fall back to without a prior.
"""

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

import qa.answering as answering
from qa.config import Settings
from qa.evaluation import load_squad, sample_questions, write_corpus
from qa.generation import choose_context, get_generator, has_number, wants_number
from qa.index import build_index

parser = argparse.ArgumentParser()
parser.add_argument("--squad", default=str(Path(__file__).resolve().parents[2] / "shared/data/squad2-dev-5-articles.json"))
parser.add_argument("--tune", type=int, default=300, help="answerable questions")
args = parser.parse_args()

settings = dataclasses.replace(Settings.from_env(progress=False), abstain_threshold=0.0)
seen: dict = {}
select = answering.select_evidence


def recording_select(*a, **k):
    seen["evidence"] = select(*a, **k)
    return seen["evidence"]


answering.select_evidence = recording_select
reader = get_generator(settings)
extract = reader.extract


def recording_extract(question, contexts, on_text=None, prior=None):
    seen["ext"] = extract(question, contexts, on_text=on_text)  # no prior: record the reader's own signals
    return seen["ext"]


reader.extract = recording_extract
rows = []
with tempfile.TemporaryDirectory() as tmp:
    questions = write_corpus(load_squad(args.squad), Path(tmp) / "docs")
    build_index(Path(tmp) / "docs", Path(tmp) / "index", settings=settings)
    ev_ans, ev_imp = sample_questions(questions, 100, 100, 13)
    held = {q.id for q in ev_ans + ev_imp}
    tune_ans, _ = sample_questions([q for q in questions if q.id not in held], args.tune, args.tune, 7)
    for i, q in enumerate(tune_ans):
        seen.clear()
        answering.answer_many([q.question], Path(tmp) / "index", settings)
        if "ext" not in seen:
            continue
        ev, ext = seen["evidence"], seen["ext"]
        fit, dense, bm = np.array(ext.fit), np.array([e.dense for e in ev]), np.array([e.bm25 for e in ev])
        no_num = np.array([wants_number(q.question) and not has_number(e.text) for e in ev], dtype=float)
        X = np.column_stack([fit - fit.max(), dense - dense.max(), bm / bm.max() if bm.max() > 0 else 0 * bm, no_num])
        gold = np.array([any(e.source == q.source and e.start <= s and t <= e.end for s, t, _ in q.golds) for e in ev])
        rule = choose_context(list(ext.fit), [e.text for e in ev], q.question, settings)[1]
        rows.append((X, gold, rule))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(tune_ans)}", file=sys.stderr, flush=True)


def nll(w, data, l2=0.1):
    total = l2 * float(w @ w)
    for X, y, _ in data:
        if y.any():
            z = X @ w
            p = np.exp(z - z.max())
            total -= np.log((p / p.sum())[y].sum() + 1e-12)
    return total


def fit_weights(data):
    return minimize(nll, np.zeros(4), args=(data,), method="L-BFGS-B").x


order = np.random.default_rng(0).permutation(len(rows))
right = []
for fold in np.array_split(order, 5):
    held_out = set(fold.tolist())
    w = fit_weights([r for i, r in enumerate(rows) if i not in held_out])
    right += [bool(rows[i][1][int(np.argmax(rows[i][0] @ w))]) for i in fold]
w = fit_weights(rows)
model = {"dense": round(float(w[1] / w[0]), 3), "bm25": round(float(w[2] / w[0]), 3), "no_number": round(float(-w[3] / w[0]), 3)}
print("CHOICE_MODEL =", model)
print(f"{len(rows)} questions; right sentence among the candidates: {np.mean([r[1].any() for r in rows]):.3f}; "
      f"chosen right, rank-penalty rule {np.mean([r[1][r[2]] for r in rows]):.3f} vs learned "
      f"{np.mean(right):.3f} (5-fold cross-validation)")
