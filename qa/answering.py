"""Evidence, answers in the shape of the question, citations and abstention (what a question asks for, and how a
follow-up is read, are qa/questions.py).

Trust comes from the pipeline, not the model:
1. search the index for passages;
2. the trained reader (qa/reading.py) reads each passage with the question and scores every span, and "no answer
   here"; each sentence's relevance is the margin of its best span over "no answer";
3. a factoid question (who, when, how many, ...) with a confident span gets that span, verbatim: "1,500 [1]",
   citing the sentence it came from. A why / how / what-is / describe / summarize question, or a span too long
   to be a short answer, gets the 1-3 most relevant sentences quoted verbatim, each with its own [n];
4. the code, not the model, attaches every citation: exact offsets into the article, checked against its text;
5. every answer carries its confidence, the probability that it is right, fitted on held-out questions
   (qa/weights/confidence.json); below ``Settings.min_confidence`` the answer says the articles don't say, and
   offers the closest passages as "related" only.

Articles are data, never instructions: a sentence that talks to a model ("ignore previous instructions and
print ...", chat-role markup) is never used as evidence, so it can never be quoted or copied out.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import chunking
from .config import Settings
from .embeddings import Embedder, get_embedder
from .generation import get_generator
from .index import check_embedder, ensure_index
from .local_store import DEFAULT_INDEX_DIR, LoadedIndex
from .questions import (
    MARKERS,
    WORD,
    as_asked,
    content_words,
    descriptive,
    needs_context,
    overview_topic,
    previous_questions,
    reader_text,
    rewrite_follow_up,
)
from .reading import Reader, Reading, get_reader, reader_sha256
from .search import Passage, clean_question, first_run, merge, rank_many, rerank

log = logging.getLogger("qa")

ABSTAIN_TEXT = "The articles don't say. None of the indexed passages answers this question."


@dataclass(frozen=True)
class Citation(Passage):
    """A passage the answer cites as ``[n]``: the exact sentence (or sentences) the answer comes from.
    ``answer_start``/``answer_end``: where the short answer lies inside it (article offsets), for highlighting;
    equal to ``start``/``end`` for a quoted sentence."""

    n: int = 0
    answer_start: int = -1
    answer_end: int = -1


@dataclass(frozen=True)
class Support:
    """One sentence of the answer and the citations that back it."""

    text: str
    citations: tuple[int, ...]
    supported: bool  # the text occurs verbatim in every cited passage


@dataclass(frozen=True)
class Answer:
    question: str
    text: str  # with [n] markers
    citations: list[Citation]
    abstained: bool
    searched_for: str  # the standalone question used for search (differs from `question` for follow-ups)
    support: list[Support] = field(default_factory=list)
    related: list[Passage] = field(default_factory=list)  # closest passages, offered when abstaining
    confidence: float = 0.0  # the estimated probability that this answer is right (qa/weights/fit_confidence.py)
    seconds: float = 0.0
    complete: bool = True  # False for the partial answers a stream yields before the last one
    index_version: str = ""  # the index generation the answer came from (one per answer, even mid-rebuild)
    shape: str = "abstained"  # "short": a span copied out of its sentence; "quotes": 1-3 sentences quoted verbatim
    short: str = ""  # the short answer without markers ("" unless shape is "short")
    #: The conversation changed what was searched: what the answer comes from (its citations, or for an
    #: abstention the best passage) is not all among the question's own best passages. The app and `qa ask` show
    #: "searched for" only then.
    history_used: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples), with the confidence also as a whole percentage: the same object
        the CLI prints and the web API returns."""
        d = asdict(self)
        d["confidence_percent"] = round(100 * self.confidence)  # as the app and `qa ask` show it
        d["support"] = [{**s, "citations": list(s["citations"])} for s in d["support"]]
        return d


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
# Confidence: the probability that an answer is right, from the reader's own signals about it. A logistic model
# (multi-feature Platt scaling) fitted by `python -m qa.weights.fit_confidence` on held-out SQuAD 2.0 tuning
# articles, SelQA dev and doc2dial tuning turns, cross-validated across articles; stored as plain numbers in
# qa/weights/confidence.json with its provenance and figures. Right means: a short answer with F1 >= 0.5 against a
# gold answer (or holding one); quoted sentences with a citation covering the gold answer sentence or span.
CONFIDENCE_FILE = Path(__file__).resolve().parent / "weights" / "confidence.json"
SIGNALS = ("relevance", "quotes", "relevance_quotes", "rank", "search_score", "gap", "null", "words", "follow_up",
           "answer_words", "agree", "head", "similarity")


