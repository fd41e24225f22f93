"""The Gradio app with fake models through the real seams: rendering is inert, uploads are confined, the API
returns the same object as qa.answer(), the file route serves nothing private, and the chat streams."""

import dataclasses
import html
import json
import os
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import qa
from qa import ui, ui_html
from qa.config import Settings
from qa.local_store import load_index

from . import fakes

Q = "How many soldiers would European countries contribute?"
MUNICH = "002_0761b27352c754ab.txt"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)> ![t](http://203.0.113.9/p.png)"


@pytest.fixture
def s(embedder) -> Settings:
    fakes.register_reader("fake-reader")
    return Settings(embedder="fake", reader="fake-reader", progress=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app(built, docs, s, tmp_path):
    demo = ui.build_ui(built, docs, s)
    port = _free_port()
    ui.launch(demo, port=port, settings=s, index_dir=built, docs_dir=docs, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}", built, docs, demo
    demo.close()


# -- rendering ------------------------------------------------------------------------------------------------------

def test_answer_renders_with_linked_markers_and_highlighted_sentence(built, s):
    a = qa.answer(Q, index_dir=built, settings=s)
    loaded = load_index(built)
    turn = ui_html.Turn(a, tuple(ui_html.window(loaded, c) for c in a.citations))
    chat = ui_html.render_chat([turn])
    assert "qa-answer" in chat and "qa-abstain" not in chat
    assert re.search(r"<a class='qa-cite' href='#qa-src-1-1' data-target='qa-src-1-1'[^>]*>\[1\]</a>", chat)
    sources = ui_html.render_sources([turn])
    assert "id='qa-src-1-1'" in sources
    cited = a.citations[0].text
    assert f"<mark class='qa-hl'>{ui_html.esc(cited)}</mark>" in sources
    before, mid, after = turn.windows[0]
    assert mid == cited and len(before) > 100 and len(after) > 100  # a real window of the article around it


def test_window_text_matches_the_article_around_the_citation(built, docs, s):
    loaded = load_index(built)
    for p in qa.search("safe zone troops", k=5, index_dir=built, settings=s):
        before, mid, after = ui_html.window(loaded, p, chars=200)
        article = (docs / p.source).read_text(encoding="utf-8")
        assert mid == article[p.start:p.end]
        # Whitespace between chunks may be normalised; every word around the citation is the article's own.
        assert " ".join(before.strip("… ").split()) in " ".join(article[:p.start].split())
        assert " ".join(after.strip(" …").split()) in " ".join(article[p.end:].split())


def test_abstention_looks_different_and_offers_related_passages_only(built, s):
    a = qa.answer("Who won the 2018 FIFA World Cup?", index_dir=built, settings=s)
    assert a.abstained
    turn = ui_html.Turn(a, tuple(ui_html.window(load_index(built), p) for p in a.related))
    chat = ui_html.render_chat([turn])
    assert "qa-abstain" in chat and "Not in the articles" in chat and "qa-cite" not in chat
    sources = ui_html.render_sources([turn])
    assert "qa-related" in sources and "qa-src-1-" not in sources


def test_follow_up_shows_what_was_searched_for():
    a = qa.Answer("and the US?", "200 [1]", [], False, "How many soldiers would the US keep? and the US?",
                  history_used=True)
    assert "searched for: <q>How many soldiers would the US keep? and the US?</q>" in ui_html.render_chat([ui_html.Turn(a)])
    plain = qa.Answer("Q?", "x", [], False, "Q?")
    assert "searched for" not in ui_html.render_chat([ui_html.Turn(plain)])
    # A long conversation pasted into the search: the chat shows its start, the whole on hover.
    long = "Why does Turkey dislike it? (What is the YPG? " + "The forces support the Syrian Democratic Forces. " * 8 + ")"
    chat = ui_html.render_chat([ui_html.Turn(qa.Answer("Why does Turkey dislike it?", "x", [], False, long,
                                                       history_used=True))])
    shown = re.search(r"searched for: <q>(.*?)</q>", chat).group(1)
    assert shown.startswith("Why does Turkey dislike it? (What is the YPG?") and shown.endswith(" …")
    assert len(shown) <= ui_html.SEARCHED_CHARS + 2 and f"title='{html.escape(long, quote=True)}'" in chat
    # Searched with the conversation, but it found nothing the question alone would not: nothing to show.
    same = qa.Answer("Who is Ilhan Ahmed?", "x", [], False, "Who is Ilhan Ahmed? (Why does Turkey oppose the YPG?)")
    assert "searched for" not in ui_html.render_chat([ui_html.Turn(same)])


def test_article_and_model_text_is_rendered_inert():
    p = qa.Passage(HOSTILE, HOSTILE, 0, len(HOSTILE), HOSTILE, 1.0)
    c = qa.Citation(**{**p.__dict__, "n": 1})
    a = qa.Answer(HOSTILE, HOSTILE + " [1]", [c], False, HOSTILE)
    turn = ui_html.Turn(a, ((HOSTILE, HOSTILE, HOSTILE),))
    page = ui_html.render_chat([turn]) + ui_html.render_sources([turn], show_scores=True)
    assert "<script" not in page and "<img" not in page and "onerror=alert" not in page.replace("onerror=alert(2)&gt;", "")
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    # Markdown is not interpreted either: the image syntax stays literal text.
    assert "![t](http://203.0.113.9/p.png)" in page and "src=\"http" not in page and "src='http" not in page


def test_library_lists_articles_and_escapes_titles(tmp_path, settings):
    docs = tmp_path / "d"
    docs.mkdir()
    (docs / "a.md").write_text("<b onmouseover=alert(1)>Bold</b> title\n\nSome text about ferries.", encoding="utf-8")
    (docs / "empty.txt").write_text("", encoding="utf-8")
    qa.build_index(docs, tmp_path / "i", settings=settings)
    page = ui_html.render_library(tmp_path / "i")
    assert "<code>a.md</code>" in page and "&lt;b onmouseover=alert(1)&gt;Bold&lt;/b&gt; title" in page
    assert "<b " not in page and "empty.txt" in page  # skipped files are listed with their reason


def test_library_reports_a_missing_index(tmp_path):
    assert "qa-error" in ui_html.render_library(tmp_path / "nothing")


# -- uploads --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,expected", [
    ("report.txt", "report.txt"), ("../../etc/evil.md", "evil.md"), ("..\\..\\win.html", "win.html"),
    (".hidden.txt", "hidden.txt"), ("/abs/path/Notes.PDF", "Notes.pdf"), ("we<ird>|na:me.txt", "we_ird_na_me.txt"),
])
def test_safe_filename(name, expected):
    assert ui.safe_filename(name) == expected


