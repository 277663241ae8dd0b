"""Ingest with the real model and a real Chroma store, on small made-up PDFs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import SMALL_PAPERS, write_small_papers
from pdfmaker import make_pdf, not_a_pdf, textless_pdf, truncated_pdf

from ddsearch.catalog import load_catalog
from ddsearch.config import Settings
from ddsearch.index.chroma import CHUNKS
from ddsearch.index.embed import Embedder
from ddsearch.index.lock import LockedError, writer_lock
from ddsearch.index.postings import FILE
from ddsearch.index.store import IndexError_, Store
from ddsearch.ingest.pipeline import IngestError, fingerprint, ingest, plan
from ddsearch.search.searcher import Searcher


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def run(home: Path, catalog, sources=(), ids=(), embedder=None, **kw):
    return ingest(
        Settings(home=home, **kw.pop("settings", {})),
        catalog,
        list(sources),
        list(ids),
        embedder=embedder,
        **kw,
    )


def statuses(report) -> dict[str, str]:
    return {o.paper_id: o.status for o in report.outcomes}


def counts(home: Path) -> tuple[dict[str, int], int, int]:
    """(chunks per paper in the manifest, chunk rows in SQLite, rows in Chroma)."""
    store = Store(home, readonly=True)
    try:
        manifest = {pid: r.chunks for pid, r in store.records().items()}
        return manifest, store.count_chunks(), store.chroma.collection(CHUNKS).count()
    finally:
        store.close()


def assert_consistent(home: Path) -> None:
    """Manifest, SQLite chunks, FTS rows and Chroma rows all describe the same chunks."""
    store = Store(home, readonly=True)
    try:
        for pid, rec in store.records().items():
            rows = store.chunks_of(pid)
            assert len(rows) == rec.chunks == store.count_chunks(pid)
            assert [c.ordinal for c in rows] == list(range(len(rows)))
            chroma = store.chroma.collection(CHUNKS).get(where={"paper": pid}, include=[])["ids"]
            assert sorted(i.rsplit("@", 1)[0] for i in chroma) == sorted(c.id for c in rows)
        fts = store.db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        assert fts == store.count_chunks() == store.chroma.collection(CHUNKS).count()
    finally:
        store.close()


# ---------------------------------------------------------------- ingesting


def test_ingest_a_folder(tmp_home, small_pdfs, catalog, embedder):
    report = run(tmp_home, catalog, [small_pdfs["lighthouse"].parent], embedder=embedder)
    assert report.ok and not report.interrupted
    assert statuses(report) == {pid: "ingested" for pid in SMALL_PAPERS}
    manifest, sqlite_rows, chroma_rows = counts(tmp_home)
    assert manifest == {o.paper_id: o.chunks for o in report.outcomes}
    assert all(n > 0 for n in manifest.values())
    assert sqlite_rows == chroma_rows == sum(manifest.values())
    assert_consistent(tmp_home)

    store = Store(tmp_home, readonly=True)
    rec = store.record("ledger")
    assert rec.paper.title == SMALL_PAPERS["ledger"][0]  # the PDF's own title
    assert rec.paper.kind == "misc" and rec.paper.path == str(small_pdfs["ledger"].resolve())
    assert rec.source == str(small_pdfs["ledger"].resolve())
    assert rec.settings == fingerprint(rec.paper, Settings(home=tmp_home), embedder.backend)
    assert store.model == embedder.name
    assert int(store.meta("dimension")) == 384
    chunks = store.chunks_of("lighthouse")
    assert any("ninety seconds" in c.text and c.pages == (2,) for c in chunks)
    assert all(set(c.pages) <= {1, 2, 3} for c in chunks)
    postings = store.postings()  # built by the ingest, for the index as committed
    assert postings is not None and postings.generation == store.meta("generation")
    store.close()


def test_single_files_and_ids(tmp_home, small_pdfs, catalog, embedder):
    report = run(
        tmp_home,
        catalog,
        [small_pdfs["orchard"], small_pdfs["ledger"]],
        ids=["orchard"],
        embedder=embedder,
    )
    assert statuses(report) == {"orchard": "ingested"}
    assert set(counts(tmp_home)[0]) == {"orchard"}


def test_reingest_skips_unchanged(tmp_path, catalog, embedder):
    home = tmp_path / "home"
    pdfs = write_small_papers(tmp_path / "pdfs")
    first = run(home, catalog, [tmp_path / "pdfs"], embedder=embedder)
    before = counts(home)
    again = run(home, catalog, [tmp_path / "pdfs"], embedder=embedder)
    assert statuses(again) == {pid: "skipped" for pid in pdfs}
    assert {o.reason for o in again.outcomes} == {"unchanged"}
    assert {o.paper_id: o.chunks for o in again.outcomes} == {
        o.paper_id: o.chunks for o in first.outcomes
    }
    assert counts(home) == before
    # the same bytes in another place are still the same paper: not embedded again, but its
    # record (and so its file:// links) follows the file
    moved = tmp_path / "moved"
    moved.mkdir()
    for p in pdfs.values():
        (moved / p.name).write_bytes(p.read_bytes())
    assert set(statuses(run(home, catalog, [moved], embedder=embedder)).values()) == {"updated"}
    assert counts(home) == before
    store = Store(home, readonly=True)
    assert {Path(r.paper.path).parent for r in store.records().values()} == {moved.resolve()}
    store.close()


def test_changed_pdf_is_replaced_whole(tmp_home, small_pdfs, catalog, embedder):
    folder = small_pdfs["lighthouse"].parent
    run(tmp_home, catalog, [folder], embedder=embedder)
    old_ids = {c.id for c in _chunks(tmp_home, "lighthouse")}
    _, before_rows, _ = counts(tmp_home)

    make_pdf(
        small_pdfs["lighthouse"],
        [["Lighthouse: Gossip Among Keepers", "Abstract",
          "This revision replaces the whole paper with a single new paragraph about lanterns.",
          "Lanterns are trimmed at dusk and keepers write the hour in a log."]],
        title=SMALL_PAPERS["lighthouse"][0],
    )  # fmt: skip
    report = run(tmp_home, catalog, [folder], embedder=embedder)
    assert statuses(report) == {"lighthouse": "ingested", "ledger": "skipped", "orchard": "skipped"}
    new = _chunks(tmp_home, "lighthouse")
    assert new and not ({c.id for c in new} & old_ids)
    assert all("beacon" not in c.text for c in new)
    assert any("lanterns" in c.text for c in new)
    assert all(c.pages == (1,) for c in new)
    manifest, rows, chroma = counts(tmp_home)
    assert manifest["lighthouse"] == len(new)
    assert rows == chroma == sum(manifest.values()) < before_rows
    assert_consistent(tmp_home)
    # the lexical index forgot the old text too
    store = Store(tmp_home, readonly=True)
    assert store.lexical('"beacon"', 10) == []
    store.close()
    searcher = Searcher(tmp_home, embedder=embedder)
    assert searcher._current_postings() is not None  # and so did the saved postings
    assert searcher.lexical("beacon", 10) == []
    assert searcher.lexical("lanterns", 10)
    searcher.store.close()


def test_changed_settings_reingest(tmp_home, small_pdfs, catalog, embedder):
    folder = small_pdfs["lighthouse"].parent
    run(tmp_home, catalog, [folder], ids=["orchard"], embedder=embedder)
    report = run(
        tmp_home,
        catalog,
        [folder],
        ids=["orchard"],
        embedder=embedder,
        settings={"chunk_tokens": 40, "overlap_tokens": 8},
    )
    assert statuses(report) == {"orchard": "ingested"}
    assert report.outcomes[0].chunks > 1
    assert max(embedder.count_tokens([c.text for c in _chunks(tmp_home, "orchard")])) <= 40
    assert_consistent(tmp_home)


def _fts_rows(home: Path) -> tuple[int, int]:
    """Rows of the full-text indexes' segment tables: index.db's and the Chroma database's."""
    out = []
    chroma = home / "chroma" / "chroma.sqlite3"
    for path, table in ((home / "index.db", "chunks_fts"), (chroma, "embedding_fulltext_search")):
        with sqlite3.connect(path) as db:
            out.append(db.execute(f"SELECT count(*) FROM {table}_data").fetchone()[0])
    return out[0], out[1]