def signals(top: Evidence, evidence: Sequence[Evidence], passages: Sequence[Passage], readings: Sequence[Reading],
            quotes: bool, question: str, follow_up: bool, short: str = "") -> dict[str, float]:
    """What the reader says about the answer it is about to give, as numbers the calibrator weighs:
    the chosen sentence's margin over "no answer" (and for quoted sentences apart), the rank and search score of its
    passage, how far it leads the next sentence, its passage's "no answer" score, the share of the question's
    content words it holds, whether a conversation shaped the search, the short answer's length, how many other
    passages' best spans say the same, and the sentence head's logit for it (0 for a reader without one)."""
    def clip(x: float, lo: float = -15.0, hi: float = 15.0) -> float:
        return max(lo, min(hi, float(x)))

    rest = [e.relevance for e in evidence if (e.source, e.start) != (top.source, top.start)]
    said = " ".join(short.lower().split())
    agree = 0
    if said:
        for i, (p, r) in enumerate(zip(passages, readings)):
            if i != top.passage and r.best is not None and " ".join(p.text[r.best.start:r.best.end].lower().split()) == said:
                agree += 1
    held = share_held(content_words(question), top.text)
    rel = clip(top.relevance)
    return {"relevance": rel, "quotes": float(quotes), "relevance_quotes": rel * quotes, "rank": float(top.passage),
            "search_score": float(passages[top.passage].score) if top.passage < len(passages) else 0.0,
            "gap": clip(top.relevance - max(rest), 0.0) if rest else 15.0,
            "null": clip(readings[top.passage].null) if top.passage < len(readings) else 0.0,
            "words": held, "follow_up": float(follow_up), "answer_words": math.log1p(len(short.split())),
            "agree": float(min(agree, 3)), "head": clip(top.head) if top.head is not None else 0.0}


@functools.lru_cache(maxsize=8)
def calibrator(path: str = "", reader_sha: str | None = None,
               reading: tuple[tuple[str, Any], ...] = ()) -> dict[str, Any] | None:
    """The fitted model in ``path`` (default CONFIDENCE_FILE): features, their mean and scale, coefficients and
    intercept; None when the file is missing or unreadable (the confidence then falls back to the squashed margin,
    and says so in the log). With ``reader_sha``, the log warns once when the file was fitted for another
    reader: its probabilities are then another reader's. With ``reading`` (:func:`reading_settings`), it warns
    once when the file was fitted under other reading or reranking settings: the signals then come from other
    passages, read otherwise, than those it was fitted on."""
    file = Path(path) if path else CONFIDENCE_FILE
    try:
        whole = json.loads(file.read_text(encoding="utf-8"))
        c = whole["model"]
        if not all(len(c[k]) == len(c["features"]) for k in ("mean", "scale", "coef")):
            raise ValueError("features, mean, scale and coef differ in length")
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("The confidence model %s could not be read (%s); confidence is the squashed reader margin. "
                    "Refit it: python -m qa.weights.fit_confidence", file, e)
        return None
    fitted_for = whole.get("reader_sha256")
    if reader_sha and fitted_for and fitted_for != reader_sha:
        log.warning("The confidence model %s was fitted for reader %s, not this one (%s): the confidence shown is "
                    "not calibrated for it. Fit one: QA_READER=... python -m qa.weights.fit_confidence --out FILE, "
                    "then set QA_CONFIDENCE=FILE", file, fitted_for[:12], reader_sha[:12])
    fitted_reading = whole.get("reading") or {}
    if differ := {k: (fitted_reading[k], v) for k, v in reading if k in fitted_reading and fitted_reading[k] != v}:
        said = ", ".join(f"{k} {now!r} (fitted at {then!r})" for k, (then, now) in sorted(differ.items()))
        log.warning("The confidence model %s was fitted under other reading settings than these: %s. The confidence "
                    "shown may be off. Use the settings it was fitted with, or fit one under these: "
                    "python -m qa.weights.fit_confidence --out FILE, then set QA_CONFIDENCE=FILE", file, said)
    return c


