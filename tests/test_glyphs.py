"""What pdfium's text leaves out, put back from the glyphs: word spaces, named glyphs, gaps."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium
import pytest
from pdfmaker import Math, Picture, Type3, Words, content_stream, make_pdf, objects_pdf, pdf_bytes

from ddsearch.config import Limits
from ddsearch.ingest.chunk import heading
from ddsearch.ingest.clean import clean_pages
from ddsearch.ingest.extract import extract
from ddsearch.ingest.fonts import FontChars, char_of
from ddsearch.ingest.glyphs import GAP

# enough ordinary prose for a page to show its word gaps and its letters' spacing
PROSE = [
    "The master grants a lease to one replica, which becomes the primary for the chunk.",
    "Clients cache chunk locations and talk to chunkservers directly for their data.",
    "Each mutation is applied in the same order at every replica of the chunk.",
    "A heartbeat message carries instructions from the master to the chunkservers.",
    "Stale replicas are detected with chunk version numbers and garbage collected.",
    "The operation log is replicated on multiple remote machines before replying.",
]


def _pdfium_line(pdf: Path, needle: str) -> str:
    doc = pdfium.PdfDocument(str(pdf))
    try:
        text = doc[0].get_textpage().get_text_range()
    finally:
        doc.close()
    return next(line for line in text.splitlines() if needle in line)


def _read(tmp_path: Path, lines: list, isolate: bool = False) -> tuple[Path, list[str]]:
    pdf = make_pdf(tmp_path / "p.pdf", [PROSE + lines])
    doc = extract(pdf, Limits(isolate=isolate))
    return pdf, clean_pages(doc.pages, heading)[0].text.split("\n")


@pytest.mark.parametrize("isolate", [False, True])
def test_words_pdfium_glued_get_their_space_back(tmp_path, isolate):
    pdf, lines = _read(
        tmp_path,
        [
            [
                Words("The resiliency of our algorithm"),
                Words("is optimal, and that", 1.2),
                Words("is all there is to it.", 1.2),
            ]
        ],  # fmt: skip
        isolate,
    )
    assert "algorithmis" in _pdfium_line(pdf, "resiliency")  # what pdfium reads
    assert "The resiliency of our algorithm is optimal, and that is all there is to it." in lines
    assert lines[: len(PROSE)] == PROSE  # the rest of the page reads as it did


def test_a_letter_spaced_word_is_not_cut_into_letters(tmp_path):
    letters = [Words("Title:"), Words("S", 4)] + [Words(ch, 1.2) for ch in "PACED"]
    pdf, lines = _read(tmp_path, [letters])
    assert "SPACED" in _pdfium_line(pdf, "Title")
    assert "Title: SPACED" in lines


def test_a_glyph_pdfium_cannot_name_is_read_by_its_name_in_the_font(tmp_path):
    pdf, lines = _read(
        tmp_path,
        [
            [
                Words("Is"),
                Math(("epsilon1",), 2.5),
                Words("truly a bound, and how bad does", 2.5),
                Math(("epsilon1",), 2.5),
                Words("get?", 2.5),
            ],  # fmt: skip
            [Words("We write z"), Math(("precedesequal",), 2.5), Words("z' for that.", 2.5)],
        ],
    )
    assert "\x0f" in _pdfium_line(pdf, "how bad")  # pdfium gives the bare code
    assert "Is ε truly a bound, and how bad does ε get?" in lines  # TeX's ϵ, NFKC's ε
    assert "We write z ≼ z' for that." in lines


def test_a_glyph_nothing_names_leaves_a_marked_gap(tmp_path):
    pdf, lines = _read(tmp_path, [[Words("A member"), Type3(3, 2.5), Words("is declared", 2.5)]])
    assert "\x01" in _pdfium_line(pdf, "A member")
    assert f"A member {GAP} is declared" in lines  # one mark for the symbol's three glyphs


def test_a_symbol_drawn_as_a_picture_leaves_a_marked_gap(tmp_path):
    pdf, lines = _read(
        tmp_path,
        [
            [
                Words("The resiliency is optimal: 3"),
                Picture(gap=2),
                Picture(gap=1),
                Words("1 is the minimum number of replicas.", 2),
            ]
        ],  # fmt: skip
    )
    assert "3 1 is the" in _pdfium_line(pdf, "resiliency")
    assert f"The resiliency is optimal: 3 {GAP} 1 is the minimum number of replicas." in lines


def test_a_plain_page_reads_as_pdfium_reads_it(tmp_path):
    pdf = make_pdf(tmp_path / "p.pdf", [PROSE])
    doc = pdfium.PdfDocument(str(pdf))
    try:
        expected = doc[0].get_textpage().get_text_range()
    finally:
        doc.close()
    assert extract(pdf, Limits(isolate=False)).pages[0].text == expected.replace("\r\n", "\n")


@pytest.mark.parametrize("isolate", [False, True])
def test_text_drawn_and_clipped_away_is_not_read(tmp_path, isolate):
    # a page drawn twice, its second copy cut off by a clip that shows none of it (as the
    # VM-FT PDF draws every page), and a figure's old label under a clip (as EPaxos's)
    hidden = b"BT /F1 10 Tf 72 %d Td (An older label that the new figure covers.) Tj ET"
    page = (
        content_stream(PROSE)
        + b"q 0 0 612 40 re W n " + (hidden % 600) + b" Q\n"
        + b"q 0 0 612 40 re W n 1 0 0 1 0 -300 cm " + content_stream(PROSE) + b" Q\n"
    )  # fmt: skip
    pdf = tmp_path / "p.pdf"
    pdf.write_bytes(pdf_bytes([page]))
    doc = pdfium.PdfDocument(str(pdf))
    try:
        seen = doc[0].get_textpage().get_text_range()
    finally:
        doc.close()
    assert "older label" in seen and seen.count(PROSE[0]) == 2  # what pdfium reads
    pages = extract(pdf, Limits(isolate=isolate)).pages
    assert "older label" not in pages[0].text
    assert clean_pages(pages, heading)[0].text.split("\n") == PROSE


def test_glyph_names_of_an_embedded_type1_font_come_from_its_own_encoding(tmp_path):
    """A Type 1 program's built-in encoding ("dup 15 /epsilon1 put"), /Differences over it."""
    program = (
        b"%!PS-AdobeFont-1.0: CMMI10\n/Encoding 256 array\n0 1 255 {1 index exch /.notdef put} for"
        b"\ndup 15 /epsilon1 put\ndup 22 /mu put\ndup 97 /a put\nreadonly def\ncurrentfile eexec\n"
    )
    pdf = tmp_path / "f.pdf"
    pdf.write_bytes(
        objects_pdf([
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 4 0 R >> >> >>",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /ABCDEF+CMMI10 "
            b"/Encoding << /Differences [22 /nu] >> /FontDescriptor 5 0 R >>",
            b"<< /Type /FontDescriptor /FontName /ABCDEF+CMMI10 /FontFile 6 0 R >>",
            b"<< /Length %d >>\nstream\n%s\nendstream" % (len(program), program),
        ])
    )  # fmt: skip
    fonts = FontChars(pdf).page(0)
    assert fonts.named("CMMI10", 15) == "ϵ"  # the program's own encoding
    assert fonts.named("CMMI10", 22) == "ν"  # /Differences over it
    assert fonts.named("CMMI10", 23) is None
    assert fonts.named("CMR10", 15) is None  # no such font on the page
    assert FontChars(tmp_path / "missing.pdf").page(0).named("CMMI10", 15) is None


def test_a_name_that_only_numbers_a_glyph_names_no_character():
    """Bitmap (Type 3) fonts name glyphs "a29"; pypdf's list reads that as chr(29)."""
    glyphs = {"/a29": "\x1d", "/a100": "d", "/epsilon1": "ϵ"}
    assert char_of("a29", glyphs) is None and char_of("a100", glyphs) is None
    assert char_of("epsilon1", glyphs) == "ϵ"
    assert char_of("uni2032", {}) == "′" and char_of("uni0001", {}) is None
