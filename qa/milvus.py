"""The Milvus store: the same index in Milvus Lite (a local ``.db`` file, embedded) or a Milvus server or cluster.

``QA_STORE=milvus.db`` (any path ending in ``.db``) opens Milvus Lite in this process; ``QA_STORE=http://HOST:19530``
talks to a Milvus server or cluster (``QA_MILVUS_TOKEN`` for its token). The index folder's last part names the
index: ``index`` becomes the alias ``qa_index``. Per build generation N there are two collections:

    qa_index_v000003        one row per chunk: id, source, title, start, end, text, sha256, the chunk's sentences
                            (JSON [start, end] pairs, each sentence of the corpus once), dense vector, BM25 sparse
                            vector (computed here with the local store's tokenizer and stemmer, or by the engine's
                            BM25 function when ``QA_MILVUS_BM25=engine``)
    qa_index_v000003_meta   the manifest (the local store's manifest.json), in pieces

A build fills a new generation and then points the alias at it, which is Milvus's atomic step: a reader sees the
old generation or the new one, never a part. A build killed before that leaves the alias on the old generation;
the next build drops what it left. Milvus Lite serves one process at a time (a file lock): a second process is
refused with a message. Against a server, a build holds a lock collection (``qa_index_lock``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .chunking import Chunk
from .config import Settings
from .errors import IndexBusyError, IndexCorruptError, IndexMismatchError, IndexMissingError, StoreUnavailableError
from .local_store import FORMAT, FORMAT_VERSION, Hits, ManifestFacts, bm25_tokenize

log = logging.getLogger("qa")
#: Generation names a build steps past when Milvus Lite refuses them as left behind by killed builds.
LEFTOVER_NAMES = 5

BM25_K1, BM25_B = 1.5, 0.75  # bm25s's defaults, so that both stores rank alike
MAX_TEXT = 65_535  # Milvus's VARCHAR limit, in bytes
META_PIECE = 60_000
INSERT_BATCH = 1_000
SEARCH_BATCH = 8
_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], MilvusIndex] = {}
_BUILD_LOCK = threading.Lock()
_LOADED_COLLECTIONS: set[tuple[str, str]] = set()


def alias_for(index_dir: str | Path) -> str:
    name = re.sub(r"\W", "_", Path(str(index_dir)).name or "index")
    return f"qa_{name}"


def is_lite(uri: str) -> bool:
    return uri.endswith(".db")


def client_for(uri: str, token: str = ""):
    """One MilvusClient per store and process (Milvus Lite runs its server in this process's threads)."""
    with _CLIENTS_LOCK:
        if uri in _CLIENTS:
            return _CLIENTS[uri]
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise StoreUnavailableError(
                f"QA_STORE={uri} needs pymilvus and milvus-lite: pip install -e '.[milvus]'"
            ) from None
        # Milvus Lite's server (in this process) logs a traceback for each call it does not implement and pymilvus
        # falls back from; neither is ours to report.
        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
        if is_lite(uri) and _locked_elsewhere(Path(uri)):
            raise StoreUnavailableError(
                f"The Milvus Lite file {uri} is open in another process (Milvus Lite serves one process at a time). "
                f"Stop that process (the app, or a running `qa index`), or use a Milvus server.")
        try:
            if is_lite(uri):
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
                client = MilvusClient(uri)
            else:
                client = MilvusClient(uri=uri, token=token, timeout=10)
            client.list_collections()
        except Exception as e:
            raise StoreUnavailableError(
                f"Cannot reach the Milvus store {uri} ({type(e).__name__}: {str(e)[:200]}). Start it, or fix "
                f"QA_STORE / --store.") from None
        _CLIENTS[uri] = client
        return client


def _locked_elsewhere(db: Path) -> bool:
    """Whether another process holds Milvus Lite's own lock on ``db`` (its error says only "open failed")."""
    import fcntl

    lock = db / "LOCK"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def _abandoned(lock: dict, timeout_s: float) -> bool:
    """A lock collection whose build is gone: its process on this machine has died, or it is older than the
    timeout (a build on another machine that died without unlocking)."""
    if lock.get("qa.host") == socket.gethostname():
        try:
            os.kill(int(lock.get("qa.pid", 0)), 0)
        except ProcessLookupError:
            return True
        except (OSError, ValueError):
            pass
    return time.time() - float(lock.get("qa.started", 0) or 0) > timeout_s


def close_clients() -> None:
    """Close every client this process opened and stop its Milvus Lite servers (their file locks go with them)."""
    with _CLIENTS_LOCK:
        uris = list(_CLIENTS)
        for uri in uris:
            with contextlib.suppress(Exception):
                _CLIENTS.pop(uri).close()
            if is_lite(uri):
                with contextlib.suppress(Exception):
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(uri)
        for key in [k for k in _LOADED if k[0] in uris]:
            del _LOADED[key]
        _LOADED_COLLECTIONS.difference_update({k for k in _LOADED_COLLECTIONS if k[0] in uris})


def ensure_loaded(client, uri: str, collection: str) -> None:
    """Milvus serves only loaded collections, and a reopened Milvus Lite file starts with none loaded."""
    if (uri, collection) not in _LOADED_COLLECTIONS:
        client.load_collection(collection)
        _LOADED_COLLECTIONS.add((uri, collection))


def token_id(token: str) -> int:
    """A stable id for a BM25 term (no vocabulary to keep in step across generations)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "little") % (2**32 - 1)


def bm25_vectors(texts: list[str]) -> list[dict[int, float]]:
    """Each text's BM25 document weights (Lucene's idf and saturation), so that a query vector of 1s per term
    scores BM25 by inner product."""
    tokens = bm25_tokenize(texts)
    df: Counter = Counter()
    for toks in tokens:
        df.update(set(toks))
    n = len(texts)
    avgdl = max(1e-9, sum(len(t) for t in tokens) / max(1, n))
    idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
    out = []
    for toks in tokens:
        tf = Counter(toks)
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(toks) / avgdl)
        vec: dict[int, float] = {}
        for t, f in tf.items():
            i = token_id(t)
            vec[i] = vec.get(i, 0.0) + idf[t] * f / (f + norm)
        out.append(vec or {0: 0.0})
    return out


def query_vector(tokens: list[str]) -> dict[int, float]:
    vec: dict[int, float] = {}
    for t in tokens:
        i = token_id(t)
        vec[i] = vec.get(i, 0.0) + 1.0
    return vec


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MilvusIndex(ManifestFacts):
    """A live generation in Milvus: the store seam search and answers use (see qa.local_store.LoadedIndex)."""

    FIELDS = ["id", "source", "title", "start", "end", "text", "sha256"]

    def __init__(self, client, uri: str, collection: str, manifest: dict[str, Any]):
        self.client, self.uri, self.generation, self.manifest = client, uri, collection, manifest
        self.path = Path(uri)
        self.size = int(manifest["counts"]["chunks"])
        self.has_sentences = True
        self._chunks: dict[int, Chunk] = {}

    def _call(self, fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except Exception as e:
            raise StoreUnavailableError(f"The Milvus store {self.uri} failed ({type(e).__name__}: {str(e)[:200]}). "
                                        f"Check that it is running, then ask again.") from None

    def hits(self, qvecs: np.ndarray, questions: list[str], depth: int) -> list[Hits]:
        # A few questions per request: Milvus Lite's memory grows with the batch (100 at once: +600 MB).
        return [h for i in range(0, len(questions), SEARCH_BATCH)
                for h in self._hits(qvecs[i:i + SEARCH_BATCH], questions[i:i + SEARCH_BATCH], depth)]

    def _hits(self, qvecs: np.ndarray, questions: list[str], depth: int) -> list[Hits]:
        depth = min(self.size, depth, 16_384)
        if self.size == 0 or not questions:
            return [Hits([], []) for _ in questions]
        plan = self.manifest["milvus"]
        dense = self._call(self.client.search, self.generation, data=[list(map(float, v)) for v in qvecs],
                           anns_field="dense", limit=depth,
                           search_params={"metric_type": "IP", "params": plan.get("search_params", {})})
        if plan["bm25"] == "engine":
            live = [i for i, q in enumerate(questions) if q.strip()]
            data = [questions[i] for i in live]
            params = {"metric_type": "BM25"}
        else:
            tokens = bm25_tokenize(list(questions))
            live = [i for i, t in enumerate(tokens) if t]
            data = [query_vector(tokens[i]) for i in live]
            params = {"metric_type": "IP"}
        sparse = (self._call(self.client.search, self.generation, data=data, anns_field="sparse", limit=depth,
                             search_params=params) if data else [])
        bm: dict[int, list[tuple[int, float]]] = {i: [(int(h["id"]), abs(float(h["distance"]))) for h in r]
                                                   for i, r in zip(live, sparse)}
        return [Hits([(int(h["id"]), float(h["distance"])) for h in dense[qi]], bm.get(qi, []))
                for qi in range(len(questions))]

    def fetch(self, ids: list[int]) -> dict[int, Chunk]:
        todo = sorted({int(i) for i in ids} - set(self._chunks))
        if todo:
            rows = self._call(self.client.query, self.generation, filter=f"id in {todo}",
                              output_fields=self.FIELDS, limit=len(todo))
            for r in rows:
                self._chunks[int(r["id"])] = _chunk(r)
            if len(self._chunks) > 50_000:  # a bounded cache
                self._chunks = {i: self._chunks[i] for i in todo if i in self._chunks}
        missing = [i for i in ids if i not in self._chunks]
        if missing:
            raise IndexCorruptError(f"The Milvus collection {self.generation} lacks chunks {missing[:5]}. Rebuild "
                                    f"with `qa index`.")
        return {i: self._chunks[i] for i in ids}

    def chunks_of(self, source: str) -> list[Chunk]:
        rows = self._call(self.client.query, self.generation, filter=f"source == {_quote(source)}",
                          output_fields=self.FIELDS, limit=16_384)
        return sorted((_chunk(r) for r in rows), key=lambda c: c.start)

    def sentences_in(self, source: str, start: int, end: int) -> np.ndarray:
        rows = self._call(self.client.query, self.generation,
                          filter=f"source == {_quote(source)} and start < {int(end)} and end > {int(start)}",
                          output_fields=["sentences"], limit=16_384)
        spans = sorted({(a, b) for r in rows for a, b in json.loads(r["sentences"]) if start <= a and b <= end})
        return np.array([(0, a, b) for a, b in spans], dtype=np.int64).reshape(-1, 3)


def _chunk(r: dict) -> Chunk:
    return Chunk(int(r["id"]), r["source"], r["title"], int(r["start"]), int(r["end"]), r["text"], r["sha256"])


class Previous:
    """An old generation read back in full for an incremental build: chunks, vectors and sentence table."""

    def __init__(self, generation: str, manifest: dict, chunks: list[Chunk], vectors: np.ndarray,
                 sentences: np.ndarray):
        self.generation, self.manifest, self.chunks, self.vectors, self.sentences = (
            generation, manifest, chunks, vectors, sentences)


class MilvusStore:
    """What a build and a load need of one index (an alias) in one Milvus store."""

    def __init__(self, uri: str, index_dir: str | Path, settings: Settings):
        self.uri, self.alias, self.settings = uri, alias_for(index_dir), settings
        self.label = f"{uri} (collection alias {self.alias})"
        self._current: str | None | bool = False  # False: not asked yet (a store object lives for one call)

    @property
    def client(self):
        return client_for(self.uri, self.settings.milvus_token)

    # -- the live generation --------------------------------------------------------------------------------

    def current(self) -> str | None:
        """The collection the alias names, asked once per store object: `qa.answer` opens one per question, and
        each ask is two round trips."""
        if self._current is False:
            self._current = self._ask_current()
        return self._current

    def _ask_current(self) -> str | None:
        try:
            aliases = self.client.list_aliases().get("aliases", [])
            if self.alias not in aliases:
                return None
            return self.client.describe_alias(self.alias)["collection_name"]
        except StoreUnavailableError:
            raise
        except Exception as e:
            raise StoreUnavailableError(
                f"The Milvus store {self.uri} failed ({type(e).__name__}: {str(e)[:200]}).") from None

    def manifest(self, collection: str | None = None) -> dict[str, Any]:
        collection = collection or self.current()
        if collection is None:
            raise IndexMissingError(f"No index {self.alias!r} in {self.uri}. Build one with `qa index --docs DIR "
                                    f"--store {self.uri}`.")
        try:
            ensure_loaded(self.client, self.uri, f"{collection}_meta")
            rows = self.client.query(f"{collection}_meta", filter="piece >= 0", output_fields=["piece", "text"],
                                     limit=16_384)
            manifest = json.loads("".join(r["text"] for r in sorted(rows, key=lambda r: r["piece"])))
        except Exception as e:
            raise IndexCorruptError(f"The manifest of {collection} in {self.uri} is unreadable ({e}). Rebuild with "
                                    f"`qa index`.") from None
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(f"The index {collection} in {self.uri} has another format. Rebuild it with "
                                     f"`qa index`.")
        return manifest

    def load(self) -> MilvusIndex:
        collection = self.current()
        if collection is None:
            raise IndexMissingError(f"No index {self.alias!r} in {self.uri}. Build one with `qa index`.")
        key = (self.uri, self.alias)
        cached = _LOADED.get(key)
        if cached is not None and cached.generation == collection:
            return cached
        manifest = self.manifest(collection)
        try:
            ensure_loaded(self.client, self.uri, collection)
        except Exception as e:
            raise IndexCorruptError(f"{collection} in {self.uri} cannot be loaded ({e}). Rebuild with `qa index`.") from None
        loaded = MilvusIndex(self.client, self.uri, collection, manifest)
        _LOADED[key] = loaded
        return loaded

    # -- builds ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, settings: Settings, wait: bool, progress):
        if not _BUILD_LOCK.acquire(timeout=settings.lock_timeout_s if wait else 0):
            raise IndexBusyError(f"Another build of {self.label} is running in this process; try again when it "
                                 f"has finished.")
        try:
            if is_lite(self.uri):  # opening takes the Lite file's own lock, which keeps other processes out
                client_for(self.uri)
                yield
                return
            name = f"{self.alias}_lock"
            deadline = time.monotonic() + (settings.lock_timeout_s if wait else 0)
            while self.client.has_collection(name):
                if _abandoned(self.client.describe_collection(name).get("properties", {}), settings.lock_timeout_s):
                    self.client.drop_collection(name)
                    break
                if time.monotonic() >= deadline:
                    raise IndexBusyError(f"Another build of {self.label} is running; try again when it has finished"
                                         f"{'' if not wait else ' (or raise QA_LOCK_TIMEOUT_S)'}.")
                if progress:
                    progress("waiting for another build", 0, 1)
                time.sleep(0.5)
            self.client.create_collection(name, dimension=2, properties={
                "qa.started": str(time.time()), "qa.host": socket.gethostname(), "qa.pid": str(os.getpid())})
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    self.client.drop_collection(name)
        finally:
            _BUILD_LOCK.release()

    def _generations(self) -> list[str]:
        pattern = re.compile(re.escape(self.alias) + r"_v\d{6}$")
        return sorted(c for c in self.client.list_collections() if pattern.match(c))

    def previous(self) -> Previous | None:
        collection = self.current()
        if collection is None:
            return None
        manifest = self.manifest(collection)
        ensure_loaded(self.client, self.uri, collection)
        n = int(manifest["counts"]["chunks"])
        chunks: list[Chunk | None] = [None] * n
        vectors = np.zeros((n, int(manifest["embedder"]["dimension"])), dtype=np.float32)
        sentences = []
        fields = [*MilvusIndex.FIELDS, "sentences", "dense"]
        for lo in range(0, n, 1000):  # id ranges rather than query_iterator, which Milvus Lite half supports
            for r in self.client.query(collection, filter=f"id >= {lo} and id < {lo + 1000}", output_fields=fields,
                                       limit=1000):
                c = _chunk(r)
                chunks[c.id] = c
                vectors[c.id] = r["dense"]
                sentences.extend((c.id, a, b) for a, b in json.loads(r["sentences"]))
        if any(c is None for c in chunks):
            raise IndexCorruptError(f"{collection} in {self.uri} is missing chunks. Rebuild with `qa index`.")
        return Previous(collection, manifest, chunks, vectors, np.array(sorted(sentences), dtype=np.int64).reshape(-1, 3))

    def old_vectors(self, old: Previous) -> np.ndarray:
        return old.vectors

    def keep(self, old: Previous) -> None:
        self._cleanup(old.generation, old.generation)

    def _cleanup(self, live: str, previous: str | None) -> None:
        """Drop generations other than the live and the previous one: older ones, and any a killed build left."""
        for c in self._generations():
            if c not in (live, previous):
                for name in (f"{c}_meta", c):
                    if self.client.has_collection(name):
                        self.client.drop_collection(name)

    def _create(self, number: int, schema, index_params) -> str:
        """Create generation ``number``'s two collections, empty, and return its name. Milvus Lite killed inside
        create_collection can leave a collection's folder on disk that it no longer lists: that name then fails
        with "File exists" for ever, so a build steps past it to the next number instead of failing every time."""
        from pymilvus import MilvusException

        client = self.client

        def drop(name: str) -> None:
            for stale in (name, f"{name}_meta"):
                if client.has_collection(stale):
                    client.drop_collection(stale)

        attempt = 0
        while True:
            name = f"{self.alias}_v{number + attempt:06d}"
            drop(name)
            try:
                client.create_collection(name, schema=schema, index_params=index_params)
                client.create_collection(f"{name}_meta", dimension=2, primary_field_name="piece", id_type="int",
                                         vector_field_name="unused", auto_id=False, enable_dynamic_field=True)
                return name
            except MilvusException as e:
                if "exists" not in str(e).lower() or attempt == LEFTOVER_NAMES:
                    raise
                log.warning("Milvus could not create %s (%s), which a killed build left behind; trying the next "
                            "name.", name, e)
                drop(name)
                attempt += 1

    def write(self, docs_dir: Path, chunks: list[Chunk], vectors: np.ndarray, core: dict,
              sentences: np.ndarray, progress=None, sentence_vectors: np.ndarray | None = None) -> str:
        # Sentence vectors stay out of Milvus (a second vector field per sentence is a schema of its own): its
        # search fuses dense and BM25 only, as Settings.sentence_weight = 0 does locally.
        from datetime import UTC, datetime

        from pymilvus import DataType, Function, FunctionType

        client = self.client
        existing = self._generations()
        number = max([int(c.rsplit("_v", 1)[1]) for c in existing] + [0]) + 1
        engine_bm25 = self.settings.milvus_bm25 == "engine"
        dim = vectors.shape[1]
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("source", DataType.VARCHAR, max_length=4096)
        schema.add_field("title", DataType.VARCHAR, max_length=4096)
        schema.add_field("start", DataType.INT64)
        schema.add_field("end", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT, enable_analyzer=engine_bm25,
                         **({"analyzer_params": {"tokenizer": "standard",
                                                 "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]}]}}
                            if engine_bm25 else {}))
        schema.add_field("sha256", DataType.VARCHAR, max_length=64)
        schema.add_field("sentences", DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        if engine_bm25:
            schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                         output_field_names=["sparse"]))
        plan = dense_plan(len(chunks), self.settings)
        index_params = client.prepare_index_params()
        index_params.add_index(field_name="dense", index_type=plan["index_type"], metric_type="IP",
                               params=plan.get("params", {}))
        index_params.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX",
                               metric_type="BM25" if engine_bm25 else "IP")
        name = self._create(number, schema, index_params)
        by_chunk: dict[int, list[list[int]]] = {}
        for cid, a, b in sentences.tolist():
            by_chunk.setdefault(cid, []).append([a, b])
        sparse = None if engine_bm25 else bm25_vectors([c.text for c in chunks])
        for i in range(0, len(chunks), INSERT_BATCH):
            if progress:
                progress("writing", i, len(chunks))
            rows = []
            for c in chunks[i:i + INSERT_BATCH]:
                if len(c.text.encode("utf-8", "surrogatepass")) > MAX_TEXT:
                    raise StoreUnavailableError(f"A chunk of {c.source} is longer than Milvus's {MAX_TEXT} bytes: "
                                                f"lower QA_CHUNK_TOKENS.")
                row = {"id": c.id, "source": c.source, "title": c.title[:1000], "start": c.start, "end": c.end,
                       "text": c.text, "sha256": c.sha256, "sentences": json.dumps(by_chunk.get(c.id, [])),
                       "dense": vectors[c.id].tolist()}
                if sparse is not None:
                    row["sparse"] = sparse[c.id]
                rows.append(row)
            client.insert(name, rows)
        client.flush(name)
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "generation": name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"), "docs_dir": str(docs_dir.resolve()),
            **core,
            "milvus": {"uri": self.uri, "collection": name, "bm25": "engine" if engine_bm25 else "qa", **plan},
            "counts": {"documents": len(core["files"]), "chunks": len(chunks), "sentences": len(sentences)},
        }
        text = json.dumps(manifest, ensure_ascii=False)
        pieces = [text[i:i + META_PIECE] for i in range(0, len(text), META_PIECE)] or [""]
        client.insert(f"{name}_meta", [{"piece": k, "unused": [0.0, 0.0], "text": t} for k, t in enumerate(pieces)])
        client.flush(f"{name}_meta")
        client.load_collection(name)
        previous = self.current()
        # The one atomic step that publishes the new generation.
        if previous is None:
            client.create_alias(name, self.alias)
        else:
            client.alter_alias(name, self.alias)
        self._current = name
        self._cleanup(name, previous)
        return name


def dense_plan(n: int, settings: Settings) -> dict[str, Any]:
    """Exact search below ``ann_min_chunks``, else IVF with 8-bit scalar quantisation (the local store's choice at
    that size is IVF-PQ fast scan, which Milvus Lite lacks)."""
    if n < settings.ann_min_chunks:
        return {"index_type": "FLAT"}
    nlist = int(2 ** round(math.log2(4 * math.sqrt(n))))
    return {"index_type": "IVF_SQ8", "params": {"nlist": nlist},
            "search_params": {"nprobe": max(1, round(nlist * settings.ann_probe_fraction))}}
