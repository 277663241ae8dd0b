"""``ddsearch mcp``: the index as MCP tools (search, cite, papers) for assistants, over stdio.

Built on the official ``mcp`` SDK. The Searcher (its SQLite connection and the model) lives on
one worker thread, loaded on the first call so that the handshake is immediate.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

from ddsearch import __version__
from ddsearch.config import Settings

MAX_K = 50
FORMATS = ("bib", "csl", "ris")


class ToolError(ValueError):
    """A tool call that cannot be answered as asked: one line for the assistant."""


class Library:
    """What the tools do, apart from the protocol; every call runs on the one worker thread."""

    def __init__(self, settings: Settings, catalog=None):
        self.settings = settings
        self.catalog = catalog
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddsearch-mcp")
        self._searcher = None

    async def run(self, fn, *args):
        """fn(*args) on the worker; a refusal becomes the SDK's ToolError (a tool result with
        isError and the one-line reason, not a crash report)."""
        from mcp.server.mcpserver.exceptions import ToolError as SdkToolError

        from ddsearch.search.searcher import QueryError

        try:
            return await asyncio.wrap_future(self._worker.submit(fn, *args))
        except (ToolError, QueryError) as e:
            raise SdkToolError(str(e)) from None

    def _fresh(self):
        if self._searcher is None:
            from ddsearch.search.searcher import Searcher

            self._searcher = Searcher(
                self.settings.home,
                catalog=self.catalog,
                chroma_url=self.settings.chroma_url,
                settings=self.settings.search,
            )
        else:
            self._searcher.refresh()
        return self._searcher

    def search(self, query: str, k: int, papers: list[str]) -> dict:
        """The search JSON of ``query --json``, each result cut to what an assistant cites."""
        from ddsearch.search.cite import format_citation, make_citation
        from ddsearch.search.export import render_json

        query = (query or "").strip()
        if not query:
            raise ToolError("the query is empty")
        if not 1 <= k <= MAX_K:
            raise ToolError(f"k must be from 1 to {MAX_K}")
        s = self._fresh()
        unknown = sorted(set(papers) - set(s.records))
        if unknown:
            raise ToolError(f"paper id(s) not in the index: {', '.join(unknown)}")
        hits = s.search(query, k, papers=papers)
        s.add_quotes(query, hits)
        keys = s.citation_keys()
        doc = json.loads(render_json(query, hits, keys))
        passages = []
        for hit, r in zip(hits, doc["results"]):
            passages.append(
                {
                    "rank": r["rank"],
                    "paper": r["paper"],
                    "title": r["title"],
                    "year": r["year"],
                    "page_label": r["page_label"],
                    "section": r["section"],
                    "quote": r["quote"] or r["text"],
                    "link": r["link"],
                    "citation_key": r["key"],
                    "citation": format_citation(make_citation(hit, r["key"])),
                }
            )
        out = {k: v for k, v in doc.items() if k != "results"}  # query, and any flags
        return {**out, "passages": passages}

    def cite(self, ids: list[str], fmt: str) -> str:
        from ddsearch.search.export import render_papers

        if fmt not in FORMATS:
            raise ToolError(f"format must be one of: {', '.join(FORMATS)}")
        if not ids:
            raise ToolError("give at least one paper id")
        s = self._fresh()
        known = {p.id: p for p in (self.catalog or ())}
        known.update({pid: s.paper(pid) for pid in s.records})
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ToolError(f"unknown paper id(s): {', '.join(unknown)}")
        return render_papers(fmt, [known[i] for i in ids], s.citation_keys())

    def papers(self) -> list[dict]:
        from ddsearch.catalog import load_catalog
        from ddsearch.status import paper_statuses

        self._fresh()
        catalog = self.catalog if self.catalog is not None else load_catalog()
        return [r.as_dict() for r in paper_statuses(self.settings, catalog)]

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


def make_server(library: Library):
    """The MCP server with the three tools, over ``library``."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(
        "ddsearch",
        version=__version__,
        instructions="Search classic distributed-systems papers. Quote the passages returned "
        "and cite them with their citation and page label; 'cite' gives BibTeX for the keys.",
    )

    @server.tool()
    async def search(query: str, k: int = 5, papers: list[str] | None = None) -> dict:
        """Passages of the papers that answer a question, best first, each with paper, title,
        page label, quote, a link to the PDF page and a citation key. ``papers`` restricts the
        search to those paper ids (see the 'papers' tool)."""
        return await library.run(library.search, query, k, list(papers or ()))

    @server.tool()
    async def cite(ids: list[str], format: str = "bib") -> str:  # noqa: A002 - the tool's API
        """The bibliography entries of papers by id: format 'bib' (BibTeX), 'csl' (CSL-JSON)
        or 'ris'."""
        return await library.run(library.cite, ids, format)

    @server.tool()
    async def papers() -> dict:
        """Every paper of the catalog and the index: id, title, year, status, chunks."""
        return {"papers": await library.run(library.papers)}

    return server


def run_stdio(settings: Settings, catalog=None) -> None:
    library = Library(settings, catalog)
    try:
        make_server(library).run("stdio")
    finally:
        library.close()
