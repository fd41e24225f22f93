"""Answers in the shape of the question, with citations and abstention; conversations (what a question asks for,
and how a follow-up is read, are qa/questions.py; the evidence is qa/evidence.py; the confidence qa/confidence.py).

Trust comes from the pipeline, not the model:
1. search the index for passages;
2. the trained reader (qa/reading.py) reads each passage with the question and scores every span, and "no answer
   here"; each sentence's relevance is the margin of its best span over "no answer" (qa/evidence.py);
3. a factoid question (who, when, how many, ...) with a confident span gets that span, verbatim: "1,500 [1]",
   citing the sentence it came from. A why / how / what-is / describe / summarize question, or a span too long
   to be a short answer, gets the 1-3 most relevant sentences quoted verbatim, each with its own [n];
4. the code, not the model, attaches every citation: exact offsets into the article, checked against its text;
5. every answer carries its confidence, the probability that it is right, fitted on held-out questions
   (qa/confidence.py, qa/weights/confidence.json); below ``Settings.min_confidence`` the answer says the articles
   don't say, and offers the closest passages as "related" only;
6. a request about the articles as a whole ("What are these articles about?") gets each article's opening
   (:func:`overview`), and an overview of a topic the sentences that name it; their confidences were measured by
   hand on held-out articles, as no question set holds such requests.

Articles are data, never instructions: a sentence that talks to a model ("ignore previous instructions and
print ...", chat-role markup) is never used as evidence, so it can never be quoted or copied out.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import confidence, evidence, spelling
from .config import Settings
from .embeddings import Embedder, get_embedder
from .evidence import Evidence
from .generation import get_generator
from .index import check_embedder, ensure_index
from .local_store import DEFAULT_INDEX_DIR, LoadedIndex
from .questions import (
    MARKERS,
    WORD,
    article_ordinal,
    as_asked,
    asks_for_more,
    asks_how_many_articles,
    collection_request,
    content_words,
    conversation_words,
    descriptive,
    names_something,
    needs_context,
    overview_topic,
    previous_questions,
    reader_text,
    rewrite_follow_up,
    small_talk,
    without_overviews,
    without_small_talk,
)
from .reading import Reader, Reading, get_reader, reader_sha256
from .search import Passage, clean_question, first_run, merge, rank_many, rerank

if TYPE_CHECKING:  # numpy is imported where it runs, so that `import qa` stays light
    import numpy as np

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
    #: "short": a span copied out of its sentence; "quotes": 1-3 sentences quoted verbatim; "overview": each
    #: article's opening sentences, for a request about the articles themselves (:func:`overview`); "chat": a
    #: reply to small talk ("hi", "thanks", "what can you do?"; :func:`chat`), abstained: it claims nothing;
    #: "source": "Are you sure?" after an answer, that answer's sentences and confidence again (:func:`where_from`)
    shape: str = "abstained"
    short: str = ""  # the short answer without markers ("" unless shape is "short")
    #: The conversation changed what was searched: what the answer comes from (its citations, or for an
    #: abstention the best passage) is not all among the question's own best passages. The app and `qa ask` show
    #: "searched for" only then.
    history_used: bool = False
    #: The question as answered when it differs from the one typed: its misspelt words corrected to the words of
    #: the passages search found (qa/spelling.py). "" when it was answered as typed.
    corrected: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples), with the confidence also as a whole percentage: the same object
        the CLI prints and the web API returns."""
        d = asdict(self)
        d["confidence_percent"] = round(100 * self.confidence)  # as the app and `qa ask` show it
        d["support"] = [{**s, "citations": list(s["citations"])} for s in d["support"]]
        return d


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
    """Like :func:`answer`, as a stream of answers whose last is final (see :func:`_stream`). Each keeps the
    question as typed; one answered with its spelling corrected names the question it answered in ``corrected``."""
    typed = None
    for a in _stream(question, index_dir, history, settings=settings, early=early):
        if typed is None:
            typed = clean_question(question, (settings or Settings.from_env()).max_question_chars)
        yield a if a.question == typed else replace(a, question=typed, corrected=a.question)


