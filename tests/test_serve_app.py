"""The serve app without a socket (Starlette's test client), on the three made-up papers with
the real model: the answers, the token, CORS, the bound on requests in flight, and parallel
searches on their own Searchers. The real uvicorn is in test_serve.py."""

from __future__ import annotations

import html
import re
import threading
import time
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from ddsearch.catalog import load_catalog
from ddsearch.config import Settings
from ddsearch.serve.api import create_app
from ddsearch.service import Service


@pytest.fixture(scope="module")
def service(indexed_home):
    s = Service(Settings(home=indexed_home), load_catalog(), workers=2)
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(service):
    with TestClient(create_app(service)) as c:
        yield c


def test_search_is_the_cli_json_byte_for_byte(client, indexed_home):
    from _servers import cli

    r = client.get("/search", params={"q": "how do keepers detect dark stations", "k": 3})
    expected = cli("--home", str(indexed_home), "query", "how do keepers detect dark stations",
                   "-k", "3", "--json").stdout  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.content == expected.encode()
    assert r.headers["x-content-type-options"] == "nosniff"


def test_answers_conform_to_the_generated_openapi(client):
    """The document is generated from the typed models; the answers validate against it."""
    import jsonschema

    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1") and {"/search", "/papers", "/cite/{id}", "/health",
                                                  "/"} <= set(doc["paths"])  # fmt: skip
    params = {p["name"]: p for p in doc["paths"]["/search"]["get"]["parameters"]}
    assert params["paper"]["schema"]["items"]["enum"] == ["ledger", "lighthouse", "orchard"]
    assert params["k"]["schema"]["maximum"] == 100 and params["q"]["required"]
    schemas = doc["components"]["schemas"]

    def check(name, instance):  # the refs point into the document's components
        schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": schemas}}
        jsonschema.Draft202012Validator(schema).validate(instance)

    answer = client.get("/search", params={"q": "hinted entries", "k": 2}).json()
    assert answer["results"] and isinstance(answer["weak_match"], bool)
    check("SearchAnswer", answer)
    slip = client.get("/search", params={"q": "which clekrs copy a sale", "k": 2}).json()
    assert slip["respelled"] == [{"typed": "clekrs", "read": "clerks"}]
    check("SearchAnswer", slip)
    for row in client.get("/papers").json():
        check("PaperStatus", row)
    check("ErrorBody", client.get("/search?q=x&k=0").json())
    # refusals are 400 with ErrorBody: no 422 is promised
    assert not any("422" in op["responses"] for item in doc["paths"].values()
                   for op in item.values())  # fmt: skip
    assert "HTTPValidationError" not in schemas
    assert client.get("/search", params={"q": "分布式", "k": 1}).status_code == 200
    r = client.get("/search", params={"q": "?!"})
    assert r.status_code == 400 and "has no words to search for" in r.json()["error"]["message"]