def test_reingesting_does_not_grow_the_full_text_indexes(tmp_home, small_pdfs, catalog, embedder):
    """FTS5 keeps a replaced row's entries until a merge; an ingest that replaced or removed
    papers merges them, so the home stays the size of what it holds."""
    folder = small_pdfs["lighthouse"].parent
    run(tmp_home, catalog, [folder], embedder=embedder)
    first = _fts_rows(tmp_home)
    for tokens in (40, 60, 40, 60, 40, 60):
        settings = {"chunk_tokens": tokens, "overlap_tokens": 8}
        report = run(tmp_home, catalog, [folder], embedder=embedder, settings=settings)
        assert set(statuses(report).values()) == {"ingested"}
    run(tmp_home, catalog, [folder], embedder=embedder)  # the first settings again
    now = _fts_rows(tmp_home)
    assert now[0] <= first[0] and now[1] <= first[1], (first, now)
    assert "compact" in report.stages
    assert_consistent(tmp_home)


def test_a_rebuild_of_a_damaged_cache_keeps_to_what_it_was_asked(tmp_home, small_pdfs, catalog,
                                                                 embedder):  # fmt: skip
    folder = small_pdfs["lighthouse"].parent
    run(tmp_home, catalog, [folder], embedder=embedder)
    (tmp_home / "index.db").write_bytes(b"not a database" * 100)
    for name in ("index.db-wal", "index.db-shm"):
        (tmp_home / name).unlink(missing_ok=True)
    # with ids the other papers are to be kept: not a reason to drop Chroma
    with pytest.raises(IndexError_, match="doctor --fix"):
        run(tmp_home, catalog, [folder], ids=["ledger"], embedder=embedder, rebuild=True)
    assert (tmp_home / "chroma").is_dir()
    # without, everything anew; the damaged file is set aside, not deleted
    report = run(tmp_home, catalog, [folder], embedder=embedder, rebuild=True)
    assert set(statuses(report).values()) == {"ingested"} and len(report.outcomes) == 3
    assert list(tmp_home.glob("index.db.damaged-*"))
    assert_consistent(tmp_home)