@pytest.mark.parametrize("name", ["run.sh", "archive.tar.gz", "noext", "x.exe"])
def test_safe_filename_refuses_what_the_app_does_not_read(name):
    with pytest.raises(ValueError, match="not an article"):
        ui.safe_filename(name)


def test_uploads_land_only_in_the_docs_folder(tmp_path):
    src = tmp_path / "up"
    src.mkdir()
    good = src / "new.md"
    good.write_text("A ferry.", encoding="utf-8")
    big = src / "big.txt"
    big.write_bytes(b"x" * 2_000_001)
    (src / "empty.txt").write_bytes(b"")
    docs = tmp_path / "docs"
    saved, problems = ui.save_uploads([str(good), str(big), str(src / "empty.txt"), str(src / "x.sh"),
                                       str(src / "missing.txt")], docs, max_mb=2)
    assert saved == ["new.md"] and (docs / "new.md").read_text(encoding="utf-8") == "A ferry."
    assert len(problems) == 4
    assert any("limit is 2 MB" in p for p in problems) and any("empty" in p for p in problems)
    assert sorted(p.name for p in docs.iterdir()) == ["new.md"]  # no temporary files left behind


# -- the running app ------------------------------------------------------------------------------------------------

def test_api_ask_returns_the_same_object_as_qa_answer(app, s):
    from gradio_client import Client

    url, index_dir, _, _ = app
    client = Client(url, verbose=False)
    got = client.predict(Q, None, api_name="/ask")
    want = qa.answer(Q, index_dir=index_dir, settings=s).to_dict()
    got.pop("seconds"), want.pop("seconds")
    assert got == want and got["text"] == "1,500 [1]" and got["citations"][0]["source"] == MUNICH
    hits = client.predict(Q, 3, api_name="/search")
    assert [h["source"] for h in hits] == [p.source for p in qa.search(Q, k=3, index_dir=index_dir, settings=s)]
    follow = client.predict("and how many US troops?", [Q], api_name="/ask")  # earlier questions make a follow-up
    assert follow["searched_for"] == f"and how many US troops? ({Q})"


