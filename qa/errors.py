"""Every error the library raises on purpose. Each message says what to do next."""

from __future__ import annotations


class QAError(Exception):
    """Base class: catch this to handle any documented failure of the qa package."""


class InvalidQuestionError(QAError, ValueError):
    """The question is empty, too long or not text."""


class DocsDirError(QAError):
    """The documents folder is missing, is not a folder, or holds nothing that can be indexed."""


class EmptyCorpusError(DocsDirError):
    """A build found no readable document; the previous index (if any) was left untouched."""


class IndexMissingError(QAError):
    """No index exists at the given folder."""


class IndexMismatchError(QAError):
    """The index was built with another embedding model, dimension or format version."""


class IndexCorruptError(QAError):
    """The index files are unreadable or inconsistent with each other."""


class IndexBusyError(QAError):
    """Another process holds the build lock for longer than we are willing to wait."""


class ModelCrashedError(QAError):
    """A model runtime (llama.cpp, onnxruntime) died mid-call in its worker process; the worker was restarted."""


class SetupCheckError(QAError):
    """``qa check`` found a part of the answer path that does not work on this machine."""


class ReaderWeightsError(QAError):
    """The trained reader's weights are missing, or do not match their model card's checksum."""


class StoreUnavailableError(QAError):
    """The Milvus store named by QA_STORE cannot be reached, opened or used."""
