"""The local store: an index as plain, versioned files, written atomically and loaded checked (memory-mapped).

Layout of an index folder::

    CURRENT              the name of the live generation, e.g. "v000003" (swapped atomically)
    v000003/             one complete, immutable generation
      manifest.json      format version, embedder and dimension, chunking parameters, per-file hashes, counts
      chunks.jsonl       one chunk a line: id, source, title, start, end, text, sha256 of the text
      chunk_offsets.npy  int64, n + 1 byte offsets of the lines of chunks.jsonl, which is memory-mapped and read
                         a line at a time (a million chunks are not a million Python objects)
      chunk_spans.npy    int64 (n, 3): the chunk's source (its rank in the manifest's sorted file names), start, end
      vectors.faiss      faiss index over the chunk embeddings, row i = chunk i (exact below
                         ``ann_min_chunks``, IVF with 4-bit PQ fast scan and 8-bit refinement above)
      embeddings.npy     the float32 embeddings themselves, read only by the next incremental build
      sentences.npy      the sentence table: one row (chunk id, start, end) per sentence of the corpus, each
                         sentence once, in the first chunk that holds it (evidence is chosen among these)
      sentence_vectors.npy  float16 (n, dimension): row i = the embedding of sentence i, memory-mapped (search
                         reorders the fused passages by the sentence closest to the question: qa/search.py)
      bm25/              bm25s arrays (.npy, loaded without pickle) and vocabulary JSON
    .lock                held by the one build running at a time

A build writes a new generation into a temporary sibling folder, fsyncs it, renames it, then points CURRENT at
it. A build killed at any moment leaves CURRENT naming the previous, complete generation.

Building (what changed, chunking, embedding) is qa/index.py; this module only writes, loads and locks.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chunking import Chunk
from .config import Settings
from .errors import IndexBusyError, IndexCorruptError, IndexMismatchError, IndexMissingError

if TYPE_CHECKING:  # numpy is imported where it runs, so that `import qa` stays light
    import numpy as np

log = logging.getLogger("qa")

FORMAT = "qa-index"
FORMAT_VERSION = 1
DEFAULT_INDEX_DIR = "index"
BM25_STOPWORDS = "en"
BM25_STEMMER = "english"

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class ChunkTable:
    """The chunks of a generation as a read-only sequence over the memory-mapped chunks.jsonl: ``table[i]`` parses
    line i. ``spans`` holds (source number, start, end) per chunk for vectorised lookups."""

    def __init__(self, path: Path, offsets: np.ndarray, spans: np.ndarray, sources: list[str]):
        import mmap

        self.sources, self.offsets, self.spans = sources, offsets, spans
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if len(offsets) != len(spans) + 1 or (len(offsets) and int(offsets[-1]) != size):
                raise IndexCorruptError(f"{path} does not match its offsets ({size} bytes). Rebuild with `qa index`.")
            self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self.spans)
        if not 0 <= i < len(self.spans):
            raise IndexError(i)
        d = json.loads(self._mm[int(self.offsets[i]) : int(self.offsets[i + 1])])
        return Chunk(d["id"], d["source"], d["title"], d["start"], d["end"], d["text"], d["sha256"])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def rows_of(self, source: str) -> np.ndarray:
        """Chunk ids of one source (chunks are stored grouped by source, in file-name order)."""
        import bisect

        import numpy as np

        s = bisect.bisect_left(self.sources, source)
        if s == len(self.sources) or self.sources[s] != source:
            return np.zeros(0, dtype=np.int64)
        col = self.spans[:, 0]
        return np.arange(int(np.searchsorted(col, s, "left")), int(np.searchsorted(col, s, "right")))


def chunk_table_from_jsonl(path: Path) -> ChunkTable:
    """A generation written before chunk_offsets.npy: find the line offsets once, at load."""
    import numpy as np
    offsets, spans, names = [0], [], []
    with open(path, "rb") as f:
        for line in f:
            d = json.loads(line)
            offsets.append(offsets[-1] + len(line))
            names.append(d["source"])
            spans.append((d["start"], d["end"]))
    sources = sorted(set(names))
    rank = {s: i for i, s in enumerate(sources)}
    table = np.array([(rank[n], a, b) for n, (a, b) in zip(names, spans)], dtype=np.int64).reshape(-1, 3)
    return ChunkTable(path, np.array(offsets, dtype=np.int64), table, sources)


@dataclass(frozen=True)
class Hits:
    """One question's candidates from one store, best first: dense (cosine) and BM25, as (chunk id, score)."""

    dense: list[tuple[int, float]]
    bm25: list[tuple[int, float]]


