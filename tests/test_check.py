"""`qa check` names the part of the answer path that fails and says what to do, crash or not. A stand-in
``llama_cpp`` package, first on PYTHONPATH, plays the broken runtimes: one that segfaults when imported (as the
AMX build did on its first decode) and one built with AMX kernels."""

import subprocess
import sys

import pytest

from .conftest import ROOT

CRASHES = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"
AMX = '__version__ = "0.3.36"\ndef llama_print_system_info():\n    return b"CPU : AVX2 = 1 | AMX_INT8 = 1 | "\n'
OLD = '__version__ = "0.2.90"\ndef llama_print_system_info():\n    return b"CPU : AVX2 = 1 | "\n'


def _check_with(tmp_path, package: str) -> subprocess.CompletedProcess:
    (tmp_path / "llama_cpp").mkdir()
    (tmp_path / "llama_cpp" / "__init__.py").write_text(package)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "qa", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("package", "said"), [
    (CRASHES, "the reader runtime does not work on this machine: the process crashed (SIGSEGV: a segmentation"),
    (AMX, "the reader runtime does not work on this machine: SetupCheckError: llama.cpp was built with AMX"),
    (OLD, "llama-cpp-python is 0.2.90, the reader is tested with 0.3.36"),
])
def test_a_broken_reader_runtime_is_named_with_what_to_do(tmp_path, package, said):
    r = _check_with(tmp_path, package)
    assert r.returncode == 2
    assert "reader runtime  FAILED" in r.stdout
    assert said in r.stderr and "What to do: " in r.stderr and "make reader" in r.stderr
    assert "embedder" not in r.stdout  # it stops at the first part that fails
