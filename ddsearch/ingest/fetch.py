"""Download a paper's PDF into the cache: bounded, retried, validated, written atomically.

Standard library only. Redirects are followed by hand so every hop can be checked
(http/https only, at most ``max_redirects``); HTTPS uses the default, verified SSL
context. Proxies from the environment (``http_proxy``, ``https_proxy``, ``no_proxy``)
are honoured, as urllib does.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import http.client
import os
import random
import re
import socket
import ssl
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from ddsearch.files import sha256_file
from ddsearch.models import Paper

__all__ = ["FetchError", "FetchPolicy", "check_pdf_bytes", "fetch_paper", "sha256_file"]

_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PDF_HEAD = 1024  # '%PDF-' must start within this many leading bytes
_PDF_TAIL = 2048  # '%%EOF' must appear within this many trailing bytes
# ...preceded by the trailer's pointer to the cross-reference: 'startxref', an offset, '%%EOF'
_STARTXREF = re.compile(rb"startxref\s+\d+\s*%%EOF")

# Indirection so tests can record the back-off instead of waiting it out.
_sleep = time.sleep


def _version() -> str:
    try:
        return metadata.version("ddsearch")
    except metadata.PackageNotFoundError:
        return "0.1.0"


class FetchError(Exception):
    """One-line, user-facing reason a PDF could not be had."""


class _Retryable(FetchError):
    """A failure worth another attempt (timeouts, dropped connections, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchPolicy:
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # per socket read (a stalled trickle fails)
    total_timeout: float = 300.0  # whole attempt: connect, redirects, headers, body
    max_bytes: int = 200 * 1024 * 1024
    retries: int = 3  # extra attempts after the first
    backoff: float = 1.0  # seconds, doubled each retry (with small jitter), capped
    max_retry_after: float = 60.0  # Retry-After honoured up to this; also caps the back-off
    max_redirects: int = 5
    user_agent: str = (
        f"ddsearch/{_version()} (distributed-systems paper search; Python http.client)"
    )


# --- validation ---------------------------------------------------------------------------


def _check_pdf(head: bytes, tail: bytes, size: int, source: str) -> None:
    if size == 0:
        raise FetchError(f"empty response, not a PDF, from {source}")
    if b"%PDF-" not in head[:_PDF_HEAD]:
        sniff = head[:_PDF_HEAD].lower()
        if b"<!doctype html" in sniff or b"<html" in sniff:
            raise FetchError(f"got an HTML page, not a PDF (paywall or login page?) from {source}")
        raise FetchError(f"not a PDF (no %PDF- header) from {source}")
    if b"%%EOF" not in tail[-_PDF_TAIL:]:
        raise FetchError(f"PDF is truncated (no %%EOF near the end) from {source}")
    if not _STARTXREF.search(tail[-_PDF_TAIL:]):
        raise FetchError(f"PDF has no trailer (no startxref before %%EOF) from {source}")


def check_pdf_bytes(data: bytes, source: str) -> None:
    """Raise FetchError unless ``data`` looks like a whole PDF.

    '%PDF-' must occur within the first 1024 bytes and '%%EOF' within the last 2048
    (so a truncated download fails), right after a ``startxref <offset>`` trailer line. An
    HTML page gets its own message.
    """
    _check_pdf(data[:_PDF_HEAD], data[-_PDF_TAIL:], len(data), source)


# --- HTTP ---------------------------------------------------------------------------------


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _split_http_url(url: str, what: str) -> urllib.parse.SplitResult:
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise FetchError(f"malformed URL {url!r}{what}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchError(f"refusing non-HTTP(S) URL {url!r}{what}")
    if not parts.hostname:
        raise FetchError(f"URL has no host: {url!r}{what}")
    return parts


def _request_target(parts: urllib.parse.SplitResult) -> str:
    # Quote anything http.client would refuse to send (spaces, non-ASCII), keep escapes.
    path = urllib.parse.quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = urllib.parse.quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return f"{path}?{query}" if query else path


def _proxy_for(scheme: str, host: str) -> urllib.parse.SplitResult | None:
    proxies = urllib.request.getproxies()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    parts = urllib.parse.urlsplit(proxy)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise FetchError(f"unsupported proxy {proxy!r} (only http:// proxies are supported)")
    return parts


def _proxy_auth(proxy: urllib.parse.SplitResult) -> dict[str, str]:
    if proxy.username is None:
        return {}
    user = urllib.parse.unquote(proxy.username)
    password = urllib.parse.unquote(proxy.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Proxy-Authorization": f"Basic {token}"}


def _connect(
    parts: urllib.parse.SplitResult, policy: FetchPolicy, deadline: float
) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
    """Open a connection for ``parts``; return it, the request target and extra headers."""
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    proxy = _proxy_for(scheme, host)
    timeout = max(0.001, min(policy.connect_timeout, deadline - time.monotonic()))
    target = _request_target(parts)
    headers: dict[str, str] = {}
    conn: http.client.HTTPConnection
    if scheme == "https":
        context = ssl.create_default_context()
        if proxy is not None:
            conn = http.client.HTTPSConnection(
                proxy.hostname or "",
                proxy.port or 8080,
                timeout=timeout,
                context=context,
            )
            conn.set_tunnel(host, port, headers=_proxy_auth(proxy))
        else:
            conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    elif proxy is not None:
        conn = http.client.HTTPConnection(proxy.hostname or "", proxy.port or 8080, timeout=timeout)
        target = urllib.parse.urlunsplit((scheme, parts.netloc.rpartition("@")[2], target, "", ""))
        headers.update(_proxy_auth(proxy))
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.connect()  # TCP, proxy tunnel and TLS handshake, all under connect_timeout
    except BaseException:
        conn.close()
        raise
    return conn, target, headers


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _network_error(exc: BaseException, url: str, stage: str, policy: FetchPolicy) -> FetchError:
    """Translate a socket/TLS/HTTP-protocol exception into a (possibly retryable) FetchError."""
    if isinstance(exc, http.client.InvalidURL):
        return FetchError(f"malformed URL {url!r}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return FetchError(f"TLS certificate verification failed for {url}: {exc.verify_message}")
    if isinstance(exc, socket.gaierror):
        message = f"cannot resolve host of {url}: {exc.strerror or exc}"
        return _Retryable(message) if exc.errno == socket.EAI_AGAIN else FetchError(message)
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        if stage == "connect":
            return _Retryable(f"timed out connecting to {url} (after {policy.connect_timeout:g}s)")
        return _Retryable(f"stalled: no data for {policy.read_timeout:g}s from {url}")
    if isinstance(exc, http.client.HTTPException):
        return _Retryable(f"broken HTTP response from {url}: {type(exc).__name__}")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return _Retryable(f"network error ({stage}) for {url}: {reason}")


def _check_deadline(deadline: float, policy: FetchPolicy, url: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError(f"download took longer than {policy.total_timeout:g}s from {url}")
    return remaining


def _download_once(url: str, out, policy: FetchPolicy, pinned: str | None) -> str:
    """One attempt: follow redirects, stream the body into ``out``; return its sha256."""
    deadline = time.monotonic() + policy.total_timeout
    start = url
    for hops in range(policy.max_redirects + 1):
        parts = _split_http_url(url, "" if hops == 0 else " (redirect target)")
        _check_deadline(deadline, policy, url)
        try:
            conn, target, headers = _connect(parts, policy, deadline)
        except FetchError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            raise _network_error(exc, url, "connect", policy) from None
        except ValueError as exc:  # e.g. a host name IDNA cannot encode
            raise FetchError(f"malformed URL {url!r}: {exc}") from None
        try:
            sock = conn.sock
            stage = "request"
            try:
                sock.settimeout(min(policy.read_timeout, _check_deadline(deadline, policy, url)))
                conn.request(
                    "GET",
                    target,
                    headers={
                        "User-Agent": policy.user_agent,
                        "Accept": "application/pdf,*/*;q=0.8",
                        "Accept-Encoding": "identity",
                        "Connection": "close",
                        **headers,
                    },
                )
                resp = conn.getresponse()
                status = resp.status
                if status in _REDIRECTS:
                    location = resp.getheader("Location")
                    if not location:
                        raise FetchError(f"HTTP {status} redirect without a Location from {url}")
                    new_url = urllib.parse.urljoin(url, location.strip())
                    _split_http_url(new_url, f" (redirect from {url})")
                    url = new_url
                    continue
                if status == 429 or status >= 500:
                    raise _Retryable(
                        f"HTTP {status} {resp.reason} from {url}",
                        _parse_retry_after(resp.getheader("Retry-After")),
                    )
                if status not in (200, 203):
                    raise FetchError(f"HTTP {status} {resp.reason} from {url}")
                length = _content_length(resp)
                if length is not None and length > policy.max_bytes:
                    limit = _human(policy.max_bytes)
                    raise FetchError(f"file is {_human(length)}, over the {limit} limit, at {url}")
                stage = "read"
                return _stream_body(resp, sock, out, length, deadline, policy, url, pinned)
            except FetchError:
                raise
            except TimeoutError as exc:
                if time.monotonic() >= deadline:
                    raise FetchError(
                        f"download took longer than {policy.total_timeout:g}s from {url}"
                    ) from None
                raise _network_error(exc, url, stage, policy) from None
            except (OSError, http.client.HTTPException) as exc:
                raise _network_error(exc, url, stage, policy) from None
        finally:
            conn.close()
    raise FetchError(f"too many redirects (more than {policy.max_redirects}) starting at {start}")


def _content_length(resp: http.client.HTTPResponse) -> int | None:
    value = resp.getheader("Content-Length")
    if value is None or resp.getheader("Transfer-Encoding"):
        return None
    try:
        length = int(value.strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def _stream_body(resp, sock, out, length, deadline, policy, url, pinned) -> str:
    digest = hashlib.sha256()
    head = b""
    tail = b""
    total = 0
    while True:
        sock.settimeout(min(policy.read_timeout, _check_deadline(deadline, policy, url)))
        block = resp.read1(_CHUNK)
        if not block:
            break
        total += len(block)
        if total > policy.max_bytes:
            raise FetchError(f"download exceeded the {_human(policy.max_bytes)} limit at {url}")
        out.write(block)
        digest.update(block)
        if len(head) < _PDF_HEAD:
            head += block[: _PDF_HEAD - len(head)]
        tail = (tail + block)[-_PDF_TAIL:]
    if length is not None and total < length:
        raise _Retryable(f"connection closed after {total} of {length} bytes from {url}")
    _check_pdf(head, tail, total, url)
    actual = digest.hexdigest()
    if pinned is not None and actual != pinned:
        raise FetchError(f"sha256 mismatch from {url}: expected {pinned}, got {actual}")
    return actual


def _backoff(policy: FetchPolicy, retry: int, retry_after: float | None) -> float:
    """Delay before retry number ``retry`` (0-based): doubling, jittered, capped."""
    delay = min(policy.backoff * (2**retry), policy.max_retry_after)
    delay += random.uniform(0, 0.1 * delay)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after))
    return delay


# --- cache --------------------------------------------------------------------------------


def _cache_path(paper: Paper, cache_dir: Path) -> Path:
    pid = paper.id
    if not pid or pid.startswith(".") or any(c in pid for c in "/\\\0"):
        raise FetchError(f"paper id {pid!r} cannot be used as a file name")
    return Path(cache_dir) / f"{pid}.pdf"


def _pinned(paper: Paper) -> str | None:
    if paper.sha256 is None:
        return None
    pinned = paper.sha256.strip().lower()
    if len(pinned) != 64 or any(c not in "0123456789abcdef" for c in pinned):
        raise FetchError(f"pinned sha256 of {paper.id} is not 64 hex digits: {paper.sha256!r}")
    return pinned


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: directories cannot be opened; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fetch_paper(
    paper: Paper,
    cache_dir: Path,
    policy: FetchPolicy = FetchPolicy(),
    *,
    refresh: bool = False,
) -> Path:
    """Return the path of the paper's PDF in ``cache_dir`` (named ``f"{paper.id}.pdf"``).

    A cached copy is returned without touching the network unless ``refresh`` is set or
    it does not match a pinned ``paper.sha256``. Otherwise the PDF is downloaded (with
    retries on transient failures), validated, checked against the pin, and moved into
    place atomically; on any failure the cache is left exactly as it was.
    """
    cache_dir = Path(cache_dir)
    target = _cache_path(paper, cache_dir)
    pinned = _pinned(paper)
    cached = not refresh and target.is_file()
    if cached and (pinned is None or sha256_file(target) == pinned):
        return target
    if not paper.url:
        raise FetchError("no open-access URL, add the PDF with --from")
    _split_http_url(paper.url, "")
    cache_dir.mkdir(parents=True, exist_ok=True)

    attempts = max(0, policy.retries) + 1
    for attempt in range(attempts):
        # Opened before the try (closed by its `with`) so cleanup always has the name.
        tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=cache_dir, delete=False, prefix=f"{paper.id}.", suffix=".part"
        )
        try:
            with tmp:
                _download_once(paper.url, tmp, policy, pinned)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp.name, target)
        except _Retryable as exc:
            _unlink(tmp.name)
            if attempt + 1 >= attempts:
                suffix = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
                raise FetchError(f"{exc}{suffix}") from None
            _sleep(_backoff(policy, attempt, exc.retry_after))
            continue
        except BaseException:
            _unlink(tmp.name)
            raise
        _fsync_dir(cache_dir)
        return target
    raise AssertionError("unreachable")


def _unlink(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
