"""qa: answer questions about a folder of articles, with cited passages. Local and offline.

    import qa
    qa.build_index(docs_dir="seeds", index_dir="index")   # (re)build, incremental; returns BuildStats
    qa.search("How many soldiers?", k=5)                   # -> list[qa.Passage], best first
    qa.answer("How many soldiers?", history=None)          # -> qa.Answer: text with [n], citations, abstained

The index lives in files (the default) or in Milvus: QA_STORE=milvus.db (Milvus Lite) or http://HOST:19530.
"""

from .answering import Answer, Citation, Support, answer, stream
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
    ModelCrashedError,
    QAError,
    ReaderWeightsError,
    StoreUnavailableError,
)
from .generation import Generator, register_generator
from .index import BuildStats, build_index
from .reading import Reader, Reading, Span, register_reader
from .search import Passage, search

__all__ = [
    # the API
    "build_index", "search", "answer", "stream",
    # what flows between stages
    "Passage", "Citation", "Answer", "Support", "BuildStats", "Document", "Skipped", "Reading", "Span",
    # configuration and seams
    "Settings", "Embedder", "register_embedder", "Reader", "register_reader", "Generator", "register_generator",
    # errors
    "QAError", "InvalidQuestionError", "DocsDirError", "EmptyCorpusError", "IndexMissingError",
    "IndexMismatchError", "IndexCorruptError", "IndexBusyError", "ModelCrashedError", "ReaderWeightsError",
    "StoreUnavailableError",
]
