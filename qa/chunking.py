"""Sentences -> chunks with exact ``[start, end)`` offsets into ``Document.text``.

Chunks are packed from whole sentences up to a word-piece budget measured with the embedder's own tokenizer, so
the embedder never truncates a chunk silently. A sentence longer than the budget is cut between words (and a
word longer than the budget between characters). Consecutive chunks inside a paragraph overlap by a few trailing
sentences so that an answer near a boundary is whole in at least one chunk.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CountTokens = Callable[[Sequence[str]], list[int]]

PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n\s*")
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Chunk:
    """A chunk of an article as the index stores it: ``article[start:end] == text``."""

    id: int
    source: str
    title: str
    start: int
    end: int
    text: str
    sha256: str



@dataclass(frozen=True)
class Span:
    start: int
    end: int
    tokens: int
    paragraph_start: bool  # the span begins a paragraph: a natural place to end the previous chunk


@functools.lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def sentences(text: str) -> list[tuple[int, int, bool]]:
    """``(start, end, starts_paragraph)`` for each sentence; spans hold no leading or trailing whitespace."""
    out: list[tuple[int, int, bool]] = []
    for para_start, para_end in _paragraphs(text):
        para = text[para_start:para_end]
        first = True
        cursor = 0
        try:
            segments = _segmenter().segment(para)
        except Exception:  # pysbd has rare regex failures on odd input; a paragraph is still a usable unit
            segments = [para]
        for seg in segments:
            s = seg.strip()
            if not s:
                continue
            i = para.find(s, cursor)
            if i < 0:  # the splitter altered the text: keep the rest of the paragraph whole
                break
            gap = para[cursor:i]
            if gap.strip():  # text the splitter silently dropped (pysbd does, e.g. "0☄. "): keep it as a sentence
                g = cursor + len(gap) - len(gap.lstrip())
                out.append((para_start + g, para_start + g + len(gap.strip()), first))
                first = False
            out.append((para_start + i, para_start + i + len(s), first))
            first = False
            cursor = i + len(s)
        rest = para[cursor:].strip()
        if rest:
            i = para.find(rest, cursor)
            out.append((para_start + i, para_start + i + len(rest), first))
    return out


def _paragraphs(text: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    for m in PARAGRAPH_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for a, b in spans:
        seg = text[a:b]
        if seg.strip():
            lead = len(seg) - len(seg.lstrip())
            out.append((a + lead, a + len(seg.rstrip())))
    return out


def split_spans(text: str, count_tokens: CountTokens, max_tokens: int) -> list[Span]:
    """Sentence spans, each within ``max_tokens`` word pieces (long sentences cut between words)."""
    sents = sentences(text)
    counts = count_tokens([text[a:b] for a, b, _ in sents]) if sents else []
    out: list[Span] = []
    for (a, b, para), n in zip(sents, counts):
        if n <= max_tokens:
            out.append(Span(a, b, n, para))
        else:
            for i, (x, y, m) in enumerate(_cut_long(text, a, b, count_tokens, max_tokens)):
                out.append(Span(x, y, m, para and i == 0))
    return out


def _cut_long(text: str, a: int, b: int, count_tokens: CountTokens, max_tokens: int) -> list[tuple[int, int, int]]:
    """Cut an over-long sentence between words into pieces that each fit, verified with the real tokenizer."""
    words = [(a + m.start(), a + m.end()) for m in _WORD.finditer(text[a:b])]
    pieces: list[tuple[int, int, int]] = []
    for (x, y), n in zip(words, count_tokens([text[x:y] for x, y in words])):
        pieces.extend([(x, y, n)] if n <= max_tokens else _bisect(text, x, y, n, count_tokens, max_tokens))
    out: list[tuple[int, int, int]] = []
    cur: tuple[int, int, int] | None = None  # (start, end, verified tokens)
    for x, y, n in pieces:
        if cur is not None and cur[2] + n <= max_tokens:
            joined = count_tokens([text[cur[0] : y]])[0]  # joining can change how text splits into pieces
            if joined <= max_tokens:
                cur = (cur[0], y, joined)
                continue
        if cur is not None:
            out.append(cur)
        cur = (x, y, n)
    if cur is not None:
        out.append(cur)
    return out


def _bisect(text: str, x: int, y: int, n: int, count_tokens: CountTokens, max_tokens: int) -> list[tuple[int, int, int]]:
    """A "word" longer than the budget (a URL, base64...): halve it by characters until every half fits."""
    if n <= max_tokens or y - x <= 1:
        return [(x, y, n)]
    mid = (x + y) // 2
    left, right = count_tokens([text[x:mid], text[mid:y]])
    return _bisect(text, x, mid, left, count_tokens, max_tokens) + _bisect(text, mid, y, right, count_tokens, max_tokens)


def sentence_budget(max_tokens: int, hard_max_tokens: int | None = None) -> int:
    """The longest sentence piece, in word pieces, that chunking (and the index's sentence table) works with."""
    return min(max_tokens, hard_max_tokens or max_tokens)


def chunk_spans(
    text: str,
    count_tokens: CountTokens,
    max_tokens: int,
    overlap_tokens: int = 0,
    hard_max_tokens: int | None = None,
    spans: list[Span] | None = None,
) -> list[tuple[int, int]]:
    """Pack sentences into ``[start, end)`` chunks of at most ``max_tokens`` word pieces.

    ``hard_max_tokens`` is the embedder's real limit: every chunk is verified against it with the real tokenizer.
    ``spans``: the text's :func:`split_spans` at ``sentence_budget(max_tokens, hard_max_tokens)``, if already made.
    """
    hard = hard_max_tokens or max_tokens
    target = sentence_budget(max_tokens, hard)
    if spans is None:
        spans = split_spans(text, count_tokens, target)
    chunks: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        j = i
        total = 0
        while j < len(spans):
            s = spans[j]
            if j > i and total + s.tokens > target:
                break
            # Prefer ending at a paragraph break once the chunk is reasonably full.
            if j > i and s.paragraph_start and total >= 0.75 * target:
                break
            total += s.tokens
            j += 1
        # Sums of sentence counts can undershoot the joined text's count; verify and shrink if needed.
        while j - i > 1 and count_tokens([text[spans[i].start : spans[j - 1].end]])[0] > hard:
            j -= 1
        chunks.append((spans[i].start, spans[j - 1].end))
        if j >= len(spans):
            break
        # Start the next chunk a few sentences back, unless we stopped at a paragraph break.
        nxt = j
        if overlap_tokens > 0 and not spans[j].paragraph_start:
            back = 0
            while nxt - 1 > i and back + spans[nxt - 1].tokens <= overlap_tokens and not spans[nxt].paragraph_start:
                nxt -= 1
                back += spans[nxt].tokens
        i = nxt
    return chunks
