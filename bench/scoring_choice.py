"""How the answer path weighs spans of different passages: each against its own passage's "no answer" ("window",
today's) or all on one scale, against the first passage's ("shared", what a reader trained with shared
normalisation is for), each with the rank penalty a lower-ranked passage pays, side by side on the same readings.

    QA_READER=PATH.onnx python bench/scoring_choice.py [--penalty 0 0.5 1] [--head-weight 0 0.5 1]
                                                       [--extra-quote 0 1 3] [--extra-ranked none 0.5 1]
                                                       [--longest-short 10 15 20] [--ranker on off]
                                                       [--scoring window shared]

``--extra-quote``: how far below the best sentence another may still be quoted; the "quotes" column is the
mean number of sentences a quoted answer cites, "prec." the share of a quoted answer's citations that hold the
answer (SelQA: half an answer sentence; d2d, doc2dial: part of the grounding span).
``--extra-ranked``: the same on the sentence ranker's score (thresholds.json's ``extra_ranked``), which decides
once the ranker has put a sentence first; ``none`` leaves it to ``--extra-quote``'s span margin.
``--head-weight``: how much the reader's sentence head adds to a sentence's span margin when the evidence is ranked
(thresholds.json's ``head_weight``), so that the head and the spans choose the answer's sentence together.
``--ranker``: the best sentences ranked again by the fitted sentence ranker (``evidence.best_first``, on) or left
in the reader's order (off).

Replays ``answering.draft`` on the held-out readings ``python -m qa.weights.fit_confidence`` cached for that reader
(SQuAD tuning articles held out from reader training, SelQA dev, doc2dial tuning turns; run it first), under each
variant, and refits the confidence model by 5-fold cross-validation over articles, as fit_confidence does. Per
variant: the share right at any confidence (SQuAD answerable, SelQA, doc2dial), SQuAD unanswerable refused at the
folds' own thresholds (10 % false refusals), and the out-of-fold ECE of the answered questions. The cached readings
hold each passage's spans as margins shifted onto its lowest "no answer": for a passage read in one window (a
384-piece reader's chunk) that is its raw logits, for longer ones an approximation of them.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import answering, evidence  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.reading import card, reader_path  # noqa: E402
from qa.weights import fit_confidence as fc  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--penalty", type=float, nargs="+", default=None,
                    help="rank penalties to try (default: thresholds.json's)")
    ap.add_argument("--head-weight", type=float, nargs="+", default=None,
                    help="sentence-head weights to try (default: thresholds.json's)")
    ap.add_argument("--extra-quote", type=float, nargs="+", default=None,
                    help="how far below the best sentence another may be and still be quoted (default: "
                         "thresholds.json's)")
    ap.add_argument("--extra-ranked", type=lambda x: None if x == "none" else float(x), nargs="+", default=None,
                    help="how far below the first sentence on the sentence ranker's score another may be and still "
                         "be quoted; none: extra-quote's margin rule instead (default: thresholds.json's)")
    ap.add_argument("--longest-short", type=int, nargs="+", default=None,
                    help="most words a short answer may have before its sentences are quoted instead (default: "
                         "thresholds.json's longest_short_answer)")
    ap.add_argument("--ranker", nargs="+", default=["on"], choices=["on", "off"],
                    help="the fitted sentence ranker on, or the reader's order of sentences (off)")
    ap.add_argument("--scoring", nargs="+", default=["window", "shared"], choices=["window", "shared"])
    ap.add_argument("--data", type=Path, default=fc.DATA)
    args = ap.parse_args(argv)
    s = Settings.from_env(progress=False, min_confidence=0.0)
    reader_card = card(reader_path(s))
    cache = fc.CACHE / fc.reading_key(reader_card["sha256"], s)
    if not (cache / "squad.jsonl").exists():
        raise SystemExit(f"no cached readings in {cache}: run QA_READER=... python -m qa.weights.fit_confidence first")
    limits = evidence.thresholds()
    penalties = args.penalty if args.penalty is not None else [limits["rank_penalty"]]
    weights = args.head_weight if args.head_weight is not None else [limits["head_weight"]]
    extras = args.extra_quote if args.extra_quote is not None else [limits["extra_quote"]]
    ranked_extras = args.extra_ranked if args.extra_ranked is not None else [limits["extra_ranked"]]
    longest = args.longest_short if args.longest_short is not None else [limits["longest_short_answer"]]
    draft = answering.draft
    quoted: list[int] = []

    def counting(*a, **k):  # how many sentences each quoted answer cites
        out = draft(*a, **k)
        if out[0].shape == "quotes":
            quoted.append(len(out[0].citations))
        return out

    # Of a quoted answer's citations, the share that hold the answer (doc2dial: overlap the grounding span; SelQA:
    # cover half an answer sentence): what quoting more sentences costs in precision.
    from qa import evaluation
    precise: list[float] = []

    def share(a, hits) -> None:
        if a.shape == "quotes" and a.citations:
            precise.append(sum(hits) / len(a.citations))

    def cites_gold(citations, t, _f=evaluation.cites_gold):
        if citations and all((c.answer_start, c.answer_end) == (c.start, c.end) for c in citations):  # quotes
            doc2dial_precise.append(sum(_f([c], t) for c in citations) / len(citations))
        return _f(citations, t)

    def selqa_right(a, q, _f=evaluation.selqa_right):
        share(a, [any(evaluation.covers(c, q.source, s, e, half=True) for s, e in q.golds) for c in a.citations])
        return _f(a, q)

    doc2dial_precise: list[float] = []

    print(f"reader {reader_path(s)} ({reader_card['sha256'][:12]}), readings {cache}")
    print(f"{'scoring':<8} {'penalty':>7} {'head w.':>7} {'extra':>5} {'ex.rk':>5} {'short':>5} {'ranker':>6} {'quotes':>6} {'SQuAD right':>11} {'SelQA':>6} {'doc2dial':>8} "
          f"{'refused unans.':>14} {'false ref.':>10} {'ECE ans.':>8} {'prec. SelQA':>11} {'d2d':>5} {'s':>4}")
    for scoring, pen, hw, extra, ex_rk, most, ranker in itertools.product(args.scoring, penalties, weights, extras,
                                                                          ranked_extras, longest, args.ranker):
        t0 = time.time()
        knobs = {**limits, "rank_penalty": pen, "head_weight": hw, "extra_quote": extra, "extra_ranked": ex_rk,
                 "longest_short_answer": most}
        ranked = evidence.sentence_ranker() if ranker == "on" else None
        quoted.clear(), precise.clear(), doc2dial_precise.clear()
        with mock.patch.object(evidence, "SCORING", scoring), \
                mock.patch.object(evidence, "thresholds", lambda k=knobs: k), \
                mock.patch.object(answering, "draft", counting), \
                mock.patch.object(evidence, "sentence_ranker", lambda *a, r=ranked: r), \
                mock.patch.object(evaluation, "cites_gold", cites_gold), \
                mock.patch.object(evaluation, "selqa_right", selqa_right):
            rows = fc.examples(args.data, cache, s, 0, 0, 400, 13, reader_card)
        right = {src: statistics.mean(r["right"] for r in rows if r["source"] == src and r["answerable"])
                 for src in ("squad", "selqa", "doc2dial")}
        folds, scored = fc.cross_validate(rows, fc.FEATURES, 5, 13, 0.10, fc.C)
        refused = statistics.mean(f["squad"]["refused_unanswerable"] for f in folds)
        false_ref = statistics.mean(f["all"]["false_refusals"] for f in folds)
        floor = statistics.mean(f["min_confidence"] for f in folds)
        ece = fc.figures(scored, floor)["all"]["calibration_answered"]["ece"]
        print(f"{scoring:<8} {pen:>7.1f} {hw:>7.2f} {extra:>5.1f} {'none' if ex_rk is None else f'{ex_rk:.2f}':>5} "
              f"{most:>5} {ranker:>6} "
              f"{statistics.mean(quoted or [0]):>6.2f} "
              f"{right['squad']:>11.3f} {right['selqa']:>6.3f} "
              f"{right['doc2dial']:>8.3f} {refused:>14.3f} {false_ref:>10.3f} {ece:>8.3f} {statistics.mean(precise or [0]):>11.3f} "
              f"{statistics.mean(doc2dial_precise or [0]):>5.3f} {time.time() - t0:>4.0f}", flush=True)


if __name__ == "__main__":
    main()
