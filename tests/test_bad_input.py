"""Bad questions through every door (Python API, CLI, chat, web API): a clear message or a normal answer, never a
traceback; and a Hypothesis search over qa.answer that finds only documented errors and well-formed answers."""

import io
import json
import re
import sys
import urllib.request

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import qa
from qa import cli, ui, ui_html
from qa.answering import ABSTAIN_TEXT
from qa.config import Settings
from qa.local_store import current_generation

from . import fakes

# name -> (question, None for "answers normally" or the start of the documented error message)
BAD = {
    "empty": ("", "The question is empty"),
    "whitespace": (" \n\t \u3000 ", "The question is empty"),
    "1 MB": ("How many soldiers? " * 52_632, "The question is 1,000,007 characters long; the limit is 2,000"),
    "only NULs": ("\x00\x00\x00", "The question is empty"),
    "NULs inside": ("How many\x00 soldiers\x00 would Europe send?", None),
    "lone surrogates": ("\ud800 How many soldiers \udfff would Europe send?", None),
    "RTL Arabic": ("كم عدد الجنود الذين سترسلهم الدول الأوروبية؟", None),
    "RTL override": ("\u202eHow many soldiers would Europe send?\u202c", None),
    "only punctuation": ("?!?!…;:--", None),
    "German": ("Wie viele Soldaten würden die europäischen Länder stellen?", None),
    "Chinese": ("欧洲国家会派出多少士兵？", None),
    "emoji": ("🪖🪖🪖 how many? 🇪🇺", None),
    "zero-width": ("\u200b\u200c\u200d\ufeff", None),
    "HTML": ("<script>alert(1)</script> soldiers?", None),
    "not text": (None, "The question must be text, not NoneType"),
    "bytes": (b"How many soldiers?", "The question must be text, not bytes"),
}
DOCUMENTED = re.compile(r"^(The question (is empty|is [\d,]+ characters long; the limit is|must be text, not)"
                        r"|history must be a list of earlier answers)")


@pytest.fixture
def s(embedder) -> Settings:
    fakes.register_reader("fake-reader")
    return Settings(embedder="fake", reader="fake-reader", progress=False)


def check_answer(a: qa.Answer, docs, index_dir) -> None:
    """What every answer must be, whatever the question."""
    assert isinstance(a, qa.Answer) and a.complete and isinstance(a.abstained, bool)
    json.dumps(a.to_dict(), ensure_ascii=False).encode("utf-8")  # plain, encodable data (no lone surrogates)
    assert a.index_version == current_generation(index_dir)
    if a.abstained:
        assert a.text == ABSTAIN_TEXT and a.citations == [] and a.support == [] and len(a.related) <= 3
        return
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", a.text)}
    assert markers == {c.n for c in a.citations} and markers
    for c in a.citations:
        assert (docs / c.source).read_text(encoding="utf-8")[c.start:c.end] == c.text
    for sup in a.support:
        assert sup.supported and all(sup.text in a.citations[n - 1].text for n in sup.citations)


@pytest.mark.parametrize("name", list(BAD))
def test_python_api(built, docs, s, name):
    question, error = BAD[name]
    if error:
        with pytest.raises(qa.InvalidQuestionError) as e:
            qa.answer(question, index_dir=built, settings=s)
        assert str(e.value).startswith(error)
    else:
        check_answer(qa.answer(question, index_dir=built, settings=s), docs, built)


@pytest.mark.parametrize("name", [n for n in BAD if isinstance(BAD[n][0], str)])
def test_cli(built, s, name, monkeypatch):
    question, error = BAD[name]
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("QA_GENERATOR", "fake-reader")
    monkeypatch.setenv("QA_ABSTAIN_THRESHOLD", "0")
    # Strict UTF-8 streams, as a terminal or a pipe has: printing a lone surrogate would raise here.
    out, err = io.BytesIO(), io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out, encoding="utf-8", errors="strict"))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(err, encoding="utf-8", errors="strict"))
    code = cli.main(["ask", question, "--index", str(built)])
    sys.stdout.flush(), sys.stderr.flush()
    stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    assert "Traceback" not in stdout + stderr
    if error:
        assert code == 2 and stderr.startswith(f"error: {error}") and stderr.count("\n") == 1
    else:
        assert code == 0 and stdout.strip() and not stderr


def test_cli_with_undecodable_bytes_in_argv(built, tmp_path):
    """A shell can pass bytes that are not UTF-8: Python turns them into lone surrogates."""
    import subprocess

    from .conftest import ROOT

    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from tests import fakes; fakes.register('fake'); "
            "fakes.register_reader('fake-reader'); from qa.cli import main; sys.exit(main())")
    env = {"QA_EMBEDDER": "fake", "QA_GENERATOR": "fake-reader", "QA_ABSTAIN_THRESHOLD": "0", "PATH": "/usr/bin",
           "HF_HUB_OFFLINE": "1", "LC_ALL": "C.UTF-8"}
    p = subprocess.run([sys.executable, "-c", code, str(ROOT), "ask", b"How many \xff\xfe soldiers would Europe send?",
                        "--index", str(built)], capture_output=True, env=env, timeout=120)
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr.decode(errors="replace")
    assert b"[1]" in p.stdout or b"don't say" in p.stdout


