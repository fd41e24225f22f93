"""Acronyms the articles spell out: does reading "Who leads the SDF?" as "Who leads the SDF (Syrian Democratic
Forces)?" (``qa.spelling.spelt_out``, ``answering.ACRONYMS``) answer more questions right on held-out data, and
leave the rest be?

    python bench/acronyms.py [--sets squad selqa doc2dial] [--turns 400]

Every question of the held-out sets is checked; only those the step changes are answered, with the step off and
on (the others get the same answer both ways):
- squad: the 5 SQuAD 2.0 tuning articles the reader never trained on (1,801 questions, unanswerable ones too), one
  file per article, indexed in a temporary folder;
- selqa: SelQA dev's held-out half (the articles ``selqa_for_training`` leaves out);
- doc2dial: the 400 doc2dial tuning turns (outside the public sample), each after its conversation.
Per set: how many questions changed, and of those right (SQuAD: ``squad_right``; SelQA: ``selqa_right``;
doc2dial: answered and citing the gold span), answered, and for SQuAD's unanswerable ones refused. The public test
sets are not read.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import qa
    from qa import answering, spelling
    from qa.config import Settings
    from qa.embeddings import get_embedder
    from qa.evaluation import (
        chat_history,
        cites_gold,
        load_selqa,
        load_squad,
        load_turns,
        selqa_right,
        squad_right,
        tuning_turns,
        write_corpus,
    )
    from qa.index import ensure_index
    from qa.search import merge, rank_many
    from qa.weights.train_reader import TRAIN_TUNING_ARTICLES, selqa_for_training

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--sets", nargs="+", default=["squad", "selqa", "doc2dial"])
    ap.add_argument("--turns", type=int, default=400)
    args = ap.parse_args()
    settings = Settings(progress=False)
    depth = max(settings.rerank, settings.answer_passages)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in args.sets:
            t0 = time.time()
            if name == "squad":
                articles = load_squad(args.data / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
                items = [(q.question, None, q) for q in write_corpus(articles, root / "squad-docs")]
                docs = root / "squad-docs"
            elif name == "selqa":
                docs = root / "selqa-docs"
                items = [(q.question, None, q) for q in load_selqa(args.data / "selqa" / "selqa-ass-dev.json", docs)
                         if not selqa_for_training(q.article)]
            else:
                docs = args.data / "doc2dial-dmv-va" / "documents"
                items = [(t.question, chat_history(t), t)
                         for t in tuning_turns(load_turns(args.data / "doc2dial-dmv-va"), args.turns)]
            index = root / f"{name}-index"
            qa.build_index(docs, index, settings=settings)
            loaded, embedder = ensure_index(index, settings), get_embedder(settings)

            def found(q: str, loaded=loaded, embedder=embedder) -> list[str]:
                return [p.text for p in merge(loaded, rank_many(loaded, embedder, [q], depth, settings)[0], depth)]

            changed = [(q, h, g, new) for q, h, g in items if (new := spelling.spelt_out(q, lambda q=q: found(q))) != q]
            print(f"{name}: {len(changed)} of {len(items)} questions changed, e.g. "
                  + "; ".join(f"{q!r} -> {new!r}" for q, _, _, new in changed[:6]), flush=True)
            for on in (False, True):
                rows = []
                with mock.patch.object(answering, "ACRONYMS", on):
                    for q, h, g, _ in changed:
                        a = qa.answer(q, index, history=h, settings=settings)
                        if name == "squad":
                            right = squad_right(a, g)
                        elif name == "selqa":
                            right = selqa_right(a, g)
                        else:
                            right = not a.abstained and cites_gold(a.citations, g)
                        rows.append((getattr(g, "impossible", False), right, a.abstained))
                        if on:
                            print(f"    {q!r}: {'refused' if a.abstained else a.text[:80]!r} right {right}")
                ans = [r for r in rows if not r[0]]
                imp = [r for r in rows if r[0]]
                print(f"  step {'on ' if on else 'off'}: right {sum(r[1] for r in ans)} of {len(ans)} answerable, "
                      f"answered {sum(not r[2] for r in ans)}; unanswerable refused {sum(r[2] for r in imp)} of "
                      f"{len(imp)} ({time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
