"""Building, incremental rebuilds, the on-disk format, and refusing indexes we cannot trust."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

import qa
from qa import index as ix
from qa import local_store
from qa.config import Settings

from . import fakes
from .conftest import SEEDS


def _gen_dir(index_dir: Path) -> Path:
    return index_dir / (index_dir / "CURRENT").read_text().strip()


def test_build_writes_plain_versioned_files(built):
    g = _gen_dir(built)
    assert sorted(p.name for p in g.iterdir()) == ["bm25", "chunk_offsets.npy", "chunk_spans.npy", "chunks.jsonl",
                                                   "embeddings.npy", "manifest.json", "sentence_vectors.npy",
                                                   "sentences.npy", "vectors.faiss"]
    m = json.loads((g / "manifest.json").read_text())
    sv = np.load(g / "sentence_vectors.npy", allow_pickle=False)
    assert sv.dtype == np.float16 and sv.shape == (m["counts"]["sentences"], 64) == (m["counts"]["sentence_vectors"], 64)
    assert np.allclose(np.linalg.norm(sv.astype(np.float32), axis=1), 1.0, atol=1e-2)  # one embedding per sentence
    assert m["format"] == "qa-index" and m["format_version"] == local_store.FORMAT_VERSION
    probe = m["embedder"].pop("probe")
    assert m["embedder"] == {"name": "fake", "dimension": 64, "max_tokens": 40}
    assert len(probe) == 64 and abs(sum(x * x for x in probe) - 1.0) < 1e-3  # the model's vector of PROBE_TEXT
    assert m["chunking"]["chunk_tokens"] == 200 and m["chunking"]["splitter"] == "pysbd"
    assert set(m["files"]) == {p.name for p in SEEDS.iterdir()}
    for f in m["files"].values():
        assert len(f["sha256"]) == 64 and f["chunks"] > 0
    lines = (g / "chunks.jsonl").read_text().splitlines()
    assert len(lines) == m["counts"]["chunks"] == sum(f["chunks"] for f in m["files"].values())
    assert m["faiss"]["type"] == "IndexFlatIP"  # a small corpus is searched exactly
    assert np.load(g / "embeddings.npy", allow_pickle=False).shape == (m["counts"]["chunks"], 64)
    assert np.load(g / "sentences.npy", allow_pickle=False).shape == (m["counts"]["sentences"], 3)
    offsets = np.load(g / "chunk_offsets.npy", allow_pickle=False)
    raw = (g / "chunks.jsonl").read_bytes()
    assert offsets[0] == 0 and offsets[-1] == len(raw) and len(offsets) == len(lines) + 1
    assert all(raw[offsets[i]:offsets[i + 1]].decode() == lines[i] + "\n" for i in range(len(lines)))
    spans = np.load(g / "chunk_spans.npy", allow_pickle=False)
    names = sorted(m["files"])
    for line, (s, a, b) in zip(lines, spans.tolist()):
        d = json.loads(line)
        assert (d["source"], d["start"], d["end"]) == (names[s], a, b)
    for npy in (g / "bm25").glob("*.npy"):
        np.load(npy, allow_pickle=False)  # raises if anything needed pickle
    for js in (g / "bm25").glob("*.json"):
        json.loads(js.read_text())


def test_chunks_index_the_files_exactly(built, docs):
    loaded = local_store.load_index(built)
    for c in loaded.chunks:
        assert (docs / c.source).read_text(encoding="utf-8")[c.start : c.end] == c.text
        assert fakes.HashEmbedder().count_tokens([c.text])[0] <= 40


def test_unchanged_rebuild_embeds_nothing_and_keeps_the_generation(docs, tmp_path, settings, embedder):
    first = qa.build_index(docs, tmp_path / "i", settings=settings)
    before = embedder.encoded
    again = qa.build_index(docs, tmp_path / "i", settings=settings)
    assert embedder.encoded == before
    assert again.chunks_embedded == 0 and not again.wrote and again.generation == first.generation
    assert again.unchanged == sorted(first.added) and not (again.added or again.changed or again.removed)


def test_incremental_changes(docs, tmp_path, settings, embedder):
    idx = tmp_path / "i"
    first = qa.build_index(docs, idx, settings=settings)
    munich = "002_0761b27352c754ab.txt"
    path = docs / munich
    path.write_text(path.read_text(encoding="utf-8") + "\n\nA zebra crossing was painted in Qamishli.\n", encoding="utf-8")
    (docs / "000_39ea33fba12f0460.txt").unlink()
    (docs / "new.md").write_text("# New\n\nPenguins guard the border of the zone.", encoding="utf-8")
    before = embedder.encoded
    st = qa.build_index(docs, idx, settings=settings)
    assert st.changed == [munich] and st.removed == ["000_39ea33fba12f0460.txt"] and st.added == ["new.md"]
    # Only chunks whose text changed are embedded (plus the manifest's one probe sentence): the edited file's
    # unchanged chunks are reused.
    assert 0 < st.chunks_embedded < first.chunks / 2
    # Sentences too: only those whose text is new (the edit's sentence, the new file's) are embedded.
    assert 0 < st.sentences_embedded < first.sentences / 4
    assert embedder.encoded - before - 1 <= st.chunks_embedded + st.sentences_embedded
    assert st.generation != first.generation
    hits = qa.search("zebra crossing Qamishli", k=3, index_dir=idx, settings=settings)
    assert hits[0].source == munich and "zebra" in hits[0].text
    assert qa.search("penguins guard", k=1, index_dir=idx, settings=settings)[0].source == "new.md"
    sources = {c.source for c in local_store.load_index(idx).chunks}
    assert "000_39ea33fba12f0460.txt" not in sources


def test_the_sentence_table_holds_every_sentence_once(built, docs):
    loaded = local_store.load_index(built)
    table = loaded.sentences
    assert table is not None and len(table) > len(loaded.chunks)
    assert len({(loaded.chunks[c].source, a) for c, a, _ in table.tolist()}) == len(table)  # each sentence once
    texts = []
    for cid, a, b in table.tolist():
        c = loaded.chunks[cid]
        assert c.start <= a < b <= c.end  # inside the chunk it names
        texts.append((docs / c.source).read_text(encoding="utf-8")[a:b])
        assert texts[-1] == c.text[a - c.start : b - c.start] and texts[-1] == texts[-1].strip()
    # Together the sentences cover every chunk's words: evidence can come from anywhere in the corpus.
    for c in loaded.chunks:
        inside = loaded.sentences_in(c.source, c.start, c.end)
        covered = "".join(c.text[a - c.start : b - c.start] for _, a, b in inside.tolist())
        assert "".join(c.text.split()) == "".join(covered.split())


def test_evidence_from_the_sentence_table_matches_splitting_at_query_time(built, settings, embedder):
    from qa.evidence import evidence_from
    from qa.search import search_many

    loaded = local_store.load_index(built)
    reader = fakes.FakeReader()
    for q in ("How many soldiers would European countries contribute?", "Who proposed the safe zone?",
              "What did Turkey want?", "Where would the zone be?"):
        passages = search_many(loaded, embedder, [q], settings.answer_passages, settings)[0]
        readings = reader.read(q, [p.text for p in passages])
        from_table = evidence_from(passages, readings, loaded)
        at_query_time = evidence_from(passages, readings)
        assert from_table == at_query_time and from_table


def test_an_index_from_before_the_sentence_table_still_answers_and_gains_it_on_rebuild(built, docs, settings, embedder):
    g = _gen_dir(built)
    (g / "sentences.npy").unlink()
    (g / "sentence_vectors.npy").unlink()
    m = json.loads((g / "manifest.json").read_text())
    del m["counts"]["sentences"], m["sentence_table"], m["counts"]["sentence_vectors"], m["sentence_vectors"]
    (g / "manifest.json").write_text(json.dumps(m))
    local_store._LOADED.clear()
    old = local_store.load_index(built)
    assert old.sentences is None and len(old.sentences_in(old.chunks[0].source, 0, 10**9)) == 0
    a = qa.answer("How many soldiers would European countries contribute?", index_dir=built, settings=settings)
    assert a.citations or a.abstained  # the query-time path still works
    st = qa.build_index(docs, built, settings=settings)
    assert st.wrote and st.chunks_embedded == 0 and st.sentences > st.chunks
    assert local_store.load_index(built).sentences is not None
    assert local_store.load_index(built).sentence_vectors.shape == (st.sentences, 64)


def test_duplicate_content_is_stored_once(docs, tmp_path, settings):
    (docs / "copy.txt").write_bytes((docs / "001_10b1e96f4f38a7ef.txt").read_bytes())
    st = qa.build_index(docs, tmp_path / "i", settings=settings)
    assert {s.source: s.reason for s in st.skipped}["copy.txt"] == "same content as 001_10b1e96f4f38a7ef.txt (indexed once)"
    sources = [c.source for c in local_store.load_index(tmp_path / "i").chunks]
    assert "copy.txt" not in sources
    assert local_store.read_manifest(tmp_path / "i")["duplicates"] == {"copy.txt": "001_10b1e96f4f38a7ef.txt"}


def test_empty_corpus_keeps_the_old_index(docs, tmp_path, settings):
    idx = tmp_path / "i"
    qa.build_index(docs, idx, settings=settings)
    gen = (idx / "CURRENT").read_text()
    for p in docs.iterdir():
        p.unlink()
    (docs / "junk.bin").write_bytes(b"\x00")
    with pytest.raises(qa.EmptyCorpusError, match="previous index was kept"):
        qa.build_index(docs, idx, settings=settings)
    assert (idx / "CURRENT").read_text() == gen
    assert local_store.load_index(idx).chunks


def test_missing_index_is_explained(tmp_path, settings):
    with pytest.raises(qa.IndexMissingError, match="qa index"):
        qa.search("anything", index_dir=tmp_path / "nowhere", settings=settings)


def test_default_index_is_built_from_the_seeds(tmp_path, monkeypatch, settings):
    monkeypatch.chdir(tmp_path)  # no seeds/ here: falls back to the project's own seeds
    hits = qa.search("How many soldiers would European countries contribute?", settings=settings)
    assert (tmp_path / "index" / "CURRENT").exists()
    assert hits and all(h.source in {p.name for p in SEEDS.iterdir()} for h in hits)


def test_stale_index_refreshes_before_a_query(built, docs, settings):
    (docs / "later.txt").write_text("Later article about flamingos nesting near Manbij.", encoding="utf-8")
    ix._LAST_CHECK.clear()
    assert qa.search("flamingos nesting", k=1, index_dir=built, settings=settings)[0].source == "later.txt"


def test_index_from_another_embedder_is_refused(built, settings):
    fakes.register("other")
    with pytest.raises(qa.IndexMismatchError, match="qa index"):
        qa.search("soldiers", index_dir=built, settings=Settings(embedder="other", progress=False))


def test_index_with_another_dimension_is_refused(built, settings):
    fakes.register("fake", dimension=32)  # same name, different model shape
    with pytest.raises(qa.IndexMismatchError, match="64-d"):
        qa.search("soldiers", index_dir=built, settings=settings)


def test_index_from_a_model_with_the_same_name_and_dimension_but_other_weights_is_refused(built, settings):
    class Retrained(fakes.HashEmbedder):
        def encode(self, texts):
            return super().encode([t[::-1] for t in texts])  # same name, same dimension, different vectors

    emb = Retrained(name="fake")
    qa.register_embedder("fake", lambda s: emb)
    before = {p: p.read_bytes() for p in built.rglob("*") if p.is_file()}
    for call in (lambda: qa.search("soldiers", index_dir=built, settings=settings),
                 lambda: qa.answer("How many soldiers?", index_dir=built, settings=settings)):
        with pytest.raises(qa.IndexMismatchError, match="weights have changed. Delete .* and build it again"):
            call()
    assert {p: p.read_bytes() for p in built.rglob("*") if p.is_file()} == before  # refused, nothing lost


def test_another_embedder_is_refused_by_the_cli_with_one_line(built, settings, monkeypatch, capsys):
    from qa import cli

    fakes.register("other", dimension=32)
    monkeypatch.setenv("QA_EMBEDDER", "other")
    assert cli.main(["ask", "How many soldiers?", "--index", str(built)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: The index at") and "'fake'" in err and "qa index" in err and err.count("\n") == 1


def test_changed_chunking_settings_rebuild_everything(docs, tmp_path, settings, embedder):
    first = qa.build_index(docs, tmp_path / "i", settings=settings)
    st = qa.build_index(docs, tmp_path / "i", settings=Settings(embedder="fake", chunk_tokens=20, progress=False))
    assert st.chunks > first.chunks and st.chunks_reused < st.chunks


@pytest.mark.parametrize("damage", ["truncate_chunks", "drop_vectors", "garbage_current", "bad_manifest", "old_format",
                                    "truncate_sentences"])
def test_damaged_index_is_refused_clearly(built, docs, settings, damage):
    g = _gen_dir(built)
    if damage == "truncate_chunks":
        lines = (g / "chunks.jsonl").read_text().splitlines(keepends=True)
        (g / "chunks.jsonl").write_text("".join(lines[:-2]))
    elif damage == "drop_vectors":
        (g / "vectors.faiss").unlink()
    elif damage == "garbage_current":
        (built / "CURRENT").write_text("../../etc\n")
    elif damage == "bad_manifest":
        (g / "manifest.json").write_text("{not json")
    elif damage == "truncate_sentences":
        np.save(g / "sentences.npy", np.load(g / "sentences.npy")[:-3], allow_pickle=False)
    elif damage == "old_format":
        m = json.loads((g / "manifest.json").read_text())
        m["format_version"] = 0
        (g / "manifest.json").write_text(json.dumps(m))
    local_store._LOADED.clear()
    expected = qa.IndexMismatchError if damage == "old_format" else qa.IndexCorruptError
    with pytest.raises(expected, match="qa index"):
        qa.search("soldiers", index_dir=built, settings=Settings(embedder="fake", auto_refresh=False, progress=False, rerank=0))
    # and the rebuild the message asks for repairs it
    qa.build_index(docs, built, settings=settings)
    assert qa.search("soldiers", index_dir=built, settings=settings)


def test_a_second_build_waits_for_the_first(docs, tmp_path, settings):
    fakes.register("fake", delay=0.3)
    idx = tmp_path / "i"
    results, errors = [], []

    def run():
        try:
            results.append(qa.build_index(docs, idx, settings=settings))
        except Exception as e:  # pragma: no cover - the assertion below shows it
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.wrote for r in results) == [False, True], "the second build found the first one's work"


def test_a_build_that_cannot_get_the_lock_says_so(docs, tmp_path):
    idx = tmp_path / "i"
    idx.mkdir()
    with FileLock(str(idx / ".lock")):
        with pytest.raises(qa.IndexBusyError, match="QA_LOCK_TIMEOUT_S"):
            qa.build_index(docs, idx, settings=Settings(embedder="fake", lock_timeout_s=0.2, progress=False))


def test_old_generations_are_cleaned_up(docs, tmp_path, settings):
    idx = tmp_path / "i"
    for i in range(4):
        (docs / f"extra{i}.txt").write_text(f"Extra article number {i}.", encoding="utf-8")
        qa.build_index(docs, idx, settings=settings)
    gens = sorted(p.name for p in idx.iterdir() if p.name.startswith("v"))
    assert len(gens) == 2 and (idx / "CURRENT").read_text().strip() == gens[-1]


def test_dense_index_type_is_chosen_by_size():
    s = Settings(ann_min_chunks=20_000, ann_probe_fraction=0.25)
    assert local_store.dense_index_plan(19_999, 384, s)["factory"] == "Flat"
    big = local_store.dense_index_plan(100_000, 384, s)
    assert big["factory"] == "IVF1024,PQ128x4fs,Refine(SQ8)" and big["nprobe"] == 256
    huge = local_store.dense_index_plan(1_000_000, 384, s)
    assert huge["nlist"] == 4096 and huge["nprobe"] == 1024 and huge["train_size"] == 50 * 4096
    assert local_store.dense_index_plan(100_000, 768, s)["factory"] == "IVF1024,PQ256x4fs,Refine(SQ8)"


def test_an_approximate_index_is_built_loaded_and_searched(tmp_path, settings):
    """Force the IVF path on a small corpus: the index must come back tuned and find what exact search finds."""
    docs = tmp_path / "docs"
    docs.mkdir()
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(400)]
    for i in range(60):
        (docs / f"a{i:02d}.txt").write_text(". ".join(" ".join(rng.choice(words, 12)) for _ in range(30)) + ".")
    s = Settings(**{**settings.__dict__, "ann_min_chunks": 50, "ann_probe_fraction": 1.0})
    stats = qa.build_index(docs, tmp_path / "i", settings=s)
    loaded = local_store.load_index(tmp_path / "i")
    plan = loaded.manifest["faiss"]
    assert stats.chunks >= 50 and plan["type"] == "IVF-PQfastscan-refine"
    import faiss

    assert faiss.extract_index_ivf(loaded.faiss_index).nprobe == plan["nlist"]  # tuned again after loading
    vecs = np.load(loaded.path / "embeddings.npy")
    exact = faiss.IndexFlatIP(vecs.shape[1])
    exact.add(vecs)
    _, want = exact.search(vecs[:20], 5)
    _, got = loaded.faiss_index.search(vecs[:20], 5)
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(want, got)]) >= 0.9
    # An incremental rebuild reuses the exact float vectors, not the quantised codes.
    (docs / "a00.txt").write_text("something new entirely. w1 w2 w3.")
    again = qa.build_index(docs, tmp_path / "i", settings=s)
    assert again.chunks_reused > 0
    vecs2 = np.load(local_store.load_index(tmp_path / "i").path / "embeddings.npy")
    kept = {c.sha256: c.id for c in loaded.chunks}
    for c in local_store.load_index(tmp_path / "i").chunks:
        if c.sha256 in kept:
            assert np.array_equal(vecs2[c.id], vecs[kept[c.sha256]])


def test_a_generation_without_the_chunk_offsets_still_loads(built):
    g = _gen_dir(built)
    before = list(local_store.load_index(built).chunks)
    (g / "chunk_offsets.npy").unlink()
    (g / "chunk_spans.npy").unlink()
    local_store._LOADED.clear()
    loaded = local_store.load_index(built)
    assert list(loaded.chunks) == before and loaded.chunks_of(before[0].source)[0] == before[0]


def test_an_index_from_before_the_sentence_vectors_still_searches_and_gains_them_on_rebuild(built, docs, settings):
    g = _gen_dir(built)
    (g / "sentence_vectors.npy").unlink()
    m = json.loads((g / "manifest.json").read_text())
    del m["counts"]["sentence_vectors"], m["sentence_vectors"]
    (g / "manifest.json").write_text(json.dumps(m))
    local_store._LOADED.clear()
    old = local_store.load_index(built)
    assert old.sentence_vectors is None and old.sentences is not None
    assert qa.search("How many soldiers would European countries contribute?", k=3, index_dir=built,
                     settings=settings)  # searched by dense and BM25 alone
    st = qa.build_index(docs, built, settings=settings)
    texts = {(docs / old.chunks[int(cid)].source).read_text(encoding="utf-8")[a:b] for cid, a, b in old.sentences}
    assert st.wrote and st.chunks_embedded == 0 and st.sentences_embedded == len(texts) > 0  # each text once
    assert local_store.load_index(built).sentence_vectors.shape == (st.sentences, 64)
    again = qa.build_index(docs, built, settings=settings)
    assert not again.wrote and again.sentences_embedded == 0


def test_sentence_vectors_that_do_not_match_the_sentence_table_are_refused(built):
    g = _gen_dir(built)
    sv = np.load(g / "sentence_vectors.npy", allow_pickle=False)
    np.save(g / "sentence_vectors.npy", sv[:-1], allow_pickle=False)
    local_store._LOADED.clear()
    with pytest.raises(qa.IndexCorruptError, match="sentence vectors .* do not match its sentence table. Rebuild"):
        local_store.load_index(built)


def test_with_the_sentence_ranking_off_no_sentence_is_embedded(docs, tmp_path, settings):
    from dataclasses import replace

    st = qa.build_index(docs, tmp_path / "i", settings=replace(settings, sentence_weight=0.0))
    assert st.sentences > 0 and st.sentences_embedded == 0
    assert not (_gen_dir(tmp_path / "i") / "sentence_vectors.npy").exists()
    assert local_store.load_index(tmp_path / "i").sentence_vectors is None
    on = qa.build_index(docs, tmp_path / "i", settings=settings)  # turned on: the sentences embedded, chunks kept
    assert on.wrote and on.chunks_embedded == 0 and on.sentences_embedded > 0


def test_the_default_index_gains_sentence_vectors_once(tmp_path, monkeypatch, settings):
    monkeypatch.chdir(tmp_path)
    q = "How many soldiers would European countries contribute?"
    qa.search(q, settings=settings)
    g = _gen_dir(tmp_path / "index")
    (g / "sentence_vectors.npy").unlink()
    m = json.loads((g / "manifest.json").read_text())
    del m["counts"]["sentence_vectors"], m["sentence_vectors"]
    (g / "manifest.json").write_text(json.dumps(m))
    local_store._LOADED.clear()
    assert local_store.load_index(tmp_path / "index").sentence_vectors is None  # as built before them
    assert qa.search(q, settings=settings)
    now = local_store.load_index(tmp_path / "index")
    assert now.generation != g.name and now.sentence_vectors is not None
