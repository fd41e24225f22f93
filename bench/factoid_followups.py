"""Factoid follow-ups, made from the held-out SQuAD 2.0 tuning articles (the 5 the reader never trained on) by
``qa.evaluation.factoid_follow_ups``: two answerable questions about one article, the second with the name it
shares with the first replaced by "it", kept when ``needs_context`` then holds. Factoid, unlike doc2dial's turns,
on which ``reader_text``'s choice was measured first.

    python bench/factoid_followups.py [--pairs 150] [--own-answers] [--variants question topic topic+answer alone]
    python bench/factoid_followups.py --after-statement [--pairs 150]

Each follow-up is asked through ``qa.answer`` after the first question and its gold answer (a (question, answer)
pair; ``--own-answers``: after this product's own Answer to it, right, wrong or refused), read as
``qa.questions.reader_text`` reads it under each ``FOLLOW_UP_CONTEXT`` (the previous question beside it as asked,
its topic, or its topic and answer; shipped: ``topic+answer``) and read alone; and the original second question
asked alone, the ceiling. Right: ``squad_right``.

``--after-statement``: questions that stand alone (``needs_context`` False), each asked as it is after an earlier
answerable question of the same article whose answer was a statement (its gold answer's sentence, as a
descriptive answer quotes it), and after one of another article; read as shipped (the statement beside it) and
read alone. A question that stands alone should get the answer it gets alone (issue 38's consistency).
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
    ap.add_argument("--after-statement", action="store_true",
                    help="standalone questions after a statement answer (see above) instead of follow-ups")
    ap.add_argument("--only", nargs="+", help="--after-statement: only the variants whose names hold one of these")
    args = ap.parse_args()
    settings = Settings(progress=False)
    if args.after_statement:
        return after_statement(args, settings)
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


def after_statement(args, settings) -> None:
    import qa
    from qa import answering, questions
    from qa.evaluation import load_squad, reliability, squad_right, write_corpus
    from qa.questions import needs_context
    from qa.weights.train_reader import TRAIN_TUNING_ARTICLES, answer_sentence

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        articles = load_squad(args.data / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
        questions_ = write_corpus(articles, root / "docs")
        qa.build_index(root / "docs", root / "index", settings=settings)
        answerable = [q for q in questions_ if not q.impossible]
        rng = random.Random(1)
        singles = [q for q in answerable if not needs_context(q.question)]
        rng.shuffle(singles)
        singles = singles[:args.pairs]

        def statement(q) -> str:
            text = (root / "docs" / q.source).read_text(encoding="utf-8")
            a, b = answer_sentence(text, q.golds[0][0], q.golds[0][1])
            return text[a:b]

        def before(q2, same: bool):
            pool = [q for q in answerable if (q.source == q2.source) == same and q.id != q2.id
                    and len(statement(q).split()) >= 8]
            q1 = rng.choice(pool)
            return (q1.question, statement(q1))

        rows: dict[str, list[tuple[bool, bool, float]]] = {}
        for q2 in singles:
            alone = qa.answer(q2.question, root / "index", settings=settings)
            rows.setdefault("asked alone", []).append((squad_right(alone, q2), alone.abstained, alone.confidence))
            for where in ("same article", "another article"):
                history = [before(q2, where == "same article")]
                for name, patch in (
                        ("as shipped", mock.patch.object(answering, "STANDALONE", answering.STANDALONE)),
                        ("the statement beside it", mock.patch.object(
                            answering, "reader_text", lambda reader_q, history, question=None:
                            questions.reader_text(reader_q, history))),
                        ("the statement beside it when they share a word",
                         mock.patch.object(questions, "STANDALONE_READING", "shared")),
                        ("searched and read alone", mock.patch.object(answering, "STANDALONE", "alone")),
                        ("alone if the talk never named a word of it",
                         mock.patch.object(answering, "STANDALONE", "unshared")),
                        ("alone if it names something the talk never named",
                         mock.patch.object(answering, "STANDALONE", "unshared named")),
                        ("both ways, the likelier kept", mock.patch.object(answering, "STANDALONE", "both")),
                        ("both ways, alone if 0.1 likelier", mock.patch.multiple(
                            answering, STANDALONE="both", STANDALONE_MARGIN=0.1))):
                    if args.only and not any(w in name for w in args.only):
                        continue
                    with patch:
                        a = qa.answer(q2.question, root / "index", history=history, settings=settings)
                    rows.setdefault(f"after a statement of {where}, {name}", []).append(
                        (squad_right(a, q2), a.abstained, a.confidence))
                    rows.setdefault(f"after a statement of {where}, {name}: same as alone", []).append(
                        (a.text == alone.text, a.abstained, a.confidence))
    print(f"{len(singles)} held-out SQuAD questions that stand alone:")
    for name, r in rows.items():
        n, right, answered = len(r), sum(ok for ok, *_ in r), sum(not ab for _, ab, _ in r)
        if name.endswith("same as alone"):
            print(f"  {name}: {right / n:.3f}")
            continue
        shown = [(p, ok) for ok, ab, p in r if not ab]
        print(f"  {name}: right {right / n:.3f}, answered {answered / n:.3f}, right when answered "
              f"{right / max(1, answered):.3f}, ECE {reliability(shown)['ece']:.3f}")


if __name__ == "__main__":
    main()
