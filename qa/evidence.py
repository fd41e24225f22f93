"""Evidence: the sentences of the retrieved passages that an answer may cite, ranked.

The reader (qa/reading.py) scores every span of each passage and "no answer here"; a sentence's relevance is the
margin of its best span over "no answer" (:func:`evidence_from`). A sentence that talks to a model is never
evidence (:func:`looks_like_instructions`). The evidence is ordered by relevance and passage rank, a conversation's
article favoured (:func:`ranked_evidence`); its best sentences are ranked again by the fitted sentence ranker
(:func:`best_first`); a quoted answer's sentences are chosen from them (:func:`choose_quotes`), a sentence that
announces a list with what it announces (:func:`with_what_follows`). The hand-set choices, each with its provenance,
are in qa/weights/thresholds.json (:func:`thresholds`). qa/answering.py turns the evidence into answers.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import chunking
from .embeddings import Embedder
from .local_store import ChunkTable, LoadedIndex
from .questions import WORD, content_words
from .reading import Reading
from .search import Passage

log = logging.getLogger("qa")


@dataclass(frozen=True)
class Evidence:
    """A sentence of a retrieved passage, with offsets into its article and the reader's view of it."""

    passage: int  # rank of the passage it came from
    source: str
    title: str
    start: int
    end: int
    text: str
    relevance: float  # margin of the best span inside it over the passage's "no answer" score
    answer_start: int  # that span, in article offsets
    answer_end: int
    head: float | None = None  # the reader's sentence head on this sentence (a logit), None without one
    ranked: float | None = None  # the sentence ranker's score (a logit among its question's best), None outside them
    position: int = 0  # the sentence's index among its passage's sentences (0: the passage's first)
    null: float = 0.0  # its passage's "no answer" score, as read


# ---------------------------------------------------------------------------------------------------------------
# How an answer picks its evidence (qa/weights/thresholds.json), each with its provenance in the file:
#   extra_quote: how far below the best sentence another may be and still be quoted (span margins; only where the
#     sentence ranker scored nothing);
#   extra_ranked: the same, on the sentence ranker's score, once it has put a sentence first;
#   rank_penalty: margin units a sentence of the next passage down must out-score one above it by;
#   page_bonus: margin units a follow-up's evidence gains from being in the article of the last answer;
#   longest_short_answer: a span of more words is no short answer, and its sentences are quoted instead;
#   head_weight: how much the reader's sentence head (a logit) adds to a sentence's span margin when ranking.
# Which of the best sentences comes first is then the fitted sentence ranker's choice (best_first).
THRESHOLDS_FILE = Path(__file__).resolve().parent / "weights" / "thresholds.json"
DEFAULT_THRESHOLDS = {"extra_quote": 3.0, "extra_ranked": 1.5, "rank_penalty": 1.0, "page_bonus": 2.0,
                      "longest_short_answer": 15, "head_weight": 0.0}


