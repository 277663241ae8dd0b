"""The ASGI app of ``ddsearch serve`` (FastAPI): the JSON API, the page, and MCP at ``/mcp``.

Routes, parameters and answers are declared once, as typed models, and ``/openapi.json`` is
generated from them. The JSON of ``/search`` is ``query --json``'s (``render_json``), byte for
byte; searches run on the :class:`~ddsearch.service.Service`'s worker threads, so the event
loop only routes.
"""

# no "from __future__ import annotations": the routes' and tools' parameter types are made
# from the settings inside the factory, and FastAPI and the MCP SDK read them at definition

import hmac
import json
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from pydantic import StringConstraints
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ddsearch import __version__
from ddsearch.config import QuerySettings
from ddsearch.errors import Problem, QueryError, UserError
from ddsearch.models import CiteFormat, GraphFormat, Mode
from ddsearch.search.render import (
    DEFAULT_SCALE,
    MAX_MARKS,
    MAX_SCALE,
    MAX_WIDTH,
    MIN_SCALE,
    MIN_WIDTH,
)
from ddsearch.search.validate import check_k, check_mode, check_text
from ddsearch.serve.page import PAGE_CSP, render_page
from ddsearch.serve.schemas import (
    ErrorBody,
    Health,
    PaperStatus,
    ReadingStep,
    ReferenceEntry,
    SearchAnswer,
)
from ddsearch.service import Service

MCP_PATH = "/mcp"
STATUS = {Problem.INPUT: 400, Problem.NOT_FOUND: 404, Problem.UNAVAILABLE: 503, Problem.BUSY: 503}
JSON_TYPE = "application/json; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"
PNG_TYPE = "image/png"
IMAGE_CACHING = "private, max-age=300"  # a browser keeps a page image a while, not across ingests
CITE_TYPES = {
    "bib": "application/x-bibtex; charset=utf-8",
    "csl": "application/vnd.citationstyles.csl+json; charset=utf-8",
    "ris": "application/x-research-info-systems; charset=utf-8",
}
GRAPH_TYPES = {"dot": "text/vnd.graphviz; charset=utf-8", "json": JSON_TYPE}
MAX_PATH_PAPERS, MAX_DEPTH = QuerySettings.max_path_papers, QuerySettings.max_depth


class ApiError(Exception):
    """A request the API refuses: status and a one-line message, sent as JSON."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def json_response(status: int, doc, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    return Response(body.encode(), status, headers, media_type=JSON_TYPE)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"error": {"status": status, "message": message}}, headers)


def authorized(authorization: str | None, token: str) -> bool:
    """Whether the Authorization header carries the token (Bearer, or Basic with the token as
    password, which a browser asks for): compared in constant time."""
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
    return hmac.compare_digest(given.encode(), token.encode())


class Guard:
    """ASGI middleware in front of the routes: the token (all but ``/health``), GET and HEAD
    only (MCP has its own methods), HEAD answered as GET without the body, and the headers
    every answer carries, MCP's included."""

    def __init__(self, app, token: str | None):
        self.app, self.token = app, token or None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope["path"], scope["method"]
        mcp = path == MCP_PATH
        head = method == "HEAD" and not mcp

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff")]
                types = [v for k, v in message.get("headers", ()) if k.lower() == b"content-type"]
                if types and types[0].startswith(b"text/html"):
                    extra.append((b"content-security-policy", PAGE_CSP.encode()))
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if (
            self.token
            and path != "/health"
            and not authorized(headers.get("authorization"), self.token)
        ):
            if path == "/":  # a browser asks for it: any user name, the token as password
                page = render_page("", None, {}, "a token is required: log in with any user "
                                   "name and the token as password")  # fmt: skip
                r = Response(page.encode(), 401, {"WWW-Authenticate": 'Basic realm="ddsearch"'},
                             media_type=HTML_TYPE)  # fmt: skip
            else:
                r = error_response(
                    401,
                    "a token is required: send 'Authorization: Bearer TOKEN'",
                    {"WWW-Authenticate": 'Bearer realm="ddsearch"'},
                )
            return await r(scope, receive, send_with_headers)
        if method not in ("GET", "HEAD") and not mcp:
            r = error_response(
                405, f"method {method} is not allowed; use GET or HEAD", {"Allow": "GET, HEAD"}
            )
            return await r(scope, receive, send_with_headers)
        if head:
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send_with_headers)


