"""Questions as people type them into a search engine: does the answer path hold when a question comes in lower
case without its question mark ("when did the normans conquer england"), or as bare keywords ("normans conquer
england")?

    python bench/query_style.py [--answerable 200] [--impossible 200] [--seed 13] [--styles written lower keywords]

The 5 SQuAD 2.0 tuning articles the reader never trained on, indexed in a temporary folder; a seeded sample of
their answerable and unanswerable questions, each asked through ``qa.answer`` in every style. Figures per style:
right (``qa.evaluation.squad_right``) of the answerable, false refusals, unanswerable refused, the shape of the
answers (short span or quoted sentences) and, for the answerable, the mean confidence shown beside the share right
when answered. The public test set is not read.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: Words a keyword query leaves out: question words, auxiliaries, articles and the commonest function words.
_DROP = set("""who whom whose what which when where why how is are was were be been being do does did can could
should will would shall may might must has have had a an the of in on at to for from by with as and or that this
these those it its there""".split())


def no_mark(question: str) -> str:
    """The question without its closing punctuation, its case kept."""
    return re.sub(r"[\s?.!]+$", "", question.strip())


def lower(question: str) -> str:
    """The question in lower case, with its closing punctuation gone, as typed into a search box."""
    return no_mark(question).lower()


def keywords(question: str) -> str:
    """The question's content words only, in order, lower case."""
    words = re.findall(r"[\w'’-]+", lower(question))
    kept = [w for w in words if w not in _DROP]
    return " ".join(kept) or lower(question)


def asked(question: str) -> str:
    """The question without its mark, then with a "?" put back where it opens as a question
    (``qa.questions.as_asked``) before anything reads it: search, sentences and reader alike."""
    from qa.questions import as_asked

    return as_asked(no_mark(question))


STYLES = {"written": lambda q: q, "no_mark": no_mark, "lower": lower, "keywords": keywords, "put_back": no_mark,
          "asked": asked}
#: Styles asked with the "?" put back before reading (``answering.ASK_AS_QUESTION``).
PUT_BACK = {"put_back"}


def main() -> None:
    import qa
    from qa import answering
    from qa.config import Settings
    from qa.evaluation import load_squad, squad_right, write_corpus
    from qa.weights.train_reader import TRAIN_TUNING_ARTICLES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--answerable", type=int, default=200)
    ap.add_argument("--impossible", type=int, default=200)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--diff", action="store_true", help="print the questions whose answer differs from as written")
    ap.add_argument("--styles", nargs="+", default=list(STYLES), choices=list(STYLES))
    args = ap.parse_args()
    settings = Settings(progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        articles = load_squad(args.data / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
        questions = write_corpus(articles, root / "docs")
        qa.build_index(root / "docs", root / "index", settings=settings)
        rng = random.Random(args.seed)
        sample = rng.sample([q for q in questions if not q.impossible], args.answerable) + \
            rng.sample([q for q in questions if q.impossible], args.impossible)
        for style in args.styles:
            print(f"{style}: e.g. " + "; ".join(repr(STYLES[style](q.question)) for q in sample[:3]), flush=True)
        first: dict[str, tuple] = {}
        for style in args.styles:
            t0, rows = time.time(), []
            for q in sample:
                with mock.patch.object(answering, "ASK_AS_QUESTION", style in PUT_BACK):
                    a = qa.answer(STYLES[style](q.question), root / "index", settings=settings)
                rows.append((q.impossible, squad_right(a, q), a.abstained, a.confidence, a.shape == "quotes",
                             bool(a.corrected)))
                was = first.setdefault(q.question, (a.text, rows[-1]))
                if args.diff and was[0] != a.text:
                    print(f"    {STYLES[style](q.question)!r}: {was[0][:70]!r} ({was[1][3]:.2f}, right {was[1][1]}) -> "
                          f"{a.text[:70]!r} ({a.confidence:.2f}, right {rows[-1][1]})")
            ans = [r for r in rows if not r[0]]
            imp = [r for r in rows if r[0]]
            given = [r for r in ans if not r[2]]
            print(f"{style:9s} right {sum(r[1] for r in ans) / len(ans):.3f} of {len(ans)} answerable, "
                  f"false refusals {sum(r[2] for r in ans) / len(ans):.3f}, "
                  f"unanswerable refused {sum(r[2] for r in imp) / max(1, len(imp)):.3f} of {len(imp)}; "
                  f"answered: right {sum(r[1] for r in given) / max(1, len(given)):.3f} at mean confidence "
                  f"{statistics.fmean(r[3] for r in given) if given else 0:.3f}, quoted "
                  f"{sum(r[4] for r in given) / max(1, len(given)):.3f}; spelling changed {sum(r[5] for r in rows)} "
                  f"({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