class ManifestFacts:
    """What a loaded index of either store reads off its manifest."""

    manifest: dict[str, Any]

    @property
    def embedder_name(self) -> str:
        return self.manifest["embedder"]["name"]

    @property
    def dimension(self) -> int:
        return int(self.manifest["embedder"]["dimension"])


@dataclass
class LoadedIndex(ManifestFacts):
    """A local generation in memory. What search and answers use of it is the store seam, which the Milvus store
    (qa/milvus.py) implements too: ``generation``, ``manifest``, ``size``, ``hits``, ``fetch``, ``chunks_of``,
    ``sentences_in`` and ``has_sentences``."""

    path: Path
    generation: str
    manifest: dict[str, Any]
    chunks: ChunkTable | list[Chunk]
    faiss_index: Any
    bm25: Any
    sentences: np.ndarray | None = None  # (n, 3) int64: chunk id, start, end; None in generations written before it
    sentence_vectors: np.ndarray | None = None  # (n, dimension) float16, row i = sentence i; None before them

    _by_source: dict[str, list[Chunk]] | None = field(default=None, repr=False, compare=False)
    _sentences_by_source: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.chunks)

    @property
    def has_sentences(self) -> bool:
        return self.sentences is not None

    def fetch(self, ids: list[int]) -> dict[int, Chunk]:
        return {i: self.chunks[i] for i in ids}

    def hits(self, qvecs: np.ndarray, questions: list[str], depth: int) -> list[Hits]:
        import numpy as np
        n = len(self.chunks)
        depth = min(n, depth)
        if n == 0 or not questions:
            return [Hits([], []) for _ in questions]
        scores, ids = self.faiss_index.search(np.ascontiguousarray(qvecs, dtype=np.float32), depth)
        out = []
        for qi, tokens in enumerate(bm25_tokenize(list(questions))):
            dense = [(int(c), float(s)) for c, s in zip(ids[qi], scores[qi]) if c >= 0]
            bm: list[tuple[int, float]] = []
            if tokens:
                all_scores = self.bm25.get_scores(tokens)
                top = np.argpartition(-all_scores, depth - 1)[:depth] if depth < n else np.arange(n)
                top = top[np.lexsort((top, -all_scores[top]))]
                bm = [(int(c), float(all_scores[c])) for c in top if all_scores[c] > 0]
            out.append(Hits(dense, bm))
        return out

    def chunks_of(self, source: str) -> list[Chunk]:
        """The chunks of one article in text order."""
        if self._by_source is None:
            self._by_source = {}
        if source not in self._by_source:
            if len(self._by_source) > 64:
                self._by_source.clear()
            if isinstance(self.chunks, ChunkTable):
                found = [self.chunks[int(i)] for i in self.chunks.rows_of(source)]
            else:
                found = [c for c in self.chunks if c.source == source]
            self._by_source[source] = sorted(found, key=lambda c: c.start)
        return self._by_source[source]

    def _chunk_sources(self) -> tuple[list[str], np.ndarray]:
        import numpy as np
        if isinstance(self.chunks, ChunkTable):
            return self.chunks.sources, self.chunks.spans[:, 0]
        names = sorted({c.source for c in self.chunks})
        number = {n: i for i, n in enumerate(names)}
        return names, np.array([number[c.source] for c in self.chunks], dtype=np.int64)

    def sentences_in(self, source: str, start: int, end: int) -> np.ndarray:
        """Rows (sentence row, start, end) of the sentence table lying within ``[start, end)`` of ``source``, in
        text order; empty if this generation has no sentence table."""
        import numpy as np
        if self.sentences is None:
            return np.zeros((0, 3), dtype=np.int64)
        if self._sentences_by_source is None:  # once per loaded generation, vectorised (millions of rows)
            names, chunk_source = self._chunk_sources()
            src = chunk_source[self.sentences[:, 0]]
            order = np.lexsort((self.sentences[:, 1], src))
            t = np.column_stack([order, self.sentences[order, 1], self.sentences[order, 2]])
            cuts = np.searchsorted(src[order], np.arange(len(names) + 1))
            self._sentences_by_source = {n: t[cuts[i] : cuts[i + 1]] for i, n in enumerate(names)}
        t = self._sentences_by_source.get(source)
        if t is None:
            return np.zeros((0, 3), dtype=np.int64)
        lo = int(np.searchsorted(t[:, 1], start, side="left"))
        hi = int(np.searchsorted(t[:, 1], end, side="left"))
        t = t[lo:hi]
        return t[t[:, 2] <= end]