def only(**repeatable: bool):
    """A dependency that refuses unknown, repeated and non-UTF-8 query parameters, before the
    typed parameters are read (``repeatable`` maps each allowed name to whether it may repeat)."""

    def check(request: Request) -> None:
        query = request.scope.get("query_string", b"").decode("latin-1")
        try:
            params = parse_qs(query, keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "the query string is not valid UTF-8 URL encoding") from None
        unknown = sorted(set(params) - set(repeatable))
        if unknown:
            allowed = ", ".join(repeatable) or "none"
            raise ApiError(400, f"unknown parameter(s): {', '.join(unknown)}; allowed: {allowed}")
        for name, values in params.items():
            if len(values) > 1 and not repeatable[name]:
                raise ApiError(400, f"parameter {name!r} given more than once")

    return Depends(check)


def _validation_message(exc: RequestValidationError, limits: QuerySettings) -> str:
    """The first problem of a request, in one line: for a query's parameters, the message
    every interface gives (ddsearch.search.validate)."""
    err = exc.errors()[0]
    name, given = str(err["loc"][-1]), err.get("input")
    if name == "n":
        return "the page number must be a whole number from 1 (/page/PAPER/N.png)"
    if name == "scale":
        return f"parameter 'scale' must be a number from {MIN_SCALE} to {MAX_SCALE}"
    if name == "width":
        return f"parameter 'width' must be a whole number of pixels from {MIN_WIDTH} to {MAX_WIDTH}"
    if name == "mark" or (len(err["loc"]) > 2 and err["loc"][-2] == "mark"):
        if err.get("type") == "too_long":
            return f"at most {MAX_MARKS} rectangles (mark) may be highlighted"
        return "parameter 'mark' must be x0,y0,x1,y1 in PDF points"
    if err.get("type") == "missing":
        return f"parameter {name!r} is required"
    check = {"q": lambda: check_text(given if isinstance(given, str) else "", limits),
             "k": lambda: check_k(_integer(given), limits), "mode": lambda: check_mode(given),
             "format": lambda: CiteFormat(given)}.get(name)  # fmt: skip
    if check is not None:
        try:
            check()
        except QueryError as e:
            return f"parameter {name!r}: {e}"
        except ValueError:
            return f"parameter {name!r} must be one of: {', '.join(CiteFormat)}"
    return f"parameter {name!r}: {err.get('msg', 'invalid')}"


def _integer(value: object) -> object:
    try:
        return int(str(value))
    except ValueError:
        return value


PAPERS = Annotated[list[str], Query(description="Only this paper id (repeatable); unknown: 400")]
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorBody, "description": d}
    for s, d in (
        (400, "A bad or unknown parameter"),
        (401, "The server has a token and the request does not carry it"),
        (503, "Too many requests in flight (Retry-After), or the index is unreadable"),
    )
}


def transport_security(host: str, cors_origins=()):
    """MCP's DNS-rebinding protection, on wherever serve needs no token (loopback): a Host of
    loopback or of ``host`` itself, with or without a port (port 80, a local proxy), and an
    Origin of those or of the CORS origins. Beyond loopback the token guards /mcp instead."""
    from ddsearch.serve.hosts import is_loopback

    if not is_loopback(host):
        return None
    from mcp.server.transport_security import TransportSecuritySettings

    bare = host.strip("[]")
    names = dict.fromkeys(["127.0.0.1", "localhost", "[::1]",
                           f"[{bare}]" if ":" in bare else bare])  # fmt: skip
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[h for n in names for h in (n, f"{n}:*")],
        allowed_origins=[o for n in names for o in (f"http://{n}", f"http://{n}:*")]
        + list(cors_origins),
    )


