"""`qa eval --dialogues`: doc2dial-format folders scored as ../shared/README.md says, with the fake models."""

import json
import shutil

import pytest

import qa
from qa import cli
from qa.evaluation import DialogueTurn, dialogue_hit, load_turns, run_dialogue_eval, sample_turns
from qa.search import Passage

from . import fakes
from .conftest import SEEDS

MUNICH = "The idea is that European countries would pitch in a total of about 1,500 soldiers."
PAGE = "002_0761b27352c754ab.txt"


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "dial"
    shutil.copytree(SEEDS, d / "documents")
    text = (d / "documents" / PAGE).read_text(encoding="utf-8")
    start = text.index(MUNICH)
    gold = [{"text": MUNICH, "answer_start": start}]
    turns = [
        {"id": "a_1", "doc_file": PAGE, "question": "How many soldiers would European countries contribute?",
         "history": [], "answers": gold},
        {"id": "a_3", "doc_file": PAGE, "question": "and the European countries, how many soldiers?",
         "history": [{"role": "user", "text": "What are the allies asked for?"},
                     {"role": "agent", "text": "To commit troops to a buffer zone."}], "answers": gold},
        {"id": "b_3", "doc_file": PAGE, "question": "what about Europe?",
         "history": [{"role": "user", "text": "How many soldiers would European countries contribute?"}],
         "answers": gold},
    ]
    (d / "turns.jsonl").write_text("\n".join(json.dumps(t) for t in turns) + "\n", encoding="utf-8")
    return d


def test_a_hit_covers_at_least_half_of_a_gold_span():
    t = DialogueTurn("x", "q", (), "p.txt", ((100, 200),))
    assert dialogue_hit(Passage("p.txt", "", 150, 400, "", 0.0), t)  # exactly half
    assert not dialogue_hit(Passage("p.txt", "", 151, 400, "", 0.0), t)
    assert not dialogue_hit(Passage("other.txt", "", 0, 400, "", 0.0), t)


def test_turns_are_sampled_later_then_first_from_one_seeded_draw(folder):
    turns = load_turns(folder)
    later, first = sample_turns(turns, 120, 40, 7)
    assert {t.id for t in later} == {"a_3", "b_3"} and [t.id for t in first] == ["a_1"]
    assert later[0].history and not first[0].history


def test_dialogue_eval_scores_search_follow_ups_and_citations(folder, tmp_path, settings):
    fakes.register_reader()
    s = qa.Settings(embedder="fake", reader="fake-reader", progress=False)
    report = run_dialogue_eval(folder, s, workdir=tmp_path / "work")
    d = report["dialogues"]
    assert report["pages"] == 3 and d["first_turns"] == 1 and d["later_turns"] == 2
    assert d["first@5"] == 1.0  # the first turn's question is the gold sentence's own words
    assert 0.0 <= d["alone@5"] <= d["followup@5"] <= 1.0
    # "and the European countries, how many soldiers?" is answered with "1,500", copied out of the gold sentence
    # ("what about Europe?", read with the question before it, may be answered too, by the fake from another one)
    assert d["answered"] >= 0.5 and d["cited"] * d["answered"] * d["later_turns"] >= 1


def test_the_cli_runs_it_and_says_what_it_needs(folder, tmp_path, monkeypatch, capsys, settings):
    fakes.register_reader()
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("QA_GENERATOR", "fake-reader")
    monkeypatch.setenv("QA_PROGRESS", "0")
    assert cli.main(["eval", "--dialogues", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dialogues"]["first_turns"] == 1
    assert cli.main(["eval", "--dialogues", str(tmp_path)]) == 2
    assert "not a doc2dial-format folder" in capsys.readouterr().err
    assert cli.main(["eval"]) == 2
    assert "--dialogues DIR" in capsys.readouterr().err


def test_tuning_turns_never_include_the_public_sample():
    from qa.evaluation import tuning_turns

    turns = [DialogueTurn(f"t{i}", f"q{i}", (("user", "hi"),) if i % 5 else (), "p.txt", ((0, 1),))
             for i in range(400)]
    later, first = sample_turns(turns, 120, 40, 7)
    tune = tuning_turns(turns, 100)
    assert len(tune) == 100 and all(t.history for t in tune)
    assert not {t.id for t in tune} & {t.id for t in later + first}
    assert [t.id for t in tuning_turns(turns, 100)] == [t.id for t in tune]  # one seeded draw
    assert len(tuning_turns(turns, 10_000)) == 320 - 120  # all there are, not an error
