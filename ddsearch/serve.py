"""``ddsearch serve``: a small HTTP JSON API and search page over one index.

The model and the index are loaded once. Everything that touches them runs on one worker
thread (the model is already multi-threaded inside; SQLite connections belong to one thread),
and requests beyond ``max_pending`` in flight are refused at once with 503 rather than queued
without bound. The JSON of ``/search`` is ``query --json``'s (``render_json``), byte for byte.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

from ddsearch import __version__
from ddsearch.config import Settings

MAX_QUERY_CHARS = 1000
MAX_K = 100
MODES = ("hybrid", "dense", "lexical")
CITE_FORMATS = {
    "bib": "application/x-bibtex; charset=utf-8",
    "csl": "application/vnd.citationstyles.csl+json; charset=utf-8",
    "ris": "application/x-research-info-systems; charset=utf-8",
}
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"


class ApiError(Exception):
    """A request the API refuses: status and a one-line message, sent as JSON."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _json(status: int, doc) -> Response:
    body = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return Response(status, JSON_TYPE, body.encode())


def error_response(status: int, message: str) -> Response:
    return _json(status, {"error": {"status": status, "message": message}})


def _params(query: str, allowed: dict[str, bool]) -> dict[str, list[str]]:
    """Parsed query parameters; ``allowed`` maps a name to whether it may repeat."""
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "the query string is not valid UTF-8 URL encoding") from None
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        names = ", ".join(unknown)
        raise ApiError(400, f"unknown parameter(s): {names}; allowed: {', '.join(allowed)}")
    for name, values in params.items():
        if len(values) > 1 and not allowed[name]:
            raise ApiError(400, f"parameter {name!r} given more than once")
    return params


