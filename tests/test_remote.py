"""--chroma-url: the index on a real `chroma run` server, shared by homes that cache it."""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np
import pytest
from _servers import chroma_server, cli, free_port, paper_pdfs

from ddsearch.config import SearchSettings, StoreSettings
from ddsearch.index.chroma import CHUNKS
from ddsearch.index.store import IndexError_, PaperRecord, ServerError, Store
from ddsearch.models import Chunk, Paper

QUESTIONS = "what does an acceptor promise when it answers a prepare request?"


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    with chroma_server(tmp_path_factory.mktemp("chroma") / "data") as url:
        yield url


# ------------------------------------------------------------------ the library, no model
def _paper(store: Store, pid: str, n: int, seed: int, title: str = "A paper") -> list[Chunk]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [
        Chunk(f"{pid}:{i}:{seed}", pid, i, f"{title} passage {i} seed {seed}", (i + 1,), None)
        for i in range(n)
    ]
    record = PaperRecord(Paper(pid, title), f"sha{seed}", "s", n, f"/{pid}.pdf", time.time())
    store.replace_paper(record, chunks, vectors, "test-model")
    return chunks


def test_two_stores_see_the_same_index(chroma, tmp_path):
    a = Store(tmp_path / "a", chroma_url=chroma)
    _paper(a, "lib-one", 5, 1)
    _paper(a, "lib-two", 3, 2)
    b = Store(tmp_path / "b", readonly=True, chroma_url=chroma)
    assert {"lib-one", "lib-two"} <= set(b.records())
    ra, rb = a.vectors(), b.vectors()
    assert ra[2] == rb[2] and np.array_equal(ra[1], rb[1])  # same order, bit-identical vectors
    assert b.chunks_of("lib-two") == a.chunks_of("lib-two")
    # a change made through a is seen by b on its next sync, and only then
    _paper(a, "lib-two", 4, 3)
    assert b.count_chunks("lib-two") == 3
    assert b.sync() is True and b.count_chunks("lib-two") == 4 and b.sync() is False
    a.remove_paper("lib-one")
    b.sync()
    assert "lib-one" not in b.records() and b.count_chunks("lib-one") == 0
    a.close(), b.close()


def test_a_writer_that_dies_before_its_commit_leaves_the_old_paper(chroma, tmp_path, monkeypatch):
    a = Store(tmp_path / "a", chroma_url=chroma)
    old = _paper(a, "lib-crash", 4, 10)
    real = type(a.chroma).call

    def dying(self, what, fn, *args, **kwargs):
        if what.startswith("commit"):
            raise ServerError(f"Chroma server {self.url}: cannot {what}: connection reset")
        return real(self, what, fn, *args, **kwargs)

    monkeypatch.setattr(type(a.chroma), "call", dying)
    with pytest.raises(ServerError):
        _paper(a, "lib-crash", 6, 11)  # its rows are on the server, its commit is not
    monkeypatch.undo()
    b = Store(tmp_path / "b", readonly=True, chroma_url=chroma)
    assert b.chunks_of("lib-crash") == old  # all of the old version, none of the new
    # the new rows are orphans: invisible, and deleted by an ingest once they are old
    stray = a.chroma.collection(CHUNKS).get(where={"paper": "lib-crash"}, include=[])["ids"]
    assert len(stray) == 10
    monkeypatch.setattr(a.chroma, "settings", StoreSettings(orphan_minutes=0))
    assert a.reconcile() >= 6
    assert (
        len(a.chroma.collection(CHUNKS).get(where={"paper": "lib-crash"}, include=[])["ids"]) == 4
    )
    a.close(), b.close()


def test_a_home_is_either_local_or_a_cache(chroma, tmp_path):
    local = Store(tmp_path / "local")
    _paper(local, "lib-local", 2, 20)
    local.close()
    with pytest.raises(IndexError_, match="local \\(embedded\\) index"):
        Store(tmp_path / "local", chroma_url=chroma)
    Store(tmp_path / "cache", chroma_url=chroma).close()
    with pytest.raises(IndexError_, match="cache of a Chroma server"):
        Store(tmp_path / "cache", readonly=True)


