"""A question that could stand alone, asked in a conversation: answered with the conversation only, or also alone
with the likelier right of the two kept (what qa.answer does).

    python bench/standalone.py [../shared/data/doc2dial-dmv-va] [--turns 200]

doc2dial tuning turns only (seed 5, outside the public sample): for each variant, the share of later turns
answered, the share of those whose citations overlap the gold span, the share whose "searched for" finds the gold
span in the top 5, and the share that show a "searched for" at all. Then the seeds: standalone questions asked
alone and after two questions on another topic, and whether the answer is the same.
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


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(ROOT.parent / "shared/data/doc2dial-dmv-va"))
    ap.add_argument("--turns", type=int, default=200)
    args = ap.parse_args(argv)
    s = Settings.from_env(progress=False)
    tune = tuning_turns(load_turns(args.folder), args.turns)
    variants = {"conversation only": lambda q, h: False, "also alone, likelier kept": answering.stands_alone}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        build_index(Path(args.folder) / "documents", index, settings=s)
        print(f"{len(tune)} doc2dial tuning turns (seed 5); {sum(answering.stands_alone(t.question, chat_history(t)) for t in tune)} "
              "of them could stand alone")
        print(f"{'variant':28} {'answered':>9} {'cited':>7} {'search@5':>9} {'shown':>6} {'s/turn':>7}")
        for name, rule in variants.items():
            answered = cited = found = shown = 0
            t1 = time.time()
            with mock.patch.object(answering, "stands_alone", rule):
                for t in tune:
                    a = qa.answer(t.question, index, history=chat_history(t), settings=s)
                    answered += not a.abstained
                    cited += not a.abstained and cites_gold(a.citations, t)
                    shown += a.searched_for != a.question
                    found += any(dialogue_hit(p, t) for p in qa.search(a.searched_for, 5, index, settings=s))
            n = len(tune)
            print(f"{name:28} {answered / n:>9.3f} {cited / max(1, answered):>7.3f} {found / n:>9.3f} "
                  f"{shown / n:>6.3f} {(time.time() - t1) / n:>7.2f}", flush=True)
    seeds = ROOT / "index"
    same = 0
    for q in SEED_QUESTIONS:
        alone = qa.answer(q, seeds, settings=s)
        for history in OTHER_TOPIC:
            a = qa.answer(q, seeds, history=history, settings=s)
            same += a.text == alone.text
            print(f"  {'same' if a.text == alone.text else 'DIFFERENT':9} {q!r} after {history[0]!r}: "
                  f"{a.text[:70]!r} ({a.confidence:.0%})")
    print(f"seeds: {same} of {len(SEED_QUESTIONS) * len(OTHER_TOPIC)} standalone questions answered as alone; "
          f"{time.time() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
