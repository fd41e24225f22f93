"""`qa check` names the part of the answer path that fails and says what to do, crash or not: here the reader's
weights, damaged on purpose in a copy of the package, and an onnxruntime that segfaults when imported (a stand-in
package first on PYTHONPATH, as a runtime built for another CPU would)."""

import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT

CRASHES = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"


def _check(tmp_path, root, extra_path: str = "") -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": ":".join(p for p in (extra_path, str(root)) if p), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "qa", "check"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_damaged_reader_weights_are_named_with_what_to_do(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "qa", copy / "qa", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "seeds", copy / "seeds")
    weights = copy / "qa" / "weights" / "reader.int8.onnx"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    r = _check(tmp_path, copy)
    assert r.returncode == 2
    assert "reader          FAILED" in r.stdout and "do not match their model card" in r.stdout
    assert "What to do: " in r.stderr and "train_reader" in r.stderr
    assert "answer  " not in r.stdout  # it stops at the first part that fails


def test_a_runtime_that_crashes_is_named_by_its_signal(tmp_path):
    (tmp_path / "onnxruntime").mkdir()
    (tmp_path / "onnxruntime" / "__init__.py").write_text(CRASHES)
    r = _check(tmp_path, ROOT, str(tmp_path))
    assert r.returncode == 2
    assert "embedder        FAILED" in r.stdout
    assert "the process crashed (SIGSEGV: a segmentation fault)" in r.stderr and "What to do: " in r.stderr
