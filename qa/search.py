"""Hybrid search: dense and BM25 rankings from the store, fused by reciprocal rank, overlaps merged."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .embeddings import Embedder, get_embedder
from .errors import InvalidQuestionError
from .index import check_embedder, ensure_index
from .local_store import DEFAULT_INDEX_DIR, LoadedIndex

if TYPE_CHECKING:  # numpy is imported where it runs, so that `import qa` stays light
    import numpy as np


@dataclass(frozen=True)
class Passage:
    """A span of one article. For .txt/.md: ``(docs_dir/source).read_text("utf-8")[start:end] == text``."""

    source: str  # path relative to the documents folder
    title: str
    start: int
    end: int
    text: str
    score: float  # fused relevance; higher is better; comparable only within one result list
    dense: float = 0.0  # best cosine similarity of the question to a chunk in this passage
    bm25: float = 0.0  # best BM25 score of a chunk in this passage


def clean_question(question: object, max_chars: int) -> str:
    """The question as searchable text, or a clear error for input that cannot be a question."""
    if not isinstance(question, str):
        raise InvalidQuestionError(f"The question must be text, not {type(question).__name__}.")
    # Lone surrogates cannot be encoded for the tokenizer; NUL and other control characters carry no meaning.
    q = question.encode("utf-8", "replace").decode("utf-8")
    q = "".join(ch if ch in "\n\t" or unicodedata.category(ch) != "Cc" else " " for ch in q)
    q = " ".join(q.split())
    if not q:
        raise InvalidQuestionError("The question is empty: type a question about the articles.")
    if len(q) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(q):,} characters long; the limit is {max_chars:,}. Ask something shorter "
            f"(or raise QA_MAX_QUESTION_CHARS)."
        )
    return q


def search(
    question: str,
    k: int = 5,
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    *,
    settings: Settings | None = None,
) -> list[Passage]:
    """The ``k`` passages most relevant to ``question``, best first."""
    settings = settings or Settings.from_env()
    q = clean_question(question, settings.max_question_chars)
    if not isinstance(k, int) or k < 1:
        raise InvalidQuestionError(f"k must be a positive whole number, got {k!r}.")
    loaded = ensure_index(index_dir, settings)
    embedder = get_embedder(settings)
    check_embedder(loaded, embedder, index_dir)
    return search_many(loaded, embedder, [q], k, settings, reader=reranker(settings))[0]


def reranker(settings: Settings):
    """The reader that reranks search results, or None when ``Settings.rerank`` is 0."""
    if settings.rerank <= 0:
        return None
    from .reading import get_reader

    return get_reader(settings)


def search_many(
    loaded: LoadedIndex, embedder: Embedder, questions: Sequence[str], k: int, settings: Settings,
    qvecs: np.ndarray | None = None, reader=None,
) -> list[list[Passage]]:
    """Batch form of :func:`search` over an already loaded index; ``qvecs``: the questions' embeddings, if known.
    With ``reader``, the best ``Settings.rerank`` fused passages are reranked by it (see :func:`rerank`)."""
    rankings = rank_many(loaded, embedder, questions, max(k, 1, settings.rerank if reader else 0), settings, qvecs)
    if reader is None:
        return [merge(loaded, r, k) for r in rankings]
    return [rerank(q, merge(loaded, r, max(k, settings.rerank)), reader, settings)[0][:k]
            for q, r in zip(questions, rankings)]


def first_run(settings: Settings, candidates: int) -> int:
    """How many of the best candidates the reader reads in a run of their own before the rest (0: one run). The int8
    reader scales activations per run (qa/reading.py), so search and answers must group their reads alike."""
    return settings.early_passages if 0 < settings.early_passages < candidates else 0


def rerank(question: str, passages: Sequence[Passage], reader, settings: Settings, readings=None):
    """``(passages, readings)`` reordered by the reader: each passage scores the reciprocal rank of its fused
    retrieval rank plus that of its rank by the reader's margin (its best span over "no answer"), weighted by
    ``Settings.rerank_weight``. The reader sees what matters inside a long document that word and vector
    similarity blur; fusing keeps retrieval's view when the reader is unsure."""
    from dataclasses import replace

    if readings is None:  # else: the reader's readings of these passages with this question, already made
        # In the runs qa.answer reads them in (answering.read_stages): the best few first, then the rest.
        texts = [p.text for p in passages]
        head = first_run(settings, len(texts))
        readings = (reader.read(question, texts[:head]) if head else []) + reader.read(question, texts[head:])
    by_reader = sorted(range(len(passages)), key=lambda i: -readings[i].margin)
    score = [1.0 / (settings.rrf_k + i + 1) for i in range(len(passages))]
    for rank, i in enumerate(by_reader):
        score[i] += settings.rerank_weight / (settings.rrf_k + rank + 1)
    order = sorted(range(len(passages)), key=lambda i: (-score[i], i))
    return [replace(passages[i], score=score[i]) for i in order], [readings[i] for i in order]


@dataclass(frozen=True)
class Ranking:
    """One question's fused chunk ranking, before overlapping chunks are merged into passages."""

    order: list[tuple[int, float]]  # (chunk id, fused score), best first
    dense: dict[int, float]
    bm25: dict[int, float]


