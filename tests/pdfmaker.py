"""A dependency-free writer of small, real PDFs for tests.

``make_pdf(path, [["line 1", "line 2"], ["page 2 line 1"]])`` writes one text line per list
item in Helvetica (a standard Type1 font, WinAnsiEncoding) with hand-built content streams,
a correct cross-reference table and trailer, and an optional /Info Title. Text between
``**`` is set in Helvetica-Bold (``"**Leader election** Raft uses ..."``), text between ``__``
in small print (a footnote: ``"__3Note that ...__"``).

A line may also be a list of pieces, each placed after the one before it by its own gap in
points, for what plain lines cannot show: ``Words`` (drawn as a text object of its own, so
pdfium sees only the gap between them), ``Math`` (glyphs of a font named like TeX's CMMI10
whose /Differences name them ``epsilon1`` and ``precedesequal``, names pdfium does not
know), ``Type3`` (glyphs of a Type 3 font whose names no list knows) and ``Picture`` (a
filled box drawn where a glyph would stand, as some PDFs draw a symbol).

Helpers for broken files: ``truncated_pdf``, ``not_a_pdf``, ``textless_pdf``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, in points
MARGIN = 72


def escape(text: str) -> bytes:
    """A PDF literal string body: WinAnsi (cp1252) bytes, with \\ ( ) and non-ASCII escaped."""
    out = bytearray()
    for byte in text.encode("cp1252", errors="replace"):
        if byte in b"\\()":
            out += b"\\" + bytes([byte])
        elif 32 <= byte < 127:
            out.append(byte)
        else:
            out += b"\\%03o" % byte
    return bytes(out)


# Helvetica's advance widths (per 1000 units of the font size), ASCII 32-126, from its AFM
_HELVETICA = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722,
    722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722,
    667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556,
    556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500,
    500, 334, 260, 334, 584,
]  # fmt: skip
MATH_CODES = {"epsilon1": 15, "precedesequal": 16}  # the Math font's glyphs, as named in it
_SYMBOL_WIDTH = 500  # every Math and Type3 glyph's advance


def text_width(text: str, font_size: float = 10) -> float:
    """The advance of ``text`` set in Helvetica, in points."""
    units = sum(_HELVETICA[ord(ch) - 32] if " " <= ch <= "~" else 556 for ch in text)
    return units * font_size / 1000


@dataclass(frozen=True)
class Words:
    """Text drawn as a text object of its own, ``gap`` points after the previous piece."""

    text: str
    gap: float = 0.0


@dataclass(frozen=True)
class Math:
    """Glyphs of the TeX-like Math font, by name (see MATH_CODES)."""

    names: tuple[str, ...]
    gap: float = 0.0


@dataclass(frozen=True)
class Type3:
    """``count`` glyphs of a Type 3 font whose glyph names no glyph list knows."""

    count: int = 1
    gap: float = 0.0


@dataclass(frozen=True)
class Picture:
    """A filled box of ``width`` x ``height`` points standing on the line, as a symbol some
    PDFs draw instead of setting it in a font."""

    width: float = 5.0
    height: float = 7.0
    gap: float = 0.0


def _pieces(line: Sequence, y: float, font_size: float) -> list[bytes]:
    ops, x = [], float(MARGIN)
    for piece in line:
        x += piece.gap
        if isinstance(piece, Words):
            ops.append(b"BT /F1 %g Tf %g %g Td (%s) Tj ET" % (font_size, x, y, escape(piece.text)))
            x += text_width(piece.text, font_size)
        elif isinstance(piece, Picture):
            ops.append(b"%g %g %g %g re f" % (x, y, piece.width, piece.height))
            x += piece.width
        else:
            font, codes = (
                (b"F3", bytes(MATH_CODES[n] for n in piece.names))
                if isinstance(piece, Math)
                else (b"F4", bytes([1]) * piece.count)
            )
            body = b"".join(b"\\%03o" % c for c in codes)
            ops.append(b"BT /%s %g Tf %g %g Td (%s) Tj ET" % (font, font_size, x, y, body))
            x += len(codes) * _SYMBOL_WIDTH * font_size / 1000
    return ops


def content_stream(lines: Sequence[str | Sequence], font_size: float = 10) -> bytes:
    """Drawing operators for one page: each line its own BT ... ET at its own height."""
    leading = font_size * 1.4
    ops = []
    y = PAGE_HEIGHT - MARGIN
    for line in lines:
        if not isinstance(line, str):
            ops.extend(_pieces(line, y, font_size))
            y -= leading
            continue
        shows, bold, small = [], False, False
        for piece in re.split(r"(\*\*|__)", line):
            if piece in ("**", "__"):
                bold, small = bold ^ (piece == "**"), small ^ (piece == "__")
            elif piece:
                size = font_size * (0.8 if small else 1)
                shows.append(b"/F%d %g Tf (%s) Tj" % (2 if bold else 1, size, escape(piece)))
        shows = b" ".join(shows)
        ops.append(b"BT %d %g Td %s ET" % (MARGIN, y, shows))
        y -= leading
    return b"\n".join(ops) + b"\n"


def _pdf_string(text: str) -> bytes:
    return b"(" + escape(text) + b")"


def pdf_bytes(
    pages: Sequence[Sequence[str] | bytes],
    title: str | None = None,
    font_size: float = 10,
    compress: bool = False,
) -> bytes:
    """The bytes of a PDF with one page per item of ``pages``.

    A page is a list of text lines, or a raw content stream (bytes) for pages no text list
    can describe. ``compress`` Flate-encodes the content streams.
    """
    if not pages:
        raise ValueError("a PDF needs at least one page")
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below, once the page tree's number is known
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    bold = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
    )
    names = sorted(MATH_CODES.items(), key=lambda item: item[1])
    glyph = b"%d 0 0 0 400 600 d1 0 0 400 600 re f" % _SYMBOL_WIDTH  # a box, for every glyph
    box = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(glyph), glyph))

    def type3(base: bytes, glyphs: list[tuple[str, int]]) -> int:
        first, last = glyphs[0][1], glyphs[-1][1]
        return add(
            b"<< /Type /Font /Subtype /Type3%s /FontBBox [0 0 400 600] "
            b"/FontMatrix [0.001 0 0 0.001 0 0] /CharProcs << %s >> "
            b"/Encoding << /Type /Encoding /Differences [%s] >> /FirstChar %d /LastChar %d "
            b"/Widths [%s] >>"
            % (
                base, b" ".join(b"/%s %d 0 R" % (n.encode(), box) for n, _ in glyphs),
                b" ".join(b"%d /%s" % (c, n.encode()) for n, c in glyphs), first, last,
                b" ".join(b"%d" % _SYMBOL_WIDTH for _ in range(first, last + 1)),
            )
        )  # fmt: skip

    math = type3(b" /BaseFont /CMMI10", names)  # named as a TeX font, glyphs by TeX's names
    nameless = type3(b"", [("qz7", 1)])  # as a bitmap font's glyphs: names no list knows
    kids = []
    for page in pages:
        stream = page if isinstance(page, bytes) else content_stream(page, font_size)
        head = b"/Length %d" % len(stream)
        if compress:
            stream = zlib.compress(stream, 9)
            head = b"/Length %d /Filter /FlateDecode" % len(stream)
        contents = add(b"<< %s >>\nstream\n%s\nendstream" % (head, stream))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] "
                b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R /F3 %d 0 R /F4 %d 0 R >> >> "
                b"/Contents %d 0 R >>"
                % (tree, PAGE_WIDTH, PAGE_HEIGHT, font, bold, math, nameless, contents)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    refs = b" ".join(b"%d 0 R" % k for k in kids)
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    info = None
    if title is not None:
        info = add(b"<< /Title %s /Producer (ddsearch tests) >>" % _pdf_string(title))

    return objects_pdf(objects, catalog, info)


def objects_pdf(objects: Sequence[bytes], root: int = 1, info: int | None = None) -> bytes:
    """A PDF file of ``objects`` (object n is objects[n - 1]; ``root`` the catalog's number),
    with a correct cross-reference table and trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"  # each entry exactly 20 bytes, as the spec requires
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"trailer\n<< /Size %d /Root %d 0 R" % (len(objects) + 1, root)
    if info is not None:
        trailer += b" /Info %d 0 R" % info
    out += trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def make_pdf(
    path: str | Path,
    pages: Sequence[Sequence[str]],
    title: str | None = None,
    font_size: float = 10,
) -> Path:
    """Write a PDF with one text line per item of each page's list; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pdf_bytes(pages, title=title, font_size=font_size))
    return path


def truncated_pdf(path: str | Path, pages: Sequence[Sequence[str]], keep: float = 0.5) -> Path:
    """A PDF cut off after ``keep`` of its bytes: the header survives, the xref does not."""
    data = pdf_bytes(pages)
    path = Path(path)
    path.write_bytes(data[: max(16, int(len(data) * keep))])
    return path


def not_a_pdf(path: str | Path, text: str = "<html><body>Not found</body></html>\n") -> Path:
    """A file named like a PDF whose bytes are something else (an HTML error page)."""
    path = Path(path)
    path.write_text(text, encoding="utf-8")
    return path


def textless_pdf(path: str | Path, n_pages: int = 1) -> Path:
    """A valid PDF whose pages draw nothing: no text layer at all."""
    return make_pdf(path, [[] for _ in range(n_pages)])