def create_app(service: Service, *, token: str | None = None, cors_origins=(), mcp: bool = True,
               host: str = "127.0.0.1") -> FastAPI:  # fmt: skip
    """The app over ``service``. ``cors_origins``: the only other sites whose scripts may read
    it (none by default). ``host``: where it listens, for MCP's DNS-rebinding protection."""
    limits = service.settings.query
    default_k = limits.k  # results when k is not given, in /search and on the page
    Q = Annotated[  # noqa: N806 - a type
        str,
        Query(
            min_length=1,
            max_length=limits.max_chars,
            # a word to search for: a letter or digit (Unicode in Python; a client that reads
            # it as ECMA-262 without the u flag asks for an ASCII one, which an English query has)
            pattern=r"[^\W_]",
            description="The question",
        ),
    ]
    K = Annotated[int, Query(ge=1, le=limits.max_k, description="How many passages")]  # noqa: N806
    mcp_app = None
    if mcp:
        from ddsearch.mcp_server import make_server

        mcp_server = make_server(service)
        mcp_app = mcp_server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            host=host,
            transport_security=transport_security(host, cors_origins),
        )

    @asynccontextmanager
    async def lifespan(app):
        if mcp_app is None:
            yield
            return
        async with mcp_server.session_manager.run():
            yield

    app = FastAPI(
        title="ddsearch",
        version=__version__,
        description="Search landmark distributed-systems papers: passages with paper, page "
        "and citation. Only GET and HEAD (and MCP at /mcp); errors are JSON.",
        openapi_url=None,  # served below, with the paper ids of the index enumerated
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    _add_error_handlers(app, limits)

    @app.get("/search", response_model=SearchAnswer, responses=ERRORS, operation_id="search",
             summary="Ranked passages for a question (the JSON of query --json)",
             dependencies=[only(q=False, k=False, paper=True, mode=False)])  # fmt: skip
    async def search(q: Q, k: K = default_k, paper: PAPERS = [], mode: Mode = Mode.HYBRID):  # noqa: B006
        body = await service.call(service.search_json, q, k, paper, mode)
        return Response(body.encode(), media_type=JSON_TYPE)

    @app.get("/papers", response_model=list[PaperStatus], responses=ERRORS, operation_id="papers",
             summary="The catalog and indexed papers (the JSON of papers --json)",
             dependencies=[only()])  # fmt: skip
    async def papers():
        return json_response(200, await service.call(service.papers))

    cite_content: dict[str, dict[str, Any]] = {
        t.split(";")[0]: {"schema": {"type": "string"}} for t in CITE_TYPES.values()
    }
    cite_content[CITE_TYPES["csl"].split(";")[0]] = {  # CSL-JSON: an array of items
        "schema": {"type": "array", "items": {"type": "object"}}
    }

    @app.get("/cite/{id}", operation_id="cite", summary="The bibliography entry of one paper",
             response_class=Response, dependencies=[only(format=False)],
             responses={200: {"description": "BibTeX, CSL-JSON or RIS", "content": cite_content},
                        404: {"model": ErrorBody, "description": "Not a known paper"},
                        **ERRORS})  # fmt: skip
    async def cite(request: Request, id: str, format: CiteFormat = CiteFormat.BIB):  # noqa: A002
        raw = request.scope.get("raw_path", b"").decode("latin-1").rsplit("/", 1)[-1]
        try:
            paper_id = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise ApiError(400, "the paper id is not valid UTF-8 URL encoding") from None
        body = await service.call(service.cite, [paper_id], format)
        return Response(body.encode(), media_type=CITE_TYPES[format])

    paper_id = Annotated[str, Path(min_length=1, description="A paper id (any case)")]
    why = "Not a known paper, or one whose reference list was not found"
    not_found: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": why}}

    @app.get("/refs/{id}", response_model=list[ReferenceEntry], operation_id="refs",
             summary="What a paper cites that the collection or catalog holds, each entry with "
             "its citing sentences (the JSON of refs ID --json)",
             responses={**not_found, **ERRORS}, dependencies=[only(all=False)])  # fmt: skip
    async def refs(
        id: paper_id,  # noqa: A002
        all: Annotated[bool, Query(description="Every entry, those naming no known paper too")]  # noqa: A002
        = False,
    ):  # fmt: skip
        return json_response(200, await service.call(service.refs, id, all))

    @app.get("/cited-by/{id}", response_model=list[ReferenceEntry], operation_id="cited_by",
             summary="The papers of the collection citing a paper, each with its entry and the "
             "sentences citing it (the JSON of cited-by ID --json)",
             responses={**not_found, **ERRORS}, dependencies=[only()])  # fmt: skip
    async def cited_by(id: paper_id):  # noqa: A002
        return json_response(200, await service.call(service.cited_by, id))

    @app.get("/path", response_model=list[ReadingStep], operation_id="path",
             summary="A reading order: the papers these build on, prerequisites first, each "
             "with the sentences saying why (the JSON of path ID... --json)",
             responses={**not_found, **ERRORS},
             dependencies=[only(id=True, depth=False)])  # fmt: skip
    async def path(
        id: Annotated[list[str], Query(min_length=1, max_length=MAX_PATH_PAPERS,  # noqa: A002
                      description="A paper id (repeatable)")],
        depth: Annotated[int, Query(ge=1, le=MAX_DEPTH, description="Follow references this "
                         "many steps: 1 is what the papers cite, 2 what those cite too")] = 1,
    ):  # fmt: skip
        return json_response(200, await service.call(service.path, id, depth))

    @app.get("/graph", operation_id="graph", response_class=Response,
             summary="The collection's citation graph, citing -> cited (ddsearch graph)",
             responses={200: {"description": "Graphviz DOT or JSON nodes and edges", "content": {
                 GRAPH_TYPES["dot"].split(";")[0]: {"schema": {"type": "string"}},
                 "application/json": {"schema": {"type": "object"}}}}, **ERRORS},
             dependencies=[only(format=False)])  # fmt: skip
    async def graph(format: GraphFormat = GraphFormat.DOT):  # noqa: A002
        body = await service.call(service.graph_text, format)
        return Response(body.encode(), media_type=GRAPH_TYPES[format])

    @app.get("/cite/", include_in_schema=False)
    async def cite_nothing():
        raise ApiError(404, "no paper id given: /cite/{id}")

    @app.get("/page/{paper}/{n}.png", operation_id="page_image", response_class=Response,
             summary="A page of an indexed paper as PNG, the given rectangles highlighted "
             "(a hit's highlight.rects); crop: only the part around them",
             dependencies=[only(scale=False, width=False, mark=True, crop=False)],
             responses={200: {"content": {PNG_TYPE: {"schema": {"type": "string",
                                                                "format": "binary"}}},
                              "description": "The page drawn"},
                        404: {"model": ErrorBody, "description": "Not an indexed paper, no "
                              "such page, or its PDF is gone or changed since ingest"},
                        **ERRORS})  # fmt: skip
    async def page_image(
        paper: Annotated[str, Path(description="An indexed paper's id")],
        n: Annotated[int, Path(ge=1, description="The PDF page (1-based)")],
        scale: Annotated[float | None, Query(ge=MIN_SCALE, le=MAX_SCALE,
                         description=f"Pixels per PDF point (default {DEFAULT_SCALE:g})")] = None,
        width: Annotated[int | None, Query(ge=MIN_WIDTH, le=MAX_WIDTH,
                         description="The image's width in pixels (decides over scale)")] = None,
        mark: Annotated[list[Annotated[str, StringConstraints(pattern=MARK)]], Query(
                        max_length=MAX_MARKS, description="A rectangle to highlight, "
                        "x0,y0,x1,y1 in PDF points (repeatable)")] = [],  # noqa: B006
        crop: Annotated[bool, Query(description="Only the part around the marks (none: the "
                        "whole page)")] = False,
    ):  # fmt: skip
        marks = [_mark(m) for m in mark]
        body = await service.call(service.page_image, paper, n, scale, width, marks, crop)
        return Response(body, media_type=PNG_TYPE, headers={"Cache-Control": IMAGE_CACHING})

    @app.get("/health", response_model=Health, operation_id="health",
             summary="Whether the server is up (no token needed, no index read)",
             dependencies=[only()])  # fmt: skip
    async def health():
        return json_response(200, {"status": "ok", "version": __version__})

    documents: dict = {}  # the last OpenAPI document and the paper ids it enumerates

    @app.get("/openapi.json", operation_id="openapi", summary="This document",
             response_class=Response, dependencies=[only()],
             responses={200: {"description": "OpenAPI 3.1, generated from the routes",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                        401: ERRORS[401], 503: ERRORS[503]})  # fmt: skip
    async def openapi():
        indexed, citable = await service.call(service.paper_ids)
        key = (tuple(indexed), tuple(citable))
        if documents.get("key") != key:  # generated again only when the papers change
            documents.update(key=key, doc=openapi_document(app, indexed, citable))
        return json_response(200, documents["doc"])

    @app.get("/", response_class=Response, operation_id="page", dependencies=[
             only(q=False, k=False, paper=True, mode=False)],
             summary="The HTML search page (server-rendered; q, k, paper, mode as for /search, "
             "all optional)", responses={200: {"content": {"text/html": {}}, "description":
             "The page"}, 400: {"content": {"text/html": {}}, "description": "The page, with "
             "the error"}, 503: ERRORS[503]})  # fmt: skip
    async def page(
        q: Annotated[str, Query(max_length=limits.max_chars)] = "",
        k: K = default_k,
        paper: PAPERS = [],  # noqa: B006 - FastAPI copies defaults
        mode: Mode = Mode.HYBRID,
    ):
        hits, keys = await service.call(service.search, q, k, paper, mode)
        weak = bool(getattr(hits, "weak_match", False))  # as the search JSON has it
        kept = [("k", str(k))] if k != default_k else []  # the next search keeps them
        kept += [("paper", p) for p in paper] + ([("mode", mode)] if mode != "hybrid" else [])
        page = render_page(q, hits, keys, weak=weak, filters=kept)
        return Response(page.encode(), media_type=HTML_TYPE)

    if mcp_app is not None:
        app.router.routes.extend(mcp_app.routes)  # the SDK's own route and handler at /mcp
    app.add_middleware(Guard, token=token)
    if cors_origins:  # otherwise no CORS headers: other sites' scripts cannot read the answers
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,  # outermost: a preflight carries no token
            allow_origins=list(cors_origins),
            allow_methods=["GET", "HEAD", "POST"],
            allow_headers=["Authorization", "Content-Type", "Mcp-Session-Id",
                           "Mcp-Protocol-Version"],
        )  # fmt: skip
    return app


_NUM = r"-?(?:\d+(?:\.\d*)?|\.\d+)"
MARK = rf"^{_NUM},{_NUM},{_NUM},{_NUM}$"  # a rectangle of the mark parameter, in PDF points


def _mark(text: str) -> tuple[float, float, float, float]:
    """A rectangle "x0,y0,x1,y1" of the mark parameter (checked by MARK), corners in order."""
    x0, y0, x1, y1 = (float(v) for v in text.split(","))
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _add_error_handlers(app: FastAPI, limits: QuerySettings) -> None:
    """Every refusal is one line of JSON (of HTML on the page), never a traceback."""

    def refuse(request: Request, status: int, message: str, headers=None) -> Response:
        if request.url.path == "/":  # the page shows its own errors
            body = render_page(request.query_params.get("q", ""), None, {}, message)
            return Response(body.encode(), status, headers, media_type=HTML_TYPE)
        return error_response(status, message, headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return refuse(request, e.status, e.message, e.headers)

    @app.exception_handler(UserError)
    async def user_error(request: Request, e: UserError):
        status = STATUS[e.problem]
        retry = {"Retry-After": "1"} if e.problem is Problem.BUSY else None
        return refuse(request, status, str(e), retry)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return refuse(request, 400, _validation_message(e, limits))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        if e.status_code == 404:
            return error_response(404, f"no such resource: {request.url.path}")
        return error_response(e.status_code, str(e.detail), dict(e.headers or {}))

    @app.exception_handler(Exception)
    async def failed(request: Request, e: Exception):  # the server logs the traceback
        return error_response(500, f"internal error: {type(e).__name__}")


def openapi_document(app: FastAPI, indexed: list[str], citable: list[str]) -> dict:
    """The OpenAPI document generated from the routes, with the paper ids enumerated (the
    server also takes them in another case, as the CLI does; other ids are 400 in /search,
    404 in /cite)."""
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    doc["servers"] = [{"url": "/"}]
    for path, op in ((p, o) for p, item in doc["paths"].items() for o in item.values()):
        op.get("responses", {}).pop("422", None)  # refusals are 400 with ErrorBody, never 422
        for param in op.get("parameters", ()):
            if param["name"] == "paper" and indexed:
                schema = param["schema"]  # an array of ids, or one (a path's)
                schema.get("items", schema)["enum"] = indexed
            if path == "/cite/{id}" and param["name"] == "id":
                param["schema"].update({"minLength": 1, **({"enum": citable} if citable else {})})
    schemas = doc.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return doc
