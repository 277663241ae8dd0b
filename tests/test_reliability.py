"""Bad PDFs and bad input: each gets a one-line reason, the run goes on, nothing else is hurt."""

from __future__ import annotations

import resource
import sys
import time
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddsearch.catalog import Catalog, load_catalog
from ddsearch.cli import main
from ddsearch.config import Settings
from ddsearch.index.chroma import CHUNKS
from ddsearch.index.store import Store
from ddsearch.ingest import extract as ex
from ddsearch.ingest.chunk import chunk_pages, heading
from ddsearch.ingest.clean import clean_pages
from ddsearch.ingest.extract import ExtractError, Limits, extract
from ddsearch.ingest.pipeline import IngestError, ingest, plan
from ddsearch.models import Page

sys.path.insert(0, str(Path(__file__).parent))
from _faultpdfs import encrypted_pdf, paper_pdf, shared_embedder  # noqa: E402
from pdfmaker import pdf_bytes  # noqa: E402


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# --- extraction: each broken PDF, one line -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file, not a PDF"),
        (b"<!DOCTYPE html><html>login</html>", "not a PDF file"),
        (paper_pdf(1)[: len(paper_pdf(1)) // 2], "truncated or damaged PDF"),
        (paper_pdf(1)[:-40], "truncated or damaged PDF"),
        (b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n", "not a readable PDF"),
        (pdf_bytes([b"0 0 m 100 100 l S", b""]), "no extractable text"),
        (encrypted_pdf("hunter2"), "encrypted: needs a password"),
    ],
    ids=["empty", "html", "half", "no-eof", "garbage", "no-text", "password"],
)
def test_broken_pdfs_fail_with_one_line(tmp_path, data, reason):
    with pytest.raises(ExtractError) as err:
        extract(_write(tmp_path, "x.pdf", data))
    assert str(err.value).startswith(reason)
    assert "\n" not in str(err.value)


def test_encrypted_with_the_empty_password_is_read(tmp_path):
    doc = extract(_write(tmp_path, "e.pdf", encrypted_pdf("")))
    assert len(doc.pages) == 2 and "Replicated State Machines" in doc.pages[0].text


def test_a_page_with_absurd_text_is_cut_and_the_others_kept(tmp_path):
    pdf = pdf_bytes([["An ordinary first page of text"], ["word " * 30] * 5000], compress=True)
    doc = extract(_write(tmp_path, "big.pdf", pdf))
    assert "ordinary first page" in doc.pages[0].text
    assert len(doc.pages[1].text) == Limits().max_page_chars


def test_a_page_over_its_time_budget_fails_the_paper_quickly(tmp_path):
    pdf = pdf_bytes([["fine first page"], ["x y z " * 40] * 20000], compress=True)
    path = _write(tmp_path, "slow.pdf", pdf)
    started = time.monotonic()
    with pytest.raises(ExtractError, match=r"^page 2: text extraction took over 0.2s$"):
        extract(path, Limits(page_seconds=0.2))
    assert time.monotonic() - started < 15
    # the worker that overran was replaced: the next PDF reads normally
    assert extract(_write(tmp_path, "ok.pdf", paper_pdf(2))).pages[0].text


def test_a_decompression_bomb_is_bounded_and_stays_out_of_this_process(tmp_path):
    z = zlib.compressobj(1)
    block = b" " * (1 << 20)
    bomb = z.compress(b"BT /F1 10 Tf 50 700 Td (boom) Tj ET ")
    bomb += b"".join(z.compress(block) for _ in range(768)) + z.flush()
    pdf = pdf_bytes([["the page before the bomb"], b"@BOMB@"])
    pdf = pdf.replace(
        b"<< /Length 6 >>\nstream\n@BOMB@",
        f"<< /Length {len(bomb)} /Filter /FlateDecode >>\nstream\n".encode() + bomb,
    )  # the xref offsets are now wrong: the parsers must repair them too
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    try:
        doc = extract(_write(tmp_path, "bomb.pdf", pdf), Limits(memory=384 << 20))
        assert "page before the bomb" in doc.pages[0].text
    except ExtractError as e:
        assert "\n" not in str(e)
    assert time.monotonic() - started < 30
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100  # 768 MiB were inflated in the worker, not here


def test_a_crashed_worker_is_replaced(tmp_path):
    path = _write(tmp_path, "p.pdf", paper_pdf(3))
    extract(path)
    ex._worker.proc.kill()
    ex._worker.proc.wait()
    assert extract(path).pages[0].text


def test_a_page_that_makes_pypdf_raise_loses_only_that_page(tmp_path, monkeypatch):
    import pypdf

    def no_pdfium(path, *caps):
        raise ExtractError("not a readable PDF (pdfium says no)")
        yield  # pragma: no cover

    original = pypdf.PageObject.extract_text

    def flaky(self, *a, **kw):
        if "Section 1" in original(self, *a, **kw):
            raise ValueError("broken content stream")
        return original(self, *a, **kw)

    monkeypatch.setitem(ex._ENGINES, "pdfium", no_pdfium)
    monkeypatch.setattr(pypdf.PageObject, "extract_text", flaky)
    doc = extract(_write(tmp_path, "p.pdf", paper_pdf(4)), Limits(isolate=False))
    assert doc.engine == "pypdf"
    assert [bool(p.text) for p in doc.pages] == [True, False, True]


# --- ingest: bad files in a folder --------------------------------------------------------


@pytest.fixture(scope="module")
def embedder():
    return shared_embedder()


def test_an_ingest_of_a_folder_with_bad_files_reports_each_and_keeps_the_good(tmp_path, embedder):
    src = tmp_path / "src"
    src.mkdir()
    _write(src, "good-one.pdf", paper_pdf(11, pages=2, lines=10))
    _write(src, "good-two.pdf", paper_pdf(12, pages=2, lines=10))
    _write(src, "locked.pdf", encrypted_pdf("hunter2"))
    _write(src, "open-lock.pdf", encrypted_pdf(""))
    _write(src, "cut.pdf", paper_pdf(13)[:3000])
    _write(src, "scan.pdf", pdf_bytes([b"0 0 m 9 9 l S"]))
    _write(src, "fake.pdf", b"<html>paywall</html>")
    _write(src, "notes.txt", b"not a paper")
    home = tmp_path / "home"
    report = ingest(Settings(home=home), Catalog(None), [src], embedder=embedder)
    got = {o.paper_id: (o.status, o.reason) for o in report.outcomes}
    assert got["good-one"][0] == got["good-two"][0] == got["open-lock"][0] == "ingested"
    assert got["locked"] == ("failed", "encrypted: needs a password")
    assert got["cut"] == ("failed", "truncated or damaged PDF (no %%EOF at the end)")
    assert got["scan"] == ("failed", "no extractable text (a scan without a text layer?)")
    assert got["fake"] == ("failed", "not a PDF file")
    assert got["notes.txt"] == ("skipped", "not a PDF file")
    assert not report.ok and not report.interrupted
    store = Store(home)
    try:
        assert set(store.records()) == {"good-one", "good-two", "open-lock"}
        assert store.count_chunks() == store.chroma.collection(CHUNKS).count() > 0
    finally:
        store.close()
    again = ingest(Settings(home=home), Catalog(None), [src], embedder=embedder)
    assert {o.paper_id: o.reason for o in again.outcomes if o.status == "failed"} == {
        k: v[1] for k, v in got.items() if v[0] == "failed"
    }
    assert {o.paper_id for o in again.of("skipped") if o.reason == "unchanged"} == {
        "good-one",
        "good-two",
        "open-lock",
    }


def test_duplicate_ids_and_missing_paths_in_the_plan(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _write(a, "same.pdf", paper_pdf(1))
    _write(b, "same.pdf", paper_pdf(2))
    todo, passed = plan(Catalog(None), [a, b])
    assert [s.paper.id for s in todo] == ["same"]
    assert passed[0].status == "failed" and passed[0].reason.startswith("duplicate id: ")
    with pytest.raises(IngestError, match="no such file or folder"):
        plan(Catalog(None), [tmp_path / "nope"])
    with pytest.raises(IngestError, match=r"unknown paper id\(s\): nope"):
        plan(load_catalog(), ids=["nope"])


# --- bad input at the command line --------------------------------------------------------


def _run(args, home: Path):
    result = CliRunner().invoke(main, ["--home", str(home), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def test_cli_bad_input_is_one_line_never_a_traceback(tmp_path):
    home = tmp_path / "home"
    dup = _write(tmp_path, "dup.toml", (_ENTRY.format("lamport78") * 2).encode())
    cases = [
        (["ingest", "--from", str(tmp_path / "missing")], 1, "no such file or folder"),
        (["ingest", "--catalog", str(dup)], 1, "duplicate id 'lamport78'"),
        (["ingest", "no-such-paper"], 1, "unknown paper id(s): no-such-paper"),
        (["query", ""], 2, "the query is empty: give words to search for"),
        (["query", "   "], 2, "the query is empty: give words to search for"),
        (["query", "consensus"], 1, "no index in"),
        (["papers", "--catalog", str(tmp_path / "none.toml")], 1, "catalog file not found"),
    ]
    for args, code, message in cases:
        result = _run(args, home)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


_ENTRY = """
[[paper]]
id = "{0}"
title = "Time, Clocks, and the Ordering of Events"
authors = ["Leslie Lamport"]
year = 1978
venue = "CACM"
kind = "article"
"""


@pytest.fixture(scope="module")
def small_index(tmp_path_factory, embedder) -> Path:
    src = tmp_path_factory.mktemp("src")
    _write(src, "tiny.pdf", paper_pdf(21, pages=1, lines=8))
    home = tmp_path_factory.mktemp("idx") / "home"
    assert ingest(Settings(home=home), Catalog(None), [src], embedder=embedder).ok
    return home


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["query", "quorum", "-k", "0"], 2, "k must be an integer from 1 to 100, not 0"),
        (["query", "quorum", "-k", "101"], 2, "k must be an integer from 1 to 100, not 101"),
        (["query", "quorum", "--paper", "nope"], 1, "not in the index: nope (closest: "),
    ],
)
def test_cli_bad_queries(small_index, args, code, message):
    result = _run(args, small_index)
    assert result.exit_code == code and message in result.output


def test_an_incompatible_or_damaged_index_says_how_to_rebuild(tmp_path, small_index, embedder):
    import shutil
    import sqlite3

    home = tmp_path / "home"
    shutil.copytree(small_index, home)
    con = sqlite3.connect(home / "index.db")
    con.execute("DROP TABLE migrations")  # a home from before the migrations, of version 99
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    src = tmp_path / "src"
    src.mkdir()
    _write(src, "tiny.pdf", paper_pdf(21, pages=1, lines=8))
    for args in (["query", "quorum"], ["papers"], ["ingest", "--from", str(src)]):
        result = _run(args, home)
        assert result.exit_code == 1, result.output
        assert "schema version 99" in result.output and "ddsearch ingest --rebuild" in result.output
    report = ingest(Settings(home=home), Catalog(None), [src], rebuild=True, embedder=embedder)
    assert report.ok and Store(home, readonly=True).records()

    # a damaged cache beside the Chroma store: nothing to rebuild, doctor --fix reads it again
    papers = Store(home, readonly=True).records()
    (home / "index.db").write_bytes(b"this is not a database" * 100)
    for name in ("index.db-wal", "index.db-shm"):
        (home / name).unlink(missing_ok=True)
    for args in (["papers"], ["query", "quorum"]):
        result = _run(args, home)
        assert result.exit_code == 1 and "cannot be read" in result.output
        assert "doctor --fix" in result.output and "Traceback" not in result.output
    fixed = _run(["doctor", "--fix"], home)
    assert fixed.exit_code == 0 and "made the cache again from Chroma: 1 paper(s)" in fixed.output
    assert list(home.glob("index.db.damaged-*")) and Store(home, readonly=True).records() == papers
    # and one that is gone: told, not taken for an empty index
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        (home / name).unlink(missing_ok=True)
    result = _run(["papers"], home)
    assert result.exit_code == 1 and "index.db is missing" in result.output
    assert "doctor --fix" in _run(["doctor"], home).output
    assert _run(["doctor", "--fix"], home).exit_code == 0
    assert Store(home, readonly=True).records() == papers
    assert _run(["query", "quorum"], home).exit_code == 0


# --- arbitrary text through cleaning and chunking -----------------------------------------

_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),  # includes control characters and NUL
        st.sampled_from(["\n", " ", "-", "\ufffe", "\u00ad", ".", "\ud800", "\udfff"]),
    ),
    max_size=400,
)


def _words(texts) -> list[int]:
    return [len(t.split()) for t in texts]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_TEXT, min_size=1, max_size=5))
def test_any_text_yields_storable_chunks_on_real_pages(texts):
    pages = [Page(number=i + 1, text=t) for i, t in enumerate(texts)]
    cleaned = clean_pages(pages, is_heading=heading)
    chunks = chunk_pages("p", cleaned, _words, budget=20, overlap=5)
    assert len({c.id for c in chunks}) == len(chunks)
    for c in chunks:
        c.text.encode("utf-8")  # no lone surrogates: SQLite and Chroma can store it
        assert "\x00" not in c.text
        assert c.pages and list(c.pages) == sorted(set(c.pages))
        assert set(c.pages) <= {p.number for p in pages}
        assert _words([c.text])[0] <= 20