def test_doctor_on_a_healthy_server_index_passes(chroma, tmp_path):
    from click.testing import CliRunner

    from ddsearch.cli import main
    from ddsearch.index.embed import DEFAULT_MODEL

    writer = Store(tmp_path / "w", chroma_url=chroma)
    rng = np.random.default_rng(40)
    chunks = [Chunk(f"lib-doc:{i}:40", "lib-doc", i, f"doctor passage {i}", (1,)) for i in range(3)]
    record = PaperRecord(Paper("lib-doc", "Doc"), "sha40", "s", 3, "/lib-doc.pdf", time.time())
    writer.replace_paper(record, chunks, rng.standard_normal((3, 8)), DEFAULT_MODEL)
    writer.close()
    for name in ("w", "reader"):  # the writer's cache and a new one
        home = str(tmp_path / name)
        result = CliRunner().invoke(main, ["--home", home, "--chroma-url", chroma, "doctor"])
        assert result.exit_code == 0, result.output
        assert "--rebuild" not in result.output and "no problems found" in result.output
        assert "the cache and Chroma server agree by content hash" in result.output
    # an interrupted writer's rows on the server: found, and --fix deletes them (not --rebuild)
    writer = Store(tmp_path / "w", chroma_url=chroma)
    writer.chroma.collection(CHUNKS).upsert(
        ids=["lib-doc:9:41@deadbeef"],
        embeddings=[[0.0] * 8],
        metadatas=[{"paper": "lib-doc", "token": "deadbeef", "written_ns": 0}],
    )
    writer.close()
    home = str(tmp_path / "reader")
    result = CliRunner().invoke(main, ["--home", home, "--chroma-url", chroma, "doctor"])
    assert result.exit_code == 1 and "no commit owns" in result.output
    assert "--rebuild" not in result.output
    result = CliRunner().invoke(main, ["--home", home, "--chroma-url", chroma, "doctor", "--fix"])
    assert result.exit_code == 0 and "deleted 1 Chroma row(s)" in result.output, result.output
    assert writer.chroma.collection(CHUNKS).get(ids=["lib-doc:9:41@deadbeef"])["ids"] == []


def test_doctor_without_chroma_url_on_a_cache_says_to_pass_it(chroma, tmp_path):
    from click.testing import CliRunner

    from ddsearch.cli import main

    Store(tmp_path / "cache", chroma_url=chroma).close()
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "cache"), "doctor"])
    assert result.exit_code == 1
    assert "--rebuild" not in result.output and "pass --chroma-url" in result.output


