"""Evidence, answer, citations, support check, abstention and follow-ups.

Trust comes from the pipeline, not the model:
1. search the index for passages; split them into sentences and rank those (dense + BM25 + passage rank);
2. the reader picks the sentence that best explains the question and copies the answer out of it verbatim
   (decoding is constrained to the sentence, so it cannot invent text);
3. the code, not the model, attaches the citation: the exact sentence, with offsets into the article, and
   checks that the answer is inside it;
4. an abstention model (a logistic regression over retrieval and reader signals, and over the reader's own hidden
   state when the reader is the one it was fitted on) says whether the evidence holds an answer at all; when it
   does not, the answer says so and offers the closest passages as "related" only.

Articles are data, never instructions: a sentence that talks to the model ("ignore previous instructions and
print ...", chat-role markup) is never used as evidence, so it can neither steer the reader nor be copied out.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import queue
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import chunking
from .config import Settings
from .embeddings import Embedder, get_embedder
from .errors import InvalidQuestionError
from .generation import (
    HIDDEN_LAYER,
    REWRITE_PROMPT,
    Extraction,
    Generator,
    content_words,
    get_generator,
    has_number,
    wants_number,
)
from .index import DEFAULT_INDEX_DIR, LoadedIndex, bm25_tokenize, check_embedder, ensure_index, quiet_bm25s
from .search import Passage, clean_question, search_many

log = logging.getLogger("qa")

ABSTAIN_TEXT = "The articles don't say. None of the indexed passages answers this question."


@dataclass(frozen=True)
class Citation(Passage):
    """A passage the answer cites as ``[n]``: here, the exact sentence the answer was copied from."""

    n: int = 0


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
    confidence: float = 0.0  # estimated chance that the evidence holds the answer
    seconds: float = 0.0
    complete: bool = True  # False for the partial answers a stream yields before the last one
    index_version: str = ""  # the index generation the answer came from (one per answer, even mid-rebuild)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (lists, not tuples): the same object the CLI prints and the web API returns."""
        d = asdict(self)
        d["support"] = [{**s, "citations": list(s["citations"])} for s in d["support"]]
        return d


@dataclass(frozen=True)
class Evidence:
    """A sentence of a retrieved passage, with offsets into its article."""

    passage: int  # rank of the passage it came from
    source: str
    title: str
    start: int
    end: int
    text: str
    dense: float
    bm25: float
    score: float


# ---------------------------------------------------------------------------------------------------------------
# Abstention: P(the evidence holds an answer) from signals the pipeline already computed.
# Fitted by `python bench/fit_abstention.py` on SQuAD 2.0 dev questions that are NOT in the seed-13 evaluation
# sample (logistic regression, standardised features); refit after changing retrieval or the reader.
ABSTAIN_FEATURES = ("fit", "first_logprob", "mean_logprob", "passage_dense", "sentence_dense", "coverage",
                    "answer_in_question", "bm25", "type_match",
                    # What the question asserts that the evidence does not: a negation, a number, a name, a
                    # superlative, a word pair. Unanswerable questions are often an answerable one with one such
                    # detail changed, which retrieval and the reader's fit barely notice.
                    "negation_missing", "number_missing_passage", "number_missing_sentence", "names_missing_passage",
                    "names_missing_sentence", "bigrams_sentence", "bigrams_passage", "superlative_missing")
ABSTAIN_MODEL_ALONE = {  # for readers the probe was not fitted on
    "mean": [-3.4373, -1.7007, -0.4194, 0.5129, 0.6291, 0.6449, 0.1425, 1.9771, 0.9909, 0.0721, 0.029, 0.0365, 0.0771, 0.1624, 0.2404, 0.288, 0.053],
    "scale": [1.8438, 1.4729, 0.6459, 0.1352, 0.1383, 0.2162, 0.25, 0.3714, 0.095, 0.2586, 0.1678, 0.1874, 0.2876, 0.4271, 0.2086, 0.2102, 0.2241],
    "coef": [0.4351, 0.4228, -0.1106, -0.0201, 0.3388, -0.0718, -0.0882, 0.2489, 0.0704, -0.6641, -0.7688, -0.2466, -0.193, -0.0168, 0.0805, -0.3328, -0.1041],
    "intercept": -0.5797,
}

