"""Two readers on the same held-out questions, paragraph given, with paired bootstrap intervals for the difference.

    python bench/reader_pair.py --against 07efa7c [--reader qa/weights/reader.int8.onnx] [--resamples 1000]

``--against`` is a git revision (its qa/weights/reader.int8.onnx) or an int8 ONNX file. The questions are the 867
answerable and 934 unanswerable ones of the 5 SQuAD 2.0 tuning articles that every training stage holds out, read
as ``train_reader.evaluate`` reads them. Printed for each reader and for the difference: F1 of the best span, the
share of unanswerable questions refused at the margin refusing 10 % of the answerable ones, and the ROC AUC of the
no-answer margin (answerable against unanswerable: the separation whatever the threshold). The intervals resample
questions; with only 5 articles, the spread between articles is not in them.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rows(path: Path, held_out: list[dict]) -> list[tuple[bool, float, float]]:
    from qa.reading import OnnxReader
    from qa.weights.train_reader import f1

    reader = OnnxReader(path, threads=1, verify=False)
    out = []
    for ex in held_out:
        reading = reader.read(ex["question"], [ex["context"]])[0]
        text = ex["context"][reading.best.start:reading.best.end] if reading.best else ""
        out.append((bool(ex["answer_text"]), reading.margin, max((f1(text, g) for g in ex["gold"]), default=0.0)))
    return out


def figures(r: list[tuple[bool, float, float]], idx: list[int]) -> np.ndarray:
    ans = np.array([r[i][1] for i in idx if r[i][0]])
    imp = np.array([r[i][1] for i in idx if not r[i][0]])
    cut = np.sort(ans)[int(0.10 * len(ans))]
    ranks = np.concatenate([ans, imp]).argsort().argsort() + 1
    auc = (ranks[:len(ans)].sum() - len(ans) * (len(ans) + 1) / 2) / (len(ans) * len(imp))
    return np.array([np.mean([r[i][2] for i in idx if r[i][0]]), np.mean(imp < cut), auc])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reader", type=Path, default=ROOT / "qa" / "weights" / "reader.int8.onnx")
    ap.add_argument("--against", required=True, help="git revision or int8 ONNX file")
    ap.add_argument("--resamples", type=int, default=1000)
    args = ap.parse_args(argv)
    from qa.weights.train_reader import examples

    other = Path(args.against)
    with tempfile.TemporaryDirectory() as tmp:
        if not other.is_file():
            blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.against}:qa/weights/reader.int8.onnx"],
                                  capture_output=True, check=True).stdout
            other = Path(tmp) / "against.int8.onnx"
            other.write_bytes(blob)
        _, held_out = examples(13, 22_000, 0.15)  # the held-out part does not depend on the sample's size
        new, old = rows(args.reader, held_out), rows(other, held_out)
    full = list(range(len(held_out)))
    rng = random.Random(0)
    diffs = []
    for _ in range(args.resamples):
        idx = [rng.randrange(len(full)) for _ in full]
        diffs.append(figures(new, idx) - figures(old, idx))
    lo, hi = np.percentile(np.array(diffs), [2.5, 97.5], axis=0)
    a, b = figures(new, full), figures(old, full)
    for k, name in enumerate(("F1, paragraph given", "refused at 10 % false refusals", "ROC AUC of the margin")):
        print(f"{name:32} {a[k]:.4f} vs {b[k]:.4f}  difference {a[k] - b[k]:+.4f} (95 % {lo[k]:+.4f} to {hi[k]:+.4f})")


if __name__ == "__main__":
    main()
