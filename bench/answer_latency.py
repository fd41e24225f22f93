"""Answer latency on the seeds: warm qa.answer() p50/p95, first streamed text, and cold starts of `qa ask`.

    python bench/answer_latency.py [--runs 5]

Warm: one process, models loaded, each seed question asked --runs times. Cold: `qa ask` as a new process,
run twice (the first may convert the model; the second is what a user sees every time after that).
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import qa

QUESTIONS = [
    "How many soldiers would European countries contribute?",
    "How many US troops did Trump order to withdraw?",
    "What does Turkey consider the YPG to be part of?",
    "How deep is the safe zone Erdogan wants?",
    "Who won the 2018 FIFA World Cup?",
]
ROOT = Path(__file__).resolve().parents[1]

parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=5)
args = parser.parse_args()

index_dir = ROOT / "index"
qa.build_index(ROOT / "seeds", index_dir)
qa.answer(QUESTIONS[0], index_dir=index_dir)  # load everything once
total, first = [], []
for _ in range(args.runs):
    for q in QUESTIONS:
        t0 = time.perf_counter()
        seen_first = None
        for _part in qa.stream(q, index_dir=index_dir):
            if seen_first is None:
                seen_first = time.perf_counter() - t0
        total.append(time.perf_counter() - t0)
        first.append(seen_first)
total.sort()
print(f"warm qa.answer over {len(total)} asks: p50 {statistics.median(total):.3f} s, "
      f"p95 {total[int(0.95 * (len(total) - 1))]:.3f} s, first streamed text p50 {statistics.median(first):.3f} s")
for i in (1, 2):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "qa", "ask", QUESTIONS[0], "--index", str(index_dir)], check=True,
                   capture_output=True, cwd=ROOT)
    print(f"cold `qa ask` run {i}: {time.perf_counter() - t0:.2f} s")
