"""ddsearch.index.clip: which characters a page draws and then clips away."""

from __future__ import annotations

import pypdfium2 as pdfium
from pdfmaker import content_stream, pdf_bytes

from ddsearch.index.clip import char_hidden, hidden_chars

SHOWN = ["Gossip spreads rumours about dark stations.", "Each keeper lights a beacon."]
HIDDEN = b"q 0 0 612 40 re W n BT /F1 10 Tf 72 600 Td (An older label.) Tj ET Q\n"


def _page(tmp_path, content: bytes):
    path = tmp_path / "p.pdf"
    path.write_bytes(pdf_bytes([content]))
    doc = pdfium.PdfDocument(str(path))
    page = doc[0]
    return doc, page, page.get_textpage()


def test_the_characters_a_clip_hides_are_found_and_no_others(tmp_path):
    doc, page, textpage = _page(tmp_path, content_stream(SHOWN) + HIDDEN)
    try:
        text = textpage.get_text_range()
        found = hidden_chars(page, textpage)
        assert "".join(text[i] for i in found) == "An older label."
        assert [i for i in range(textpage.count_chars()) if char_hidden(textpage, i)] == found
    finally:
        doc.close()


def test_a_clip_that_shows_its_text_hides_nothing(tmp_path):
    shown = b"q 0 0 612 792 re W n " + content_stream(SHOWN) + b"Q\n"
    doc, page, textpage = _page(tmp_path, shown)
    try:
        assert "Gossip" in textpage.get_text_range()
        assert hidden_chars(page, textpage) == []
        assert not any(char_hidden(textpage, i) for i in range(textpage.count_chars()))
    finally:
        doc.close()
