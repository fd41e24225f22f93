"""A build killed half-way (SIGKILL, no cleanup) leaves the previous index loadable and whole."""

import random
import subprocess
import sys
import textwrap
import time

import pytest

import qa
from qa import index as ix

from .conftest import ROOT

CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from tests import fakes
    import qa
    from qa import index as ix
    from qa.config import Settings

    docs, idx, mode, n, delay = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    fakes.register("fake", delay=delay)

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if mode == "write":  # die in the middle of the n-th file write, leaving it half written
        real, calls = ix._write_bytes, [0]
        def write(path, data):
            calls[0] += 1
            if calls[0] == n:
                with open(path, "wb") as f:
                    f.write(data[: len(data) // 2])
                die()
            real(path, data)
        ix._write_bytes = write
    elif mode == "before_current":  # the new generation is complete but not yet published
        real_atomic = ix._atomic_write_text
        ix._atomic_write_text = lambda path, text: die()
    elif mode == "before_cleanup":  # published, old generations not yet removed
        ix._cleanup = lambda *a, **k: die()
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
    ix._LOADED.clear()
    loaded = ix.load_index(idx)  # raises on any inconsistency
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


@pytest.mark.slow
def test_killed_at_random_moments(docs, old_index):
    rng = random.Random(7)
    seen = {"old": 0, "new": 0}
    body = (docs / "new.txt").read_text(encoding="utf-8")
    for _ in range(8):
        # Point the next build away from whatever is live, so every trial has real work to be killed in.
        if _state(old_index) == "new":
            (docs / "new.txt").unlink(missing_ok=True)
        else:
            (docs / "new.txt").write_text(body, encoding="utf-8")
        p = _child(docs, old_index, "none", 0, delay=0.05)
        p.stdout.readline()  # imports done; the build is starting
        time.sleep(rng.uniform(0.0, 0.6))
        p.kill()
        p.wait(timeout=60)
        seen[_state(old_index)] += 1
    assert sum(seen.values()) == 8
