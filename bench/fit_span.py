"""Fit how the reader chooses among the spans it copied (qa/generation.py: SPAN_MODEL) on held-out SQuAD 2.0 questions.

    python bench/fit_span.py [--tune 300]

Same held-out sample as bench/fit_choice.py (the seed-13 evaluation questions excluded, answerable tuning questions
drawn with seed 7). The reader copies an answer from each of its ``Settings.reader_spans`` likeliest first tokens;
every candidate's SPAN_FEATURES and F1 against the gold answers are recorded, and a conditional logit (softmax over
a question's candidates, the label being the candidates with the best F1) learns the weights. Prints them, and the
F1 of greedy decoding, of the learned choice (5-fold cross-validation) and of an oracle that always picks the best.
Two models are fitted from the same reads: SPAN_MODEL_ALONE (the default) and SPAN_MODEL, with the second
opinion's rating of each answer (``Settings.second_opinion``, SmolLM2-135M unless set) as a last feature.
"""

import dataclasses

import numpy as np
from tuning import conditional_logit, cross_validated_picks, read_tuning_questions, record_reads, tuning_args

from qa.config import Settings
from qa.evaluation import f1_score
from qa.generation import PACKAGED_SECOND_OPINION, SPAN_FEATURES, get_rater

args = tuning_args()
settings = Settings.from_env(progress=False)
settings = dataclasses.replace(settings, abstain_threshold=0.0, second_opinion=settings.second_opinion or PACKAGED_SECOND_OPINION)
if get_rater(settings) is None:
    raise SystemExit("fit_span.py fits the choice with and without the second opinion: it needs one (see the warning)")
seen: dict = {}
record_reads(settings, seen)
rows = []
for q in read_tuning_questions(settings, seen, args.squad, args.tune):
    cands = seen["ext"].candidates if "ext" in seen else ()
    if cands:
        X = np.array([c.features for c in cands])
        f1 = np.array([max(f1_score(c.text, t) for _, _, t in q.golds) for c in cands])
        rows.append((X, f1))


greedy = SPAN_FEATURES.index("greedy")
n = len(SPAN_FEATURES)
print(f"{len(rows)} questions, {np.mean([len(r[1]) for r in rows]):.1f} spans each; F1: greedy "
      f"{np.mean([r[1][int(np.argmax(r[0][:, greedy]))] for r in rows]):.3f}, oracle {np.mean([r[1].max() for r in rows]):.3f}")
for name, cols in (("SPAN_MODEL", n + 1), ("SPAN_MODEL_ALONE", n)):
    best = [(X[:, :cols], f1 == f1.max()) if f1.max() > 0 else (X[:, :cols], np.zeros(len(f1), bool)) for X, f1 in rows]
    learned = [r[1][k] for r, k in zip(rows, cross_validated_picks(best, l2=0.5))]
    w = conditional_logit(best, l2=0.5)
    print(f"{name} = {tuple(round(float(x), 3) for x in w)}")
    print(f"  learned choice F1 {np.mean(learned):.3f} (5-fold cross-validation)")
