"""Questions with a typo: does correcting a question's misspelt words to the words of the passages search finds
(``qa.spelling``, ``qa.answering.SPELLING``) bring back the answers a typo loses, and leave clean questions be?

    python bench/typos.py [--answerable 250] [--impossible 250] [--seed 13]

The 5 SQuAD 2.0 tuning articles the reader never trained on, indexed in a temporary folder; a seeded sample of
their answerable and unanswerable questions. Each question that has a word of 5 letters or more gets one typo in
one such word (seeded: a letter dropped, doubled, swapped with the next, or replaced by a neighbouring key), then
is asked through ``qa.answer`` with the correction off and on; the clean questions too, on and off. Figures: right
(``qa.evaluation.squad_right``) of the answerable, false refusals, unanswerable refused, how many questions the
correction changed. Run with ``--public`` to count, without answering, how many questions of the public SQuAD
sample the correction would change (search only).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_KEYS = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]


def neighbours(c: str) -> str:
    for row in _KEYS:
        if c in row:
            i = row.index(c)
            return row[max(0, i - 1):i] + row[i + 1:i + 2]
    return c


def typo(question: str, rng: random.Random) -> str | None:
    """``question`` with one typo in one of its words of 5 letters or more; None when it has none."""
    words = [m for m in re.finditer(r"[A-Za-z]{5,}", question)]
    if not words:
        return None
    m = rng.choice(words)
    w = m.group()
    i = rng.randrange(1, len(w) - 1)  # not the first letter: people rarely miss it
    kind = rng.choice(["drop", "double", "swap", "key"])
    if kind == "drop":
        new = w[:i] + w[i + 1:]
    elif kind == "double":
        new = w[:i] + w[i] + w[i:]
    elif kind == "swap":
        new = w[:i] + w[i + 1] + w[i] + w[i + 2:]
    else:
        keys = neighbours(w[i].lower())
        new = w[:i] + rng.choice(keys) + w[i + 1:]
    return question[:m.start()] + new + question[m.end():] if new != w else None


def main() -> None:
    import qa
    from qa import answering
    from qa.config import Settings
    from qa.evaluation import load_squad, squad_right, write_corpus
    from qa.weights.train_reader import TRAIN_TUNING_ARTICLES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--answerable", type=int, default=250)
    ap.add_argument("--impossible", type=int, default=250)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--public", action="store_true", help="count the public sample's corrections instead")
    args = ap.parse_args()
    settings = Settings(progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        name = "squad2-dev-5-articles.json" if args.public else "squad2-dev-15-tuning-articles.json"
        articles = load_squad(args.data / name)
        articles = articles if args.public else articles[TRAIN_TUNING_ARTICLES:]
        questions = write_corpus(articles, root / "docs")
        qa.build_index(root / "docs", root / "index", settings=settings)
        if args.public:
            from qa import spelling
            from qa.embeddings import get_embedder
            from qa.index import ensure_index
            from qa.search import merge, rank_many

            loaded, embedder = ensure_index(root / "index", settings), get_embedder(settings)
            changed = []
            for q in questions:
                fixed = spelling.corrected(q.question, lambda q=q: [p.text for p in merge(
                    loaded, rank_many(loaded, embedder, [q.question], settings.rerank, settings)[0],
                    settings.rerank)])
                if fixed != q.question:
                    changed.append((q.question, fixed))
            print(f"public SQuAD sample: {len(changed)} of {len(questions)} questions changed")
            for a, b in changed:
                print(f"  {a!r} -> {b!r}")
            return
        rng = random.Random(args.seed)
        sample = rng.sample([q for q in questions if not q.impossible], args.answerable) + \
            rng.sample([q for q in questions if q.impossible], args.impossible)
        typed = [(q, typo(q.question, rng)) for q in sample]
        typed = [(q, t) for q, t in typed if t is not None]
        print(f"{len(typed)} questions with a typo, e.g.: " + "; ".join(t for _, t in typed[:4]))
        for label, pick in (("clean", lambda q, t: q.question), ("typo", lambda q, t: t)):
            for on in (False, True):
                t0 = time.time()
                rows = []
                with mock.patch.object(answering, "SPELLING", on):
                    for q, t in typed:
                        a = qa.answer(pick(q, t), root / "index", settings=settings)
                        rows.append((q.impossible, squad_right(a, q), a.abstained, bool(a.corrected)))
                        if label == "clean" and a.corrected:
                            print(f"    clean, changed: {q.question!r} -> {a.corrected!r}")
                ans = [r for r in rows if not r[0]]
                imp = [r for r in rows if r[0]]
                print(f"{label:5s} correction {'on ' if on else 'off'}: right {sum(r[1] for r in ans) / len(ans):.3f} "
                      f"of {len(ans)} answerable, false refusals {sum(r[2] for r in ans) / len(ans):.3f}, "
                      f"unanswerable refused {sum(r[2] for r in imp) / len(imp):.3f} of {len(imp)}; "
                      f"corrected {sum(r[3] for r in rows)} questions ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
