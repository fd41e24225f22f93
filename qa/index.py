"""Building an index and keeping it fresh, in either store: read the documents, chunk them, embed only what
changed, and hand the result to the store (qa/local_store.py: files; qa/milvus.py: Milvus) under its build lock.

The default index builds itself from the seeds on first use, and any index follows its documents when they change.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import chunking, documents
from .chunking import Chunk
from .config import PROJECT_ROOT, Settings, default_docs_dir
from .embeddings import Embedder, embedder_name, get_embedder
from .errors import EmptyCorpusError, IndexBusyError, IndexMismatchError, IndexMissingError
from .local_store import DEFAULT_INDEX_DIR, LoadedIndex, LocalStore, Progress, dense_index_plan, missing_message

if TYPE_CHECKING:  # numpy is imported where it runs, so that `import qa` stays light
    import numpy as np

log = logging.getLogger("qa")


@dataclass(frozen=True)
class BuildStats:
    """What a build did; ``str()`` is the summary the CLI prints."""

    index_dir: str
    docs_dir: str
    generation: str
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[documents.Skipped] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    sentences: int = 0
    sentences_embedded: int = 0  # sentences whose text no earlier generation had a vector for
    seconds: float = 0.0
    wrote: bool = True  # False when nothing changed and the live generation was kept

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped"] = [{"source": s.source, "reason": s.reason} for s in self.skipped]
        return d

    def __str__(self) -> str:
        lines = [
            f"Indexed {self.documents} document(s) from {self.docs_dir} into {self.index_dir} "
            f"({self.generation}{'' if self.wrote else ', unchanged'})",
        ]
        for label, items in (("added", self.added), ("changed", self.changed), ("removed", self.removed)):
            lines.append(f"  {label}: {len(items)}" + (f"  ({', '.join(items[:10])}{' ...' if len(items) > 10 else ''})" if items else ""))
        lines.append(f"  unchanged: {len(self.unchanged)}")
        lines.append(f"  skipped: {len(self.skipped)}")
        for s in self.skipped[:50]:
            lines.append(f"    {s.source}: {s.reason}")
        if len(self.skipped) > 50:
            lines.append(f"    ... and {len(self.skipped) - 50} more")
        lines.append(
            f"  chunks: {self.chunks} total, {self.chunks_embedded} embedded, {self.chunks_reused} reused"
        )
        lines.append(f"  sentences: {self.sentences}, {self.sentences_embedded} embedded")
        lines.append(f"  seconds: {self.seconds:.2f}")
        return "\n".join(lines)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


# A fixed sentence whose vector the manifest records: a model with the same name and dimension but other weights
# (a local folder whose files were replaced, say) is recognised by embedding it again.
PROBE_TEXT = "qa probe: a buffer zone along the border, guarded by about 1,500 soldiers."
PROBE_MIN_SIMILARITY = 0.9  # the same model gives 1.0 (int8 and float builds differ in name, not here)


def embedder_probe(embedder: Embedder) -> list[float]:
    return [round(float(x), 6) for x in embedder.encode([PROBE_TEXT])[0]]


def check_embedder(loaded: LoadedIndex, embedder: Embedder, index_dir: str | Path) -> None:
    """Refuse to search an index with vectors from another model: the scores would be meaningless."""
    import numpy as np
    if loaded.embedder_name != embedder.name:
        raise IndexMismatchError(
            f"The index at {index_dir} was built with embedder {loaded.embedder_name!r} but the current setting "
            f"is {embedder.name!r}. Rebuild with `qa index --index {index_dir}` (or set QA_EMBEDDER="
            f"{loaded.embedder_name})."
        )
    if loaded.dimension != embedder.dimension:
        raise IndexMismatchError(
            f"The index at {index_dir} holds {loaded.dimension}-d vectors but {embedder.name!r} makes "
            f"{embedder.dimension}-d ones. Rebuild with `qa index --index {index_dir}`."
        )
    probe = loaded.manifest["embedder"].get("probe")
    if probe is not None:
        similarity = float(np.dot(np.asarray(probe, dtype=np.float32), _probe_vector(embedder)))
        if similarity < PROBE_MIN_SIMILARITY:
            # An incremental build would keep the old vectors (same name), so only a fresh folder helps.
            raise IndexMismatchError(
                f"The index at {index_dir} was built with a model named {loaded.embedder_name!r} whose vectors differ "
                f"from the current model's of that name (similarity {similarity:.2f} on a test sentence): its "
                f"weights have changed. Delete {index_dir} and build it again with `qa index --index {index_dir}`."
            )


def _probe_vector(embedder: Embedder) -> np.ndarray:
    """The embedder's vector of PROBE_TEXT, computed once per embedder object (kept on it), not per query."""
    vec = getattr(embedder, "_qa_probe_vector", None)
    if vec is None:
        vec = embedder.encode([PROBE_TEXT])[0]
        try:
            embedder._qa_probe_vector = vec
        except AttributeError:  # a frozen or slotted embedder: recompute next time
            pass
    return vec