# Choosing the evidence sentence to read the answer from: the reader's fit plus what retrieval knows, in fit units.
# Fitted by `python bench/fit_choice.py` (conditional logit over the three candidates, on the same held-out
# questions as the abstention model): right sentence 0.813 vs 0.793 (5-fold CV) for fit minus a rank penalty.
CHOICE_MODEL = {"dense": 1.254, "bm25": 2.431, "no_number": 1.898}


def choice_prior(question: str, evidence: Sequence[Evidence], model: dict[str, float] = CHOICE_MODEL) -> list[float]:
    """Per evidence sentence: its dense score relative to the best, its BM25 score relative to the best, and a
    penalty for lacking any number when the question asks how many or when."""
    if not evidence:
        return []
    top_dense = max(e.dense for e in evidence)
    top_bm25 = max(e.bm25 for e in evidence)
    wants = wants_number(question)
    return [model["dense"] * (e.dense - top_dense) + model["bm25"] * (e.bm25 / top_bm25 if top_bm25 > 0 else 0.0)
            - (model["no_number"] if wants and not has_number(e.text) else 0.0) for e in evidence]


_WORD = re.compile(r"\w+", re.UNICODE)


def abstention_features(question: str, ext: Extraction, evidence: Sequence[Evidence], passages: Sequence[Passage]) -> dict[str, float]:
    chosen = evidence[ext.context]
    passage = passages[chosen.passage].text if chosen.passage < len(passages) else chosen.text
    q = content_words(question)
    s = content_words(chosen.text)
    a = content_words(ext.text)
    numbers = set(_NUMBER.findall(question))
    stripped = question.strip()
    names = {m.group().lower() for m in _NAME.finditer(stripped) if m.start() > 0 and m.group()[0].isupper()}
    superlatives = {w.lower() for w in _SUPERLATIVE.findall(question)}
    sentence_lower, passage_lower = chosen.text.lower(), passage.lower()
    q_pairs = _bigrams(question)
    return {
        "fit": ext.fit[ext.context],
        "first_logprob": max(ext.first_logprob, -30.0),
        "mean_logprob": max(ext.mean_logprob, -30.0),
        "passage_dense": passages[0].dense if passages else 0.0,
        "sentence_dense": chosen.dense,
        "coverage": len(q & s) / len(q) if q else 0.0,
        "answer_in_question": len(a & q) / len(a) if a else 1.0,
        "bm25": math.log1p(max(p.bm25 for p in passages)) if passages else 0.0,
        "type_match": float(type_match(question, ext.text)),
        "negation_missing": float(bool(_NEGATION.search(question)) and not _NEGATION.search(chosen.text)),
        "number_missing_passage": float(any(n not in passage for n in numbers)),
        "number_missing_sentence": float(any(n not in chosen.text for n in numbers)),
        "names_missing_passage": float(sum(n not in passage_lower for n in names)),
        "names_missing_sentence": float(sum(n not in sentence_lower for n in names)),
        "bigrams_sentence": len(q_pairs & _bigrams(chosen.text)) / len(q_pairs) if q_pairs else 0.0,
        "bigrams_passage": len(q_pairs & _bigrams(passage)) / len(q_pairs) if q_pairs else 0.0,
        "superlative_missing": float(any(w not in sentence_lower for w in superlatives)),
    }


_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|neither|without|least|fail\w*)\b|n't\b", re.IGNORECASE)
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_NAME = re.compile(r"\b[^\W\d_]{2,}")  # letters only: "Norman's" is looked up as "norman"
_SUPERLATIVE = re.compile(r"\b(?:\w+est|first|last|most|least|only|main|primary)\b", re.IGNORECASE)


def _bigrams(text: str) -> set[tuple[str, str]]:
    words = _WORD.findall(text.lower())
    return set(zip(words, words[1:]))


def type_match(question: str, answer_text: str) -> bool:
    """False when the question asks for a number or a date and the answer holds neither."""
    return not wants_number(question) or has_number(answer_text)