#: The settings that change what an answer's signals are made from; fit_confidence records them with its model.
READING_SETTINGS = ("reader_batch", "reader_overlap", "rerank", "rerank_weight")


def reading_settings(settings: Settings) -> tuple[tuple[str, Any], ...]:
    return tuple((k, getattr(settings, k)) for k in READING_SETTINGS)


def similarity(embedder: Embedder, searched: str, a: Answer, follow_up: bool) -> float:
    """The embedder's cosine of the question and the answer's first cited text: a second opinion from a model
    trained on other data than the reader's. 0 for a question searched with its conversation, where what was
    searched is a conversation, not a question. On the held-out rows of fit_confidence, cross-validated by
    article, it raised the share of SQuAD's unanswerable questions refused at 10 % false refusals from 0.438 to
    0.485 (C 0.1; docs/benchmarks.md, 2026-12-06)."""
    return similarities(embedder, [(searched, a, follow_up)])[0]


def similarities(embedder: Embedder, items: Sequence[tuple[str, Answer, bool]], batch: int = 256) -> list[float]:
    """:func:`similarity` of each ``(searched, answer, follow_up)``, embedded ``batch`` pairs at a time."""
    out = [0.0] * len(items)
    todo = [i for i, (_, a, follow_up) in enumerate(items) if a.citations and not follow_up]
    for k in range(0, len(todo), batch):
        part = todo[k:k + batch]
        v = embedder.encode([t for i in part for t in (items[i][0], items[i][1].citations[0].text)])
        for j, i in enumerate(part):
            out[i] = float(v[2 * j] @ v[2 * j + 1])
    return out


def confidence_of(sig: dict[str, float], model: dict[str, Any] | None = None) -> float:
    """P(right) for an answer with these signals under ``model`` (default: the shipped one), kept within
    [0.01, 0.99]: a few thousand held-out questions cannot show that any answer is surer than that, so none is
    shown as 100 %."""
    c = model if model is not None else calibrator()
    if not c:  # None or {}: no readable model
        z = sig["relevance"]
    else:
        z = c["intercept"] + sum(w * (sig.get(f, 0.0) - m) / (sc or 1.0)
                                 for f, m, sc, w in zip(c["features"], c["mean"], c["scale"], c["coef"]))
    return min(0.99, max(0.01, 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))))


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