# ---------------------------------------------------------------------------------------------------------------
# BM25 tokenisation: one function for documents and queries, so both sides always agree.


@functools.lru_cache(maxsize=1)
def stemmer():
    import Stemmer

    return Stemmer.Stemmer(BM25_STEMMER)


def quiet_bm25s():
    """The bm25s module, its logger kept to warnings: importing it sets that logger to DEBUG, and every index()
    then logs "Building index from tokens", which `qa ask` printed under each answer."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def bm25_tokenize(texts: list[str]) -> list[list[str]]:
    return quiet_bm25s().tokenize(
        texts,
        stopwords=BM25_STOPWORDS,
        stemmer=stemmer(),
        return_ids=False,
        show_progress=False,
    )


# ---------------------------------------------------------------------------------------------------------------
# Files


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` so that readers see the old file or the new one, never a part (also for the model cache)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    _write_bytes(tmp, data)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def current_generation(index_dir: str | Path) -> str | None:
    """The live generation's folder name, or None when there is no index."""
    try:
        name = (Path(index_dir) / "CURRENT").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise IndexCorruptError(f"Cannot read {Path(index_dir) / 'CURRENT'}: {e}. Rebuild with `qa index`.") from e
    if not name.startswith("v") or "/" in name or not name[1:].isdigit():
        raise IndexCorruptError(
            f"{Path(index_dir) / 'CURRENT'} names {name!r}, not an index generation. Rebuild with `qa index`."
        )
    return name


def read_manifest(index_dir: str | Path, generation: str | None = None) -> dict[str, Any]:
    gen = generation or current_generation(index_dir)
    if gen is None:
        raise IndexMissingError(missing_message(index_dir))
    path = Path(index_dir) / gen / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:
        raise IndexCorruptError(f"{path} is unreadable ({e}). Rebuild with `qa index`.") from e
    if manifest.get("format") != FORMAT:
        raise IndexCorruptError(f"{path} is not a qa index manifest. Rebuild with `qa index`.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"The index at {index_dir} has format version {manifest.get('format_version')}, this qa reads "
            f"version {FORMAT_VERSION}. Rebuild it with `qa index --index {index_dir}`."
        )
    return manifest


def missing_message(index_dir: str | Path) -> str:
    return f"No index at {str(index_dir)!r}. Build one with `qa index --docs DIR --index {index_dir}`."


# ---------------------------------------------------------------------------------------------------------------
# Load


_LOADED: dict[tuple[str, str], LoadedIndex] = {}
_LOADED_LOCK = threading.Lock()