class App:
    """The request handling, apart from the socket: ``handle(method, target) -> Response``.

    ``settings.chroma_url`` makes the index a cache of a Chroma server's, refreshed at most
    every ``refresh_seconds``; a local index is re-read when another process changes it.
    """

    def __init__(
        self,
        settings: Settings,
        catalog=None,
        *,
        max_pending: int = 64,
        refresh_seconds: float = 2.0,
        searcher=None,
        token: str | None = None,
        workers: int | None = None,
    ):
        self._lock = threading.Lock()
        self.settings = settings
        self.token = token or None
        self.catalog = catalog
        self.refresh_seconds = refresh_seconds
        self._slots = threading.BoundedSemaphore(max_pending)
        # each worker thread owns a Searcher (its SQLite connection and caches); they share one
        # embedder, whose ONNX session runs concurrently and releases the GIL
        workers = 1 if searcher is not None else max(1, min(workers or os.cpu_count() or 1, 8))
        self._given = searcher
        self._embedder = None
        self._local = threading.local()
        self._worker = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ddsearch-search")
        ready = threading.Barrier(workers)
        # one load per thread: the barrier keeps each thread busy until all have started
        for f in [self._worker.submit(self._load, ready) for _ in range(workers)]:
            f.result()

    # -- the worker threads -------------------------------------------------------------------
    def _load(self, ready: threading.Barrier):
        w = self._local
        if self._given is not None:
            w.searcher = self._given
        else:
            from ddsearch.search.searcher import Searcher

            with self._lock:  # the first loads the model; the others take it
                w.searcher = Searcher(
                    self.settings.home,
                    catalog=self.catalog,
                    chroma_url=self.settings.chroma_url,
                    embedder=self._embedder,
                    settings=self.settings.search,
                )
                if self._embedder is None:
                    w.searcher.encode_query("warm up")  # load the model now, not on a query
                    self._embedder = w.searcher.embedder
        w.searcher.warm()
        w.keys = w.searcher.citation_keys()
        w.checked = time.monotonic()
        ready.wait(600)

    @property
    def _keys(self) -> dict[str, str]:
        return self._local.keys

    def _fresh(self):
        """The searcher, re-reading the index first if it changed since the last request."""
        w = self._local
        s = w.searcher
        remote = s.store.remote is not None
        if not remote or time.monotonic() - w.checked >= self.refresh_seconds:
            w.checked = time.monotonic()
            if s.refresh():
                w.keys = s.citation_keys()
                if remote:  # a server client builds its own postings; locally, ingest does
                    s.warm()
        return s

    def _run(self, fn, *args):
        return self._worker.submit(fn, *args).result()

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    # -- routing --------------------------------------------------------------------------------
    def authorized(self, authorization: str | None) -> bool:
        """Whether the Authorization header carries the token (Bearer, or Basic with the token
        as password, which a browser asks for): compared in constant time."""
        if self.token is None:
            return True
        scheme, _, value = (authorization or "").strip().partition(" ")
        given = value.strip()
        if scheme.lower() == "basic":
            import base64
            import binascii

            try:
                given = base64.b64decode(given, validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())

    def handle(self, method: str, target: str, authorization: str | None = None) -> Response:
        if not self.authorized(authorization) and urlsplit(target).path != "/health":
            r = error_response(401, "a token is required: send 'Authorization: Bearer TOKEN'")
            page = urlsplit(target).path == "/"
            r.headers = (("WWW-Authenticate", f'{"Basic" if page else "Bearer"} realm="ddsearch"'),)
            return r
        if method not in ("GET", "HEAD"):
            r = error_response(405, f"method {method} is not allowed; use GET or HEAD")
            r.headers = (("Allow", "GET, HEAD"),)
            return r
        if not self._slots.acquire(blocking=False):
            r = error_response(503, "too many requests in flight; try again shortly")
            r.headers = (("Retry-After", "1"),)
            return r
        try:
            return self._route(target)
        except ApiError as e:
            return error_response(e.status, e.message)
        except Exception as e:  # the index or model failed: say so in one line, keep serving
            from ddsearch.index.embed import ModelError
            from ddsearch.index.store import IndexError_
            from ddsearch.search.searcher import QueryError

            first_line = (str(e).splitlines() or [type(e).__name__])[0]
            if isinstance(e, QueryError):
                return error_response(400, first_line)
            if isinstance(e, IndexError_ | ModelError):
                return error_response(503, first_line)
            print(f"ddsearch serve: {type(e).__name__}: {e}", file=sys.stderr)
            return error_response(500, f"internal error: {type(e).__name__}")
        finally:
            self._slots.release()

    def _route(self, target: str) -> Response:
        parts = urlsplit(target)
        path = parts.path
        if path == "/":
            return self.page(parts.query)
        if path == "/search":
            return self.search(parts.query)
        if path == "/papers":
            _params(parts.query, {})
            return self._run(self._papers)
        if path.startswith("/cite/") and path.count("/") == 2:
            return self.cite(path[len("/cite/") :], parts.query)
        if path == "/health":  # for a load balancer or a supervisor: no token, no index read
            _params(parts.query, {})
            return _json(200, {"status": "ok", "version": __version__})
        if path == "/openapi.json":
            _params(parts.query, {})
            return self._run(self._spec)
        raise ApiError(404, f"no such resource: {path}")

    # -- endpoints ------------------------------------------------------------------------------
    def _search_args(self, query: str, need_q: bool = True) -> tuple[str, int, list[str], str]:
        p = _params(query, {"q": False, "k": False, "paper": True, "mode": False})
        q = p.get("q", [""])[0]
        if need_q and ("q" not in p or not q.strip()):
            raise ApiError(400, "parameter 'q' is required and must not be empty")
        if len(q) > MAX_QUERY_CHARS:
            raise ApiError(400, f"parameter 'q' is longer than {MAX_QUERY_CHARS} characters")
        raw_k = p.get("k", ["10"])[0]
        if not raw_k.isascii() or not raw_k.isdigit() or not 1 <= int(raw_k) <= MAX_K:
            raise ApiError(400, f"parameter 'k' must be an integer from 1 to {MAX_K}")
        mode = p.get("mode", ["hybrid"])[0]
        if mode not in MODES:
            raise ApiError(400, f"parameter 'mode' must be one of: {', '.join(MODES)}")
        return q.strip(), int(raw_k), p.get("paper", []), mode

    def _hits(self, q: str, k: int, papers: list[str], mode: str):
        s = self._fresh()
        unknown = sorted(set(papers) - set(s.records))
        if unknown:
            raise ApiError(400, f"paper id(s) not in the index: {', '.join(unknown)}")
        if not q:
            return None, {}  # the page without a query: parameters checked, nothing to search
        hits = s.search(q, k, papers=papers, mode=mode)
        s.add_quotes(q, hits)
        return hits, self._keys

    def search(self, query: str) -> Response:
        from ddsearch.search.export import render_json

        q, k, papers, mode = self._search_args(query)
        hits, keys = self._run(self._hits, q, k, papers, mode)
        return Response(200, JSON_TYPE, render_json(q, hits, keys).encode())

    def _spec(self) -> Response:
        s = self._fresh()
        cited = sorted({p.id for p in (self.catalog or ())} | set(s.records))
        return _json(200, openapi_spec(sorted(s.records), cited))

    def _papers(self) -> Response:
        from ddsearch.catalog import load_catalog
        from ddsearch.status import paper_statuses

        self._fresh()
        catalog = self.catalog if self.catalog is not None else load_catalog()
        rows = paper_statuses(self.settings, catalog)
        return _json(200, [r.as_dict() for r in rows])

    def _cite(self, paper_id: str, fmt: str) -> Response:
        from ddsearch.search.export import render_papers

        s = self._fresh()
        known = {p.id: p for p in (self.catalog or ())}
        known.update({pid: s.paper(pid) for pid in s.records})
        if paper_id not in known:
            raise ApiError(404, f"unknown paper id: {paper_id}")
        body = render_papers(fmt, [known[paper_id]], self._keys)
        return Response(200, CITE_FORMATS[fmt], body.encode())

    def cite(self, paper_id: str, query: str) -> Response:
        from urllib.parse import unquote

        p = _params(query, {"format": False})
        fmt = p.get("format", ["bib"])[0]
        if fmt not in CITE_FORMATS:
            raise ApiError(400, f"parameter 'format' must be one of: {', '.join(CITE_FORMATS)}")
        try:
            paper_id = unquote(paper_id, errors="strict")
        except UnicodeDecodeError:
            raise ApiError(400, "the paper id is not valid UTF-8 URL encoding") from None
        if not paper_id:
            raise ApiError(404, "no paper id given: /cite/{id}")
        return self._run(self._cite, paper_id, fmt)

    def page(self, query: str) -> Response:
        """The page; a bad request is shown on the page (HTML, 400), not as JSON."""
        hits, error, keys, q, weak = None, None, {}, "", False
        try:
            p = _params(query, {"q": False, "k": False, "paper": True, "mode": False})
            q = p.get("q", [""])[0]
            hits, keys = self._run(self._hits, *self._search_args(query, need_q=False))
        except ApiError as e:
            error = e.message
        status = 400 if error else 200
        if hits:  # the flag as the search JSON has it, so the page and /search agree
            from ddsearch.search.export import render_json

            weak = bool(json.loads(render_json(q.strip(), hits, keys)).get("weak_match"))
        body = render_page(q, hits, keys, error, weak)
        return Response(status, HTML_TYPE, body.encode())


