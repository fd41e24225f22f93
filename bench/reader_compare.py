"""Readers, and ways of reading, side by side in one run, through the real answer path, on tuning data only.

    python bench/reader_compare.py --variants 32:text 64:window [--readers qa/weights/reader.int8.onnx NEW.int8.onnx]
        [--turns 200] [--questions 300]

A variant is OVERLAP:SCORING[:BATCH]: the word pieces neighbouring windows share; where a span is scored: ``window``
(today's: in its home window, against that window's "no answer") or ``text`` (the earlier read: every window's
spans, against the text's lowest "no answer"); and what one onnxruntime run reads (the int8 model quantises its
activations with one scale per run): ``all`` windows of all passages, one ``text``'s, or one ``window``. Each
reader is run with each variant.
- doc2dial dmv-va later turns (seed 5) outside the public figure's seed-7 sample (``--turns 0`` skips them): search
  hit@5 (the reader reranks the fused results), and how often the answer's first chosen sentence, and any of its
  first three, overlaps the gold span.
- Answerable and unanswerable questions of the 5 SQuAD 2.0 tuning articles every stage holds out: F1 of the short
  answer and citation accuracy with no threshold, and the share of unanswerable questions refused at the
  relevance that refuses 10 % and 12 % of the answerable ones.
Refusal settings are left out on purpose: each reader needs its own confidence model (python -m
qa.weights.fit_confidence).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.answering import read_evidence  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embeddings import get_embedder  # noqa: E402
from qa.evaluation import (  # noqa: E402
    chat_history,
    cites_gold,
    dialogue_hit,
    f1_score,
    load_squad,
    load_turns,
    tuning_turns,
    write_corpus,
)
from qa.evidence import SHORTEST_QUOTE, ranked_evidence  # noqa: E402
from qa.index import build_index, ensure_index  # noqa: E402
from qa.questions import reader_text, rewrite_follow_up  # noqa: E402
from qa.reading import OnnxReader  # noqa: E402
from qa.weights.train_reader import DATA, TRAIN_TUNING_ARTICLES  # noqa: E402


def refused_at(ans: list[float], imp: list[float], share: float) -> float:
    cut = sorted(ans)[int(share * len(ans))]
    return sum(r < cut for r in imp) / len(imp)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readers", nargs="+", default=[str(ROOT / "qa" / "weights" / "reader.int8.onnx")])
    ap.add_argument("--variants", nargs="+", default=["32:text", "64:window"])
    ap.add_argument("--turns", type=int, default=200)
    ap.add_argument("--questions", type=int, default=300, help="of each kind, answerable and unanswerable")
    args = ap.parse_args(argv)
    s = Settings.from_env(progress=False, model_process=False)
    emb = get_embedder(s)
    readers = {}
    # Two readers both named reader.int8.onnx (the shipped one and an older one beside its card) must not share
    # a row: the second would silently replace the first.
    short = len({Path(p).name for p in args.readers}) == len(args.readers)
    for path in args.readers:
        for v in args.variants:
            overlap, scoring, batch = (v.split(":") + ["all"])[:3]
            readers[f"{Path(path).name if short else path} {v}"] = OnnxReader(path, s.threads, overlap=int(overlap),
                                                           per_window=scoring == "window", batch=batch)
    folder = DATA / "doc2dial-dmv-va"
    turns = load_turns(folder)
    tune = tuning_turns(turns, args.turns)
    rows = {name: {} for name in readers}
    with tempfile.TemporaryDirectory() as tmp:
        build_index(folder / "documents", Path(tmp) / "d", settings=s)
        loaded = ensure_index(Path(tmp) / "d", s)
        for name, reader in readers.items() if tune else ():
            t0 = time.time()
            hit5 = first1 = three = 0
            for t in tune:
                history = chat_history(t)
                searched, reader_q = rewrite_follow_up(t.question, history, None)
                ps, rs = read_evidence(searched, reader_text(reader_q, history), loaded, emb, reader, s)
                hit5 += any(dialogue_hit(p, t) for p in ps[:5])
                ev = [e for e in ranked_evidence(ps, rs, loaded) if len(e.text.split()) >= SHORTEST_QUOTE]
                first1 += bool(ev) and cites_gold(ev[:1], t)
                three += bool(ev) and cites_gold(ev[:3], t)
            n = len(tune)
            rows[name].update({"turns": n, "hit@5": hit5 / n, "first sentence": first1 / n,
                               "any of 3": three / n, "dialogue s": time.time() - t0})
        arts = load_squad(DATA / "squad2-dev-15-tuning-articles.json")[TRAIN_TUNING_ARTICLES:]
        qs = write_corpus(arts, Path(tmp) / "docs")
        build_index(Path(tmp) / "docs", Path(tmp) / "sq", settings=s)
        loaded = ensure_index(Path(tmp) / "sq", s)
        rng = random.Random(2)
        ans = rng.sample([q for q in qs if not q.impossible], args.questions)
        imp = rng.sample([q for q in qs if q.impossible], args.questions)
        for name, reader in readers.items() if args.questions else ():
            t0 = time.time()
            f1s, cited, r_ans, r_imp = [], [], [], []
            for q in ans + imp:
                ps, rs = read_evidence(q.question, q.question, loaded, emb, reader, s)
                ev = ranked_evidence(ps, rs, loaded)
                top = ev[0] if ev else None
                rel = top.relevance if top else -1e9
                if q.impossible:
                    r_imp.append(rel)
                    continue
                r_ans.append(rel)
                short = top.text[top.answer_start - top.start:top.answer_end - top.start] if top else ""
                f1s.append(max(f1_score(short, g) for _, _, g in q.golds))
                cited.append(bool(top) and top.source == q.source
                             and any(top.start <= a and b <= top.end for a, b, _ in q.golds))
            rows[name].update({"F1 forced": sum(f1s) / len(f1s), "cited": sum(cited) / len(cited),
                               "refused @0.10": refused_at(r_ans, r_imp, 0.10),
                               "refused @0.12": refused_at(r_ans, r_imp, 0.12), "squad s": time.time() - t0})
    keys = list(dict.fromkeys(k for r in rows.values() for k in r))
    print("| reader | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for path, r in rows.items():
        print(f"| {path} | " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