def test_head_and_methods(client):
    r = client.head("/papers")
    assert r.status_code == 200 and r.content == b"" and int(r.headers["content-length"]) > 100
    r = client.post("/search?q=x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert r.json()["error"]["status"] == 405


def test_no_cors_unless_asked(client, service):
    r = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(service, cors_origins=["https://wiki.example.org"])) as c:
        ok = c.get("/health", headers={"Origin": "https://wiki.example.org"})
        assert ok.headers["access-control-allow-origin"] == "https://wiki.example.org"
        other = c.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
        pre = c.options(
            "/search",
            headers={
                "Origin": "https://wiki.example.org",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
        )
        assert pre.status_code == 200 and "GET" in pre.headers["access-control-allow-methods"]


def test_the_token_guards_everything_but_health_mcp_included(service):
    with TestClient(create_app(service, token="t0ken")) as c:
        for path in ("/search?q=beacon", "/papers", "/openapi.json", "/cite/ledger"):
            r = c.get(path)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'Bearer realm="ddsearch"'
        assert c.post("/mcp", json={}).status_code == 401
        assert c.get("/health").status_code == 200
        page = c.get("/?q=beacon")  # the page asks the browser to log in, and says so in HTML
        assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Basic ")
        assert page.headers["content-type"].startswith("text/html") and 'id="error"' in page.text
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert c.get("/papers", headers={"Authorization": "Bearer t0ken"}).status_code == 200
        assert c.get("/papers", headers={"Authorization": "Bearer t0ke"}).status_code == 401


def test_the_openapi_document_follows_an_ingest(tmp_path, embedder):
    """The document is kept between requests, and made again when the indexed papers change."""
    from conftest import write_small_papers

    from ddsearch.ingest.pipeline import ingest

    pdfs, settings = tmp_path / "pdfs", Settings(home=tmp_path / "home")
    write_small_papers(pdfs, ["ledger"])
    assert ingest(settings, load_catalog(), [pdfs], embedder=embedder).ok
    s = Service(settings, load_catalog(), workers=1)
    try:
        with TestClient(create_app(s)) as c:

            def enum():
                doc = c.get("/openapi.json").json()
                params = {p["name"]: p for p in doc["paths"]["/search"]["get"]["parameters"]}
                return params["paper"]["schema"]["items"]["enum"]

            assert enum() == enum() == ["ledger"]
            write_small_papers(pdfs, ["orchard"])
            assert ingest(settings, load_catalog(), [pdfs], embedder=embedder).ok
            assert enum() == ["ledger", "orchard"]
    finally:
        s.close()


HELLO = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "t", "version": "0"}},
}  # fmt: skip
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


def test_mcp_answers_carry_the_shared_headers(service):
    with TestClient(create_app(service), base_url="http://127.0.0.1:8765") as c:
        r = c.post("/mcp", json=HELLO, headers=MCP_ACCEPT)
    assert r.status_code == 200 and "ddsearch" in r.text
    assert r.headers["x-content-type-options"] == "nosniff"


def test_mcp_on_loopback_takes_a_host_without_port_and_the_cors_origins(service):
    """DNS-rebinding protection on loopback: a loopback Host with or without a port (port 80,
    a local proxy), the origins --cors-origin allows; any other Host or Origin is refused."""
    app = create_app(service, cors_origins=["https://wiki.example.org"])
    with TestClient(app, base_url="http://localhost") as c:

        def post(**headers):
            return c.post("/mcp", json=HELLO, headers={**MCP_ACCEPT, **headers}).status_code

        assert post() == 200
        assert post(Host="127.0.0.1") == 200 and post(Host="127.0.0.1:8765") == 200
        assert post(Host="evil.example") == 421
        assert post(Origin="https://wiki.example.org") == 200
        assert post(Origin="http://localhost:3000") == 200
        assert post(Origin="https://evil.example") == 403


def test_mcp_rebinding_protection_covers_every_loopback_host_serve_takes_without_a_token():
    from ddsearch.serve.api import transport_security

    assert transport_security("0.0.0.0") is None  # beyond loopback the token guards /mcp
    for host in ("127.0.0.1", "127.0.0.2", "LOCALHOST", "::1"):
        settings = transport_security(host, ["https://wiki.example.org"])
        assert settings is not None and settings.enable_dns_rebinding_protection, host
        assert "localhost" in settings.allowed_hosts and "127.0.0.1:*" in settings.allowed_hosts
        assert "https://wiki.example.org" in settings.allowed_origins
    assert "127.0.0.2:*" in transport_security("127.0.0.2").allowed_hosts
    assert "[::1]" in transport_security("::1").allowed_hosts


def test_paper_ids_are_matched_regardless_of_case(client):
    r = client.get("/search", params={"q": "beacon", "paper": "Lighthouse", "k": 1})
    assert r.status_code == 200 and r.json()["results"][0]["paper"] == "lighthouse"
    r = client.get("/cite/LEDGER")
    assert r.status_code == 200 and "@misc{" in r.text
    r = client.get("/search", params={"q": "beacon", "paper": "lighthous"})
    assert r.status_code == 400 and "(closest: lighthouse" in r.json()["error"]["message"]