def evidence_from(passages: Sequence[Passage], readings: Sequence[Reading], loaded: LoadedIndex | None = None,
                  ) -> list[Evidence]:
    """Every sentence of the passages the reader found a span in, most relevant first, each article sentence
    once. A span that crosses a sentence boundary cites the sentences it spans. A span's relevance is its margin
    over its own passage's "no answer", or, for readings on one scale (:data:`SCORING`), over the first passage's."""
    best: dict[tuple[str, int], Evidence] = {}
    shared = SCORING == "shared" or (SCORING is None and bool(readings) and readings[0].shared)
    common = readings[0].null if shared else 0.0
    for rank, (p, reading) in enumerate(zip(passages, readings)):
        if loaded is not None and loaded.has_sentences:
            bounds = [(int(a) - p.start, int(b) - p.start) for _, a, b in loaded.sentences_in(p.source, p.start, p.end)]
        else:
            bounds = []
        if not bounds:
            bounds = [(a, b) for a, b, _ in chunking.sentences(p.text)]
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
            relevance = span.score - (common if shared else reading.null)
            key = (p.source, p.start + a)
            if key not in best or relevance > best[key].relevance:
                best[key] = Evidence(rank, p.source, p.title, p.start + a, p.start + b, text, relevance,
                                     p.start + span.start, p.start + span.end, reading.sentence_score(a, b))
    return sorted(best.values(), key=lambda e: -e.relevance)


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
    them, as whole words. For "Summarize what the articles say about Al Tanf" these are the answer, whatever the
    reader makes of "What about Al Tanf?"."""
    words = content_words(topic)
    need = len(words) if len(words) <= 2 else math.ceil(2 * len(words) / 3)
    return [e for e in evidence if len(words & content_words(e.text)) >= need]


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

# ---------------------------------------------------------------------------------------------------------------
# Answering


def answer(
    question: str,
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    history: Any = None,
    *,
    settings: Settings | None = None,
) -> Answer:
    """Answer ``question`` from the indexed articles, with ``[n]`` citations, or abstain."""
    *_, final = stream(question, index_dir, history, settings=settings, early=False)
    return final


def stream(
    question: str,
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    history: Any = None,
    *,
    settings: Settings | None = None,
    early: bool = True,
) -> Iterator[Answer]:
    """Like :func:`answer`, as a stream of answers whose last is final (``complete=True``). While the reader reads
    and reranks the search results, an early answer (``complete=False``) from the best ``Settings.early_passages``
    of them may come first; an early abstention is never shown. The final answer is the one :func:`answer` gives.

    A question in a conversation is searched with the conversation (:func:`qa.questions.rewrite_follow_up`);
    :data:`STANDALONE` can answer one that could stand alone (:func:`stands_alone`) as if asked alone as well, and
    keep the likelier right of the two (measured, not shipped: it cost doc2dial follow-ups their citations)."""
    t0 = time.perf_counter()
    q, searched, reader_q, read_as, loaded, embedder, reader, settings, page = _prepare(question, index_dir, history,
                                                                                       settings)
    plan = standalone_plan(question, history, loaded, embedder, settings, page)
    if plan == "alone":
        yield from stream(question, index_dir, None, settings=settings, early=early)
        return
    if plan == "read":
        read_as = reader_q  # searched with the conversation, read as asked: no earlier answer beside it
    alone = None
    if plan == "both":
        for a in stream(question, index_dir, None, settings=settings, early=early):
            if not a.complete:
                yield a
            alone = a
    own = None
    if searched != q:
        n = settings.answer_passages
        own = merge(loaded, rank_many(loaded, embedder, [q], n, settings)[0], n)
    remembered = _Remembered(embedder)  # the early and the final answer embed the question once between them
    for passages, readings, final in read_stages(searched, read_as, loaded, embedder, reader, settings,
                                                 early=early and alone is None):
        a = compose(q, searched, reader_q, passages, readings, loaded, t0, settings.max_quotes, settings.min_confidence,
                    page=page, model=calibrator(settings.confidence, reader_sha256(settings),
                                                 reading_settings(settings)) or {}, embedder=remembered)
        if own is not None:
            a = replace(a, history_used=not all(any(o.source == c.source and o.start < c.end and c.start < o.end
                                                    for o in own)
                                                for c in (a.citations or passages[:1])))
        if final:
            # The question's own answer when the conversation's abstains, or is less likely right by
            # STANDALONE_MARGIN or more.
            keep_alone = alone is not None and (a.abstained or alone.confidence >= a.confidence + STANDALONE_MARGIN)
            yield replace(alone, seconds=time.perf_counter() - t0) if keep_alone else a
        elif not a.abstained:
            yield replace(a, complete=False)


#: How a question that could stand alone is answered in a conversation: "both" (alone and with the conversation,
#: the likelier right kept), "page" (alone when the last answer's article is not among its own best passages,
#: else with the conversation), "read" (searched with the conversation, read without the last answer beside it)
#: or "never" (always with the conversation). With "both", the question's own answer
#: is kept when it is likelier right than the conversation's by STANDALONE_MARGIN or more (or when the
#: conversation's abstains). bench/standalone.py measures each.
#: On 200 doc2dial tuning turns (answered / cited / follow-up search@5): never 0.875 / 0.463 / 0.830; page 0.860 /
#: 0.401 / 0.725; both 0.890 / 0.371 / 0.755, with a margin of 0.2 0.890 / 0.455 / 0.795, 0.3 0.890 / 0.461 / 0.800.
#: read 0.865 / 0.405 / 0.830. On the seeds, 6 standalone questions after 2 conversations on other topics got
#: their own answer 8 of 12 times (never, read), 10 (page), 11 (both) while a question's passages were read in one
#: run; read each in its own (Settings.reader_batch "text"), 12 of 12 under every plan. "never" is shipped: dialogue
#: turns that look standalone mostly lean on their conversation's page, and reading them alone costs citations.
STANDALONE = "never"
STANDALONE_MARGIN = 0.0


def standalone_plan(question: str, history: Any, loaded: LoadedIndex, embedder: Embedder, settings: Settings,
                    page: str | None) -> str:
    """"alone", "both", "read" or "conversation": how to answer ``question`` given ``history`` (see
    :data:`STANDALONE`)."""
    if STANDALONE == "never" or not stands_alone(question, history):
        return "conversation"
    if STANDALONE in ("both", "read"):
        return STANDALONE
    if page is None:
        return "alone"
    n = settings.answer_passages
    own = merge(loaded, rank_many(loaded, embedder, [clean_question(question, settings.max_question_chars)], n,
                                  settings)[0], n)
    return "conversation" if any(p.source == page for p in own) else "alone"


def stands_alone(question: str, history: Any) -> bool:
    """A question in a conversation that names enough to be asked alone (:func:`qa.questions.needs_context` is
    False): "How many soldiers would European countries contribute?", not "and how many would stay?"."""
    return bool(previous_questions(history)) and not needs_context(question)


def _prepare(question, index_dir, history, settings):
    settings = settings or Settings.from_env()
    q = clean_question(question, settings.max_question_chars)
    reader = get_reader(settings)  # first: a reader in a worker process loads while the index does
    loaded = ensure_index(index_dir, settings)
    embedder = get_embedder(settings)
    check_embedder(loaded, embedder, index_dir)
    searched, reader_q = rewrite_follow_up(q, history, get_generator(settings))
    if (topic := overview_topic(reader_q)) is not None:
        searched = searched.replace(reader_q, topic, 1) if reader_q in searched else topic
        wh = re.match(r"(?:why|how|what|when|who|where|which|whether)\b", topic, re.IGNORECASE)
        reader_q = f"{topic[0].upper()}{topic[1:]}?" if wh else f"What about {topic}?"
    page = conversation_page(history, loaded, embedder, settings)
    return q, searched, reader_q, reader_text(reader_q, history, q), loaded, embedder, reader, settings, page


def read_evidence(searched: str, reader_q: str, loaded: LoadedIndex, embedder: Embedder, reader: Reader,
                  settings: Settings) -> tuple[list[Passage], list[Reading]]:
    """The passages an answer is made from, best first, and the reader's reading of each with ``reader_q``."""
    *_, (passages, readings, _) = read_stages(searched, reader_q, loaded, embedder, reader, settings)
    return passages, readings


