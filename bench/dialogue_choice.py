"""How a follow-up's answer picks its sentences on doc2dial: the last answer's page, and announcing sentences.

    python bench/dialogue_choice.py [../shared/data/doc2dial-dmv-va] [--turns 400] [--bonus 0 2 4]
                                    [--quotes-by span head]

Tuning turns only: later turns (seed 5) outside the public figure's seed-7 sample. Each turn goes through the
answer path as ``qa.answer`` takes it, with the conversation as chat messages, and is read once; the answer is
then composed for each variant: ``page_bonus`` (thresholds.json) from ``--bonus``, with and without quoting the
sentences an announcing sentence ("All of these must be true:") points to, and with the quotes ranked by span
or by the reader's sentence head (``evidence.QUOTES_BY``; "head" needs a reader with one, ``QA_READER``; these
tuning turns are outside the turns recipe 384's head trains on). Printed for each: the share of turns
answered, and among those the share whose citations overlap the gold span (``qa eval --dialogues``' "cited").
The two halves of the turns are printed too, so a choice made on one can be checked on the other.
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

from qa import answering, evidence  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.evaluation import chat_history, cites_gold, load_turns, tuning_turns  # noqa: E402
from qa.index import build_index  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/doc2dial-dmv-va"))
    ap.add_argument("--turns", type=int, default=400)
    ap.add_argument("--bonus", type=float, nargs="+", default=[0.0, 2.0, 4.0])
    ap.add_argument("--quotes-by", nargs="+", default=["span"], choices=["span", "head"])
    args = ap.parse_args(argv)
    s = Settings.from_env(progress=False)
    turns = load_turns(args.folder)
    tune = tuning_turns(turns, args.turns)
    variants = [(b, follow, by) for b in args.bonus for follow in (False, True) for by in args.quotes_by]
    results = {v: [] for v in variants}  # per turn: (answered, cited)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        build_index(Path(args.folder) / "documents", index, settings=s)
        for i, t in enumerate(tune, 1):
            q, searched, reader_q, read_as, loaded, emb, reader, st, page = answering._prepare(
                t.question, index, chat_history(t), s)
            passages, readings = answering.read_evidence(searched, read_as, loaded, emb, reader, st)
            for bonus, follow, by in variants:
                knobs = {**evidence.thresholds(), "page_bonus": bonus}
                with mock.patch.object(evidence, "thresholds", lambda k=knobs: k), \
                        mock.patch.object(evidence, "FOLLOWING_SENTENCES", 2 if follow else 0), \
                        mock.patch.object(evidence, "QUOTES_BY", by):
                    a = answering.compose(q, searched, reader_q, passages, readings, loaded, 0.0, st.max_quotes,
                                          st.min_confidence, page=page, embedder=emb)
                results[bonus, follow, by].append((not a.abstained, not a.abstained and cites_gold(a.citations, t)))
            if i % 50 == 0:
                print(f"  {i}/{len(tune)} turns, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    print(f"{len(tune)} doc2dial tuning turns (seed 5), read once, composed per variant")
    print(f"{'page_bonus':>10} {'announcing':>10} {'quotes by':>9} {'answered':>9} {'cited':>7} {'cited, half 1':>14} {'half 2':>7}")
    for (bonus, follow, by), r in results.items():
        def cited(rows):
            answered = [c for a, c in rows if a]
            return sum(answered) / max(1, len(answered))
        print(f"{bonus:>10.1f} {'quoted' if follow else 'alone':>10} {by:>9} {sum(a for a, _ in r) / len(r):>9.3f} "
              f"{cited(r):>7.3f} {cited(r[0::2]):>14.3f} {cited(r[1::2]):>7.3f}")


if __name__ == "__main__":
    main()
