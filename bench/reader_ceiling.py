"""Two ways past the reader's ceiling that need no retraining, measured on the held-out tuning articles, paragraph given.

    python bench/reader_ceiling.py [--steps probe ensemble base] [--other REV] [--base DIR]

- ``probe``: does the reader's last hidden layer know more than its "no answer" score? The shipped int8 graph is
  given one more output (layer 6's normalised hidden state, no weight changed); for each of the 1,801 questions
  the window's [CLS] vector, the mean over the question's and the passage's pieces and the best span's first piece
  feed a logistic regression beside the margin, the "no answer" score and the best span's score. Checked by
  leave-one-article-out (5 folds): ROC AUC of answerable against not, and of "right" (F1 >= 0.5) against not,
  with the share of unanswerable questions refused at 10 % false refusals, for several C.
- ``ensemble``: two readers' span margins averaged, span by span (a span only one reader kept gets that reader's
  lowest kept margin): F1 of the best span on answerable questions, no-answer AUC and the refusal share, by the
  second reader's weight. The second reader is the one shipped at ``--other`` (default ee55880: recipe 128,
  four stages), read from git.

- ``base``: what a larger base model would cost to read with: ``--base`` (a transformers folder, for example
  all-mpnet-base-v2, 12 layers of 768 against MiniLM's 6 of 384) with an untrained QA head, exported to ONNX and
  quantised as the shipped reader is (int8 per channel), then 10 windows of 384 random pieces read by each, 2
  threads, median of 5, the two alternating, twice. Its training speed: ``python bench/train_speed.py --base DIR``.

The same figures the model card's ``evaluate()`` gives for one reader (qa/weights/train_reader.py).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.weights import train_reader as tr  # noqa: E402

SHIPPED = ROOT / "qa" / "weights" / "reader.int8.onnx"
HIDDEN = "/inner/bert/encoder/layer.5/output/LayerNorm/LayerNormalization_output_0"


def _refused(scores, answerable) -> float:
    import numpy as np

    cut = np.quantile(scores[answerable == 1], 0.10)
    return float((scores[answerable == 0] < cut).mean())


def probe(held: list[dict], work: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from qa.reading import OnnxReader

    graph = onnx.load(str(SHIPPED))
    graph.graph.output.append(onnx.helper.make_tensor_value_info(HIDDEN, onnx.TensorProto.FLOAT,
                                                                 ["batch", "tokens", 384]))
    tapped = work / "reader_hidden.onnx"
    onnx.save(graph, str(tapped))
    reader = OnnxReader(SHIPPED, threads=2).load()
    session = ort.InferenceSession(str(tapped), providers=["CPUExecutionProvider"])
    article = {p["context"]: a["title"] for a in tr._load("squad2-dev-15-tuning-articles.json")
               for p in a["paragraphs"]}
    rows, t0 = [], time.time()
    for ex in held:
        reading = reader.read(ex["question"], [ex["context"]])[0]
        enc = reader._windows(ex["question"], [ex["context"]])[0][1]  # the first window: a paragraph fits one
        *_, h = session.run(None, {"input_ids": np.array([enc.ids]), "attention_mask": np.array([enc.attention_mask]),
                                   "token_type_ids": np.array([enc.type_ids])})
        h = h[0]
        ctx = np.array([s == 1 for s in enc.sequence_ids])
        q = np.array([s == 0 for s in enc.sequence_ids])
        first = 0
        if reading.best:
            at = [i for i, (a, b) in enumerate(enc.offsets) if ctx[i] and a <= reading.best.start < max(b, a + 1)]
            first = at[0] if at else 0
        text = ex["context"][reading.best.start:reading.best.end] if reading.best else ""
        rows.append({"article": article[ex["context"]], "answerable": bool(ex["answer_text"]),
                     "right": bool(ex["answer_text"]) and max(tr.f1(text, g) for g in ex["gold"]) >= 0.5,
                     "base": [reading.margin, reading.null, reading.best.score if reading.best else -1e9],
                     "cls": h[0], "passage": h[ctx].mean(0), "question": h[q].mean(0), "span": h[first]})
    print(f"probe: {len(rows)} questions read in {time.time() - t0:.0f} s", flush=True)
    articles = np.array([r["article"] for r in rows])
    answerable = np.array([r["answerable"] for r in rows], dtype=int)
    right = np.array([r["right"] for r in rows], dtype=int)
    base = np.array([r["base"] for r in rows])

    def out_of_fold(x, y, c):
        p = np.zeros(len(y))
        for a in sorted(set(articles)):
            test = articles == a
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
            p[test] = model.fit(x[~test], y[~test]).predict_proba(x[test])[:, 1]
        return p

    print(f"{'inputs':<34} {'C':>6} {'AUC answerable':>14} {'refused @10%':>12} {'AUC right':>9}")
    for kind in ("", "cls", "passage", "question", "span", "cls+span", "cls+passage+question+span"):
        x = np.hstack([base] + [np.array([r[k] for r in rows]) for k in kind.split("+") if k])
        for c in ((1.0,) if not kind else (0.001, 0.003, 0.01, 0.03)):
            pa, pr = out_of_fold(x, answerable, c), out_of_fold(x, right, c)
            print(f"{'scores' + (' + ' + kind if kind else ''):<34} {c:>6} {roc_auc_score(answerable, pa):>14.3f} "
                  f"{_refused(pa, answerable):>12.3f} {roc_auc_score(right, pr):>9.3f}", flush=True)


def ensemble(held: list[dict], work: Path, other: str) -> None:
    import json

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from qa.reading import OnnxReader

    folder = work / "other"
    folder.mkdir()
    for name in ("reader.int8.onnx", "reader.json"):
        (folder / name).write_bytes(subprocess.run(["git", "show", f"{other}:qa/weights/{name}"], cwd=ROOT,
                                                   check=True, capture_output=True).stdout)
    training = json.loads((folder / "reader.json").read_text(encoding="utf-8")).get("training", {})
    a = OnnxReader(SHIPPED, threads=2).load()
    b = OnnxReader(folder / "reader.int8.onnx", threads=2, max_length=training.get("max_length", 128),
                   overlap=training.get("stride", 32)).load()
    t0 = time.time()
    rows = [(ex, a.read(ex["question"], [ex["context"]])[0], b.read(ex["question"], [ex["context"]])[0])
            for ex in held]
    print(f"ensemble: {len(rows)} questions read by both in {time.time() - t0:.0f} s (the other: {other}, "
          f"{training.get('max_length')}-piece windows)", flush=True)
    print(f"{'weight of the other':>19} {'F1':>6} {'AUC':>6} {'refused @10%':>12}")
    for w in (0.0, 0.2, 0.3, 0.4, 0.5, 1.0):
        f1s, answerable, margins = [], [], []
        for ex, ra, rb in rows:
            da = {(s.start, s.end): s.score - ra.null for s in ra.spans}
            db = {(s.start, s.end): s.score - rb.null for s in rb.spans}
            fa, fb = min(da.values(), default=-20.0), min(db.values(), default=-20.0)
            score = {k: (1 - w) * da.get(k, fa) + w * db.get(k, fb) for k in set(da) | set(db)}
            best = max(score, key=score.get) if score else None
            if ex["answer_text"]:
                text = ex["context"][best[0]:best[1]] if best else ""
                f1s.append(max(tr.f1(text, g) for g in ex["gold"]))
            answerable.append(int(bool(ex["answer_text"])))
            margins.append(score[best] if best else -1e9)
        answerable, margins = np.array(answerable), np.array(margins)
        print(f"{w:>19} {np.mean(f1s):>6.4f} {roc_auc_score(answerable, margins):>6.4f} "
              f"{_refused(margins, answerable):>12.3f}", flush=True)


def base(work: Path, folder: Path) -> None:
    import statistics

    import numpy as np
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(folder).eval()
    types = getattr(model.config, "type_vocab_size", 0) > 1  # MPNet has no token types

    class Outputs(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask)
            return out.start_logits, out.end_logits

    dummy = torch.ones(1, 16, dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    fp32, int8 = work / "base.fp32.onnx", work / "base.int8.onnx"
    torch.onnx.export(Outputs(model), (dummy, dummy), str(fp32), input_names=["input_ids", "attention_mask"],
                      output_names=["start_logits", "end_logits"],
                      dynamic_axes={n: axes for n in ("input_ids", "attention_mask", "start_logits", "end_logits")},
                      opset_version=17, dynamo=False)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)

    def seconds(path: Path, with_types: bool) -> float:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        ids = np.random.default_rng(0).integers(1000, 20000, size=(10, 384)).astype(np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids),
                **({"token_type_ids": np.zeros_like(ids)} if with_types else {})}
        session.run(None, feed)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    for _ in range(2):
        shipped, other = seconds(SHIPPED, True), seconds(int8, types)
        print(f"10 windows of 384, int8, 2 threads: shipped reader {shipped:.3f} s, {folder.name} {other:.3f} s "
              f"({other / shipped:.1f}x; {int8.stat().st_size / 1e6:.0f} MB)", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", nargs="+", choices=("probe", "ensemble", "base"), default=["probe", "ensemble"])
    ap.add_argument("--other", default="ee55880", help="the git revision whose shipped reader is the second one")
    ap.add_argument("--base", type=Path, help="a larger base model's folder, for the base step")
    args = ap.parse_args(argv)
    if "base" in args.steps and not args.base:
        ap.error("the base step needs --base DIR (a transformers model folder)")
    held = tr.examples(13, 0, 0.0)[1]
    with tempfile.TemporaryDirectory() as tmp:
        if "probe" in args.steps:
            probe(held, Path(tmp))
        if "ensemble" in args.steps:
            ensemble(held, Path(tmp), args.other)
        if "base" in args.steps:
            base(Path(tmp), args.base)


if __name__ == "__main__":
    main()
