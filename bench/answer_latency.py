"""Answer latency and memory on the seeds: this tree's reader against another revision's, side by side, one run.

    python bench/answer_latency.py [--against b91e095 | --reader PATH.onnx] [--runs 5]

``--against`` names a git revision (default: the last one with the Gemma-3-270M copy reader); it is checked out
in a worktree under /tmp and run with this virtualenv (so it needs that revision's packages: for b91e095,
llama-cpp-python). ``--reader`` instead runs this tree twice: with its own reader, and with the reader at PATH
(``QA_READER``; with the ``confidence.json`` beside it, if there is one, as ``QA_CONFIDENCE``). For each of the two:
- warm: one process per tree, models loaded, index built; each seed question asked ``--runs`` times through
  ``qa.stream``, the trees alternating question by question, and which goes first swapping, so machine noise
  hits both alike; p50/p95 of the whole answer and of the first text shown; once on an idle machine and once
  with one core kept busy by another process (a user's machine is never idle);
- cold: ``qa ask`` as a new process, twice; the second is what a user sees every time after the first;
- app: ``python app.py`` on a free port until its /ask answers, then the five questions, and the app's peak RSS
  (VmHWM of the app and its model workers, added up).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from app_start import free_port, peak_rss_mb  # noqa: E402

QUESTIONS = [
    "How many soldiers would European countries contribute?",
    "How many US troops did Trump order to withdraw?",
    "What does Turkey consider the YPG to be part of?",
    "Why does Turkey oppose the YPG?",
    "Who won the 2018 FIFA World Cup?",
]

# Runs inside each tree: answers questions read from stdin, one JSON line of timings per question.
CHILD = r"""
import json, sys, time
import qa
from qa.config import Settings
index_dir, docs = sys.argv[1], sys.argv[2]
s = Settings.from_env(progress=False)
qa.build_index(docs, index_dir, settings=s)
qa.answer(sys.argv[3], index_dir=index_dir, settings=s)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    q = line.strip()
    t0 = time.perf_counter()
    first = None
    for a in qa.stream(q, index_dir=index_dir, settings=s):
        if first is None and a.text:
            first = time.perf_counter() - t0
    print(json.dumps({"total": time.perf_counter() - t0, "first": first, "text": a.text}), flush=True)