# ---------------------------------------------------------------------------------- HTML page
_CSS = """
body{font:15px/1.4 system-ui,sans-serif;max-width:76rem;margin:.8rem auto;padding:0 1rem;color:#222}
header{display:flex;gap:1rem;align-items:center;margin-bottom:.6rem}header b{font-size:1.2rem}
form{display:flex;gap:.5rem;flex:1}input[type=search]{flex:1;font-size:1rem;padding:.3rem}
ol{list-style:none;padding:0;margin:0}
li.hit{border:1px solid #ddd;border-radius:4px;padding:.35rem .6rem;margin-bottom:.4rem}
.head{font-size:.9rem;color:#555}.head .title{font-weight:600;color:#222}
blockquote{margin:.2rem 0;padding-left:.6rem;border-left:3px solid #c90;
 display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}
.foot{display:flex;gap:.6rem;align-items:baseline;font-size:.82rem;color:#035}
.citation{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.foot button{font-size:.78rem;padding:0 .4rem}.where{color:#555;font-size:.85rem}
.error{color:#a00}.weak{background:#fff3cd;border:1px solid #e0c36a;padding:.3rem .6rem}
"""
# copy buttons: the only script, allowed by its hash in the CSP; searching needs none
_SCRIPT = (
    "document.addEventListener('click',function(ev){var b=ev.target.closest('button[data-copy]');"
    "if(!b)return;var t=b.getAttribute('data-copy'),done=function(){b.textContent='Copied'};"
    "if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(t).then(done)"
    "}else{var a=document.createElement('textarea');a.value=t;document.body.appendChild(a);"
    "a.select();document.execCommand('copy');a.remove();done()}});"
)
_SCRIPT_HASH = (
    "sha256-"
    + __import__("base64")
    .b64encode(__import__("hashlib").sha256(_SCRIPT.encode()).digest())
    .decode()
)
PAGE_CSP = (
    f"default-src 'none'; style-src 'unsafe-inline'; script-src '{_SCRIPT_HASH}'; "
    "form-action 'self'"
)


