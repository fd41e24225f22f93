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
