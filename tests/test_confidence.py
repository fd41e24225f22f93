"""Confidence as the probability of being right: what counts as right, the reliability table, the fitting script's
pure parts, and `qa eval --selqa` (SelQA answer-sentence files scored as ../shared/README.md says), with fakes."""

import json

import pytest

import qa
from qa import cli
from qa.answering import Answer, Citation
from qa.evaluation import (
    Question,
    format_selqa_report,
    load_selqa,
    reliability,
    run_selqa_eval,
    selqa_right,
    squad_right,
)

from . import fakes

ITEMS = [
    {"question": "How many soldiers would European countries contribute?", "article": "Syria", "section": "Plan",
     "q_types": ["how"], "answers": [1],
     "candidates": ["Graham spoke in Munich.", "European countries would pitch in about 1,500 soldiers.",
                    "The zone runs along the border."]},
    {"question": "Where did Graham speak?", "article": "Syria", "section": "Plan", "q_types": ["where"],
     "answers": [0], "candidates": ["Graham spoke in Munich.", "European countries would pitch in about 1,500 "
                                    "soldiers.", "The zone runs along the border."]},
    {"question": "Who won the 2018 FIFA World Cup?", "article": "Football", "section": "Cups", "q_types": ["who"],
     "answers": [0], "candidates": ["France beat Croatia in the final."]},
]


@pytest.fixture
def selqa_file(tmp_path):
    path = tmp_path / "selqa.json"
    path.write_text(json.dumps(ITEMS), encoding="utf-8")
    return path


def _answer(shape="short", short="", cites=(), abstained=False):
    return Answer("q", "t", list(cites), abstained, "q", shape="abstained" if abstained else shape, short=short)


def test_selqa_sections_become_files_with_exact_answer_sentence_offsets(selqa_file, tmp_path):
    qs = load_selqa(selqa_file, tmp_path / "docs")
    assert len(qs) == 3 and len(list((tmp_path / "docs").iterdir())) == 2, "one file per (article, section)"
    text = (tmp_path / "docs" / qs[0].source).read_text(encoding="utf-8")
    assert text.startswith("Syria — Plan\n\nGraham spoke in Munich. European")
    (start, end), = qs[0].golds
    assert text[start:end] == ITEMS[0]["candidates"][1] and qs[0].q_types == ("how",) and qs[0].article == "Syria"


