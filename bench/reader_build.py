"""Answer speed of two set-ups side by side on the seeds, in one run: the portable llama.cpp build `make setup`
makes vs another build of the same llama-cpp-python (for example one compiled with -march=native), or, with
``--isolation``, the models in worker processes (the default) vs in the answering process itself.

    python bench/reader_build.py --other /tmp/native-site [--runs 5] [--busy] [--cold 3]
    python bench/reader_build.py --isolation [--runs 5] [--busy] [--cold 3]

``--other`` is a folder holding another build's ``llama_cpp`` package (``pip install --no-deps --target DIR
llama_cpp_python-*.whl``); it is put first on PYTHONPATH for that build's process, so the reader's worker loads it.
Each build answers in its own long-lived process with the default settings (index built from the seeds, models
warm), and the two alternate question by question, so machine noise hits both alike. ``--busy`` repeats the rounds
with one core kept busy by a third process, as a user's machine usually is. Prints warm p50/p95 per build and the
ratio, and each build's `llama_print_system_info`. ``--cold N`` also times N fresh `qa ask` processes per variant,
alternating, with their peak RSS (the process's own plus its model workers', added up).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from answer_latency import QUESTIONS  # the same five seed questions

ROOT = Path(__file__).resolve().parents[1]

# One build's process: reads questions on stdin, answers each, prints {"seconds", "text"} per line.
CHILD = """
import json, sys, time
import llama_cpp, qa
print(json.dumps({"info": llama_cpp.llama_print_system_info().decode().strip(), "file": llama_cpp.__file__}), flush=True)
index = sys.argv[1]
qa.answer("warm up: how many soldiers?", index_dir=index)
for line in sys.stdin:
    t0 = time.perf_counter()
    a = qa.answer(line.strip(), index_dir=index)
    print(json.dumps({"seconds": time.perf_counter() - t0, "text": a.text}), flush=True)
"""


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[int(p * (len(xs) - 1))]


def spin() -> None:
    while True:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--other", help="folder with another build's llama_cpp package")
    ap.add_argument("--other-name", default="native")
    ap.add_argument("--isolation", action="store_true", help="compare QA_MODEL_PROCESS=1 (default) with 0")
    ap.add_argument("--cold", type=int, default=0, help="also time N fresh `qa ask` processes per variant")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--busy", action="store_true", help="also measure with one core kept busy")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        index_dir = Path(tmp) / "index"
        subprocess.run([sys.executable, "-m", "qa", "index", "--docs", str(ROOT / "seeds"), "--index", str(index_dir)],
                       check=True, cwd=ROOT, capture_output=True)
        here = os.environ.get("PYTHONPATH", "")
        if args.isolation:
            variants = {"workers": {"QA_MODEL_PROCESS": "1"}, "in-process": {"QA_MODEL_PROCESS": "0"}}
        elif args.other:
            variants = {"portable": {"PYTHONPATH": here},
                        args.other_name: {"PYTHONPATH": os.pathsep.join(p for p in (args.other, here) if p)}}
        else:
            ap.error("give --other DIR or --isolation")
        envs = {name: {**os.environ, "QA_PROGRESS": "0", **v} for name, v in variants.items()}
        procs = {}
        for name, env in envs.items():
            procs[name] = subprocess.Popen([sys.executable, "-c", CHILD, str(index_dir)], cwd=ROOT, env=env,
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for name, p in procs.items():
            head = json.loads(p.stdout.readline())
            print(f"{name}: {head['file']}\n  {head['info']}")

        def rounds(label: str) -> dict[str, list[float]]:
            times = {n: [] for n in procs}
            texts = {n: {} for n in procs}
            for _ in range(args.runs):
                for q in QUESTIONS:
                    for name, p in procs.items():
                        p.stdin.write(q + "\n")
                        p.stdin.flush()
                        r = json.loads(p.stdout.readline())
                        times[name].append(r["seconds"])
                        texts[name][q] = r["text"]
            same = sum(len({texts[n][q] for n in procs}) == 1 for q in QUESTIONS)
            print(f"\n{label}: {args.runs} x {len(QUESTIONS)} questions per build, alternating; same answers "
                  f"{same}/{len(QUESTIONS)}")
            for name, xs in times.items():
                print(f"  {name:10s} warm p50 {statistics.median(xs):.3f} s  p95 {pct(xs, 0.95):.3f} s")
            names = list(procs)
            print(f"  ratio p50 {names[0]}/{names[1]}: "
                  f"{statistics.median(times[names[0]]) / statistics.median(times[names[1]]):.2f}")
            return times

        if args.runs:
            rounds("idle machine")
        if args.runs and args.busy:
            hog = multiprocessing.Process(target=spin, daemon=True)
            hog.start()
            try:
                rounds("one core kept busy by another process")
            finally:
                hog.terminate()
        for p in procs.values():
            p.stdin.close()
            p.wait()
        if args.cold:
            cold(envs, index_dir, args.cold)


COLD = ("import runpy, sys; sys.argv = ['qa', 'ask', sys.argv[1], '--index', sys.argv[2]]\n"
        "try:\n    runpy.run_module('qa', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "from qa import worker\n"
        "def hwm(pid):\n"
        "    return int([l for l in open(f'/proc/{pid}/status') if l.startswith('VmHWM:')][0].split()[1])\n"
        "print('RSS', hwm('self') + sum(hwm(w.pid) for w in list(worker._LIVE) if w.pid), file=sys.stderr)")


def cold(envs: dict[str, dict], index_dir: Path, n: int) -> None:
    import time

    seconds = {name: [] for name in envs}
    rss = {name: [] for name in envs}
    for _ in range(n):
        for name, env in envs.items():
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", COLD, QUESTIONS[0], str(index_dir)], cwd=ROOT, env=env,
                                 capture_output=True, text=True, check=True)
            seconds[name].append(time.perf_counter() - t0)
            rss[name].append(next(int(x.split()[1]) for x in out.stderr.splitlines() if x.startswith("RSS ")) / 1024)
    print(f"\ncold `qa ask`, {n} fresh processes per variant, alternating:")
    for name in envs:
        print(f"  {name:10s} median {statistics.median(seconds[name]):.2f} s (runs "
              f"{', '.join(f'{x:.2f}' for x in seconds[name])}), peak RSS {statistics.median(rss[name]):.0f} MB")


if __name__ == "__main__":
    main()
