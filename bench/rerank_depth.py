"""Reranking depth: recall@1/@5 and search time by how many fused passages the reader reads.

    python bench/rerank_depth.py [--set covid|doc2dial|squad-tuning|squad-wiki] [--questions 150] [--specs 0,5,10,10:4,20]
    python bench/rerank_depth.py --set doc2dial --replay --specs 10,10:1,20:1:head   # read once, all specs
    python bench/rerank_depth.py --set squad-tuning --replay --specs 0,10 --sentence-weights 0 1
    python bench/rerank_depth.py --set squad-wiki --questions 400 --replay --specs 10,15,20,30   # a big corpus

A spec is DEPTH[:READER_WEIGHT[:KEY]] (weight: the shipped ``Settings.rerank_weight`` when left out); KEY ranks
passages for the reader's side of the fusion: ``margin`` (its best span over "no answer", as shipped), ``head``
(its sentence head's best sentence) or ``both`` (the mean of the two ranks). With ``--replay`` each passage is
read once per question and every spec is scored from those readings (exact: with ``reader_batch`` "text" each
passage is read in a run of its own); no per-spec time is printed then. ``--sentence-weights`` replays each spec
under each ``Settings.sentence_weight`` (the fusion's third ranking, by a passage's best sentence; 0: off).

``covid`` is COVID-QA's long papers, a public test set: report, never choose on it. The held-out sets to choose
on: ``doc2dial``, the 400 doc2dial tuning turns (``qa.evaluation.tuning_turns``: later turns outside the public
sample, which the reader never trained on), each searched as ``qa.answer`` searches it, with its conversation;
``squad-tuning``, the 5 SQuAD 2.0 tuning articles every reader stage holds out; ``squad-wiki``, their questions
with those 5 articles indexed among ``--distractors`` other Wikipedia articles (SQuAD 1.1 train, seed 3: their
text, not their questions), a corpus of thousands of chunks, as COVID-QA's is, but held out. (doc2dial's other
turns, first turns included, trained the reader's sentence head, so they are not held out.)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.answering import sentences_by  # noqa: E402
from qa.config import Settings  # noqa: E402
from qa.embeddings import get_embedder  # noqa: E402
from qa.evaluation import (  # noqa: E402
    chat_history,
    dialogue_hit,
    hit,
    load_squad,
    load_turns,
    tuning_turns,
    write_corpus,
)
from qa.index import build_index  # noqa: E402
from qa.local_store import load_index  # noqa: E402
from qa.questions import rewrite_follow_up  # noqa: E402
from qa.reading import get_reader  # noqa: E402
from qa.search import search_many  # noqa: E402
from qa.weights.train_reader import TRAIN_TUNING_ARTICLES  # noqa: E402

DATA = ROOT.parent / "shared/data"
SETS = {"covid": DATA / "covid-qa.json", "squad-tuning": DATA / "squad2-dev-15-tuning-articles.json",
        "squad-wiki": DATA / "squad2-dev-15-tuning-articles.json", "doc2dial": DATA / "doc2dial-dmv-va"}


def questions(name: str, path: Path, docs: Path, n: int, seed: int, distractors: int = 120):
    """(docs folder, [(question, is-hit(passage))]) for a set; writes SQuAD articles under ``docs`` (for
    ``squad-wiki``, ``distractors`` SQuAD 1.1 train articles beside them, without their questions)."""
    if name == "doc2dial":
        pool = tuning_turns(load_turns(path), 400)
        pick = random.Random(seed).sample(pool, min(n, len(pool)))
        return path / "documents", [(rewrite_follow_up(t.question, chat_history(t), None)[0],
                                     lambda p, t=t: dialogue_hit(p, t), sentences_by(t.question, chat_history(t)))
                                    for t in pick]
    articles = load_squad(path)
    if name in ("squad-tuning", "squad-wiki"):  # the first ones train the reader
        articles = articles[TRAIN_TUNING_ARTICLES:]
    qs = [q for q in write_corpus(articles, docs) if not q.impossible]
    if name == "squad-wiki":  # the same questions, their articles among many others: a big corpus, held out
        others = random.Random(3).sample(load_squad(DATA / "squad1.1-train.json"), distractors)
        write_corpus([{"title": f"other_{a['title']}", "paragraphs": [{"context": p["context"]} for p in a["paragraphs"]]}
                      for a in others], docs)
    pick = random.Random(seed).sample(qs, min(n, len(qs)))
    return docs, [(q.question, lambda p, q=q: hit(p, q), None) for q in pick]


def parse_specs(text: str, default_weight: float) -> list[tuple[int, float, str]]:
    """``DEPTH[:WEIGHT[:KEY]],...`` as ``(depth, weight, key)``."""
    out = []
    for spec in text.split(","):
        parts = spec.split(":")
        out.append((int(parts[0]), float(parts[1]) if len(parts) > 1 else default_weight,
                    parts[2] if len(parts) > 2 else "margin"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", choices=sorted(SETS), default="covid")
    ap.add_argument("--data", default="", help="the set's file or folder (default: under ../shared/data)")
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--distractors", type=int, default=120,
                    help="squad-wiki: how many other Wikipedia articles (SQuAD 1.1 train) are indexed beside them")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--specs", default="0,5,10,10:4,20")
    ap.add_argument("--replay", action="store_true", help="read each passage once; score every spec from that")
    ap.add_argument("--sentence-weights", type=float, nargs="+", default=None,
                    help="with --replay: Settings.sentence_weight values to replay each spec under")
    ap.add_argument("--asked", nargs="+", default=["on"], choices=["on", "off"],
                    help="with --replay: a standalone turn's sentences ranked by the turn alone "
                         "(answering.sentences_by, on) or by what is searched, its conversation too (off)")
    args = ap.parse_args()
    if args.replay:
        return replay(args)
    s = Settings.from_env(progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        docs, sample = questions(args.set, Path(args.data) if args.data else SETS[args.set], Path(tmp) / "docs",
                                 args.questions, args.seed, args.distractors)
        stats = build_index(docs, Path(tmp) / "index", settings=s)
        loaded, emb = load_index(Path(tmp) / "index"), get_embedder(s)
        print(f"{args.set}: {len(sample)} questions (seed {args.seed}), {stats.documents} documents, "
              f"{stats.chunks} chunks", flush=True)
        for depth, weight, key in parse_specs(args.specs, s.rerank_weight):
            if key != "margin":
                raise SystemExit(f"rank by {key!r} only with --replay")
            st = replace(s, rerank=depth, rerank_weight=weight)
            reader = get_reader(st) if depth else None
            # k = 5 as qa.search is called (a larger k would rerank more than the depth, and merging more
            # passages widens the first ones); without the reader also @10 and @20 of a k = 20 search, the
            # ceilings that reranking at those depths can reach.
            found, ms = [], []
            for question, _, _ in sample:  # one at a time, as qa.search is called: per-question times
                t0 = time.perf_counter()
                found += search_many(loaded, emb, [question], 5, st, reader=reader)
                ms.append(1000 * (time.perf_counter() - t0))
            wide = [] if depth else search_many(loaded, emb, [q for q, _, _ in sample], 20, st)

            def at(k: int, found: list) -> str:
                return f"recall@{k} {sum(any(ok(p) for p in ps[:k]) for ps, (_, ok, _) in zip(found, sample)) / len(sample):.3f}"

            figures = "  ".join([at(1, found), at(5, found), *(at(k, wide) for k in ((10, 20) if wide else ()))])
            print(f"rerank {depth:3d} weight {weight:g}: {figures}  median {statistics.median(ms):.0f} ms per question",
                  flush=True)


def head_score(reading, text: str) -> float:
    from qa.chunking import sentences

    scores = [reading.sentence_score(a, b) for a, b, _ in sentences(text)]
    return max((x for x in scores if x is not None), default=-1e9)


def reorder(passages, readings, weight: float, key: str, rrf_k: float) -> list:
    """qa.search.rerank's fusion, with the reader's side ranked by ``key`` ("head" or "both")."""
    def ranks(values):
        order = sorted(range(len(values)), key=lambda i: -values[i])
        return {i: r for r, i in enumerate(order)}

    margin = ranks([r.margin for r in readings])
    head = ranks([head_score(r, p.text) for p, r in zip(passages, readings)])
    by = {"margin": margin, "head": head, "both": {i: (margin[i] + head[i]) / 2 for i in margin}}[key]
    score = [1.0 / (rrf_k + i + 1) + weight / (rrf_k + by[i] + 1) for i in range(len(passages))]
    return [passages[i] for i in sorted(range(len(passages)), key=lambda i: (-score[i], i))]


def replay(args) -> None:
    from qa.search import merge, rank_many, rerank

    s = Settings.from_env(progress=False)
    specs = parse_specs(args.specs, s.rerank_weight)
    with tempfile.TemporaryDirectory() as tmp:
        docs, sample = questions(args.set, Path(args.data) if args.data else SETS[args.set], Path(tmp) / "docs",
                                 args.questions, args.seed, args.distractors)
        stats = build_index(docs, Path(tmp) / "index", settings=s)
        loaded, emb, reader = load_index(Path(tmp) / "index"), get_embedder(s), get_reader(s)
        print(f"{args.set}: {len(sample)} questions (seed {args.seed}), {stats.documents} documents, "
              f"{stats.chunks} chunks; replayed", flush=True)
        sws = args.sentence_weights if args.sentence_weights is not None else [s.sentence_weight]
        hits = {(spec, sw, by): [0, 0] for by in args.asked for sw in sws for spec in specs}
        for n, (question, ok, asked) in enumerate(sample, 1):
            done: dict[str, object] = {}
            for spec, sw, by in hits:
                ranking = rank_many(loaded, emb, [question], max(5, *(d for d, _, _ in specs)),
                                    replace(s, sentence_weight=sw), asked=[asked if by == "on" else None])[0]
                depth, weight, key = spec
                passages = merge(loaded, ranking, max(5, depth))
                if depth:
                    todo = [p.text for p in passages if p.text not in done]
                    done.update(zip(todo, reader.read(question, todo) if todo else []))
                    readings = [done[p.text] for p in passages]
                    passages = (rerank(question, passages, None, replace(s, rerank=depth, rerank_weight=weight),
                                       readings)[0]  # the product's own fusion
                                if key == "margin" else reorder(passages, readings, weight, key, s.rrf_k))
                hits[spec, sw, by][0] += any(ok(p) for p in passages[:1])
                hits[spec, sw, by][1] += any(ok(p) for p in passages[:5])
            if n % 50 == 0:
                print(f"  {n} questions", file=sys.stderr, flush=True)
        for ((depth, weight, key), sw, by), (h1, h5) in hits.items():
            print(f"sentences {sw:g} (standalone turns by themselves: {by}) rerank {depth:3d} weight {weight:g} by {key}: recall@1 {h1 / len(sample):.3f} "
                  f"recall@5 {h5 / len(sample):.3f}", flush=True)


if __name__ == "__main__":
    main()