def load_index(index_dir: str | Path = DEFAULT_INDEX_DIR) -> LoadedIndex:
    """The live generation, loaded once per process and checked for consistency."""
    root = Path(index_dir).resolve()
    for attempt in range(5):
        gen = current_generation(root)
        if gen is None:
            raise IndexMissingError(missing_message(index_dir))
        key = (str(root), gen)
        with _LOADED_LOCK:
            if key in _LOADED:
                return _LOADED[key]
        try:
            loaded = _load_generation(root, gen)
        except FileNotFoundError:
            # A concurrent build swapped CURRENT and removed this generation between our two reads: look again.
            time.sleep(0.05 * (attempt + 1))
            continue
        with _LOADED_LOCK:
            for k in [k for k in _LOADED if k[0] == str(root)]:
                del _LOADED[k]
            _LOADED[key] = loaded
        return loaded
    raise IndexCorruptError(f"The index at {index_dir} keeps changing under us or has missing files. Rebuild with `qa index`.")


def _load_generation(root: Path, gen: str) -> LoadedIndex:
    import numpy as np
    bm25s = quiet_bm25s()
    import faiss

    folder = root / gen
    manifest = read_manifest(root, gen)
    try:
        if (folder / "chunk_offsets.npy").exists():
            chunks = ChunkTable(folder / "chunks.jsonl", np.load(folder / "chunk_offsets.npy", allow_pickle=False),
                                np.load(folder / "chunk_spans.npy", allow_pickle=False), sorted(manifest["files"]))
        else:
            chunks = chunk_table_from_jsonl(folder / "chunks.jsonl")
        raw = np.fromfile(folder / "vectors.faiss", dtype=np.uint8)
        faiss_index = faiss.deserialize_index(raw)
        del raw
        tune_dense_index(faiss_index, manifest.get("faiss", {}))
        bm25 = bm25s.BM25.load(str(folder / "bm25"), mmap=False, allow_pickle=False)
        sentences = sentence_vectors = None
        if "sentences" in manifest["counts"]:
            sentences = np.load(folder / "sentences.npy", allow_pickle=False)
        if "sentence_vectors" in manifest["counts"]:
            sentence_vectors = np.load(folder / "sentence_vectors.npy", mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        if not folder.exists():
            raise
        raise IndexCorruptError(f"The index generation {folder} is missing files. Rebuild with `qa index`.") from None
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise IndexCorruptError(f"The index at {folder} is unreadable ({type(e).__name__}: {e}). Rebuild with `qa index`.") from e
    n = len(chunks)
    counts = {"chunks.jsonl": n, "vectors.faiss": faiss_index.ntotal, "bm25": int(bm25.scores["num_docs"]),
              "manifest": manifest["counts"]["chunks"]}
    if len(set(counts.values())) != 1:
        raise IndexCorruptError(f"The index at {folder} is inconsistent ({counts}). Rebuild with `qa index`.")
    if faiss_index.d != manifest["embedder"]["dimension"]:
        raise IndexCorruptError(f"The index at {folder} has vectors of dimension {faiss_index.d}, its manifest says "
                                f"{manifest['embedder']['dimension']}. Rebuild with `qa index`.")
    if sentences is not None:
        m = manifest["counts"]["sentences"]
        if (sentences.ndim != 2 or sentences.shape != (m, 3)
                or (m and not (0 <= sentences[:, 0].min() and sentences[:, 0].max() < n))):
            raise IndexCorruptError(f"The sentence table of {folder} is inconsistent. Rebuild with `qa index`.")
    if sentence_vectors is not None and (sentences is None or sentence_vectors.shape != (
            len(sentences), manifest["embedder"]["dimension"])):
        raise IndexCorruptError(f"The sentence vectors of {folder} do not match its sentence table. Rebuild with "
                                f"`qa index`.")
    return LoadedIndex(folder, gen, manifest, chunks, faiss_index, bm25, sentences, sentence_vectors)


class LocalStore:
    """The files of one index folder (see the module docstring): what a build reads, writes and locks."""

    keeps_sentence_vectors = True  # qa/index.py embeds each sentence for the search's sentence ranking

    def __init__(self, index_dir: Path):
        self.index_dir = index_dir
        self.label = str(index_dir)

    @contextlib.contextmanager
    def lock(self, settings: Settings, wait: bool, progress: Progress | None):
        from filelock import FileLock, Timeout

        self.index_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.index_dir / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise IndexBusyError(f"Another build of {self.index_dir} is running; try again when it has "
                                     f"finished.") from None
            log.warning("Another build of %s is running; waiting for it to finish...", self.index_dir)
            if progress:
                progress("waiting for another build", 0, 1)
            try:
                lock.acquire(timeout=settings.lock_timeout_s)
            except Timeout:
                raise IndexBusyError(
                    f"Another build of {self.index_dir} has held the lock for over {settings.lock_timeout_s:.0f} s. "
                    f"Wait for it to finish, or raise QA_LOCK_TIMEOUT_S."
                ) from None
        try:
            yield
        finally:
            lock.release()

    def current(self) -> str | None:
        return current_generation(self.index_dir)

    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.index_dir)

    def load(self) -> LoadedIndex:
        return load_index(self.index_dir)

    def previous(self) -> LoadedIndex | None:
        gen = current_generation(self.index_dir)
        return None if gen is None else _load_generation(self.index_dir.resolve(), gen)

    def old_vectors(self, old: LoadedIndex) -> np.ndarray:
        return _old_vectors(old)

    def keep(self, old: LoadedIndex) -> None:
        """Nothing changed: keep the live generation, and clear what killed builds left."""
        d = self.index_dir
        _cleanup(d, keep={p.name for p in d.glob("v[0-9]*")} - _orphans(d, old.generation))

    def write(self, docs_dir: Path, chunks: list[Chunk], vectors: np.ndarray, core: dict,
              sentences: np.ndarray, progress: Progress | None = None,
              sentence_vectors: np.ndarray | None = None) -> str:
        return _write_generation(self.index_dir, docs_dir, chunks, vectors, core, sentences, sentence_vectors)


