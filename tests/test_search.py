"""Hybrid search returns exact, non-repeating passages and refuses input that is not a question."""

import pytest

import qa
from qa.search import clean_question

Q = "How many soldiers would European countries contribute?"


def test_passages_are_exact_ranked_and_distinct(built, docs, settings):
    hits = qa.search(Q, k=5, index_dir=built, settings=settings)
    assert 0 < len(hits) <= 5
    assert hits[0].source == "002_0761b27352c754ab.txt" and "1,500" in hits[0].text
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for h in hits:
        assert (docs / h.source).read_text(encoding="utf-8")[h.start : h.end] == h.text
        assert h.title
    for a in hits:
        for b in hits:
            if a is not b and a.source == b.source:
                assert a.end <= b.start or b.end <= a.start, "overlapping passages are merged, not repeated"


def test_overlapping_chunks_are_merged_into_one_passage(built, docs, settings):
    from qa import local_store

    chunks = local_store.load_index(built).chunks
    assert any(a.source == b.source and b.start < a.end for a, b in zip(chunks, chunks[1:])), "fixture has overlaps"
    hits = qa.search(Q, k=20, index_dir=built, settings=settings)
    widened = [h for h in hits if not any(c.start == h.start and c.end == h.end for c in chunks)]
    assert widened, "at least one passage spans several overlapping chunks"
    for h in widened:
        assert (docs / h.source).read_text(encoding="utf-8")[h.start : h.end] == h.text


def test_k_limits_results(built, settings):
    assert len(qa.search(Q, k=1, index_dir=built, settings=settings)) == 1


@pytest.mark.parametrize("bad", ["", "   \n\t", "\x00\x00", None, 42])
def test_empty_or_non_text_questions_are_refused(built, settings, bad):
    with pytest.raises(qa.InvalidQuestionError):
        qa.search(bad, index_dir=built, settings=settings)


def test_huge_question_is_refused_with_the_limit(built, settings):
    with pytest.raises(qa.InvalidQuestionError, match="2,000"):
        qa.search("why " * 1_000_000, index_dir=built, settings=settings)


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_bad_k_is_refused(built, settings, k):
    with pytest.raises(qa.InvalidQuestionError, match="k must be"):
        qa.search(Q, k=k, index_dir=built, settings=settings)


@pytest.mark.parametrize("odd", ["soldiers\x00 Europe", "\ud800 soldiers", "كم عدد الجنود؟", "?!?!...", "Soldaten Europa?"])
def test_odd_but_valid_questions_get_results_or_none_without_error(built, settings, odd):
    hits = qa.search(odd, index_dir=built, settings=settings)
    assert isinstance(hits, list) and all(isinstance(h, qa.Passage) for h in hits)


def test_clean_question_normalises_whitespace_and_controls():
    assert clean_question("  How\x00 many\n\n soldiers? ", 100) == "How many soldiers?"
    assert clean_question("caf\ud800e", 100) == "caf?e"


def test_a_chunk_with_one_sentence_that_matches_rises_by_its_best_sentence(tmp_path, settings):
    # Two articles: the first mentions the question's words once in every sentence (one diluted chunk vector),
    # the second holds one sentence that is nearly the question among unrelated ones.
    from dataclasses import replace

    from qa import local_store
    from qa.embeddings import get_embedder
    from qa.search import rank_many

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Spread\n\n" + " ".join(
        f"Item {i}: zebra herds in sector {i} near the quarry road." for i in range(6)), encoding="utf-8")
    (docs / "b.txt").write_text("Census\n\nThe harbour cranes were painted blue. Fishermen sold eels at dawn. "
                                "How many zebra herds cross the quarry road each spring? Gulls nested on the pier.",
                                encoding="utf-8")
    qa.build_index(docs, tmp_path / "i", settings=settings)
    loaded = local_store.load_index(tmp_path / "i")
    emb = get_embedder(settings)
    q = "How many zebra herds cross the quarry road each spring?"
    off = rank_many(loaded, emb, [q], 10, replace(settings, sentence_weight=0.0))[0].order
    on = rank_many(loaded, emb, [q], 10, replace(settings, sentence_weight=3.0))[0].order
    source = {c.id: c.source for c in loaded.chunks}
    assert {cid for cid, _ in on} == {cid for cid, _ in off}  # the same candidates, reordered
    b_rank = lambda order: [source[cid] for cid, _ in order].index("b.txt")  # noqa: E731
    assert b_rank(on) <= b_rank(off)
    # The fused scores of the chunks reordered are those of the fusion plus the sentence ranking's share.
    best_b = max(float(loaded.sentence_vectors[r].astype("float32") @ emb.encode([q])[0])
                 for r in loaded.sentences_in("b.txt", 0, 10**9)[:, 0])
    assert best_b > 0.9  # the fake embedding of the near-identical sentence
    assert dict(on)[next(cid for cid, _ in on if source[cid] == "b.txt")] > dict(off)[
        next(cid for cid, _ in off if source[cid] == "b.txt")]


def test_without_sentence_vectors_the_fusion_is_unchanged(built, settings):
    from dataclasses import replace

    from qa import local_store
    from qa.embeddings import get_embedder
    from qa.search import rank_many

    loaded = local_store.load_index(built)
    emb = get_embedder(settings)
    plain = replace(loaded, sentence_vectors=None)
    a = rank_many(plain, emb, [Q], 10, settings)[0].order
    b = rank_many(loaded, emb, [Q], 10, replace(settings, sentence_weight=0.0))[0].order
    c = rank_many(loaded, emb, [Q], 10, settings)[0].order
    assert a == b  # no vectors, or a weight of 0: the fusion of dense and BM25 alone
    # With them, each of the best Settings.sentence_candidates chunks gains its share of the third ranking.
    fused, more = dict(a), dict(c)
    assert set(fused) == set(more)
    assert all(more[cid] > fused[cid] for cid, _ in a[:settings.sentence_candidates])
