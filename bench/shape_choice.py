"""Which shape an answer takes: the question's form (the shipped rule: why / how / describe questions get quoted
sentences, others a short span of at most ``longest_short_answer`` words) against choices the reader's own output
makes, side by side on the same held-out readings.

    python bench/shape_choice.py [--cache DIR]

Replays ``answering.draft`` on the readings ``qa/weights/fit_confidence.py`` cached (SQuAD tuning articles held
out from reader training, SelQA dev, doc2dial tuning turns; run it first), the refusal rule off, under each
policy:
- ``form``: the shipped rule (``qa.questions.descriptive``);
- ``short`` / ``quotes``: always a short span (when one of at most 15 words exists) / always quoted sentences;
- ``span<=N``: the reader decides: a short answer when its best span has at most N words, whatever the question;
- ``form+span<=N``: the question's form, and a factoid's span must have at most N words to stand as a short answer.

Per source: SQuAD answerable questions' mean F1 (a quote scores its whole text, as ``qa eval`` does) and the
share right (``squad_right``); SelQA and doc2dial: the share whose citations hold an answer sentence / overlap the
grounding span.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa import answering, evidence  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.evaluation import (  # noqa: E402
    cites_gold,
    f1_score,
    load_selqa,
    load_squad,
    load_turns,
    selqa_right,
    squad_right,
    tuning_turns,
    write_corpus,
)
from qa.questions import descriptive  # noqa: E402
from qa.weights.fit_confidence import CACHE, _from_row, reading_key  # noqa: E402
from qa.weights.train_reader import DATA, TRAIN_TUNING_ARTICLES  # noqa: E402

_MARKER = re.compile(r"\s*\[\d+\]")


def rows(cache: Path, name: str) -> dict:
    return {r["id"]: r for r in map(json.loads, (cache / f"{name}.jsonl").read_text(encoding="utf-8").splitlines())}


def main(argv=None) -> None:
    from qa.index import ensure_index
    from qa.reading import WEIGHTS_DIR, card

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", help="fit_confidence's cache for the shipped reader")
    args = ap.parse_args(argv)
    s = Settings(progress=False, min_confidence=0.0)
    sha = card(WEIGHTS_DIR / "reader.int8.onnx")["sha256"]
    cache = Path(args.cache) if args.cache else CACHE / reading_key(sha, s)
    limits = evidence.thresholds()
    policies = {"form": (descriptive, limits["longest_short_answer"]),
                "short": (lambda q: False, limits["longest_short_answer"]),
                "quotes": (lambda q: True, limits["longest_short_answer"])}
    for n in (3, 5, 8):
        policies[f"span<={n}"] = (lambda q: False, n)
        policies[f"form+span<={n}"] = (descriptive, n)

    squad = [q for q in write_corpus(load_squad(DATA / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:],
                                     cache / "squad-docs") if not q.impossible]
    selqa = load_selqa(DATA / "selqa" / "selqa-ass-dev.json", cache / "selqa-docs")
    turns = tuning_turns(load_turns(DATA / "doc2dial-dmv-va"), 400)
    sets = {"squad": ([(q.id, q) for q in squad], rows(cache, "squad")),
            "selqa": ([(f"selqa-{i}", q) for i, q in enumerate(selqa)], rows(cache, "selqa")),
            "doc2dial": ([(t.id, t) for t in turns], rows(cache, "doc2dial"))}
    loaded = {name: ensure_index(cache / f"{name}-index", s) for name in sets}
    print(f"{'policy':<14} {'SQuAD F1':>9} {'right':>6} {'short':>6} {'SelQA':>6} {'short':>6} {'doc2dial':>9} "
          f"{'short':>6}")
    for name, (form, longest) in policies.items():
        out = {}
        with mock.patch.object(answering, "descriptive", form), \
                mock.patch.object(evidence, "thresholds", lambda n=longest: {**limits, "longest_short_answer": n}):
            for src, (items, cached) in sets.items():
                scores, shorts = [], []
                for key, item in items:
                    if key not in cached:
                        continue
                    row = cached[key]
                    passages, readings = _from_row(row)
                    a, _ = answering.draft(row["q"], row["searched"], row["reader_q"], passages, readings,
                                           loaded[src], 0.0, s.max_quotes, page=row["page"])
                    shorts.append(a.shape == "short")
                    if src == "squad":
                        text = "" if a.abstained else _MARKER.sub("", a.text).strip()
                        scores.append((max(f1_score(text, g) for _, _, g in item.golds), squad_right(a, item)))
                    elif src == "selqa":
                        scores.append(selqa_right(a, item))
                    else:
                        scores.append(not a.abstained and cites_gold(a.citations, item))
                out[src] = (scores, statistics.mean(shorts) if shorts else 0.0)
        (sq, sq_short), (sel, sel_short), (dd, dd_short) = out["squad"], out["selqa"], out["doc2dial"]
        print(f"{name:<14} {statistics.mean(f for f, _ in sq):>9.3f} {statistics.mean(r for _, r in sq):>6.3f} "
              f"{sq_short:>6.3f} {statistics.mean(sel):>6.3f} {sel_short:>6.3f} {statistics.mean(dd):>9.3f} "
              f"{dd_short:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