def _write_generation(index_dir: Path, docs_dir: Path, chunks: list[Chunk], vectors: np.ndarray, core: dict,
                      sentences: np.ndarray, sentence_vectors: np.ndarray | None = None) -> str:
    import numpy as np
    bm25s = quiet_bm25s()
    import faiss

    existing = sorted(p.name for p in index_dir.glob("v[0-9]*") if p.is_dir())
    number = max([int(n[1:]) for n in existing if n[1:].isdigit()] + [0]) + 1
    gen = f"v{number:06d}"
    tmp = index_dir / f".tmp-{gen}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()

    lines = [(json.dumps(asdict(c), ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass") for c in chunks]
    _write_bytes(tmp / "chunks.jsonl", b"".join(lines))
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in lines], out=offsets[1:])
    del lines
    rank = {s: i for i, s in enumerate(sorted(core["files"]))}
    spans = np.array([(rank[c.source], c.start, c.end) for c in chunks], dtype=np.int64).reshape(-1, 3)

    index = make_dense_index(vectors, core["faiss"])
    _write_bytes(tmp / "vectors.faiss", faiss.serialize_index(index).tobytes())
    del index
    arrays = [("embeddings.npy", vectors), ("sentences.npy", sentences), ("chunk_offsets.npy", offsets),
              ("chunk_spans.npy", spans)]
    if sentence_vectors is not None:  # float16: half the disk and page cache; ranking needs no more precision
        arrays.append(("sentence_vectors.npy", np.asarray(sentence_vectors, dtype=np.float16)))
    for name, array in arrays:
        with open(tmp / name, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())

    retriever = bm25s.BM25()
    retriever.index(bm25_tokenize([c.text for c in chunks]), show_progress=False)
    retriever.save(str(tmp / "bm25"))
    for p in (tmp / "bm25").iterdir():
        with open(p, "rb+") as f:
            os.fsync(f.fileno())
    _fsync_dir(tmp / "bm25")

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generation": gen,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "docs_dir": str(docs_dir.resolve()),
        **core,
        "bm25": {"library": "bm25s", "version": bm25s.__version__, "stopwords": BM25_STOPWORDS,
                 "stemmer": BM25_STEMMER},
        "counts": {"documents": len(core["files"]), "chunks": len(chunks), "sentences": len(sentences),
                   **({"sentence_vectors": len(sentence_vectors)} if sentence_vectors is not None else {})},
    }
    _write_bytes(tmp / "manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8"))
    _fsync_dir(tmp)
    os.rename(tmp, index_dir / gen)
    _fsync_dir(index_dir)
    # The one atomic step that publishes the new generation.
    try:
        previous = current_generation(index_dir)
    except IndexCorruptError:  # this build is what repairs a garbled CURRENT
        previous = None
    _atomic_write_text(index_dir / "CURRENT", gen + "\n")
    _cleanup(index_dir, keep={gen, previous})
    return gen


