"""The Generator seam: ``generate(prompt, max_tokens) -> str``, an optional generative model for rewriting follow-ups.

Answers never come from here: the trained reader (qa/reading.py) finds them, and the code quotes them. A generator
only drafts a standalone form of a follow-up question, which questions.rewrite_follow_up checks word by word
before using it. None is configured by default (``Settings.generator = ""``): on doc2dial, searching with the
conversation's words found the gold passage for 0.817 of the public later turns, against 0.600 with the
Gemma-3-270M rewrite before it (docs/benchmarks.md). Point ``QA_GENERATOR`` at a ``.gguf`` file to use one through llama.cpp
(``pip install llama-cpp-python``), or register your own with :func:`register_generator`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

from .config import Registry, Settings

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


@runtime_checkable
class Generator(Protocol):
    def generate(self, prompt: str, max_tokens: int = 48) -> str: ...


class LlamaCppGenerator:
    """A GGUF file through llama.cpp, greedy. Loaded on first use."""

    def __init__(self, path: str, threads: int = 0):
        self.path, self.threads = Path(path).expanduser(), threads
        self._llm = None
        self._lock = threading.Lock()

    def load(self) -> LlamaCppGenerator:
        with self._lock:
            if self._llm is None:
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise ImportError("QA_GENERATOR names a .gguf file, which needs llama.cpp: pip install "
                                      "llama-cpp-python (or set QA_GENERATOR='' to rewrite follow-ups without "
                                      "a model)") from None
                if not self.path.is_file():
                    raise FileNotFoundError(f"QA_GENERATOR={self.path} is not a file; point it at a .gguf model "
                                            f"or set it to ''.")
                self._llm = Llama(str(self.path), n_ctx=1024, n_threads=self.threads or None, verbose=False)
        return self

    def generate(self, prompt: str, max_tokens: int = 48) -> str:
        self.load()
        with self._lock:
            out = self._llm(prompt, max_tokens=max_tokens, temperature=0.0, stop=["\n"])  # type: ignore[misc]
        return out["choices"][0]["text"]


def _default_generator(s: Settings) -> Generator:
    return LlamaCppGenerator(s.generator, s.threads)


def _remote_generator(worker, key, settings: Settings) -> Generator:
    from .worker import RemoteGenerator

    return RemoteGenerator(worker, key, settings)


_REGISTRY = Registry(_default_generator, "generator", _remote_generator, warm="load")


def register_generator(name: str, factory: Callable[[Settings], Generator]) -> None:
    """Make ``Settings(generator=name)`` build its generator with ``factory(settings)``."""
    _REGISTRY.register(name, factory)


def get_generator(settings: Settings) -> Generator | None:
    """The generator the settings name, or None when none is configured (the default)."""
    if not settings.generator:
        return None
    return _REGISTRY.get(settings.generator, settings.threads, settings)
