"""Many clients at once: 20 gradio_client clients ask for 2 minutes while the articles change and the index is
rebuilt by `qa index` (a second, simultaneous build waits with a message); every answer is exactly the answer of
the index version it reports; a full queue answers "busy" at once instead of hanging.

QA_STRESS_SECONDS shortens the run (default 120)."""

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import qa
from qa import local_store
from qa.config import Settings

from . import fakes
from .conftest import ROOT, SEEDS

pytestmark = pytest.mark.slow

SERVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests import fakes
    index, docs, port, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    fakes.register("fake")
    fakes.register_reader("fake-reader", delay=delay)
    from qa import ui
    from qa.config import Settings
    s = Settings.from_env(embedder="fake", reader="fake-reader", progress=False)
    ui.launch(ui.build_ui(index, docs, s), port=port, settings=s, index_dir=index, docs_dir=docs, quiet=True)
""").format(root=str(ROOT))

CLI = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests import fakes
    fakes.register("fake")
    from qa.cli import main
    sys.exit(main())
""").format(root=str(ROOT))

MUNICH = "002_0761b27352c754ab.txt"
QUESTIONS = [
    "How many soldiers would European countries contribute?",  # its answer changes with the rebuild
    "How many wombats guard the safe zone?",                    # answerable only from the new article
    "Who proposed the buffer zone in northern Syria?",
    "Where did Russia and the US hold talks on a de-escalation zone?",
    "Who won the 2018 FIFA World Cup?",                         # in no article
]
SETTINGS = dict(embedder="fake", reader="fake-reader", progress=False)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(index_dir, docs, delay, **env):
    port = _port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(index_dir), str(docs), str(port), str(delay)],
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/gradio_api/info", timeout=1)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read()) from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the app did not start")


def _change(docs):
    """The rebuild's change: one article edited (its answer moves from 1,500 to 2,500) and one added."""
    p = docs / MUNICH
    p.write_text(p.read_text(encoding="utf-8").replace("about 1,500 soldiers", "about 2,500 soldiers"), encoding="utf-8")
    (docs / "wombats.txt").write_text("Wombats of the safe zone\n\nAbout 40 wombats guard the safe zone at night.\n",
                                      encoding="utf-8")


def _expected(tmp_path, docs_state):
    """The answers the same models give on a fresh index of that state of the articles, keyed by question."""
    idx = tmp_path / f"expected-{docs_state.name}"
    s = Settings(**SETTINGS)
    qa.build_index(docs_state, idx, settings=s)
    return {q: qa.answer(q, index_dir=idx, settings=s).to_dict() for q in QUESTIONS}


def _key(a: dict) -> tuple:
    return a["text"], a["abstained"], [(c["source"], c["start"], c["end"], c["text"]) for c in a["citations"]]


