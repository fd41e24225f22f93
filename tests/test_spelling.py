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


ACRONYM_PASSAGES = ["The forces support the Syrian Democratic Forces, led by the YPG.",
                    "Ahmed, who represents the political arm of the SDF, said she supported the US idea.",
                    "Visit the Department of Motor Vehicles office. The DMV is open on Saturdays."]


def spell(q: str) -> str:
    return spelling.spelt_out(q, lambda: ACRONYM_PASSAGES)


def test_an_acronym_the_passages_spell_out_is_read_with_its_name():
    assert spell("Who leads the SDF?") == "Who leads the SDF (Syrian Democratic Forces)?"
    assert spell("When is the DMV open?") == "When is the DMV (Department of Motor Vehicles) open?"
    assert spell("who leads the sdf") == "who leads the sdf (Syrian Democratic Forces)"  # typed in lower case
    assert spelling.initials("Department of Motor Vehicles") == "DMV"


def test_acronyms_the_passages_do_not_spell_out_words_and_names_already_given_stay():
    for q in ["Who leads the YPG?",  # the passages never write it out
              "Who leads the Syrian Democratic Forces (SDF)?",  # already named
              "Did the US support us?",  # "us" is a word, "US" is not spelt out
              "Who won the FIFA World Cup?", "How many soldiers stay?"]:
        assert spell(q) == q, q
    fetched = []  # the passages are fetched only for a question with a possible acronym
    assert spelling.spelt_out("how many soldiers would stay?", lambda: fetched.append(1) or ACRONYM_PASSAGES)
    assert fetched == []
    assert spelling.spelt_out("how many ypg soldiers would stay?", lambda: fetched.append(1) or ACRONYM_PASSAGES)
    assert fetched == [1]
    two = ["the Syrian Democratic Forces", "the Syrian Defence Force", "the SDF"]
    assert spelling.spelt_out("Who leads the SDF?", lambda: two) == "Who leads the SDF?"  # two names, equally often


def test_codes_and_names_holding_capitals_are_not_acronyms_spelt_out():
    texts = ["Bring form MV-78B to the Motor Vehicle office.", "The UK Singles Chart, the VA Appointments page.",
             "Vocational Rehabilitation pays for VR&E.", "US sales"]
    for q in ["Where do I send the MV-78B?", "How many copies sold in the US?", "Can I get help through VR&E?"]:
        assert spelling.spelt_out(q, lambda: texts) == q, q
    texts = ["If P is not NP, no.", "Votes are counted by the Single Transferable Vote. Cable TV is popular.",
             "Go to VA.gov. How Veterans Apply for VA benefits.", "Contact Department of Motor Vehicles offices. The DMV helps."]
    assert spelling.spelt_out("Is IP defined?", lambda: texts) == "Is IP defined?"  # not "If P"
    assert spelling.spelt_out("Who has cable TV?", lambda: texts) == "Who has cable TV?"  # not "Transferable Vote"
    assert spelling.spelt_out("I want to use the VA.gov site", lambda: texts) == "I want to use the VA.gov site"
    assert spelling.spelt_out("Where is the DMV?", lambda: texts) == "Where is the DMV (Department of Motor Vehicles)?"
    texts = ["Benefits of Supplemental Security Income. SSI pays.", "Supplemental Security Income is paid monthly."]
    assert spelling.spelt_out("Who gets SSI?", lambda: texts) == "Who gets SSI (Supplemental Security Income)?"
