"""Crash isolation: a model runtime that dies mid-answer (segfault, abort, out-of-memory kill) costs one question
an error, never the process that serves questions. The reader here is ``fakes.CrashingReader``, running in the
worker process through the real seam (``register_reader`` + ``Settings.model_process``); it kills its own
process when asked about a "crash", as llama.cpp's AMX kernels did."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import qa
from qa.config import Settings
from qa.worker import death_cause

from . import fakes
from .conftest import ROOT, SEEDS

Q = "How many soldiers would European countries contribute?"


@pytest.fixture
def crashy(embedder) -> Settings:
    qa.register_reader("crashy", fakes.CrashingReader)
    return Settings(embedder="fake", reader="crashy", progress=False)


@pytest.mark.parametrize("sig", ["SIGSEGV", "SIGABRT", "SIGKILL"])
def test_a_reader_crash_is_an_error_and_the_next_question_is_answered(built, crashy, sig):
    from qa.reading import get_reader

    assert qa.answer(Q, built, settings=crashy).text == "1,500 [1]"
    worker = get_reader(crashy).worker
    before = worker.pid
    with pytest.raises(qa.ModelCrashedError, match=f"reader stopped unexpectedly \\({sig}.*restarted; ask again"):
        qa.answer(f"What happens in a crash {sig}?", built, settings=crashy)
    assert worker.pid != before and worker.restarts >= 1  # a new worker, already started
    assert qa.answer(Q, built, settings=crashy).text == "1,500 [1]"


def test_an_embedder_crash_is_an_error_and_the_next_search_works(docs, tmp_path):
    from qa.embeddings import get_embedder

    qa.register_embedder("crashy-embedder", fakes.CrashingEmbedder)
    s = Settings(embedder="crashy-embedder", progress=False, rerank=0)
    qa.build_index(docs, tmp_path / "index", settings=s)  # embedded in the worker, over the pipe
    assert get_embedder(s).worker.pid is not None
    assert qa.search(Q, index_dir=tmp_path / "index", settings=s)[0].source == "002_0761b27352c754ab.txt"
    with pytest.raises(qa.ModelCrashedError, match="embedder stopped unexpectedly \\(SIGSEGV.*try again"):
        qa.search("What about the crash?", index_dir=tmp_path / "index", settings=s)
    assert qa.search(Q, index_dir=tmp_path / "index", settings=s)[0].source == "002_0761b27352c754ab.txt"


def test_a_reader_that_hangs_is_stopped_after_the_timeout_and_restarted(built, crashy):
    from dataclasses import replace

    s = replace(crashy, model_timeout_s=1.5)
    assert qa.answer(Q, built, settings=s).text == "1,500 [1]"
    with pytest.raises(qa.ModelCrashedError, match="no reply within 1.5 s and was stopped\\) and was restarted"):
        qa.answer("Why does it hang?", built, settings=s)
    assert qa.answer(Q, built, settings=s).text == "1,500 [1]"


def test_a_worker_that_died_between_questions_is_replaced_quietly(built, crashy):
    from qa.reading import get_reader

    assert not qa.answer(Q, built, settings=crashy).abstained
    worker = get_reader(crashy).worker
    os.kill(worker.pid, signal.SIGKILL)
    time.sleep(0.2)
    assert qa.answer(Q, built, settings=crashy).text == "1,500 [1]"  # no error: nothing was in flight


def test_errors_raised_in_the_worker_arrive_as_themselves(built, crashy):
    from qa.reading import get_reader

    with pytest.raises(AttributeError):
        get_reader(crashy).worker.call(("x",), crashy, "no_such_method_is_called_like_this_one")


def test_models_registered_as_closures_stay_in_this_process(built, settings):
    from qa.reading import get_reader

    reader = fakes.register_reader()
    assert get_reader(Settings(embedder="fake", reader="fake-reader")) is reader


def test_death_causes_are_said_in_words():
    assert death_cause(-11).startswith("SIGSEGV: a segmentation fault")
    assert "lack of memory" in death_cause(-9) and "aborted" in death_cause(-6)
    assert death_cause(3) == "it exited with status 3"


# ---------------------------------------------------------------------------------------------------------------
# The same through a long-lived server process: qa.answer in a loop, the web API, the browser.

SERVER = """
import json, sys
import qa
from qa.config import Settings
from tests import fakes
fakes.register("fake")
qa.register_reader("crashy", fakes.CrashingReader)
s = Settings(embedder="fake", reader="crashy", progress=False)
for line in sys.stdin:
    try:
        a = qa.answer(line.strip(), sys.argv[1], settings=s)
        print(json.dumps({"text": a.text}), flush=True)
    except qa.QAError as e:
        print(json.dumps({"error": str(e)}), flush=True)
