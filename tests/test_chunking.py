"""Chunk offsets are exact for any text, and no chunk exceeds the embedder's word-piece limit."""

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa import chunking, documents

from .fakes import HashEmbedder

EMB = HashEmbedder(max_tokens=30)

# Text built from pieces that stress offsets: CRLF and lone CR, blank lines, accents, CJK, emoji, RTL, tabs.
PIECES = st.sampled_from([
    "\r\n", "\r", "\n", "\n\n", "\r\n\r\n", " ", "\t", ". ", "? ", "! ", "Dr. ", "U.S. ", "1,500 ", "café ",
    "naïve ", "日本語の文章。", "😀 ", "مرحبا بالعالم. ", "ÅÆØ ", "\u00a0", "\ufeff", "—", "supercalifragilistic",
])
TEXT = st.lists(st.one_of(PIECES, st.text(min_size=0, max_size=30)), max_size=60).map("".join)


def _check(text: str, spans: list[tuple[int, int]], max_tokens: int) -> None:
    covered = [False] * len(text)
    for a, b in spans:
        assert 0 <= a < b <= len(text)
        piece = text[a:b]
        assert piece == piece.strip(), "chunks start and end on content"
        assert EMB.count_tokens([piece])[0] <= max_tokens
        for i in range(a, b):
            covered[i] = True
    missing = [c for c, cov in zip(text, covered) if not cov and not c.isspace()]
    assert not missing, f"content left out of every chunk: {''.join(missing)!r}"


@given(TEXT)
@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_offsets_exact_through_the_file(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.txt"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        got = documents.read(documents.scan(tmp)[0][0], 10**9) if text.strip() else None
        if text.strip() and not isinstance(got, documents.Document):
            # Only undecodable input (lone surrogates) or NUL bytes may be refused, and with a reason.
            assert ("UTF-8" in got.reason and any(0xD800 <= ord(c) <= 0xDFFF for c in text)) or ("NUL" in got.reason and "\x00" in text)
            return
        if got is None:
            return
        on_disk = path.read_text(encoding="utf-8")
        assert got.text == on_disk
        spans = chunking.chunk_spans(got.text, EMB.count_tokens, 30, 8, EMB.max_tokens)
        _check(got.text, spans, EMB.max_tokens)
        for a, b in spans:
            assert on_disk[a:b] == got.text[a:b]


@given(TEXT, st.integers(min_value=3, max_value=50), st.integers(min_value=0, max_value=20))
@settings(max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "300")), deadline=None)
def test_any_budget_and_overlap(text, budget, overlap):
    spans = chunking.chunk_spans(text, EMB.count_tokens, budget, overlap, budget)
    _check(text, spans, budget)
    starts = [a for a, _ in spans]
    assert starts == sorted(starts) and len(set(starts)) == len(starts), "chunks advance"


def test_long_sentence_and_long_word_are_cut_not_truncated():
    text = "word " * 500 + "x" * 3000 + " end."
    spans = chunking.chunk_spans(text, EMB.count_tokens, 30, 0, 30)
    _check(text, spans, 30)
    assert len(spans) > 10


def test_overlap_repeats_trailing_sentences_within_a_paragraph():
    text = " ".join(f"Sentence number {i} is here." for i in range(20))
    spans = chunking.chunk_spans(text, EMB.count_tokens, 25, 10, 25)
    assert len(spans) > 2
    assert any(b > a2 for (_, b), (a2, _) in zip(spans, spans[1:])), "consecutive chunks overlap"


def test_paragraph_breaks_are_preferred_and_not_overlapped():
    para = "One short sentence here. Another one follows it."
    text = "\n\n".join([para] * 6)
    spans = chunking.chunk_spans(text, EMB.count_tokens, 25, 10, 25)
    for a, b in spans:
        assert text[a:b].startswith("One") and text[a:b].endswith("it.")
    assert all(b <= a2 for (_, b), (a2, _) in zip(spans, spans[1:]))


def test_sentences_are_split_by_a_real_splitter():
    text = "Dr. Smith met U.S. officials on Jan. 5. They agreed.\n\nA new paragraph."
    got = [text[a:b] for a, b, _ in chunking.sentences(text)]
    assert got == ["Dr. Smith met U.S. officials on Jan. 5.", "They agreed.", "A new paragraph."]