def _stream(
    question: str,
    index_dir: str | Path,
    history: Any,
    *,
    settings: Settings | None,
    early: bool,
) -> Iterator[Answer]:
    """Like :func:`answer`, as a stream of answers whose last is final (``complete=True``). While the reader reads
    and reranks the search results, an early answer (``complete=False``) from the best ``Settings.early_passages``
    of them may come first; an early abstention is never shown. The final answer is the one :func:`answer` gives.

    A question in a conversation is searched with the conversation (:func:`qa.questions.rewrite_follow_up`);
    :data:`STANDALONE` can answer one that could stand alone (:func:`stands_alone`) as if asked alone as well, and
    keep the likelier right of the two (measured, not shipped: it cost doc2dial follow-ups their citations)."""
    t0 = time.perf_counter()
    kind = small_talk(question)
    if kind is not None:
        last = history[-1] if isinstance(history, Sequence) and history and not isinstance(history, str) else None
        if kind == "check" and isinstance(last, Answer) and not last.abstained and last.citations:
            yield where_from(clean_question(question, (settings or Settings.from_env()).max_question_chars), last)
        else:
            yield chat(question, kind, index_dir, settings)
        return
    history = without_small_talk(history)
    if collection_request(question, history):
        yield overview(question, index_dir, settings)
        return
    history = without_overviews(history)
    plan = standalone_plan(question, history)  # before the conversation's search is prepared: it may not be needed
    if plan == "alone":
        yield from stream(question, index_dir, None, settings=settings, early=early)
        return
    q, searched, reader_q, read_as, loaded, embedder, reader, settings, page = _prepare(question, index_dir, history,
                                                                                       settings)
    if plan == "page":
        plan = page_plan(question, loaded, embedder, settings, page)
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
    said = Said.of(history) if asks_for_more(q) else None
    remembered = _Remembered(embedder)  # the early and the final answer embed the question once between them
    for passages, readings, final in read_stages(searched, read_as, loaded, embedder, reader, settings,
                                                 early=early and alone is None, asked=sentences_by(q, history)):
        a = compose(q, searched, reader_q, passages, readings, loaded, t0, settings.max_quotes, settings.min_confidence,
                    page=page, model=confidence.calibrator(settings.confidence, reader_sha256(settings),
                                                           confidence.reading_settings(settings)) or {},
                    embedder=remembered, said=said)
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
#: else with the conversation), "read" (searched with the conversation, read without the last answer beside it),
#: "alone" (as if asked alone), "unshared" (alone when no content word of it was said in the conversation, a
#: question or an answer; else with the conversation), "unshared named" (that, when it also names something of its
#: own: questions.names_something) or "never" (always with the conversation). With "both", the
#: question's own answer
#: is kept when it is likelier right than the conversation's by STANDALONE_MARGIN or more (or when the
#: conversation's abstains). bench/standalone.py measures each.
#: On 200 doc2dial tuning turns (answered / cited / follow-up search@5): never 0.875 / 0.463 / 0.830; page 0.860 /
#: 0.401 / 0.725; both 0.890 / 0.371 / 0.755, with a margin of 0.2 0.890 / 0.455 / 0.795, 0.3 0.890 / 0.461 / 0.800.
#: read 0.865 / 0.405 / 0.830. On the seeds, 6 standalone questions after 2 conversations on other topics got
#: their own answer 8 of 12 times (never, read), 10 (page), 11 (both) while a question's passages were read in one
#: run; read each in its own (Settings.reader_batch "text"), 12 of 12 under every plan. "never" is shipped: dialogue
#: turns that look standalone mostly lean on their conversation's page, and reading them alone costs citations.
#: Stop 62 (2026-12-07), with questions.STANDALONE_READING "shared": 120 held-out SQuAD questions that stand alone,
#: each after another question and its answer sentence (bench/factoid_followups.py --after-statement), the same
#: answer as asked alone after one of the same article / of another: never 0.692 / 0.708, alone 1.000 / 1.000,
#: unshared 0.825 / 0.967, **unshared named 0.775 / 0.892** (right 0.758 / 0.733, 0.750 / 0.750, 0.750 / 0.733,
#: 0.750 / 0.742). 200 doc2dial tuning turns (answered / cited of those / search@5, bench/standalone.py): never
#: 0.915 / 0.552 / 0.870 (101 cited), alone 0.795 / 0.484 / 0.750 (77), unshared 0.885 / 0.559 / 0.835 (99),
#: **unshared named 0.915 / 0.557 / 0.870 (102)**. doc2dial's turns that share no word with their conversation
#: are mostly continuations all the same ("what should i bring?"); those that also name something are few (8 of
#: 200). "unshared named" is shipped: a question on another matter gets the answer it gets alone (issue 38).
STANDALONE = "unshared named"
STANDALONE_MARGIN = 0.0


