"""Retrieval quality on a SQuAD-format set: dense only, BM25 only and the hybrid fusion, side by side.

    python bench/retrieval.py [../shared/data/squad2-dev-5-articles.json] [--grid]

Builds one index in a temporary folder, then scores each variant on the same index and questions, fusion alone
(no reranking). ``--grid`` adds the fusion weights around the defaults (BM25 weight x RRF constant): run it on a
tuning set (squad2-dev-15-tuning-articles.json), never to choose on the public one.
"""

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from qa.config import Settings
from qa.evaluation import evaluate_retrieval, load_squad, write_corpus
from qa.index import build_index

args = [a for a in sys.argv[1:] if a != "--grid"]
path = args[0] if args else str(Path(__file__).resolve().parents[2] / "shared/data/squad2-dev-5-articles.json")
base = Settings.from_env(progress=False, rerank=0)
variants = {
    "dense only": dataclasses.replace(base, bm25_weight=0.0),
    "BM25 only": dataclasses.replace(base, dense_weight=0.0),
    "hybrid (default)": base,
}
if "--grid" in sys.argv:
    for w in (1.0, 1.5, 2.0):
        for k in (5.0, 10.0, 30.0, 60.0):
            variants[f"bm25 {w:g}, rrf {k:g}"] = dataclasses.replace(base, bm25_weight=w, rrf_k=k)
with tempfile.TemporaryDirectory() as tmp:
    questions = write_corpus(load_squad(path), Path(tmp) / "docs")
    t0 = time.perf_counter()
    stats = build_index(Path(tmp) / "docs", Path(tmp) / "index", settings=base)
    print(f"indexed {stats.documents} articles into {stats.chunks} chunks in {time.perf_counter() - t0:.1f} s")
    print(f"{'variant':<18} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7}")
    for name, s in variants.items():
        r = evaluate_retrieval(questions, Path(tmp) / "index", s)
        print(f"{name:<18} {r['recall@1']:6.3f} {r['recall@5']:6.3f} {r['recall@10']:6.3f} {r['mrr@10']:7.3f}")