def test_rebuild_reingests_the_papers_named_or_everything(tmp_home, small_pdfs, catalog,
                                                          embedder):  # fmt: skip
    folder = small_pdfs["lighthouse"].parent
    run(tmp_home, catalog, [folder], embedder=embedder)
    before = counts(tmp_home)[0]
    # with ids, only those papers are dropped and ingested anew
    report = run(tmp_home, catalog, [folder], ids=["ledger"], embedder=embedder, rebuild=True)
    assert statuses(report) == {"ledger": "ingested"}
    assert counts(tmp_home)[0] == before
    # without, the whole index: a paper this run does not ingest again is told as removed
    report = run(tmp_home, catalog, [small_pdfs["orchard"]], embedder=embedder, rebuild=True)
    assert statuses(report) == {"orchard": "ingested", "ledger": "removed",
                                "lighthouse": "removed"}  # fmt: skip
    assert set(counts(tmp_home)[0]) == {"orchard"}
    assert_consistent(tmp_home)


def test_a_rebuild_with_a_model_that_cannot_load_drops_nothing(tmp_home, small_pdfs, catalog,
                                                               embedder):  # fmt: skip
    from ddsearch.index.embed import ModelError

    folder = small_pdfs["lighthouse"].parent
    run(tmp_home, catalog, [folder], embedder=embedder)
    before = counts(tmp_home)
    missing = str(tmp_home.parent / "no-such-model")
    with pytest.raises(ModelError, match="no model folder at"):
        run(tmp_home, catalog, [folder], rebuild=True, settings={"model": missing})
    assert counts(tmp_home) == before
    # nor without --rebuild: a model failing on the first passage is one error for the run,
    # not one failure per paper
    from _crashdriver import StubEmbedder

    class Broken(StubEmbedder):
        def encode_passages(self, texts, spans, batch_size=32, on_batch=None):
            raise ModelError("the model went away")

    fresh = tmp_home.parent / "fresh"
    with pytest.raises(ModelError, match="the model went away"):
        run(fresh, catalog, [folder], embedder=Broken())