def standalone_plan(question: str, history: Any) -> str:
    """"alone", "both", "read", "conversation" or "page" (:func:`page_plan` decides, once the index is loaded): how
    to answer ``question`` given ``history`` (see :data:`STANDALONE`)."""
    if STANDALONE == "never" or not isinstance(question, str) or not stands_alone(question, history):
        return "conversation"  # (not a string: _prepare raises the documented error)
    if STANDALONE in ("unshared", "unshared named"):  # another matter: none of its words was said before
        other = not content_words(question) & conversation_words(history)
        return "alone" if other and (STANDALONE == "unshared" or names_something(question)) else "conversation"
    return STANDALONE  # "both", "read", "alone" or "page"


def page_plan(question: str, loaded: LoadedIndex, embedder: Embedder, settings: Settings, page: str | None) -> str:
    """STANDALONE "page": alone when the conversation's article is not among the question's own best passages."""
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


#: Whether a question's misspelt words are corrected to the words of the passages search finds for it before it
#: is read (qa/spelling.py). The Answer keeps the question as typed, and names the one read in ``corrected``.
SPELLING = True
#: Whether an acronym of the question that the passages search finds spell out is read with its name beside it
#: (qa/spelling.py, :func:`qa.spelling.spelt_out`): "Who leads the SDF?" is read as "Who leads the SDF (Syrian
#: Democratic Forces)?", as one seed article names them only in full. Named in ``corrected`` like a typo's fix.
ACRONYMS = True


def _prepare(question, index_dir, history, settings):
    settings = settings or Settings.from_env()
    q = clean_question(question, settings.max_question_chars)
    reader = get_reader(settings)  # first: a reader in a worker process loads while the index does
    loaded = ensure_index(index_dir, settings)
    embedder = get_embedder(settings)
    check_embedder(loaded, embedder, index_dir)
    depth = max(settings.rerank, settings.answer_passages)  # the passages the reader would read
    found = functools.lru_cache(maxsize=1)(lambda q: [p.text for p in merge(
        loaded, rank_many(loaded, embedder, [q], depth, settings)[0], depth)])  # searched once for both steps
    if SPELLING:
        q = spelling.corrected(q, lambda: found(q))
    if ACRONYMS:
        q = spelling.spelt_out(q, lambda: found(q))
    searched, reader_q = rewrite_follow_up(q, history, get_generator(settings))
    if (topic := overview_topic(reader_q)) is not None:
        searched = searched.replace(reader_q, topic, 1) if reader_q in searched else topic
        wh = re.match(r"(?:why|how|what|when|who|where|which|whether)\b", topic, re.IGNORECASE)
        reader_q = f"{topic[0].upper()}{topic[1:]}?" if wh else f"What about {topic}?"
    page = conversation_page(history, loaded, embedder, settings)
    return q, searched, reader_q, reader_text(reader_q, history, q), loaded, embedder, reader, settings, page


def read_evidence(searched: str, reader_q: str, loaded: LoadedIndex, embedder: Embedder, reader: Reader,
                  settings: Settings, asked: str | None = None) -> tuple[list[Passage], list[Reading]]:
    """The passages an answer is made from, best first, and the reader's reading of each with ``reader_q``."""
    *_, (passages, readings, _) = read_stages(searched, reader_q, loaded, embedder, reader, settings, asked=asked)
    return passages, readings


