"""What int8 quantisation costs the reader: one trained checkpoint exported as fp32 ONNX and quantised as shipped
(dynamic int8, per channel) and otherwise, each scored on the held-out tuning articles, paragraph given, with the
same ``evaluate()`` that writes the model card, and timed.

    python bench/reader_precision.py [--checkpoint ~/.cache/qa/train_reader_384/stage2/final] [--recipe 384]
                                     [--variants shipped fp32 int8 int8-reduced uint8 int8-heads-fp32 int8-tensor]
    python bench/reader_precision.py --from-int8 qa/weights/reader.int8.onnx   # when the checkpoint is gone

- fp32: the exported graph as is (about 90 MB, 4x the shipped file);
- int8: as shipped (``quantize_dynamic``, QInt8 weights, per channel);
- int8-heads-fp32: as shipped, but the output heads (span and sentence) left in fp32;
- int8-tensor: int8 with one scale per tensor instead of per channel;
- int8-reduced: as shipped with ``reduce_range`` (7-bit weights): onnxruntime's advice for x86 CPUs with AVX2 but
  no VNNI, whose u8 x s8 products are summed in pairs into saturating 16-bit integers;
- uint8: uint8 weights (u8 x u8, which those CPUs multiply without saturating);
- shipped: qa/weights/reader.int8.onnx as it is, not exported again.

``--from-int8 ONNX`` rebuilds the checkpoint from int8 weights (``train_reader.from_int8``) when the torch one is
gone; its fp32 is then the dequantised int8, and int8 quantises it again onto the same grid.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.weights import train_reader as tr  # noqa: E402

VARIANTS = ("shipped", "fp32", "int8", "int8-reduced", "uint8", "int8-heads-fp32", "int8-tensor")


def variant(fp32: Path, name: str, out: Path) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if name == "fp32":
        return fp32
    if name == "shipped":
        return tr.WEIGHTS
    kw = {"weight_type": QuantType.QUInt8 if name == "uint8" else QuantType.QInt8,
          "per_channel": name != "int8-tensor", "reduce_range": name == "int8-reduced"}
    if name == "int8-heads-fp32":
        # The heads' MatMuls (qa_outputs, sentence_outputs): every MatMul outside the encoder's layers.
        graph = onnx.load(str(fp32)).graph
        kw["nodes_to_exclude"] = [n.name for n in graph.node if n.op_type == "MatMul" and "/encoder/" not in n.name]
    quantize_dynamic(str(fp32), str(out), **kw)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=Path.home() / ".cache/qa/train_reader_384/stage2/final")
    ap.add_argument("--from-int8", type=Path, metavar="ONNX", help="rebuild the checkpoint from these int8 weights")
    ap.add_argument("--recipe", default="384", choices=list(tr.RECIPES))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    from qa.reading import OnnxReader

    recipe = tr.RECIPES[args.recipe]
    held_out = tr.examples(args.seed, 0, 0.0)[1]
    import platform

    flags = {f for f in Path("/proc/cpuinfo").read_text().split() if f.startswith(("avx", "amx"))} \
        if Path("/proc/cpuinfo").is_file() else set()
    print(f"CPU {platform.processor() or platform.machine()}, {' '.join(sorted(flags)) or 'no AVX flags read'}")
    print(f"checkpoint {args.from_int8 or args.checkpoint}, {len(held_out)} held-out questions, {args.threads} threads", flush=True)
    with tempfile.TemporaryDirectory(prefix="qa-precision-") as tmp:
        if args.from_int8:
            args.checkpoint = tr.from_int8(args.from_int8, Path(tmp) / "rebuilt")
        fp32 = Path(tmp) / "reader.fp32.onnx"
        tr.export_fp32(args.checkpoint, args.recipe, fp32)
        for name in args.variants:
            path = variant(fp32, name, Path(tmp) / f"reader.{name}.onnx")
            reader = OnnxReader(path, threads=args.threads, verify=False, max_length=recipe["max_length"],
                                overlap=recipe["stride"])
            t0 = time.time()
            figures = tr.evaluate(reader, held_out)
            figures = {k: v for k, v in figures.items() if k not in ("held_out_articles",)}
            figures["seconds_per_question"] = round((time.time() - t0) / len(held_out), 4)
            figures["megabytes"] = round(path.stat().st_size / 1e6, 1)
            print(name, json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
