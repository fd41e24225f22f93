"""Dense search at 100k and 1M chunks: the index `qa` chooses by size vs exact (flat) search, same vectors, one run.

    python bench/scale.py [--sizes 100000,1000000] [--queries 200] [--plot docs/scale.png]

No corpus of a million chunks is at hand, so the vectors are synthetic but shaped like real ones. The packaged
MiniLM embeds the shared SQuAD set's paragraphs, sentences and questions once, and that measures:

- the covariance of real chunk embeddings (synthetic vectors are drawn with it, so they share its spectrum);
- how alike two paragraphs of one article are (mean cosine): chunks come in "articles" of 30, scattered around
  an article centre so that they are as alike as that;
- how alike a question and its paragraph are (median cosine): each query is a random chunk moved away by noise
  until the two are as alike as that.

Queries so far from their targets are hard for any approximate index, which is the honest case: a user's question
is far from every chunk. Recall@10 is against exact search over the same vectors. Latency is one query at a time
on one thread (the other core is the reader's), median over the queries. Memory is the serialised index, which is
what the loaded index holds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qa  # noqa: E402
from qa.local_store import dense_index_plan, make_dense_index, tune_dense_index  # noqa: E402

PER_ARTICLE = 30


def real_statistics(squad: str) -> dict:
    """Covariance and two similarities of real MiniLM embeddings of the shared SQuAD set."""
    import pysbd

    from qa.embeddings import get_embedder
    from qa.evaluation import load_squad

    seg = pysbd.Segmenter(language="en", clean=False)
    texts, paragraphs, article_of, questions, paragraph_of = [], [], [], [], []
    for a_i, art in enumerate(load_squad(squad)):
        for p in art["paragraphs"]:
            paragraphs.append(p["context"])
            article_of.append(a_i)
            texts += [p["context"], *seg.segment(p["context"])]
            for q in p["qas"]:
                questions.append(q["question"])
                paragraph_of.append(len(paragraphs) - 1)
    emb = get_embedder(qa.Settings(progress=False, model_process=False))
    T, P, Q = emb.encode(texts), emb.encode(paragraphs), emb.encode(questions)
    art = np.array(article_of)
    same = (art[:, None] == art[None, :]) & ~np.eye(len(art), dtype=bool)
    return {
        "mean": T.mean(0), "cov": np.cov(T - T.mean(0), rowvar=False), "n_texts": len(T),
        "within_article": float((P @ P.T)[same].mean()),
        "question_paragraph": float(np.median((Q * P[paragraph_of]).sum(1))),
    }


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n: int, n_queries: int, stats: dict, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w, V = np.linalg.eigh(stats["cov"])
    shape = (np.sqrt(np.clip(w, 0, None))[:, None] * V.T).astype(np.float32)  # z @ shape ~ N(0, cov)
    spread = float(np.sqrt(np.clip(w, 0, None).sum()))
    noise = shape / spread  # unit expected norm, the covariance's shape
    d = len(w)
    # cos(c + a e1, c + a e2) ~ 1 / (1 + a^2) for unit c and unit-norm noise; solve for the measured similarities.
    a = np.sqrt(1 / stats["within_article"] - 1)
    b = np.sqrt(1 / stats["question_paragraph"] ** 2 - 1)
    centres = _unit(stats["mean"] + rng.standard_normal((max(1, n // PER_ARTICLE), d), dtype=np.float32) @ shape)
    X = np.empty((n, d), np.float32)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        X[i : i + m] = _unit(centres[rng.integers(0, len(centres), m)]
                             + a * (rng.standard_normal((m, d), dtype=np.float32) @ noise))
    targets = rng.integers(0, n, n_queries)
    Xq = _unit(X[targets] + b * (rng.standard_normal((n_queries, d), dtype=np.float32) @ noise))
    return X, Xq


def timed_search(index, Xq: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    ids = np.zeros((len(Xq), k), dtype=np.int64)
    lat = []
    for i in range(len(Xq)):
        t0 = time.perf_counter()
        _, ids[i : i + 1] = index.search(Xq[i : i + 1], k)
        lat.append(time.perf_counter() - t0)
    return ids, statistics.median(lat) * 1000


def recall(truth: np.ndarray, got: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, got)]))


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", default=str(ROOT.parent / "shared" / "data" / "squad2-dev-5-articles.json"))
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--plot", default=str(ROOT / "docs" / "scale.png"))
    args = ap.parse_args()

    settings = qa.Settings(progress=False, model_process=False)
    stats = real_statistics(args.squad)
    print(f"real MiniLM statistics from {stats['n_texts']} SQuAD texts: paragraphs of one article cos "
          f"{stats['within_article']:.3f}, question vs its paragraph cos {stats['question_paragraph']:.3f}")
    faiss.omp_set_num_threads(1)
    fractions = sorted({1 / 32, 1 / 16, 1 / 8, settings.ann_probe_fraction, 1 / 2})
    curves = {}
    for n in [int(s) for s in args.sizes.split(",")]:
        X, Xq = synthetic(n, args.queries, stats)
        flat = faiss.IndexFlatIP(X.shape[1])
        flat.add(X)
        faiss.omp_set_num_threads(2)
        _, truth = flat.search(Xq, 10)  # batched, both cores: ground truth only
        faiss.omp_set_num_threads(1)
        _, flat_ms = timed_search(flat, Xq[: min(len(Xq), 30)], 10)
        flat_mb = faiss.serialize_index(flat).nbytes / 1e6
        del flat
        plan = dense_index_plan(n, X.shape[1], settings)
        t0 = time.perf_counter()
        index = make_dense_index(X, plan)
        build_s = time.perf_counter() - t0
        ann_mb = faiss.serialize_index(index).nbytes / 1e6
        print(f"\n{n:,} chunks x {X.shape[1]}: qa picks {plan['factory']} (nprobe {plan['nprobe']} of "
              f"{plan['nlist']}, k_factor {plan['k_factor']}), built in {build_s:.0f} s (1 thread for search)")
        print(f"  {'variant':<40} {'p50 ms':>8} {'recall@10':>9} {'memory':>9}")
        print(f"  {'exact (IndexFlatIP)':<40} {flat_ms:8.2f} {1.0:9.3f} {flat_mb:7.0f} MB")
        rows = []
        for frac in fractions:
            p = {**plan, "nprobe": max(1, round(plan["nlist"] * frac))}
            tune_dense_index(index, p)
            got, ms = timed_search(index, Xq, 10)
            r = recall(truth, got)
            mark = "  <- default" if frac == settings.ann_probe_fraction else ""
            rows.append((frac, ms, r))
            print(f"  {'nprobe ' + str(p['nprobe']) + f' ({frac:.0%} of lists)':<40} {ms:8.2f} {r:9.3f} "
                  f"{ann_mb:7.0f} MB{mark}")
        tune_dense_index(index, plan)
        _, ms100 = timed_search(index, Xq, settings.candidates)
        d_ms = next(ms for f, ms, _ in rows if f == settings.ann_probe_fraction)
        d_r = next(r for f, _, r in rows if f == settings.ann_probe_fraction)
        print(f"  default vs exact: {flat_ms / d_ms:.0f}x faster, {flat_mb / ann_mb:.1f}x smaller, recall@10 {d_r:.3f}; "
              f"k={settings.candidates} (what qa.search asks for) p50 {ms100:.2f} ms")
        curves[n] = {"rows": rows, "flat_ms": flat_ms, "ann_mb": ann_mb, "flat_mb": flat_mb}
        del index, X

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3.6))
        for (n, c), color in zip(curves.items(), ["#60a5fa", "#1d4ed8", "#111827"]):
            ax.plot([r[1] for r in c["rows"]], [r[2] for r in c["rows"]], "o-", color=color,
                    label=f"{n:,}: IVF-PQ4fs+SQ8 ({c['ann_mb']:.0f} MB)")
            for frac, ms, r in c["rows"]:
                if frac == settings.ann_probe_fraction:
                    ax.plot([ms], [r], "s", color=color, markersize=10, fillstyle="none")
            ax.plot([c["flat_ms"]], [1.0], "x", color=color, markersize=9,
                    label=f"{n:,}: exact flat ({c['flat_mb']:.0f} MB)")
        ax.axhline(0.95, color="#9ca3af", lw=0.8, ls="--")
        ax.axvline(5, color="#9ca3af", lw=0.8, ls="--")
        ax.set_xscale("log")
        ax.set_xlabel("p50 ms per query, 1 thread (log)")
        ax.set_ylabel("recall@10 vs exact")
        ax.set_title("Dense search on synthetic MiniLM-shaped chunks (square: default nprobe)", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
