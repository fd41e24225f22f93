"""A question that could stand alone, asked in a conversation: answered with the conversation only, or also alone
with the likelier right of the two kept (what qa.answer does).

    python bench/standalone.py [../shared/data/doc2dial-dmv-va] [--turns 200]

doc2dial tuning turns only (seed 5, outside the public sample): for each variant, the share of later turns
answered, the share of those whose citations overlap the gold span, the share whose "searched for" finds the gold
span in the top 5, and the share that show a "searched for" (the conversation changed what was found). Then the seeds: standalone questions asked
alone and after two questions on another topic, and whether the answer is the same.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import qa  # noqa: E402
from qa import answering  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.evaluation import chat_history, cites_gold, dialogue_hit, load_turns, tuning_turns  # noqa: E402
from qa.index import build_index  # noqa: E402

SEED_QUESTIONS = ["How many soldiers would European countries contribute?", "Who is Ilhan Ahmed?",
                  "Who won the 2018 FIFA World Cup?", "Who wrote Hamlet?", "Why does Turkey oppose the YPG?",
                  "What did Graham ask European allies to do?"]
OTHER_TOPIC = [["What is the capital of France?", "When was the Eiffel Tower built?"],
               ["What did Trump tell Ilhan Ahmed?", "Where is Al Tanf?"]]


@contextlib.contextmanager
def plan(rule: str, margin: float):
    """answering.STANDALONE and STANDALONE_MARGIN set so; "statement": "never", with a standalone question read
    beside the last answer when that is a statement, as until stop 62 (qa.questions.reader_text)."""
    from qa import questions

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(answering, "STANDALONE",
                                              "never" if rule in ("statement", "shared") else rule))
        if rule == "shared":
            stack.enter_context(mock.patch.object(questions, "STANDALONE_READING", "shared"))
        stack.enter_context(mock.patch.object(answering, "STANDALONE_MARGIN", margin))
        if rule == "statement":
            stack.enter_context(mock.patch.object(
                answering, "reader_text", lambda reader_q, history, question=None: questions.reader_text(
                    reader_q, history, question if questions.needs_context(question) else None)))
        yield


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/doc2dial-dmv-va"))
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--variants", nargs="*", help="only the variants whose names hold one of these words")
    ap.add_argument("--no-search", action="store_true", help="skip the search@5 column (it rereads every turn)")
    ap.add_argument("--seeds-only", action="store_true", help="only the seeds' check (QA_READER_BATCH=all "
                                                                "compares reading a question's passages together)")
    args = ap.parse_args(argv)
    s = Settings.from_env(progress=False)
    tune = tuning_turns(load_turns(args.folder), args.turns)
    variants = {"conversation only": ("never", 0.0),
                "conversation only, statement read beside (until stop 62)": ("statement", 0.0),
                "conversation only, statement read beside when sharing a word": ("shared", 0.0),
                "alone: searched and read as if asked alone": ("alone", 0.0),
                "alone if the talk never named a word of it": ("unshared", 0.0),
                "alone if it names something the talk never named": ("unshared named", 0.0),
                "read alone, searched with the conversation": ("read", 0.0),
                "page: alone if its own top 5 lack the page": ("page", 0.0),
                "both, likelier kept": ("both", 0.0), "both, alone if 0.1 likelier": ("both", 0.1),
                "both, alone if 0.2 likelier": ("both", 0.2), "both, alone if 0.3 likelier": ("both", 0.3)}
    every = dict(variants)  # the seeds' check is quick: every variant
    if args.variants:
        variants = {k: v for k, v in variants.items() if any(w in k for w in args.variants)}
    t0 = time.time()
    if args.seeds_only:
        variants = {}
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        if variants:
            build_index(Path(args.folder) / "documents", index, settings=s)
        print(f"{len(tune)} doc2dial tuning turns (seed 5); {sum(answering.stands_alone(t.question, chat_history(t)) for t in tune)} "
              "of them could stand alone")
        print(f"{'variant':44} {'answered':>9} {'cited':>7} {'search@5':>9} {'shown':>6} {'s/turn':>7}")
        for name, (rule, margin) in variants.items():
            answered = cited = found = shown = 0
            t1 = time.time()
            with plan(rule, margin):
                for t in tune:
                    a = qa.answer(t.question, index, history=chat_history(t), settings=s)
                    answered += not a.abstained
                    cited += not a.abstained and cites_gold(a.citations, t)
                    shown += a.history_used
                    if not args.no_search:
                        found += any(dialogue_hit(p, t) for p in qa.search(a.searched_for, 5, index, settings=s))
            n = len(tune)
            print(f"{name:44} {answered / n:>9.3f} {cited / max(1, answered):>7.3f} {found / n:>9.3f} "
                  f"{shown / n:>6.3f} {(time.time() - t1) / n:>7.2f}", flush=True)
    seeds = ROOT / "index"
    alone = {q: qa.answer(q, seeds, settings=s) for q in SEED_QUESTIONS}
    for name, (rule, margin) in every.items():
        same = 0
        with plan(rule, margin):
            for q in SEED_QUESTIONS:
                for history in OTHER_TOPIC:
                    hist = [(h, qa.answer(h, seeds, settings=s).text) for h in history]
                    a = qa.answer(q, seeds, history=hist, settings=s)
                    same += a.text == alone[q].text
                    if a.text != alone[q].text:
                        print(f"    {name}: {q!r} after {history[0]!r}: {a.text[:60]!r} ({a.confidence:.0%}), "
                              f"alone {alone[q].text[:40]!r} ({alone[q].confidence:.0%})")
        print(f"seeds, {name}: {same} of {len(SEED_QUESTIONS) * len(OTHER_TOPIC)} standalone questions answered as "
              f"when asked alone")
    print(f"{time.time() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
