"""Fit how the reader chooses among the spans it copied (qa/generation.py: SPAN_MODEL) on held-out SQuAD 2.0 questions.

    python bench/fit_span.py [--tune 300]

Same held-out sample as bench/fit_choice.py (the seed-13 evaluation questions excluded, answerable tuning questions
drawn with seed 7). The reader copies an answer from each of its ``Settings.reader_spans`` likeliest first tokens;
every candidate's SPAN_FEATURES and F1 against the gold answers are recorded, and a conditional logit (softmax over
a question's candidates, the label being the candidates with the best F1) learns the weights. Prints them, and the
F1 of greedy decoding, of the learned choice (5-fold cross-validation) and of an oracle that always picks the best.
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
from qa.evaluation import f1_score, load_squad, sample_questions, write_corpus
from qa.generation import SPAN_FEATURES, get_generator
from qa.index import build_index

parser = argparse.ArgumentParser()
parser.add_argument("--squad", default=str(Path(__file__).resolve().parents[2] / "shared/data/squad2-dev-5-articles.json"))
parser.add_argument("--tune", type=int, default=300, help="answerable questions")
args = parser.parse_args()

settings = dataclasses.replace(Settings.from_env(progress=False), abstain_threshold=0.0)
seen: dict = {}
reader = get_generator(settings)
extract = reader.extract


def recording_extract(question, contexts, on_text=None, prior=None):
    seen["ext"] = extract(question, contexts, on_text=on_text, prior=prior)
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
        cands = seen["ext"].candidates if "ext" in seen else ()
        if cands:
            X = np.array([c.features for c in cands])
            f1 = np.array([max(f1_score(c.text, t) for _, _, t in q.golds) for c in cands])
            rows.append((X, f1))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{len(tune_ans)}", file=sys.stderr, flush=True)


def nll(w, data, l2=0.5):
    total = l2 * float(w @ w)
    for X, f1 in data:
        if f1.max() > 0:
            z = X @ w
            p = np.exp(z - z.max())
            total -= np.log((p / p.sum())[f1 == f1.max()].sum() + 1e-12)
    return total


def fit_weights(data):
    return minimize(nll, np.zeros(len(SPAN_FEATURES)), args=(data,), method="L-BFGS-B").x


greedy = SPAN_FEATURES.index("greedy")
order = np.random.default_rng(0).permutation(len(rows))
learned = []
for fold in np.array_split(order, 5):
    held_out = set(fold.tolist())
    w = fit_weights([r for i, r in enumerate(rows) if i not in held_out])
    learned += [rows[i][1][int(np.argmax(rows[i][0] @ w))] for i in fold]
w = fit_weights(rows)
print("SPAN_MODEL =", tuple(round(float(x), 3) for x in w))
print(f"{len(rows)} questions, {np.mean([len(r[1]) for r in rows]):.1f} spans each; F1: greedy "
      f"{np.mean([r[1][int(np.argmax(r[0][:, greedy]))] for r in rows]):.3f}, learned {np.mean(learned):.3f} "
      f"(5-fold cross-validation), oracle {np.mean([r[1].max() for r in rows]):.3f}")