#: Whether the reader reads a question typed without its "?" with one (:func:`qa.questions.as_asked`). Off: on 250
#: + 250 held-out SQuAD questions typed without it, putting it back refused 0.400 of the unanswerable instead of
#: 0.368 but 0.096 of the answerable instead of 0.084, gave 6 fewer right answers, and the confidence's ECE was
#: 0.038 against 0.021; 5 of 200 doc2dial turns changed, cited 0.427 vs 0.429 (bench/question_form.py).
ASK_AS_QUESTION = False


def read_stages(searched: str, reader_q: str, loaded: LoadedIndex, embedder: Embedder, reader: Reader,
                settings: Settings, early: bool = False) -> Iterator[tuple[list[Passage], list[Reading], bool]]:
    """``(passages, readings, final)``: with ``early``, first the best ``Settings.early_passages`` fused passages
    read with ``reader_q`` (for an answer to show while the rest are read), then what :func:`read_evidence`
    returns. Those best passages are read first, in a run of their own, whether shown or not: the int8 reader
    scales its activations per run (qa/reading.py), so :func:`answer` and the last answer of :func:`stream` read
    the same runs and agree. Nothing is read twice with the same question, so the early answer costs no extra
    reading."""
    n = settings.answer_passages
    ranking = rank_many(loaded, embedder, [searched], max(n, settings.rerank), settings)[0]
    done: dict[tuple[str, str], Reading] = {}

    def read(question: str, passages: Sequence[Passage]) -> list[Reading]:
        todo = list(dict.fromkeys(p.text for p in passages if (question, p.text) not in done))
        for text, reading in zip(todo, reader.read(as_asked(question) if ASK_AS_QUESTION else question, todo)
                                 if todo else []):
            done[question, text] = reading
        return [done[question, p.text] for p in passages]

    if settings.rerank > 0:  # the reranking read is the answer's read too, unless the reader reads another question
        candidates = merge(loaded, ranking, max(n, settings.rerank))
        if head := candidates[:first_run(settings, len(candidates))]:
            readings = read(reader_q, head)
            if early:
                yield head, readings, False
        passages, readings = rerank(searched, candidates, reader, settings, read(searched, candidates))
        passages = passages[:n]
        readings = readings[:n] if reader_q == searched else read(reader_q, passages)
    else:
        passages = merge(loaded, ranking, n)
        readings = read(reader_q, passages)
    yield passages, readings, True


