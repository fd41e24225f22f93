"""Follow-ups that ask for more ("Tell me more", "What else do I need?", "Are there any other requirements?"):
does leaving out what earlier answers gave (``qa.answering.Said``) make the answer cite the gold more often?

    python bench/more_followups.py [--turns 200] [--index DIR]

The doc2dial turns outside the public sample (``qa.evaluation.sample_turns(turns, 120, 40, 7)``) whose question
``qa.questions.asks_for_more``, each asked through ``qa.answer`` after its conversation given two ways:

- "text": the conversation as chat messages, the human agent's replies as they were typed (text only);
- "ours": the conversation with its last exchange replaced by this product's own Answer to the previous user turn
  (asked after the turns before it), as the app and the Python API pass it.

and each with what was given left out (shipped) and kept (``asks_for_more`` off). Figures: answered; cited (a
citation overlaps a gold span), of all and of the answered; repeated (a citation overlaps the previous answer's
citations, for "ours", or the previous turn's gold grounding, for "text"). Builds the index of the pages in a
temporary folder unless given one.
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
    from qa import answering
    from qa.config import Settings
    from qa.evaluation import _overlap, chat_history, load_turns, sample_turns
    from qa.questions import asks_for_more

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--turns", type=int, default=200, help="at most this many turns (seeded sample)")
    ap.add_argument("--index", type=Path, help="an index of doc2dial-dmv-va/documents (default: built in /tmp)")
    args = ap.parse_args()

    folder = args.data / "doc2dial-dmv-va"
    turns = load_turns(folder)
    later, first = sample_turns(turns, 120, 40, 7)
    public = {t.id for t in later + first}
    by_id = {t.id: t for t in turns}
    pool = [t for t in turns if t.history and t.id not in public and asks_for_more(t.question)]
    import random

    pool = random.Random(5).sample(pool, min(args.turns, len(pool)))
    settings = Settings.from_env(progress=False)
    tmp = tempfile.mkdtemp(prefix="qa-more-")
    index = args.index or Path(tmp) / "index"
    qa.build_index(folder / "documents", index, settings=settings)

    def previous(t):
        dial, n = t.id.rsplit("_", 1)
        return next((by_id[f"{dial}_{k}"] for k in range(int(n) - 1, 0, -1) if f"{dial}_{k}" in by_id), None)

    def cited(a, source, golds):
        return any(c.source == source and any(_overlap(c, s, e) > 0 for s, e in golds) for c in a.citations)

    print(f"{len(pool)} turns that ask for more, outside the public sample (of {sum(t.id not in public and bool(t.history) for t in turns)} later turns)")
    for form in ("text", "ours"):
        for leave_out in (True, False):
            t0 = time.time()
            rows = []
            with mock.patch.object(answering, "asks_for_more", asks_for_more if leave_out else (lambda q: False)):
                for t in pool:
                    history = chat_history(t)
                    prev = previous(t)
                    if form == "ours":
                        users = [i for i, h in enumerate(history) if h["role"] == "user"]
                        if not users:
                            continue
                        k = users[-1]
                        before = history[:k]
                        mine = qa.answer(history[k]["content"], index_dir=index, history=before or None,
                                         settings=settings)
                        history = before + [mine]
                    a = qa.answer(t.question, index_dir=index, history=history, settings=settings)
                    if form == "ours":
                        rep = not mine.abstained and any(c.source == m.source and c.start < m.end and m.start < c.end
                                                         for c in a.citations for m in mine.citations)
                    else:
                        rep = prev is not None and cited(a, prev.source, prev.golds)
                    rows.append((not a.abstained, cited(a, t.source, t.golds), rep))
            n = len(rows)
            ans = sum(r[0] for r in rows)
            hit = sum(r[1] for r in rows)
            print(f"{form:5s} {'left out' if leave_out else 'kept    '}: {n} turns, answered {ans / n:.3f}, "
                  f"cited {hit / n:.3f} of all, {hit / max(1, ans):.3f} of the answered, repeated "
                  f"{sum(r[2] for r in rows) / max(1, ans):.3f} of the answered ({time.time() - t0:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    main()