def _safe_href(url: str | None) -> str | None:
    """Only http(s) and file links: a catalog URL must never become a javascript: link."""
    if not url:
        return None
    scheme = urlsplit(url).scheme.lower()
    return url if scheme in ("http", "https", "file") else None


def render_page(
    q: str, hits, keys: dict[str, str], error: str | None = None, weak: bool = False
) -> str:
    """The search page; every piece of text from the query or the index is escaped.
    ``weak``: the search JSON's ``weak_match``, shown as a notice above the results."""
    from ddsearch.search.cite import format_citation, make_citation
    from ddsearch.search.export import bibtex_entry, md_escape

    e = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(q + ' – ') if q else ''}ddsearch</title><style>{_CSS}</style></head><body>",
        "<header><b>ddsearch</b>",
        '<form method="get" action="/" role="search">',
        f'<input type="search" name="q" value="{e(q)}" maxlength="{MAX_QUERY_CHARS}" '
        'placeholder="Why does Raft use randomized election timeouts?" autofocus required>',
        '<button type="submit">Search</button></form></header>',
    ]
    if weak and hits:
        out.append(
            '<p class="weak" id="weak-match">These passages match the question only weakly: '
            "the papers may not answer it. Try other words.</p>"
        )
    if error:
        out.append(f'<p class="error" id="error">{e(error)}</p>')
    elif hits is not None and not hits:
        out.append('<p id="no-results">No results.</p>')
    elif hits:
        out.append('<ol id="results">')
        for hit in hits:
            key = keys.get(hit.paper.id, hit.paper.id)
            c = make_citation(hit, key)
            head = e(hit.paper.title) + (f" ({hit.paper.year})" if hit.paper.year else "")
            where = [c.pages or "", f"§ {hit.chunk.section}" if hit.chunk.section else ""]
            quote_text = hit.quote or hit.chunk.text
            href = _safe_href(c.link)
            md = (
                f"> {md_escape(quote_text)}\n\n"
                + (f"[@{key}, {c.pages}]" if c.pages else f"[@{key}]")
                + (f" <{c.link}>" if href else "")
            )
            out.append(
                f'<li class="hit" data-paper="{e(hit.paper.id)}" data-rank="{hit.rank}">'
                f'<div class="head"><span class="title">{head}</span>'
                f"{' · ' + e(' · '.join(w for w in where if w)) if any(where) else ''}</div>"
                f'<blockquote class="quote" title="{e(quote_text)}">{e(quote_text)}</blockquote>'
                f'<div class="foot"><span class="citation">{e(format_citation(c))}</span>'
            )
            if href:
                label = f"Open {c.pages}" if c.pages else "Open the paper"
                out.append(f'<a class="page-link" href="{e(href)}">{e(label)}</a>')
            cite = f"/cite/{quote(hit.paper.id, safe='')}"
            out.append(
                f'<a class="bib-link" href="{e(cite)}?format=bib">BibTeX</a>'
                f'<button type="button" class="copy-md" data-copy="{e(md)}">Copy Markdown</button>'
                f'<button type="button" class="copy-bib" '
                f'data-copy="{e(bibtex_entry(hit.paper, key))}">Copy BibTeX</button></div></li>'
            )
        out.append("</ol>")
    out.append(
        '<p class="where">JSON API: <a href="/openapi.json">/openapi.json</a> · '
        f'<a href="/papers">/papers</a> · ddsearch {e(__version__)}</p>'
        f"<script>{_SCRIPT}</script></body></html>"
    )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------- OpenAPI