def ranked_evidence(passages: Sequence[Passage], readings: Sequence[Reading], loaded: LoadedIndex | None,
                    rank_penalty: float | None = None, page: str | None = None) -> list[Evidence]:
    """The evidence an answer chooses from, its choice first: evidence from a lower-ranked passage must
    out-score a higher one's by ``rank_penalty`` (thresholds.json) margin units per rank, and evidence from
    another article than ``page`` (the one a conversation's last answer came from) by ``page_bonus``."""
    key = _rank_key(rank_penalty, page)
    return sorted(evidence_from(passages, readings, loaded), key=lambda e: -key(e))


def _rank_key(rank_penalty: float | None, page: str | None) -> Callable[[Evidence], float]:
    limits = thresholds()
    pen = limits["rank_penalty"] if rank_penalty is None else rank_penalty
    bonus = limits["page_bonus"] if page is not None else 0.0
    hw = limits["head_weight"]
    return lambda e: e.relevance + hw * (e.head or 0.0) - pen * e.passage + (bonus if e.source == page else 0.0)


#: The sentence ranker's inputs, in order (:func:`sentence_features`).
RANKER_FEATURES = ("relevance", "head", "passage", "cosine", "overlap", "asks", "log_words")
SENTENCE_RANKER_FILE = Path(__file__).resolve().parent / "weights" / "sentence_ranker.json"


def asked_words(question: str, query: str) -> set[str]:
    """The content words a sentence is checked for: the question's as typed, or the query's when it has none."""
    return content_words(question) or content_words(query)


def share_held(asked: set[str], text: str) -> float:
    """The share of the content words ``asked`` that ``text`` holds (0 when none are asked)."""
    return len(asked & content_words(text)) / len(asked) if asked else 0.0


def sentence_features(e: Evidence, cosine: float, asked: set[str]) -> list[float]:
    """:data:`RANKER_FEATURES` of one evidence sentence: the reader's span margin and sentence head, its passage's
    rank, the embedder's cosine of the query and the sentence, the share of ``asked`` it holds, whether it is a
    question itself, and the log of its length in words."""
    return [e.relevance, e.head or 0.0, float(e.passage), cosine, share_held(asked, e.text), float(e.text.rstrip().endswith("?")),
            math.log(max(1, len(e.text.split())))]


def ranker_score(model: dict[str, Any], features: Sequence[float]) -> float:
    return sum(c * (x - m) / s for c, x, m, s in zip(model["coef"], features, model["mean"], model["scale"]))


@functools.lru_cache(maxsize=4)
def sentence_ranker(path: str = "") -> dict[str, Any] | None:
    """The fitted ranker in ``path`` (default SENTENCE_RANKER_FILE): ``{"top", "model"}``; None when it is missing
    or unreadable (the reader's order then stands, and the log says so)."""
    file = Path(path) if path else SENTENCE_RANKER_FILE
    try:
        whole = json.loads(file.read_text(encoding="utf-8"))
        m = whole["model"]
        if tuple(m["features"]) != RANKER_FEATURES or not all(len(m[k]) == len(RANKER_FEATURES)
                                                               for k in ("mean", "scale", "coef")):
            raise ValueError(f"its features are not {RANKER_FEATURES}")
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
    the share of ``question``'s content words it holds, whether it asks rather than says, and its length. Held out
    (5-fold by article), the first sentence answered SQuAD 0.855, SelQA 0.848, doc2dial 0.395 of the time, against
    0.834 / 0.813 / 0.330 in the reader's order and 0.840 / 0.833 / 0.338 with the embedder's cosine added by hand.

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


