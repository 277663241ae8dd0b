"""Exports drawn from the papers' own PDFs: a reading packet of the cited pages, annotated
copies of the papers, and PNGs of the highlighted pages.

The PDFs are written with pypdf: its Highlight annotations carry QuadPoints (one quad a
line) and link a Popup for the note, and its incremental mode appends the annotations after
the original bytes, which stay as they were, so a copy's text and page numbers are the
paper's own. Every export is made whole in memory before anything is written.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ddsearch.config import PageSettings
from ddsearch.models import Hit
from ddsearch.search.cite import format_citation, make_citation
from ddsearch.search.pdfs import PageError
from ddsearch.search.render import HIGHLIGHT, draw, png

AUTHOR = "ddsearch"  # the annotations' author, as PDF readers and Zotero show it
PNG_SCALE = PageSettings.png_scale  # PageSettings says why


@dataclass(frozen=True)
class Skipped:
    """A hit an export could not highlight, and why."""

    rank: int
    paper: str
    reason: str


def note(query: str, hit: Hit, key: str) -> str:
    """What a highlight says: the question, the citation, the page label."""
    c = make_citation(hit, key)
    where = c.pages or "the paper"
    if c.printed and c.pdf_page:
        where += f" (PDF page {c.pdf_page})"
    return f"Question: {query}\nCitation: {format_citation(c)}\nPage: {where}"


def _date() -> str:
    return time.strftime("D:%Y%m%d%H%M%SZ", time.gmtime())


def _annotate(writer, page, rects, text: str, name: str) -> None:
    """A highlight over ``rects`` on ``page`` of ``writer``, its note in a popup beside it."""
    from pypdf.annotations import Highlight, Popup
    from pypdf.generic import ArrayObject, FloatObject, NameObject, TextStringObject

    quads = [v for x0, y0, x1, y1 in rects for v in (x0, y1, x1, y1, x0, y0, x1, y0)]
    box = (min(r[0] for r in rects), min(r[1] for r in rects),
           max(r[2] for r in rects), max(r[3] for r in rects))  # fmt: skip
    mark = Highlight(rect=box, quad_points=ArrayObject(FloatObject(v) for v in quads),
                     highlight_color=bytes(HIGHLIGHT).hex(), printing=True,
                     title_bar=AUTHOR)  # fmt: skip
    mark[NameObject("/Contents")] = TextStringObject(text)
    mark[NameObject("/NM")] = TextStringObject(name)
    mark[NameObject("/M")] = TextStringObject(_date())
    added = writer.add_annotation(page, mark)
    width = float(page.mediabox.right)
    popup = Popup(rect=(min(box[2] + 4, width - 200), box[3] - 120, min(box[2] + 204, width),
                        box[3]), parent=added)  # fmt: skip
    added[NameObject("/Popup")] = writer.add_annotation(page, popup).indirect_reference


def _placed(hits: Sequence[Hit]) -> tuple[list[Hit], list[Skipped]]:
    placed, skipped = [], []
    for hit in hits:
        if hit.highlight:
            placed.append(hit)
        else:
            skipped.append(Skipped(hit.rank, hit.paper.id, "the quote was not found on its page"))
    return placed, skipped


def packet(query: str, hits: Sequence[Hit], keys: dict[str, str], pdfs, records) -> tuple[
        bytes, list[Skipped]]:  # fmt: skip
    """A reading packet: each hit's cited pages in rank order, the quote highlighted with its
    note, and a bookmark per hit. A hit whose quote is not found keeps its pages and a note,
    without a highlight (it is in the skipped list)."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.annotations import Text
    from pypdf.generic import NameObject, TextStringObject

    writer = PdfWriter()
    writer.add_metadata({"/Title": f"ddsearch: {query}", "/Creator": AUTHOR})
    readers: dict[str, list] = {}  # a paper's readers: a page cited twice is cloned twice
    used: dict[tuple[str, int], int] = {}
    skipped = []
    for hit in hits:
        text = note(query, hit, keys[hit.paper.id])
        path = pdfs.path(records[hit.paper.id])
        marks = {h.page: h.rects for h in hit.highlight}
        first = None
        for number in sorted(set(hit.cited_pages) | set(marks)):
            n = used[(hit.paper.id, number)] = used.get((hit.paper.id, number), 0) + 1
            shelf = readers.setdefault(hit.paper.id, [])
            while len(shelf) < n:
                shelf.append(PdfReader(path))
            if not 1 <= number <= len(shelf[n - 1].pages):
                raise PageError(f"page {number} is not in the PDF of {hit.paper.id}")
            page = writer.add_page(shelf[n - 1].pages[number - 1])
            first = page if first is None else first
            if number in marks:
                _annotate(writer, page, marks[number], text, f"ddsearch-{hit.rank}-{number}")
        if not hit.highlight:
            skipped.append(Skipped(hit.rank, hit.paper.id, "the quote was not found on its page"))
            sticky = Text(rect=(20, 700, 40, 720), text=text, open=False)
            sticky[NameObject("/T")] = TextStringObject(AUTHOR)
            if first is not None:  # a hit with no cited page in the PDF has no page to mark
                writer.add_annotation(first, sticky)
        c = make_citation(hit, keys[hit.paper.id])
        title = f"{hit.rank}. {hit.paper.title}" + (f", {c.pages}" if c.pages else "")
        writer.add_outline_item(title=title, page_number=first)
    writer.page_mode = "/UseOutlines"
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue(), skipped