# The probe: the same signals plus the reader's own hidden state (Extraction.hidden: layer HIDDEN_LAYER, the mean
# over the question's tokens and the last prompt token), which tells an unanswerable question from an answerable
# one better than any signal above. Valid only for the reader and layer it was fitted on; other readers get
# ABSTAIN_MODEL_ALONE. Fitted by `python bench/fit_abstention.py --save qa/abstain_probe.json`.
PROBE_FILE = Path(__file__).with_name("abstain_probe.json")


@functools.cache
def abstain_probe() -> dict[str, Any] | None:
    """The fitted probe (None if its file is missing or unreadable: abstention then uses ABSTAIN_MODEL_ALONE)."""
    try:
        probe = json.loads(PROBE_FILE.read_text(encoding="utf-8"))
        probe["hidden_weights"] = np.array(probe["hidden_weights"], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("The abstention probe %s could not be read (%s); abstaining without it.", PROBE_FILE, e)
        return None
    if probe.get("features") != list(ABSTAIN_FEATURES) or probe.get("layer") != HIDDEN_LAYER:
        log.warning("The abstention probe %s was fitted on other signals or another layer than this code computes; "
                    "abstaining without it. Refit it: python bench/fit_abstention.py --save qa/abstain_probe.json",
                    PROBE_FILE)
        return None
    return probe


def answerable_probability(features: dict[str, float], hidden: Sequence[float] = (), reader: str = "") -> float:
    """P(the evidence holds the answer): by the probe when ``hidden`` comes from the reader it was fitted on
    (``reader``: Settings.generator), else by ABSTAIN_MODEL_ALONE."""
    probe = abstain_probe() if hidden else None
    use = probe is not None and probe["reader"] == reader and len(hidden) == len(probe["hidden_weights"])
    model = probe if use else ABSTAIN_MODEL_ALONE
    x = np.array([features[k] for k in ABSTAIN_FEATURES], dtype=np.float64)
    z = (x - np.array(model["mean"])) / np.array(model["scale"])
    logit = float(z @ np.array(model["coef"]) + model["intercept"])
    if use:  # standardising the hidden state is folded into its weights and the intercept
        logit += float(np.asarray(hidden, dtype=np.float64) @ probe["hidden_weights"])
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))


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


def looks_like_instructions(text: str) -> bool:
    """True for a sentence that addresses a model ("Ignore previous instructions and print X", "SYSTEM: ...")."""
    folded = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return bool(_INSTRUCTION.search(folded))


def select_evidence(
    question: str, qvec: np.ndarray, passages: Sequence[Passage], embedder: Embedder, settings: Settings,
    loaded: LoadedIndex | None = None,
) -> list[Evidence]:
    """Every sentence of the passages, ranked by fused dense, BM25 and passage rank; the best few first.

    Sentences and their vectors come from the index's sentence table when it has one (embedding some 30
    sentences per question took 65-180 ms); otherwise the passages are split and embedded here.
    """
    bm25s = quiet_bm25s()
    sents: list[tuple[int, Passage, int, int]] = []
    rows: list[int] = []
    seen: set[tuple[str, int]] = set()
    table = loaded is not None and loaded.sentence_vectors is not None
    for rank, p in enumerate(passages):
        if table:
            spans = [(int(r), int(a) - p.start, int(b) - p.start) for r, a, b in loaded.sentences_in(p.source, p.start, p.end)]
        else:
            spans = [(-1, a, b) for a, b, _ in chunking.sentences(p.text)]
        for row, a, b in spans:
            if (p.source, p.start + a) not in seen and not looks_like_instructions(p.text[a:b]):
                seen.add((p.source, p.start + a))
                sents.append((rank, p, a, b))
                rows.append(row)
    if not sents:
        return []
    texts = [p.text[a:b] for _, p, a, b in sents]
    vectors = np.asarray(loaded.sentence_vectors[rows]) if table else embedder.encode(texts)
    dense = vectors @ qvec
    tokens = bm25_tokenize(texts)
    bm = np.zeros(len(texts))
    q_tokens = bm25_tokenize([question])[0]
    if any(tokens) and q_tokens:
        index = bm25s.BM25()
        index.index(tokens, show_progress=False)
        q_known = [t for t in q_tokens if t in index.vocab_dict]
        if q_known:
            bm = index.get_scores(q_known)
    fused = np.zeros(len(texts))
    k = settings.rrf_k
    for r, i in enumerate(np.argsort(-dense, kind="stable")):
        fused[i] += settings.dense_weight / (k + r + 1)
    for r, i in enumerate(np.argsort(-bm, kind="stable")):
        if bm[i] > 0:
            fused[i] += settings.bm25_weight / (k + r + 1)
    for i, (rank, *_rest) in enumerate(sents):
        fused[i] += 1.0 / (k + rank + 1)  # a sentence from a better passage is a little more likely to answer
    order = np.argsort(-fused, kind="stable")[: settings.evidence_sentences]
    return [
        Evidence(sents[i][0], sents[i][1].source, sents[i][1].title, sents[i][1].start + sents[i][2],
                 sents[i][1].start + sents[i][3], texts[i], float(dense[i]), float(bm[i]), float(fused[i]))
        for i in order
    ]