@pytest.mark.parametrize("name", [n for n in BAD if isinstance(BAD[n][0], str)])
def test_chat(built, docs, s, name):
    question, error = BAD[name]
    chat, conv = fakes.chat(ui.build_ui(built, docs, s), question)
    turns = conv.turns
    assert "Traceback" not in chat
    if name in ("empty", "whitespace"):  # nothing to send: the box just stays as it was
        assert turns == []
    elif error:
        assert "qa-error" in chat and ui_html.esc(error) in chat and turns[-1].error
    else:
        assert "qa-error" not in chat and not turns[-1].error
        check_answer(turns[-1].answer, docs, built)
        assert "<script>" not in chat  # the question is shown escaped


@pytest.fixture
def app(built, docs, s):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = ui.build_ui(built, docs, s)
    ui.launch(demo, port=port, settings=s, index_dir=built, docs_dir=docs, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}"
    demo.close()


def _call(url: str, endpoint: str, data: list) -> tuple[str, dict | str]:
    """One call of the web API over plain HTTP (JSON escapes lone surrogates, which gradio_client cannot send)."""
    req = urllib.request.Request(f"{url}/gradio_api/call/{endpoint}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    event_id = json.load(urllib.request.urlopen(req, timeout=30))["event_id"]
    body = urllib.request.urlopen(f"{url}/gradio_api/call/{endpoint}/{event_id}", timeout=60).read().decode()
    kind = re.findall(r"^event: (\w+)", body, re.M)[-1]
    payload = json.loads(re.findall(r"^data: (.*)$", body, re.M)[-1])
    return kind, payload


def test_web_api(app, built, docs):
    for name, (question, error) in BAD.items():
        if not isinstance(question, str):
            continue
        kind, payload = _call(app, "ask", [question, None])
        if error:
            assert kind == "error" and payload["error"].startswith(error), (name, payload)
        else:
            assert kind == "complete", (name, payload)
            a = payload[0]
            assert a["abstained"] or re.search(r"\[1\]", a["text"])
            for c in a["citations"]:
                assert (docs / c["source"]).read_text(encoding="utf-8")[c["start"]:c["end"]] == c["text"]
    kind, payload = _call(app, "ask", [42, None])
    assert kind == "error" and payload["error"] == "The question must be text, not int."
    kind, payload = _call(app, "search", ["soldiers", "many"])
    assert kind == "error" and payload["error"].startswith("Bad request: invalid literal for int()")


# -- Hypothesis ------------------------------------------------------------------------------------------------

WORDS = ["How", "many", "soldiers", "would", "European", "countries", "contribute", "safe", "zone", "Turkey",
         "Russia", "troops", "deep", "?", "and", "what", "about", "it", "the"]
odd_chars = st.sampled_from(["\x00", "\x07", "\ud800", "\udfff", "\u202e", "\u200b", "\ufeff", "\n", "\t", "\r",
                             "…", "؟", "士", "🪖", "\u0301", "\U0010ffff", "<", "&", "["])
sentences = st.lists(st.one_of(st.sampled_from(WORDS), odd_chars, st.text(max_size=8), st.just("[1]")),
                     max_size=25).map(" ".join)
not_text = st.one_of(st.none(), st.integers(), st.binary(max_size=20), st.lists(st.text(max_size=5), max_size=3))
# Weighted by repetition; sampled_from + flatmap because one_of flattens nested one_ofs into equal branches.
questions = st.sampled_from([
    st.text(alphabet=st.one_of(st.characters(), odd_chars), max_size=200),
    sentences, sentences, sentences,
    st.integers(1990, 2100).map(lambda n: "soldiers " * (n // 9)),  # around the 2,000-character limit
    not_text,
]).flatmap(lambda strategy: strategy)
turns = st.lists(st.one_of(
    st.text(max_size=60),
    st.tuples(st.text(max_size=40), st.text(max_size=40)),
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 3]),
                           "content": st.one_of(st.text(max_size=40), st.none())}),
    st.integers(), st.none(), st.binary(max_size=5),
), max_size=4)
histories = st.sampled_from([st.none(), turns, turns, st.one_of(st.text(max_size=20), st.integers())]).flatmap(
    lambda strategy: strategy)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import shutil

    from .conftest import SEEDS

    fakes.register("fake")
    fakes.register_reader("fake-reader")
    root = tmp_path_factory.mktemp("hypothesis")
    shutil.copytree(SEEDS, root / "docs")
    s = Settings(embedder="fake", reader="fake-reader", progress=False)
    qa.build_index(root / "docs", root / "index", settings=s)
    return root / "docs", root / "index", s


def _clearly_a_question(q, history=None) -> bool:
    return (isinstance(q, str) and any(ch.isalnum() for ch in q) and len(q) <= 1000
            and (history is None or isinstance(history, list)))


@settings(max_examples=1000, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(question=questions, history=histories)
def test_answer_finds_only_documented_errors_and_well_formed_answers(corpus, question, history):
    docs, index_dir, s = corpus
    try:
        a = qa.answer(question, index_dir=index_dir, history=history, settings=s)
    except qa.InvalidQuestionError as e:
        assert DOCUMENTED.match(str(e)), str(e)
        assert not _clearly_a_question(question, history), (question, history, str(e))
        event("documented error")
        return
    assert isinstance(question, str)
    check_answer(a, docs, index_dir)
    event("abstained" if a.abstained else "answered with a citation")


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(question=questions)
def test_stream_ends_with_the_answer_or_a_documented_error(corpus, question):
    docs, index_dir, s = corpus
    try:
        parts = list(qa.stream(question, index_dir=index_dir, settings=s))
    except qa.InvalidQuestionError as e:
        assert DOCUMENTED.match(str(e)) and not _clearly_a_question(question)
        return
    assert parts and parts[-1].complete and not any(p.complete for p in parts[:-1])
    check_answer(parts[-1], docs, index_dir)
