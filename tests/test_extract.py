"""Text per page from PDFs, and one-line reasons for the ones that give none."""

from __future__ import annotations

from pathlib import Path

import pytest
from pdfmaker import make_pdf, not_a_pdf, pdf_bytes, textless_pdf, truncated_pdf

from ddsearch.ingest import extract as extract_mod
from ddsearch.ingest.extract import ExtractError, Limits, extract

PAGES = [
    ["The Google File System", "Sanjay Ghemawat, Howard Gobioff, and Shun-Tak Leung"],
    ["A single master maintains all file system metadata.", "Chunks are 64 MB."],
    ["Clients never read or write file data through the master."],
]


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def test_text_per_page(tmp_path: Path):
    doc = extract(make_pdf(tmp_path / "gfs.pdf", PAGES))
    assert doc.engine == "pdfium"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert [lines(p.text) for p in doc.pages] == PAGES
    assert all(p.printed is None for p in doc.pages)


def test_page_count_includes_empty_pages(tmp_path: Path):
    doc = extract(make_pdf(tmp_path / "a.pdf", [["Some words on page one."], [], ["Page three."]]))
    assert len(doc.pages) == 3
    assert doc.pages[1].text.strip() == ""
    assert lines(doc.pages[2].text) == ["Page three."]


def test_accepts_str_paths(tmp_path: Path):
    assert len(extract(str(make_pdf(tmp_path / "a.pdf", PAGES))).pages) == 3


@pytest.mark.parametrize(
    "title, kept",
    [
        ("The Google File System", "The Google File System"),
        ("  Bigtable: A Distributed Storage System  ", "Bigtable: A Distributed Storage System"),
        ("gfs-sosp2003.pdf", None),
        ("Microsoft Word - paper final", None),
        ("untitled", None),
        ("", None),
        (None, None),
    ],
)
def test_metadata_title_only_when_plausible(tmp_path: Path, title, kept):
    assert extract(make_pdf(tmp_path / "a.pdf", PAGES, title=title)).title == kept


def test_not_a_pdf(tmp_path: Path):
    with pytest.raises(ExtractError, match="not a PDF"):
        extract(not_a_pdf(tmp_path / "error.pdf"))
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(ExtractError, match="not a PDF"):
        extract(empty)


def test_pdf_header_after_junk_is_accepted(tmp_path: Path):
    path = tmp_path / "a.pdf"
    path.write_bytes(b"\xef\xbb\xbf\r\n" + pdf_bytes(PAGES))  # some servers prepend bytes
    assert [lines(p.text) for p in extract(path).pages] == PAGES


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.6, 0.9])
def test_truncated_pdf_is_a_clean_error(tmp_path: Path, keep):
    path = truncated_pdf(tmp_path / "cut.pdf", PAGES, keep=keep)
    with pytest.raises(ExtractError) as info:
        extract(path)
    assert "truncated or damaged PDF" in str(info.value)
    assert "\n" not in str(info.value)


def test_garbage_after_the_header(tmp_path: Path):
    path = tmp_path / "garbage.pdf"
    path.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    with pytest.raises(ExtractError, match="not a readable PDF"):
        extract(path)


def test_damaged_xref_is_repaired(tmp_path: Path):
    data = pdf_bytes(PAGES)
    path = tmp_path / "badxref.pdf"
    path.write_bytes(data.replace(b"startxref\n", b"startxref\n99"))
    assert [lines(p.text) for p in extract(path).pages] == PAGES


IN_PROCESS = Limits(isolate=False)  # so monkeypatched engines apply


def test_pypdf_takes_over_when_pdfium_fails(tmp_path: Path, monkeypatch):
    def broken(path, *caps):
        raise ExtractError("not a readable PDF (pdfium says no)")
        yield

    monkeypatch.setitem(extract_mod._ENGINES, "pdfium", broken)
    pdf = make_pdf(tmp_path / "a.pdf", PAGES, title="The Google File System")
    doc = extract(pdf, IN_PROCESS)
    assert doc.engine == "pypdf"
    assert [lines(p.text) for p in doc.pages] == PAGES
    assert doc.title == "The Google File System"


def test_pypdf_is_asked_when_pdfium_finds_no_text(tmp_path: Path, monkeypatch):
    def blank(path, *caps):
        yield "open", 2, None
        yield "page", 0, ""
        yield "page", 1, ""

    monkeypatch.setitem(extract_mod._ENGINES, "pdfium", blank)
    doc = extract(make_pdf(tmp_path / "a.pdf", PAGES[:2]), IN_PROCESS)
    assert doc.engine == "pypdf"
    assert [lines(p.text) for p in doc.pages] == PAGES[:2]


def test_no_text_layer(tmp_path: Path):
    for n in (1, 3):
        with pytest.raises(ExtractError, match="no extractable text"):
            extract(textless_pdf(tmp_path / f"scan{n}.pdf", n_pages=n))
    with pytest.raises(ExtractError, match="no extractable text"):
        extract(make_pdf(tmp_path / "blank.pdf", [["   "], [""]]))


@pytest.mark.parametrize("isolate", [False, True])  # in this process, and in the worker
def test_page_limits(tmp_path: Path, isolate):
    with pytest.raises(ExtractError, match="3 pages, more than the limit of 2"):
        extract(make_pdf(tmp_path / "a.pdf", PAGES), Limits(max_pages=2, isolate=isolate))


@pytest.mark.parametrize("isolate", [False, True])
def test_page_text_is_bounded(tmp_path: Path, isolate):
    doc = extract(make_pdf(tmp_path / "a.pdf", PAGES), Limits(max_page_chars=20, isolate=isolate))
    assert all(len(p.text) <= 20 for p in doc.pages)
    assert doc.pages[1].text.startswith("A single master")
    with pytest.raises(ExtractError, match="more than 30 characters"):
        extract(make_pdf(tmp_path / "b.pdf", PAGES), Limits(max_doc_chars=30, isolate=isolate))


def test_missing_file(tmp_path: Path):
    with pytest.raises(ExtractError, match="cannot read the file"):
        extract(tmp_path / "nope.pdf")