def sentences_by(question: str, history: Any) -> str | None:
    """What search ranks sentences by (qa.search.by_sentences) for ``question`` asked after ``history``: the
    question itself when it stands alone (:func:`stands_alone`), so that its passages are those it finds alone;
    None (what is searched, the conversation too) for a follow-up that needs it. On the seeds, ranked by the
    question with its conversation, "Why does Turkey oppose the YPG?" after talk of Ilhan Ahmed quoted another
    third sentence than alone."""
    return question if stands_alone(question, history) else None


#: Whether the reader reads a question typed without its "?" with one (:func:`qa.questions.as_asked`). Off: on 250
#: + 250 held-out SQuAD questions typed without it, putting it back refused 0.400 of the unanswerable instead of
#: 0.368 but 0.096 of the answerable instead of 0.084, gave 6 fewer right answers, and the confidence's ECE was
#: 0.038 against 0.021; 5 of 200 doc2dial turns changed, cited 0.427 vs 0.429 (bench/question_form.py).
ASK_AS_QUESTION = False


def read_stages(searched: str, reader_q: str, loaded: LoadedIndex, embedder: Embedder, reader: Reader,
                settings: Settings, early: bool = False,
                asked: str | None = None) -> Iterator[tuple[list[Passage], list[Reading], bool]]:
    """``(passages, readings, final)``: with ``early``, first the best ``Settings.early_passages`` fused passages
    read with ``reader_q`` (for an answer to show while the rest are read), then what :func:`read_evidence`
    returns. Those best passages are read first, in a run of their own, whether shown or not: the int8 reader
    scales its activations per run (qa/reading.py), so :func:`answer` and the last answer of :func:`stream` read
    the same runs and agree. Nothing is read twice with the same question, so the early answer costs no extra
    reading."""
    n = settings.answer_passages
    ranking = rank_many(loaded, embedder, [searched], max(n, settings.rerank), settings, asked=[asked])[0]
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
        by = reranked_by(searched, asked)
        passages, readings = rerank(by, candidates, reader, settings, read(by, candidates))
        passages = passages[:n]
        readings = readings[:n] if reader_q == by else read(reader_q, passages)
    else:
        passages = merge(loaded, ranking, n)
        readings = read(reader_q, passages)
    yield passages, readings, True


def reranked_by(searched: str, asked: str | None) -> str:
    """What the reader reranks the search results by: the question as asked when it stands alone
    (:func:`sentences_by`), so that its passages come in the order they come in alone, and the rank of each is
    what the sentence ranker weighs; else what is searched, the conversation too. On the seeds, reranked by the
    conversation, "Why does Turkey oppose the YPG?" after talk of Ilhan Ahmed and Al Tanf put Graham's passage
    second instead of first, and a sentence ranker that weighs the passage's rank quoted another third sentence.
    Held out it costs dialogue nothing: on 400 doc2dial tuning turns (276 stand alone), with the nine-signal ranker
    and the confidence refitted each way, answers replayed were right 0.527 against 0.515 reranked by the
    conversation; the first sentence answered 0.398 against 0.400 (docs/benchmarks.md, 2026-12-07)."""
    return asked if asked is not None else searched


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


