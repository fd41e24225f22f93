"""Embedding throughput: plain ``SentenceTransformer.encode`` vs the ONNX backends, on the same chunks, one process.

    python bench/embed_speed.py [--squad ../shared/data/squad2-dev-5-articles.json] [--runs 7] [--plot docs/embed_speed.png]

Chunks are those of the shared SQuAD set (chunked once with the packaged tokenizer). Each variant embeds all of
them `--runs` times, interleaved; the median is reported, with chunks/s and the ratio to the plain path (and the
range of the ratios within one round). Recall@5
on the set's answerable questions is then measured with an index built by each backend (query and chunks embedded
by the same backend), so the speed-up is quoted together with what it costs in retrieval.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import qa  # noqa: E402
from qa.embeddings import OnnxEmbedder, SentenceTransformerEmbedder, _model_path  # noqa: E402
from qa.evaluation import evaluate_retrieval, load_squad, write_corpus  # noqa: E402
from qa.local_store import load_index  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--squad", default=str(ROOT.parent / "shared" / "data" / "squad2-dev-5-articles.json"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--plot", default=str(ROOT / "docs" / "embed_speed.png"))
    args = ap.parse_args()

    base = qa.Settings(progress=False, model_process=False)
    work = Path(tempfile.mkdtemp(prefix="qa-embed-bench-"))
    questions = write_corpus(load_squad(args.squad), work / "docs")
    qa.build_index(work / "docs", work / "index-torch", settings=qa.Settings(progress=False, model_process=False, embedder_backend="torch"))
    texts = [c.text for c in load_index(work / "index-torch").chunks]

    st = SentenceTransformerEmbedder(base.embedder, "cpu", base.embed_batch_size, progress=False)
    variants = {
        "torch": lambda t: st.model.encode(t, batch_size=base.embed_batch_size, normalize_embeddings=True),
        "onnx": OnnxEmbedder(base.embedder, "onnx", base.cache_dir, base.onnx_batch_size).encode,
        "onnx-int8": OnnxEmbedder(base.embedder, "onnx-int8", base.cache_dir, base.onnx_batch_size).encode,
    }
    for f in variants.values():
        f(texts[:8])  # load and warm each one outside the timing
    times = {k: [] for k in variants}
    for _ in range(args.runs):
        for name, f in variants.items():
            time.sleep(1.0)  # let the previous variant's thread pool go idle (torch's OpenMP threads spin a while)
            t0 = time.perf_counter()
            f(texts)
            times[name].append(time.perf_counter() - t0)

    results = {}  # recall of each backend, with an index it built (after the timing, which it would disturb)
    for backend in ("torch", "onnx", "onnx-int8"):
        s = qa.Settings(progress=False, model_process=False, embedder_backend=backend)
        qa.build_index(work / "docs", work / f"index-{backend}", settings=s)
        results[backend] = {"recall": evaluate_retrieval(questions, work / f"index-{backend}", s)}

    import torch

    print(f"model {base.embedder} ({_model_path(base.embedder)}); {len(texts)} chunks; torch threads {torch.get_num_threads()}; "
          f"median of {args.runs} runs each, interleaved")
    print(f"{'variant':<44} {'chunks/s':>9} {'ratio':>7} {'per-round ratios':>17} {'recall@5':>9} {'recall@10':>9}")
    plain = statistics.median(times["torch"])
    rows = []
    for name in variants:
        med = statistics.median(times[name])
        r = results[name]["recall"]
        label = {"torch": "SentenceTransformer.encode (plain)", "onnx": f"onnx fp32, sorted, batch {base.onnx_batch_size}, parallel",
                 "onnx-int8": f"onnx int8, sorted, batch {base.onnx_batch_size}, parallel"}[name]
        rows.append((label, len(texts) / med, plain / med))
        # Each round times every variant back to back, so a round's ratio is unaffected by the machine's slow drifts.
        paired = sorted(p / t for p, t in zip(times["torch"], times[name]))
        spread = f"{paired[0]:.2f}-{paired[-1]:.2f}x"
        print(f"{label:<44} {len(texts) / med:9.1f} {plain / med:6.2f}x {spread:>17} {r['recall@5']:9.3f} "
              f"{r['recall@10']:9.3f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3))
        ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color=["#2563eb", "#60a5fa", "#9ca3af"])
        for i, r in enumerate(rows[::-1]):
            ax.text(r[1], i, f" {r[1]:.0f}/s ({r[2]:.2f}x)", va="center")
        ax.set_xlabel("chunks per second (higher is better)")
        ax.set_title(f"Embedding {len(texts)} SQuAD chunks (MiniLM-L6, 2 cores)", fontsize=10)
        ax.set_xlim(0, max(r[1] for r in rows) * 1.35)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
