"""The index as MCP tools (search, cite, papers, page; refs, cited_by, path: the citation
graph) for assistants: over stdio (``ddsearch mcp``) and over streamable HTTP at ``/mcp``
under ``ddsearch serve``.

Built on the official ``mcp`` SDK; the jobs are the :class:`~ddsearch.service.Service`'s.
"""

# no "from __future__ import annotations": the routes' and tools' parameter types are made
# from the settings inside the factory, and FastAPI and the MCP SDK read them at definition

import json
from typing import Annotated, Literal

from mcp.server.mcpserver import Image
from mcp_types import TextContent
from pydantic import BaseModel, Field

from ddsearch import __version__
from ddsearch.config import PageSettings, QuerySettings, Settings
from ddsearch.errors import UserError
from ddsearch.models import CiteFormat
from ddsearch.search.validate import check_text
from ddsearch.serve.schemas import QuestionReading, ReadingStep, ReferenceEntry, Respelled
from ddsearch.service import Service

# what the SDK's MCPServer serves besides tools, which this server does not: with their
# handlers gone, initialize advertises tools only and these answer "method not found"
_NOT_SERVED = ("prompts/", "resources/", "completion/")


class Passage(BaseModel):
    """One passage as an assistant cites it."""

    rank: int
    paper: str = Field(description="The paper id")
    title: str
    year: int | None
    page_label: str | None = Field(description='What to cite: "p. 8", "PDF p. 3"')
    section: str | None
    quote: str = Field(description="The 1-3 sentences that answer (the passage, if none)")
    link: str | None = Field(description="The PDF opened at the quote's page")
    citation_key: str = Field(description="Its key in the 'cite' tool's BibTeX")
    citation: str = Field(description="A one-line reference with the page")
    highlight: list[dict] = Field(
        description="Where the quote stands on its PDF pages: {page, box, rects}, each rect "
        "[x0, y0, x1, y1] in PDF points ('page' draws the page with the quote highlighted)"
    )


class Found(BaseModel):
    """What the search tool answers."""

    query: str
    weak_match: bool = Field(description="Even the best passage is far from the question")
    reading: QuestionReading | None = Field(
        description="How the question was read: what it asks without the words that say which "
        "system, and the likeliest papers (null when search runs with fixed weights)"
    )
    respelled: list[Respelled] = Field(
        description="Words of the query no passage holds, searched as the word one typing "
        "slip away ([] when none)"
    )
    passages: list[Passage]


def passages(doc: dict, hits) -> list[dict]:
    """Each result of the search JSON cut to what an assistant cites."""
    from ddsearch.search.cite import format_citation, make_citation

    return [
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
            "highlight": r["highlight"],
        }
        for hit, r in zip(hits, doc["results"])
    ]


class References(BaseModel):
    """What the refs tool answers: the entries of the paper's list, in order."""

    references: list[ReferenceEntry]


class CitedBy(BaseModel):
    """What the cited_by tool answers: an entry per citing paper (``id``: the citing paper)."""

    cited_by: list[ReferenceEntry]


class ReadingOrder(BaseModel):
    """What the path tool answers: the papers to read, prerequisites first."""

    path: list[ReadingStep]


class Tools:
    """What the tools do, apart from the protocol; every job runs on the service's workers."""

    def __init__(self, service: Service):
        self.service = service

    async def run(self, job, *args):
        """A refusal becomes the SDK's ToolError: a tool result with isError and the one-line
        reason, not a crash report."""
        from mcp.server.mcpserver.exceptions import ToolError

        try:
            return await self.service.call(job, *args)
        except UserError as e:
            raise ToolError(str(e)) from None

    def search(self, query: str, k: int, papers: list[str]) -> Found:
        """The search JSON of ``query --json``, its results as :func:`passages`."""
        from ddsearch.search.export import render_json

        query = check_text(query, self.service.settings.query)
        hits, keys = self.service.search(query, k, papers)
        doc = json.loads(render_json(query, hits or [], keys))
        return Found(query=doc["query"], weak_match=doc["weak_match"], reading=doc["reading"],
                     respelled=doc["respelled"],
                     passages=[Passage(**p) for p in passages(doc, hits)])  # fmt: skip

    def page(self, paper: str, page: int, quote: str | None, scale: float) -> list:
        """The page as a PNG image, the quote highlighted where it stands, and a caption."""
        image, caption = self.service.quoted_page(paper, page, quote, scale)
        return [Image(data=image, format="png"), TextContent(type="text", text=caption)]