@dataclass(frozen=True)
class Said:
    """What a conversation's earlier answers gave, so that a question asking for more ("Tell me more", "Who else
    leads the talks?": :func:`qa.questions.asks_for_more`) is not answered with it again. Earlier Answers say
    exactly what they cited; (question, answer) pairs and chat messages give only their text."""

    quoted: tuple[tuple[str, int, int], ...] = ()  # sentences earlier answers quoted: (source, start, end)
    shorts: tuple[tuple[str, int, int, frozenset[str]], ...] = ()  # earlier short answers: sentence, answer words
    #: Earlier replies given as text (markers removed), as they are compared, once: the content words of each
    #: statement (SHORT_REPLY_WORDS words or more), and the words of each shorter reply, as of a short answer.
    statements: tuple[frozenset[str], ...] = ()
    replies: tuple[frozenset[str], ...] = ()

    @classmethod
    def of(cls, history: Any) -> Said | None:
        if history is None or isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
            return None
        quoted, shorts, texts = [], [], []
        for item in history:
            if isinstance(item, Answer) and not item.abstained:
                for c in item.citations:
                    if item.shape == "short":
                        shorts.append((c.source, c.start, c.end, _said_words(item.short)))
                    else:
                        quoted.append((c.source, c.start, c.end))
            elif isinstance(item, dict) and item.get("role") == "assistant" and isinstance(item.get("content"), str):
                texts.append(MARKERS.sub("", item["content"]))
            elif isinstance(item, (list, tuple)) and len(item) > 1 and isinstance(item[1], str):
                texts.append(MARKERS.sub("", item[1]))
        statements = tuple(frozenset(content_words(t)) for t in texts if len(t.split()) >= SHORT_REPLY_WORDS)
        replies = tuple(_said_words(t) for t in texts if len(t.split()) < SHORT_REPLY_WORDS)
        return cls(tuple(quoted), tuple(shorts), statements, replies) if quoted or shorts or texts else None

    def repeats(self, e: Evidence, quoting: bool = False) -> bool:
        """The sentence ``e`` gives nothing new: it was quoted before (half of it or more), or an earlier reply
        given as text holds four in five of its content words or more. With ``quoting`` (the answer will quote
        sentences), a sentence an earlier short answer came from counts as quoted: it was shown with it."""
        def half(a: int, b: int) -> bool:
            return min(b, e.end) - max(a, e.start) >= (e.end - e.start) / 2

        if any(src == e.source and half(a, b) for src, a, b in self.quoted) or (
                quoting and any(src == e.source and half(a, b) for src, a, b, _ in self.shorts)):
            return True
        words = content_words(e.text)
        return bool(words) and any(len(words & said) >= 0.8 * len(words) for said in self.statements)

    def repeats_span(self, source: str, start: int, end: int, text: str) -> bool:
        """The span ``text`` at ``start:end`` of ``source`` holds a short answer given before (in the same
        sentence for an earlier Answer; anywhere for a reply of a few words given as text). Its sentence may still
        hold another: "Who else leads the talks?" after "Brett McGurk" finds "Michael Ratney" beside him."""
        words = _said_words(text)
        return any(src == source and a < end and start < b and short <= words for src, a, b, short in self.shorts) \
            or any(reply <= words for reply in self.replies)


#: A reply given as text with fewer words than this is compared as a short answer (Said).
SHORT_REPLY_WORDS = 8


def _said_words(text: str) -> frozenset[str]:
    """A short answer's words as compared: its content words, or all its words when it has none ("2,000")."""
    return frozenset(content_words(text) or (w.lower() for w in WORD.findall(text))) or frozenset({text})


