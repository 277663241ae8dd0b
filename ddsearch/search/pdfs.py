"""The indexed papers' own PDFs, read with pdfium for highlights, page images and exports.

A PDF is the one ingest read only if its sha256 is the one the index recorded: it is checked
once per file state (path, size, mtime), and a page of a PDF that is gone or has changed is
refused with a :class:`PageError`, never drawn from another file. Documents and pages stay
open in small LRU caches, so a page read for one hit serves the next.

pdfium is not thread-safe (not even across documents): every call into it holds ``LOCK``.
"""

from __future__ import annotations

import os
import threading
import unicodedata
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ddsearch.errors import NotFoundError, QueryError

LOCK = threading.RLock()


class PageError(NotFoundError):
    """A page that cannot be read: its PDF gone or changed since ingest, or no such page."""


class ImageError(QueryError):
    """A page image asked for past its bounds (scale, width, rectangles)."""


def letters(text: str) -> tuple[str, list[int]]:
    """The letters and digits of ``text``, case-folded and without accents (its *key*), and
    where each stands in ``text``. A ligature ("ﬁ") gives two, both at its one character."""
    import numpy as np

    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    small = codes < 128
    keep = np.zeros(len(codes), dtype=bool)
    keep[small] = _ASCII_LETTERS[codes[small]]
    folded = codes.copy()
    folded[small] = _ASCII_LOWER[codes[small]]
    at = np.flatnonzero(keep)
    wide = {}  # a character beyond ASCII: the letters it stands for ("é" -> "e", "ﬁ" -> "fi")
    for i in np.flatnonzero(~small).tolist():
        folds = "".join(c for c in unicodedata.normalize("NFKD", text[i]).casefold() if c.isalnum())
        if folds:
            wide[i] = folds
    if not wide:
        return folded[at].tobytes().decode("utf-32-le"), at.tolist()
    key: list[str] = []
    where: list[int] = []
    done = 0
    for i, folds in sorted(wide.items()):
        part = at[(at >= done) & (at < i)]
        key.append(folded[part].tobytes().decode("utf-32-le"))
        where += part.tolist()
        key.append(folds)
        where += [i] * len(folds)
        done = i + 1
    part = at[at >= done]
    key.append(folded[part].tobytes().decode("utf-32-le"))
    where += part.tolist()
    return "".join(key), where


def _ascii_tables():
    import numpy as np

    letters_ = np.zeros(128, dtype=bool)
    lower = np.arange(128, dtype="<u4")
    for c in range(128):
        letters_[c] = chr(c).isalnum()
        lower[c] = ord(chr(c).lower())
    return letters_, lower


_ASCII_LETTERS, _ASCII_LOWER = _ascii_tables()