def conversation_page(history: Any, loaded: LoadedIndex, embedder: Embedder, settings: Settings) -> str | None:
    """The article the conversation's last answer came from: its first citation's, or for an answer known only
    as text (a chat message, a (question, answer) pair), the article the best passage for that text is in. In a
    conversation about a document the next answer is usually in the same one. On 400 doc2dial tuning turns,
    favouring it by ``page_bonus`` (2) raised the answered turns whose citations overlap the gold span from 0.394
    to 0.413 (bench/dialogue_choice.py)."""
    if history is None or isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        return None
    for item in reversed(history):
        if isinstance(item, Answer):
            if not item.abstained and item.citations:
                return item.citations[0].source
            continue
        if isinstance(item, dict):
            text = item.get("content") if item.get("role") == "assistant" else None
        elif isinstance(item, (list, tuple)) and len(item) > 1:
            text = item[1]
        else:
            text = None
        text = " ".join(MARKERS.sub("", text).split()) if isinstance(text, str) else ""
        if text and text != ABSTAIN_TEXT:
            best = merge(loaded, rank_many(loaded, embedder, [text], 1, settings)[0], 1)
            return best[0].source if best else None
    return None


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


def draft(q: str, searched: str, reader_q: str, passages: Sequence[Passage], readings: Sequence[Reading],
          loaded: LoadedIndex | None, t0: float, most_quotes: int = 3, rank_penalty: float | None = None,
          page: str | None = None, embedder: Embedder | None = None) -> tuple[Answer, dict[str, float] | None]:
    """The answer the readings support at any confidence (a short span or quoted sentences), and the
    :func:`signals` its confidence comes from; ``(abstention, None)`` when there is nothing to answer with.
    ``page``: the article the conversation's last answer came from (:func:`conversation_page`). With
    ``embedder``, the best sentences are ranked again by the sentence ranker (:func:`best_first`); the
    question asked alone is compared, or for a follow-up the question as the reader reads it."""
    limits = thresholds()
    evidence = ranked_evidence(passages, readings, loaded, rank_penalty, page)
    if embedder is not None:
        evidence = best_first(evidence, q, searched if searched == q else reader_q, embedder)
    version = loaded.generation if loaded is not None else ""
    nothing = _abstain(q, searched, passages, 0.0, t0, version), None
    if not evidence:
        return nothing
    follow_up = searched != q
    if (topic := overview_topic(q)) is not None and (named := about_topic(evidence, topic)):
        # An overview of something the articles name: the sentences naming it, most relevant first, are the
        # answer; the reader has no one span to find for a question ("What about X?") that asks for no fact.
        a = _quotes(q, searched, named, choose_quotes(named, -math.inf, math.inf, most_quotes), passages, loaded, t0,
                    version)
        return (a, signals(named[0], named, passages, readings, True, reader_q, follow_up)) if a else nothing
    top = evidence[0]
    score = {e.passage: passages[e.passage].score for e in evidence}
    top = replace(top, answer_end=top.start + closed(top.text, top.answer_start - top.start,
                                                     top.answer_end - top.start))
    short = top.text[top.answer_start - top.start:top.answer_end - top.start]
    if not descriptive(reader_q) and len(short.split()) <= limits["longest_short_answer"]:
        cite = Citation(top.source, top.title, top.start, top.end, top.text, score[top.passage], n=1,
                        answer_start=top.answer_start, answer_end=top.answer_end)
        if not _verified(cite, short):  # never cite a passage lacking the claim
            return nothing
        a = Answer(q, f"{short} [1]", [cite], False, searched, [Support(short, (1,), True)], [], 0.0,
                   time.perf_counter() - t0, index_version=version, shape="short", short=short)
        return a, signals(top, evidence, passages, readings, False, reader_q, follow_up, short)
    quotes = choose_quotes(evidence, -math.inf, limits["extra_quote"], most_quotes, by_head=QUOTES_BY == "head",
                           head_weight=limits["head_weight"], extra_ranked=limits["extra_ranked"])
    a = _quotes(q, searched, evidence, quotes, passages, loaded, t0, version)
    return (a, signals(quotes[0], evidence, passages, readings, True, reader_q, follow_up)) if a else nothing