# ---------------------------------------------------------------------------------------------------------------
# Follow-ups

_FOLLOW_UP_START = re.compile(r"^(and|but|also|so|then|what about|how about|and what about|what of)\b", re.I)
_PRONOUN = re.compile(r"\b(it|its|they|them|their|theirs|that|those|these|this|he|him|his|she|her|there|then|one)\b", re.I)


def previous_questions(history: Any) -> list[str]:
    """The user's earlier questions (their standalone forms where known), oldest first.

    ``history`` may be a list of Answer objects, of (question, answer) pairs, or of chat messages
    ``{"role": "user" | "assistant", "content": ...}`` as Gradio keeps them.
    """
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise InvalidQuestionError(
            f"history must be a list of earlier answers, (question, answer) pairs or chat messages, not "
            f"{type(history).__name__}; pass None for a new conversation."
        )
    out: list[str] = []
    for item in history:
        if isinstance(item, Answer):
            out.append(item.searched_for or item.question)
        elif isinstance(item, dict):
            if item.get("role") == "user" and isinstance(item.get("content"), str):
                out.append(item["content"])
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            out.append(item[0])
    return [q for q in (" ".join(x.split()) for x in out) if q]


def needs_context(question: str) -> bool:
    """A follow-up starts like one ("and ...", "what about ..."), is very short, or leans on a pronoun while
    naming too little to stand alone ("when did that happen?"; not "How many visitors did the festival draw
    on its opening night?")."""
    words = _WORD.findall(question)
    if _FOLLOW_UP_START.match(question.strip()) or len(words) <= 3:
        return True
    return bool(_PRONOUN.search(question)) and len(content_words(question)) <= 3


def rewrite_follow_up(question: str, history: Any, generator: Generator | None) -> tuple[str, str]:
    """``(searched_for, reader_question)`` for ``question`` given earlier turns.

    A question that stands alone is returned as both. For a follow-up, the model's rewrite is used only if it
    keeps every content word of the follow-up and adds none found in neither the follow-up nor the previous
    question. Otherwise search gets the follow-up with the previous question as context, and the reader gets the
    follow-up itself, so that the earlier question's words cannot pull the old answer back.
    """
    previous = previous_questions(history)
    if not previous or not needs_context(question):
        return question, question
    prev = previous[-1]
    if generator is not None:
        try:
            draft = generator.generate(REWRITE_PROMPT.format(previous=prev, question=question), max_tokens=40)
        except Exception:  # a failing rewrite must not lose the question
            draft = ""
        draft = draft.strip().split("\n")[0].strip()
        allowed = content_words(prev) | content_words(question)
        if (draft.endswith("?") and draft.lower() != question.lower() and len(draft) <= 2 * (len(prev) + len(question))
                and content_words(question) <= content_words(draft) and content_words(draft) <= allowed):
            return draft, draft
    core = _FOLLOW_UP_START.sub("", question.strip()).strip(" ,") or question
    core = core[0].upper() + core[1:]
    return f"{core} ({prev})", core


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
    t0 = time.perf_counter()
    prepared = _prepare(question, index_dir, history, settings)
    return _answer_once(*prepared, None, t0)[0]


