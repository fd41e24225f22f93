"""A build killed half-way (SIGKILL, no cleanup) leaves the previous index loadable and whole."""

import os
import random
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import qa
from qa import local_store

from .conftest import ROOT

CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from tests import fakes
    import qa
    from qa import local_store
    from qa.config import Settings

    docs, idx, mode, n, delay = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    fakes.register("fake", delay=delay)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if mode == "write":  # die in the middle of the n-th file write, leaving it half written
        real, calls = local_store._write_bytes, [0]
        def write(path, data):
            calls[0] += 1
            if calls[0] == n:
                with open(path, "wb") as f:
                    f.write(data[: len(data) // 2])
                die()
            real(path, data)
        local_store._write_bytes = write
    elif mode == "before_current":  # the new generation is complete but not yet published
        real_atomic = local_store._atomic_write_text
        local_store._atomic_write_text = lambda path, text: die()
    elif mode == "before_cleanup":  # published, old generations not yet removed
        local_store._cleanup = lambda *a, **k: die()
    print("started", flush=True)
    qa.build_index(docs, idx, settings=Settings(embedder="fake", progress=False))
""").format(root=str(ROOT))


def _child(docs, idx, mode, n=0, delay=0.0):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(docs), str(idx), mode, str(n), str(delay)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _state(idx):
    """'old' or 'new', after checking the live generation loads and is internally consistent."""
    local_store._LOADED.clear()
    loaded = local_store.load_index(idx)  # raises on any inconsistency
    sources = {c.source for c in loaded.chunks}
    assert sources == set(loaded.manifest["files"])
    return "new" if "new.txt" in sources else "old"


@pytest.fixture
def old_index(docs, tmp_path, settings):
    idx = tmp_path / "index"
    qa.build_index(docs, idx, settings=settings)
    (docs / "new.txt").write_text("A new article about wombats in the safe zone. " * 30, encoding="utf-8")
    return idx


@pytest.mark.parametrize("n", [1, 2, 3])
def test_killed_while_writing_files(docs, old_index, n):
    p = _child(docs, old_index, "write", n)
    p.wait(timeout=120)
    assert p.returncode == -9, p.stderr
    assert _state(old_index) == "old"


def test_killed_before_publishing(docs, old_index):
    p = _child(docs, old_index, "before_current")
    p.wait(timeout=120)
    assert p.returncode == -9, p.stderr
    assert _state(old_index) == "old"


def test_killed_after_publishing(docs, old_index):
    p = _child(docs, old_index, "before_cleanup")
    p.wait(timeout=120)
    assert p.returncode == -9, p.stderr
    assert _state(old_index) == "new"


def test_next_build_after_a_crash_succeeds_and_cleans_up(docs, old_index, settings):
    _child(docs, old_index, "write", 2).wait(timeout=120)
    assert list(old_index.glob(".tmp-*")), "the crash left a half-written temporary folder"
    qa.build_index(docs, old_index, settings=settings)
    assert _state(old_index) == "new" and not list(old_index.glob(".tmp-*"))


CLI = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from tests import fakes
    fakes.register("fake", delay=float(sys.argv.pop(1)))
    from qa.cli import main
    print("started", flush=True)
    sys.exit(main())
""").format(root=str(ROOT))


def _cli_index(docs, idx, delay):
    """`qa index` in a fresh process (with the fake embedder, which a real process gets from QA_EMBEDDER)."""
    env = {**os.environ, "QA_EMBEDDER": "fake", "QA_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-c", CLI, str(delay), "index", "--docs", str(docs), "--index", str(idx)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _snapshot(idx):
    """Everything a reader of the index sees, to compare a generation with another exactly."""
    local_store._LOADED.clear()
    loaded = local_store.load_index(idx)  # raises on any inconsistency between the files
    chunks = [(c.id, c.source, c.start, c.end, c.text, c.sha256) for c in loaded.chunks]
    vectors = loaded.faiss_index.reconstruct_n(0, loaded.faiss_index.ntotal)
    docs = sorted((k, d["sha256"]) for k, d in loaded.manifest["files"].items())
    bm25 = loaded.bm25.get_scores(["soldier"]) if "soldier" in loaded.bm25.vocab_dict else None
    return chunks, vectors, docs, bm25


def _same(a, b) -> bool:
    return (a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2] == b[2]
            and (a[3] is None) == (b[3] is None) and (a[3] is None or np.array_equal(a[3], b[3])))


@pytest.mark.slow
def test_killed_at_random_moments(docs, tmp_path):
    """100 `qa index` processes SIGKILLed at random moments; after each the index is wholly the old or the new one."""
    trials = int(os.environ.get("QA_CRASH_TRIALS", "100"))
    body = "A new article about wombats in the safe zone, and the soldiers who guard them. " * 400
    old_docs, new_docs = tmp_path / "ref-old", tmp_path / "ref-new"
    shutil.copytree(docs, old_docs)
    shutil.copytree(docs, new_docs)
    (new_docs / "new.txt").write_text(body, encoding="utf-8")
    refs = {}
    for name, d in (("old", old_docs), ("new", new_docs)):
        assert _cli_index(d, tmp_path / f"ref-{name}-index", 0.0).wait(timeout=120) == 0
        refs[name] = _snapshot(tmp_path / f"ref-{name}-index")
    idx = tmp_path / "index"
    assert _cli_index(docs, idx, 0.0).wait(timeout=120) == 0
    # How long unkilled builds take (median of three, both directions), so kills land anywhere from process
    # start to after the commit. One timing alone was too noisy: with kills spread evenly, a slow timing left
    # only 5 of 100 landing after the commit.
    spans = []
    for _ in range(3):
        for target in ("new", "old"):
            if target == "new":
                (docs / "new.txt").write_text(body, encoding="utf-8")
            else:
                (docs / "new.txt").unlink()
            t0 = time.perf_counter()
            p = _cli_index(docs, idx, 0.01)
            assert p.wait(timeout=120) == 0, p.stderr.read()
            spans.append(time.perf_counter() - t0)
    span = sorted(spans)[len(spans) // 2]
    rng = random.Random(20261122)
    seen = {"old": 0, "new": 0, "neither": 0, "unloadable": 0}
    killed = switched = 0
    for i in range(trials):
        live = "new" if _same(_snapshot(idx), refs["new"]) else "old"
        # Point the build away from what is live, so that every trial has real work to be killed in.
        if live == "new":
            (docs / "new.txt").unlink(missing_ok=True)
        else:
            (docs / "new.txt").write_text(body, encoding="utf-8")
        p = _cli_index(docs, idx, 0.01)
        # Two in three kills anywhere in the build; one in three around its end, where the commit happens.
        when = rng.uniform(0.0, span) if i % 3 else rng.uniform(0.6 * span, 1.3 * span)
        time.sleep(when)
        p.kill()
        killed += p.wait(timeout=60) == -9
        try:
            snap = _snapshot(idx)
        except Exception:
            seen["unloadable"] += 1
            continue
        now = "old" if _same(snap, refs["old"]) else "new" if _same(snap, refs["new"]) else "neither"
        seen[now] += 1
        switched += now != live and now != "neither"
    print(f"\n{trials} trials, {killed} killed mid-run, {switched} committed before the kill, "
          f"build span {span:.2f} s (of {', '.join(f'{s:.2f}' for s in spans)}): {seen}")
    assert seen["neither"] == 0 and seen["unloadable"] == 0
    # Kills landed all over: most before the commit, some after it. (Build times vary about 2x from one run to
    # the next, so the bounds are loose; three seeded runs here gave 52-80 killed and 32-41 committed.)
    assert killed >= trials * 0.4 and trials * 0.05 <= switched <= trials * 0.6
    # and a normal build afterwards cleans up what the kills left behind
    assert _cli_index(docs, idx, 0.0).wait(timeout=120) == 0
    live = local_store.current_generation(idx)
    assert not list(idx.glob(".tmp-*")) and not [g for g in idx.glob("v*") if g.name > live]