def rank_many(
    loaded: LoadedIndex, embedder: Embedder, questions: Sequence[str], k: int, settings: Settings,
    qvecs: np.ndarray | None = None, asked: Sequence[str | None] | None = None,
) -> list[Ranking]:
    """Each question's fused ranking. ``asked``: per question, the text its sentences are ranked by when that is
    not the question searched (a standalone question searched with its conversation, :func:`by_sentences`)."""
    if loaded.size == 0 or not questions:
        return [Ranking([], {}, {}) for _ in questions]
    if qvecs is None:
        qvecs = embedder.encode(list(questions))
    svecs = list(qvecs)
    if asked and (todo := [i for i, a in enumerate(asked) if a is not None and a != questions[i]]):
        for i, v in zip(todo, embedder.encode([asked[i] for i in todo])):
            svecs[i] = v
    out = []
    for qvec, hits in zip(svecs, loaded.hits(qvecs, list(questions), max(settings.candidates, k))):
        fused: dict[int, float] = {}
        for weight, ranked in ((settings.dense_weight, hits.dense), (settings.bm25_weight, hits.bm25)):
            for rank, (cid, _) in enumerate(ranked):
                fused[cid] = fused.get(cid, 0.0) + weight / (settings.rrf_k + rank + 1)
        order = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(Ranking(by_sentences(loaded, qvec, order, settings), dict(hits.dense), dict(hits.bm25)))
    return out


def by_sentences(loaded: LoadedIndex, qvec: np.ndarray, order: list[tuple[int, float]],
                 settings: Settings) -> list[tuple[int, float]]:
    """``order`` with a third ranking fused in: its best ``Settings.sentence_candidates`` chunks ranked by their one
    sentence closest to the question (cosine of the index's sentence vectors), weighted by
    ``Settings.sentence_weight``. A chunk's vector averages all its sentences, so a chunk with one sentence that
    answers among others on other matters ranks low by it; its best sentence does not. Held out (fusion alone, the
    best 40 reordered, weight 1): recall@1 SQuAD tuning articles 0.798 -> 0.827, SelQA dev 0.828 -> 0.856;
    recall@10 doc2dial tuning turns 0.863 -> 0.892 (docs/benchmarks.md, 2026-12-06). Unchanged where the index has
    no sentence vectors (a Milvus store, an index built before them)."""
    import numpy as np
    vectors = getattr(loaded, "sentence_vectors", None)
    if vectors is None or settings.sentence_weight <= 0 or not order:
        return order
    top = order[:settings.sentence_candidates]
    chunks = loaded.fetch([cid for cid, _ in top])
    q = np.asarray(qvec, dtype=np.float32)
    best = {}
    for cid, _ in top:
        c = chunks[cid]
        rows = loaded.sentences_in(c.source, c.start, c.end)[:, 0]
        best[cid] = float((np.asarray(vectors[rows], dtype=np.float32) @ q).max()) if len(rows) else -1.0
    score = dict(top)
    for rank, cid in enumerate(sorted(best, key=lambda c: (-best[c], c))):
        score[cid] += settings.sentence_weight / (settings.rrf_k + rank + 1)
    return sorted(score.items(), key=lambda kv: (-kv[1], kv[0])) + order[len(top):]


def merge(loaded: LoadedIndex, ranking: Ranking, k: int) -> list[Passage]:
    """Walk the fused ranking; a chunk overlapping an already chosen passage widens it instead of repeating it."""
    picked: list[dict] = []
    chunks = loaded.fetch([cid for cid, _ in ranking.order[: max(4 * k, 40)]])  # one round trip for a remote store
    for cid, score in ranking.order:
        c = chunks[cid] if cid in chunks else loaded.fetch([cid])[cid]
        dense, bm25 = ranking.dense.get(cid, 0.0), ranking.bm25.get(cid, 0.0)
        for p in picked:
            if p["source"] == c.source and c.start < p["end"] and p["start"] < c.end:
                _widen(p, c.start, c.end, c.text)
                p["dense"], p["bm25"] = max(p["dense"], dense), max(p["bm25"], bm25)
                break
        else:
            if len(picked) == k:
                break
            picked.append(dict(source=c.source, title=c.title, start=c.start, end=c.end, text=c.text,
                               score=score, dense=dense, bm25=bm25))
    # Widening can make two chosen passages overlap: fold them together, keeping the better rank.
    out: list[dict] = []
    for p in picked:
        for q in out:
            if q["source"] == p["source"] and p["start"] < q["end"] and q["start"] < p["end"]:
                _widen(q, p["start"], p["end"], p["text"])
                q["dense"], q["bm25"] = max(q["dense"], p["dense"]), max(q["bm25"], p["bm25"])
                break
        else:
            out.append(p)
    return [Passage(**p) for p in out]


def _widen(p: dict, start: int, end: int, text: str) -> None:
    """Union of two overlapping spans of the same document, rebuilt from their texts (no file access)."""
    if start < p["start"]:
        p["text"] = text[: p["start"] - start] + p["text"]
        p["start"] = start
    if end > p["end"]:
        p["text"] = p["text"] + text[len(text) - (end - p["end"]):]
        p["end"] = end
