import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import qa  # noqa: E402
from qa.config import Settings  # noqa: E402

from . import fakes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SQUAD = ROOT.parent / "shared" / "data" / "squad2-dev-5-articles.json"


@pytest.fixture
def embedder():
    return fakes.register("fake")


@pytest.fixture
def settings(embedder) -> Settings:
    # rerank=0: search with the fake embedder alone (tests that rerank register a fake reader)
    return Settings(embedder="fake", progress=False, rerank=0)


@pytest.fixture
def docs(tmp_path) -> Path:
    """A copy of the seed articles in a temporary folder (tests may edit it)."""
    d = tmp_path / "docs"
    shutil.copytree(SEEDS, d)
    return d


@pytest.fixture
def built(docs, tmp_path, settings):
    index_dir = tmp_path / "index"
    qa.build_index(docs, index_dir, settings=settings)
    return index_dir
