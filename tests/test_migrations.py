"""Homes made by an earlier ddsearch are upgraded by the numbered migrations: nothing embedded
again, nothing lost, the same answers. The earlier ddsearch is the real one: the code of the
commit before the migrations (git archive), run in its own process, with the real model."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from _servers import REPO, read_only

from ddsearch.config import Settings
from ddsearch.doctor import diagnose
from ddsearch.index.migrations import LEGACY, MIGRATIONS
from ddsearch.index.store import Store, digest

BEFORE = "905236b"  # landed main before the migrations: schema version 2, Chroma layout 1
QUESTIONS = ["How often does each keeper light a beacon?", "hinted entries for a clerk"]


def _old_code(root: Path) -> Path:
    """The ddsearch of BEFORE, unpacked from git, or a skip where git or the commit is absent."""
    try:
        tar = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE, "ddsearch", "papers.toml"],
                             capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"the commit {BEFORE} is not in this clone")
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(root / "old", filter="data")
    return root / "old"


def _run(code: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run([sys.executable, "-m", "ddsearch.cli", *args], capture_output=True,
                          text=True, env=env, timeout=900, cwd=code.parent)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _contents(home: Path) -> dict[str, str]:
    """Each paper's content hash as the schema-2 cache holds it (the digest the Store uses)."""
    import hashlib

    con = sqlite3.connect(home / "index.db")
    out: dict[str, hashlib._Hash] = {}
    rows = con.execute(
        "SELECT c.paper_id, c.id, c.text, c.vector, (SELECT group_concat(hex(s.vector), '') "
        "FROM sentences s WHERE s.chunk = c.rowid ORDER BY s.ordinal) FROM chunks c "
        "ORDER BY c.paper_id, c.ordinal"
    ).fetchall()
    con.close()
    for pid, cid, text, vector, sentences in rows:
        h = out.setdefault(pid, hashlib.sha256())
        for value in (cid.encode(), text.encode(), vector, bytes.fromhex(sentences or "")):
            h.update(len(value).to_bytes(8, "little"))
            h.update(value)
    return {pid: h.hexdigest() for pid, h in out.items()}


@pytest.fixture(scope="module")
def old_home(tmp_path_factory, embedder_stamp):
    """A home ingested by BEFORE (three made-up papers, the real model), its answers to
    QUESTIONS as BEFORE gives them (they show BEFORE answered), and its content hashes."""
    from conftest import write_small_papers

    root = tmp_path_factory.mktemp("old-home")
    code = _old_code(root)
    pdfs = root / "pdfs"
    write_small_papers(pdfs)
    home = root / "home"
    _run(code, "--home", str(home), "ingest", "--from", str(pdfs), "--no-progress")
    answers = [_run(code, "--home", str(home), "query", q, "--json") for q in QUESTIONS]
    return home, answers, _contents(home)


def _copy(home: Path, tmp_path: Path) -> Path:
    target = tmp_path / "home"
    shutil.copytree(home, target)
    return target


def _chunk_rows(home: Path) -> dict:
    """Each paper's rows without its reference list: what the digest of schema 2 covered."""
    from dataclasses import replace

    store = Store(home, readonly=True)
    try:
        return {pid: replace(store.paper_rows(pid), references=None) for pid in store.records()}
    finally:
        store.close()


def _answers(home: Path) -> list[str]:
    return [_run(REPO, "--home", str(home), "query", q, "--json") for q in QUESTIONS]


def _gist(answers: list[str]) -> list[tuple]:
    """Each answer's first hit: paper, pages, section and quote (the vectors BEFORE computed
    differ from today's in the last digits, which may swap the close ones below it)."""
    return [tuple(json.loads(a)["results"][0][f] for f in ("paper", "pages", "section", "quote"))
            for a in answers]  # fmt: skip