def test_catalog_paper_from_a_local_file(tmp_home, tmp_path, catalog, embedder):
    pdf = make_pdf(tmp_path / "src" / "gfs.pdf", SMALL_PAPERS["orchard"][1], title="Untitled1")
    report = run(tmp_home, catalog, [pdf], embedder=embedder)
    assert statuses(report) == {"gfs": "ingested"}
    rec = Store(tmp_home, readonly=True).record("gfs")
    assert rec.paper.title == catalog.get("gfs").title and rec.paper.year == 2003
    assert rec.paper.path == str(pdf.resolve())


def test_title_from_first_line_without_metadata(tmp_home, tmp_path, catalog, embedder):
    pdf = make_pdf(
        tmp_path / "My Notes_v2.pdf",
        [
            [
                "Notes on Anti-Entropy Repair",
                "Replicas compare Merkle trees and repair the ranges that differ.",
            ]
        ],
    )
    report = run(tmp_home, catalog, [pdf], embedder=embedder)
    assert statuses(report) == {"my-notes-v2": "ingested"}
    assert Store(tmp_home, readonly=True).record("my-notes-v2").paper.title == (
        "Notes on Anti-Entropy Repair"
    )


def test_a_local_pdf_without_metadata_is_cited_from_its_first_page(tmp_home, tmp_path, catalog,
                                                                     embedder):  # fmt: skip
    """The title wraps onto a second line; the bylines name the authors; the year is printed."""
    pdf = make_pdf(
        tmp_path / "Fischer Lynch – Unmöglichkeit (1985) 合意.pdf",
        [[
            "Impossibility of Distributed Consensus",
            "with One Faulty Process",
            "Michael J. Fischer, Nancy A. Lynch",
            "Michael S. Paterson",
            "Yale University, MIT",
            "Journal of the ACM, April 1985",
            "Abstract",
            "The consensus problem involves an asynchronous system of processes.",
            "No completely asynchronous consensus protocol can tolerate even a single failure.",
        ]],
    )  # fmt: skip
    report = run(tmp_home, catalog, [pdf], embedder=embedder)
    [(pid, status)] = statuses(report).items()
    assert status == "ingested", report.outcomes
    paper = Store(tmp_home, readonly=True).record(pid).paper
    assert paper.title == "Impossibility of Distributed Consensus with One Faulty Process"
    assert paper.authors == ("Michael J. Fischer", "Nancy A. Lynch", "Michael S. Paterson")
    assert paper.year == 1985
    from ddsearch.search.cite import author_string

    assert f"{author_string(paper.authors)} ({paper.year})" == "Fischer et al. (1985)"


def test_a_damaged_pdf_is_told_before_the_model_is_prepared(tmp_home, tmp_path, catalog):
    class Unprepared(Embedder):
        def prepared(self):  # pragma: no cover - the check: never asked
            raise AssertionError("the model was prepared for a run with nothing to read")

        @property
        def backend(self):  # pragma: no cover
            raise AssertionError("the model was prepared for a run with nothing to read")

    pdf = truncated_pdf(tmp_path / "cut.pdf", [["A paper cut short.", "Its end is missing."]])
    report = run(tmp_home, catalog, [pdf], embedder=Unprepared())
    assert statuses(report) == {"cut": "failed"}
    assert "truncated or damaged PDF" in report.outcomes[0].reason


# ---------------------------------------------------------------- failures


def test_unknown_ids(tmp_home, small_pdfs, catalog, embedder):
    with pytest.raises(IngestError, match="unknown paper id.*no-such-paper"):
        run(tmp_home, catalog, ids=["no-such-paper"], embedder=embedder)
    with pytest.raises(IngestError, match="not among the given PDFs: gfs"):
        run(tmp_home, catalog, [small_pdfs["ledger"]], ids=["gfs"], embedder=embedder)
    with pytest.raises(IngestError, match="no such file or folder"):
        run(tmp_home, catalog, [tmp_home.parent / "missing"], embedder=embedder)
    assert not (tmp_home / "index.db").exists()  # nothing was started


