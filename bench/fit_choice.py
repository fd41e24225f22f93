"""Fit how the evidence sentence is chosen (qa/answering.py: CHOICE_MODEL) on held-out SQuAD 2.0 questions.

    python bench/fit_choice.py [--tune 300] [--sentences 6]

Same held-out sample as bench/fit_abstention.py (the seed-13 evaluation questions excluded, answerable tuning
questions drawn with seed 7). For each question the reader's fit for every evidence sentence is recorded, with the
sentence's dense and BM25 scores and whether it lacks a number the question asks for; a conditional logit (softmax
over the candidates, the label being the candidates that hold the gold answer) learns their weights. Prints the
weights in units of fit, and the right-sentence rate in 5-fold cross-validation against the rank-penalty rule
(``Settings.reader_rank_penalty``) that readers fall back to without a prior.

With ``--sentences K`` the reader is shown K evidence sentences instead of ``Settings.evidence_sentences``, and
for every k <= K the script prints how often the right sentence is among the first k and how often the choice
over those k finds it (the same cross-validated fit), which is how the default of three was checked.
"""

import argparse
import dataclasses

import numpy as np
from tuning import conditional_logit, cross_validated_picks, read_tuning_questions, record_reads, tuning_args

import qa.answering as answering
from qa.config import Settings
from qa.generation import choose_context, has_number, wants_number

parser = argparse.ArgumentParser()
parser.add_argument("--sentences", type=int, default=None, help="evidence sentences shown to the reader")
args = tuning_args(parser)

settings = dataclasses.replace(Settings.from_env(progress=False), abstain_threshold=0.0)
if args.sentences:
    settings = dataclasses.replace(settings, evidence_sentences=args.sentences)
seen: dict = {}
select = answering.select_evidence


def recording_select(*a, **k):
    seen["evidence"] = select(*a, **k)
    return seen["evidence"]


answering.select_evidence = recording_select
record_reads(settings, seen, pass_prior=False)  # record the reader's own signals
rows = []
for q in read_tuning_questions(settings, seen, args.squad, args.tune):
    if "ext" not in seen:
        continue
    ev, ext = seen["evidence"], seen["ext"]
    gold = np.array([any(e.source == q.source and e.start <= s and t <= e.end for s, t, _ in q.golds) for e in ev])
    rule = choose_context(list(ext.fit), [e.text for e in ev], q.question, settings)[1]
    rows.append((q.question, ev, np.array(ext.fit), gold, rule))


def candidates(k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per question, the features and right-sentence flags of its first k evidence sentences."""
    out = []
    for question, ev, fit, gold, _ in rows:
        ev, fit = ev[:k], fit[:k]
        dense, bm = np.array([e.dense for e in ev]), np.array([e.bm25 for e in ev])
        no_num = np.array([wants_number(question) and not has_number(e.text) for e in ev], dtype=float)
        out.append((np.column_stack([fit - fit.max(), dense - dense.max(),
                                     bm / bm.max() if bm.max() > 0 else 0 * bm, no_num]), gold[:k]))
    return out


if args.sentences:
    for k in range(1, args.sentences + 1):
        sub = candidates(k)
        chosen = np.mean([g[p] for (_, g), p in zip(sub, cross_validated_picks(sub, l2=0.1))])
        print(f"{k} sentences: right one among them {np.mean([g.any() for _, g in sub]):.3f}, chosen {chosen:.3f}")

rows = [(*c, r[4]) for c, r in zip(candidates(settings.evidence_sentences), rows)]
picks = cross_validated_picks([r[:2] for r in rows], l2=0.1)
right = [bool(r[1][k]) for r, k in zip(rows, picks)]
w = conditional_logit([r[:2] for r in rows], l2=0.1)
model = {"dense": round(float(w[1] / w[0]), 3), "bm25": round(float(w[2] / w[0]), 3), "no_number": round(float(-w[3] / w[0]), 3)}
print("CHOICE_MODEL =", model)
print(f"{len(rows)} questions; right sentence among the candidates: {np.mean([r[1].any() for r in rows]):.3f}; "
      f"chosen right, rank-penalty rule {np.mean([r[1][r[2]] for r in rows]):.3f} vs learned "
      f"{np.mean(right):.3f} (5-fold cross-validation)")