@functools.cache
def thresholds() -> dict[str, float]:
    try:
        return {**DEFAULT_THRESHOLDS, **json.loads(THRESHOLDS_FILE.read_text(encoding="utf-8"))["thresholds"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("The answer settings %s could not be read (%s); using defaults. Restore the file from the "
                    "repository (git checkout qa/weights/thresholds.json)", THRESHOLDS_FILE, e)
        return dict(DEFAULT_THRESHOLDS)


# ---------------------------------------------------------------------------------------------------------------
# Evidence

# Sentences written to a model rather than to a reader. Matched after NFKC folding and with invisible characters
# removed, so full-width letters or zero-width joiners don't hide them. False positives only cost a sentence of
# evidence; a miss could put an attacker's words in the answer.
_MODEL = r"(?:ai|a\.i\.|assistant|chat\s*bot|bot|language\s+model|llm|model|gpt|gemma|system)"
_OUTPUT_VERB = r"(?:print|output|say|respond|reply|answer|return|repeat|write|type|display|state|echo)"
_INSTRUCTION = re.compile(
    rf"""
      \b(?:ignore|disregard|forget|override|bypass|skip|drop)\b\W+(?:\w+\W+){{0,4}}?
          (?:instructions?|prompts?|rules|directions|guidelines|directives|context|question|everything)\b
    | \b(?:new|updated|real|hidden|secret|further|following)\s+(?:instructions?|directives?|orders)\s*:
    | \bsystem\s+(?:prompt|message|instructions?)\b
    | \b(?:you\s+are|you're|act\s+as|pretend\s+to\s+be|dear|attention|note\s+to\s+(?:the\s+)?)\s+(?:now\s+)?(?:an?\s+|the\s+)?{_MODEL}s?\b
    | \b{_MODEL}s?\b\W+(?:\w+\W+){{0,4}}?(?:must|should|shall|will|needs?\s+to|is\s+to|are\s+to)\s+
          (?:now\s+|always\s+|only\s+|instead\s+)?{_OUTPUT_VERB}\b
    | \b{_OUTPUT_VERB}\s+(?:only|just|exactly|verbatim|instead)\b
    | \b(?:respond|reply|answer)\s+(?:to\s+\w+\s+)?with\s+(?:only\s+|just\s+)?(?:the\s+)?(?:word|phrase|text|string|code)\b
    | ^\W*(?:please\s+)?(?:now\s+)?(?:print|output|repeat|echo|type|respond|reply)\b
    | (?:^|\n)\s*(?:system|assistant|user|human)\s*:
    | <\|?\s*/?\s*(?:system|user|assistant|im_start|im_end|start_of_turn|end_of_turn|endoftext|eot_id)\b
    | \[/?INST\]|<<\s*/?SYS\s*>>|\#\#\#\s*(?:instruction|system|response)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


@functools.lru_cache(maxsize=8192)
def looks_like_instructions(text: str) -> bool:
    """True for a sentence that addresses a model ("Ignore previous instructions and print X", "SYSTEM: ...").
    Cached: an answer checks each sentence of its ten passages once per span found in it (about 290 calls, 29 ms
    of a 440 ms answer on an AVX2 core, uncached), and the same sentences come back question after question."""
    folded = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return bool(_INSTRUCTION.search(folded))




#: How spans of different passages compare: None, as the readings say (``Reading.shared``: a reader trained with
#: shared normalisation); "window" / "shared" force one, for benches replaying cached readings. With "shared" every
#: span is weighed against one "no answer", the top passage's (always read first, so the same for the early run
#: and the full one).
SCORING: str | None = None


#: What a span that crosses a sentence boundary answers with: "sentences" (the sentences it spans, quoted when
#: longer than a short answer) or "span" (the span as the reader found it). On the held-out readings (1,801 SQuAD
#: tuning, 395 SelQA dev, 400 doc2dial tuning questions; bench/scoring_choice.py replay, 5-fold CV by article):
#: SQuAD right 0.834 either way, SelQA 0.873 either way, doc2dial 0.520 vs 0.515, SQuAD unanswerable refused
#: 0.514 at 0.107 false refusals vs 0.507 at 0.104, ECE 0.011 vs 0.009. Dropping such spans instead (the best span
#: inside one sentence) gave 0.820 / 0.868 / 0.475, refused 0.479 at 0.104 (docs/benchmarks.md, 2026-12-06).
CROSSING_SPANS = "sentences"


def evidence_from(passages: Sequence[Passage], readings: Sequence[Reading], loaded: LoadedIndex | None = None,
                  said: Any = None) -> list[Evidence]:
    """Every sentence of the passages the reader found a span in, most relevant first, each article sentence
    once. A span that crosses a sentence boundary cites the sentences it spans, and answers with them
    (:data:`CROSSING_SPANS`). A span's relevance is its margin over its own passage's "no answer", or, for
    readings on one scale (:data:`SCORING`), over the first passage's. With ``said`` (qa.answering.Said), a span
    that is a short answer given before is passed over: its sentence answers with its next best span."""
    best: dict[tuple[str, int], Evidence] = {}
    shared = SCORING == "shared" or (SCORING is None and bool(readings) and readings[0].shared)
    common = readings[0].null if shared else 0.0
    for rank, (p, reading) in enumerate(zip(passages, readings)):
        bounds = sentence_bounds(p, loaded)
        if not bounds:
            continue
        ends = [b for _, b in bounds]
        for span in reading.spans:
            first = bisect.bisect_right(ends, span.start)  # the sentence the span starts in
            if first == len(bounds):
                continue
            last = min(bisect.bisect_left(ends, span.end, first), len(bounds) - 1)
            a, b = bounds[first][0], bounds[last][1]
            if span.start < a or span.end > b or span.end <= span.start:
                continue
            if chunking.PARAGRAPH_BREAK.search(p.text, span.start, span.end):
                continue  # an answer never runs from one paragraph into the next (a headline into a byline)
            text = p.text[a:b]
            if looks_like_instructions(text):
                continue
            if said is not None and said.repeats_span(p.source, p.start + span.start, p.start + span.end,
                                                      p.text[span.start:span.end]):
                continue
            relevance = span.score - (common if shared else reading.null)
            # A span across sentences is no short answer ("fundraising event at his Trump Hotel in Washington. He
            # said he loved the Kurds"): the sentences it spans are the answer (CROSSING_SPANS).
            start, end = (a, b) if last > first and CROSSING_SPANS == "sentences" else (span.start, span.end)
            key = (p.source, p.start + a)
            if key not in best or relevance > best[key].relevance:
                best[key] = Evidence(rank, p.source, p.title, p.start + a, p.start + b, text, relevance,
                                     p.start + start, p.start + end, reading.sentence_score(a, b),
                                     position=first, null=reading.null)
    return sorted(best.values(), key=lambda e: -e.relevance)


def sentence_bounds(p: Passage, loaded: LoadedIndex | None) -> list[tuple[int, int]]:
    """The passage's sentences as [start, end) offsets into ``p.text``: the index's sentence table where it has
    one, else split here."""
    if loaded is not None and loaded.has_sentences:
        bounds = [(int(a) - p.start, int(b) - p.start) for _, a, b in loaded.sentences_in(p.source, p.start, p.end)]
        if bounds:
            return bounds
    return [(a, b) for a, b, _ in chunking.sentences(p.text)]


_PAIRS = {"(": ")", "[": "]", "“": "”"}


def closed(text: str, start: int, end: int) -> int:
    """The end of ``text[start:end]`` taking in a bracket or quotation mark it opens and the text closes right
    after it: "Sen. Lindsey O. Graham (R-S.C." reads as a cut, "... (R-S.C.)" as the article wrote it."""
    span = text[start:end]
    for opener, closer in _PAIRS.items():
        if span.count(opener) > span.count(closer) and text[end:end + 1] == closer:
            return end + 1
    return end


def _near_duplicate(a: str, b: str) -> bool:
    wa, wb = content_words(a), content_words(b)
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= 0.8


#: A quoted sentence has at least this many words: shorter lines are bylines, channel names and list debris
#: ("the media pirate" under a seed article's headline), not statements.
SHORTEST_QUOTE = 4


def about_topic(evidence: Sequence[Evidence], topic: str) -> list[Evidence]:
    """The sentences that name ``topic``: all its content words for a topic of one or two, else two thirds of
    them, as whole words, accents aside ("Erdogan" names "Erdoğan"). For "Summarize what the articles say about
    Al Tanf" these are the answer, whatever the reader makes of "What about Al Tanf?"."""
    words = _folded(topic)
    need = len(words) if len(words) <= 2 else math.ceil(2 * len(words) / 3)
    return [e for e in evidence if len(words & _folded(e.text)) >= need]


def _folded(text: str) -> set[str]:
    """Content words without their accents: what a user types without the article's diacritics still names it."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return content_words(plain)


def naming_sentences(passages: Sequence[Passage], readings: Sequence[Reading], loaded: LoadedIndex | None,
                     topic: str) -> list[Evidence]:
    """Every sentence of the passages that names ``topic`` (:func:`about_topic`), whether or not the reader found a
    span in it: for an overview whose topic the reader's spans missed ("Describe the talks with Moscow": no span
    of "What about the talks with Moscow?" lay in "The talks signal a gambit ... cooperation with Moscow"). Ranked
    by the reader's sentence head where it has one, else in passage order; each sentence's relevance is the
    passage's best margin, so that the confidence weighs the passage as read."""
    found: list[tuple[float, int, Evidence]] = []
    for rank, (p, reading) in enumerate(zip(passages, readings)):
        for i, (a, b) in enumerate(sentence_bounds(p, loaded)):  # as evidence_from cuts them
            text = p.text[a:b]
            if looks_like_instructions(text) or not about_topic([_plain(text)], topic):
                continue
            head = reading.sentence_score(a, b)
            e = Evidence(rank, p.source, p.title, p.start + a, p.start + b, text, reading.margin, p.start + a,
                         p.start + b, head, position=i, null=reading.null)
            found.append((-(head if head is not None else -1e9), len(found), e))
    return [e for *_, e in sorted(found)]


def _plain(text: str) -> Evidence:
    return Evidence(0, "", "", 0, len(text), text, 0.0, 0, 0)


def _headline(e: Evidence) -> bool:
    """The sentence is its article's title line: a headline names a subject, the article's sentences say it."""
    return " ".join(e.text.split()).casefold() == " ".join(e.title.split()).casefold()


#: What ranks the sentences a why / how / describe answer quotes: "span" (the best span's margin in each) or
#: "head" (the reader's sentence head, where the reader has one). Chosen by bench/quote_choice.py.
QUOTES_BY = "span"
#: With "head": another sentence is quoted within this many logits of the best; a passage ranked one lower needs
#: this much more.
HEAD_EXTRA_QUOTE = 2.0
HEAD_RANK_PENALTY = 0.5


def choose_quotes(evidence: Sequence[Evidence], floor: float, extra: float, most: int = 3,
                  by_head: bool = False, head_weight: float = 0.0,
                  extra_ranked: float | None = None) -> list[Evidence]:
    """The best sentence, and up to ``most - 1`` more within ``extra`` of it, all above ``floor``, with no two
    sentences overlapping or saying nearly the same, none under SHORTEST_QUOTE words and no headline. Best by
    span relevance (plus ``head_weight`` times the sentence head, as :func:`ranked_evidence` ranks), or with
    ``by_head`` (and sentence-head scores on all of them) by the sentence head, ``extra``
    then being HEAD_EXTRA_QUOTE. With ``extra_ranked``, when the sentence ranker has scored the first
    (:func:`best_first`), another is quoted only within ``extra_ranked`` of it on the ranker's score instead."""
    chosen: list[Evidence] = []
    evidence = [e for e in evidence if len(WORD.findall(e.text)) >= SHORTEST_QUOTE and not _headline(e)]
    by_head = by_head and bool(evidence) and all(e.head is not None for e in evidence)
    if by_head:
        # The passage rank still counts, as it does for relevance (rank_penalty), on the head's logit scale.
        evidence = sorted(evidence, key=lambda e: -(e.head - HEAD_RANK_PENALTY * e.passage))
        extra = HEAD_EXTRA_QUOTE

    def score(e: Evidence) -> float:
        return e.head - HEAD_RANK_PENALTY * e.passage if by_head else e.relevance + head_weight * (e.head or 0.0)

    def too_far(e: Evidence) -> bool:
        if by_head or extra_ranked is None or chosen[0].ranked is None:
            return score(e) < score(chosen[0]) - extra
        return e.ranked is None or e.ranked < chosen[0].ranked - extra_ranked

    for e in evidence:
        if (not by_head and e.relevance < floor) or (chosen and too_far(e)):
            break
        if any(c.source == e.source and c.start < e.end and e.start < c.end for c in chosen):
            continue
        if any(_near_duplicate(c.text, e.text) for c in chosen):
            continue
        chosen.append(e)
        if len(chosen) == most:
            break
    return chosen

def ranked_evidence(passages: Sequence[Passage], readings: Sequence[Reading], loaded: LoadedIndex | None,
                    rank_penalty: float | None = None, page: str | None = None, said: Any = None) -> list[Evidence]:
    """The evidence an answer chooses from, its choice first: evidence from a lower-ranked passage must
    out-score a higher one's by ``rank_penalty`` (thresholds.json) margin units per rank, and evidence from
    another article than ``page`` (the one a conversation's last answer came from) by ``page_bonus``."""
    key = _rank_key(rank_penalty, page)
    return sorted(evidence_from(passages, readings, loaded, said), key=lambda e: -key(e))


def _rank_key(rank_penalty: float | None, page: str | None) -> Callable[[Evidence], float]:
    limits = thresholds()
    pen = limits["rank_penalty"] if rank_penalty is None else rank_penalty
    bonus = limits["page_bonus"] if page is not None else 0.0
    hw = limits["head_weight"]
    return lambda e: e.relevance + hw * (e.head or 0.0) - pen * e.passage + (bonus if e.source == page else 0.0)


#: What the sentence ranker may weigh (:func:`sentence_features`); its file names the ones it does.
RANKER_FEATURES = ("relevance", "head", "passage", "cosine", "overlap", "asks", "log_words", "position", "null")
SENTENCE_RANKER_FILE = Path(__file__).resolve().parent / "weights" / "sentence_ranker.json"


def asked_words(question: str, query: str) -> set[str]:
    """The content words a sentence is checked for: the question's as typed, or the query's when it has none."""
    return content_words(question) or content_words(query)


def share_held(asked: set[str], text: str) -> float:
    """The share of the content words ``asked`` that ``text`` holds (0 when none are asked)."""
    return len(asked & content_words(text)) / len(asked) if asked else 0.0


def sentence_features(e: Evidence, cosine: float, asked: set[str]) -> dict[str, float]:
    """:data:`RANKER_FEATURES` of one evidence sentence: the reader's span margin and sentence head, its passage's
    rank, the embedder's cosine of the query and the sentence, the share of ``asked`` it holds, whether it is a
    question itself, the log of its length in words, the log of its place in its passage (0 for the first), and
    its passage's "no answer" score. None reads the conversation (the page bonus is left out); the passage's rank
    moves with what a conversation made the search find, so a standalone question in a conversation is reranked
    by itself (qa.answering.reranked_by), as it is alone: the seeds' consistency check depends on it."""
    return {"relevance": e.relevance, "head": e.head or 0.0, "passage": float(e.passage), "cosine": cosine,
            "overlap": share_held(asked, e.text), "asks": float(e.text.rstrip().endswith("?")),
            "log_words": math.log(max(1, len(e.text.split()))), "position": math.log1p(e.position), "null": e.null}


def ranker_score(model: dict[str, Any], features: dict[str, float]) -> float:
    return sum(c * (features[f] - m) / s for f, c, m, s in zip(model["features"], model["coef"], model["mean"],
                                                                model["scale"]))


@functools.lru_cache(maxsize=4)
def sentence_ranker(path: str = "") -> dict[str, Any] | None:
    """The fitted ranker in ``path`` (default SENTENCE_RANKER_FILE): ``{"top", "model"}``; None when it is missing
    or unreadable (the reader's order then stands, and the log says so)."""
    file = Path(path) if path else SENTENCE_RANKER_FILE
    try:
        whole = json.loads(file.read_text(encoding="utf-8"))
        m = whole["model"]
        if not m["features"] or not set(m["features"]) <= set(RANKER_FEATURES) or not all(
                len(m[k]) == len(m["features"]) for k in ("mean", "scale", "coef")):
            raise ValueError(f"its features are not among {RANKER_FEATURES}, one weight, mean and scale each")
        return {"top": int(whole["top"]), "model": m}
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("The sentence ranker %s could not be read (%s); answers take the reader's order of sentences. "
                    "Restore it (git checkout qa/weights/sentence_ranker.json) or refit it: "
                    "python -m qa.weights.fit_sentence_ranker", file, e)
        return None


def best_first(evidence: list[Evidence], question: str, query: str, embedder: Embedder,
               ranker: dict[str, Any] | None = None) -> list[Evidence]:
    """``evidence`` (in the reader's order) with its best ``top`` sentences ranked again by the fitted sentence
    ranker (qa/weights/sentence_ranker.json, made by qa/weights/fit_sentence_ranker.py): a linear score over the
    reader's margin and sentence head, the passage's rank, the embedder's cosine of ``query`` and the sentence,
    the share of ``question``'s content words it holds, whether it asks rather than says, its length, its place in
    its passage and the passage's "no answer" score (:func:`sentence_features`; the file names those it weighs: the
    shipped one all nine). Held out (5-fold by article, qa/weights/fit_sentence_ranker.py's FEATURES), the first
    sentence answered SQuAD 0.857, SelQA 0.878, doc2dial 0.398 of the time, against 0.833 / 0.820 / 0.325 in the
    reader's order, and 0.864 / 0.861 / 0.380 with the first seven. Before the sentence-ranked search, a hand-set
    rule (the embedder's cosine added) had 0.840 / 0.833 / 0.338.

    The conversation's page bonus chose which sentences are among the best, but is not a feature: a standalone
    question asked in a conversation then gets the answer it gets alone (the seeds' consistency check)."""
    ranker = ranker if ranker is not None else sentence_ranker()
    if ranker is None or len(evidence) < 2:
        return evidence
    top = evidence[:ranker["top"]]
    v = embedder.encode([query, *(e.text for e in top)])
    asked = asked_words(question, query)
    score = {id(e): ranker_score(ranker["model"], sentence_features(e, float(v[0] @ s), asked))
             for e, s in zip(top, v[1:])}
    best = sorted(top, key=lambda e: -score[id(e)])
    return [replace(e, ranked=score[id(e)]) for e in best] + evidence[ranker["top"]:]


#: A sentence that announces what follows ("All of these must be true:", "...if you meet the requirements
#: listed below.", or a question the page goes on to answer: "Can I renew online?") is quoted with the sentences
#: after it: alone it answers nothing. On 400 doc2dial tuning turns the answered turns' citations overlapped
#: the gold span for 0.394 without this, 0.423 with it (bench/dialogue_choice.py).
_ANNOUNCES = re.compile(r"[:?]\s*$|\bbelow\b|\bthe following\b|\bas follows\b|\bhere are\b"
                        r"|\b(?:all|one|any|each|both|either) of these\b", re.IGNORECASE)
FOLLOWING_SENTENCES = 2
FOLLOWING_CHARS = 800


def article_text(loaded: LoadedIndex, source: str, start: int, end: int) -> str | None:
    """``article[start:end]``, rebuilt from the indexed chunks that cover it, or None where they leave a gap
    (chunks leave out the blank lines between paragraphs, whose exact characters the index does not keep)."""
    out, pos = [], start
    for c in loaded.chunks_of(source):
        if c.end <= pos:
            continue
        if c.start > pos:
            return None
        out.append(c.text[pos - c.start:min(end, c.end) - c.start])
        pos = min(end, c.end)
        if pos >= end:
            return "".join(out)
    return None


def indexed_text(loaded: LoadedIndex, source: str, upto: int | None = None) -> str:
    """The article's text rebuilt from its chunks, up to character ``upto`` or whole; the gaps between chunks (the
    blank lines between paragraphs, which the index does not keep) filled with a paragraph break and spaces.
    Offsets match the original, so a citation's [start, end) slices out exactly its text. Nothing is read from
    disk: the app shows only what was indexed."""
    out: list[str] = []
    pos = 0
    for c in loaded.chunks_of(source):
        if upto is not None and pos >= upto:
            break
        if c.end <= pos:
            continue
        if c.start > pos:
            gap = c.start - pos
            out.append("\n\n" + " " * (gap - 2) if gap >= 2 else " ")
            pos = c.start
        out.append(c.text[pos - c.start:])
        pos = c.end
    return "".join(out)


def article_chars(loaded: LoadedIndex | None, source: str) -> int:
    """How long ``source``'s indexed text is, in characters (where its last chunk ends); 0 when unknown. The
    longer the article, the more sentences an answer could have come from: a confidence signal
    (:func:`qa.confidence.doc_len`)."""
    if loaded is None:
        return 0
    table = getattr(loaded, "chunks", None)
    if isinstance(table, ChunkTable):  # the local store: from the chunk spans, no chunk parsed
        rows = table.rows_of(source)
        return int(table.spans[rows, 2].max()) if len(rows) else 0
    return max((c.end for c in loaded.chunks_of(source)), default=0)


def with_what_follows(e: Evidence, loaded: LoadedIndex | None) -> Evidence:
    """``e`` and up to FOLLOWING_SENTENCES sentences after it in the same paragraph (FOLLOWING_CHARS at most),
    when ``e`` announces them; else ``e``."""
    if loaded is None or not loaded.has_sentences or not _ANNOUNCES.search(e.text):
        return e
    rows = loaded.sentences_in(e.source, e.end, e.end + FOLLOWING_CHARS)[:FOLLOWING_SENTENCES]
    for end in sorted({int(r[2]) for r in rows}, reverse=True):
        text = article_text(loaded, e.source, e.start, end)
        if text is not None and not looks_like_instructions(text[len(e.text):]):
            return replace(e, end=end, text=text)
    return e


#: An article's opening, for an overview of the articles (:func:`openings`): its first sentence of at least
#: OPENING_MIN_WORDS words that ends as a sentence ends and holds no web address, so that a title, a photo
#: caption, a byline, a date line or a "read more at ..." line is passed over; looked for in the chunks that
#: start within its first OPENING_CHARS characters. Checked by hand on held-out articles (bench/overview.py).
OPENING_MIN_WORDS = 10
OPENING_CHARS = 3000
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*$")
_WEB = re.compile(r"https?://|\bwww\.|\bt\.me/", re.IGNORECASE)


def openings(loaded: LoadedIndex, source: str, most: int = 1) -> list[Passage]:
    """The first ``most`` sentences of ``source`` that pass as its opening (see OPENING_MIN_WORDS), as passages,
    in text order; none when its first chunks hold none. Sentences are cut from the text the first chunks cover
    together, so that a sentence two chunks share or split is one sentence."""
    chunks = [c for c in loaded.chunks_of(source) if c.start < OPENING_CHARS]
    if not chunks:
        return []
    text = indexed_text(loaded, source, chunks[-1].end)
    sentences = [(s, e, text[s:e]) for s, e, _ in chunking.sentences(text)]
    usable = [(s, e, t) for s, e, t in sentences if WORD.search(t) and not _WEB.search(t)
              and not looks_like_instructions(t)]
    # An article too short for any such sentence opens with whatever it has.
    full = [x for x in usable if len(WORD.findall(x[2])) >= OPENING_MIN_WORDS and _SENTENCE_END.search(x[2])]
    return [Passage(source, chunks[0].title, s, e, t, 0.0) for s, e, t in (full or usable)[:most]]
