"""`--chroma-token`: a real `chroma run` behind a real token-checking proxy on 127.0.0.1.

`chroma run` 1.x (the Rust server) has no token auth of its own (its CHROMA_SERVER_AUTHN_*
settings are the old Python server's), so a team puts it behind a proxy that checks
`Authorization: Bearer`; the client side is chromadb's own token auth provider either way."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from _servers import chroma_server, cli

pytestmark = pytest.mark.integration
TOKEN = "team-s3cret"


def _proxy(upstream: str, seen: list):
    up = urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self):
            auth = self.headers.get("Authorization")
            seen.append(auth)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if auth != f"Bearer {TOKEN}":
                out = json.dumps({"error": "Unauthorized", "message": "Unauthorized"}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                return
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            conn.request(self.command, self.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = _forward  # noqa: N815

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    root = tmp_path_factory.mktemp("chroma-auth")
    seen: list = []
    with chroma_server(root / "db") as url:
        proxy = _proxy(url, seen)
        try:
            yield f"http://127.0.0.1:{proxy.server_address[1]}", seen, root
        finally:
            proxy.shutdown()


def test_the_token_reaches_the_server(proxied):
    url, seen, root = proxied
    seen.clear()
    proc = cli("--home", str(root / "a"), "--chroma-url", url, "--chroma-token", TOKEN,
               "papers", "--json")  # fmt: skip
    assert json.loads(proc.stdout)  # the catalog, and no indexed papers on a new server
    assert seen and set(seen) == {f"Bearer {TOKEN}"}


def test_the_token_from_the_environment(proxied):
    url, _, root = proxied
    proc = cli("--home", str(root / "b"), "--chroma-url", url, "papers",
               env={"DDSEARCH_CHROMA_TOKEN": TOKEN})  # fmt: skip
    assert "papers" in proc.stdout


@pytest.mark.parametrize(
    "token, words", [("wrong", "refused the token"), (None, "requires a token")]
)
def test_a_wrong_or_missing_token_is_one_line(proxied, token, words):
    url, _, root = proxied
    args = ["--chroma-token", token] if token else []
    proc = cli("--home", str(root / "c"), "--chroma-url", url, *args, "papers", check=False,
               env={"DDSEARCH_CHROMA_TOKEN": ""})  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and url in lines[0], proc.stderr


def test_serve_on_the_server_index_with_both_tokens(proxied, small_pdfs):
    """A team's set-up: the index on the (token-checked) Chroma server, `serve` with its own
    token on a real uvicorn; a search answers from the server's papers."""
    import urllib.request

    from _servers import ddsearch_server

    url, seen, root = proxied
    cli("--home", str(root / "writer"), "--chroma-url", url, "--chroma-token", TOKEN,
        "ingest", f"--from={next(iter(small_pdfs.values())).parent}", "--no-progress")  # fmt: skip
    seen.clear()
    env = {"DDSEARCH_CHROMA_URL": url, "DDSEARCH_CHROMA_TOKEN": TOKEN}
    with ddsearch_server(root / "server-home", "--token", "serve-t0ken", env=env) as base:
        req = urllib.request.Request(f"{base}/search?q=beacon+keepers&k=2",
                                     headers={"Authorization": "Bearer serve-t0ken"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=120) as r:
            doc = json.loads(r.read())
    assert [x["paper"] for x in doc["results"]][:1] == ["lighthouse"]
    assert seen and set(seen) == {f"Bearer {TOKEN}"}
