"""The README's commands run, so that it cannot rot: every `qa` line of its bash blocks that runs offline in
seconds goes through the real CLI (fake models), each optional `[...]` part included; the Python quickstart runs
as written on a copy of the seeds with the real models (slow)."""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qa import cli

from .conftest import ROOT, SEEDS

README = ROOT / "README.md"
#: Long or server-starting commands: `qa eval` (minutes), `qa serve` (a server), `qa check` (real models; the
#: set-up runs it, and tests/test_check.py covers it).
NOT_RUN = {"eval", "serve", "check"}


def blocks(language: str, text: str | None = None) -> list[str]:
    text = README.read_text(encoding="utf-8") if text is None else text
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def qa_commands(text: str | None = None) -> list[str]:
    lines = [line.split("  #")[0].strip() for b in blocks("bash", text) for line in b.splitlines()]
    return [line for line in lines if line.startswith("qa ")]


def argv_of(line: str, docs: Path, index: Path) -> list[str]:
    """The command's arguments, optional parts included, placeholders filled."""
    line = re.sub(r"\[([^\]]*)\]", r"\1", line)
    words = [w.strip('"') for w in re.findall(r'"[^"]*"|\S+', line)[1:]]
    out = []
    for i, w in enumerate(words):
        prev = words[i - 1] if i else ""
        if w == "DIR":
            w = str(docs if prev == "--docs" else index)
        elif w == "S":
            w = "local"
        elif w == "question":
            w = "How many soldiers would European countries contribute?"
        out.append(w)
    return out


def test_the_readme_lists_the_commands_this_test_runs():
    names = {c.split()[1] for c in qa_commands()}
    assert {"index", "search", "ask", "settings"} <= names, names


@pytest.fixture
def fake_env(monkeypatch, embedder):
    monkeypatch.setenv("QA_EMBEDDER", "fake")
    monkeypatch.setenv("QA_RERANK", "0")
    monkeypatch.setenv("QA_PROGRESS", "0")


def _run_all(commands, docs, index, capsys):
    ran = []
    for line in commands:
        if line.split()[1] in NOT_RUN:
            continue
        argv = argv_of(line, docs, index)
        if argv[0] == "index" and "--docs" not in argv:
            argv += ["--docs", str(docs)]
        if argv[0] in ("search", "ask") and "--index" not in argv:
            argv += ["--index", str(index)]
        code = cli.main(argv)
        out = capsys.readouterr()
        assert code == 0, f"README command failed: {line!r} -> {argv}\n{out.err}"
        ran.append(argv[0])
    return ran


def test_every_quick_readme_command_runs(docs, tmp_path, fake_env, capsys, monkeypatch):
    fakes_reader(monkeypatch)
    ran = _run_all(qa_commands(), docs, tmp_path / "index", capsys)
    assert ran[:3] == ["index", "search", "ask"] and "settings" in ran


def test_a_broken_readme_command_fails_this_test(docs, tmp_path, fake_env, capsys, monkeypatch):
    fakes_reader(monkeypatch)
    broken = README.read_text(encoding="utf-8").replace("qa search \"question\" [-k 5]", "qa search \"question\" [--top 5]")
    assert broken != README.read_text(encoding="utf-8")
    with pytest.raises((AssertionError, SystemExit)):
        _run_all(qa_commands(broken), docs, tmp_path / "index", capsys)


def fakes_reader(monkeypatch):
    from . import fakes

    fakes.register_reader("fake-reader")
    monkeypatch.setenv("QA_READER", "fake-reader")


@pytest.mark.slow
def test_the_python_quickstart_runs_as_written(tmp_path):
    """The quickstart block, with the real packaged models, in a folder holding a copy of the seeds (it uses the
    default `index`, built from `seeds` there)."""
    shutil.copytree(SEEDS, tmp_path / "seeds")
    code = blocks("python")[0]
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
    """) + code
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    p = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "002_0761b27352c754ab.txt" in p.stdout and (tmp_path / "index" / "CURRENT").exists()
