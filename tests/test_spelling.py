"""qa/spelling.py: a question's typos corrected to the words of the passages found for it, and nothing else."""

from __future__ import annotations

from unittest import mock

import qa
from qa import spelling
from qa.config import Settings

from . import fakes

PASSAGES = ["The idea is that European countries would pitch in a total of about 1,500 soldiers.",
            "Turkish President Recep Tayyip Erdoğan spoke with Defense Minister Sergey Shoygu.",
            "Sen. Lindsey Graham said European soldiers would stay."]


def fix(q: str) -> str:
    return spelling.corrected(q, lambda: PASSAGES)


def test_typos_are_corrected_to_the_passages_words_as_they_spell_them():
    assert fix("How many soldirs would europan countries contribute?") == \
        "How many soldiers would European countries contribute?"
    assert fix("What did Grahm say?") == "What did Graham say?"
    assert fix("Who is Shoigu?") == "Who is Shoygu?"
    assert fix("Who is Erdogan?") == "Who is Erdoğan?"  # an accent left out is one edit
    # Typed in lower case, a word the passages also write capitalised stays in lower case; a name does not.
    assert spelling.corrected("which combinatorial problems?", lambda: ["Among Combinatorial Problems", "Combinatorial",
                                                                         "combinatorial ones"]) == "which combinatorial problems?"
    assert spelling.corrected("the comninatorial problems", lambda: ["Among Combinatorial Problems", "Combinatorial",
                                                                      "combinatorial ones"]) == "the combinatorial problems"
    assert fix("what did grahm say?") == "what did Graham say?"


def test_real_words_names_the_passages_lack_and_short_words_stay_as_typed():
    for q in ["Who won the 2018 FIFA World Cup?", "Who wrote Hamlet?", "Whos leading the talks?",
              "How many soldiers stay?", "Who is Zelensky?", "Who is Lindsey?"]:
        assert fix(q) == q, q
    assert spelling.unknown("the soldiers of Europe") == []  # known words are never suspects


def test_the_passages_are_fetched_only_for_a_question_with_a_suspect_word():
    fetched = []
    assert spelling.corrected("How many soldiers would stay?", lambda: fetched.append(1) or PASSAGES)
    assert not fetched
    spelling.corrected("How many soldirs would stay?", lambda: fetched.append(1) or PASSAGES)
    assert fetched == [1]


def test_edits_count_a_swap_as_one_and_stop_early():
    assert spelling.edits("soldirs", "soldiers", 2) == 1
    assert spelling.edits("recieve", "receive", 1) == 1
    assert spelling.edits("abcdef", "uvwxyz", 2) == 3


def test_an_answer_keeps_the_question_as_typed_and_names_the_one_it_answered(built):
    fakes.register_reader("fake-reader")
    s = Settings(embedder="fake", reader="fake-reader", progress=False, min_confidence=0.0)
    right = qa.answer("How many soldiers would European countries contribute?", index_dir=built, settings=s)
    typo = qa.answer("How many soldirs would europan countries contribute?", index_dir=built, settings=s)
    assert typo.question == "How many soldirs would europan countries contribute?"
    assert typo.corrected == "How many soldiers would European countries contribute?"
    assert (typo.text, typo.citations) == (right.text, right.citations) and right.corrected == ""
    from qa import answering

    with mock.patch.object(answering, "SPELLING", False):
        raw = qa.answer("How many soldirs would europan countries contribute?", index_dir=built, settings=s)
    assert raw.corrected == ""


def test_without_a_vocabulary_nothing_is_corrected():
    with mock.patch.object(spelling, "known_words", lambda: None):
        assert fix("How many soldirs would europan countries contribute?") == \
            "How many soldirs would europan countries contribute?"
