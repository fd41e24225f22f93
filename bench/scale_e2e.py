"""The million-chunk path end to end, in both stores: build throughput, `qa.search` latency, peak memory, disk.

    python bench/scale_e2e.py [--sizes 1000000] [--stores local,milvus.db] [--queries 200] [--work /tmp/qa-scale]

Chunks are synthetic, made in memory rather than read from files (reading and chunking are not timed):
- vectors drawn as bench/scale.py draws them, with the covariance and similarities of real MiniLM embeddings of
  the shared SQuAD set, in articles of 30 chunks;
- text of 100 words a chunk, drawn from the SQuAD set's word frequencies (Zipf-like, as real text is), a fifth of
  the words from a vocabulary of 60 words peculiar to the chunk's article;
- each question is 8 words of its target chunk, with a vector as far from the chunk's as a real question's is.

Each store is built by `store.write` (the step after embedding in `qa.build_index`: the dense index, BM25, the
chunk files or the Milvus inserts), in a process of its own, and then searched by `qa.search` (dense + BM25 +
fusion + fetching the passages' text; no rerank) in a fresh process, one question at a time. Peak RSS is that
process's (ru_maxrss); disk is the index folder or the Milvus Lite file.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WORDS_PER_CHUNK = 100
PER_ARTICLE = 30


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _disk_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def vocabulary(squad: str) -> tuple[list[str], np.ndarray]:
    from qa.evaluation import load_squad

    counts: Counter = Counter()
    for art in load_squad(squad):
        for p in art["paragraphs"]:
            counts.update(re.findall(r"[A-Za-z][a-z]+|\d+", p["context"]))
    words = [w for w, _ in counts.most_common()]
    freq = np.array([counts[w] for w in words], dtype=np.float64)
    return words, freq / freq.sum()


def make_chunks(n: int, words: list[str], p: np.ndarray, seed: int = 0):
    from qa.chunking import Chunk

    rng = np.random.default_rng(seed)
    vocab = np.array(words, dtype=object)
    chunks, sentences, files = [], [], {}
    for a in range(0, n, PER_ARTICLE):
        source = f"a{a // PER_ARTICLE:07d}.txt"
        own = rng.choice(len(words), 60, replace=False)
        pos = 0
        m = min(PER_ARTICLE, n - a)
        ids = rng.choice(len(words), (m, WORDS_PER_CHUNK), p=p)
        mask = rng.random((m, WORDS_PER_CHUNK)) < 0.2
        ids[mask] = own[rng.integers(0, 60, int(mask.sum()))]
        for j in range(m):
            text = " ".join(vocab[ids[j]]) + "."
            cid = len(chunks)
            chunks.append(Chunk(cid, source, f"Article {a // PER_ARTICLE}", pos, pos + len(text), text, f"{cid:064x}"))
            sentences.append((cid, pos, pos + len(text)))
            pos += len(text) + 2
        files[source] = {"sha256": "", "title": f"Article {a // PER_ARTICLE}", "chunks": m}
    return chunks, np.array(sentences, dtype=np.int64), files


def build(store_name: str, n: int, work: Path, squad: str, queries: int) -> dict:
    from scale import real_statistics, synthetic

    import qa
    from qa.index import open_store
    from qa.local_store import dense_index_plan

    stats_file = work / "stats.npz"
    if stats_file.exists():
        z = np.load(stats_file)
        stats = {k: z[k] for k in z.files}
    else:
        stats = real_statistics(squad)
        np.savez(stats_file, **{k: np.asarray(v) for k, v in stats.items()})
    X, Xq = synthetic(n, queries, {k: (float(v) if np.ndim(v) == 0 else v) for k, v in stats.items()})
    words, p = vocabulary(squad)
    t0 = time.perf_counter()
    chunks, sentences, files = make_chunks(n, words, p)
    make_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    # Each query vector was drawn near a random chunk; find which, and take 8 of its words as the question.
    targets = np.argmax(Xq @ X[: min(n, 200_000)].T, axis=1) if n <= 200_000 else None
    if targets is None:
        targets = np.array([int(np.argmax(X @ q)) for q in Xq])
    qtexts = []
    for t in targets:
        ws = chunks[int(t)].text.rstrip(".").split()
        qtexts.append(" ".join(rng.choice(ws, 8, replace=False)) + "?")
    np.save(work / "queries.npy", Xq)
    (work / "queries.json").write_text(json.dumps({"questions": qtexts, "targets": targets.tolist()}))
    settings = qa.Settings(embedder="synthetic", store=store_name, progress=False, model_process=False)
    core = {"embedder": {"name": "synthetic", "dimension": X.shape[1], "max_tokens": 256},
            "sentence_table": 1, "faiss": dense_index_plan(n, X.shape[1], settings), "chunking": {},
            "files": files, "duplicates": {}, "skipped": [], "scanned": {}}
    store = open_store(work / "index", settings)
    if store_name == "local":
        (work / "index").mkdir()
    t0 = time.perf_counter()
    store.write(work / "docs", chunks, X, core, sentences)  # publishes the generation, as a build does
    build_s = time.perf_counter() - t0
    return {"store": store_name, "chunks": n, "make_chunks_s": round(make_s, 1), "build_s": round(build_s, 1),
            "chunks_per_s": round(n / build_s), "build_peak_rss_mb": round(_rss_mb())}


def query(store_name: str, work: Path) -> dict:
    import qa
    from qa.index import open_store

    Xq = np.load(work / "queries.npy")
    q = json.loads((work / "queries.json").read_text())
    vec = {text: Xq[i] for i, text in enumerate(q["questions"])}

    class Lookup:
        name, dimension, max_tokens = "synthetic", Xq.shape[1], 256

        def encode(self, texts):
            return np.stack([vec[t] for t in texts])

        def count_tokens(self, texts):
            return [len(t.split()) for t in texts]

    qa.register_embedder("synthetic", lambda s: Lookup())
    settings = qa.Settings(embedder="synthetic", store=store_name, progress=False, model_process=False, rerank=0,
                           auto_refresh=False, threads=1)
    t0 = time.perf_counter()
    open_store(work / "index", settings).load()
    load_s = time.perf_counter() - t0
    lat, found = [], 0
    for text, target in zip(q["questions"], q["targets"]):
        t0 = time.perf_counter()
        passages = qa.search(text, k=5, index_dir=work / "index", settings=settings)
        lat.append(time.perf_counter() - t0)
        found += any(p.source == f"a{target // PER_ARTICLE:07d}.txt" for p in passages)
    lat.sort()
    disk = _disk_mb(Path(store_name) if store_name != "local" else work / "index")
    return {"load_s": round(load_s, 1), "search_p50_ms": round(1000 * statistics.median(lat), 1),
            "search_p95_ms": round(1000 * lat[int(0.95 * (len(lat) - 1))], 1),
            "target_article_in_top5": round(found / len(lat), 3), "query_peak_rss_mb": round(_rss_mb()),
            "disk_mb": round(disk)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--stores", default="local,milvus.db", help="comma-separated: local and/or Milvus URIs")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--work", default="/tmp/qa-scale")
    ap.add_argument("--squad", default=str(ROOT.parent / "shared" / "data" / "squad2-dev-5-articles.json"))
    ap.add_argument("--phase", choices=["build", "query"], help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        work = Path(args.work)
        out = (build(args.store, int(args.sizes), work, args.squad, args.queries) if args.phase == "build"
               else query(args.store, work))
        print(json.dumps(out), flush=True)
        return
    for n in [int(s) for s in args.sizes.split(",")]:
        for store in args.stores.split(","):
            work = Path(args.work) / f"{n}-{re.sub(r'[^a-z0-9]', '_', store)}"
            stats = Path(args.work) / "stats.npz"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            if stats.exists():
                shutil.copy(stats, work / "stats.npz")
            store_uri = store if store == "local" or "://" in store else str(work / store)
            row = {}
            for phase in ("build", "query"):
                p = subprocess.run([sys.executable, __file__, "--phase", phase, "--store", store_uri, "--sizes",
                                    str(n), "--work", str(work), "--queries", str(args.queries), "--squad",
                                    args.squad], capture_output=True, text=True)
                if p.returncode:
                    print(p.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"{phase} failed for {store}")
                row.update(json.loads(p.stdout.strip().splitlines()[-1]))
            if (work / "stats.npz").exists() and not stats.exists():
                shutil.copy(work / "stats.npz", stats)
            row["store"] = store
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
