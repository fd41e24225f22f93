"""qa: answer questions about a folder of articles, with cited passages. Local and offline.

    import qa
    qa.build_index(docs_dir="seeds", index_dir="index")   # (re)build, incremental; returns BuildStats
    qa.search("How many soldiers?", k=5)                   # -> list[qa.Passage], best first
"""

from .config import Settings
from .documents import Document, Skipped
from .embeddings import Embedder, register_embedder
from .errors import (
    DocsDirError,
    EmptyCorpusError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    InvalidQuestionError,
    QAError,
)
from .index import BuildStats, build_index
from .search import Passage, search

__all__ = [
    # the API
    "build_index", "search",
    # what flows between stages
    "Passage", "BuildStats", "Document", "Skipped",
    # configuration and seams
    "Settings", "Embedder", "register_embedder",
    # errors
    "QAError", "InvalidQuestionError", "DocsDirError", "EmptyCorpusError", "IndexMissingError",
    "IndexMismatchError", "IndexCorruptError", "IndexBusyError",
]
