"""Questions typed without their question mark, as people type into a search box: what the reader makes of them
as typed, and read with the "?" put back (``qa.questions.as_asked``, ``answering.ASK_AS_QUESTION``), side by side
through ``qa.answer`` on held-out data.

    python bench/question_form.py [--answerable 250] [--impossible 250] [--turns 200]

- SQuAD 2.0 tuning articles held out from reader training: a seeded sample of answerable and unanswerable
  questions, each with its "?" taken off, asked with the put-back off and on ("as written" is the same questions
  with their "?": the put-back leaves them as they are).
- doc2dial tuning turns (outside the public sample) as the users wrote them, with their conversation: the put-back
  changes the turns that open as a question and hold no "?".

Per variant: SQuAD right when answered (``squad_right``), answerable refused (false refusals), unanswerable refused,
at the shipped ``min_confidence``; doc2dial answered and cited; the ECE of the shown confidence over the answered
questions (5 bins). Uses the indexes ``python -m qa.weights.fit_confidence`` built in its cache (run it first).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import answering  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.evaluation import (  # noqa: E402
    chat_history,
    cites_gold,
    load_squad,
    load_turns,
    reliability,
    squad_right,
    tuning_turns,
    write_corpus,
)
from qa.questions import as_asked  # noqa: E402
from qa.reading import card, reader_path  # noqa: E402
from qa.weights import fit_confidence as fc  # noqa: E402
from qa.weights.train_reader import TRAIN_TUNING_ARTICLES  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--answerable", type=int, default=250)
    ap.add_argument("--impossible", type=int, default=250)
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--data", type=Path, default=fc.DATA)
    args = ap.parse_args(argv)
    s = Settings.from_env(progress=False)
    cache = fc.CACHE / fc.reading_key(card(reader_path(s))["sha256"], s)
    if not (cache / "squad-index").exists():
        raise SystemExit(f"no indexes in {cache}: run python -m qa.weights.fit_confidence first")
    rng = random.Random(args.seed)
    questions = write_corpus(load_squad(args.data / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:],
                             cache / "squad-docs")
    ans = rng.sample([q for q in questions if not q.impossible], args.answerable)
    imp = rng.sample([q for q in questions if q.impossible], args.impossible)
    turns = rng.sample(tuning_turns(load_turns(args.data / "doc2dial-dmv-va"), 400), args.turns)
    changed = sum(as_asked(t.question) != t.question for t in turns)
    print(f"min_confidence {s.min_confidence}; SQuAD {len(ans)} + {len(imp)} held-out questions without their '?'; "
          f"doc2dial {len(turns)} tuning turns, {changed} changed by the put-back", flush=True)
    print(f"{'put-back':<8} {'SQuAD right':>11} {'false ref.':>10} {'refused unans.':>14} {'ECE':>6} "
          f"{'d2d answered':>12} {'cited':>6} {'ECE':>6} {'s':>5}")
    for on in (False, True):
        t0 = time.time()
        with mock.patch.object(answering, "ASK_AS_QUESTION", on):
            given, right, refused_ans = [], [], 0
            for q in ans:
                a = answering.answer(q.question.rstrip().rstrip("?").rstrip(), cache / "squad-index", settings=s)
                if a.abstained:
                    refused_ans += 1
                else:
                    right.append(squad_right(a, q))
                    given.append((a.confidence, right[-1]))
            refused_imp = 0
            for q in imp:
                a = answering.answer(q.question.rstrip().rstrip("?").rstrip(), cache / "squad-index", settings=s)
                refused_imp += a.abstained
                if not a.abstained:
                    given.append((a.confidence, False))
            d_given = []
            for t in turns:
                a = answering.answer(t.question, cache / "doc2dial-index", history=chat_history(t), settings=s)
                if not a.abstained:
                    d_given.append((a.confidence, cites_gold(a.citations, t)))
        ece = reliability(given)["ece"]
        d_ece = reliability(d_given)["ece"]
        print(f"{'on' if on else 'off':<8} {statistics.mean(right or [0]):>11.3f} {refused_ans / len(ans):>10.3f} "
              f"{refused_imp / len(imp):>14.3f} {ece:>6.3f} {len(d_given) / len(turns):>12.3f} "
              f"{statistics.mean(c for _, c in d_given) if d_given else 0:>6.3f} {d_ece:>6.3f} "
              f"{time.time() - t0:>5.0f}", flush=True)


if __name__ == "__main__":
    main()
