"""`ddsearch mcp`: a real process over stdio, driven by the official MCP SDK's own client."""

from __future__ import annotations

import json
import os
import sys

import anyio
import pytest
from _servers import REPO

from ddsearch.config import QuerySettings


def _session(home):
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "ddsearch.cli", "--home", str(home), "mcp"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


async def _talk(home, calls):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async with (
        stdio_client(_session(home)) as (read, write),
        ClientSession(read, write) as session,
    ):
        init = await session.initialize()
        tools = await session.list_tools()
        results = [await session.call_tool(name, args) for name, args in calls]
        return init, tools, results


def _payload(result):
    assert result.content, result
    return result.content[0].text


def test_mcp_stdio_session_lists_tools_and_searches(indexed_home):
    calls = [
        ("search", {"query": "how do keepers detect dark stations", "k": 2}),
        ("search", {"query": "which clekrs copy a sale", "k": 1, "papers": ["ledger"]}),
        ("cite", {"ids": ["orchard"], "format": "bib"}),
        ("papers", {}),
        ("search", {"query": "x", "papers": ["no-such-paper"]}),
    ]
    init, tools, (found, only, bib, papers, bad) = anyio.run(_talk, indexed_home, calls)
    assert init.server_info.name == "ddsearch"
    assert {t.name for t in tools.tools} == {
        "search",
        "cite",
        "papers",
        "page",
        "refs",
        "cited_by",
        "path",
    }
    by_name = {t.name: t for t in tools.tools}
    schema = by_name["search"].input_schema
    assert {"query", "k", "papers"} <= set(schema["properties"])
    limits = QuerySettings()
    k = schema["properties"]["k"]
    assert (k["minimum"], k["maximum"], k["default"]) == (1, limits.max_k, limits.assistant_k)
    assert schema["properties"]["query"]["maxLength"] == limits.max_chars
    assert by_name["cite"].input_schema["properties"]["format"]["enum"] == ["bib", "csl", "ris"]
    out = by_name["search"].output_schema  # the answer is typed: structured content too
    assert {"query", "weak_match", "reading", "passages"} <= set(out["properties"])
    assert found.structured_content["passages"][0]["paper"] == "lighthouse"
    reading = found.structured_content["reading"]  # what was asked, and of which papers
    assert reading["asks"] and reading["papers"][0]["id"] == "lighthouse"

    doc = json.loads(_payload(found))
    assert not found.is_error and doc["query"] == "how do keepers detect dark stations"
    assert len(doc["passages"]) == 2
    first = doc["passages"][0]
    assert first["paper"] == "lighthouse" and first["title"].startswith("Lighthouse")
    assert first["quote"] and first["page_label"] and first["citation_key"]
    assert first["link"] and "#page=" in first["link"]
    (where,) = first["highlight"]  # the quote's place on its page, in PDF points
    assert where["page"] in range(1, 4) and where["rects"] and where["box"] == [0, 0, 612, 792]
    assert [p["paper"] for p in json.loads(_payload(only))["passages"]] == ["ledger"]
    assert found.structured_content["respelled"] == []
    assert only.structured_content["respelled"] == [{"typed": "clekrs", "read": "clerks"}]

    assert _payload(bib).startswith("@") and "Orchard" in _payload(bib)
    rows = json.loads(_payload(papers))["papers"]
    indexed = {r["id"] for r in rows if r["status"] == "indexed"}
    assert indexed == {"lighthouse", "ledger", "orchard"}

    assert bad.is_error and "not in the index: no-such-paper" in _payload(bad)


@pytest.mark.parametrize(
    "args",
    [{"query": "   "}, {"query": "beacon", "k": 0}, {"query": "beacon", "k": 101},
     {"query": "beacon " * 200},
     {"query": "beacon", "k": "5"}, {"query": "beacon", "k": True}],
)  # fmt: skip
def test_mcp_search_refuses_bad_arguments(indexed_home, args):
    (_, _, (result,)) = anyio.run(_talk, indexed_home, [("search", args)])
    assert result.is_error


@pytest.mark.parametrize(
    "args, message",
    [({"query": "   "}, "the query is empty: give words to search for"),
     ({"query": "beacon", "k": 101}, "k must be an integer from 1 to 100, not 101"),
     ({"query": "beacon " * 200}, "the query is longer than 1000 characters")],
)  # fmt: skip
def test_mcp_refusals_say_what_every_interface_says(indexed_home, args, message):
    (_, _, (result,)) = anyio.run(_talk, indexed_home, [("search", args)])
    # the SDK says which tool failed; the rest is the line every interface gives
    assert result.is_error and _payload(result) == f"Error executing tool search: {message}"


def test_mcp_advertises_only_tools_and_answers_the_rest_without_a_traceback(indexed_home, tmp_path):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client
    from mcp.shared.exceptions import MCPError

    errors = tmp_path / "stderr.txt"

    async def talk():
        with open(errors, "w") as log:
            async with (
                stdio_client(_session(indexed_home), errlog=log) as (read, write),
                ClientSession(read, write) as session,
            ):
                init = await session.initialize()
                refused = []
                for call in (lambda: session.get_prompt("summary"), session.list_prompts,
                             session.list_resources):  # fmt: skip
                    try:
                        await call()
                    except MCPError as e:
                        refused.append(e.error.code)
                return init, refused

    init, refused = anyio.run(talk)
    caps = init.capabilities
    assert caps.tools is not None and caps.prompts is None and caps.resources is None
    assert refused == [-32601] * 3  # method not found
    assert "Traceback" not in errors.read_text()


def test_mcp_papers_lists_the_catalog_before_any_ingest(tmp_path):
    (_, _, (result,)) = anyio.run(_talk, tmp_path / "empty", [("papers", {})])
    rows = json.loads(_payload(result))["papers"]
    assert not result.is_error and rows and all(r["status"] != "indexed" for r in rows)


async def _search_then_page(home):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async with (
        stdio_client(_session(home)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        found = await session.call_tool("search", {"query": "beacon every ninety seconds", "k": 1})
        first = json.loads(_payload(found))["passages"][0]
        page = first["highlight"][0]["page"]
        args = {"paper": first["paper"], "page": page}
        shown = await session.call_tool("page", {**args, "quote": first["quote"]})
        plain = await session.call_tool("page", {**args, "scale": 0.5})
        elsewhere = await session.call_tool("page", {**args, "page": 3 - page % 3,
                                                     "quote": first["quote"]})  # fmt: skip
        beyond = await session.call_tool("page", {**args, "page": 40})
        return first, shown, plain, elsewhere, beyond


def test_mcp_page_shows_the_quote_highlighted(indexed_home):
    import base64
    import io

    import numpy as np
    from PIL import Image

    first, shown, plain, elsewhere, beyond = anyio.run(_search_then_page, indexed_home)
    image, caption = shown.content
    assert not shown.is_error and image.type == "image" and image.mime_type == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(image.data))))
    assert pixels.shape == (792, 612, 3)
    assert np.all(pixels == (255, 221, 0), axis=-1).sum() > 500  # the quote, highlighted
    assert caption.type == "text" and "Lighthouse" in caption.text and "highlighted" in caption.text
    small = np.asarray(Image.open(io.BytesIO(base64.b64decode(plain.content[0].data))))
    assert small.shape == (396, 306, 3) and not np.all(small == (255, 221, 0), axis=-1).any()
    assert elsewhere.is_error and "the quote is not on page" in _payload(elsewhere)
    assert beyond.is_error and "page 40 is not in the PDF" in _payload(beyond)