class Page:
    """One open page: pdfium's handle, and its text page and characters (one per pdfium
    character index), read when first asked for: drawing a page needs neither."""

    def __init__(self, number: int, pdf_page):
        self.number, self.pdf_page = number, pdf_page  # pypdfium2.PdfPage
        self.box: tuple[float, float, float, float] = tuple(pdf_page.get_cropbox())  # points
        self._textpage = None
        self._text: str | None = None
        self._letters: tuple[str, list[int]] | None = None

    @property
    def textpage(self):
        """pypdfium2's PdfTextPage of the page."""
        if self._textpage is None:
            self._textpage = self.pdf_page.get_textpage()
        return self._textpage

    @property
    def text(self) -> str:
        """The page's characters, one per pdfium character index."""
        if self._text is None:
            self._text = _page_text(self.textpage)
        return self._text

    @property
    def key(self) -> str:
        """The page's :func:`letters`."""
        return self._keyed()[0]

    @property
    def at(self) -> list[int]:
        """Where each letter of :attr:`key` stands in :attr:`text`."""
        return self._keyed()[1]

    def _keyed(self) -> tuple[str, list[int]]:
        if self._letters is None:
            self._letters = letters(self.text)
        return self._letters

    def close(self) -> None:
        if self._textpage is not None:
            self._textpage.close()
        self.pdf_page.close()

    def hides(self, start: int, end: int) -> bool:
        """Whether most of the letters of characters start..end are drawn outside their clip
        path: text no reader sees (a figure's older version under the new one, a page drawn
        twice and cut away). A few letters are looked at: a text object is clipped whole."""
        places = [i for i in range(start, end) if self.text[i].isalnum()]
        sample = places[:: max(1, len(places) // 5)][:5]
        return sum(self._clipped(i) for i in sample) * 2 > len(sample)

    def _clipped(self, index: int) -> bool:
        from ddsearch.index.clip import char_hidden

        return char_hidden(self.textpage, index)


def _page_text(textpage) -> str:
    """The page's characters, one per pdfium index (pdfium's own text drops or swaps a few,
    e.g. an unmapped glyph, so it is used only when its length says it is one to one)."""
    import pypdfium2.raw as raw

    n = textpage.count_chars()
    text = textpage.get_text_range()
    if len(text) == n:
        return text
    return "".join(chr(raw.FPDFText_GetUnicode(textpage, i) or 0xFFFD) for i in range(n))


class Pdfs:
    """Open documents and pages of the indexed PDFs, each checked against its recorded sha256.

    ``cache``: the data home's PDF cache, where a record with a relative source is looked for.
    """

    def __init__(self, cache: Path, max_documents: int = 8, max_pages: int = 32):
        self.cache = Path(cache)
        self.max_documents, self.max_pages = max_documents, max_pages
        self._documents: OrderedDict[Path, tuple[tuple, Any]] = OrderedDict()
        self._pages: OrderedDict[tuple[Path, int], Page] = OrderedDict()
        self._checked: dict[Path, tuple[tuple, str]] = {}  # path -> (file state, sha256)

    # -- the file -------------------------------------------------------------------------
    def path(self, record) -> Path:
        """The PDF the paper was ingested from, if it is still there and unchanged."""
        from ddsearch.files import sha256_file

        path = record.pdf(self.cache)
        pid = record.paper.id
        try:
            st = path.stat()
        except OSError:
            raise PageError(
                f"the PDF of {pid} is gone from {path}: run 'ddsearch ingest {pid}' "
                "(with --from FILE for a local PDF) to bring it back"
            ) from None
        state = (st.st_size, st.st_mtime_ns, st.st_ino)
        with LOCK:
            known = self._checked.get(path)
        if known is None or known[0] != state:
            try:
                known = (state, sha256_file(path))
            except OSError as e:
                raise PageError(f"cannot read the PDF of {pid} ({e.strerror or e})") from None
            with LOCK:
                self._checked[path] = known
        if known[1] != record.sha256:
            raise PageError(
                f"the PDF of {pid} at {path} changed since it was ingested: run 'ddsearch "
                f"ingest {pid}' (with --from FILE for a local PDF) to index it again"
            )
        return path

    # -- pdfium ---------------------------------------------------------------------------
    def document(self, path: Path):
        """The open pypdfium2 document of ``path`` (call with ``LOCK`` held)."""
        import pypdfium2 as pdfium

        st = os.stat(path)
        state = (st.st_size, st.st_mtime_ns, st.st_ino)
        found = self._documents.get(path)
        if found is not None and found[0] == state:
            self._documents.move_to_end(path)
            return found[1]
        if found is not None:
            self._forget(path)
        try:
            doc = pdfium.PdfDocument(str(path), password="")
        except pdfium.PdfiumError as e:
            raise PageError(f"cannot open {path} ({e})") from None
        self._documents[path] = (state, doc)
        while len(self._documents) > self.max_documents:
            self._forget(next(iter(self._documents)))
        return doc

    def page_count(self, path: Path) -> int:
        with LOCK:
            return len(self.document(path))

    def page(self, path: Path, number: int) -> Page:
        """Page ``number`` (1-based) of ``path``, open (call with ``LOCK`` held, and keep
        holding it while the handles are used)."""
        doc = self.document(path)
        if not 1 <= number <= len(doc):
            raise PageError(f"page {number} is not in the PDF ({len(doc)} pages)")
        key = (path, number)
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
            return page
        page = Page(number, doc[number - 1])
        self._pages[key] = page
        while len(self._pages) > self.max_pages:
            self._pages.popitem(last=False)[1].close()
        return page

    def _forget(self, path: Path) -> None:
        for key in [k for k in self._pages if k[0] == path]:
            self._pages.pop(key).close()
        _, doc = self._documents.pop(path)
        doc.close()

    def close(self) -> None:
        with LOCK:
            for path in list(self._documents):
                self._forget(path)