class _Blocking:
    """A searcher whose searches wait for a gate: to hold requests in flight."""

    store = SimpleNamespace(chroma=SimpleNamespace(embedded=True))
    records = {}

    def __init__(self):
        self.gate, self.entered = threading.Event(), threading.Semaphore(0)

    def citation_keys(self):
        return {}

    def refresh(self):
        return False

    def warm(self):
        pass

    def search(self, q, k, papers, mode):
        self.entered.release()
        self.gate.wait(30)
        return []

    def add_quotes(self, q, hits):
        pass


def test_requests_beyond_the_bound_get_503_with_retry_after(tmp_path):
    blocking = _Blocking()
    service = Service(Settings(home=tmp_path), (), max_pending=2, searcher=blocking)
    results = []
    try:
        with TestClient(create_app(service, mcp=False)) as c:
            threads = [threading.Thread(target=lambda: results.append(c.get("/search?q=x")))
                       for _ in range(2)]  # fmt: skip
            for t in threads:
                t.start()
            assert blocking.entered.acquire(timeout=30)  # one searches, the other is queued
            # ... once it has taken its slot: on a busy machine the third request could
            # otherwise come first (the semaphore's count is only read here)
            deadline = time.monotonic() + 30
            while service._slots._value and time.monotonic() < deadline:
                time.sleep(0.01)
            refused = c.get("/search?q=y")
            assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
            page = c.get("/?q=y")  # the page says so in HTML
            assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
            assert "too many requests in flight" in page.text
            assert c.get("/health").status_code == 200  # not a job: never refused
            blocking.gate.set()
            for t in threads:
                t.join(30)
            assert [r.status_code for r in results] == [200, 200]
            assert c.get("/search?q=z").status_code == 200  # a free slot again
    finally:
        blocking.gate.set()
        service.close()


def test_searches_run_in_parallel_on_their_own_searchers(service):
    """Two workers: two searches are in flight at once, each on its own Searcher (SQLite
    connection), both on the one embedder; and both answer the same."""
    both = threading.Barrier(2)

    def inside():
        both.wait(30)  # only returns if the other job runs at the same time
        s = service._searcher()
        return id(s), id(s.embedder), service.search_json("beacon keepers", 2)

    (s1, e1, b1), (s2, e2, b2) = [f.result(60) for f in
                                  [service._pool.submit(inside) for _ in range(2)]]  # fmt: skip
    assert s1 != s2 and e1 == e2 and b1 == b2 and '"paper": "lighthouse"' in b1


def test_the_page_keeps_its_filters_and_cannot_be_framed(client):
    r = client.get("/?q=beacon&k=3&paper=Lighthouse&mode=lexical")
    assert r.status_code == 200 and 1 <= r.text.count('class="hit"') <= 3
    assert set(re.findall(r'data-paper="(\w+)"', r.text)) == {"lighthouse"}
    for name, value in (("k", "3"), ("paper", "Lighthouse"), ("mode", "lexical")):
        assert f'<input type="hidden" name="{name}" value="{value}">' in r.text
    assert 'id="filters"' in r.text and 'href="/?q=beacon">clear</a>' in r.text
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    plain = client.get("/?q=beacon").text
    assert 'type="hidden"' not in plain and 'id="filters"' not in plain


def test_page_shows_errors_as_html(client):
    r = client.get("/?q=beacon&k=500")
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    message = "parameter 'k': k must be an integer from 1 to 100"
    assert 'id="error"' in r.text and message in html.unescape(r.text)
    assert "default-src 'none'" in r.headers["content-security-policy"]
    r = client.get("/?q=beacon&paper=nope")
    assert r.status_code == 400 and "not in the index: nope" in r.text
