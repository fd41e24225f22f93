"""Fit the answer thresholds in thresholds.json for the reader shipped beside them.

    python -m qa.weights.fit_thresholds [--false-refusals 0.10]

Through the real answer path (index, search, reader, evidence), on held-out questions only:
- ``short``: the evidence relevance below which a factoid question is refused. It is the relevance that refuses
  ``--false-refusals`` of the answerable questions of the SQuAD 2.0 tuning articles the reader was not trained on
  (qa/weights/train_reader.py holds them out); what share of their unanswerable questions it refuses is recorded.
- ``quotes``: the same for questions answered with quoted sentences (why / how / describe / can-I). Such
  questions are rare in SQuAD, so it is fitted on doc2dial dmv-va later turns (government pages, long answers):
  the relevance that leaves ``--false-refusals`` of them unanswered, searching as ``qa.answer`` does for a
  follow-up. doc2dial is a tuning set here; the public figures in docs/benchmarks.md report it too, so they are
  not independent of this choice (the hidden dialogue sets are).
- ``extra_quote``: how far below the best sentence another may be and still be quoted (set by hand, recorded).
- ``rank_penalty``, ``page_bonus`` and ``longest_short_answer``: how an answer picks its sentence among the
  passages (for a follow-up, how much the last answer's article counts), and when a span is too long to be a
  short answer. Chosen by hand and carried over from the file with their provenance; ``bench/answer_choice.py``
  and ``bench/dialogue_choice.py`` replay variants of them on held-out readings.

The relevance of a question is that of the evidence the answer path would choose (``ranked_evidence``), so a
threshold is fitted on exactly what ``compose`` compares with it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import tempfile
import time
from pathlib import Path

from .train_reader import DATA, TRAIN_TUNING_ARTICLES

HERE = Path(__file__).resolve().parent
OUT = HERE / "thresholds.json"


def relevances(questions, index_dir, settings, history_of=None) -> list[float]:
    from qa.answering import ranked_evidence, read_evidence
    from qa.embeddings import get_embedder
    from qa.index import ensure_index
    from qa.questions import reader_text, rewrite_follow_up
    from qa.reading import get_reader

    loaded = ensure_index(index_dir, settings)
    embedder, reader = get_embedder(settings), get_reader(settings)
    out = []
    for q in questions:
        history = None if history_of is None else history_of(q)
        searched, reader_q = rewrite_follow_up(q, history, None)
        passages, readings = read_evidence(searched, reader_text(reader_q, history), loaded, embedder, reader,
                                           settings)
        ev = ranked_evidence(passages, readings, loaded)
        out.append(ev[0].relevance if ev else -1e9)
    return out


def quantile(values: list[float], share: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(share * len(values))))]


def main(argv=None) -> None:
    from qa.answering import DEFAULT_THRESHOLDS
    from qa.config import Settings
    from qa.evaluation import chat_history, load_squad, load_turns, tuning_turns, write_corpus
    from qa.index import build_index

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--false-refusals", type=float, default=0.10)
    ap.add_argument("--dialogues", default=str(DATA / "doc2dial-dmv-va"))
    ap.add_argument("--turns", type=int, default=400, help="dialogue turns sampled for the quotes threshold")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--questions", type=int, default=0, help="sample this many SQuAD questions of each kind (0: all)")
    args = ap.parse_args(argv)
    settings = Settings.from_env(progress=False)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        articles = load_squad(DATA / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
        questions = write_corpus(articles, Path(tmp) / "docs")
        build_index(Path(tmp) / "docs", Path(tmp) / "index", settings=settings)
        ans = [q for q in questions if not q.impossible]
        imp = [q for q in questions if q.impossible]
        if args.questions:
            ans = random.Random(args.seed).sample(ans, min(args.questions, len(ans)))
            imp = random.Random(args.seed).sample(imp, min(args.questions, len(imp)))
        r_ans = relevances([q.question for q in ans], Path(tmp) / "index", settings)
        r_imp = relevances([q.question for q in imp], Path(tmp) / "index", settings)
        short = quantile(r_ans, args.false_refusals)

        turns = load_turns(args.dialogues)
        by_question = {t.question: t for t in tuning_turns(turns, args.turns, args.seed)}  # not the public ones
        build_index(Path(args.dialogues) / "documents", Path(tmp) / "dialogues", settings=settings)
        r_dlg = relevances(list(by_question), Path(tmp) / "dialogues", settings,
                           history_of=lambda q: chat_history(by_question[q]))
        quotes = quantile(r_dlg, args.false_refusals)
    reader_card = json.loads((HERE / "reader.json").read_text(encoding="utf-8"))
    before = json.loads(OUT.read_text(encoding="utf-8")) if OUT.is_file() else {}
    hand = {k: before.get("thresholds", {}).get(k, DEFAULT_THRESHOLDS[k])
            for k in ("extra_quote", "rank_penalty", "page_bonus", "longest_short_answer")}
    fitted = {
        "thresholds": {"short": round(short, 4), "quotes": round(quotes, 4), **hand},
        "made_by": "python -m qa.weights.fit_thresholds", "false_refusal_target": args.false_refusals,
        "reader_sha256": reader_card["sha256"],
        "data": {"short": f"squad2-dev-15-tuning-articles.json, the {len(articles)} articles held out from "
                          f"training: {len(ans)} answerable, {len(imp)} unanswerable questions",
                 "quotes": f"doc2dial-dmv-va: {len(by_question)} later turns (seed {args.seed}), none of the "
                           f"160 turns of the public figure's seed-7 sample",
                 **{k: before.get("data", {}).get(k, "set by hand") for k in hand}},
        "figures": {"short_refuses_unanswerable": round(sum(r < short for r in r_imp) / len(r_imp), 4),
                    "short_refuses_answerable": round(sum(r < short for r in r_ans) / len(r_ans), 4),
                    "quotes_refuses_dialogue_turns": round(sum(r < quotes for r in r_dlg) / len(r_dlg), 4),
                    "quotes_refuses_squad_unanswerable": round(sum(r < quotes for r in r_imp) / len(r_imp), 4),
                    "seconds": round(time.time() - t0)},
        "fitted_with": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],
    }
    OUT.write_text(json.dumps(fitted, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(fitted, indent=2))


if __name__ == "__main__":
    main()
