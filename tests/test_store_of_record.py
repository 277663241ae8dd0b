"""Chroma is the store of record in the embedded deployment too; SQLite derives from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ddsearch.catalog import Catalog
from ddsearch.config import Settings
from ddsearch.doctor import diagnose
from ddsearch.index.chroma import CHUNKS
from ddsearch.index.store import Store, digest
from ddsearch.ingest.pipeline import ingest

sys.path.insert(0, str(Path(__file__).parent))
from _crashdriver import StubEmbedder, stub_home  # noqa: E402


def _home(tmp_path: Path) -> Path:
    return stub_home(tmp_path, [40, 41, 42])


def _rows(home: Path) -> list[tuple[str, str]]:
    """Each paper's content hash (chunk ids, texts, vectors, sentence vectors), in row order."""
    store = Store(home, readonly=True)
    try:
        return [(pid, digest(store.paper_rows(pid))) for pid in store.paper_order()]
    finally:
        store.close()


def test_every_committed_chunk_is_in_chroma_under_its_papers_commit(tmp_path):
    home = _home(tmp_path)
    store = Store(home, readonly=True)
    manifest = store.chroma.manifest()
    assert set(manifest) == set(store.records())
    for pid, commit in manifest.items():
        where = {"$and": [{"paper": pid}, {"token": commit.token}]}
        ids = store.chroma.collection(CHUNKS).get(where=where, include=[])["ids"]
        assert sorted(i.rsplit("@", 1)[0] for i in ids) == sorted(
            c.id for c in store.chunks_of(pid)
        )
    assert store.meta("origin").startswith("embedded ")
    store.close()
    assert diagnose(Settings(home=home)).ok


def test_the_cache_can_always_be_rebuilt_from_chroma(tmp_path):
    home = _home(tmp_path)
    before = _rows(home)
    for name in ("index.db", "index.db-wal", "index.db-shm", "postings.npz"):
        (home / name).unlink(missing_ok=True)
    store = Store(home)  # a writer with no cache: it takes Chroma's committed papers whole
    assert set(store.records()) == {"doc-0", "doc-1", "doc-2"}
    store.close()
    assert _rows(home) == before
    assert diagnose(Settings(home=home)).ok


def test_a_reader_never_opens_chroma(tmp_path):
    """Cold queries read the SQLite cache only: chromadb is not even imported."""
    home = _home(tmp_path)
    code = (
        "import sys; from ddsearch.index.store import Store; "
        f"s = Store({str(home)!r}, readonly=True); s.vectors(); s.records(); s.sync(); "
        "print('chromadb' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_damaged_chroma_folder_is_one_line_and_a_rebuild_starts_afresh(tmp_path):
    import pytest
    from chromadb.api.client import SharedSystemClient

    from ddsearch.index.store import IndexError_

    home = _home(tmp_path)
    SharedSystemClient.clear_system_cache()
    (home / "chroma" / "chroma.sqlite3").write_bytes(b"not a database" * 100)
    problems = diagnose(Settings(home=home)).problems
    assert [f.check for f in problems] == ["chroma"] and "rebuild" in problems[0].fix
    with pytest.raises(IndexError_) as e:  # the CLI prints it as 'Error: ...', exit 1
        ingest(Settings(home=home), Catalog(None), [tmp_path / "src"], embedder=StubEmbedder())
    assert "\n" not in str(e.value) and "Chroma" in str(e.value)
    report = ingest(Settings(home=home), Catalog(None), [tmp_path / "src"],
                    embedder=StubEmbedder(), rebuild=True)  # fmt: skip
    assert report.ok and diagnose(Settings(home=home)).ok