"""


def worktree(rev: str) -> Path:
    path = Path(tempfile.gettempdir()) / f"qa-bench-{rev}"
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=ROOT, check=True,
                       capture_output=True)
    return path


#: Extra environment for a side run by this tree with another reader (``--reader``), by side name.
EXTRA_ENV: dict[str, dict[str, str]] = {}


def env_for(tree: Path, name: str = "") -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "QA_PROGRESS": "0", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **EXTRA_ENV.get(name, {})}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def warm(trees: dict[str, Path], runs: int, tmp: Path) -> dict[str, dict[str, list[float]]]:
    procs = {}
    for name, tree in trees.items():
        procs[name] = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp / f"index-{name}"), str(tree / "seeds"),
                                        QUESTIONS[0]],
                                       cwd=tree, env=env_for(tree, name), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, text=True)
    for name, p in procs.items():
        line = p.stdout.readline()
        if not line:
            raise SystemExit(f"the {name} tree's answer process did not start")
    out = {name: {"idle": [], "idle_first": [], "busy": [], "busy_first": [], "texts": []} for name in trees}
    for phase in ("idle", "busy"):
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if phase == "busy" else None
        try:
            turn = 0
            for _ in range(runs):
                for q in QUESTIONS:
                    # Who goes first swaps every question: with "this tree" always first, one core busy, it read
                    # about 5 % slower than the same code second (2026-12-07, docs/benchmarks.md).
                    order = list(procs.items())
                    turn += 1
                    for name, p in (order if turn % 2 else order[::-1]):
                        p.stdin.write(q + "\n")
                        p.stdin.flush()
                        r = json.loads(p.stdout.readline())
                        out[name][phase].append(r["total"])
                        out[name][f"{phase}_first"].append(r["first"] if r["first"] is not None else r["total"])
                        if phase == "idle" and len(out[name]["texts"]) < len(QUESTIONS):
                            out[name]["texts"].append(r["text"])
        finally:
            if spinner is not None:
                spinner.kill()
    for p in procs.values():
        p.stdin.close()
        p.wait()
    return out


def cold(tree: Path, index_dir: Path, name: str) -> list[float]:
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "qa", "ask", QUESTIONS[0], "--index", str(index_dir)], cwd=tree,
                       env=env_for(tree, name), check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return times


def app(tree: Path, name: str) -> tuple[float, float]:
    """Seconds from `python app.py` to a first answer on /ask, and the app's peak RSS (MB) after five more."""
    from gradio_client import Client

    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=tree, env=env_for(tree, name),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                client.predict(QUESTIONS[0], None, api_name="/ask")
                break
            except Exception:
                if proc.poll() is not None or time.perf_counter() - t0 > 600:
                    raise SystemExit(f"the app in {tree} did not answer") from None
                time.sleep(0.5)
        started = time.perf_counter() - t0
        for q in QUESTIONS:
            client.predict(q, None, api_name="/ask")
        return started, peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", default="b91e095", help="the git revision to compare with")
    ap.add_argument("--reader", help="compare this tree's reader with this one (an .onnx with its card), not a revision")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if args.reader:
        reader = Path(args.reader).resolve()
        args.against = reader.parent.name[:10]
        EXTRA_ENV[args.against] = {"QA_READER": str(reader)}
        if (reader.parent / "confidence.json").exists():
            EXTRA_ENV[args.against]["QA_CONFIDENCE"] = str(reader.parent / "confidence.json")
        trees = {"this tree": ROOT, args.against: ROOT}
    else:
        trees = {"this tree": ROOT, args.against: worktree(args.against)}
    with tempfile.TemporaryDirectory() as tmp:
        w = warm(trees, args.runs, Path(tmp))
        colds = {name: cold(tree, Path(tmp) / f"index-{name}", name) for name, tree in trees.items()}
    apps = {name: app(tree, name) for name, tree in trees.items()}
    print(f"{len(QUESTIONS)} seed questions x {args.runs} runs, the trees alternating; {os.cpu_count()} cores"
          + (f"; {args.against} = this tree with {args.reader}" if args.reader else ""))
    print(f"{'tree':<10} {'warm p50':>8} {'p95':>6} {'first p50':>9} {'busy p50':>8} {'busy first':>10} "
          f"{'cold 1st':>8} {'cold 2nd':>8} {'app start':>9} {'app RSS':>8}")
    rows = {}
    for name in trees:
        r = w[name]
        rows[name] = dict(p50=statistics.median(r["idle"]), first=statistics.median(r["idle_first"]),
                          busy=statistics.median(r["busy"]), busy_first=statistics.median(r["busy_first"]),
                          cold=colds[name][1], start=apps[name][0], rss=apps[name][1])
        x = rows[name]
        print(f"{name:<10} {x['p50']:7.3f}s {pct(r['idle'], 0.95):5.2f}s {x['first']:8.3f}s {x['busy']:7.3f}s "
              f"{x['busy_first']:9.3f}s {colds[name][0]:7.2f}s {x['cold']:7.2f}s {x['start']:8.1f}s "
              f"{x['rss']:6.0f}MB")
    a, b = rows["this tree"], rows[args.against]
    print(f"this tree vs {args.against}: warm p50 {b['p50'] / a['p50']:.2f}x faster, first text "
          f"{b['first'] / a['first']:.2f}x, busy p50 {b['busy'] / a['busy']:.2f}x, cold 2nd {b['cold'] / a['cold']:.2f}x, "
          f"app RSS {b['rss'] / a['rss']:.2f}x smaller")
    for i, q in enumerate(QUESTIONS):
        print(f"  {q}\n    this tree: {w['this tree']['texts'][i][:150]}\n    {args.against}: "
              f"{w[args.against]['texts'][i][:150]}")


if __name__ == "__main__":
    main()
