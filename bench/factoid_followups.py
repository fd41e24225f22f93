"""Factoid follow-ups, made from the held-out SQuAD 2.0 tuning articles (the 5 the reader never trained on) by
``qa.evaluation.factoid_follow_ups``: two answerable questions about one article, the second with the name it
shares with the first replaced by "it", kept when ``needs_context`` then holds. Factoid, unlike doc2dial's turns,
on which ``reader_text``'s choice was measured first.

    python bench/factoid_followups.py [--pairs 150] [--own-answers] [--variants question topic topic+answer alone]

Each follow-up is asked through ``qa.answer`` after the first question and its gold answer (a (question, answer)
pair; ``--own-answers``: after this product's own Answer to it, right, wrong or refused), read as
``qa.questions.reader_text`` reads it under each ``FOLLOW_UP_CONTEXT`` (the previous question beside it as asked,
its topic, or its topic and answer; shipped: ``topic+answer``) and read alone; and the original second question
asked alone, the ceiling. Right: ``squad_right``.
Builds its index in a temporary folder.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import qa
    from qa import answering, questions
    from qa.config import Settings
    from qa.evaluation import factoid_follow_ups, load_squad, squad_right, write_corpus
    from qa.weights.train_reader import TRAIN_TUNING_ARTICLES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=150)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--own-answers", action="store_true",
                    help="ask each follow-up after this product's own answer to the first question (it may be "
                         "wrong, or refused) instead of its gold answer")
    ap.add_argument("--variants", nargs="+", default=["question", "topic", "topic+answer", "alone"],
                    choices=["question", "topic", "topic+answer", "alone"])
    args = ap.parse_args()
    settings = Settings(progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        articles = load_squad(args.data / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
        pairs = factoid_follow_ups(write_corpus(articles, root / "docs"))
        qa.build_index(root / "docs", root / "index", settings=settings)
        random.Random(1).shuffle(pairs)
        pairs = pairs[:args.pairs]
        print(f"{len(pairs)} follow-ups, e.g.:")
        for q1, _, asked in pairs[:5]:
            print(f"  {q1.question} -> {asked}")
        variants = {**{f"read with the {v}": v for v in args.variants if v != "alone"},
                    **({"read alone": lambda reader_q, history, question=None: reader_q}
                       if "alone" in args.variants else {})}
        rows: dict[str, list[tuple[bool, bool, float]]] = {k: [] for k in ["the original asked alone", *variants]}
        for q1, q2, asked in pairs:
            before = (qa.answer(q1.question, root / "index", settings=settings) if args.own_answers
                      else (q1.question, q1.golds[0][2]))
            a = qa.answer(q2.question, root / "index", settings=settings)
            rows["the original asked alone"].append((squad_right(a, q2), a.abstained, a.confidence))
            for name, read in variants.items():
                patch = (mock.patch.object(questions, "FOLLOW_UP_CONTEXT", read) if isinstance(read, str) else
                         mock.patch.object(answering, "reader_text", read))
                with patch:
                    a = qa.answer(asked, root / "index", history=[before], settings=settings)
                rows[name].append((squad_right(a, q2), a.abstained, a.confidence))
    from qa.evaluation import reliability

    for name, r in rows.items():
        n, right, answered = len(r), sum(ok for ok, *_ in r), sum(not ab for _, ab, _ in r)
        shown = [(p, ok) for ok, ab, p in r if not ab]
        mean = sum(p for p, _ in shown) / max(1, len(shown))
        print(f"{name}: right {right / n:.3f}, answered {answered / n:.3f}, right when answered "
              f"{right / max(1, answered):.3f}, mean confidence shown {mean:.3f}, ECE {reliability(shown)['ece']:.3f}")


if __name__ == "__main__":
    main()
