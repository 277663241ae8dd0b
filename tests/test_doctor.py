"""ddsearch doctor: damage is found and named with its fix; --fix repairs the safe kinds."""

from __future__ import annotations

import json
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ddsearch.catalog import Catalog, load_catalog
from ddsearch.cli import main
from ddsearch.config import Settings
from ddsearch.doctor import diagnose
from ddsearch.index.chroma import CHUNKS
from ddsearch.index.lock import writer_lock
from ddsearch.index.postings import FILE
from ddsearch.index.store import IndexError_, Store
from ddsearch.ingest.pipeline import ingest

sys.path.insert(0, str(Path(__file__).parent))
from _crashdriver import StubEmbedder, stub_home  # noqa: E402
from _faultpdfs import paper_pdf, shared_embedder  # noqa: E402


@pytest.fixture
def home(tmp_path) -> Path:
    return stub_home(tmp_path, [30, 31])


def _doctor(home: Path, *args):
    result = CliRunner().invoke(main, ["--home", str(home), "doctor", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def _problems(home: Path) -> list[tuple[str, bool]]:
    return [(f.check, f.fixable) for f in diagnose(Settings(home=home)).problems]


def _sql(home: Path, sql: str) -> None:
    con = sqlite3.connect(home / "index.db")
    con.execute(sql)
    con.commit()
    con.close()


def test_a_healthy_index_passes(home):
    result = _doctor(home)
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.output
    doc = json.loads(_doctor(home, "--json").output)
    assert doc["ok"] is True and not doc["fixed"]


def test_lines_are_labelled_by_kind(home, tmp_path):
    lines = _doctor(home).output.splitlines()
    assert not any("ok/note" in ln for ln in lines)
    assert any(ln.startswith("ok       schema: schema version") for ln in lines)
    assert any(ln.startswith("ok       chroma: ") for ln in lines)
    kinds = {f["check"]: f["kind"] for f in json.loads(_doctor(home, "--json").output)["findings"]}
    assert kinds["schema"] == kinds["model"] == "ok"
    fresh = _doctor(tmp_path / "fresh").output
    assert fresh.startswith("note     database: no index in"), fresh


def test_orphan_chroma_rows_are_found_and_fixed(home):
    store = Store(home)
    store.chroma.collection(CHUNKS).upsert(
        ids=["ghost:00000:0000@dead"],
        embeddings=np.ones((1, 384), dtype=np.float32),
        metadatas=[{"paper": "ghost", "token": "dead", "ordinal": 0, "written_ns": 0}],
    )
    store.close()
    assert _problems(home) == [("chroma", True)]
    result = _doctor(home)
    assert result.exit_code == 1 and "no commit owns" in result.output
    fixed = _doctor(home, "--fix")
    assert fixed.exit_code == 0 and "deleted 1 Chroma row(s)" in fixed.output
    store = Store(home)
    assert store.chroma.collection(CHUNKS).count() == store.count_chunks()


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE chunks SET text = 'tampered' WHERE rowid = (SELECT min(rowid) FROM chunks)",
        "UPDATE vectors SET vector = zeroblob(1536) WHERE chunk = (SELECT max(rowid) FROM chunks)",
        "UPDATE sentences SET vector = zeroblob(768) WHERE ordinal = 0",
    ],
)
def test_a_cache_that_differs_from_chroma_by_content_is_read_again(home, damage):
    """The same ids on both sides, other content: the hash tells, and --fix reads Chroma's."""
    before = _sql_rows(home, ROWS)
    _sql(home, damage)
    assert _problems(home) == [("chroma", True)]
    assert "differs from what Chroma committed" in _doctor(home).output
    fixed = _doctor(home, "--fix")
    assert fixed.exit_code == 0 and "again from Chroma" in fixed.output, fixed.output
    after = _sql_rows(home, ROWS)
    assert sorted(after) == sorted(before)
    assert _doctor(home).exit_code == 0