def test_bad_files_fail_alone(tmp_home, small_pdfs, catalog, embedder):
    folder = small_pdfs["lighthouse"].parent
    (folder / "README.txt").write_text("not a paper")
    (folder / ".DS_Store").write_bytes(b"\0")
    not_a_pdf(folder / "broken.pdf")
    textless_pdf(folder / "scan.pdf")
    report = run(tmp_home, catalog, [folder], embedder=embedder)
    assert not report.ok
    assert statuses(report) == {
        "README.txt": "skipped", "broken": "failed", "scan": "failed",
        "lighthouse": "ingested", "ledger": "ingested", "orchard": "ingested",
    }  # fmt: skip
    reasons = {o.paper_id: o.reason for o in report.outcomes}
    assert reasons["README.txt"] == "not a PDF file"
    assert "not a PDF" in reasons["broken"]
    assert "no extractable text" in reasons["scan"]
    assert all("\n" not in r for r in reasons.values())
    assert set(counts(tmp_home)[0]) == {"lighthouse", "ledger", "orchard"}
    assert_consistent(tmp_home)


def test_a_file_named_twice_is_planned_once_and_a_folder_without_pdfs_fails(tmp_path, catalog):
    a = make_pdf(tmp_path / "a" / "paper.pdf", [["One."]])
    todo, passed = plan(catalog, [a.parent, tmp_path / "a" / ".." / "a", a])
    assert [s.paper.id for s in todo] == ["paper"] and passed == []
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    make_pdf(tmp_path / "empty" / "sub" / "deep.pdf", [["Deep."]])
    (tmp_path / "empty" / "notes.txt").write_text("no paper")
    with pytest.raises(IngestError, match=r"no PDF files in .*empty \(its subfolders"):
        plan(catalog, [tmp_path / "empty"])


def test_duplicate_ids_in_sources(tmp_path, catalog):
    a = make_pdf(tmp_path / "a" / "paper.pdf", [["One."]])
    b = make_pdf(tmp_path / "b" / "Paper.pdf", [["Two."]])
    todo, passed = plan(catalog, [a, b])
    assert [s.paper.id for s in todo] == ["paper"]
    assert [(o.paper_id, o.status) for o in passed] == [("paper", "failed")]
    assert passed[0].reason == f"duplicate id: {b} has the id of {a}, which is kept"


def test_one_pdf_under_two_names_is_ingested_once(tmp_home, small_pdfs, catalog, embedder):
    import shutil

    folder = small_pdfs["lighthouse"].parent
    shutil.copy(small_pdfs["orchard"], folder / "zz copy of orchard.pdf")
    report = run(tmp_home, catalog, [folder], embedder=embedder)
    assert statuses(report)["zz-copy-of-orchard"] == "skipped"
    reasons = {o.paper_id: o.reason for o in report.outcomes}
    assert reasons["zz-copy-of-orchard"] == "the same PDF as orchard"
    assert set(counts(tmp_home)[0]) == {"lighthouse", "ledger", "orchard"}


def test_of_two_copies_the_catalog_id_is_kept_and_a_named_copy_is_planned(tmp_path, catalog):
    one = make_pdf(tmp_path / "a-copy.pdf", [["One paper, two names."]])
    (tmp_path / "raft.pdf").write_bytes(one.read_bytes())
    todo, passed = plan(catalog, [tmp_path])
    assert [s.paper.id for s in todo] == ["raft"] and todo[0].digest
    assert [(o.paper_id, o.reason) for o in passed] == [("a-copy", "the same PDF as raft")]
    todo, passed = plan(catalog, [tmp_path], ids=["a-copy"])  # asked for: planned, not skipped
    assert [s.paper.id for s in todo] == ["a-copy"] and passed == []


