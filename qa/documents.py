"""Find and read the articles in a folder: .txt, .md, .html and .pdf, recursively.

A file that cannot be used is skipped with a reason; it never aborts a build.
For .txt and .md, ``Document.text`` is exactly ``path.read_text(encoding="utf-8")`` so that chunk offsets
index the file as a reader opens it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import DocsDirError

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
TITLE_CHARS = 120
MAX_DEPTH = 100  # folders nested deeper are skipped with a reason


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the docs folder, with forward slashes
    title: str
    text: str
    sha256: str  # of the file's bytes: the identity used for incremental builds and de-duplication


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


@dataclass(frozen=True)
class FileInfo:
    """A candidate file before it is read: enough to tell whether it changed since the last build."""

    source: str
    path: Path
    size: int
    mtime_ns: int
    root: Path | None = None  # the documents folder, resolved: reading re-checks that the file is inside it


def _inside(path: Path, real_root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(real_root)
    except (OSError, RuntimeError):  # a symlink loop or an unreadable link
        return False


def scan(docs_dir: str | Path) -> tuple[list[FileInfo], list[Skipped]]:
    """List the indexable files below ``docs_dir`` (sorted) and the ones passed over, with reasons."""
    root = Path(docs_dir)
    if not root.exists():
        raise DocsDirError(f"Documents folder {str(root)!r} does not exist: create it or pass --docs DIR.")
    if not root.is_dir():
        raise DocsDirError(f"{str(root)!r} is not a folder: pass the folder that holds your articles.")
    real_root = root.resolve()
    found: list[FileInfo] = []
    skipped: list[Skipped] = []
    # Depth-first with an explicit stack (os.walk recurses, and a hostile folder can nest deeper than Python's
    # recursion limit); symlinked folders are never entered, so there are no loops.
    stack: list[tuple[Path, str, int]] = [(root, "", 0)]
    while stack:
        here, rel_dir, depth = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            skipped.append(Skipped(rel_dir + "/" if rel_dir else ".", f"cannot list folder: {e.strerror or e}"))
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            path = here / name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                if name.startswith("."):
                    skipped.append(Skipped(rel + "/", "hidden folder"))
                elif depth + 1 > MAX_DEPTH:
                    skipped.append(Skipped(rel + "/", f"nested more than {MAX_DEPTH} folders deep (not read)"))
                else:
                    subdirs.append((path, rel, depth + 1))
                continue
            if entry.is_symlink() and path.is_dir():
                skipped.append(Skipped(rel + "/", "symlinked folder (not followed)"))
                continue
            if name.startswith("."):
                skipped.append(Skipped(rel, "hidden file"))
                continue
            if path.suffix.lower() not in SUFFIXES:
                skipped.append(Skipped(rel, f"unsupported type {path.suffix or '(none)'!r}"))
                continue
            if entry.is_symlink() and not _inside(path, real_root):
                skipped.append(Skipped(rel, "symlink pointing outside the documents folder"))
                continue
            try:
                st = path.stat()
            except OSError as e:
                skipped.append(Skipped(rel, f"cannot read: {e.strerror or e}"))
                continue
            if not stat.S_ISREG(st.st_mode):
                skipped.append(Skipped(rel, "not a regular file"))
                continue
            found.append(FileInfo(rel, path, st.st_size, st.st_mtime_ns, real_root))
        stack.extend(reversed(subdirs))
    found.sort(key=lambda f: f.source)
    return found, skipped


def read(info: FileInfo, max_bytes: int) -> Document | Skipped:
    """Read one file into a Document, or say why it was skipped."""
    too_large = f"too large ({{:.1f}} MB > {max_bytes / 1e6:.0f} MB; raise QA_MAX_FILE_MB)"
    if info.size > max_bytes:
        return Skipped(info.source, too_large.format(info.size / 1e6))
    # The folder may have changed since the scan: check again that the file is inside the documents folder and
    # regular (O_NONBLOCK: a FIFO put in its place must not hang the build), and read no more than allowed.
    if info.root is not None and not _inside(info.path, info.root):
        return Skipped(info.source, "symlink pointing outside the documents folder")
    try:
        fd = os.open(info.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return Skipped(info.source, "not a regular file")
            data = f.read(max_bytes + 1)
    except OSError as e:
        return Skipped(info.source, f"cannot read: {e.strerror or e}")
    if len(data) > max_bytes:
        return Skipped(info.source, too_large.format(os.path.getsize(info.path) / 1e6))
    sha = hashlib.sha256(data).hexdigest()
    suffix = info.path.suffix.lower()
    try:
        if suffix in PDF_SUFFIXES:
            title, text = _read_pdf(data)
        else:
            if b"\x00" in data[:65536]:
                return Skipped(info.source, "binary file (contains NUL bytes)")
            try:
                raw = data.decode("utf-8")
            except UnicodeDecodeError as e:
                return Skipped(info.source, f"not UTF-8 (bad byte at offset {e.start}): re-save the file as UTF-8")
            if suffix in HTML_SUFFIXES:
                title, text = _read_html(raw)
            else:
                # Universal newlines, exactly as Path.read_text() does, so offsets match what readers see.
                text = raw.replace("\r\n", "\n").replace("\r", "\n")
                title = _first_line(text, markdown=suffix != ".txt")
    except Exception as e:  # a broken PDF or HTML must not abort the whole build
        return Skipped(info.source, f"could not extract text: {type(e).__name__}: {e}")
    if not text.strip():
        return Skipped(info.source, "no text (empty file)")
    return Document(info.source, title or Path(info.source).stem, text, sha)


def load(docs_dir: str | Path, max_bytes: int = 20_000_000) -> tuple[list[Document], list[Skipped]]:
    """Read every indexable file below ``docs_dir``."""
    files, skipped = scan(docs_dir)
    docs = []
    for info in files:
        got = read(info, max_bytes)
        (docs if isinstance(got, Document) else skipped).append(got)
    return docs, skipped


def _first_line(text: str, markdown: bool = False) -> str:
    for line in text.splitlines():
        line = line.strip()
        if markdown:
            line = re.sub(r"^#+\s*", "", line).strip()
        if line:
            return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"
    return ""


def _read_html(raw: str) -> tuple[str, str]:
    import trafilatura

    text = trafilatura.extract(raw, include_comments=False, include_tables=True, favor_recall=True) or ""
    meta = trafilatura.extract_metadata(raw)
    title = (meta.title if meta is not None else None) or ""
    if not text.strip():
        # Very short pages defeat trafilatura's boilerplate detection: fall back to the visible text.
        import lxml.html

        tree = lxml.html.fromstring(raw)
        for bad in tree.xpath("//script|//style|//noscript|//template"):
            bad.drop_tree()
        text = re.sub(r"[ \t]+", " ", tree.text_content())
        text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
        title = title or (tree.findtext(".//title") or "").strip()
    return title.strip() or _first_line(text), text


def _read_pdf(data: bytes) -> tuple[str, str]:
    import io

    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise ValueError("encrypted PDF")
    text = "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    meta_title = (reader.metadata.title if reader.metadata else None) or ""
    return meta_title.strip() or _first_line(text), text