# ---------------------------------------------------------------------------------------------------------------
# Build


def build_index(
    docs_dir: str | Path = "seeds",
    index_dir: str | Path = DEFAULT_INDEX_DIR,
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
    wait: bool = True,
) -> BuildStats:
    """(Re)build the index of ``docs_dir`` in ``index_dir``, re-embedding only what changed.

    ``index_dir`` is a folder with the local store, and names the collection with a Milvus store
    (``Settings.store``; see qa/milvus.py). Only one build runs per index at a time; a second one waits for it
    (up to ``lock_timeout_s``) and then finds little or nothing left to do. With ``wait=False`` it raises
    IndexBusyError at once instead.
    """
    settings = settings or Settings.from_env()
    t0 = time.perf_counter()
    store = open_store(index_dir, settings)
    documents.scan(docs_dir)  # fails early, before any lock, on a missing folder
    with store.lock(settings, wait, progress):
        files, skipped = documents.scan(docs_dir)  # again: the folder may have changed while we waited
        return _build_locked(Path(docs_dir), store, files, skipped, settings, progress, t0)


def open_store(index_dir: str | Path, settings: Settings):
    """The store ``Settings.store`` names, for ``index_dir``: LocalStore (files) or MilvusStore."""
    if settings.store in ("", "local"):
        return LocalStore(Path(index_dir))
    from .milvus import MilvusStore

    return MilvusStore(settings.store, index_dir, settings)


def _old_state(store, settings: Settings):
    """The live index, if its chunks and vectors can be reused under the current settings.

    Decided from the manifest alone, so that an unchanged rebuild never loads the embedding model.
    """
    try:
        old = store.previous()
        if old is None:
            return None
    except Exception as e:  # a broken old index is simply not reused
        log.warning("Not reusing the existing index at %s: %s", store.label, e)
        return None
    m = old.manifest
    same = m["embedder"]["name"] == embedder_name(settings) and m["chunking"] == _chunking_params(
        settings, m["embedder"]["max_tokens"]
    )
    return old if same else None


def _chunking_params(settings: Settings, max_tokens: int) -> dict[str, Any]:
    return {**settings.chunking_params(), "max_tokens": max_tokens, "splitter": "pysbd"}