def test_api_reports_bad_questions_as_errors_not_tracebacks(app):
    from gradio_client import Client

    client = Client(app[0], verbose=False)
    with pytest.raises(Exception, match="(?i)empty|error") as e:
        client.predict("   ", None, api_name="/ask")
    assert "Traceback" not in str(e.value)


def test_ui_events_are_not_callable_as_api(app):
    from gradio_client import Client

    info = Client(app[0], verbose=False).view_api(print_info=False, return_format="dict")
    assert set(info["named_endpoints"]) == {"/ask", "/search"}


def _private_files(index_dir, docs, cache_dir) -> dict[str, Path]:
    idx = Path(index_dir).resolve()
    files = {"index CURRENT": idx / "CURRENT", "index manifest": next(idx.glob("v*/manifest.json")),
             "index chunks": next(idx.glob("v*/chunks.jsonl")), "article": next(Path(docs).resolve().glob("*.txt")),
             "default index": Path("index/CURRENT").resolve(), "project file": Path("pyproject.toml").resolve(),
             "system file": Path("/etc/passwd")}
    cached = next((p for p in Path(cache_dir).rglob("*") if p.is_file()), None)
    home = next((p for p in (Path.home() / n for n in (".bashrc", ".profile", ".gitconfig")) if p.is_file()), None)
    if cached:
        files["model cache"] = cached
    if home:
        files["home"] = home
    return files


def test_file_route_serves_nothing_private(app, s):
    """Absolute, relative, ../ and URL-encoded (once and twice) paths to the index, the model cache, the home
    folder, the articles and the project: every one refused (403), none served."""
    url, index_dir, docs, _ = app
    files = _private_files(index_dir, docs, s.cache_dir)
    assert {"index CURRENT", "article", "project file"} <= set(files)
    tried = 0
    for name, path in files.items():
        rel = os.path.relpath(path)
        up = "../" * 12 + str(path).lstrip("/")
        routes = [str(path), rel, up, urllib.request.quote(str(path), safe=""), urllib.request.quote(up, safe=""),
                  urllib.request.quote(urllib.request.quote(up, safe=""), safe=""), up.replace("../", "..%2f"),
                  up.replace("../", "%2e%2e/")]
        for route in routes:
            for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/static/", "/static/"):
                tried += 1
                try:
                    with urllib.request.urlopen(url + prefix + route, timeout=10) as r:
                        status, body = r.status, r.read(200)
                except urllib.error.HTTPError as e:
                    status, body = e.code, b""
                assert status in (403, 404), (name, prefix + route, status, body)
                if prefix == "/gradio_api/file=":  # the route exists and says no, rather than not finding it
                    assert status == 403, (name, route, status)
    assert tried >= 7 * 8 * 4


def test_launch_binds_localhost_without_share(app):
    demo = app[3]
    assert demo.server_name == "127.0.0.1" and not demo.share and demo.share_url is None
    assert demo.max_file_size == ui.MAX_UPLOAD_MB * 1_000_000