def dense_index_plan(n: int, dimension: int, settings: Settings) -> dict[str, Any]:
    """Which faiss index holds ``n`` vectors: exact when small, an IVF index when flat search gets slow.

    The large-corpus recipe and its defaults come from ``bench/scale.py`` (synthetic chunks shaped like real
    MiniLM embeddings): 4-bit PQ codes scanned with SIMD ("fast scan") shortlist ``k_factor * k`` candidates,
    which 8-bit scalar-quantised copies re-rank; 456 bytes a vector instead of 1,536.
    """
    metric = "inner product of normalised vectors"
    if n < settings.ann_min_chunks:
        return {"type": "IndexFlatIP", "factory": "Flat", "metric": metric}
    nlist = int(2 ** round(math.log2(4 * math.sqrt(n))))  # the usual 4*sqrt(n) lists, a power of two
    m = dimension // 3 if dimension % 3 == 0 else dimension // 2  # 3 (or 2) dimensions per 4-bit sub-quantiser
    return {
        "type": "IVF-PQfastscan-refine", "factory": f"IVF{nlist},PQ{m}x4fs,Refine(SQ8)", "metric": metric,
        "nlist": nlist, "nprobe": max(1, round(nlist * settings.ann_probe_fraction)), "k_factor": 32,
        "train_size": min(n, 50 * nlist),
    }


def make_dense_index(vectors: np.ndarray, plan: dict[str, Any]) -> Any:
    import faiss
    import numpy as np

    index = faiss.index_factory(vectors.shape[1], plan["factory"], faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        n, size = len(vectors), plan["train_size"]
        # A fixed-seed sample keeps two builds of the same corpus identical.
        rows = np.sort(np.random.default_rng(0).choice(n, size, replace=False)) if size < n else slice(None)
        index.train(np.ascontiguousarray(vectors[rows]))
    index.add(vectors)
    tune_dense_index(index, plan)
    return index


def tune_dense_index(index: Any, plan: dict[str, Any]) -> None:
    import faiss

    if "nprobe" in plan:
        faiss.extract_index_ivf(index).nprobe = int(plan["nprobe"])
    if "k_factor" in plan:
        faiss.downcast_index(index).k_factor = float(plan["k_factor"])


def _old_vectors(old: LoadedIndex) -> np.ndarray:
    import numpy as np
    path = old.path / "embeddings.npy"
    if path.exists():
        return np.load(path, mmap_mode="r", allow_pickle=False)
    return old.faiss_index.reconstruct_n(0, old.faiss_index.ntotal)  # indexes written before embeddings.npy (flat)


def _orphans(index_dir: Path, live: str) -> set[str]:
    """Generations newer than the live one: written by a build killed before it could publish them."""
    return {p.name for p in index_dir.glob("v[0-9]*") if p.name[1:].isdigit() and p.name > live}


def _cleanup(index_dir: Path, keep: set[str | None]) -> None:
    """Remove generations older than the previous one (a reader may still be loading that) and dead temp folders."""
    for p in index_dir.iterdir():
        if p.is_dir() and p.name not in keep and (p.name.startswith(".tmp-") or (p.name.startswith("v") and p.name[1:].isdigit())):
            shutil.rmtree(p, ignore_errors=True)


