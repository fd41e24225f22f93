"""Retrieval by chunk size: one index per size over the same articles, fused search (no reranking), side by side.

    python bench/chunk_size.py [squad-train-60 | FILE.json] [--questions 1000] [--sizes 128:32,200:48,256:48]

``squad-train-60`` (the default, a tuning corpus): 60 articles of squad1.1-train.json drawn with seed 3, each
written with its title as its first line, as real documents have one; long articles, like COVID-QA's papers,
and not a test set. A FILE is any SQuAD-format file (the COVID-QA file is a public test set: report it, don't
choose on it). Each size is ``chunk_tokens:chunk_overlap_tokens``; the shipped default is 200:48.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.config import Settings  # noqa: E402
from qa.evaluation import evaluate_retrieval, load_squad, write_corpus  # noqa: E402
from qa.index import build_index  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def articles(which: str) -> list[dict]:
    if which != "squad-train-60":
        return load_squad(which)
    arts = random.Random(3).sample(load_squad(DATA / "squad1.1-train.json"), 60)
    return [{**a, "paragraphs": [{"context": a["title"].replace("_", " "), "qas": []}, *a["paragraphs"]]}
            for a in arts]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", nargs="?", default="squad-train-60")
    ap.add_argument("--questions", type=int, default=1000, help="answerable questions sampled (seed 1)")
    ap.add_argument("--sizes", default="128:32,200:48,256:48")
    args = ap.parse_args(argv)
    arts = articles(args.corpus)
    base = Settings.from_env(progress=False, rerank=0)
    print(f"{args.corpus}: {len(arts)} articles; fused search, no reranking")
    for size in args.sizes.split(","):
        tokens, overlap = (int(x) for x in size.split(":"))
        s = dataclasses.replace(base, chunk_tokens=tokens, chunk_overlap_tokens=overlap)
        with tempfile.TemporaryDirectory() as tmp:
            qs = [q for q in write_corpus(arts, Path(tmp) / "docs") if not q.impossible]
            qs = random.Random(1).sample(qs, min(args.questions, len(qs)))
            t0 = time.perf_counter()
            stats = build_index(Path(tmp) / "docs", Path(tmp) / "index", settings=s)
            built = time.perf_counter() - t0
            r = evaluate_retrieval(qs, Path(tmp) / "index", s)
        print(f"  {tokens:>3}:{overlap:<3} {stats.chunks:5d} chunks, built in {built:4.0f} s   "
              f"R@1 {r['recall@1']:.3f}  R@5 {r['recall@5']:.3f}  R@10 {r['recall@10']:.3f}  "
              f"MRR@10 {r['mrr@10']:.3f}  ({r['questions']} questions)", flush=True)


if __name__ == "__main__":
    main()