def test_a_selqa_hit_covers_half_an_answer_sentence(selqa_file, tmp_path):
    q = load_selqa(selqa_file, tmp_path / "docs")[0]
    (s, e), = q.golds
    half = Citation(q.source, "", s, s + (e - s + 1) // 2, "", 0.0)
    less = Citation(q.source, "", s, s + (e - s) // 2 - 1, "", 0.0)
    assert selqa_right(_answer(cites=[half]), q) and not selqa_right(_answer(cites=[less]), q)
    assert not selqa_right(_answer(cites=[half], abstained=True), q), "an abstention is never a hit"
    assert not selqa_right(_answer(cites=[Citation("other.txt", "", s, e, "", 0.0)]), q)


def test_right_means_f1_of_a_half_for_a_short_answer_and_a_covered_gold_for_quotes():
    q = Question("1", "q", "a.txt", ((10, 30, "the Treaty of Paris"),), False)
    assert squad_right(_answer(short="Treaty of Paris 1763"), q)  # F1 0.857
    assert squad_right(_answer(short="Paris"), q)  # F1 exactly 0.5: recall 1/3, precision 1
    assert not squad_right(_answer(short="Versailles"), q)
    assert squad_right(_answer(short="signed the Treaty of Paris in a hall in the city of Paris"), q)  # holds it
    covering = Citation("a.txt", "", 0, 40, "", 0.0)
    assert squad_right(_answer(shape="quotes", cites=[covering]), q)
    assert not squad_right(_answer(shape="quotes", cites=[Citation("a.txt", "", 15, 40, "", 0.0)]), q)
    assert not squad_right(_answer(short="Treaty of Paris"), Question("2", "q", "a.txt", (), True))


def test_reliability_counts_each_bin_and_weights_the_error_by_its_answers():
    pairs = [(0.95, True)] * 9 + [(0.95, False)] + [(0.3, True)] * 2 + [(0.3, False)] * 8
    r = reliability(pairs)
    assert [b["answers"] for b in r["bins"]] == [10, 10] and r["answers"] == 20
    assert r["bins"][0] == {"bin": "0.2-0.4", "answers": 10, "confidence": 0.3, "right": 0.2}
    assert r["ece"] == pytest.approx(0.5 * 0.1 + 0.5 * 0.05)
    assert r["wrong_at_90_or_more"] == pytest.approx(1 / 9, abs=1e-4)


def test_the_ece_a_perfect_confidence_would_show_shrinks_with_more_answers_and_is_reported_beside_the_ece():
    from qa.evaluation import _calibration_line, ece_if_calibrated

    few, many = ece_if_calibrated([0.5, 0.7] * 20), ece_if_calibrated([0.5, 0.7] * 2000)
    assert 0.03 < few["median"] < few["p95"] < 0.2  # 40 answers: far from 0 though perfectly calibrated
    assert many["p95"] < 0.02 < few["median"]
    assert ece_if_calibrated([0.0, 1.0] * 10) == {"median": 0.0, "p95": 0.0}  # certain and right: no noise
    assert ece_if_calibrated([0.5, 0.7] * 20) == few  # seeded: the same figure every run
    r = reliability([(0.5, True), (0.7, False)] * 20)
    assert r["ece_if_calibrated"] == few
    assert f"median {few['median']:.3f}, 95 % under {few['p95']:.3f}" in _calibration_line(r)


def test_the_fit_is_a_logistic_model_that_learns_which_signal_predicts_being_right():
    import random

    from qa.weights.fit_confidence import fit, predict, refusal_point

    rng = random.Random(0)
    rows = []
    for _ in range(400):
        rel, noise = rng.uniform(-6, 6), rng.uniform(-6, 6)
        rows.append({"signals": {"relevance": rel, "noise": noise}, "right": rng.random() < 1 / (1 + 2.72 ** -rel),
                     "answerable": True})
    model = fit(rows, ("relevance", "noise"))
    assert model["coef"][0] > 1.0 and abs(model["coef"][1]) < 0.5
    assert predict(model, {"relevance": 4.0, "noise": 0.0}) > 0.9 > 0.1 > predict(model, {"relevance": -4.0,
                                                                                          "noise": 0.0})
    scored = [(predict(model, r["signals"]), r) for r in rows]
    floor = refusal_point(scored, 0.10)
    assert sum(p < floor for p, _ in scored) == 40


def test_qa_eval_selqa_asks_every_question_and_reports_by_type(selqa_file, tmp_path, capsys, monkeypatch):
    fakes.register("fake")
    fakes.register_reader()
    s = qa.Settings(embedder="fake", reader="fake-reader", progress=False)
    report = run_selqa_eval(selqa_file, s, workdir=tmp_path / "work")
    assert report["questions"] == 3 and report["sections"] == 2
    assert set(report["by_type"]) == {"how", "where", "who"}
    assert 0.0 <= report["cited"] <= report["answered"] <= 1.0
    assert report["by_type"]["how"]["cited"] == 1.0, "the fake reader finds 1,500 in the answer sentence"
    assert report["calibration"]["answers"] == round(report["answered"] * 3)
    # Quoted answers alone are judged as their confidence means; every answer here is a short one ("how many" is a
    # factoid), judged by its sentence only, so none is in that table.
    assert report["calibration_quotes"]["answers"] == 0 < report["calibration"]["answers"]
    assert "quoted answers only" in format_selqa_report(report)
    first = load_selqa(selqa_file, tmp_path / "docs")[0].article
    kept = run_selqa_eval(selqa_file, s, workdir=tmp_path / "work", articles=lambda a: a != first)
    assert kept["sections"] == 2 and 0 < kept["questions"] < 3, "every section indexed, only other articles asked"
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("QA_READER", "fake-reader")
    monkeypatch.setenv("QA_PROGRESS", "0")
    assert cli.main(["eval", "--selqa", str(selqa_file), "--sample", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["questions"] == 2 and out["seed"] == 13
    assert cli.main(["eval", "--selqa", str(tmp_path / "missing.json")]) == 2
    assert "SelQA" in capsys.readouterr().err


def test_cached_readings_come_back_whole_with_the_sentence_heads_pieces_and_without():
    import json

    from qa.reading import Reading, Span
    from qa.search import Passage
    from qa.weights.fit_confidence import _from_row, _reading_row

    passages = [Passage("a.txt", "A", 0, 12, "Some text.", 0.5)]
    for shared in (False, True):
        readings = [Reading(-1.5, (Span(0, 4, 3.0),), ((0, 4, 1.25), (5, 9, -2.0)), shared)]
        row = json.loads(json.dumps(_reading_row(passages, readings)))  # as the cache stores it
        assert _from_row(row) == (passages, readings)
    old = {"passages": row["passages"], "readings": [[-1.5, [[0, 4, 3.0]]]]}  # cached before the sentence head
    assert _from_row(old)[1] == [Reading(-1.5, (Span(0, 4, 3.0),))]


def test_cached_readings_are_kept_apart_by_every_setting_that_changes_what_is_read():
    from dataclasses import replace

    from qa.config import Settings
    from qa.weights.fit_confidence import reading_key

    base = Settings()
    keys = {reading_key("ab" * 32, s) for s in (base, replace(base, rerank_weight=2.0), replace(base, rerank=20),
                                                  replace(base, reader_overlap=32), replace(base, reader_batch="all"),
                                                  replace(base, sentence_weight=0.0))}
    assert len(keys) == 6
    assert reading_key("ab" * 32, base) != reading_key("cd" * 32, base)


def test_each_fold_gets_its_share_of_each_sources_articles():
    from qa.weights.fit_confidence import article_folds

    rows = [{"source": "squad", "group": f"squad:{a}"} for a in "abcde" for _ in range(50)]
    rows += [{"source": "selqa", "group": f"selqa:{n}"} for n in range(23)]
    fold_of = article_folds(rows, 5, seed=13)
    assert sorted(fold_of[f"squad:{a}"] for a in "abcde") == [0, 1, 2, 3, 4]
    sizes = [sum(1 for g, k in fold_of.items() if g.startswith("selqa") and k == f) for f in range(5)]
    assert sorted(sizes) == [4, 4, 5, 5, 5] and fold_of == article_folds(rows, 5, seed=13)
    # An article cut into paragraphs is grouped with the whole article: one fold holds both, whatever else is dealt.
    paragraphs = [{"source": "paragraphs", "group": f"squad:{a}"} for a in "ace"]
    assert article_folds(rows + paragraphs, 5, seed=13) == fold_of


def test_factoid_follow_ups_replace_the_shared_name_and_keep_only_what_needs_its_conversation():
    from qa.evaluation import Question, factoid_follow_ups

    def q(i, text, impossible=False, source="Rhine.txt"):
        return Question(str(i), text, source, ((0, 4, "gold"),) if not impossible else (), impossible)

    qs = [q(0, "What is the longest tributary of the Rhine?"), q(1, "Where does the Rhine rise?"),
          q(2, "How many bridges cross the Rhine at Basel?"),  # names too much to need its conversation
          q(3, "When did the Rhine freeze over?", impossible=True),
          q(4, "Where does the Rhine end?", source="Other.txt")]
    assert [(a.id, b.id, asked) for a, b, asked in factoid_follow_ups(qs)] == [("0", "1", "Where does it rise?")]
    both = factoid_follow_ups(qs, unanswerable=True)
    assert [(a.id, b.id, asked) for a, b, asked in both] == [("0", "1", "Where does it rise?"),
                                                             ("2", "3", "When did it freeze over?")]


def test_cached_readings_are_read_again_only_where_the_path_now_reads_otherwise(docs, tmp_path, monkeypatch):
    from qa import answering
    from qa.weights.fit_confidence import collect

    fakes.register("fake")
    reader = fakes.register_reader()
    s = qa.Settings(embedder="fake", reader="fake-reader", progress=False, rerank=0)
    q = "How many soldiers would European countries contribute?"
    items = [{"id": "alone", "question": q},
             {"id": "follow", "question": "and how many would stay?", "history": [(q, "1,500 [1]")]}]
    first = collect("t", items, docs, tmp_path, s)
    assert [r["read_as"] for r in first] == [q, "How many would stay? (soldiers would European countries contribute: "
                                                "1,500)"]
    assert collect("t", items, docs, tmp_path, s) == first and len(reader.questions) == 2  # nothing read again
    # The path now puts follow-ups to the reader otherwise: only that row is read again, and its new row is used.
    real = answering.reader_text
    monkeypatch.setattr(answering, "reader_text", lambda reader_q, history, question=None: real(reader_q, history))
    again = collect("t", items, docs, tmp_path, s)
    assert again[0] == first[0] and again[1]["read_as"] == "How many would stay?"
    assert reader.questions[2:] == ["How many would stay?"]
    assert collect("t", items, docs, tmp_path, s) == again
