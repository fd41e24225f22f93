"""Fake models that plug into the real seams: deterministic, instant, no downloads."""

from __future__ import annotations

import hashlib
import re
import time

import numpy as np

_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag of hashed lower-cased words: similar wording gives similar vectors, which is enough to rank."""

    def __init__(self, name: str = "fake", dimension: int = 64, max_tokens: int = 40, delay: float = 0.0):
        self.name, self.dimension, self.max_tokens, self.delay = name, dimension, max_tokens, delay
        self.encoded = 0  # texts embedded so far: lets tests see what an incremental build re-embedded

    def count_tokens(self, texts):
        # Roughly word-piece-like: every word and every punctuation mark is a token, long words count double.
        return [sum(1 + len(w) // 12 for w in re.findall(r"\w+|[^\w\s]", t)) for t in texts]

    def encode(self, texts):
        if self.delay:
            time.sleep(self.delay)
        self.encoded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _WORD.findall(t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dimension] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        return out


def register(name: str = "fake", **kw) -> HashEmbedder:
    import qa

    emb = HashEmbedder(name=name, **kw)
    qa.register_embedder(name, lambda settings: emb)
    return emb


class FakeReader:
    """A reader through the real Reader seam: in each text it finds the first number (or else the first
    capitalised word the question lacks) of the sentence sharing most words with the question. Its margin over
    "no answer" is +10 when that sentence shares two or more of the question's longer words, else -10 (far from
    any fitted threshold). ``lie`` makes it return a span outside the text, to prove the pipeline refuses it."""

    def __init__(self, name: str = "fake-reader", lie: bool = False, delay: float = 0.0):
        self.name, self.lie, self.delay = name, lie, delay
        self.questions: list[str] = []
        self.reads: list[tuple[str, str]] = []  # (question, text), one per text read

    def read(self, question, texts):
        from qa.reading import Reading, Span

        if self.delay:  # stands in for the real reader's time, so that queues form
            time.sleep(self.delay)
        self.questions.append(question)
        self.reads.extend((question, text) for text in texts)
        qwords = {w.lower() for w in _WORD.findall(question) if len(w) > 3}
        out = []
        for text in texts:
            best, found = -1, None
            for m in re.finditer(r"[^.!?]+[.!?]?", text):
                overlap = len(qwords & {w.lower() for w in _WORD.findall(m.group())})
                hit = re.search(r"\d[\d,.]*\d|\d", m.group()) or next(
                    (h for h in re.finditer(r"\b[A-Z]\w+", m.group()) if h.group().lower() not in qwords), None)
                if hit is not None and overlap > best:
                    best, found = overlap, (m.start() + hit.start(), m.start() + hit.end())
            if found is None:
                out.append(Reading(0.0, ()))
                continue
            if self.lie:
                found = (len(text) + 5, len(text) + 9)
            out.append(Reading(0.0, (Span(found[0], found[1], 10.0 if best >= 2 else -10.0),)))
        return out


class FakeGenerator:
    """A generator through the real Generator seam: returns ``rewrite`` for every prompt, and keeps the prompts."""

    def __init__(self, rewrite: str = ""):
        self.rewrite, self.prompts = rewrite, []

    def generate(self, prompt, max_tokens=48):
        self.prompts.append(prompt)
        return self.rewrite


def register_reader(name: str = "fake-reader", **kw) -> FakeReader:
    import qa

    reader = FakeReader(name=name, **kw)
    qa.register_reader(name, lambda settings: reader)
    return reader


class CrashingReader(FakeReader):
    """A FakeReader that a worker process builds from its settings (a module-level class, so it can be sent
    there: ``qa.register_reader("crashy", CrashingReader)``). Asked a question with "crash" in it, it kills its
    own process the way a native runtime dies: "crash" alone is a segmentation fault, "crash SIGABRT" an abort,
    "crash SIGKILL" what the out-of-memory killer does; "hang" never replies, as a deadlocked runtime. ``QA_FAKE_DELAY`` (seconds) makes each answer take time."""

    def __init__(self, settings):
        import os

        super().__init__(name=settings.reader, delay=float(os.environ.get("QA_FAKE_DELAY", "0")))

    def load(self):
        return self

    def read(self, question, texts):
        import os
        import signal

        if "crash" in question.lower():
            name = next((m.group() for m in re.finditer(r"SIG[A-Z]+", question)), "SIGSEGV")
            os.kill(os.getpid(), getattr(signal, name))
        if re.search(r"\bhang\b", question.lower()):  # a native deadlock: no reply, ever
            signal.pause()
        return super().read(question, texts)


def chat_fns(demo):
    """The chat's event functions of a built app: (ask, answer_waiting, clear), with ``ask(question, conv,
    show_scores)`` handing the server every question sent so far, numbered, as the page's SEND_JS does."""
    import json

    by_name = {getattr(fn.fn, "__name__", ""): fn.fn for fn in demo.fns.values()}
    sent: list = []

    def ask(question, conv, show_scores=False):
        sent.append([len(sent) + 1, question])
        return by_name["ask_chat"](question, json.dumps(sent), conv, show_scores)

    return ask, by_name["answer_waiting"], by_name["clear"]


def chat(demo, question: str, show_scores: bool = False):
    """Send one question in a new conversation and let it be answered: (last chat HTML, the Conversation)."""
    from qa import ui

    ask, answer_waiting, _ = chat_fns(demo)
    conv = ui.Conversation()
    updates = [ask(question, conv, show_scores), *answer_waiting(conv, 5, "fake-reader", show_scores)]
    return updates[-1][0], conv


class CrashingEmbedder(HashEmbedder):
    """The hashing embedder, built in the embedder's worker process from its settings (``register_embedder(
    "crashy-embedder", CrashingEmbedder)``); it kills its own process when asked to embed a text with "crash" in it."""

    def __init__(self, settings):
        super().__init__(name=settings.embedder)

    def encode(self, texts):
        import os
        import signal

        if any("crash" in t.lower() for t in texts):
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().encode(texts)
