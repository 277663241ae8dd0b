"""Download a paper's PDF into the cache: bounded, retried, validated, written atomically.

HTTP is httpx, with its ``trust_env``: proxies come from ``http_proxy``, ``https_proxy``,
``all_proxy`` and ``no_proxy`` (either case; HTTPS through a CONNECT tunnel). Certificates
are verified against the system's CA store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` override it).
Redirects are followed by hand so every hop is checked (http/https only, at most
``max_redirects``).
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import hashlib
import os
import random
import re
import socket
import ssl
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import httpx

from ddsearch.config import FetchPolicy
from ddsearch.files import sha256_file
from ddsearch.models import Paper

__all__ = ["FetchError", "FetchPolicy", "check_pdf_bytes", "fetch_paper", "sha256_file"]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PDF_HEAD = 1024  # '%PDF-' must start within this many leading bytes
_PDF_TAIL = 2048  # '%%EOF' must appear within this many trailing bytes
# ...preceded by the trailer's pointer to the cross-reference: 'startxref', an offset, '%%EOF'
_STARTXREF = re.compile(rb"startxref\s+\d+\s*%%EOF")

# Indirection so tests can record the back-off instead of waiting it out.
_sleep = time.sleep


class FetchError(Exception):
    """One-line, user-facing reason a PDF could not be had."""


class _Retryable(FetchError):
    """A failure worth another attempt (timeouts, dropped connections, 5xx, 429)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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


def _check_url(url: str, what: str) -> None:
    try:
        parsed = httpx.URL(url)
        scheme, host = parsed.scheme, parsed.host  # .host decodes IDNA, and may fail
    except (httpx.InvalidURL, ValueError) as exc:  # ValueError: a host IDNA cannot handle
        raise FetchError(f"malformed URL {url!r}{what}: {exc}") from None
    if scheme not in ("http", "https"):
        raise FetchError(f"refusing non-HTTP(S) URL {url!r}{what}")
    if not host:
        raise FetchError(f"URL has no host: {url!r}{what}")


@functools.cache
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """The system's CA store, as the standard library reads it (OpenSSL honours SSL_CERT_FILE
    and SSL_CERT_DIR), not httpx's certifi bundle; loaded once per setting (~20 ms)."""
    return ssl.create_default_context()


def _client(policy: FetchPolicy) -> httpx.Client:
    headers = {
        "User-Agent": policy.user_agent,
        "Accept": "application/pdf,*/*;q=0.8",
        "Accept-Encoding": "identity",  # the bytes hashed and size-capped are the file's
        "Connection": "close",  # every attempt starts on a fresh connection
    }
    try:
        verify = _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        return httpx.Client(headers=headers, verify=verify, trust_env=True)
    except (httpx.InvalidURL, ValueError, ImportError) as exc:  # a bad *_proxy variable
        raise FetchError(f"unusable proxy setting in the environment: {exc}") from None


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


def _network_error(
    exc: httpx.TransportError, url: str, stage: str, policy: FetchPolicy
) -> FetchError:
    """Translate an httpx transport error into a (possibly retryable) FetchError."""
    root: BaseException = exc
    while inner := root.__cause__ or next(  # httpx -> httpcore -> the socket or TLS error
        (a for a in root.args if isinstance(a, BaseException)), None
    ):
        root = inner
    if isinstance(root, ssl.SSLCertVerificationError):
        return FetchError(f"TLS certificate verification failed for {url}: {root.verify_message}")
    if isinstance(root, socket.gaierror):
        message = f"cannot resolve host of {url}: {root.strerror or root}"
        return _Retryable(message) if root.errno == socket.EAI_AGAIN else FetchError(message)
    if isinstance(exc, httpx.ConnectTimeout):
        return _Retryable(f"timed out connecting to {url} (after {policy.connect_timeout:g}s)")
    if isinstance(exc, httpx.TimeoutException):
        return _Retryable(f"stalled: no data for {policy.read_timeout:g}s from {url}")
    reason = " ".join(str(getattr(root, "strerror", None) or root).split())
    if isinstance(exc, httpx.ProtocolError):
        return _Retryable(f"broken HTTP response from {url}: {reason or type(root).__name__}")
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
        stage = "connect"
    return _Retryable(f"network error ({stage}) for {url}: {reason or type(root).__name__}")