def _build_locked(docs_dir, store, files, skipped, settings, progress, t0) -> BuildStats:
    import numpy as np
    embedder = get_embedder(settings)  # a lazy wrapper: the model loads only if something needs chunking
    old = _old_state(store, settings)
    old_files: dict[str, dict] = old.manifest["files"] if old else {}
    old_by_source: dict[str, list[Chunk]] = {}
    old_vectors_by_hash: dict[str, np.ndarray] = {}
    old_sentences_by_source: dict[str, list[tuple[int, int]]] = {}
    old_sentence_vectors_by_hash: dict[str, np.ndarray] = {}
    # Every sentence embedded too (for search's sentence ranking) costs index time: 1.75x on doc2dial's 146 pages.
    keep_sentence_vectors = getattr(store, "keeps_sentence_vectors", False) and settings.sentence_weight > 0
    if old is not None:
        vecs = store.old_vectors(old)
        old_chunk: dict[int, Chunk] = {}
        for c in old.chunks:
            old_by_source.setdefault(c.source, []).append(c)
            old_vectors_by_hash[c.sha256] = vecs[c.id]
            old_chunk[c.id] = c
        if old.sentences is not None:
            old_sv = getattr(old, "sentence_vectors", None) if keep_sentence_vectors else None
            for i, (cid, a, b) in enumerate(old.sentences.tolist()):
                c = old_chunk[cid]
                old_sentences_by_source.setdefault(c.source, []).append((a, b))
                if old_sv is not None:
                    old_sentence_vectors_by_hash[_sha256(c.text[a - c.start:b - c.start])] = old_sv[i]

    # Read (hash) every file; extract and chunk only the new or changed ones.
    skipped = list(skipped)
    seen_hash: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    file_entries: dict[str, dict] = {}
    per_source: dict[str, list[tuple[int, int, str, str]]] = {}  # source -> [(start, end, text, title)]
    sentence_spans: dict[str, list[tuple[int, int]]] = {}  # source -> its sentences (pieces within the budget)
    budget = None  # the sentence budget, known once the embedder is
    added, changed, unchanged = [], [], []
    max_bytes = int(settings.max_file_mb * 1_000_000)
    scanned = {f.source: [f.size, f.mtime_ns] for f in files}
    for i, info in enumerate(files):
        if progress:
            progress("reading and chunking", i, len(files))
        if info.size > max_bytes:
            skipped.append(documents.Skipped(info.source, f"too large ({info.size / 1e6:.1f} MB > {settings.max_file_mb:g} MB; raise QA_MAX_FILE_MB)"))
            continue
        try:
            sha = hashlib.sha256(info.path.read_bytes()).hexdigest()
        except OSError as e:
            skipped.append(documents.Skipped(info.source, f"cannot read: {e.strerror or e}"))
            continue
        if sha in seen_hash:
            duplicates[info.source] = seen_hash[sha]
            skipped.append(documents.Skipped(info.source, f"same content as {seen_hash[sha]} (indexed once)"))
            continue
        prev = old_files.get(info.source)
        if prev is not None and prev["sha256"] == sha and info.source in old_by_source:
            seen_hash[sha] = info.source
            unchanged.append(info.source)
            per_source[info.source] = [(c.start, c.end, c.text, c.title) for c in old_by_source[info.source]]
            file_entries[info.source] = {**prev, "size": info.size, "mtime_ns": info.mtime_ns}
            if info.source in old_sentences_by_source:
                sentence_spans[info.source] = old_sentences_by_source[info.source]
                continue
            # An index from before the sentence table: split this unchanged file again (its chunks stay).
            doc = documents.read(info, max_bytes)
            if not isinstance(doc, documents.Skipped) and doc.sha256 == sha:
                budget = budget or chunking.sentence_budget(settings.chunk_tokens, embedder.max_tokens)
                sentence_spans[info.source] = [(x.start, x.end) for x in
                                               chunking.split_spans(doc.text, embedder.count_tokens, budget)]
            continue
        doc = documents.read(info, max_bytes)
        if isinstance(doc, documents.Skipped):
            skipped.append(doc)
            continue
        seen_hash[doc.sha256] = doc.source
        (changed if prev is not None else added).append(doc.source)
        budget = budget or chunking.sentence_budget(settings.chunk_tokens, embedder.max_tokens)
        sents = chunking.split_spans(doc.text, embedder.count_tokens, budget)
        sentence_spans[doc.source] = [(x.start, x.end) for x in sents]
        spans = chunking.chunk_spans(
            doc.text, embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap_tokens, embedder.max_tokens,
            spans=sents,
        )
        per_source[doc.source] = [(a, b, doc.text[a:b], doc.title) for a, b in spans]
        file_entries[doc.source] = {
            "sha256": doc.sha256, "title": doc.title, "size": info.size, "mtime_ns": info.mtime_ns,
            "chars": len(doc.text), "chunks": len(spans),
            "indexed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    if progress:
        progress("reading and chunking", len(files), len(files))
    removed = sorted(s for s in old_files if s not in file_entries)
    if not file_entries:
        reasons = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:5]) or "the folder is empty"
        raise EmptyCorpusError(
            f"No readable document in {str(docs_dir)!r} ({reasons}). Add .txt, .md, .html or .pdf files and run "
            f"`qa index` again." + (" The previous index was kept." if old is not None else "")
        )

    # Assemble chunks in a stable order; embed only texts we have no vector for.
    chunks: list[Chunk] = []
    for source in sorted(per_source):
        for start, end, text, title in per_source[source]:
            chunks.append(Chunk(len(chunks), source, title, start, end, text, _sha256(text)))
    todo = [c for c in chunks if c.sha256 not in old_vectors_by_hash]
    todo_hashes = list(dict.fromkeys(c.sha256 for c in todo))
    text_of = {c.sha256: c.text for c in todo}
    sentences = _sentence_table(chunks, sentence_spans)
    new_vectors = _embed(embedder, todo_hashes, text_of, settings, progress)
    sentence_vectors = None
    if keep_sentence_vectors:
        sentence_hashes, sentence_text = [], {}
        for cid, a, b in sentences.tolist():
            c = chunks[cid]
            text = c.text[a - c.start:b - c.start]
            sentence_hashes.append(h := _sha256(text))
            if h not in old_sentence_vectors_by_hash:
                sentence_text[h] = text
        fresh = _embed(embedder, list(sentence_text), sentence_text, settings, progress, "embedding sentences")

    if old is not None and not todo_hashes:
        embedder_info = old.manifest["embedder"]
    else:
        embedder_info = {"name": embedder.name, "dimension": embedder.dimension, "max_tokens": embedder.max_tokens,
                         "probe": embedder_probe(embedder)}
    if keep_sentence_vectors:
        sentence_vectors = np.zeros((len(sentences), embedder_info["dimension"]), dtype=np.float32)
        for i, h in enumerate(sentence_hashes):
            sentence_vectors[i] = fresh[h] if h in fresh else old_sentence_vectors_by_hash[h]
    manifest_core = {
        "embedder": embedder_info,
        "sentence_table": 1,  # generations without one are rewritten once to gain it
        **({"sentence_vectors": 1} if keep_sentence_vectors else {}),  # the same for the sentence vectors
        "faiss": dense_index_plan(len(chunks), embedder_info["dimension"], settings),
        "chunking": _chunking_params(settings, embedder_info["max_tokens"]),
        "files": file_entries,
        "duplicates": duplicates,
        "skipped": [{"source": s.source, "reason": s.reason} for s in skipped],
        "scanned": scanned,
    }
    stats_kw = dict(
        index_dir=store.label, docs_dir=str(docs_dir), added=added, changed=changed, removed=removed,
        unchanged=unchanged, skipped=skipped, documents=len(file_entries), chunks=len(chunks),
        chunks_embedded=len(todo_hashes), chunks_reused=len(chunks) - len(todo),
        sentences=len(sentences), sentences_embedded=len(fresh) if keep_sentence_vectors else 0,
    )
    if old is not None and not (added or changed or removed) and all(
        old.manifest.get(k) == v for k, v in manifest_core.items()
    ):
        store.keep(old)
        return BuildStats(generation=old.generation, seconds=time.perf_counter() - t0, wrote=False, **stats_kw)

    vectors = np.zeros((len(chunks), embedder_info["dimension"]), dtype=np.float32)
    for c in chunks:
        vectors[c.id] = new_vectors[c.sha256] if c.sha256 in new_vectors else old_vectors_by_hash[c.sha256]
    if progress:
        progress("writing", 0, len(chunks))
    gen = store.write(docs_dir, chunks, vectors, manifest_core, sentences, progress,
                      sentence_vectors=sentence_vectors)
    if progress:
        progress("writing", len(chunks), len(chunks))
    return BuildStats(generation=gen, seconds=time.perf_counter() - t0, **stats_kw)


