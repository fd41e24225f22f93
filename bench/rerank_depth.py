"""Reranking depth on COVID-QA's long papers: recall@1/@5 and search time by how many fused passages the reader reads.

    python bench/rerank_depth.py [--questions 150] [--specs 0,5,10,10:4,20]   # DEPTH[:READER_WEIGHT]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.config import Settings  # noqa: E402
from qa.embeddings import get_embedder  # noqa: E402
from qa.evaluation import hit, load_squad, write_corpus  # noqa: E402
from qa.index import build_index  # noqa: E402
from qa.local_store import load_index  # noqa: E402
from qa.reading import get_reader  # noqa: E402
from qa.search import search_many  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/covid-qa.json"))
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--specs", default="0,5,10,10:4,20")
    args = ap.parse_args()
    s = Settings.from_env(progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        qs = write_corpus(load_squad(args.data), Path(tmp) / "docs")
        build_index(Path(tmp) / "docs", Path(tmp) / "index", settings=s)
        loaded, emb = load_index(Path(tmp) / "index"), get_embedder(s)
        sample = random.Random(1).sample([q for q in qs if not q.impossible], args.questions)
        for spec in args.specs.split(","):
            depth, weight = (int(spec.split(":")[0]), float(spec.split(":")[1])) if ":" in spec else (int(spec), 2.0)
            st = replace(s, rerank=depth, rerank_weight=weight)
            t0 = time.perf_counter()
            found = search_many(loaded, emb, [q.question for q in sample], 5, st, reader=get_reader(st) if depth else None)
            ms = 1000 * (time.perf_counter() - t0) / len(sample)
            r1, r5 = (sum(any(hit(p, q) for p in ps[:k]) for ps, q in zip(found, sample)) / len(sample) for k in (1, 5))
            print(f"rerank {depth:3d} weight {weight:g}: recall@1 {r1:.3f} recall@5 {r5:.3f}  {ms:.0f} ms per question",
                  flush=True)


if __name__ == "__main__":
    main()
