"""The test PDF writer itself: both PDF libraries must read back exactly what it wrote."""

from __future__ import annotations

import re
from pathlib import Path

import pypdf
import pypdfium2 as pdfium
import pytest
from pdfmaker import make_pdf, not_a_pdf, pdf_bytes, textless_pdf, truncated_pdf

PAGES = [
    ["Replication (with leases) keeps a single primary.", "Backslash \\ and café, naïve."],
    ["The second page has one line."],
    ["Third page, first line.", "Third page, second line.", "Third page, third line."],
]


def pdfium_texts(path: Path) -> list[str]:
    doc = pdfium.PdfDocument(str(path))
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in re.split(r"\r\n|\r|\n", text) if ln.strip()]


def test_pdfium_reads_back_every_line(tmp_path: Path):
    path = make_pdf(tmp_path / "a.pdf", PAGES, title="A Made Up Paper Title")
    assert [lines(t) for t in pdfium_texts(path)] == [list(p) for p in PAGES]
    doc = pdfium.PdfDocument(str(path))
    assert doc.get_metadata_dict()["Title"] == "A Made Up Paper Title"
    doc.close()


def test_pypdf_reads_back_every_line_strictly(tmp_path: Path):
    path = make_pdf(tmp_path / "a.pdf", PAGES, title="A Made Up Paper Title")
    reader = pypdf.PdfReader(str(path), strict=True)  # strict: a bad xref offset would raise
    assert [lines(p.extract_text()) for p in reader.pages] == [list(p) for p in PAGES]
    assert reader.metadata.title == "A Made Up Paper Title"


def test_xref_offsets_point_at_their_objects():
    data = pdf_bytes(PAGES)
    start = int(re.search(rb"startxref\n(\d+)", data).group(1))
    assert data[start:].startswith(b"xref\n0 ")
    entries = re.findall(rb"(\d{10}) 00000 n \n", data[start:])
    assert len(entries) == int(re.search(rb"/Size (\d+)", data).group(1)) - 1
    for number, offset in enumerate(entries, start=1):
        assert data[int(offset) :].startswith(b"%d 0 obj" % number)


def test_no_title_means_no_info(tmp_path: Path):
    path = make_pdf(tmp_path / "a.pdf", [["Just text."]])
    assert b"/Info" not in path.read_bytes()
    assert pypdf.PdfReader(str(path)).metadata is None


def test_font_size_is_used(tmp_path: Path):
    assert b"/F1 14 Tf" in make_pdf(tmp_path / "a.pdf", [["Big."]], font_size=14).read_bytes()


def test_broken_helpers(tmp_path: Path):
    empty = textless_pdf(tmp_path / "empty.pdf", n_pages=2)
    assert pdfium_texts(empty) == ["", ""]
    with pytest.raises(pdfium.PdfiumError):
        pdfium.PdfDocument(str(truncated_pdf(tmp_path / "cut.pdf", PAGES)))
    assert (tmp_path / "cut.pdf").read_bytes().startswith(b"%PDF-")
    junk = not_a_pdf(tmp_path / "junk.pdf")
    assert b"%PDF" not in junk.read_bytes()
    with pytest.raises(ValueError):
        pdf_bytes([])