def _sentence_table(chunks: list[Chunk], spans: dict[str, list[tuple[int, int]]]) -> np.ndarray:
    """Each sentence once, as (id of the first chunk that holds it, start, end)."""
    import numpy as np
    rows: list[tuple[int, int, int]] = []
    by_source: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_source.setdefault(c.source, []).append(c)
    for source, cs in by_source.items():
        cs = sorted(cs, key=lambda c: c.start)
        i = 0
        for a, b in sorted(set(spans.get(source, []))):
            while i < len(cs) and cs[i].end < b:  # chunks are sorted by start and by end alike
                i += 1
            if i < len(cs) and cs[i].start <= a:
                rows.append((cs[i].id, a, b))
    rows.sort()
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _embed(embedder: Embedder, hashes: list[str], text_of: dict[str, str], settings: Settings,
           progress: Progress | None, stage: str = "embedding") -> dict[str, np.ndarray]:
    """Vectors for the given texts, by text hash, reported batch by batch to ``progress``."""
    out: dict[str, np.ndarray] = {}
    batch = max(1, settings.embed_batch_size * 8)
    for i in range(0, len(hashes), batch):
        if progress:
            progress(stage, i, len(hashes))
        hs = hashes[i : i + batch]
        out.update(zip(hs, embedder.encode([text_of[h] for h in hs])))
    if progress and hashes:
        progress(stage, len(hashes), len(hashes))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Keep fresh: the default index builds itself, and any index follows its documents when they change.