def _too_slow(policy: FetchPolicy, url: str) -> FetchError:
    return FetchError(f"download took longer than {policy.total_timeout:g}s from {url}")


def _check_deadline(deadline: float, policy: FetchPolicy, url: str) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _too_slow(policy, url)
    return remaining


def _download_once(
    client: httpx.Client, url: str, out, policy: FetchPolicy, pinned: str | None
) -> str:
    """One attempt: follow redirects, stream the body into ``out``; return its sha256."""
    deadline = time.monotonic() + policy.total_timeout
    start = url
    for _ in range(policy.max_redirects + 1):
        remaining = _check_deadline(deadline, policy, url)
        # httpx has no whole-request timeout and fixes a request's read timeout when it is
        # sent, so the deadline is also checked after every block: a stall that starts late
        # can overrun it by up to one read_timeout.
        connect, read = min(policy.connect_timeout, remaining), min(policy.read_timeout, remaining)
        stage = "request"
        try:
            with client.stream("GET", url, timeout=httpx.Timeout(read, connect=connect)) as resp:
                status = resp.status_code
                if status in _REDIRECTS:
                    location = resp.headers.get("Location")
                    if not location:
                        raise FetchError(f"HTTP {status} redirect without a Location from {url}")
                    new_url = urllib.parse.urljoin(url, location.strip())
                    _check_url(new_url, f" (redirect from {url})")
                    url = new_url
                    continue
                if status == 429 or status >= 500:
                    raise _Retryable(
                        f"HTTP {status} {resp.reason_phrase} from {url}",
                        _parse_retry_after(resp.headers.get("Retry-After")),
                    )
                if status not in (200, 203):
                    raise FetchError(f"HTTP {status} {resp.reason_phrase} from {url}")
                length = _content_length(resp)
                if length is not None and length > policy.max_bytes:
                    limit = _human(policy.max_bytes)
                    raise FetchError(f"file is {_human(length)}, over the {limit} limit, at {url}")
                stage = "read"
                return _stream_body(resp, out, length, deadline, policy, url, pinned)
        except httpx.TimeoutException as exc:
            # A wait cut short by the deadline rather than by its own limit is the deadline's.
            waited = connect if isinstance(exc, httpx.ConnectTimeout) else read
            if waited == remaining or time.monotonic() >= deadline:
                raise _too_slow(policy, url) from None
            raise _network_error(exc, url, stage, policy) from None
        except httpx.TransportError as exc:
            raise _network_error(exc, url, stage, policy) from None
    raise FetchError(f"too many redirects (more than {policy.max_redirects}) starting at {start}")


def _content_length(resp: httpx.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None or "Transfer-Encoding" in resp.headers:
        return None
    try:
        length = int(value.strip())
    except ValueError:
        return None
    return length if length >= 0 else None


def _stream_body(resp, out, length, deadline, policy, url, pinned) -> str:
    digest = hashlib.sha256()
    head = tail = b""
    total = 0
    try:
        for block in resp.iter_raw():  # raw: the bytes on the wire, never decoded
            total += len(block)
            if total > policy.max_bytes:
                limit = _human(policy.max_bytes)
                raise FetchError(f"download exceeded the {limit} limit at {url}")
            out.write(block)
            digest.update(block)
            if len(head) < _PDF_HEAD:
                head += block[: _PDF_HEAD - len(head)]
            tail = (tail + block)[-_PDF_TAIL:]
            _check_deadline(deadline, policy, url)
    except httpx.RemoteProtocolError:
        if length is None or total >= length:
            raise  # not a short body: _download_once reports it
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
    _check_url(paper.url, "")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _client(policy) as client:
        return _download_into(client, paper, target, policy, pinned)


def _download_into(
    client: httpx.Client, paper: Paper, target: Path, policy: FetchPolicy, pinned: str | None
) -> Path:
    """Download with retries into a ``.part`` file beside ``target``, then rename it."""
    cache_dir = target.parent
    attempts = max(0, policy.retries) + 1
    for attempt in range(attempts):
        # Opened before the try (closed by its `with`) so cleanup always has the name.
        tmp = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=cache_dir, delete=False, prefix=f"{paper.id}.", suffix=".part"
        )
        try:
            with tmp:
                _download_once(client, paper.url or "", tmp, policy, pinned)
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