def test_a_home_of_before_answers_the_same_after_its_upgrade(old_home, indexed_home, tmp_path):
    home = _copy(old_home[0], tmp_path)
    # the first query upgrades it, then answers as a home this code ingested does (the
    # ranking has changed since BEFORE: its own answers are not today's)
    assert _gist(_answers(home)) == _gist(_answers(indexed_home))
    store = Store(home, readonly=True)
    assert {pid: digest(store.paper_rows(pid)) for pid in store.records()} == old_home[2]
    applied = {r[0] for r in store.db.execute("SELECT number FROM migrations")}
    assert applied == {m.number for m in MIGRATIONS}
    assert not set(LEGACY) & set(store.chroma.collection_names())
    folders = [p for p in (home / "chroma").iterdir() if p.is_dir()]
    assert len(folders) == 3  # a vector index per collection: the old ones' are gone too
    assert store.differing() == []  # Chroma's rows in the new layout hold the same content
    store.close()
    assert diagnose(Settings(home=home)).ok
    out = _run(REPO, "--home", str(home), "ingest", "--from", str(old_home[0].parent / "pdfs"),
               "--no-progress")  # fmt: skip
    # nothing embedded again (the reference lists not read then are read: "updated")
    assert out.startswith("0 ingested (0 chunks), 3 updated, 0 unchanged"), out
    models = sorted(p.name for p in (home / "models").iterdir())
    assert len(models) == 2 and all(".ort" in name for name in models)  # a graph a precision


def test_a_home_of_before_reads_its_reference_lists_at_the_next_ingest(old_home, tmp_path):
    """Nothing embedded again: the lists ddsearch did not read then are read from the PDFs."""
    home = _copy(old_home[0], tmp_path)
    pdfs = str(old_home[0].parent / "pdfs")
    out = _run(REPO, "--home", str(home), "ingest", "--from", pdfs, "--no-progress")
    assert out.startswith("0 ingested (0 chunks), 3 updated, 0 unchanged"), out
    assert {pid: digest(rows) for pid, rows in _chunk_rows(home).items()} == old_home[2]
    store = Store(home, readonly=True)
    assert store.reference_lists() == {p: 0 for p in store.records()}  # made papers: no list
    store.close()
    out = _run(REPO, "--home", str(home), "ingest", "--from", pdfs, "--no-progress")
    assert out.startswith("0 ingested (0 chunks), 3 unchanged"), out


def test_relative_sources_of_older_homes_become_absolute(old_home, tmp_path, monkeypatch):
    home = _copy(old_home[0], tmp_path)
    con = sqlite3.connect(home / "index.db")  # as an ingest before absolute paths recorded it
    con.execute("UPDATE papers SET source = 'pdfs/ledger.pdf' WHERE id = 'ledger'")
    con.commit()
    con.close()
    monkeypatch.chdir(tmp_path)
    store = Store(home, readonly=True)
    source = store.record("ledger").source
    store.close()
    assert source == str((old_home[0].parent / "pdfs" / "ledger.pdf").resolve())
    assert diagnose(Settings(home=home)).ok


def test_a_home_from_before_chroma_held_the_index_is_committed_to_it(old_home, indexed_home,
                                                                    tmp_path):  # fmt: skip
    """Layout 0: the cache alone, and a collection of vectors that is dropped."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    home = _copy(old_home[0], tmp_path)
    shutil.rmtree(home / "chroma")
    con = sqlite3.connect(home / "index.db")
    con.execute("DELETE FROM meta WHERE key IN ('origin', 'remote_tokens')")
    con.commit()
    con.close()
    client = chromadb.PersistentClient(
        path=str(home / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    client.get_or_create_collection("chunks", embedding_function=None)
    del client
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
    assert _gist(_answers(home)) == _gist(_answers(indexed_home))
    store = Store(home)
    assert "chunks" not in store.chroma.collection_names()
    assert store.differing() == [] and set(store.records()) == set(old_home[2])
    store.close()


def test_a_read_only_home_of_before_says_how_to_upgrade_it(old_home, tmp_path):
    home = _copy(old_home[0], tmp_path)
    result = _read_only(home, "query", "beacon")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "needs a one-time upgrade" in result.stderr and "doctor --fix" in result.stderr


def _read_only(home: Path, *args: str) -> subprocess.CompletedProcess:
    return read_only(home, *args)
