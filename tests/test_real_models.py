"""The packaged all-MiniLM-L6-v2, for real: tokenizer limits, the seeds, and the shared benchmark."""

import os
from dataclasses import replace

import numpy as np
import pytest

import qa
from qa import local_store
from qa.config import Settings
from qa.embeddings import SentenceTransformerEmbedder, get_embedder

from .conftest import SQUAD

pytestmark = pytest.mark.slow
REAL = Settings(progress=False)


@pytest.fixture(scope="module")
def seeds_index(tmp_path_factory):
    from .conftest import SEEDS

    idx = tmp_path_factory.mktemp("real") / "index"
    qa.build_index(SEEDS, idx, settings=REAL)
    return idx


def test_no_chunk_exceeds_the_model_limit(seeds_index):
    emb = get_embedder(REAL)
    assert emb.max_tokens == 254 and emb.dimension == 384
    chunks = local_store.load_index(seeds_index).chunks
    counts = emb.count_tokens([c.text for c in chunks])
    assert max(counts) <= emb.max_tokens
    # and what we count is what the model sees: the same word pieces as sentence-transformers' own tokenizer,
    # so nothing is cut off when it encodes
    st = SentenceTransformerEmbedder(REAL.embedder, progress=False)
    enc = st.model.tokenizer([c.text for c in chunks], add_special_tokens=False, truncation=False)["input_ids"]
    assert [len(e) for e in enc] == counts
    assert max(counts) + 2 <= st.model.max_seq_length


def test_onnx_int8_embeddings_match_sentence_transformers(seeds_index):
    texts = [c.text for c in local_store.load_index(seeds_index).chunks] + ["How many soldiers?", "x" * 3000]
    fast = get_embedder(REAL).encode(texts)
    plain = SentenceTransformerEmbedder(REAL.embedder, progress=False).encode(texts)
    cos = (fast * plain).sum(axis=1)
    assert fast.shape == plain.shape and np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-3)
    # int8 weights, one scale per channel: close, not identical (median 0.994, min 0.971 here; one scale per tensor
    # gave a median of about 0.95; a wrongly exported mask gave 0.14-0.6)
    assert np.median(cos) > 0.985 and cos.min() > 0.95


def test_onnx_vectors_do_not_depend_on_batch_or_threads(seeds_index):
    """A text's vector is the same alone or among others, on one thread or several: int8 activations are
    quantised per run, so batching texts together (as we did before) let neighbours shift a vector (cos 0.95)."""
    from qa.embeddings import OnnxEmbedder

    texts = [c.text for c in local_store.load_index(seeds_index).chunks][:12] + ["How many soldiers?"]
    here = replace(REAL, model_process=False)  # this process's embedder, to look inside it
    together = get_embedder(here).encode(texts)
    alone = np.vstack([OnnxEmbedder(REAL.embedder, "onnx-int8", REAL.cache_dir, threads=1).encode([t]) for t in texts])
    assert get_embedder(here).workers == len(os.sched_getaffinity(0))  # the default: one run per core
    assert np.array_equal(together, alone)
    assert np.array_equal(get_embedder(REAL).encode(texts), together)  # the worker process's: the same vectors


def test_seed_question_finds_the_munich_sentence(seeds_index):
    hits = qa.search("How many soldiers would European countries contribute?", k=5, index_dir=seeds_index,
                     settings=REAL)
    assert hits[0].source == "002_0761b27352c754ab.txt"
    assert "European countries would pitch in a total of about 1,500 soldiers" in hits[0].text
    assert 0.2 < hits[0].dense <= 1.0


def test_embeddings_are_normalised_float32():
    v = get_embedder(REAL).encode(["safe zone", "buffer zone in northern Syria"])
    assert v.dtype.name == "float32" and v.shape == (2, 384)
    assert abs(float((v * v).sum(axis=1).max()) - 1.0) < 1e-4


@pytest.mark.skipif(not SQUAD.exists(), reason="shared SQuAD file not present")
def test_squad_retrieval_meets_the_bar(tmp_path):
    from qa.evaluation import run_eval

    r = run_eval(SQUAD, REAL, workdir=tmp_path)["retrieval"]
    assert r["questions"] == 705
    assert r["recall@5"] >= 0.97 and r["recall@10"] >= 0.99


