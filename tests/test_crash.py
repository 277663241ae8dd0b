"""Crashes and concurrent runs lose nothing: SIGKILL at any moment, Ctrl-C, two writers, readers.

Child processes run the real ingest code. Most use ``_crashdriver``'s stub embedder (the real
tokenizer and chunker, vectors from a hash) so a child starts in a second or two; one test
runs the real CLI with the real model end to end.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ddsearch
from ddsearch.catalog import Catalog
from ddsearch.config import Settings
from ddsearch.doctor import diagnose
from ddsearch.index.chroma import CHUNKS
from ddsearch.index.store import Store
from ddsearch.ingest.pipeline import ingest

sys.path.insert(0, str(Path(__file__).parent))
from _crashdriver import StubEmbedder  # noqa: E402
from _faultpdfs import paper_pdf  # noqa: E402

ROOT = Path(ddsearch.__file__).resolve().parent.parent
DRIVER = Path(__file__).parent / "_crashdriver.py"
N_PAPERS = 5


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _driver(*args, delay: float = 0.0, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(DRIVER), *args],
        env=_env(STUB_DELAY=delay),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def _cli(home: Path, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ddsearch.cli", "--home", str(home), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _committed(home: Path) -> int:
    """Papers whose transaction has committed, read the way any other process would."""
    db = home / "index.db"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT count(*) FROM papers").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # the schema is being created
        return 0


def _wait(predicate, proc: subprocess.Popen, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"child ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("timed out waiting for the child")
        time.sleep(0.02)


def _counts(home: Path) -> dict[str, int]:
    """Chunk counts per paper as the CLI reports them."""
    res = _cli(home, "papers", "--json", "--catalog", str(_empty_catalog(home.parent)))
    assert res.returncode == 0, res.stderr
    return {r["id"]: r["chunks"] for r in json.loads(res.stdout) if r["status"] == "indexed"}


def _empty_catalog(where: Path) -> Path:
    path = where / "empty.toml"
    path.write_text("")
    return path


def _consistent(home: Path) -> tuple[int, int, dict[str, int]]:
    """(cached chunks, Chroma rows, cached manifest counts) as a reader sees them, after
    checking each paper is whole."""
    store = Store(home, readonly=True)  # a writer would first bring the cache up to Chroma
    try:
        for pid, rec in store.records().items():
            assert store.count_chunks(pid) == rec.chunks, f"{pid} is partly stored"
        return (
            store.count_chunks(),
            store.chroma.collection(CHUNKS).count(),
            {p: r.chunks for p, r in store.records().items()},
        )
    finally:
        store.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("papers")
    for i in range(N_PAPERS):
        (d / f"paper-{i}.pdf").write_bytes(paper_pdf(i, pages=3, lines=14))
    return d


@pytest.fixture(scope="module")
def reference(tmp_path_factory, folder) -> dict[str, int]:
    """Chunk counts of a clean, uninterrupted ingest with the stub embedder."""
    home = tmp_path_factory.mktemp("ref") / "home"
    report = ingest(Settings(home=home), Catalog(None), [folder], embedder=StubEmbedder())
    assert report.ok and len(report.of("ingested")) == N_PAPERS
    counts = _counts(home)
    assert len(counts) == N_PAPERS and all(counts.values())
    return counts


def _repair_and_compare(home: Path, folder: Path, reference: dict[str, int]) -> None:
    report = ingest(Settings(home=home), Catalog(None), [folder], embedder=StubEmbedder())
    assert report.ok, report.outcomes
    assert _counts(home) == reference
    sqlite_n, chroma_n, _ = _consistent(home)
    assert sqlite_n == chroma_n == sum(reference.values())
    assert diagnose(Settings(home=home)).ok


def test_sigkill_inside_the_sqlite_transaction(tmp_path, folder, reference):
    home = tmp_path / "home"
    proc = _driver("kill-in-txn", "3", "--home", str(home), "ingest", "--from", str(folder))
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    sqlite_n, chroma_n, manifest = _consistent(home)
    assert len(manifest) == 2  # the cache: papers 1 and 2 whole; paper 3 not at all
    assert chroma_n > sqlite_n  # paper 3 is committed to Chroma, the cache is behind
    assert not diagnose(Settings(home=home)).ok  # doctor sees the cache differ from Chroma
    _repair_and_compare(home, folder, reference)


def test_sigkill_after_commit_before_stale_rows_are_deleted(tmp_path, folder, reference):
    home = tmp_path / "home"
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in folder.iterdir():
        (changed / f.name).write_bytes(f.read_bytes())
    assert ingest(Settings(home=home), Catalog(None), [changed], embedder=StubEmbedder()).ok
    (changed / "paper-1.pdf").write_bytes(paper_pdf(1, pages=3, lines=9))  # new text, new ids
    proc = _driver("kill-after-commit", "1", "--home", str(home), "ingest", "--from", str(changed))
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    sqlite_n, chroma_n, _ = _consistent(home)
    assert chroma_n > sqlite_n  # both versions' rows are in Chroma; the cache has the old
    clean = tmp_path / "clean"
    assert ingest(Settings(home=clean), Catalog(None), [changed], embedder=StubEmbedder()).ok
    _repair_and_compare(home, changed, _counts(clean))


def test_sigkill_at_random_moments(tmp_path, folder, reference):
    home = tmp_path / "home"
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    for _ in range(3):
        proc = _driver("cli", "--home", str(home), "ingest", "--from", str(folder), delay=0.2)
        time.sleep(rng.uniform(0.5, 3.5))
        proc.kill()
        proc.communicate(timeout=30)
    _consistent(home)  # whatever was visible after each kill was whole
    _repair_and_compare(home, folder, reference)


def test_sigkill_at_random_moments_on_a_chroma_server(tmp_path, folder, reference):
    """The other deployment: the same kills against a real `chroma run`; the next run
    converges, every committed paper is whole in the cache and on the server, doctor is clean
    (rows a killed writer left younger than 15 minutes are a live writer's as far as anyone
    knows, so they are neither deleted nor a problem)."""
    from _servers import chroma_server

    home = tmp_path / "home"
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    with chroma_server(tmp_path / "chroma") as url:
        for _ in range(3):
            proc = _driver("cli", "--home", str(home), "--chroma-url", url, "ingest", "--from",
                           str(folder), delay=0.2)  # fmt: skip
            time.sleep(rng.uniform(1.0, 4.0))
            proc.kill()
            proc.communicate(timeout=30)
        settings = Settings(home=home, chroma_url=url)
        report = ingest(settings, Catalog(None), [folder], embedder=StubEmbedder())
        assert report.ok, (seed, report.outcomes)
        store = Store(home, readonly=True, chroma_url=url)
        try:
            counts = {p: r.chunks for p, r in store.records().items()}
            assert counts == reference, seed
            for pid, meta in store.chroma.manifest().items():
                where = {"$and": [{"paper": pid}, {"token": meta.token}]}
                rows = store.chroma.collection(CHUNKS).get(where=where, include=[])["ids"]
                assert len(rows) == store.count_chunks(pid) == reference[pid], seed
        finally:
            store.close()
        assert diagnose(settings).ok, seed


def test_ctrl_c_stops_between_papers_and_says_what_was_done(tmp_path, folder, reference):
    home = tmp_path / "home"
    proc = _driver("cli", "--home", str(home), "ingest", "--from", str(folder), delay=0.5)
    _wait(lambda: _committed(home) >= 1, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert re.search(
        r"interrupted: (\d+ paper\(s\) done \(.+\)|no paper done); run again to "
        r"finish the rest",
        err,
    ), err
    assert "Traceback" not in err
    done = int(out.split(" ingested")[0].strip().splitlines()[-1])
    assert 1 <= done < N_PAPERS
    _sqlite_n, _chroma_n, manifest = _consistent(home)
    assert len(manifest) == done
    _repair_and_compare(home, folder, reference)


@pytest.mark.integration
def test_real_cli_lock_query_during_ingest_and_kill(tmp_path, folder, reference, embedder):
    """The real CLI and model: a second writer refuses, a reader answers, SIGKILL is repaired."""
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ddsearch.cli",
            "--home",
            str(home),
            "ingest",
            "--from",
            str(folder),
        ],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = home / "ingest.lock"
    _wait(lambda: lock.exists() and lock.read_text().strip() == str(proc.pid), proc)

    second = _cli(home, "ingest", "--from", str(folder))
    assert second.returncode == 1
    assert f"another ingest is writing to {home} (pid {proc.pid})" in second.stderr
    assert "Traceback" not in second.stderr

    _wait(lambda: _committed(home) >= 1, proc)
    from ddsearch.search.searcher import Searcher

    started = time.monotonic()
    searcher = Searcher(home, embedder=embedder)
    hits = searcher.search("replica quorum leader election", k=5)
    searcher.store.close()
    assert hits and time.monotonic() - started < 10
    assert proc.poll() is None, "the ingest ended before the query ran: nothing was concurrent"
    proc.kill()
    proc.communicate(timeout=30)

    report = ingest(Settings(home=home), Catalog(None), [folder], embedder=embedder)
    assert report.ok
    assert _counts(home) == reference  # chunking does not depend on the vectors
    sqlite_n, chroma_n, _ = _consistent(home)
    assert sqlite_n == chroma_n


@pytest.fixture(scope="module")
def embedder():
    from _faultpdfs import shared_embedder

    return shared_embedder()