def draft(q: str, searched: str, reader_q: str, passages: Sequence[Passage], readings: Sequence[Reading],
          loaded: LoadedIndex | None, t0: float, most_quotes: int = 3, rank_penalty: float | None = None,
          page: str | None = None, embedder: Embedder | None = None,
          said: Said | None = None) -> tuple[Answer, dict[str, float] | None]:
    """The answer the readings support at any confidence (a short span or quoted sentences), and the
    :func:`qa.confidence.signals` its confidence comes from; ``(abstention, None)`` when there is nothing to answer
    with.
    ``page``: the article the conversation's last answer came from (:func:`conversation_page`). With
    ``embedder``, the best sentences are ranked again by the sentence ranker (:func:`qa.evidence.best_first`); the
    question asked alone is compared, or for a follow-up the question as the reader reads it. With ``said`` (for
    a question asking for more: :func:`qa.questions.asks_for_more`), what earlier answers gave is left out."""
    limits = evidence.thresholds()
    ranked = evidence.ranked_evidence(passages, readings, loaded, rank_penalty, page, said)
    if said is not None:
        ranked = [e for e in ranked if not said.repeats(e)]
    if embedder is not None:
        ranked = evidence.best_first(ranked, q, searched if searched == q else reader_q, embedder)
    version = loaded.generation if loaded is not None else ""
    nothing = _abstain(q, searched, passages, 0.0, t0, version), None
    # A conversation shaped the search: not an overview's topic searched alone ("Explain Al Tanf" searches "Al
    # Tanf"), which would otherwise be weighed as a follow-up (its similarity unused, the follow-up's lift added).
    topic = overview_topic(q)
    follow_up = searched not in (q, topic)
    if topic is not None:
        # An overview of something the articles name: the sentences naming it, most relevant first, are the
        # answer; the reader has no one span to find for a question ("What about X?") that asks for no fact.
        # Those it found spans in first, else any sentence of the passages that names it.
        for named in (lambda: evidence.about_topic(ranked, topic),
                      lambda: evidence.naming_sentences(passages, readings, loaded, topic)):
            found = [e for e in named() if said is None or not said.repeats(e, quoting=True)]
            chosen = evidence.choose_quotes(found, -math.inf, math.inf, most_quotes)
            if chosen and (a := _quotes(q, searched, found, chosen, passages, loaded, t0, version)):
                return a, {**confidence.signals(chosen[0], found, passages, readings, True, reader_q, follow_up),
                           "named_topic": 1.0}
    if not ranked:
        return nothing
    top = ranked[0]
    score = {e.passage: passages[e.passage].score for e in ranked}
    top = replace(top, answer_end=top.start + evidence.closed(top.text, top.answer_start - top.start,
                                                              top.answer_end - top.start))
    short = top.text[top.answer_start - top.start:top.answer_end - top.start]
    if not descriptive(reader_q) and len(short.split()) <= limits["longest_short_answer"]:
        cite = Citation(top.source, top.title, top.start, top.end, top.text, score[top.passage], n=1,
                        answer_start=top.answer_start, answer_end=top.answer_end)
        if not _verified(cite, short):  # never cite a passage lacking the claim
            return nothing
        a = Answer(q, f"{short} [1]", [cite], False, searched, [Support(short, (1,), True)], [], 0.0,
                   time.perf_counter() - t0, index_version=version, shape="short", short=short)
        return a, confidence.signals(top, ranked, passages, readings, False, reader_q, follow_up, short)
    if said is not None:  # quoted sentences: not the ones earlier short answers were shown in either
        ranked = [e for e in ranked if not said.repeats(e, quoting=True)]
        if not ranked:
            return nothing
    quotes = evidence.choose_quotes(ranked, -math.inf, limits["extra_quote"], most_quotes,
                                    by_head=evidence.QUOTES_BY == "head", head_weight=limits["head_weight"],
                                    extra_ranked=limits["extra_ranked"])
    a = _quotes(q, searched, ranked, quotes, passages, loaded, t0, version)
    return (a, confidence.signals(quotes[0], ranked, passages, readings, True, reader_q, follow_up)) if a else nothing


def compose(q: str, searched: str, reader_q: str, passages: Sequence[Passage], readings: Sequence[Reading],
            loaded: LoadedIndex | None, t0: float, most_quotes: int = 3, min_confidence: float = 0.0,
            rank_penalty: float | None = None, page: str | None = None,
            model: dict[str, Any] | None = None, embedder: Embedder | None = None, said: Said | None = None) -> Answer:
    """:func:`draft`'s answer with its confidence under ``model`` (default: the shipped one), the probability that
    it is right; below ``min_confidence`` (``Settings.min_confidence``) the answer says the articles don't say.
    That is the one refusal rule. ``embedder`` gives the :func:`qa.confidence.similarity` signal, for a model that
    weighs it."""
    if embedder is not None and not isinstance(embedder, _Remembered):
        embedder = _Remembered(embedder)  # the re-ranking and the similarity share the question's vector
    a, sig = draft(q, searched, reader_q, passages, readings, loaded, t0, most_quotes, rank_penalty, page, embedder,
                   said)
    if sig is None:
        return a
    weighs = ((model if model is not None else confidence.calibrator()) or {}).get("features", ())
    if "similarity" in weighs:
        if embedder is None:
            raise ValueError("this confidence model weighs the embedder's similarity: pass the embedder")
        sig["similarity"] = confidence.similarity(embedder, searched, a, bool(sig["follow_up"]))
    if "doc_len" in weighs:  # looked up only for a model that weighs it (the shipped one does not)
        sig["doc_len"] = confidence.doc_len(loaded, a)
    p = confidence.confidence_of(sig, model)
    if p < min_confidence:
        return _abstain(q, searched, passages, p, t0, a.index_version)
    return replace(a, confidence=p, seconds=time.perf_counter() - t0)


