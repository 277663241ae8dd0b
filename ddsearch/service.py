"""What ``serve`` and ``mcp`` answer, apart from any protocol: searches, papers, citations.

Every job runs on a small pool of worker threads, each with its own Searcher (its SQLite
connection and caches belong to one thread); all share one embedder, whose ONNX session runs
concurrently and releases the GIL. Jobs beyond ``max_pending`` in flight (running or queued)
are refused at once with :class:`~ddsearch.errors.BusyError` rather than queued without bound.
Queries are checked by ddsearch.search.validate, as on the command line.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ddsearch.catalog import Catalog, UnknownIdError, resolve_ids
from ddsearch.config import Settings
from ddsearch.errors import BusyError, NotFoundError, QueryError
from ddsearch.models import CiteFormat, Mode, Paper, Results
from ddsearch.search.validate import check_papers, check_text


class Service:
    """The index behind the server and the MCP tools; ``await call(job, ...)`` runs a job.

    ``settings.chroma_url`` makes the index a cache of a Chroma server's, refreshed at most
    every ``settings.serve.refresh_seconds``; a local index is re-read when another process
    changes it. ``searcher`` (tests) replaces the pool by one given Searcher on one worker.
    """

    def __init__(self, settings: Settings, catalog: Catalog | None = None, *,
                 workers: int | None = None, max_pending: int | None = None,
                 refresh_seconds: float | None = None, searcher: Any = None):  # fmt: skip
        serve = settings.serve
        self.settings = settings
        self.catalog = catalog
        self.refresh_seconds = serve.refresh_seconds if refresh_seconds is None else refresh_seconds
        if searcher is not None:
            self.workers = 1
        else:
            self.workers = (
                serve.worker_count() if workers is None else min(workers, serve.max_workers)
            )
        self._given = searcher
        self._lock = threading.Lock()
        self._embedder: Any = None  # the first Searcher's, shared by the others
        self._local = threading.local()
        self._slots = threading.BoundedSemaphore(max_pending or serve.max_pending)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ddsearch-search")
        self._highlighter: Any = None  # the PDFs' pages, shared by the workers (pdfium locks)
        self._images: OrderedDict[tuple, bytes] = OrderedDict()  # page images drawn lately
        self._images_lock = threading.Lock()

    # -- running jobs ---------------------------------------------------------------------------
    async def call(self, job: Callable, *args: Any) -> Any:
        """``job(*args)`` on a worker thread; BusyError at once past the bound."""
        if not self._slots.acquire(blocking=False):
            raise BusyError("too many requests in flight", "try again shortly")
        try:
            future = self._pool.submit(job, *args)
        except BaseException:
            self._slots.release()
            raise
        # the slot is the job's, not the request's: a client that goes away frees none
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)

    def start(self) -> None:
        """Load the model and a Searcher on every worker now, not on the first requests."""
        ready = threading.Barrier(self.workers)

        def load() -> None:
            self._searcher()
            ready.wait(600)  # keeps this thread busy until every worker has loaded its own

        for f in [self._pool.submit(load) for _ in range(self.workers)]:
            f.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._highlighter is not None:
            self._highlighter.pdfs.close()

    # -- the worker's Searcher --------------------------------------------------------------------
    def _searcher(self):
        """This thread's Searcher, loaded on first use and re-read if the index changed."""
        w = self._local
        if getattr(w, "searcher", None) is None:
            w.searcher = self._given or self._load()
            w.searcher.warm()
            w.keys = w.searcher.citation_keys()
            w.checked = time.monotonic()
            return w.searcher
        s = w.searcher
        server = not s.store.chroma.embedded  # a Chroma server: checked every refresh_seconds
        if not server or time.monotonic() - w.checked >= self.refresh_seconds:
            w.checked = time.monotonic()
            if s.refresh():
                w.keys = s.citation_keys()
                if server:  # a server client builds its own postings; locally, ingest does
                    s.warm()
        return s

    def _load(self):
        from ddsearch.search.searcher import Searcher

        settings = self.settings
        with self._lock:  # the first loads the model; the others share it
            s = Searcher(settings.home, catalog=self.catalog, chroma_url=settings.chroma_url,
                         chroma_token=settings.chroma_token, embedder=self._embedder,
                         settings=settings.search, limits=settings.query)  # fmt: skip
            if self._embedder is None:
                s.encode_query("warm up")  # load the model now, not on a query
                self._embedder = s.embedder
        return s

    # -- jobs (run on a worker) -----------------------------------------------------------------
    def search(self, q: str, k: int, papers: Sequence[str] = (),
               mode: str = Mode.HYBRID) -> tuple[Results | None, dict[str, str]]:  # fmt: skip
        """``(hits, citation keys)`` with quotes; no query (the empty page): ``(None, {})``."""
        s = self._searcher()
        papers = check_papers(papers, s.records, self.catalog or ())  # told even without q
        if not q.strip() and len(q) <= self.settings.query.max_chars:
            return None, {}
        hits = s.search(q, k, papers=papers, mode=mode)
        s.add_quotes(q.strip(), hits)
        self.highlighter().add(hits, s.records)
        return hits, self._local.keys

    def highlighter(self):
        """Where quotes stand on the indexed PDFs' pages (one for all workers)."""
        if self._highlighter is None:
            from ddsearch.search.highlight import Highlighter
            from ddsearch.search.pdfs import Pdfs

            with self._lock:
                if self._highlighter is None:
                    self._highlighter = Highlighter(Pdfs(self.settings.pdf_cache))
        return self._highlighter

    def _indexed(self, paper: str):
        """(this worker's Searcher, the indexed id ``paper`` names, its record); 404 if none."""
        s = self._searcher()
        try:
            (pid,) = resolve_ids([paper], s.records)
        except UnknownIdError as e:
            raise NotFoundError(f"paper id not in the index: {e}") from None
        return s, pid, s.records[pid]

    def page_image(self, paper: str, number: int, scale: float | None = None,
                   width: int | None = None, marks=(), crop: bool = False) -> bytes:  # fmt: skip
        """The PNG of page ``number`` of an indexed paper, the ``marks`` (rectangles in PDF
        points) highlighted; ``crop``: only the part around them. The latest are kept."""
        from ddsearch.search.render import page_png

        _, pid, record = self._indexed(paper)
        key = (pid, record.sha256, number, scale, width, tuple(map(tuple, marks)), crop)
        with self._images_lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        image = page_png(self.highlighter().pdfs, record, number, scale=scale, width=width,
                         marks=marks, crop=crop)  # fmt: skip
        with self._images_lock:
            self._images[key] = image
            while sum(map(len, self._images.values())) > self.settings.page.cache_bytes:
                self._images.popitem(last=False)
        return image

    def quoted_page(self, paper: str, number: int, quote: str | None, scale: float = 1.0):
        """(PNG, caption) of page ``number`` of an indexed paper, ``quote`` highlighted where it
        stands on it (looked for across the page breaks around it too); NotFoundError
        when the quote is not on the page."""
        from ddsearch.search.cite import author_string

        s, pid, record = self._indexed(paper)
        marks: list = []
        if quote and quote.strip():
            pdfs = self.highlighter().pdfs
            last = pdfs.page_count(pdfs.path(record))
            near = [n for n in (number - 1, number, number + 1) if 1 <= n <= last]
            found = self.highlighter().locate(record, near, quote)
            marks = [r for h in found if h.page == number for r in h.rects]
            if not marks:
                raise NotFoundError(f"the quote is not on page {number} of {pid}")
        image = self.page_image(pid, number, scale, None, marks, False)
        paper_ = s.paper(pid)
        who = author_string(paper_.authors) or "Anonymous"
        caption = f"PDF page {number} of {who} ({paper_.year or 'n.d.'}), {paper_.title}" + (
            ", the quote highlighted" if marks else ""
        )
        return image, caption

    def search_json(self, q: str, k: int, papers: Sequence[str] = (),
                    mode: str = Mode.HYBRID) -> str:  # fmt: skip
        """The JSON of ``query --json``, byte for byte."""
        from ddsearch.search.export import render_json

        text = check_text(q, self.settings.query)
        hits, keys = self.search(q, k, papers, mode)
        return render_json(text, hits or Results(), keys)

    def papers(self) -> list[dict]:
        """The rows of ``papers --json``."""
        from ddsearch.catalog import load_catalog
        from ddsearch.status import paper_statuses

        catalog = self.catalog if self.catalog is not None else load_catalog()
        return [r.as_dict() for r in paper_statuses(self.settings, catalog)]

    def known_papers(self) -> dict[str, Paper]:
        """Every citable paper by id: the catalog's and the index's."""
        from ddsearch.search.cite import known_papers

        s = self._searcher()
        return known_papers(self.catalog or (), (r.paper for r in s.records.values()))

    def paper_ids(self) -> tuple[list[str], list[str]]:
        """(indexed ids, citable ids), sorted: what the OpenAPI document enumerates."""
        return sorted(self._searcher().records), sorted(self.known_papers())

    def cite(self, ids: Sequence[str], fmt: str = CiteFormat.BIB) -> str:
        """The bibliography entries of papers by id (``cite ID... --format``)."""
        from ddsearch.search.export import render_papers

        try:
            fmt = CiteFormat(fmt)
        except ValueError:
            raise QueryError(f"format must be one of: {', '.join(CiteFormat)}") from None
        if not ids:
            raise QueryError("give at least one paper id")
        known = self.known_papers()
        try:
            ids = resolve_ids(ids, known)
        except UnknownIdError as e:
            raise NotFoundError(f"unknown paper id(s): {e}") from None
        return render_papers(fmt, [known[i] for i in ids], self._local.keys)

    # -- the citation graph -----------------------------------------------------------------
    def graph(self):
        """The citation graph over this worker's store, as it stands now (reading the lists'
        rows is a few small queries: it is made per request, so it is never stale)."""
        from ddsearch.catalog import load_catalog
        from ddsearch.search.graph import Graph

        catalog = self.catalog if self.catalog is not None else load_catalog()
        return Graph(self._searcher().store, catalog)

    def refs(self, paper: str, everything: bool = False) -> list[dict]:
        """The entries of ``refs ID --json`` (``everything``: ``--all``)."""
        g = self.graph()
        return [g.edge_json(e) for e in g.refs(paper, everything=everything)]

    def cited_by(self, paper: str) -> list[dict]:
        """The entries of ``cited-by ID --json``."""
        g = self.graph()
        return [g.edge_json(e) for e in g.cited_by(paper)]

    def path(self, papers: Sequence[str], depth: int = 1) -> list[dict]:
        """The steps of ``path ID... --json``."""
        g = self.graph()
        return [g.step_json(s) for s in g.path(list(papers), depth)]

    def graph_text(self, fmt: str) -> str:
        """``ddsearch graph --format fmt``'s output."""
        from ddsearch.search.graph import render_graph

        return render_graph(self.graph(), fmt)
