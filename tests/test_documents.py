"""Reading a folder: formats, titles, and every kind of file that is skipped with a reason."""

import os

import pytest

from qa import documents
from qa.errors import DocsDirError


def _minimal_pdf(text: str, title: str) -> bytes:
    """A one-page PDF with one line of text, assembled by hand so the test needs no PDF writer."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Title (" + title.encode() + b") >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_formats_and_titles(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("\n\n  First line title  \nBody text.", encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text("# Markdown Title\n\nSome *text*.", encoding="utf-8")
    (tmp_path / "c.html").write_text(
        "<html><head><title>Page Title</title><script>alert('x')</script></head>"
        "<body><p>Visible paragraph about zones.</p><style>p{}</style></body></html>", encoding="utf-8")
    (tmp_path / "d.pdf").write_bytes(_minimal_pdf("Text inside a PDF", "PDF Meta Title"))
    docs, skipped = documents.load(tmp_path)
    by = {d.source: d for d in docs}
    assert set(by) == {"a.txt", "sub/b.md", "c.html", "d.pdf"}, skipped
    assert by["a.txt"].title == "First line title"
    assert by["sub/b.md"].title == "Markdown Title"
    assert by["c.html"].title == "Page Title"
    assert "Visible paragraph" in by["c.html"].text and "alert" not in by["c.html"].text
    assert by["d.pdf"].title == "PDF Meta Title" and "Text inside a PDF" in by["d.pdf"].text
    assert not skipped


def test_bad_files_are_skipped_with_reasons(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret outside the corpus", encoding="utf-8")
    d = tmp_path / "docs"
    (d / ".git").mkdir(parents=True)
    (d / ".git" / "x.txt").write_text("hidden", encoding="utf-8")
    (d / ".hidden.txt").write_text("hidden", encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "blank.md").write_text("  \n\n ", encoding="utf-8")
    (d / "bin.txt").write_bytes(b"abc\x00\x01\x02")
    (d / "latin.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (d / "img.png").write_bytes(b"\x89PNG")
    (d / "broken.pdf").write_bytes(b"%PDF-1.4 nonsense")
    (d / "big.txt").write_text("x" * 2000, encoding="utf-8")
    os.symlink(outside, d / "link.txt")
    os.symlink(tmp_path, d / "linkdir")
    (d / "ok.txt").write_text("Fine article.", encoding="utf-8")
    docs, skipped = documents.load(d, max_bytes=1000)
    assert [x.source for x in docs] == ["ok.txt"]
    reasons = {s.source: s.reason for s in skipped}
    assert reasons[".git/"] == "hidden folder"
    assert reasons[".hidden.txt"] == "hidden file"
    assert "empty" in reasons["empty.txt"] and "empty" in reasons["blank.md"]
    assert "binary" in reasons["bin.txt"]
    assert "UTF-8" in reasons["latin.txt"]
    assert "unsupported" in reasons["img.png"]
    assert "could not extract" in reasons["broken.pdf"]
    assert "too large" in reasons["big.txt"]
    assert "outside" in reasons["link.txt"]
    assert "symlinked folder" in reasons["linkdir/"]


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    # Permissions do not stop root (CI runs as root), so make the read itself fail as it would for a user.
    p = tmp_path / "locked.txt"
    p.write_text("x", encoding="utf-8")
    real = os.open

    def os_open(path, *a, **k):
        if os.fspath(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied")
        return real(path, *a, **k)

    monkeypatch.setattr(documents.os, "open", os_open)
    (tmp_path / "ok.txt").write_text("fine", encoding="utf-8")
    docs, skipped = documents.load(tmp_path)
    assert [d.source for d in docs] == ["ok.txt"]
    assert skipped == [documents.Skipped("locked.txt", "cannot read: Permission denied")]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DocsDirError, match="does not exist"):
        documents.scan(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(DocsDirError, match="not a folder"):
        documents.scan(tmp_path / "file.txt")