def openapi_spec(indexed: list[str] | None = None, citable: list[str] | None = None) -> dict:
    """The OpenAPI 3.0 description of the API (what schemathesis tests the server against).

    With ``indexed`` and ``citable`` the paper ids are enumerated, so the spec says exactly
    which requests succeed: other ids are 400 in /search and 404 in /cite.
    """
    paper_item = {"type": "string", **({"enum": indexed} if indexed else {})}
    cite_id = {"type": "string", "minLength": 1, **({"enum": citable} if citable else {})}
    err = {"$ref": "#/components/responses/Error"}
    nullable_str = {"type": "string", "nullable": True}
    result = {
        "type": "object",
        "required": [
            "rank",
            "paper",
            "key",
            "title",
            "year",
            "pages",
            "printed_pages",
            "page_label",
            "passage_pages",
            "section",
            "score",
            "scores",
            "quote",
            "text",
            "link",
            "citation",
        ],
        "properties": {
            "rank": {"type": "integer", "minimum": 1},
            "paper": {"type": "string"},
            "key": {"type": "string"},
            "title": {"type": "string"},
            "year": {"type": "integer", "nullable": True},
            "pages": {"type": "array", "items": {"type": "integer"}},
            "printed_pages": {"type": "array", "items": {"type": "string"}},
            "page_label": nullable_str,
            "passage_pages": {"type": "array", "items": {"type": "integer"}},
            "section": nullable_str,
            "score": {"type": "number"},
            "scores": {"type": "object", "additionalProperties": {"type": "number"}},
            "quote": nullable_str,
            "text": {"type": "string"},
            "link": nullable_str,
            "citation": {
                "type": "object",
                "required": ["authors", "year", "title", "venue", "doi", "url"],
                "properties": {
                    "authors": {"type": "array", "items": {"type": "string"}},
                    "year": {"type": "integer", "nullable": True},
                    "title": {"type": "string"},
                    "venue": nullable_str,
                    "doi": nullable_str,
                    "url": nullable_str,
                },
            },
        },
    }
    paper_status = {
        "type": "object",
        "required": ["id", "title", "year", "status", "chunks", "source"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "year": {"type": "integer", "nullable": True},
            "status": {
                "type": "string",
                "enum": ["indexed", "downloaded", "not downloaded", "no open-access URL"],
            },
            "chunks": {"type": "integer", "minimum": 0},
            "source": nullable_str,
        },
    }
    search_params = [
        {
            "name": "q",
            "in": "query",
            "required": True,
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_QUERY_CHARS,
                "pattern": r"[^\W_]",  # a word to search for: a letter or digit (Unicode)
            },
        },
        {
            "name": "k",
            "in": "query",
            "required": False,
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_K,
                "default": 10,
            },
        },
        {
            "name": "paper",
            "in": "query",
            "required": False,
            "description": "Only this paper id (repeatable); unknown ids are 400",
            "schema": {"type": "array", "items": paper_item},
            "style": "form",
            "explode": True,
        },
        {
            "name": "mode",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": list(MODES), "default": "hybrid"},
        },
    ]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ddsearch",
            "version": __version__,
            "description": "Search landmark distributed-systems papers: passages with paper, "
            "page and citation. Only GET and HEAD; errors are JSON.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/search": {
                "get": {
                    "operationId": "search",
                    "summary": "Ranked passages for a question (the schema of query --json)",
                    "parameters": search_params,
                    "responses": {
                        "200": {
                            "description": "Results, best first",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["query", "results"],
                                        "properties": {
                                            "query": {"type": "string"},
                                            "results": {"type": "array", "items": result},
                                        },
                                    }
                                }
                            },
                        },
                        "400": err,
                        "503": err,
                    },
                }
            },
            "/papers": {
                "get": {
                    "operationId": "papers",
                    "summary": "The catalog and indexed papers (the schema of papers --json)",
                    "responses": {
                        "200": {
                            "description": "Every paper, catalog order first",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": paper_status}
                                }
                            },
                        },
                        "503": err,
                    },
                }
            },
            "/cite/{id}": {
                "get": {
                    "operationId": "cite",
                    "summary": "The bibliography entry of one paper",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": cite_id},
                        {
                            "name": "format",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "string",
                                "enum": list(CITE_FORMATS),
                                "default": "bib",
                            },
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "BibTeX, CSL-JSON or RIS",
                            "content": {
                                CITE_FORMATS["bib"].split(";")[0]: {"schema": {"type": "string"}},
                                CITE_FORMATS["csl"].split(";")[0]: {
                                    "schema": {"type": "array", "items": {"type": "object"}}
                                },
                                CITE_FORMATS["ris"].split(";")[0]: {"schema": {"type": "string"}},
                            },
                        },
                        "400": err,
                        "404": err,
                        "503": err,
                    },
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether the server is up (no token needed)",
                    "responses": {
                        "200": {
                            "description": "Up",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["status", "version"],
                                        "properties": {
                                            "status": {"type": "string", "enum": ["ok"]},
                                            "version": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This description",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.0",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
            "/": {
                "get": {
                    "operationId": "page",
                    "summary": "The HTML search page (server-rendered; q, k, paper, mode as "
                    "for /search, all optional)",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS},
                        },
                        *({**param, "required": False} for param in search_params[1:]),
                    ],
                    "responses": {
                        "200": {
                            "description": "The page",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        "400": {
                            "description": "The page, with the error",
                            "content": {"text/html": {"schema": {"type": "string"}}},
                        },
                        "503": err,
                    },
                }
            },
        },
        "components": {
            "responses": {
                "Error": {
                    "description": "What was wrong with the request",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["error"],
                                "properties": {
                                    "error": {
                                        "type": "object",
                                        "required": ["status", "message"],
                                        "properties": {
                                            "status": {"type": "integer"},
                                            "message": {"type": "string"},
                                        },
                                    }
                                },
                            }
                        }
                    },
                }
            }
        },
    }


