"""Text per page from a PDF: pypdfium2 first, pypdf as the fallback."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

from ddsearch.models import Page

MAX_PAGES = 2000
MAX_PAGE_CHARS = 100_000  # a page with more text than this is cut: bounds a hostile PDF


class ExtractError(Exception):
    """One-line reason a PDF gave no usable text."""


@dataclass(frozen=True)
class Document:
    pages: list[Page]
    title: str | None  # from the PDF's metadata, when it has a plausible one
    engine: str  # which library produced the text


def _quiet_pypdf() -> None:
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pypdf")


def _pdfium_pages(path: Path) -> tuple[list[str], str | None]:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(str(path), password="")
    except pdfium.PdfiumError as e:
        raise ExtractError(f"not a readable PDF ({e})") from e
    try:
        if len(doc) > MAX_PAGES:
            raise ExtractError(f"{len(doc)} pages, more than the limit of {MAX_PAGES}")
        texts = []
        for i in range(len(doc)):
            page = doc[i]
            try:
                textpage = page.get_textpage()
                texts.append(textpage.get_text_range()[:MAX_PAGE_CHARS])
                textpage.close()
            finally:
                page.close()
        title = (doc.get_metadata_dict().get("Title") or "").strip() or None
        return texts, title
    finally:
        doc.close()


def _pypdf_pages(path: Path) -> tuple[list[str], str | None]:
    _quiet_pypdf()
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            reader.decrypt("")
        if len(reader.pages) > MAX_PAGES:
            raise ExtractError(f"{len(reader.pages)} pages, more than the limit of {MAX_PAGES}")
        texts = []
        for page in reader.pages:
            try:
                texts.append((page.extract_text() or "")[:MAX_PAGE_CHARS])
            except Exception:  # one bad page must not lose the others
                texts.append("")
        meta = reader.metadata
        title = (meta.title or "").strip() if meta else ""
        return texts, title or None
    except ExtractError:
        raise
    except Exception as e:
        raise ExtractError(f"not a readable PDF ({type(e).__name__}: {e})") from e


def extract(path: Path) -> Document:
    """Read every page's text; raise ExtractError when the file has none to give."""
    path = Path(path)
    with open(path, "rb") as f:
        if b"%PDF-" not in f.read(1024):
            raise ExtractError("not a PDF file")
    engine = "pdfium"
    try:
        texts, title = _pdfium_pages(path)
    except ExtractError:
        engine = "pypdf"
        texts, title = _pypdf_pages(path)
    if not any(t.strip() for t in texts) and engine == "pdfium":
        try:
            texts, title = _pypdf_pages(path)
            engine = "pypdf"
        except ExtractError:
            pass
    if not any(t.strip() for t in texts):
        raise ExtractError("no extractable text (a scan without a text layer?)")
    pages = [Page(number=i + 1, text=t) for i, t in enumerate(texts)]
    return Document(pages=pages, title=_plausible_title(title), engine=engine)


def _plausible_title(title: str | None) -> str | None:
    """PDF metadata titles are often file names or tool names; keep only real-looking ones."""
    if not title or len(title) < 8 or len(title.split()) < 2:
        return None
    lowered = title.lower()
    if lowered.endswith((".pdf", ".doc", ".dvi", ".tex", ".docx")) or "microsoft word" in lowered:
        return None
    return title
