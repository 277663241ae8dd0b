"""A dependency-free writer of small, real PDFs for tests.

``make_pdf(path, [["line 1", "line 2"], ["page 2 line 1"]])`` writes one text line per list
item in Helvetica (a standard Type1 font, WinAnsiEncoding) with hand-built content streams,
a correct cross-reference table and trailer, and an optional /Info Title. Text between
``**`` is set in Helvetica-Bold (``"**Leader election** Raft uses ..."``), text between ``__``
in small print (a footnote: ``"__3Note that ...__"``).

Helpers for broken files: ``truncated_pdf``, ``not_a_pdf``, ``textless_pdf``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
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


def content_stream(lines: Sequence[str], font_size: float = 10) -> bytes:
    """Drawing operators for one page: each line its own BT ... ET at its own height."""
    leading = font_size * 1.4
    ops = []
    y = PAGE_HEIGHT - MARGIN
    for line in lines:
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
                b"/Resources << /Font << /F1 %d 0 R /F2 %d 0 R >> >> /Contents %d 0 R >>"
                % (tree, PAGE_WIDTH, PAGE_HEIGHT, font, bold, contents)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    refs = b" ".join(b"%d 0 R" % k for k in kids)
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (refs, len(kids))
    info = None
    if title is not None:
        info = add(b"<< /Title %s /Producer (ddsearch tests) >>" % _pdf_string(title))

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
    trailer = b"trailer\n<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
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