# ---------------------------------------------------------------------------------- the server
class _Handler(BaseHTTPRequestHandler):
    server_version = f"ddsearch/{__version__}"
    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.0"  # a garbled request line still gets headers
    timeout = 15  # a client that stalls mid-request loses its connection, not a thread forever
    app: App  # set on the subclass that serve() makes

    def _respond(self, r: Response, head: bool = False) -> None:
        self.send_response(r.status)
        self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        if r.content_type.startswith("text/html"):
            self.send_header(
                "Content-Security-Policy",
                PAGE_CSP,
            )
        for name, value in r.headers:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(r.body)

    def do_GET(self):  # noqa: N802 - http.server's naming
        self._respond(self.app.handle("GET", self.path, self.headers.get("Authorization")))

    def do_HEAD(self):  # noqa: N802
        auth = self.headers.get("Authorization")
        self._respond(self.app.handle("HEAD", self.path, auth), head=True)

    def _refuse(self):
        self.close_connection = True  # an unread request body must not be taken for a request
        self._respond(self.app.handle(self.command, self.path, self.headers.get("Authorization")))

    def __getattr__(self, name: str):
        if name.startswith("do_"):  # any other method, even a made-up one: 405, not 501
            return self._refuse
        raise AttributeError(name)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (bad request line, 414, 501) as JSON too."""
        self.close_connection = True
        status = HTTPStatus(code)
        r = error_response(code, message or status.phrase)
        self.send_response(code, message)
        self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(r.body)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if not self.server.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    quiet = False

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}"


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_server(app: App, host: str = "127.0.0.1", port: int = 8765, quiet: bool = False):
    """A bound, not yet serving server; port 0 picks a free port (see ``server.url``)."""
    import socket

    if not is_loopback(host) and app.token is None:
        raise PermissionError(
            f"refusing to listen on {host} without a token: pass --token or set DDSEARCH_TOKEN "
            "(or listen on 127.0.0.1)"
        )
    handler = type("Handler", (_Handler,), {"app": app})
    cls = Server
    if ":" in host:
        cls = type("Server6", (Server,), {"address_family": socket.AF_INET6})
    server = cls((host, port), handler)
    server.quiet = quiet
    return server