def test_chat_shows_the_question_being_answered_then_the_cited_answer_in_its_sentence(built, docs, s):
    ask, answer_waiting, _ = fakes.chat_fns(ui.build_ui(built, docs, s))
    conv = ui.Conversation()
    chat, _ = ask(Q, conv, False)
    assert "qa-waiting" in chat and conv.waiting == [Q]  # shown at once, in line
    updates = list(answer_waiting(conv, 5, "fake-reader", False))
    assert any("qa-pending" in u[0] for u in updates)  # something shows while it is answered
    early = [u[0] for u in updates if "qa-pending" in u[0] and "1,500" in u[0]]
    assert early and "early answer from the best passages" in early[0]  # marked as early until the final one
    chat, sources = updates[-1]
    assert "1,500" in chat and "qa-cite" in chat and MUNICH in sources
    # The short answer is shown inside the verbatim sentence it came from, marked.
    assert "<blockquote class='qa-context'>“The idea is that European countries would pitch in a total of about " \
           "<mark>1,500</mark> soldiers.”" in chat
    assert len(conv.turns) == 1 and conv.turns[0].answer.text == "1,500 [1]" and not conv.waiting
    # A follow-up carries the conversation and is answered in turn 2.
    ask("and how many US troops?", conv, False)
    follow = list(answer_waiting(conv, 5, "fake-reader", False))[-1]
    assert len(conv.turns) == 2 and "Q2:" in follow[1]


def test_questions_sent_while_answering_wait_in_line_and_are_all_answered(built, docs, s):
    ask, answer_waiting, clear = fakes.chat_fns(ui.build_ui(built, docs, s))
    conv = ui.Conversation()
    ask(Q, conv, False)
    run = answer_waiting(conv, 5, "fake-reader", False)
    next(run)  # the first question is being answered...
    chat, _ = ask("How deep would the safe zone be?", conv, False)  # ...when the second is sent
    assert conv.current == Q and conv.waiting == ["How deep would the safe zone be?"]
    assert "qa-pending" in chat and "qa-waiting" in chat and "answered next" in chat
    clear(conv, False)  # "New conversation" mid-answer keeps both questions
    assert "qa-waiting" in list(run)[-1][0]  # the first answered, the second still in line
    rest = list(answer_waiting(conv, 5, "fake-reader", False))  # the second send's own event
    assert [t.answer.question for t in conv.turns] == [Q, "How deep would the safe zone be?"]
    assert not conv.waiting and not conv.current and "qa-waiting" not in rest[-1][0]
    # An event that finds nothing left to answer changes nothing.
    assert len(list(answer_waiting(conv, 5, "fake-reader", False))) == 1 and len(conv.turns) == 2


def test_sends_that_arrive_out_of_order_are_answered_in_the_order_sent():
    conv = ui.Conversation()
    conv.offer(json.dumps([[1, "first?"], [2, "second?"]]))  # the second send arrived first, carrying both
    conv.offer(json.dumps([[1, "first?"]]))  # then the first: nothing new
    conv.offer(json.dumps([[1, "first?"], [2, "second?"], [3, "  "], [4, "third?"]]))
    conv.offer("not json")  # a hand-made request changes nothing
    assert conv.waiting == ["first?", "second?", "third?"]


def test_chat_shows_errors_in_the_page(built, docs, s):
    ask, answer_waiting, _ = fakes.chat_fns(ui.build_ui(built, docs, s))
    conv = ui.Conversation()
    ask("x" * 5000, conv, False)
    chat, _ = list(answer_waiting(conv, 5, "fake-reader", False))[-1]
    assert "qa-error" in chat and "Could not answer" in chat and conv.turns[0].error


def test_model_choice_is_limited_to_configured_models(monkeypatch, s):
    monkeypatch.setenv("QA_UI_MODELS", "smollm2, /models/x.gguf")
    assert ui.model_choices(s) == ["fake-reader", "smollm2", "/models/x.gguf"]