_LAST_CHECK: dict[str, float] = {}
FRESHNESS_CHECK_EVERY_S = 2.0


def is_default_index(index_dir: str | Path) -> bool:
    p = Path(index_dir)
    return p.resolve() in {Path(DEFAULT_INDEX_DIR).resolve(), (PROJECT_ROOT / DEFAULT_INDEX_DIR).resolve()}


def is_stale(index_dir: str | Path, settings: Settings | None = None) -> bool:
    """True when the documents folder recorded in the manifest no longer matches what was indexed (by stat)."""
    manifest = open_store(index_dir, settings or Settings.from_env()).manifest()
    docs = Path(manifest.get("docs_dir", ""))
    if not docs.is_dir():
        return False
    files, _ = documents.scan(docs)
    return {f.source: [f.size, f.mtime_ns] for f in files} != manifest.get("scanned")


def has_index(index_dir: str | Path, settings: Settings | None = None) -> bool:
    return open_store(index_dir, settings or Settings.from_env()).current() is not None


def live_manifest(index_dir: str | Path, settings: Settings | None = None) -> dict[str, Any]:
    """The live index's manifest (files, embedder, counts) in whichever store ``settings`` names."""
    return open_store(index_dir, settings or Settings.from_env()).manifest()


def ensure_index(index_dir: str | Path = DEFAULT_INDEX_DIR, settings: Settings | None = None) -> LoadedIndex:
    """Load the index, building the default one from the seeds when missing and refreshing a stale one."""
    settings = settings or Settings.from_env()
    store = open_store(index_dir, settings)
    if store.current() is None:
        if not is_default_index(index_dir):
            raise IndexMissingError(missing_message(index_dir))
        docs = default_docs_dir()
        log.warning("No index at %s yet: building it from %s (once).", store.label, docs)
        build_index(docs, index_dir, settings=settings)
        store = open_store(index_dir, settings)  # a fresh look at what the build published
    elif is_default_index(index_dir) and store.load().manifest["embedder"]["name"] != embedder_name(settings):
        # Our own default index follows the configured embedder; any other index is refused with a message. (The
        # loaded manifest, cached per generation: reading manifest.json, or querying Milvus, on every question
        # cost a file read and a JSON parse per query.)
        docs = store.manifest().get("docs_dir") or default_docs_dir()
        log.warning("The index at %s was built with another embedder: rebuilding it from %s.", store.label, docs)
        build_index(docs, index_dir, settings=settings)
        store = open_store(index_dir, settings)
    elif (is_default_index(index_dir) and settings.sentence_weight > 0 and getattr(store, "keeps_sentence_vectors",
                                                                                   False)
          and store.load().sentence_vectors is None):
        # Our default index, built before sentence vectors: gain them (chunks are reused), so that its answers are
        # searched as the confidence model was fitted. Any other index searches without them until `qa index`.
        docs = store.manifest().get("docs_dir") or default_docs_dir()
        log.warning("The index at %s has no sentence vectors: adding them (once).", store.label)
        build_index(docs, index_dir, settings=settings)
        store = open_store(index_dir, settings)
    elif settings.auto_refresh:
        key = f"{settings.store}|{Path(index_dir).resolve()}"
        now = time.monotonic()
        if now - _LAST_CHECK.get(key, -1e9) >= FRESHNESS_CHECK_EVERY_S:
            _LAST_CHECK[key] = now
            try:
                if is_stale(index_dir, settings):
                    docs = store.manifest()["docs_dir"]
                    log.warning("Documents in %s changed: updating the index at %s.", docs, store.label)
                    build_index(docs, index_dir, settings=settings, wait=False)
                    store = open_store(index_dir, settings)
            except IndexBusyError:
                # Someone else is rebuilding: answer from the live generation rather than make the question wait.
                _LAST_CHECK[key] = now - FRESHNESS_CHECK_EVERY_S / 2  # and look again soon
            except EmptyCorpusError as e:
                log.warning("Keeping the existing index: %s", e)
    return store.load()