@pytest.fixture(scope="module")
def reader_settings():
    return Settings(progress=False)


CONTEXTS = [
    "The idea is that European countries would pitch in a total of about 1,500 soldiers.",
    "If that happens, Trump would be willing to keep about 200 soldiers in northeastern Syria.",
    "Turkey considers the YPG to be an extension of the PKK, which has waged an insurgency since 1984.",
]


def test_the_real_reader_finds_spans_with_exact_offsets_and_says_where_there_is_none(reader_settings):
    from qa.reading import get_reader

    reader = get_reader(replace(reader_settings, model_process=False))
    r = reader.read("How many soldiers would Trump keep?", CONTEXTS)
    assert len(r) == 3 and CONTEXTS[1][r[1].best.start:r[1].best.end] in ("about 200", "200")
    assert r[1].margin > r[0].margin and r[1].margin > r[2].margin
    pkk = reader.read("What does Turkey consider the YPG to be?", CONTEXTS)[2]
    assert "PKK" in CONTEXTS[2][pkk.best.start:pkk.best.end]
    assert all(a.start < a.end <= len(CONTEXTS[2]) for a in pkk.spans)
    off = reader.read("Who won the 2018 FIFA World Cup?", CONTEXTS)
    assert max(x.margin for x in off) < min(r[1].margin, pkk.margin)


def test_a_long_text_is_read_in_overlapping_windows_each_span_once_with_exact_offsets(reader_settings):
    from qa.reading import MAX_OVERLAP, get_reader

    filler = " ".join(f"Delegates from region {i} met in the hall on day {i} and discussed the agenda." for i in range(30))
    text = f"{filler} {CONTEXTS[1]} {filler}"
    for overlap in (0, 64, MAX_OVERLAP):
        reader = get_reader(replace(reader_settings, model_process=False, reader_overlap=overlap))
        assert len(reader.load()._windows("How many soldiers would Trump keep?", [text])) >= 3  # several windows
        (r,) = reader.read("How many soldiers would Trump keep?", [text])
        assert text[r.best.start:r.best.end] in ("about 200", "200"), overlap
        assert len({(s.start, s.end) for s in r.spans}) == len(r.spans)  # each span once, from its home window
        assert r.margin > 0


def test_the_stream_shows_an_early_answer_and_ends_with_what_answer_gives(seeds_index, reader_settings):
    # The int8 reader scales activations per run, so a passage's reading depends on what is read beside it: the
    # stream and qa.answer must read the same runs for the final answers to agree.
    q = "How many soldiers would European countries contribute?"
    parts = list(qa.stream(q, index_dir=seeds_index, settings=reader_settings))
    final = qa.answer(q, index_dir=seeds_index, settings=reader_settings)
    assert len(parts) == 2 and not parts[0].complete and "1,500" in parts[0].text
    assert parts[-1].complete and parts[-1].text == final.text and parts[-1].citations == final.citations


def test_the_reader_in_its_worker_reads_as_it_does_in_this_process(reader_settings):
    from qa.reading import get_reader

    here = get_reader(replace(reader_settings, model_process=False)).read("How many soldiers would Trump keep?", CONTEXTS)
    there = get_reader(replace(reader_settings, model_process=True)).read("How many soldiers would Trump keep?", CONTEXTS)
    assert [x.best for x in here] == [x.best for x in there]


def test_seed_answer_is_1500_citing_the_munich_sentence(seeds_index, reader_settings):
    from .conftest import SEEDS

    a = qa.answer("How many soldiers would European countries contribute?", index_dir=seeds_index,
                  settings=reader_settings)
    assert not a.abstained and a.text == "1,500 [1]" and a.shape == "short"
    (c,) = a.citations
    assert c.source == "002_0761b27352c754ab.txt" and "1,500 soldiers" in c.text
    assert (SEEDS / c.source).read_text(encoding="utf-8")[c.start:c.end] == c.text


def test_off_topic_question_abstains(seeds_index, reader_settings):
    a = qa.answer("Who won the 2018 FIFA World Cup?", index_dir=seeds_index, settings=reader_settings)
    assert a.abstained and not a.citations and "don't say" in a.text