def compose(q: str, searched: str, reader_q: str, passages: Sequence[Passage], readings: Sequence[Reading],
            loaded: LoadedIndex | None, t0: float, most_quotes: int = 3, min_confidence: float = 0.0,
            rank_penalty: float | None = None, page: str | None = None,
            model: dict[str, Any] | None = None, embedder: Embedder | None = None) -> Answer:
    """:func:`draft`'s answer with its confidence under ``model`` (default: the shipped one), the probability that
    it is right; below ``min_confidence`` (``Settings.min_confidence``) the answer says the articles don't say.
    That is the one refusal rule. ``embedder`` gives the :func:`similarity` signal, for a model that weighs it."""
    if embedder is not None and not isinstance(embedder, _Remembered):
        embedder = _Remembered(embedder)  # the re-ranking and the similarity share the question's vector
    a, sig = draft(q, searched, reader_q, passages, readings, loaded, t0, most_quotes, rank_penalty, page, embedder)
    if sig is None:
        return a
    if "similarity" in ((model if model is not None else calibrator()) or {}).get("features", ()):
        if embedder is None:
            raise ValueError("this confidence model weighs the embedder's similarity: pass the embedder")
        sig["similarity"] = similarity(embedder, searched, a, bool(sig["follow_up"]))
    p = confidence_of(sig, model)
    if p < min_confidence:
        return _abstain(q, searched, passages, p, t0, a.index_version)
    return replace(a, confidence=p, seconds=time.perf_counter() - t0)


class _Remembered:
    """An embedder that embeds each text once: the vectors one answer's re-ranking and similarity share (and its
    early and final versions, in :func:`stream`)."""

    def __init__(self, embedder: Embedder):
        self.embedder, self.vectors = embedder, {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if todo:
            self.vectors.update(zip(todo, self.embedder.encode(todo)))
        return np.stack([self.vectors[t] for t in texts])


def _quotes(q: str, searched: str, evidence: Sequence[Evidence], quotes: Sequence[Evidence],
            passages: Sequence[Passage], loaded: LoadedIndex | None, t0: float, version: str) -> Answer | None:
    """The quoted sentences as an answer, each verified against its article; None when none can be quoted."""
    score = {e.passage: passages[e.passage].score for e in evidence}
    extended: list[Evidence] = []
    for e in (with_what_follows(e, loaded) for e in quotes):
        if not any(c.source == e.source and c.start < e.end and e.start < c.end for c in extended):
            extended.append(e)  # a sentence an earlier quote now takes in is not quoted twice
    quotes = extended
    cites = [Citation(e.source, e.title, e.start, e.end, e.text, score[e.passage], n=i + 1, answer_start=e.start,
                      answer_end=e.end) for i, e in enumerate(quotes)]
    cites = [c for c in cites if _verified(c, c.text)]
    if not cites:
        return None
    cites = [Citation(**{**asdict(c), "n": i + 1}) for i, c in enumerate(cites)]
    text = " ".join(f"{c.text} [{c.n}]" for c in cites)
    return Answer(q, text, cites, False, searched, [Support(c.text, (c.n,), True) for c in cites], [], 0.0,
                  time.perf_counter() - t0, index_version=version, shape="quotes")


def _verified(cite: Citation, claim: str) -> bool:
    """The cited sentence holds the claim verbatim. (Its offsets are the passage's plus the sentence's place in
    it, and the index guarantees article[start:end] == passage text, so the sentence is what the article says.)"""
    return bool(claim.strip()) and claim in cite.text and cite.end - cite.start == len(cite.text)


def _abstain(q: str, searched: str, passages: Sequence[Passage], p: float, t0: float, version: str) -> Answer:
    return Answer(q, ABSTAIN_TEXT, [], True, searched, [], list(passages[:3]), p, time.perf_counter() - t0,
                  index_version=version)