def test_rebuild_while_another_build_runs_waits_and_says_so(built, docs, s):
    import threading

    from filelock import FileLock

    demo = ui.build_ui(built, docs, s)
    rebuild = next(fn.fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "rebuild")
    said: list[str] = []
    result: list[tuple] = []
    lock = FileLock(str(Path(built) / ".lock"))
    lock.acquire()  # another process's build is running
    try:
        (docs / "new.txt").write_text("Wombats guard the zone.", encoding="utf-8")
        t = threading.Thread(target=lambda: result.append(rebuild(lambda *a, **k: said.append(k.get("desc", "")))))
        t.start()
        t.join(timeout=2)
        assert t.is_alive() and "waiting for another build" in said  # queued, with a message, not failed
    finally:
        lock.release()
    t.join(timeout=60)
    status, _ = result[0]
    assert "qa-error" not in status and "new.txt" in status


def test_the_build_summary_counts_chunks_and_sentences(docs, tmp_path, s):
    first = qa.build_index(docs, tmp_path / "i", settings=s)
    html = ui_html.render_stats(first)
    assert f"{first.chunks} chunks, {first.chunks} embedded, 0 reused" in html
    assert f"{first.sentences} sentences." in html and first.sentences > first.chunks
    again = ui_html.render_stats(qa.build_index(docs, tmp_path / "i", settings=s))
    assert "Nothing changed" in again and "0 embedded, 92 reused".replace("92", str(first.chunks)) in again


@pytest.mark.parametrize(("flags", "env", "expected"), [
    ((None, None), {}, (None, None)),  # Gradio decides: GRADIO_SERVER_NAME / _PORT, else 127.0.0.1:7860
    ((None, None), {"GRADIO_SERVER_PORT": "7931"}, (None, None)),  # ...and it reads its own variables
    ((None, None), {"QA_HOST": "127.0.0.3", "QA_PORT": "7001"}, ("127.0.0.3", 7001)),
    (("127.0.0.4", 7002), {"QA_HOST": "127.0.0.3", "QA_PORT": "7001"}, ("127.0.0.4", 7002)),  # flags win
])
def test_server_address_flags_then_qa_variables_then_gradio(flags, env, expected):
    assert ui.server_address(*flags, env) == expected


def test_a_bad_qa_port_is_a_clear_error():
    with pytest.raises(SystemExit, match="QA_PORT='http' is not a port number"):
        ui.server_address(None, None, {"QA_PORT": "http"})


def _listening(host: str, port: int, proc, seconds: float = 60) -> bool:
    import time

    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.3)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("how", ["gradio variables", "flags over them"])