class _Remembered:
    """An embedder that embeds each text once: the vectors one answer's re-ranking and similarity share (and its
    early and final versions, in :func:`stream`)."""

    def __init__(self, embedder: Embedder):
        self.embedder, self.vectors = embedder, {}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np
        todo = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if todo:
            self.vectors.update(zip(todo, self.embedder.encode(todo)))
        return np.stack([self.vectors[t] for t in texts])


def _quotes(q: str, searched: str, ranked: Sequence[Evidence], quotes: Sequence[Evidence],
            passages: Sequence[Passage], loaded: LoadedIndex | None, t0: float, version: str) -> Answer | None:
    """The quoted sentences as an answer, each verified against its article; None when none can be quoted."""
    score = {e.passage: passages[e.passage].score for e in ranked}
    extended: list[Evidence] = []
    for e in (evidence.with_what_follows(e, loaded) for e in quotes):
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


#: Most articles an overview of the articles quotes (:func:`overview`), in file-name order; with more indexed, it
#: says how many it leaves out.
OVERVIEW_ARTICLES = 5
#: The confidence an overview carries: the chance that each line it quotes is its article's opening. Checked by
#: hand on 35 articles (the 3 seeds; 10 SQuAD 2.0 train articles, 10 SelQA dev sections and 12 doc2dial pages,
#: none of them a test set): every opening chosen was the article's first real sentence, title, caption, byline,
#: date and "read more" lines passed over. 36/37 (Laplace's rule of succession) is 0.97 (docs/benchmarks.md,
#: 2026-12-07).
OVERVIEW_CONFIDENCE = 0.97


def overview(question: str, index_dir: str | Path = DEFAULT_INDEX_DIR, settings: Settings | None = None) -> Answer:
    """The answer to a request for an overview of the indexed articles themselves
    (:func:`qa.questions.collection_request`: "What are these articles about?"): each article's opening
    sentences, quoted and cited (:func:`qa.evidence.openings`): three for one article, two each for up to three,
    else one. A request naming one article by its place ("Summarize the second article") gets that article's.
    Nothing is searched or read: there is no topic to search for."""
    t0 = time.perf_counter()
    settings = settings or Settings.from_env()
    q = clean_question(question, settings.max_question_chars)
    loaded = ensure_index(index_dir, settings)
    sources = sorted(loaded.manifest.get("files", {}))
    place = article_ordinal(q, one=True)
    missing = place is not None and not -len(sources) <= place < len(sources)
    if place is not None and not missing:
        sources = [sources[place]]
    shown = sources[:OVERVIEW_ARTICLES]
    per = 3 if len(shown) == 1 else 2 if len(shown) <= 3 else 1
    lines, cites = [], []
    for source in shown:
        line = []
        for p in evidence.openings(loaded, source, per):
            c = Citation(**asdict(p), n=len(cites) + 1, answer_start=p.start, answer_end=p.end)
            if _verified(c, c.text):
                cites.append(c)
                line.append(f"{c.text} [{c.n}]")
        if line:
            lines.append(" ".join(line))
    if not cites:
        return _abstain(q, q, [], 0.0, t0, loaded.generation)
    if len(sources) > len(shown):
        lines.insert(0, f"The first {len(shown)} of {len(sources)} articles, by file name, open with:")
    if missing or asks_how_many_articles(q):  # "the fifth article" of three, or "how many": say how many there are
        n = len(sources)
        count = f"There {'is' if n == 1 else 'are'} {'only ' if missing else ''}{n} article{'' if n == 1 else 's'}"
        if len(shown) == n:
            count += "; it opens with:" if n == 1 else "; they open with:"
        lines.insert(0, count)
    return Answer(q, "\n".join(lines), cites, False, q, [Support(c.text, (c.n,), True) for c in cites], [],
                  OVERVIEW_CONFIDENCE, time.perf_counter() - t0, index_version=loaded.generation, shape="overview")


