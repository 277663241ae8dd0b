"""fetch_paper against a real HTTP server on 127.0.0.1 (the network is never mocked)."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import io
import os
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pypdf
import pytest

from ddsearch.ingest import fetch
from ddsearch.ingest.fetch import (
    FetchError,
    FetchPolicy,
    check_pdf_bytes,
    fetch_paper,
    sha256_file,
)
from ddsearch.models import Paper

FAST = FetchPolicy(
    connect_timeout=2.0,
    read_timeout=2.0,
    total_timeout=5.0,
    max_bytes=1_000_000,
    retries=0,
    backoff=0.01,
    max_retry_after=5.0,
    max_redirects=5,
)
BIG = 1_000_000  # bytes the /big routes send; far over the caps the tests set


def _make_pdf() -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(200, 200)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


class _State:
    def __init__(self, pdf: bytes) -> None:
        self.pdf = pdf
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()  # set at teardown: slow handlers return promptly
        self.lock = threading.Lock()
        self.base = ""


def _make_handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def _send(self, status, body=b"", headers=(), length=None):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if length is not False:
                self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up first
                self.wfile.write(body)

        def _pdf(self):
            self._send(200, state.pdf, [("Content-Type", "application/pdf")])

        def _redirect(self, status, location):
            self._send(status, headers=[("Location", location)])

        def _trickle(self, body, step, pause, length):
            self.send_response(200)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            try:
                for i in range(0, len(body), step):
                    self.wfile.write(body[i : i + step])
                    self.wfile.flush()
                    if pause and state.stop.wait(pause):
                        return
            except OSError:
                pass

        def do_GET(self):
            path = urlsplit(self.path).path  # absolute-form when the server acts as a proxy
            with state.lock:
                state.hits[path] += 1
                n = state.hits[path]
                state.requests.append((self.path, dict(self.headers)))
            pdf = state.pdf
            if path == "/pdf":
                self._pdf()
            elif path == "/missing":
                self._send(404, b"<html>nope</html>", [("Content-Type", "text/html")])
            elif path == "/flaky":
                self._send(500, b"oops") if n == 1 else self._pdf()
            elif path == "/broken":
                self._send(500, b"oops")
            elif path == "/busy":
                self._send(429, headers=[("Retry-After", "1")]) if n == 1 else self._pdf()
            elif path == "/busy-date":
                when = email.utils.formatdate(time.time() + 3, usegmt=True)
                self._send(503, headers=[("Retry-After", when)]) if n == 1 else self._pdf()
            elif path == "/busy-long":
                self._send(429, headers=[("Retry-After", "3600")]) if n == 1 else self._pdf()
            elif path == "/stall":
                # A few bytes, then silence well past the client's read timeout (bounded).
                self._trickle(pdf[:10], 10, 2.0, len(pdf))
            elif path == "/slow":
                # Never silent for long, but never done in time either.
                self._trickle(pdf, 8, 0.1, len(pdf))
            elif path == "/short":
                self._send(200, pdf[: len(pdf) // 2], length=len(pdf))
            elif path == "/cut":
                self._send(200, pdf[: len(pdf) - 64], [("Content-Type", "application/pdf")])
            elif path == "/html":
                body = b"<!DOCTYPE html>\n<html><body>Sign in to read</body></html>"
                self._send(200, body, [("Content-Type", "text/html")])
            elif path == "/r1":
                self._redirect(301, "/r2")
            elif path == "/r2":
                self._redirect(302, f"{state.base}/pdf")
            elif path == "/loop":
                self._redirect(302, "/loop")
            elif path == "/to-file":
                self._redirect(302, "file:///etc/passwd")
            elif path == "/big":
                self._send(200, b"%PDF-1.4\n" + b"0" * BIG)
            elif path == "/big-nolength":
                self._send(200, b"%PDF-1.4\n" + b"0" * BIG, length=False)
            else:
                self._send(404)

    return Handler


def _serve(state: _State, wrap=None):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True
    if wrap is not None:
        httpd.socket = wrap(httpd.socket)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return httpd, thread


@pytest.fixture(scope="module")
def pdf_bytes() -> bytes:
    return _make_pdf()


@pytest.fixture
def server(pdf_bytes):
    state = _State(pdf_bytes)
    httpd, thread = _serve(state)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    state.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@pytest.fixture(autouse=True)
def no_proxy_env(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch) -> list[float]:
    """Back-off delays fetch asked for; recorded, not slept."""
    recorded: list[float] = []
    monkeypatch.setattr(fetch, "_sleep", recorded.append)
    return recorded


@pytest.fixture
def cache(tmp_path) -> Path:
    d = tmp_path / "cache"
    d.mkdir()
    return d


def _paper(url: str | None, sha256: str | None = None, pid: str = "lamport78") -> Paper:
    return Paper(id=pid, title="Time, Clocks", url=url, sha256=sha256)


def _policy(**changes) -> FetchPolicy:
    return FetchPolicy(**{**FAST.__dict__, **changes})


def _no_leftovers(cache: Path) -> None:
    assert list(cache.glob("*.part")) == []


# --- success paths --------------------------------------------------------------------------


def test_downloads_a_pdf_into_the_cache(server, cache, pdf_bytes):
    path = fetch_paper(_paper(f"{server.base}/pdf"), cache, FAST)
    assert path == cache / "lamport78.pdf"
    assert path.read_bytes() == pdf_bytes
    assert sorted(p.name for p in cache.iterdir()) == ["lamport78.pdf"]
    _, headers = server.requests[-1]
    assert headers["User-Agent"] == FAST.user_agent
    assert FetchPolicy().user_agent.startswith("ddsearch/")


def test_creates_the_cache_dir(server, tmp_path, pdf_bytes):
    path = fetch_paper(_paper(f"{server.base}/pdf"), tmp_path / "a" / "b", FAST)
    assert path.read_bytes() == pdf_bytes


def test_pinned_hash_that_matches_is_accepted(server, cache, pdf_bytes):
    pinned = hashlib.sha256(pdf_bytes).hexdigest().upper()  # case does not matter
    path = fetch_paper(_paper(f"{server.base}/pdf", pinned), cache, FAST)
    assert sha256_file(path) == pinned.lower()


def test_follows_a_redirect_chain(server, cache, pdf_bytes):
    path = fetch_paper(_paper(f"{server.base}/r1"), cache, FAST)
    assert path.read_bytes() == pdf_bytes
    assert (server.hits["/r1"], server.hits["/r2"], server.hits["/pdf"]) == (1, 1, 1)


def test_goes_through_an_http_proxy_from_the_environment(server, cache, monkeypatch, pdf_bytes):
    monkeypatch.setenv("http_proxy", server.base)
    path = fetch_paper(_paper("http://papers.invalid/pdf"), cache, FAST)
    assert path.read_bytes() == pdf_bytes
    raw, headers = server.requests[-1]
    assert raw == "http://papers.invalid/pdf"  # absolute-form: the proxy was asked
    assert headers["Host"] == "papers.invalid"


def test_no_proxy_bypasses_the_proxy(server, cache, monkeypatch, pdf_bytes):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{_free_port()}")  # nothing listens
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    assert fetch_paper(_paper(f"{server.base}/pdf"), cache, FAST).read_bytes() == pdf_bytes


def test_unusable_proxy_setting_is_one_clear_line(cache, monkeypatch):
    monkeypatch.setenv("http_proxy", "ftp://proxy.invalid:21")
    with pytest.raises(FetchError, match=r"^unusable proxy setting in the environment: .*ftp"):
        fetch_paper(_paper("http://papers.invalid/pdf"), cache, FAST)
    assert list(cache.iterdir()) == []


# --- cache ----------------------------------------------------------------------------------


def test_cached_file_is_not_fetched_again(server, cache):
    paper = _paper(f"{server.base}/pdf")
    first = fetch_paper(paper, cache, FAST)
    mtime = first.stat().st_mtime_ns
    second = fetch_paper(paper, cache, FAST)
    assert second == first
    assert server.hits["/pdf"] == 1
    assert second.stat().st_mtime_ns == mtime


def test_cached_file_matching_the_pin_is_not_fetched(server, cache, pdf_bytes):
    (cache / "lamport78.pdf").write_bytes(pdf_bytes)
    pinned = hashlib.sha256(pdf_bytes).hexdigest()
    fetch_paper(_paper(f"{server.base}/pdf", pinned), cache, FAST)
    assert server.hits["/pdf"] == 0


def test_cached_file_not_matching_the_pin_is_replaced(server, cache, pdf_bytes):
    (cache / "lamport78.pdf").write_bytes(b"%PDF-1.4 stale\n%%EOF\n")
    pinned = hashlib.sha256(pdf_bytes).hexdigest()
    path = fetch_paper(_paper(f"{server.base}/pdf", pinned), cache, FAST)
    assert path.read_bytes() == pdf_bytes
    assert server.hits["/pdf"] == 1


def test_refresh_downloads_again(server, cache):
    paper = _paper(f"{server.base}/pdf")
    fetch_paper(paper, cache, FAST)
    fetch_paper(paper, cache, FAST, refresh=True)
    assert server.hits["/pdf"] == 2


def test_cached_file_is_used_even_without_url(cache, pdf_bytes):
    (cache / "lamport78.pdf").write_bytes(pdf_bytes)
    assert fetch_paper(_paper(None), cache, FAST) == cache / "lamport78.pdf"


def test_pinned_mismatch_keeps_the_old_cached_copy(server, cache, pdf_bytes):
    old = cache / "lamport78.pdf"
    old.write_bytes(b"old copy")
    pinned = "ab" * 32
    with pytest.raises(FetchError) as err:
        fetch_paper(_paper(f"{server.base}/pdf", pinned), cache, _policy(retries=2))
    message = str(err.value)
    assert pinned in message
    assert hashlib.sha256(pdf_bytes).hexdigest() in message
    assert old.read_bytes() == b"old copy"
    assert server.hits["/pdf"] == 1  # a wrong hash is not retried
    _no_leftovers(cache)


def test_failed_refresh_keeps_the_cached_copy(server, cache, pdf_bytes):
    paper = _paper(f"{server.base}/pdf")
    fetch_paper(paper, cache, FAST)
    broken = _paper(f"{server.base}/html")
    with pytest.raises(FetchError):
        fetch_paper(broken, cache, FAST, refresh=True)
    assert (cache / "lamport78.pdf").read_bytes() == pdf_bytes
    _no_leftovers(cache)


def test_interrupted_write_leaves_nothing_behind(server, cache, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch_paper(_paper(f"{server.base}/pdf"), cache, FAST)
    assert list(cache.iterdir()) == []


# --- refusals without retry -----------------------------------------------------------------


def test_no_url_points_at_from(cache):
    with pytest.raises(FetchError, match="no open-access URL, add the PDF with --from"):
        fetch_paper(_paper(None), cache, FAST)


@pytest.mark.parametrize("url", ["ftp://example.org/a.pdf", "file:///etc/passwd", "example.org/a"])
def test_non_http_url_is_refused(cache, url):
    with pytest.raises(FetchError, match=r"non-HTTP\(S\) URL"):
        fetch_paper(_paper(url), cache, FAST)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://h:abc/x.pdf", r"^malformed URL 'http://h:abc/x.pdf': Invalid port"),
        ("http://xn--a.com/x.pdf", r"^malformed URL 'http://xn--a.com/x.pdf': "),
        ("http:///x.pdf", r"^URL has no host: 'http:///x.pdf'$"),
    ],
)
def test_malformed_url_is_one_line(cache, url, match):
    with pytest.raises(FetchError, match=match) as err:
        fetch_paper(_paper(url), cache, FAST)
    assert "\n" not in str(err.value)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("pid", ["../escape", "a/b", ".hidden", ""])
def test_unsafe_paper_id_is_refused(server, tmp_path, pid):
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match="cannot be used as a file name"):
        fetch_paper(_paper(f"{server.base}/pdf", pid=pid), cache, FAST)
    assert server.hits["/pdf"] == 0
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


def test_malformed_pin_is_refused(server, cache):
    with pytest.raises(FetchError, match="not 64 hex digits"):
        fetch_paper(_paper(f"{server.base}/pdf", "deadbeef"), cache, FAST)


def test_404_is_not_retried(server, cache, sleeps):
    url = f"{server.base}/missing"
    with pytest.raises(FetchError) as err:
        fetch_paper(_paper(url), cache, _policy(retries=3))
    assert str(err.value) == f"HTTP 404 Not Found from {url}"
    assert server.hits["/missing"] == 1
    assert sleeps == []
    assert list(cache.iterdir()) == []


def test_html_instead_of_pdf(server, cache):
    with pytest.raises(FetchError, match=r"HTML page, not a PDF \(paywall or login page\?\)"):
        fetch_paper(_paper(f"{server.base}/html"), cache, _policy(retries=2))
    assert server.hits["/html"] == 1
    assert list(cache.iterdir()) == []


def test_pdf_without_eof_marker_is_refused(server, cache, pdf_bytes):
    assert b"%%EOF" not in pdf_bytes[: len(pdf_bytes) - 64]  # the route really cuts it off
    with pytest.raises(FetchError, match="truncated"):
        fetch_paper(_paper(f"{server.base}/cut"), cache, FAST)
    assert list(cache.iterdir()) == []


def test_redirect_loop_stops(server, cache):
    with pytest.raises(FetchError, match="too many redirects"):
        fetch_paper(_paper(f"{server.base}/loop"), cache, _policy(max_redirects=3, retries=2))
    assert server.hits["/loop"] == 4  # the first request and three redirects
    assert list(cache.iterdir()) == []


def test_redirect_to_non_http_scheme_is_refused(server, cache):
    with pytest.raises(FetchError, match=r"non-HTTP\(S\) URL 'file:///etc/passwd'"):
        fetch_paper(_paper(f"{server.base}/to-file"), cache, FAST)
    assert list(cache.iterdir()) == []


def test_content_length_over_the_cap(server, cache):
    with pytest.raises(FetchError, match="over the 9.8 KiB limit"):
        fetch_paper(_paper(f"{server.base}/big"), cache, _policy(max_bytes=10_000, retries=2))
    assert server.hits["/big"] == 1
    assert list(cache.iterdir()) == []


def test_streamed_body_over_the_cap(server, cache):
    with pytest.raises(FetchError, match="exceeded the 9.8 KiB limit"):
        fetch_paper(_paper(f"{server.base}/big-nolength"), cache, _policy(max_bytes=10_000))
    assert list(cache.iterdir()) == []


# --- retries --------------------------------------------------------------------------------


def test_500_then_ok_is_retried(server, cache, sleeps, pdf_bytes):
    path = fetch_paper(_paper(f"{server.base}/flaky"), cache, _policy(retries=2))
    assert path.read_bytes() == pdf_bytes
    assert server.hits["/flaky"] == 2
    assert len(sleeps) == 1
    _no_leftovers(cache)


def test_backoff_doubles_and_gives_up(server, cache, sleeps):
    policy = _policy(retries=3, backoff=0.1, max_retry_after=0.3)
    with pytest.raises(FetchError, match=r"HTTP 500 .* \(gave up after 4 attempts\)"):
        fetch_paper(_paper(f"{server.base}/broken"), cache, policy)
    assert server.hits["/broken"] == 4
    assert len(sleeps) == 3
    for got, base in zip(
        sleeps, [0.1, 0.2, 0.3], strict=True
    ):  # doubled, then capped; jitter <= 10%
        assert base <= got <= base * 1.1 + 1e-9
    assert list(cache.iterdir()) == []


def test_429_honours_retry_after_seconds(server, cache, sleeps, pdf_bytes):
    path = fetch_paper(_paper(f"{server.base}/busy"), cache, _policy(retries=1))
    assert path.read_bytes() == pdf_bytes
    assert server.hits["/busy"] == 2
    assert len(sleeps) == 1 and sleeps[0] >= 1.0  # not the 0.01 s back-off


def test_retry_after_http_date(server, cache, sleeps):
    fetch_paper(_paper(f"{server.base}/busy-date"), cache, _policy(retries=1))
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 3.5


def test_retry_after_is_capped(server, cache, sleeps):
    fetch_paper(_paper(f"{server.base}/busy-long"), cache, _policy(retries=1, max_retry_after=5))
    assert sleeps == [5.0]


def test_stalled_trickle_times_out(server, cache):
    policy = _policy(read_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(FetchError, match="stalled: no data for 0.5s"):
        fetch_paper(_paper(f"{server.base}/stall"), cache, policy)
    assert time.monotonic() - start < 1.5  # the server would have waited 2 s
    assert list(cache.iterdir()) == []


def test_stall_is_retried(server, cache, sleeps):
    with pytest.raises(FetchError, match="gave up after 2 attempts"):
        fetch_paper(_paper(f"{server.base}/stall"), cache, _policy(read_timeout=0.3, retries=1))
    assert server.hits["/stall"] == 2
    assert len(sleeps) == 1
    _no_leftovers(cache)


def test_total_timeout_bounds_a_steady_trickle(server, cache, sleeps):
    policy = _policy(read_timeout=0.5, total_timeout=0.6, retries=2)
    start = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 0.6s"):
        fetch_paper(_paper(f"{server.base}/slow"), cache, policy)
    assert time.monotonic() - start < 1.2
    assert server.hits["/slow"] == 1 and sleeps == []  # the same server would be as slow again
    assert list(cache.iterdir()) == []


def test_total_timeout_cuts_a_stall_short(server, cache):
    policy = _policy(read_timeout=2.0, total_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(FetchError, match="took longer than 0.5s"):
        fetch_paper(_paper(f"{server.base}/stall"), cache, policy)
    assert time.monotonic() - start < 1.2  # did not wait out the 2 s read timeout
    assert list(cache.iterdir()) == []


def test_connection_closed_early_is_retried(server, cache, sleeps, pdf_bytes):
    with pytest.raises(
        FetchError, match=rf"closed after {len(pdf_bytes) // 2} of {len(pdf_bytes)}"
    ):
        fetch_paper(_paper(f"{server.base}/short"), cache, _policy(retries=1))
    assert server.hits["/short"] == 2
    assert list(cache.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_retried(cache, sleeps):
    url = f"http://127.0.0.1:{_free_port()}/pdf"
    with pytest.raises(FetchError, match=r"network error .*\(gave up after 3 attempts\)"):
        fetch_paper(_paper(url), cache, _policy(retries=2))
    assert len(sleeps) == 2
    assert list(cache.iterdir()) == []


# --- TLS and HTTPS through a proxy -------------------------------------------------------


@pytest.fixture
def tls_cert(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: untrusted unless SSL_CERT_FILE names it."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_server(tls_cert, pdf_bytes):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_cert)
    state = _State(pdf_bytes)
    httpd, thread = _serve(state, lambda s: context.wrap_socket(s, server_side=True))
    state.base = f"https://127.0.0.1:{httpd.server_address[1]}"
    yield state
    state.stop.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


class _ConnectProxy(socketserver.ThreadingTCPServer):
    """A real CONNECT proxy: records each request head, then pipes bytes both ways."""

    daemon_threads = True
    heads: list[bytes]

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            head = b""
            while b"\r\n\r\n" not in head:
                data = self.request.recv(4096)
                if not data:
                    return
                head += data
            head, _, rest = head.partition(b"\r\n\r\n")
            self.server.heads.append(head)
            host, _, port = head.split()[1].decode().rpartition(":")
            with socket.create_connection((host, int(port)), timeout=5) as upstream:
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.sendall(rest)
                back = threading.Thread(target=_pipe, args=(upstream, self.request), daemon=True)
                back.start()
                _pipe(self.request, upstream)
                back.join(5)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def connect_proxy():
    proxy = _ConnectProxy(("127.0.0.1", 0), _ConnectProxy.Handler)
    proxy.heads = []
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()
    thread.join(5)


def test_https_verifies_certificates(https_server, cache):
    url = f"{https_server.base}/pdf"
    with pytest.raises(FetchError, match="certificate verification failed"):
        fetch_paper(_paper(url), cache, _policy(retries=2))
    assert https_server.hits["/pdf"] == 0  # refused during the handshake, before any request
    assert list(cache.iterdir()) == []


def test_https_goes_through_a_connect_proxy(
    https_server, connect_proxy, tls_cert, cache, monkeypatch, pdf_bytes
):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_cert[0]))  # trust the test certificate
    port = connect_proxy.server_address[1]
    monkeypatch.setenv("https_proxy", f"http://reader:s%40cret@127.0.0.1:{port}")
    path = fetch_paper(_paper(f"{https_server.base}/pdf"), cache, FAST)
    assert path.read_bytes() == pdf_bytes
    (head,) = connect_proxy.heads
    line, *fields = head.decode().split("\r\n")
    assert line.startswith(f"CONNECT {https_server.base.removeprefix('https://')} ")
    headers = {name.lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
    token = base64.b64encode(b"reader:s@cret").decode()
    assert headers["proxy-authorization"] == f"Basic {token}"
    assert https_server.hits["/pdf"] == 1  # the request itself went through the tunnel


def test_http_proxy_credentials_are_sent(server, cache, monkeypatch):
    port = urlsplit(server.base).port
    monkeypatch.setenv("http_proxy", f"http://reader:s%40cret@127.0.0.1:{port}")
    fetch_paper(_paper("http://papers.invalid/pdf"), cache, FAST)
    _, headers = server.requests[-1]
    assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"reader:s@cret").decode()


# --- check_pdf_bytes / sha256_file ----------------------------------------------------------


def test_check_pdf_bytes_accepts_a_whole_pdf(pdf_bytes):
    check_pdf_bytes(pdf_bytes, "x")
    check_pdf_bytes(b" " * 1000 + pdf_bytes, "x")  # junk before the header is tolerated
    check_pdf_bytes(pdf_bytes + b"\0" * 2000, "x")  # and some after %%EOF


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty response"),
        (b"<!DOCTYPE html><html>login</html>", "HTML page, not a PDF"),
        (b"\n  <HTML><body>paywall</body></HTML>", "HTML page, not a PDF"),
        (b"PK\x03\x04 a zip", r"not a PDF \(no %PDF- header\)"),
        (b" " * 1100 + b"%PDF-1.4\n%%EOF", r"no %PDF- header"),
        (b"%PDF-1.4\n" + b"0" * 5000, "truncated"),
        (b"%PDF-1.4\n%%EOF" + b"\0" * 2100, "truncated"),
    ],
)
def test_check_pdf_bytes_rejects(data, match):
    with pytest.raises(FetchError, match=match) as err:
        check_pdf_bytes(data, "http://example.org/a.pdf")
    assert "http://example.org/a.pdf" in str(err.value)
    assert "\n" not in str(err.value)


def test_sha256_file(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc" * 500_000)
    assert sha256_file(f) == hashlib.sha256(b"abc" * 500_000).hexdigest()
    assert sha256_file(str(f)) == sha256_file(f)