def make_server(service: Service):
    """The MCP server with its tools, over ``service``."""
    from mcp.server.mcpserver import MCPServer

    tools = Tools(service)
    limits = service.settings.query
    server = MCPServer(
        "ddsearch",
        version=__version__,
        instructions="Search classic distributed-systems papers. Quote the passages returned "
        "and cite them with their citation and page label; 'cite' gives BibTeX for the keys.",
    )

    # the bounds are advertised in the schemas and checked by ddsearch.search.validate, whose
    # messages every interface shares (the SDK's own would be pydantic's)
    query_schema = {"maxLength": limits.max_chars, "minLength": 1}
    k_schema = {"minimum": 1, "maximum": limits.max_k}

    @server.tool()
    async def search(
        query: Annotated[str, Field(description="The question", json_schema_extra=query_schema)],
        k: Annotated[
            int, Field(strict=True, description="How many", json_schema_extra=k_schema)
        ] = limits.assistant_k,  # fmt: skip
        papers: Annotated[
            list[str] | None, Field(description="Only these paper ids (see 'papers')")
        ] = None,
    ) -> Found:
        """Passages of the papers that answer a question, best first, each with paper, title,
        page label, quote, a link to the PDF page and a citation key. ``papers`` restricts the
        search to those paper ids (see the 'papers' tool)."""
        return await tools.run(tools.search, query, k, list(papers or ()))

    @server.tool()
    async def cite(
        ids: Annotated[list[str], Field(min_length=1, description="Paper ids")],
        format: Literal[CiteFormat.BIB, CiteFormat.CSL, CiteFormat.RIS] = CiteFormat.BIB,  # noqa: A002
    ) -> str:
        """The bibliography entries of papers by id: format 'bib' (BibTeX), 'csl' (CSL-JSON)
        or 'ris'."""
        return await tools.run(service.cite, list(ids), format)

    @server.tool()
    async def page(
        paper: Annotated[str, Field(description="The paper id (as 'search' gives it)")],
        page: Annotated[int, Field(ge=1, strict=True, description="The PDF page (1-based)")],
        quote: Annotated[
            str | None,
            Field(max_length=5000, description="Text to highlight on it, e.g. a passage's quote"),
        ] = None,
        scale: Annotated[
            float,
            Field(
                ge=PageSettings.mcp_min_scale,
                le=PageSettings.max_scale,
                description="Pixels per PDF point",
            ),
        ] = 1.0,
    ) -> list[Image | TextContent]:
        """A page of an indexed paper as an image (PNG), with ``quote`` highlighted where it
        stands on the page: the reader checks a citation by looking at it. An error when the
        quote is not on that page."""
        return await tools.run(tools.page, paper, page, quote, scale)

    @server.tool()
    async def papers() -> dict:
        """Every paper of the catalog and the index: id, title, year, status, chunks."""
        return {"papers": await tools.run(service.papers)}

    paper_field = Field(min_length=1, description="The paper id (see 'papers')")

    @server.tool()
    async def refs(
        paper: Annotated[str, paper_field],
        all: Annotated[bool, Field(description="Every entry, those naming no known paper too")]  # noqa: A002
        = False,
    ) -> References:  # fmt: skip
        """What a paper cites that the collection or catalog holds, in the order of its
        reference list: each entry's id (the cited paper), label, text, and the sentences of
        the paper citing it with their page label, quote and link. An error when the paper
        has no reference list that can be found."""
        return References(references=await tools.run(service.refs, paper, all))

    @server.tool()
    async def cited_by(paper: Annotated[str, paper_field]) -> CitedBy:
        """The papers of the collection that cite a paper: each citing paper's id, its entry
        and the sentences saying what it takes from it, with page label, quote and link."""
        return CitedBy(cited_by=await tools.run(service.cited_by, paper))

    @server.tool()
    async def path(
        papers: Annotated[list[str], Field(min_length=1, max_length=QuerySettings.max_path_papers,
                                           description="The paper ids to read")],
        depth: Annotated[int, Field(ge=1, le=QuerySettings.max_depth, description="Follow "
                                    "references this many "
                                    "steps: 1 is what the papers cite, 2 what those cite too")]
        = 1,
    ) -> ReadingOrder:  # fmt: skip
        """A reading order for these papers: the papers of the collection they build on,
        prerequisites first, each with the papers of the order that depend on it and the
        sentences saying why it matters."""
        return ReadingOrder(path=await tools.run(service.path, list(papers), depth))

    handlers = server._lowlevel_server._request_handlers  # no public way to leave them out
    for method in [m for m in handlers if m.startswith(_NOT_SERVED)]:
        del handlers[method]
    return server


def run_stdio(settings: Settings, catalog=None) -> None:
    """One worker, loaded on the first call, so that the handshake is immediate."""
    service = Service(settings, catalog, workers=1)
    try:
        make_server(service).run("stdio")
    finally:
        service.close()