def test_off_topic_questions_abstain_alone_and_mid_conversation_and_the_confidence_says_so(seeds_index,
                                                                                          reader_settings):
    first = qa.answer("How many soldiers would European countries contribute?", index_dir=seeds_index,
                      settings=reader_settings)
    assert 0.5 < first.confidence <= 0.99, "a right answer, shown as likely right (never as certain)"
    history = [first, qa.answer("Who is Ilhan Ahmed?", index_dir=seeds_index, settings=reader_settings)]
    for q in ("Who won the 2018 FIFA World Cup?", "Who wrote Hamlet?"):
        for h in (None, history):
            a = qa.answer(q, index_dir=seeds_index, history=h, settings=reader_settings)
            assert a.abstained and a.confidence < reader_settings.min_confidence, (q, h is not None)
            # Searched as asked: the conversation changed nothing, so the app shows no "searched for" (issue 38).
            assert a.searched_for == q and not a.history_used, (q, h is not None)


# "What did Graham ...?" failed here with the reranking weight at 2: after talk of Ilhan Ahmed and Al Tanf the
# search with the conversation put other passages first and the answer moved ('contribute troops' against 'pitch
# in' alone, both wrong; issue 38). At weight 1 (docs/benchmarks.md, 2026-12-06) it is the same answer both ways.
# "What did the European diplomat say?" and "What did Graham admit?" moved after a statement or a search with the
# conversation until stop 62 (questions.STANDALONE_READING, answering.STANDALONE).
@pytest.mark.parametrize("q", ["How many soldiers would European countries contribute?", "Who is Ilhan Ahmed?",
                               "Why does Turkey oppose the YPG?", "What did Graham ask European allies to do?",
                               "What did the European diplomat say?", "What did Graham admit?"])
def test_a_standalone_question_after_another_topic_gets_the_answer_it_gets_alone(q, seeds_index, reader_settings):
    # Each passage is read in a run of its own (reader_batch "text"): read together, the int8 reader's activation
    # scale made "senior Syrian Kurdish official" "senior Syrian Kurdish" after talk about France.
    alone = qa.answer(q, index_dir=seeds_index, settings=reader_settings)
    for other in ([("What is the capital of France?", "Paris."), ("When was the Eiffel Tower built?", "1889.")],
                  [("What did Trump tell Ilhan Ahmed?", "He said he loved the Kurds."), ("Where is Al Tanf?", "Syria.")],
                  [("Why did the Pentagon oppose de-escalation zones?", "Military officials are wary of coordinating "
                    "with the Russians and fear the costs of safeguarding the zones.")]):
        if q in {h for h, _ in other}:
            continue
        a = qa.answer(q, index_dir=seeds_index, history=other, settings=reader_settings)
        assert (a.text, [(c.source, c.start, c.end) for c in a.citations]) == (
            alone.text, [(c.source, c.start, c.end) for c in alone.citations]), other[0][0]


def test_an_overview_quotes_what_the_articles_say_about_its_topic(seeds_index, reader_settings):
    from .conftest import SEEDS

    a = qa.answer("Summarize what the articles say about Al Tanf.", index_dir=seeds_index, settings=reader_settings)
    assert not a.abstained and a.shape == "quotes"
    assert a.citations and all("Al Tanf" in c.text for c in a.citations)
    for c in a.citations:
        assert (SEEDS / c.source).read_text(encoding="utf-8")[c.start:c.end] == c.text


def test_why_turkey_opposes_the_ypg_cites_the_pkk_sentence(seeds_index, reader_settings):
    # The PKK sentence is quoted; whether first or second depends on the CPU: the int8 reader puts it first on the
    # AVX-512 machines before, second (0.4 below "...assuring Ankara over Kurdish factions such as the YPG
    # militia") on an AVX2-only AMD EPYC (docs/benchmarks.md, 2026-12-06). A quoted answer is right when a
    # citation holds the answer (qa.evaluation), so that is what is asked here.
    a = qa.answer("Why does Turkey oppose the YPG?", index_dir=seeds_index, settings=reader_settings)
    assert not a.abstained and a.shape == "quotes"
    assert any("PKK" in c.text for c in a.citations), a.text


