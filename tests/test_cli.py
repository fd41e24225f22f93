"""The `qa` command: what it prints, its JSON, and its errors (exit 2, no traceback)."""

import json

import pytest

from qa import cli
from qa.evaluation import load_squad, write_corpus


@pytest.fixture(autouse=True)
def fake_env(monkeypatch, embedder):
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("QA_RERANK", "0")
    monkeypatch.setenv("QA_PROGRESS", "0")


def test_index_reports_what_changed(docs, tmp_path, capsys):
    (docs / "bin.txt").write_bytes(b"\x00\x01")
    assert cli.main(["index", "--docs", str(docs), "--index", str(tmp_path / "i")]) == 0
    out = capsys.readouterr().out
    assert "added: 3" in out and "bin.txt: binary file" in out and "embedded" in out and "seconds:" in out
    assert cli.main(["index", "--docs", str(docs), "--index", str(tmp_path / "i"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["chunks_embedded"] == 0 and len(stats["unchanged"]) == 3
    assert {"source": "bin.txt", "reason": "binary file (contains NUL bytes)"} in stats["skipped"]


def test_search_text_and_json(built, capsys):
    assert cli.main(["search", "How many soldiers would European countries contribute?", "-k", "2",
                     "--index", str(built)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] ") and "002_0761b27352c754ab.txt [" in out
    assert cli.main(["search", "soldiers Europe", "--index", str(built), "--json", "-k", "3"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got) in (1, 2, 3) and set(got[0]) >= {"source", "title", "start", "end", "text", "score"}


@pytest.mark.parametrize("argv, message", [
    (["search", "   "], "question is empty"),
    (["search", "x", "--index", "/nonexistent/idx"], "No index at"),
    (["index", "--docs", "/nonexistent/docs", "--index", "/tmp/never"], "does not exist"),
    (["eval", "/nonexistent.json"], "No such file"),
])
def test_errors_are_one_clear_line(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_bad_setting_value_is_reported(monkeypatch, capsys):
    monkeypatch.setenv("QA_CHUNK_TOKENS", "lots")
    assert cli.main(["settings"]) == 2
    assert "QA_CHUNK_TOKENS" in capsys.readouterr().err


def test_settings_lists_every_field(capsys):
    assert cli.main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "QA_EMBEDDER" in out and "embedder = 'fake'" in out


def test_eval_on_a_small_squad_file(tmp_path, capsys):
    squad = {"version": "v2.0", "data": [
        {"title": "Zones", "paragraphs": [
            {"context": "The buffer zone is 32 km deep. Turkey proposed it.",
             "qas": [{"id": "1", "question": "How deep is the buffer zone?", "is_impossible": False,
                      "answers": [{"text": "32 km", "answer_start": 19}]},
                     {"id": "2", "question": "Who painted it?", "is_impossible": True, "answers": []}]},
            {"context": "Penguins live in Antarctica and eat krill.",
             "qas": [{"id": "3", "question": "What do penguins eat?", "is_impossible": False,
                      "answers": [{"text": "krill", "answer_start": 36}]}]}]},
        {"title": "Other/Article", "paragraphs": [
            {"context": "Wombats dig burrows.", "qas": [{"id": "4", "question": "What do wombats dig?",
                                                     "answers": [{"text": "burrows", "answer_start": 12}]}]}]}]}
    f = tmp_path / "s.json"
    f.write_text(json.dumps(squad))
    assert cli.main(["eval", str(f), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["answerable"] == 3 and report["unanswerable"] == 1
    assert report["retrieval"]["recall@10"] == 1.0 and 0 < report["retrieval"]["mrr@10"] <= 1


def test_write_corpus_offsets_point_at_the_answers(tmp_path):
    from .conftest import SQUAD

    if not SQUAD.exists():
        pytest.skip("shared SQuAD file not present")
    questions = write_corpus(load_squad(SQUAD), tmp_path)
    texts = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()}
    assert len(texts) == 5 and sum(not q.impossible for q in questions) == 705
    for q in questions:
        for s, e, t in q.golds:
            assert texts[q.source][s:e] == t


def test_index_reports_each_stage_on_stderr_unless_quiet(docs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("QA_PROGRESS", "1")
    assert cli.main(["index", "--docs", str(docs), "--index", str(tmp_path / "i")]) == 0
    err = capsys.readouterr().err.splitlines()
    # Not a terminal: one line as each stage starts and one as it ends, with its size and its time.
    assert [line.split(":")[0] for line in err] == ["reading and chunking", "reading and chunking", "embedding",
                                                    "embedding", "embedding sentences", "embedding sentences",
                                                    "writing", "writing"], err
    assert err[4].startswith("embedding sentences: ") and err[4].endswith(" sentences")
    assert err[0] == "reading and chunking: 3 files" and err[1].endswith(" s") and "done in" in err[1]
    assert cli.main(["index", "--docs", str(docs), "--index", str(tmp_path / "j"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_store_flag_builds_and_searches_in_milvus_lite(docs, tmp_path, capsys):
    pytest.importorskip("milvus_lite")
    from qa import milvus

    db = str(tmp_path / "m.db")
    try:
        assert cli.main(["index", "--docs", str(docs), "--index", "idx", "--store", db, "--quiet"]) == 0
        assert "qa_idx_v000001" in capsys.readouterr().out
        assert cli.main(["search", "How many soldiers would European countries contribute?", "--index", "idx",
                         "--store", db, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["source"] == "002_0761b27352c754ab.txt"
        assert not (tmp_path / "idx").exists()
    finally:
        milvus.close_clients()