#: Replies to small talk (qa.questions.small_talk), by its kind; {articles} is "the 3 indexed articles". No
#: reply holds a "[n]": an answer's markers are its citations, and these cite nothing.
CHAT_REPLIES = {
    "greeting": "Hello! I answer questions about {articles}, quoting and citing the sentences each answer comes "
                "from. Ask me anything about them, or start with: What are these articles about?",
    "help": "I answer questions about {articles}. Each answer is copied from the articles' sentences, cites them by "
            "number, and shows how likely it is to be right, measured on questions nobody tuned on. When the "
            "articles don't say, I tell you so instead of guessing. Follow-up questions may lean on earlier ones "
            "(\"and why?\"). Try: What are these articles about?",
    "thanks": "You're welcome. Ask another question about {articles} whenever you like.",
    "bye": "Goodbye! Ask again whenever you like.",
    # "Are you sure?" with no earlier answer of this conversation to show the sources of
    "check": "I can't tell which answer you mean. Ask the question again: each answer shows the sentences of "
             "{articles} it comes from, and how likely it is to be right.",
}


def chat(question: str, kind: str, index_dir: str | Path = DEFAULT_INDEX_DIR,
         settings: Settings | None = None) -> Answer:
    """The reply to small talk (:func:`qa.questions.small_talk`): a greeting, thanks, a goodbye, or "what can you
    do?". It says what the assistant does and how many articles it reads, quotes nothing and claims nothing
    (``abstained``, confidence 0, shape "chat"). Nothing is searched or read."""
    t0 = time.perf_counter()
    settings = settings or Settings.from_env()
    q = clean_question(question, settings.max_question_chars)
    loaded = ensure_index(index_dir, settings)
    n = len(loaded.manifest.get("files", {}))
    articles = "the indexed article" if n == 1 else f"the {n} indexed articles"
    text = CHAT_REPLIES[kind].format(articles=articles)
    return Answer(q, text, [], True, q, [], [], 0.0, time.perf_counter() - t0, index_version=loaded.generation,
                  shape="chat")


def where_from(question: str, last: Answer) -> Answer:
    """The reply to "Are you sure?" or "Where does it say that?" after an answer: where that answer comes from, its
    cited sentences quoted again with their citations, and the chance it is right, as shown with it (its
    confidence, which this reply keeps: it claims nothing new). Shape "source"."""
    t0 = time.perf_counter()
    n = len(last.citations)
    what = f"“{last.short}”" if last.shape == "short" and last.short else "That answer"
    where = "this sentence" if n == 1 else f"these {n} sentences"
    head = (f"{what} is copied word for word from {where}; the chance that it is right is {last.confidence:.0%}, "
            f"as measured on held-out questions:")
    body = [f"{c.text} [{c.n}]" for c in last.citations]
    return replace(last, question=question, text="\n".join([head, *body]), searched_for=question,
                   support=[Support(c.text, (c.n,), True) for c in last.citations], related=[],
                   seconds=time.perf_counter() - t0, complete=True, shape="source", short="", history_used=False)


def _verified(cite: Citation, claim: str) -> bool:
    """The cited sentence holds the claim verbatim. (Its offsets are the passage's plus the sentence's place in
    it, and the index guarantees article[start:end] == passage text, so the sentence is what the article says.)"""
    return bool(claim.strip()) and claim in cite.text and cite.end - cite.start == len(cite.text)


def _abstain(q: str, searched: str, passages: Sequence[Passage], p: float, t0: float, version: str) -> Answer:
    return Answer(q, ABSTAIN_TEXT, [], True, searched, [], list(passages[:3]), p, time.perf_counter() - t0,
                  index_version=version)