def test_twenty_clients_for_two_minutes_with_a_rebuild_in_the_middle(tmp_path):
    from filelock import FileLock
    from gradio_client import Client

    seconds = float(os.environ.get("QA_STRESS_SECONDS", "120"))
    fakes.register("fake")
    fakes.register_reader("fake-reader")
    docs, idx = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    qa.build_index(docs, idx, settings=Settings(**SETTINGS))
    old_docs, new_docs = tmp_path / "old", tmp_path / "new"
    shutil.copytree(docs, old_docs)
    shutil.copytree(docs, new_docs)
    _change(new_docs)
    expected = {"old": _expected(tmp_path, old_docs), "new": _expected(tmp_path, new_docs)}
    assert _key(expected["old"][QUESTIONS[0]])[0] == "1,500 [1]" and _key(expected["new"][QUESTIONS[0]])[0] == "2,500 [1]"
    old_gen = local_store.current_generation(idx)

    server, url = _serve(idx, docs, delay=0.05)
    results: list[tuple] = []  # (client, start, end, question, answer dict)
    failures: list[tuple] = []
    stop = time.monotonic() + seconds

    def client(n: int) -> None:
        c = Client(url, verbose=False)
        i = n
        while time.monotonic() < stop:
            q = QUESTIONS[i % len(QUESTIONS)]
            i += 1
            t0 = time.monotonic()
            try:
                a = c.predict(q, None, api_name="/ask")
                results.append((n, t0, time.monotonic(), q, a))
            except Exception as e:
                failures.append((n, q, repr(e)))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(20)]
    try:
        for t in threads:
            t.start()
        time.sleep(seconds / 2)
        # A build is running (we hold its lock) when the articles change and `qa index` is started: it must wait
        # with a message, while questions go on being answered from the live index.
        lock = FileLock(str(idx / ".lock"))
        lock.acquire()
        held_from = time.monotonic()
        try:
            _change(docs)
            cli = subprocess.Popen([sys.executable, "-c", CLI, "index", "--docs", str(docs), "--index", str(idx)],
                                   env={**os.environ, "QA_EMBEDDER": "fake", "QA_PROGRESS": "0"},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            waiting = cli.stderr.readline()
            time.sleep(3)
        finally:
            held_until = time.monotonic()
            lock.release()
        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 0, err
        assert "is running; waiting for it to finish" in waiting
        new_gen = local_store.current_generation(idx)
        for t in threads:
            t.join(timeout=seconds + 60)
    finally:
        server.kill()
        server.wait()

    assert failures == []
    assert new_gen != old_gen
    # Whoever got the lock first did the rebuild: `qa index`, or the app's own refresh, in which case `qa index`
    # found nothing left to do.
    built_by_cli = bool(re.search(r"added: 1\s+\(wombats\.txt\)", out) and re.search(rf"changed: 1\s+\({MUNICH}\)", out))
    assert built_by_cli or f"({new_gen}, unchanged)" in out, out
    latencies = sorted(end - start for _, start, end, _, _ in results)
    versions = {"old": 0, "new": 0}
    last: dict[int, str] = {}
    for n, _, _, q, a in sorted(results, key=lambda r: r[1]):
        version = {old_gen: "old", new_gen: "new"}[a["index_version"]]  # KeyError: a third version
        assert _key(a) == _key(expected[version][q]), (version, q, a)
        assert not (last.get(n) == "new" and version == "old")  # a client never goes back to the old index
        last[n] = version
        versions[version] += 1
    during_hold = [r for r in results if held_from < r[1] and r[2] < held_until]
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))]
    print(f"\n20 clients, {seconds:.0f} s: {len(results)} requests served ({len(results) / seconds:.1f}/s), "
          f"0 failed; p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s; "
          f"old index {versions['old']}, new index {versions['new']}; "
          f"{len(during_hold)} answered while another build held the lock; rebuilt by "
          f"{'qa index' if built_by_cli else 'the app (qa index then found nothing to do)'}")
    assert versions["old"] > 0 and versions["new"] > 0
    assert during_hold, "questions stalled while a build held the lock"


def test_a_full_queue_says_busy_at_once(tmp_path):
    from gradio_client import Client

    fakes.register("fake")
    docs, idx = tmp_path / "docs", tmp_path / "index"
    shutil.copytree(SEEDS, docs)
    qa.build_index(docs, idx, settings=Settings(**{**SETTINGS, "generator": "fake-reader"}))
    server, url = _serve(idx, docs, delay=2.0, QA_UI_QUEUE_SIZE="3")
    outcomes: list[tuple[str, float]] = []
    # Connect first: a client's set-up (it fetches the app's config) took over a second under load, which let
    # the plain HTTP request below arrive before the queue had filled.
    clients = [Client(url, verbose=False) for _ in range(10)]

    def ask(c) -> None:
        t0 = time.monotonic()
        try:
            c.predict(QUESTIONS[0], None, api_name="/ask")
            outcomes.append(("answered", time.monotonic() - t0))
        except Exception as e:
            outcomes.append((str(e), time.monotonic() - t0))

    try:
        threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
        for t in threads:
            t.start()
            time.sleep(0.05)
        time.sleep(1.0)
        # What a plain HTTP client gets while the queue is full: 503 and the reason, at once.
        req = urllib.request.Request(f"{url}/gradio_api/call/ask", data=json.dumps({"data": ["x", None]}).encode(),
                                     headers={"Content-Type": "application/json"})
        t0 = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        http = (e.value.code, e.value.read().decode(), time.monotonic() - t0)
        for t in threads:
            t.join(timeout=120)
    finally:
        server.kill()
        server.wait()
    busy = [s for s, _ in outcomes if s != "answered"]
    answered = [s for s, _ in outcomes if s == "answered"]
    print(f"\nqueue of 3, 10 clients at once: {len(answered)} answered, {len(busy)} told busy in at most "
          f"{max((t for s, t in outcomes if s != 'answered'), default=0):.2f} s; HTTP {http[0]} in {http[2]:.2f} s")
    assert len(answered) >= 3 and len(busy) >= 4
    assert all(s == "Queue is full! Please try again." for s in busy)
    assert all(t < 2.0 for s, t in outcomes if s != "answered")  # told at once, not after waiting
    assert http[0] == 503 and "Queue is full" in http[1] and http[2] < 2.0
    # In the browser, Gradio shows its own words for the same refusal (its frontend bundle):
    import gradio

    assets = (Path(gradio.__file__).parent / "templates" / "frontend" / "assets").glob("*.js")
    assert any("This application is currently busy. Please try again." in p.read_text(errors="ignore") for p in assets)