"""


@pytest.mark.slow
def test_a_server_process_answering_with_qa_answer_survives_a_reader_crash(built):
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(built)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        replies = []
        for question in (Q, "Tell me about the crash", Q, "crash SIGKILL", Q):
            proc.stdin.write(question + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            assert line, f"the server process died (exit status {proc.poll()}) on {question!r}"
            replies.append(json.loads(line))
        assert [r.get("text") for r in replies[::2]] == ["1,500 [1]"] * 3
        assert all("stopped unexpectedly" in r["error"] and "ask again" in r["error"] for r in replies[1::2])
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_app(tmp_path, request):
    """The app with the crashing reader in its own process: (url, process)."""
    import shutil

    delay = getattr(request, "param", 0.0)
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    port = _free_port()
    env = dict(os.environ, QA_FAKE_DELAY=str(delay), GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_app", str(docs), str(tmp_path / "index"), str(port)],
                            cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        assert proc.poll() is None, "the app did not start"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        pytest.fail("the app did not start listening within 90 s")
    yield url, proc
    proc.kill()
    proc.wait()


@pytest.mark.slow
def test_the_web_api_survives_a_reader_crash(fake_app):
    from gradio_client import Client

    url, proc = fake_app
    client = Client(url, verbose=False)
    assert client.predict(Q, None, api_name="/ask")["text"] == "1,500 [1]"
    with pytest.raises(Exception, match="stopped unexpectedly .*restarted; ask again"):
        client.predict("What if it crashes? crash SIGABRT", None, api_name="/ask")
    assert proc.poll() is None, "the app died with its reader"
    assert client.predict(Q, None, api_name="/ask")["text"] == "1,500 [1]"


CHROMIUM = "/usr/bin/chromium"


def _page(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])
    return browser, browser.new_page(viewport={"width": 1300, "height": 900})


def _send(page, question: str) -> None:
    box = page.locator("#qa-question textarea")
    box.fill(question)
    box.press("Enter")


@pytest.mark.slow
def test_the_browser_shows_a_reader_crash_and_answers_the_next_question(fake_app):
    pw = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium; .ci/run does it)")
    url, proc = fake_app
    with pw.sync_playwright() as p:
        browser, page = _page(p)
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        _send(page, "Did the reader crash?")
        page.wait_for_selector(".qa-error", timeout=30_000)
        assert "stopped unexpectedly" in page.inner_text(".qa-error")
        assert proc.poll() is None
        _send(page, Q)
        page.wait_for_selector(".qa-answer", timeout=30_000)
        assert "1,500" in page.inner_text(".qa-answer")
        browser.close()


@pytest.mark.slow
@pytest.mark.parametrize("fake_app", [1.5], indirect=True)
def test_two_questions_sent_0_3_s_apart_are_both_answered(fake_app):
    pw = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium; .ci/run does it)")
    url, _ = fake_app
    second = "How deep would the safe zone be?"
    with pw.sync_playwright() as p:
        browser, page = _page(p)
        page.goto(url)
        page.wait_for_selector("#qa-question textarea")
        _send(page, Q)
        time.sleep(0.3)
        _send(page, second)
        page.wait_for_selector(".qa-waiting", timeout=5_000)  # the second is shown in line at once
        page.click("#qa-new")  # "New conversation" mid-answer must lose neither
        page.locator("#qa-question textarea").fill("a draft typed meanwhile")  # ...nor text typed meanwhile
        page.wait_for_function("document.querySelectorAll('.qa-answer, .qa-abstain').length >= 2", timeout=30_000)
        users = page.locator(".qa-user").all_inner_texts()
        assert users == [Q, second]  # in the order sent, each with its own answer
        assert page.input_value("#qa-question textarea") == "a draft typed meanwhile"
        assert page.locator(".qa-waiting, .qa-pending").count() == 0
        browser.close()
