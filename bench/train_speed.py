"""Reader training speed by window length, to plan a recipe: windows per second and windows per SQuAD question.

    python bench/train_speed.py [--lengths 128 256 384] [--steps 6] [--batch 16] [--base DIR]

For each window length: 2,000 SQuAD 1.1 training questions (seed 13) are cut into windows as train_reader.py cuts
them (stride a quarter of the window), which gives windows per question; then ``--steps`` optimiser steps of
all-MiniLM-L6-v2 with a QA head (AdamW, bf16 autocast where the CPU has it, as train_reader.py), timed after one
warm-up step, on real windows of that length, each batch of similar lengths padded to its longest (as the
Trainer's group_by_length does). Projected: hours for one epoch of all 87,599 questions. ``--attention-dropout``
0.1 is BERT's own (and the 128 recipe's); 0 is the 384 recipe's: with it torch's CPU attention runs its fused kernel
instead of materialising, masking and dropping out every score matrix. ``longest s/step`` times the batch of the
longest windows, the one group_by_length reads first in each of its megabatches.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.weights.train_reader import DATA, base_model_path, cpu_has_bf16  # noqa: E402


def main(argv=None) -> None:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 384])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--attention-dropout", type=float, nargs="+", default=[0.1, 0.0])
    ap.add_argument("--base", type=Path, default=None,
                    help="another base model's folder (transformers format) to time instead of all-MiniLM-L6-v2, "
                         "for example all-mpnet-base-v2")
    args = ap.parse_args(argv)
    base = args.base or base_model_path()
    bf16 = cpu_has_bf16()
    data = json.loads((DATA / "squad1.1-train.json").read_text(encoding="utf-8"))["data"]
    pairs = [(q["question"], p["context"]) for a in data for p in a["paragraphs"] for q in p["qas"]]
    total = len(pairs)
    sample = random.Random(13).sample(pairs, args.questions)
    tok = AutoTokenizer.from_pretrained(base)
    print(f"{total} SQuAD 1.1 questions; bf16 autocast {'on' if bf16 else 'off'}; {torch.get_num_threads()} threads")
    print(f"{'length':>6} {'attn drop':>9} {'windows/q':>9} {'windows/s':>9} {'s/step':>7} {'longest s/step':>14} "
          f"{'h/epoch':>8}")
    for length, dropout in [(n, d) for n in args.lengths for d in args.attention_dropout]:
        enc = tok([q for q, _ in sample], [c for _, c in sample], truncation="only_second", max_length=length,
                  stride=length // 4, return_overflowing_tokens=True)
        per_q = len(enc["input_ids"]) / len(sample)
        model = AutoModelForQuestionAnswering.from_pretrained(base, attention_probs_dropout_prob=dropout)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-5)
        rng = random.Random(0)
        times = []
        # Sorted by length as the Trainer's group_by_length does: a batch of neighbours, padded to its longest.
        order = sorted(range(len(enc["input_ids"])), key=lambda i: len(enc["input_ids"][i]))
        for step in range(args.steps + 2):
            at = len(order) - args.batch if step == args.steps + 1 else rng.randrange(0, len(order) - args.batch)
            idx = order[at:at + args.batch]
            width = max(len(enc["input_ids"][i]) for i in idx)
            batch = {k: torch.tensor([enc[k][i] + [0] * (width - len(enc[k][i])) for i in idx])
                     for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}  # MPNet has no types
            labels = torch.zeros(args.batch, dtype=torch.long)
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = model(**batch, start_positions=labels, end_positions=labels)
            out.loss.backward()
            opt.step()
            opt.zero_grad()
            if step:
                times.append(time.perf_counter() - t0)
        longest = times.pop()
        s_step = statistics.median(times)
        wps = args.batch / s_step
        print(f"{length:>6} {dropout:>9} {per_q:>9.2f} {wps:>9.1f} {s_step:>7.2f} {longest:>14.2f} "
              f"{total * per_q / wps / 3600:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