def test_an_acronym_one_article_spells_out_is_read_with_its_name(seeds_index, reader_settings):
    # The first article names "the Syrian Democratic Forces, led by the YPG"; the others say only "the SDF". Read as
    # typed the question was refused (0.07); read with the name beside the acronym (qa/spelling.py) it is "the YPG".
    a = qa.answer("Who leads the SDF?", index_dir=seeds_index, settings=reader_settings)
    assert a.corrected == "Who leads the SDF (Syrian Democratic Forces)?" and a.question == "Who leads the SDF?"
    assert not a.abstained and "YPG" in a.text, a.text


def test_what_trump_told_ahmed_quotes_the_sentences_not_a_phrase_across_them(seeds_index, reader_settings):
    # The reader's best span runs "fundraising event at his Trump Hotel in Washington. He said he loved the Kurds":
    # across two sentences, so the answer quotes them (evidence.CROSSING_SPANS). As a phrase it was refused (0.10);
    # quoted it is answered (0.28 on an AVX2-only AMD EPYC, the refusal point 0.236).
    a = qa.answer("What did Trump tell Ilhan Ahmed?", index_dir=seeds_index, settings=reader_settings)
    assert not a.abstained and a.shape == "quotes", a.text
    assert any("loved the Kurds" in c.text for c in a.citations), a.text


def test_a_follow_up_leaning_on_the_conversation_is_read_with_what_the_talk_is_about(seeds_index, reader_settings):
    # Read alone, "What is she urging?" quoted Trump telling Ahmed he loved the Kurds; read with "Ilhan Ahmed:
    # senior Syrian Kurdish official" beside it (the question before, its answer), the reader finds what she urges.
    first = qa.answer("Who is Ilhan Ahmed?", index_dir=seeds_index, settings=reader_settings)
    a = qa.answer("What is she urging?", index_dir=seeds_index, history=[first], settings=reader_settings)
    assert not a.abstained and any("delay any withdrawal" in c.text for c in a.citations), a.text


def test_a_follow_up_after_one_naming_nothing_reads_the_topic_before_it(seeds_index, reader_settings):
    # "What did it drop?" after "When?" was read with "(When?)" beside it and answered "Thursday" again; now with
    # the topic of the question before, "the US shoot down", and its answer.
    history = []
    for q in ("What did the US shoot down?", "When?"):
        history.append(qa.answer(q, index_dir=seeds_index, history=list(history), settings=reader_settings))
    assert "Thursday" in history[-1].text
    a = qa.answer("What did it drop?", index_dir=seeds_index, history=history, settings=reader_settings)
    assert not a.abstained and "munition" in a.text and "Thursday" not in a.text, a.text


def test_tell_me_more_gives_what_the_last_answer_did_not_and_small_talk_is_not_searched(seeds_index,
                                                                                        reader_settings):
    # Read beside the quotes just given, "Tell me more" found them again (the PKK sentence, at 0.47); now what
    # earlier answers quoted is left out (answering.Said). "thanks" is no question: a reply citing nothing.
    first = qa.answer("Why does Turkey oppose the YPG?", index_dir=seeds_index, settings=reader_settings)
    thanks = qa.answer("thanks!", index_dir=seeds_index, history=[first], settings=reader_settings)
    assert thanks.shape == "chat" and thanks.abstained and not thanks.citations
    more = qa.answer("Tell me more", index_dir=seeds_index, history=[first, thanks], settings=reader_settings)
    assert not more.abstained and more.citations, more.text
    assert not {(c.source, c.start) for c in first.citations} & {(c.source, c.start) for c in more.citations}


@pytest.mark.xfail(strict=True, reason="not yet: 'stay' vs the article's 'keep'; the reader picks 2,000, read alone or with "
                                         "the question before it (issue 19)")
def test_the_follow_up_on_troops_that_stay_gets_about_200(seeds_index, reader_settings):
    first = qa.answer("How many US troops will be withdrawn from Syria?", index_dir=seeds_index,
                      settings=reader_settings)
    a = qa.answer("and how many US troops would stay?", index_dir=seeds_index, history=[first],
                  settings=reader_settings)
    assert not a.abstained and "200" in a.short and "2,000" not in a.short
