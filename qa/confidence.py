"""Confidence: the probability that an answer is right, from the reader's own signals about it.

:func:`signals` turns what the reader says about the answer it is about to give into numbers; :func:`confidence_of`
weighs them with a logistic model (multi-feature Platt scaling, :func:`calibrator`) fitted by
``python -m qa.weights.fit_confidence`` on held-out SQuAD 2.0 tuning articles (whole, and cut into one file per
paragraph), SelQA dev and doc2dial tuning turns, cross-validated across articles, and stored as plain numbers in
qa/weights/confidence.json with its provenance and figures. Right means: a short answer with F1 >= 0.5 against a gold answer (or holding one); quoted sentences with a
citation covering the gold answer sentence or span. Below ``Settings.min_confidence`` an answer abstains
(qa/answering.py).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings
from .embeddings import Embedder
from .evidence import Evidence, article_chars, share_held
from .questions import content_words
from .reading import Reading
from .search import Passage

if TYPE_CHECKING:  # for annotations only: qa/answering.py builds on this module
    from .answering import Answer
    from .local_store import LoadedIndex

log = logging.getLogger("qa")


CONFIDENCE_FILE = Path(__file__).resolve().parent / "weights" / "confidence.json"
SIGNALS = ("relevance", "quotes", "relevance_quotes", "rank", "search_score", "gap", "null", "words", "follow_up",
           "answer_words", "agree", "head", "similarity", "doc_len")


def signals(top: Evidence, evidence: Sequence[Evidence], passages: Sequence[Passage], readings: Sequence[Reading],
            quotes: bool, question: str, follow_up: bool, short: str = "") -> dict[str, float]:
    """What the reader says about the answer it is about to give, as numbers the calibrator weighs:
    the chosen sentence's margin over "no answer" (and for quoted sentences apart), the rank and search score of its
    passage, how far it leads the next sentence, its passage's "no answer" score, the share of the question's
    content words it holds, whether a conversation shaped the search, the short answer's length, how many other
    passages' best spans say the same, and the sentence head's logit for it (0 for a reader without one).
    Two more, :func:`similarity` and :func:`doc_len`, are added by the caller for a model that weighs them."""
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
READING_SETTINGS = ("reader_batch", "reader_overlap", "rerank", "rerank_weight", "sentence_weight")


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


def doc_len(loaded: LoadedIndex | None, a: Answer) -> float:
    """The log of the length of the article the answer first cites (:func:`qa.evidence.article_chars`; 0 with no
    citation). Not weighed by the shipped model: fitted on three sources, it learnt from SelQA (short sections, no
    unanswerable question) that a short article's answer is right, and refused 0.079 of the unanswerable questions
    over short SQuAD paragraphs instead of 0.456; with those paragraphs among the sources it weighs next to nothing
    (docs/benchmarks.md, 2026-12-07). ``fit_confidence --features`` can weigh it."""
    return math.log1p(article_chars(loaded, a.citations[0].source)) if a.citations else 0.0


#: The confidence of an overview of a topic that the quoted sentences name ("Tell me about Anatolia": signal
#: ``named_topic``), in place of the fitted model's. The model never saw such requests (SQuAD, SelQA and doc2dial
#: hold almost none) and weighs the reader's margin for "What about Anatolia?", a question with no span: on 27
#: such requests over held-out articles (bench/topic_overviews.py: one topic per article, its most frequent
#: capitalised phrase, not chosen by hand) it showed 0.06-0.66 (median 0.30) and refused 11, while 22 of the 27
#: answers told about their topic, judged by hand (the 5 others were about "topics" such as "State" and "Open",
#: which the sampler took for names). A second sample (each article's second phrase, judged after this was set):
#: 19 of 24. 42/53 (both, by the rule of succession) is 0.79 (docs/benchmarks.md, 2026-12-07).
NAMED_TOPIC_CONFIDENCE = 0.79


def confidence_of(sig: dict[str, float], model: dict[str, Any] | None = None) -> float:
    """P(right) for an answer with these signals under ``model`` (default: the shipped one), kept within
    [0.01, 0.99]: a few thousand held-out questions cannot show that any answer is surer than that, so none is
    shown as 100 %. An overview quoting sentences that name its topic shows NAMED_TOPIC_CONFIDENCE."""
    if sig.get("named_topic"):
        return NAMED_TOPIC_CONFIDENCE
    c = model if model is not None else calibrator()
    if not c:  # None or {}: no readable model
        z = sig["relevance"]
    else:
        z = c["intercept"] + sum(w * (sig.get(f, 0.0) - m) / (sc or 1.0)
                                 for f, m, sc, w in zip(c["features"], c["mean"], c["scale"], c["coef"]))
    return min(0.99, max(0.01, 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))))
