"""Retrieval quality on the shared SQuAD set: dense only, BM25 only and the hybrid fusion, side by side.

    python bench/retrieval.py [../shared/data/squad2-dev-5-articles.json]

Builds one index in a temporary folder, then scores each variant on the same index and questions.
"""

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from qa.config import Settings
from qa.evaluation import evaluate_retrieval, load_squad, write_corpus
from qa.index import build_index

path = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parents[2] / "shared/data/squad2-dev-5-articles.json")
base = Settings.from_env(progress=False)
variants = {
    "dense only": dataclasses.replace(base, bm25_weight=0.0),
    "BM25 only": dataclasses.replace(base, dense_weight=0.0),
    "hybrid (default)": base,
}
with tempfile.TemporaryDirectory() as tmp:
    questions = write_corpus(load_squad(path), Path(tmp) / "docs")
    t0 = time.perf_counter()
    stats = build_index(Path(tmp) / "docs", Path(tmp) / "index", settings=base)
    print(f"indexed {stats.documents} articles into {stats.chunks} chunks in {time.perf_counter() - t0:.1f} s")
    print(f"{'variant':<18} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'MRR@10':>7}")
    for name, s in variants.items():
        r = evaluate_retrieval(questions, Path(tmp) / "index", s)
        print(f"{name:<18} {r['recall@1']:6.3f} {r['recall@5']:6.3f} {r['recall@10']:6.3f} {r['mrr@10']:7.3f}")