def test_other_model_is_refused(tmp_home, small_pdfs, catalog, embedder):
    run(tmp_home, catalog, [small_pdfs["orchard"]], embedder=embedder)
    with pytest.raises(IngestError, match="was built with .*all-MiniLM-L6-v2.*--rebuild"):
        run(
            tmp_home,
            catalog,
            [small_pdfs["orchard"]],
            embedder=embedder,
            settings={"model": "sentence-transformers/all-mpnet-base-v2"},
        )


# ---------------------------------------------------------------- one writer


def test_writer_lock_is_exclusive(tmp_home, small_pdfs, catalog, embedder):
    with writer_lock(tmp_home):
        busy = pytest.raises(LockedError, match=f"another ingest is writing to {tmp_home}")
        with busy, writer_lock(tmp_home):
            pass
        with pytest.raises(LockedError):
            run(tmp_home, catalog, [small_pdfs["orchard"]], embedder=embedder)
    with writer_lock(tmp_home):  # released
        pass
    assert run(tmp_home, catalog, [small_pdfs["orchard"]], embedder=embedder).ok


def test_writer_lock_names_the_holder(tmp_home):
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from ddsearch.index.lock import writer_lock
        with writer_lock(Path({str(tmp_home)!r})):
            print("held", flush=True)
            sys.stdin.read()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"pid {proc.pid}"), writer_lock(tmp_home):
            pass
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    with writer_lock(tmp_home):  # the holder exited: free again
        assert (tmp_home / "ingest.lock").read_text() == str(os.getpid())


# ---------------------------------------------------------------- the index


def test_a_recreated_index_never_takes_the_old_postings(tmp_home, small_pdfs, catalog, embedder):
    run(tmp_home, catalog, [small_pdfs["ledger"]], embedder=embedder)
    saved = (tmp_home / FILE).read_bytes()
    home = tmp_home.parent / "again"  # as if the index were deleted, postings.npz left behind
    home.mkdir()
    (home / FILE).write_bytes(saved)
    run(home, catalog, [small_pdfs["orchard"]], embedder=embedder)  # as many commits
    store = Store(home, readonly=True)
    postings = store.postings()
    rowids, _, _, _ = store.vectors()
    assert postings is not None and postings.generation == store.meta("generation")
    assert sorted(postings.rowids.tolist()) == sorted(rowids.tolist())
    assert (home / FILE).read_bytes() != saved
    store.close()


def test_old_schema_is_refused(tmp_path):
    Store(tmp_path / "h").close()
    db = sqlite3.connect(tmp_path / "h" / "index.db")
    db.execute("DROP TABLE migrations")  # as a home from before the migrations looks
    db.execute("UPDATE meta SET value='0' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(IndexError_, match="schema version 0.*--rebuild"):
        Store(tmp_path / "h", readonly=True)


def test_chroma_orphans_are_reconciled(tmp_home, small_pdfs, catalog, embedder):
    run(tmp_home, catalog, [small_pdfs["orchard"]], embedder=embedder)
    store = Store(tmp_home)
    store.chroma.collection(CHUNKS).upsert(
        ids=["ghost:00000:0@dead"],
        embeddings=[[0.0] * 383 + [1.0]],
        metadatas=[{"paper": "ghost", "token": "dead", "ordinal": 0, "written_ns": 0}],
        documents=["left by a crash"],
    )
    store.close()
    assert counts(tmp_home)[2] == counts(tmp_home)[1] + 1
    run(tmp_home, catalog, [small_pdfs["orchard"]], embedder=embedder)
    assert_consistent(tmp_home)


def _chunks(home: Path, pid: str):
    store = Store(home, readonly=True)
    try:
        return store.chunks_of(pid)
    finally:
        store.close()


def test_manifest_json_round_trips(indexed_home):
    db = sqlite3.connect(indexed_home / "index.db")
    rows = db.execute("SELECT id, paper FROM papers ORDER BY id").fetchall()
    db.close()
    assert [r[0] for r in rows] == sorted(SMALL_PAPERS)
    for pid, data in rows:
        assert json.loads(data)["title"] == SMALL_PAPERS[pid][0]