def test_python_app_py_listens_where_gradio_variables_or_flags_say(tmp_path, how):
    import shutil
    import subprocess
    import sys

    from .conftest import ROOT, SEEDS

    def free() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    shutil.copytree(SEEDS, tmp_path / "docs")
    env_port, flag_port = free(), free()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(env_port), GRADIO_SERVER_NAME="127.0.0.2", QA_MODEL_PROCESS="1")
    env.pop("QA_PORT", None)
    env.pop("QA_HOST", None)
    flags = ["--port", str(flag_port), "--host", "127.0.0.1"] if how == "flags over them" else []
    proc = subprocess.Popen([sys.executable, "app.py", "--index", str(tmp_path / "index"), "--docs",
                             str(tmp_path / "docs"), *flags], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        if flags:
            assert _listening("127.0.0.1", flag_port, proc)
            assert not _listening("127.0.0.2", env_port, proc, seconds=1)
        else:
            assert _listening("127.0.0.2", env_port, proc)
            assert not _listening("127.0.0.1", env_port, proc, seconds=1)  # GRADIO_SERVER_NAME was obeyed too
    finally:
        proc.kill()
        proc.wait()


def test_the_newest_turn_with_sources_stays_open_after_an_error(built, docs, s):
    ask, answer_waiting, _ = fakes.chat_fns(ui.build_ui(built, docs, s))
    conv = ui.Conversation()
    for q in (Q, "x" * 5000):  # an answer, then an error
        ask(q, conv, False)
        list(answer_waiting(conv, 5, "fake-reader", False))
    html = ui_html.render_sources(conv.turns)
    assert "id='qa-turn-1' open" in html and conv.turns[1].error


def test_an_overview_shows_one_line_per_article_and_says_what_its_confidence_means(built):
    settings = Settings(embedder="fake", reader="no-such-reader", progress=False)
    a = qa.answer("What are these articles about?", index_dir=built, settings=settings)
    page = ui_html.render_chat([ui_html.Turn(a)])
    assert "class='qa-text qa-lines'" in page and "its article&#x27;s opening" in page
    assert "\n" in a.text and a.text.count("[") == len(a.citations)
    short = dataclasses.replace(a, shape="short", text="2,000 [1]")
    assert "qa-lines" not in ui_html.render_chat([ui_html.Turn(short)])


def test_a_reply_to_small_talk_shows_no_badge_sources_or_confidence(built):
    settings = Settings(embedder="fake", reader="no-such-reader", progress=False)
    ov = qa.answer("What are these articles about?", index_dir=built, settings=settings)
    hi = qa.answer("thanks!", index_dir=built, settings=settings)
    turns = [ui_html.Turn(ov), ui_html.Turn(hi)]
    page = ui_html.render_chat(turns)
    reply = page[page.index("qa-chat-reply"):]
    assert "welcome" in reply and "Not in the articles" not in reply and "likely right" not in reply
    sources = ui_html.render_sources(turns)
    assert "Q2" not in sources and "id='qa-turn-1' open" in sources  # the overview's sources stay open


def test_the_app_answers_hello_without_sources_and_keeps_it_out_of_the_next_search(built, docs, s):
    ask, answer_waiting, _ = fakes.chat_fns(ui.build_ui(built, docs, s))
    conv = ui.Conversation()
    ask("Hello!", conv, False)
    chat, sources = list(answer_waiting(conv, 5, "fake-reader", False))[-1]
    assert "qa-chat-reply" in chat and "Not in the articles" not in chat and "Q1" not in sources
    ask(Q, conv, False)
    chat, sources = list(answer_waiting(conv, 5, "fake-reader", False))[-1]
    assert "1,500" in chat and "Q2:" in sources and conv.turns[1].answer.searched_for == Q


def test_are_you_sure_shows_the_last_answers_sentences_with_its_confidence(built, docs, s):
    ask, answer_waiting, _ = fakes.chat_fns(ui.build_ui(built, docs, s))
    conv = ui.Conversation()
    ask(Q, conv, False)
    list(answer_waiting(conv, 5, "fake-reader", False))
    ask("Are you sure?", conv, False)
    chat, sources = list(answer_waiting(conv, 5, "fake-reader", False))[-1]
    first, sure = conv.turns[0].answer, conv.turns[1].answer
    assert sure.shape == "source" and sure.citations == first.citations and "Q2:" in sources
    last = chat[chat.rindex("qa-msg qa-bot"):]
    assert "qa-lines" in last and f"{first.confidence:.0%} likely right" in last and "answer whose sentences" in last


def test_a_question_read_with_its_spelling_corrected_says_how_it_was_read(built, docs, s):
    ask, answer_waiting, _ = fakes.chat_fns(ui.build_ui(built, docs, s))
    conv = ui.Conversation()
    ask("How many soldirs would europan countries contribute?", conv, False)
    chat, _ = list(answer_waiting(conv, 5, "fake-reader", False))[-1]
    assert "read as: <q>How many soldiers would European countries contribute?</q>" in chat and "1,500" in chat
    assert "How many soldirs would europan" in chat  # the question as typed stays in the chat