def annotated(query: str, hits: Sequence[Hit], keys: dict[str, str], pdfs, records) -> tuple[
        dict[str, bytes], list[Skipped]]:  # fmt: skip
    """Copies of the cited papers' own PDFs ({paper id: bytes}) with a highlight on each
    hit's quote, its note the question and the citation. The original's bytes come first,
    unchanged; the annotations follow as an incremental update."""
    from pypdf import PdfWriter

    placed, skipped = _placed(hits)
    copies: dict[str, bytes] = {}
    for pid in dict.fromkeys(h.paper.id for h in placed):
        writer = PdfWriter(pdfs.path(records[pid]), incremental=True)
        for hit in (h for h in placed if h.paper.id == pid):
            text = note(query, hit, keys[pid])
            for h in hit.highlight:
                _annotate(writer, writer.pages[h.page - 1], h.rects, text,
                          f"ddsearch-{hit.rank}-{h.page}")  # fmt: skip
        out = io.BytesIO()
        writer.write(out)
        copies[pid] = out.getvalue()
    return copies, skipped


def page_images(hits: Sequence[Hit], pdfs, records, scale: float = PNG_SCALE) -> list[bytes]:
    """Each hit's cited page as a PNG, the quote highlighted; a quote that goes on over a
    page break shows its pages one under the other."""
    import numpy as np

    out = []
    for hit in hits:
        path = pdfs.path(records[hit.paper.id])
        marks = {h.page: h.rects for h in hit.highlight}
        images = [draw(pdfs, path, n, scale=scale, marks=marks.get(n, ()))[0]
                  for n in sorted(marks or hit.cited_pages)]  # fmt: skip
        width = max(i.shape[1] for i in images)
        padded = [np.pad(i, ((0, 0), (0, width - i.shape[1]), (0, 0)), constant_values=255)
                  for i in images]  # fmt: skip
        out.append(png(np.concatenate(padded)))
    return out


def image_names(hits: Sequence[Hit]) -> list[str]:
    """File names of :func:`page_images` in a folder: rank, paper, first cited page."""
    width = len(str(len(hits)))
    return [f"{h.rank:0{width}d}-{h.paper.id}-p{min(h.cited_pages, default=0)}.png"
            for h in hits]  # fmt: skip


def write_all(files: dict[Path, bytes], force: bool = False) -> list[Path]:
    """Write every file (checked first: none is overwritten without ``force``), each
    atomically."""
    from ddsearch.search.export import check_target, write_atomic

    for path in files:
        check_target(path, force)
    return [write_atomic(path, data, force=force) for path, data in files.items()]
