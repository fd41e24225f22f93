"""`python app.py` to a page that answers, and the running app's peak memory, per reader.

    python bench/app_start.py [--starts 3] [--readers qa-reader,PATH.onnx]

Each start spawns `python app.py` on a free port (the default index, already built) and polls until the app's own
`/ask` endpoint returns an answer to the seed question (through gradio_client, whose own connection set-up is
counted too, so the figure is an upper bound). The first start of each reader is a warm-up and not counted (it may
build the index, export the embedder or convert the reader); the median of the others is reported. After the last
start, five more questions are asked and the app's peak RSS (VmHWM from /proc, the app's plus its model workers')
is read.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
Q = "How many soldiers would European countries contribute?"
MORE = [
    "How many US troops did Trump order to withdraw?",
    "What does Turkey consider the YPG to be part of?",
    "How deep is the safe zone Erdogan wants?",
    "Who won the 2018 FIFA World Cup?",
    "How many soldiers would European countries contribute?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    """Peak RSS of the app and of its child processes (the models' workers), added up."""
    def hwm(p: int) -> float:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM")

    kids = [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    return hwm(pid) + sum(hwm(k) for k in kids)


def start(backend: str, extra_questions: bool) -> tuple[float, float | None, str]:
    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "QA_READER": backend, "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited: {proc.stderr.read()[-2000:]}")
            try:
                client = Client(url, verbose=False)
                break
            except Exception:
                time.sleep(0.05)
        answer = client.predict(Q, None, api_name="/ask")
        seconds = time.perf_counter() - t0
        rss = None
        if extra_questions:
            for q in MORE:
                client.predict(q, None, api_name="/ask")
            rss = peak_rss_mb(proc.pid)
        return seconds, rss, answer["text"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--starts", type=int, default=3, help="counted starts per reader (after one warm-up start)")
    ap.add_argument("--readers", default="qa-reader", help="comma-separated QA_READER values")
    args = ap.parse_args()
    backends = args.readers.split(",")
    for b in backends:
        start(b, False)  # warm-up: caches, exports, page cache
    times = {b: [] for b in backends}
    rss, texts = {}, {}
    for i in range(args.starts):
        for b in backends:  # alternate, so noise hits both alike
            s, r, text = start(b, i == args.starts - 1)
            times[b].append(s)
            texts[b] = text
            if r is not None:
                rss[b] = r
    print(f"`python app.py` until /ask answers the seed question; median of {args.starts} starts after a warm-up")
    for b in backends:
        print(f"  {b:<13} start-to-answer {statistics.median(times[b]):5.2f} s (runs: "
              f"{', '.join(f'{t:.2f}' for t in times[b])}); peak RSS after 6 questions {rss[b]:6.0f} MB; "
              f"answer: {texts[b]!r}")
    if len(backends) == 2:
        a, t = backends
        print(f"  {a} vs {t}: start {statistics.median(times[t]) / statistics.median(times[a]):.2f}x faster, "
              f"peak RSS {rss[t] / rss[a]:.2f}x smaller")


if __name__ == "__main__":
    main()