def test_a_server_that_is_down_is_one_line(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerError, match=f"Chroma server {url}: cannot connect"):
        Store(tmp_path / "h", chroma_url=url)
    from _faultpdfs import paper_pdf

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "doc.pdf").write_bytes(paper_pdf(30, pages=1))
    for args in (["papers"], ["query", "paxos"], ["ingest", "--from", str(tmp_path / "src")]):
        proc = cli("--home", str(tmp_path / "h"), "--chroma-url", url, *args, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
        assert proc.stderr.startswith(f"Error: Chroma server {url}: cannot connect")


def test_a_server_that_goes_away_mid_run(tmp_path):
    """The server stops between two papers: the run ends with one line, and what it had
    committed is there, whole, when the server is back."""
    data = tmp_path / "data"
    port = free_port()
    with chroma_server(data, port) as url:
        a = Store(tmp_path / "a", chroma_url=url)
        first = _paper(a, "lib-first", 3, 30)
    with pytest.raises(ServerError, match="Chroma server"):
        _paper(a, "lib-second", 3, 31)
    with chroma_server(data, port) as url:
        b = Store(tmp_path / "b", readonly=True, chroma_url=url)
        assert set(b.records()) == {"lib-first"} and b.chunks_of("lib-first") == first
        a.close(), b.close()


def test_a_writer_ends_in_commit_order_when_another_wrote_meanwhile(tmp_path):
    from _crashdriver import StubEmbedder
    from _faultpdfs import paper_pdf

    from ddsearch.catalog import Catalog
    from ddsearch.config import Settings
    from ddsearch.index.postings import Postings
    from ddsearch.ingest.pipeline import ingest

    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        (src / f"mine-{i}.pdf").write_bytes(paper_pdf(50 + i, pages=2, lines=10))
    with chroma_server(tmp_path / "data") as url:
        other = Store(tmp_path / "other", chroma_url=url)

        class Interleaved(StubEmbedder):  # another writer commits before this one's first
            def encode(self, texts, batch_size: int = 32, on_batch=None):
                if "theirs" not in other.records():
                    record = PaperRecord(Paper("theirs", "Theirs"), "t", "s", 1, "/t.pdf", 0.0)
                    chunk = Chunk("theirs:0:0", "theirs", 0, "their words", (1,), None)
                    other.replace_paper(record, [chunk], super().encode(["x"]), "stub")
                return super().encode(texts, batch_size, on_batch)

        home = tmp_path / "mine"
        report = ingest(Settings(home=home, chroma_url=url), Catalog(None), [src],
                        embedder=Interleaved())  # fmt: skip
        assert report.ok
        mine = sqlite3.connect(home / "index.db")  # the cache as the ingest left it
        owners = [r[0] for r in mine.execute("SELECT paper_id FROM chunks ORDER BY rowid")]
        (generation,) = mine.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        mine.close()
        fresh = Store(tmp_path / "fresh", readonly=True, chroma_url=url)
        assert owners == fresh.vectors()[2]  # the same papers, in the same order
        assert owners[0] == "theirs" and len(set(owners)) == 3
        postings = Postings.load(home, generation, SearchSettings().column_weights)
        assert postings is not None and len(postings.rowids) == len(owners)
        fresh.close(), other.close()


# ------------------------------------------------------------------ the CLI, the real model
@pytest.mark.integration
def test_second_home_gets_identical_results_and_eval(tmp_path):
    with chroma_server(tmp_path / "data") as url:  # its own: the others index a test model
        _second_home(tmp_path, ["--chroma-url", url])


def _second_home(tmp_path, remote):
    pdfs = [f"--from={p}" for p in paper_pdfs()]
    first, second, local = tmp_path / "first", tmp_path / "second", tmp_path / "local"
    out = cli("--home", str(first), *remote, "ingest", *pdfs, "--no-progress").stdout
    assert out.startswith("2 ingested")
    cli("--home", str(local), "ingest", *pdfs, "--no-progress")

    def query(home, *extra):
        args = ("query", QUESTIONS, "-k", "5", "--json")
        return cli("--home", str(home), *extra, *args).stdout

    from_second = query(second, *remote)  # ranked by FTS5: this home has no postings yet
    assert not (second / "postings.npz").exists()
    assert from_second == query(first, *remote) == query(local)  # the others rank from postings
    assert json.loads(from_second)["results"][0]["paper"] == "paxos-simple"
    papers = cli("--home", str(second), *remote, "papers", "--json").stdout
    assert papers == cli("--home", str(first), *remote, "papers", "--json").stdout
    # incremental across homes: nothing to do for the second one either
    again = cli("--home", str(second), *remote, "ingest", *pdfs, "--no-progress").stdout
    assert again.startswith("0 ingested (0 chunks), 2 unchanged, 0 skipped")

    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "1", "question": QUESTIONS, "gold": [{"paper": "paxos-simple"}]})
        + "\n"
        + json.dumps(
            {"id": "2", "question": "What is a Chubby session and KeepAlive?",
             "gold": [{"paper": "chubby", "pages": [7, 8]}]}
        )
        + "\n"
    )  # fmt: skip
    ev = ("eval", str(questions), "--mode", "hybrid", "--mode", "dense", "--mode", "lexical")
    ev += ("--json",)
    assert cli("--home", str(second), *remote, *ev).stdout == cli("--home", str(local), *ev).stdout
    assert (second / "postings.npz").exists()  # eval built them; answers stay the same
    assert query(second, *remote) == from_second