ROWS = "SELECT c.id, c.text, v.vector FROM chunks c JOIN vectors v ON v.chunk = c.rowid"


def _sql_rows(home: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(home / "index.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_lexical_index_out_of_step_is_rebuilt(home):
    _sql(  # two rows deleted from the (contentless) lexical index, as FTS5 takes a delete
        home,
        "INSERT INTO chunks_fts (chunks_fts, rowid, title, section, text) SELECT 'delete', "
        "c.rowid, json_extract(p.paper, '$.title'), coalesce(c.section, ''), c.text "
        "FROM chunks c JOIN papers p ON p.id = c.paper_id LIMIT 2",
    )
    assert _problems(home) == [("fts", True)]
    generation = Store(home).meta("generation")
    assert _doctor(home, "--fix").exit_code == 0
    store = Store(home)
    assert store.meta("generation") != generation  # postings built before the fix are stale
    assert (
        len(store.lexical("replica", 1000))
        == store.db.execute("SELECT count(*) FROM chunks WHERE text LIKE '%replica%'").fetchone()[0]
    )


def test_postings_over_a_damaged_lexical_index_are_skipped_not_a_traceback(home):
    (home / FILE).unlink(missing_ok=True)
    _sql(home, "DELETE FROM chunks_fts_data WHERE id > 10")  # FTS5's own pages, gone
    store = Store(home)
    assert store.postings(build=True) is None  # queries go to FTS5, which says what is wrong
    assert not (home / FILE).exists()
    store.close()


def test_damaged_lexical_index_pages_are_found_and_rebuilt(home):
    _sql(home, "DELETE FROM chunks_fts_data WHERE id > 10")
    assert _problems(home) == [("fts", True)]
    with pytest.raises(IndexError_, match="lexical index .* is damaged"):
        Store(home).lexical('"replica"', 5)
    fixed = _doctor(home, "--fix")
    assert fixed.exit_code == 0 and "rebuilt the lexical (FTS) index" in fixed.output
    assert Store(home).lexical('"replica"', 5)


def test_catalog_papers_ingested_as_listed_are_not_flagged(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "raft.pdf").write_bytes(paper_pdf(41, pages=2, lines=10))
    home = tmp_path / "home"
    catalog = load_catalog()
    assert ingest(Settings(home=home), catalog, [src], embedder=shared_embedder()).ok
    result = _doctor(home)
    assert result.exit_code == 0 and "no problems found" in result.output, result.output
    raft = catalog.papers["raft"]
    catalog.papers["raft"] = replace(raft, title=raft.title + " (revised)")
    problems = diagnose(Settings(home=home), catalog).problems
    assert [(f.check, f.message.split(":")[0]) for f in problems] == [("catalog", "raft")]


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_either_precision_is_as_listed_and_local_papers_are_told_their_folder(tmp_path, backend):
    class Encoder(StubEmbedder):  # what --precision fp32 / int8 records as the encoder
        def encode_passages(self, texts, spans, batch_size=32, on_batch=None):
            sentences = [self.encode([t[a:b] for a, b in s]) for t, s in zip(texts, spans)]
            return self.encode(texts), sentences

    Encoder.backend = backend
    src = tmp_path / "src"
    src.mkdir()
    (src / "raft.pdf").write_bytes(paper_pdf(42, pages=2, lines=10))
    home = tmp_path / "home"
    catalog = load_catalog()
    settings = Settings(home=home, int8=backend == "onnx-int8")
    assert ingest(settings, catalog, [src], embedder=Encoder()).ok
    assert diagnose(Settings(home=home), catalog).ok  # doctor runs at the default precision
    catalog.papers["raft"] = replace(catalog.papers["raft"], title="Raft (revised)")
    [problem] = diagnose(Settings(home=home), catalog).problems
    # the paper came from a folder, not a download: the fix says where to read it again
    assert problem.fix == f"run 'ddsearch ingest raft --from {(src / 'raft.pdf').resolve()}'"


def test_a_manifest_count_mismatch_names_the_ingest_that_fixes_it(home, tmp_path):
    _sql(home, "UPDATE papers SET chunks = chunks + 1 WHERE id = 'doc-0'")
    diagnosis = diagnose(Settings(home=home))
    [problem] = diagnosis.problems
    assert problem.check == "chunks" and not problem.fixable
    assert problem.fix.startswith("run 'ddsearch ingest doc-0'")
    report = ingest(Settings(home=home), Catalog(None), [tmp_path / "src"], embedder=StubEmbedder())
    assert [o.paper_id for o in report.of("ingested")] == ["doc-0"]
    assert diagnose(Settings(home=home)).ok


def test_stale_partial_downloads_are_removed(home):
    cache = Settings(home=home).pdf_cache
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "raft.abc123.part").write_bytes(b"%PDF-1.4 half")
    assert _problems(home) == [("cache", True)]
    assert _doctor(home, "--fix").exit_code == 0
    assert not list(cache.glob("*.part"))


def test_sources_gone_or_changed(home, tmp_path):
    (tmp_path / "src" / "doc-0.pdf").unlink()  # a --from file: a note, search still works
    (tmp_path / "src" / "doc-1.pdf").write_bytes(paper_pdf(99, pages=1))  # changed: a problem
    diagnosis = diagnose(Settings(home=home))
    notes = [f for f in diagnosis.findings if f.check == "source" and not f.problem]
    assert notes and "doc-0" in notes[0].message
    [problem] = diagnosis.problems
    assert problem.check == "source" and "doc-1" in problem.message
    assert "ddsearch ingest --from" in problem.fix


def _source_findings(home: Path) -> list[str]:
    return [f.message for f in diagnose(Settings(home=home)).findings if f.check == "source"]


def test_sources_are_stored_absolute_and_doctor_agrees_from_anywhere(tmp_path, monkeypatch):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "doc-0.pdf").write_bytes(paper_pdf(30, pages=2, lines=10))
    home = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    assert ingest(Settings(home=home), Catalog(None), [Path("src")], embedder=StubEmbedder()).ok
    [record] = Store(home).records().values()
    assert record.source == str(tmp_path / "src" / "doc-0.pdf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert _source_findings(home) == []
    result = _doctor(home)
    assert result.exit_code == 0 and "no problems found" in result.output


def test_an_incompatible_schema_is_reported_not_raised(home):
    _sql(home, "DROP TABLE migrations")  # as a home from before the migrations looks
    _sql(home, "UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    result = _doctor(home)
    assert result.exit_code == 1
    assert "schema version 0" in result.output and "ddsearch ingest --rebuild" in result.output
    assert "Traceback" not in result.output


def test_an_index_of_a_newer_ddsearch_is_reported_not_raised(home):
    _sql(home, "INSERT INTO migrations VALUES (999, 'from the future', 0)")
    result = _doctor(home)
    assert result.exit_code == 1 and "made by a newer ddsearch" in result.output
    assert "upgrade ddsearch" in result.output and "Traceback" not in result.output


def test_while_an_ingest_runs_in_flight_rows_are_not_problems(home):
    store = Store(home)
    store.chroma.collection(
        CHUNKS
    ).upsert(  # an orphan as a live writer leaves it, old enough to delete
        ids=["doc-0:09999:ffff@live"],
        embeddings=np.ones((1, 384), np.float32),
        metadatas=[{"paper": "doc-0", "token": "live", "ordinal": 9999, "written_ns": 0}],
    )
    store.close()
    with writer_lock(home):
        assert diagnose(Settings(home=home)).ok
        result = _doctor(home, "--fix")
        assert "not fixing" in result.output
    assert _problems(home) == [("chroma", True)]


def test_a_missing_model_is_a_problem(home):
    _sql(home, "UPDATE meta SET value = '/nonexistent/model-dir' WHERE key = 'model'")
    checks = [f.check for f in diagnose(Settings(home=home)).problems]
    assert "model" in checks
