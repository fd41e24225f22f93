"""What the reader should read for a follow-up on doc2dial: which question makes it cite the gold span.

    python bench/dialogue_reading.py [../shared/data/doc2dial-dmv-va] [--turns 150]

Tuning turns only: later turns (seed 5) outside the public figure's seed-7 sample. Each turn is searched as
`qa.answer` searches it (the question with the conversation); the same passages are then read with each variant
of the reader's question, and the sentence the answer path would choose (`ranked_evidence`) is checked against
the gold span. Prints, per variant, how often that sentence overlaps the gold span when forced to answer, and
among the turns whose confidence clears Settings.min_confidence.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import questions  # noqa: E402
from qa.confidence import confidence_of, signals  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embeddings import get_embedder  # noqa: E402
from qa.evaluation import chat_history, cites_gold, load_turns, tuning_turns  # noqa: E402
from qa.evidence import ranked_evidence  # noqa: E402
from qa.index import build_index, ensure_index  # noqa: E402
from qa.questions import descriptive, needs_context, reader_text, rewrite_follow_up  # noqa: E402
from qa.reading import get_reader  # noqa: E402
from qa.search import merge, rank_many, rerank  # noqa: E402


def _under(kind: str):
    """reader_text as shipped, with another ``FOLLOW_UP_CONTEXT``."""
    def make(t, searched, reader_q):
        with mock.patch.object(questions, "FOLLOW_UP_CONTEXT", kind):
            return reader_text(reader_q, chat_history(t), t.question)
    return make


VARIANTS = {
    "shipped (reader_text)": lambda t, searched, reader_q: reader_text(reader_q, chat_history(t), t.question),
    "previous question as asked (until stop 61)": _under("question"),
    "previous question's topic": _under("topic"),
    "statement only (before 2026-12-06)": lambda t, searched, reader_q: reader_text(reader_q, chat_history(t)),
    "the question itself": lambda t, searched, reader_q: reader_q,
    "alone when it stands alone": lambda t, searched, reader_q: (reader_q if not needs_context(t.question)
                                                               else reader_text(reader_q, chat_history(t), t.question)),
    "+ previous question": lambda t, s, q: f"{q} ({t.said('user')[-1]})" if t.said('user') else q,
    "+ last agent turn": lambda t, s, q: f"{q} ({t.said('agent')[-1]})" if t.said('agent') else q,
    "as searched (+ all)": lambda t, searched, q: searched,
    "statement, else previous question": lambda t, s, q: (reader_text(q, chat_history(t))
                                                          if reader_text(q, chat_history(t)) != q or not t.said('user')
                                                          else f"{q} ({t.said('user')[-1]})"),
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/doc2dial-dmv-va"))
    ap.add_argument("--turns", type=int, default=150)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME",
                    help=f"which to compare (default all: {', '.join(VARIANTS)})")
    args = ap.parse_args(argv)
    s = Settings.from_env(progress=False)
    variants = {name: VARIANTS[name] for name in args.variants}
    turns = load_turns(args.folder)
    tune = tuning_turns(turns, args.turns)
    forced = {v: 0 for v in variants}
    alone_forced = {v: 0 for v in variants}  # the turns that stand alone (needs_context False)
    answered = {v: 0 for v in variants}
    cited = {v: 0 for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        build_index(Path(args.folder) / "documents", Path(tmp) / "index", settings=s)
        loaded, emb, reader = ensure_index(Path(tmp) / "index", s), get_embedder(s), get_reader(s)
        for i, t in enumerate(tune, 1):
            searched, reader_q = rewrite_follow_up(t.question, chat_history(t), None)
            ranking = rank_many(loaded, emb, [searched], s.rerank, s)[0]
            passages, _ = rerank(searched, merge(loaded, ranking, s.rerank), reader, s)
            passages = passages[: s.answer_passages]
            for name, make in variants.items():
                q = make(t, searched, reader_q)
                readings = reader.read(q, [p.text for p in passages])
                ev = ranked_evidence(passages, readings, loaded)
                if not ev:
                    continue
                hit = cites_gold([ev[0]], t)
                forced[name] += hit
                alone_forced[name] += hit and not needs_context(t.question)
                quotes = descriptive(reader_q)
                short = "" if quotes else ev[0].text[ev[0].answer_start - ev[0].start:ev[0].answer_end - ev[0].start]
                sig = signals(ev[0], ev, passages, readings, quotes, reader_q, True, short)
                sig["similarity"] = 0.0  # a follow-up's, as qa.confidence.similarity gives it
                if confidence_of(sig) >= s.min_confidence:
                    answered[name] += 1
                    cited[name] += hit
            if i % 50 == 0:
                print(f"  {i}/{len(tune)} turns", file=sys.stderr, flush=True)
    n_alone = sum(not needs_context(t.question) for t in tune)
    print(f"{len(tune)} tuning turns ({n_alone} stand alone); the chosen sentence overlaps the gold span:")
    for name in variants:
        print(f"  {name:32} forced {forced[name] / len(tune):.3f} (standing alone {alone_forced[name]}/{n_alone}, "
              f"the others {forced[name] - alone_forced[name]}/{len(tune) - n_alone})   answered "
              f"{answered[name] / len(tune):.3f}, of those cited {cited[name] / max(1, answered[name]):.3f}")


if __name__ == "__main__":
    main()
