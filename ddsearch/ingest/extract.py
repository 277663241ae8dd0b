"""Text per page from a PDF: pypdfium2 first, pypdf as the fallback.

The parsing runs in a worker process so that a hostile or broken PDF costs at most a bounded
amount of time and memory: each page has a time budget, the whole document has one, and the
worker's address space is capped. A worker that overruns or dies is killed and replaced; the
paper fails with a one-line reason and the run goes on.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ddsearch.config import Limits
from ddsearch.errors import UserError
from ddsearch.ingest.glyphs import Reader
from ddsearch.ingest.typeset import typeset
from ddsearch.models import Page

__all__ = ["Document", "ExtractError", "Limits", "extract"]

_TAIL = 8192  # '%%EOF' must appear within this many trailing bytes


class ExtractError(UserError):
    """One-line reason a PDF gave no usable text."""


class _Final(ExtractError):
    """A reason the other engine would give too: no point in trying it."""


@dataclass(frozen=True)
class Document:
    """A PDF's pages; with pdfium, a bold title's line starts with typeset.HEADING_MARK."""

    pages: list[Page]
    title: str | None  # from the PDF's metadata, when it has a plausible one
    engine: str  # which library produced the text


def _quiet_pypdf() -> None:
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pypdf")


# Each engine yields ("open", page_count, title), then ("page", index, text) for every page.


def _pdfium_pages(path: str, max_pages: int, max_page_chars: int) -> Iterator[tuple]:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(path, password="")
    except pdfium.PdfiumError as e:
        if "password" in str(e).lower():
            raise _Final("encrypted: needs a password") from None
        raise ExtractError(f"not a readable PDF ({e})") from None
    try:
        if len(doc) > max_pages:
            raise _Final(f"{len(doc)} pages, more than the limit of {max_pages}")
        title = (doc.get_metadata_dict().get("Title") or "").strip() or None
        yield "open", len(doc), title
        reader = Reader(path)
        for i in range(len(doc)):
            page = doc[i]
            try:
                textpage = page.get_textpage()
                text, source = reader.page_text(i, page, textpage)
                text = typeset(textpage.raw, text, source)
                yield "page", i, text[:max_page_chars]
                textpage.close()
            finally:
                page.close()
    finally:
        doc.close()


def _pypdf_pages(path: str, max_pages: int, max_page_chars: int) -> Iterator[tuple]:
    _quiet_pypdf()
    import pypdf

    try:
        reader = pypdf.PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Final("encrypted: needs a password")
        n = len(reader.pages)
        meta = reader.metadata
        title = (meta.title or "").strip() if meta else ""
    except ExtractError:
        raise
    except Exception as e:
        raise ExtractError(f"not a readable PDF ({type(e).__name__}: {e})") from None
    if n > max_pages:
        raise _Final(f"{n} pages, more than the limit of {max_pages}")
    yield "open", n, title or None
    for i in range(n):
        try:
            text = reader.pages[i].extract_text() or ""
        except Exception:  # one bad page must not lose the others
            text = ""
        yield "page", i, text[:max_page_chars]


_ENGINES = {"pdfium": _pdfium_pages, "pypdf": _pypdf_pages}


def _collect(events: Iterator[tuple], max_doc_chars: int) -> tuple[list[str], str | None]:
    texts: list[str] = []
    title = None
    total = 0
    for event in events:
        if event[0] == "open":
            texts, title = [""] * event[1], event[2]
        else:
            texts[event[1]] = event[2]
            total += len(event[2])
            if total > max_doc_chars:
                raise _Final(f"more than {max_doc_chars:,} characters of text")
    return texts, title


# --- the worker process -------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the ingest that started it dies."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # pragma: no cover - other platforms: the worker ends at EOF on its pipe
        pass


def _serve(jobs_fd: int, events_fd: int, memory: int) -> None:  # pragma: no cover - worker
    """The worker's loop: read (engine, path) jobs, send back the engine's events."""
    import signal
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent()
    if memory:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        except (ImportError, ValueError, OSError):
            pass
    jobs, events = Connection(jobs_fd, writable=False), Connection(events_fd, readable=False)
    while True:
        try:
            engine, path, caps = jobs.recv()
        except (EOFError, OSError):
            return
        try:
            for event in _ENGINES[engine](path, *caps):
                events.send(event)
            events.send(("done",))
        except _Final as e:
            events.send(("final", str(e)))
        except ExtractError as e:
            events.send(("error", str(e)))
        except MemoryError:
            events.send(("error", "not a readable PDF (parsing it ran out of memory)"))
        except Exception as e:
            events.send(("error", f"not a readable PDF ({type(e).__name__}: {e})"))


class _Worker:
    """A plain ``python -c`` child (not multiprocessing: that re-imports the caller's __main__)."""

    def __init__(self, memory: int):
        import subprocess
        import sys
        from multiprocessing.connection import Connection

        self.memory = memory
        jobs_r, jobs_w = os.pipe()
        events_r, events_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        code = "import sys; from ddsearch.ingest.extract import _serve; _serve(*map(int, sys.argv[1:]))"  # noqa: E501
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, str(jobs_r), str(events_w), str(memory)],
                pass_fds=(jobs_r, events_w),
                stdin=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        finally:
            os.close(jobs_r)
            os.close(events_w)
        self.jobs = Connection(jobs_w, readable=False)
        self.events = Connection(events_r, writable=False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.jobs.close()
        self.events.close()


_worker: _Worker | None = None


def _get_worker(memory: int) -> _Worker:
    global _worker
    if _worker is None or not _worker.alive() or _worker.memory != memory:
        if _worker is not None:
            _worker.kill()
        _worker = _Worker(memory)
    return _worker


def shutdown_worker() -> None:
    """Stop the extraction worker, if one runs (it also ends with this process)."""
    global _worker
    if _worker is not None:
        _worker.kill()
        _worker = None


def _isolated(engine: str, path: Path, limits: Limits) -> Iterator[tuple]:
    """The engine's events, produced in the worker under the time budgets."""
    worker = _get_worker(limits.memory)
    deadline = time.monotonic() + limits.doc_seconds
    done = False
    try:
        worker.jobs.send((engine, os.fspath(path), (limits.max_pages, limits.max_page_chars)))
        timeout, next_page = limits.open_seconds, None
        while True:
            wait = min(timeout, deadline - time.monotonic())
            if wait <= 0 or not worker.events.poll(wait):
                if next_page is None:
                    raise ExtractError(f"opening the PDF took over {limits.open_seconds:g}s")
                if time.monotonic() >= deadline:
                    raise ExtractError(f"text extraction took over {limits.doc_seconds:g}s")
                raise ExtractError(
                    f"page {next_page + 1}: text extraction took over {limits.page_seconds:g}s"
                )
            try:
                event = worker.events.recv()
            except (EOFError, OSError):
                where = f"page {next_page + 1}" if next_page is not None else "opening the PDF"
                raise ExtractError(f"{where}: the PDF parser crashed (out of memory?)") from None
            kind = event[0]
            if kind == "done":
                done = True
                return
            if kind == "final":
                done = True
                raise _Final(event[1])
            if kind == "error":
                done = True
                raise ExtractError(event[1])
            next_page = 0 if kind == "open" else event[1] + 1
            timeout = limits.page_seconds
            yield event
    finally:
        if not done:  # a budget overrun, a crash, Ctrl-C or a caller that stopped reading
            worker.kill()


def _read(engine: str, path: Path, limits: Limits) -> tuple[list[str], str | None]:
    if limits.isolate:
        events = _isolated(engine, path, limits)
    else:
        events = _ENGINES[engine](os.fspath(path), limits.max_pages, limits.max_page_chars)
    try:
        return _collect(events, limits.max_doc_chars)
    finally:
        events.close()  # type: ignore[attr-defined]  # both are generators


def check_file(path: Path) -> None:
    """The cheap checks of a PDF (it starts as one and ends as one), before any parsing: a
    damaged file fails at once, not after the model is prepared."""
    try:
        _check_file(Path(path))
    except OSError as e:
        raise ExtractError(f"cannot read the file ({e.strerror or e})") from None


def _check_file(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "rb") as f:
        if b"%PDF-" not in f.read(1024):
            raise ExtractError("not a PDF file" if size else "empty file, not a PDF")
        f.seek(max(0, size - _TAIL))
        if b"%%EOF" not in f.read():
            raise ExtractError("truncated or damaged PDF (no %%EOF at the end)")


def extract(path: Path, limits: Limits = Limits()) -> Document:
    """Read every page's text; raise ExtractError when the file has none to give."""
    path = Path(path)
    check_file(path)
    engine = "pdfium"
    try:
        texts, title = _read("pdfium", path, limits)
    except _Final:
        raise
    except ExtractError:
        engine = "pypdf"
        texts, title = _read("pypdf", path, limits)
    if not any(t.strip() for t in texts) and engine == "pdfium":
        try:
            texts, title = _read("pypdf", path, limits)
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