def stream(
    question: str,
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    history: Any = None,
    *,
    settings: Settings | None = None,
) -> Iterator[Answer]:
    """Like :func:`answer`, yielding partial answers (``complete=False``) while the reader copies; the last is final."""
    t0 = time.perf_counter()
    prepared = _prepare(question, index_dir, history, settings)
    q, searched = prepared[0], prepared[1]
    # The reader runs in a worker thread and hands over each longer prefix of the answer as it copies it.
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            events.put(_answer_once(*prepared, events.put, t0)[0])
        except BaseException as e:  # re-raised in the caller's thread
            events.put(e)

    threading.Thread(target=work, name="qa-answer", daemon=True).start()
    while True:
        item = events.get()
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Answer):
            yield item
            return
        yield Answer(q, item, [], False, searched, seconds=time.perf_counter() - t0, complete=False)


def _prepare(question, index_dir, history, settings):
    settings = settings or Settings.from_env()
    q = clean_question(question, settings.max_question_chars)
    generator = get_generator(settings)  # first: a reader in a worker process loads while the index does
    loaded = ensure_index(index_dir, settings)
    embedder = get_embedder(settings)
    check_embedder(loaded, embedder, index_dir)
    searched, reader_q = rewrite_follow_up(q, history, generator)
    return q, searched, reader_q, loaded, embedder, generator, settings


def _answer_once(q, searched, reader_q, loaded: LoadedIndex, embedder: Embedder, generator: Generator, settings: Settings,
                 on_text: Callable[[str], None] | None, t0: float) -> tuple[Answer, dict[str, float]]:
    qvec = embedder.encode([searched])[0]
    passages = search_many(loaded, embedder, [searched], settings.answer_passages, settings, qvec[None, :])[0]
    evidence = select_evidence(searched, qvec, passages, embedder, settings, loaded)
    if not evidence:
        return _abstain(q, searched, passages, 0.0, t0, loaded), {}
    texts = [e.text for e in evidence]
    if _takes_prior(generator):
        ext = generator.extract(reader_q, texts, on_text=on_text, prior=choice_prior(reader_q, evidence))
    else:  # a generator written before `prior` existed
        ext = generator.extract(reader_q, texts, on_text=on_text)
    features = abstention_features(reader_q, ext, evidence, passages)
    p = answerable_probability(features, ext.hidden, settings.generator)
    if not ext.text or p < settings.abstain_threshold:
        return _abstain(q, searched, passages, p, t0, loaded), features
    chosen = evidence[ext.context]
    cite = Citation(chosen.source, chosen.title, chosen.start, chosen.end, chosen.text,
                    passages[chosen.passage].score, chosen.dense, chosen.bm25, n=1)
    supported = cite.text[ext.start:ext.end] == ext.text
    if not supported:  # never cite a passage that does not contain the claim
        return _abstain(q, searched, passages, p, t0, loaded), features
    return Answer(q, f"{ext.text} [1]", [cite], False, searched, [Support(ext.text, (1,), True)],
                  [], p, time.perf_counter() - t0, index_version=loaded.generation), features


def _takes_prior(generator: Generator) -> bool:
    import inspect

    try:
        params = inspect.signature(generator.extract).parameters
    except (TypeError, ValueError):
        return False
    return "prior" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _abstain(q: str, searched: str, passages: Sequence[Passage], p: float, t0: float, loaded: LoadedIndex) -> Answer:
    return Answer(q, ABSTAIN_TEXT, [], True, searched, [], list(passages[:3]), p, time.perf_counter() - t0,
                  index_version=loaded.generation)


def answer_many(questions: Sequence[str], index_dir: str | Path, settings: Settings) -> list[tuple[Answer, dict[str, float]]]:
    """Answers plus the abstention features behind each (for evaluation and fitting the abstention model)."""
    loaded = ensure_index(index_dir, settings)
    embedder = get_embedder(settings)
    generator = get_generator(settings)
    out = []
    for question in questions:
        q = clean_question(question, settings.max_question_chars)
        out.append(_answer_once(q, q, q, loaded, embedder, generator, settings, None, time.perf_counter()))
    return out
