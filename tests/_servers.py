"""Helpers for tests that run real servers: a small index, `ddsearch serve`, `chroma run`."""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# two short papers: enough for filters, citations and page links, quick to embed
SMALL_PAPERS = ("paxos-simple", "chubby")


def shared_papers() -> Path | None:
    """The shared PDFs: $DDSEARCH_PAPERS, else a shared/papers folder beside a parent."""
    env = os.environ.get("DDSEARCH_PAPERS")
    if env:
        return Path(env) if Path(env).is_dir() else None
    for parent in REPO.parents:
        candidate = parent / "shared" / "papers"
        if candidate.is_dir():
            return candidate
    return None


def paper_pdfs(ids=SMALL_PAPERS) -> list[Path]:
    folder = shared_papers()
    if folder is None:
        pytest.skip("the shared PDFs are not here (set DDSEARCH_PAPERS)")
    pdfs = [folder / f"{i}.pdf" for i in ids]
    missing = [p.name for p in pdfs if not p.is_file()]
    if missing:
        pytest.skip(f"shared PDFs missing: {', '.join(missing)}")
    return pdfs


def cli(*args: str, env: dict | None = None, timeout: float = 600, check: bool = True):
    """Run `ddsearch ARGS` in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "ddsearch.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"ddsearch {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def read_only(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`ddsearch --home HOME ARGS` with HOME on a read-only mount (a bind mount in a mount
    namespace of its own: writes fail with EROFS, even as root); a skip where that cannot be."""
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("no mount namespaces here (unshare --mount) for a read-only home")
    h = shlex.quote(str(home))
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "ddsearch.cli", "--home",
                                           str(home), *args])  # fmt: skip
    script = f"mount --bind {h} {h} && mount -o remount,bind,ro {h} && exec {cmd}"
    return subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@contextlib.contextmanager
def ddsearch_server(home: Path, *args: str, timeout: float = 300, env: dict | None = None):
    """`ddsearch --home HOME serve --port 0 ARGS`; yields its base URL once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ddsearch.cli", "--home", str(home), "serve",
         "--port", "0", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                break
        if " on http://" not in line:
            _stop(proc)
            raise AssertionError(f"ddsearch serve did not start: {line}{proc.stderr.read()}")
        yield line.split(" on ", 1)[1].split("/ ", 1)[0]
    finally:
        _stop(proc)


def chroma_executable() -> str | None:
    local = Path(sys.executable).parent / "chroma"
    return str(local) if local.is_file() else shutil.which("chroma")


@contextlib.contextmanager
def chroma_server(path: Path, port: int | None = None, timeout: float = 60):
    """`chroma run --path PATH` on 127.0.0.1 and a free port; yields its URL once it answers."""
    exe = chroma_executable()
    if exe is None:
        pytest.skip("the chroma executable is not installed")
    port = port or free_port()
    log = open(path.parent / f"chroma-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [exe, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = (path.parent / f"chroma-{port}.log").read_text()
                    raise AssertionError(f"chroma run did not start: {output}") from None
                time.sleep(0.2)
        yield url
    finally:
        _stop(proc)
        log.close()
