"""The index: Chroma is the store of record, SQLite the cache every query reads.

In both deployments, Chroma embedded in the data home (``HOME/chroma``) or a Chroma server
(``--chroma-url``), a paper is committed to Chroma first (ddsearch.index.remote: rows under a
fresh token, then one manifest row), and the SQLite file derives from it: the manifest, each
chunk's text, metadata and vector (so queries need no Chroma client), the sentences and the
FTS5 lexical index. A paper becomes visible to queries when its SQLite transaction commits,
whole or not at all; a crash between the two writes leaves the old paper in the cache, and the
next writer (or ``doctor --fix``) brings the cache up to what Chroma committed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from ddsearch.index.records import (  # noqa: F401 - IndexError_, PaperRecord: also store's API
    SENTENCE_DTYPE,
    IndexError_,
    PaperRecord,
    paper_from_json,
    sentence_blob,
)
from ddsearch.models import Chunk, Sentence

SCHEMA_VERSION = 2  # 2: sentences with their own pages and vectors
LEGACY_COLLECTION = "chunks"  # the embedded collection of homes made before Chroma held it all
TOKENIZE = "porter unicode61"
COLUMN_WEIGHTS = {"title": 2.0, "section": 1.5, "text": 1.0}  # bm25() weight of each FTS column


_FTS_TABLE = f"""CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    title, section, text, tokenize='{TOKENIZE}')"""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS papers (
    id TEXT PRIMARY KEY, paper TEXT NOT NULL, sha256 TEXT NOT NULL, settings TEXT NOT NULL,
    chunks INTEGER NOT NULL, source TEXT NOT NULL, ingested_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, paper_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL, text TEXT NOT NULL, pages TEXT NOT NULL, printed TEXT NOT NULL,
    section TEXT, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_paper ON chunks (paper_id, ordinal);
CREATE TABLE IF NOT EXISTS sentences (
    chunk INTEGER NOT NULL, ordinal INTEGER NOT NULL, start INTEGER NOT NULL,
    end INTEGER NOT NULL, pages TEXT NOT NULL, printed TEXT NOT NULL, caption INTEGER NOT NULL,
    vector BLOB NOT NULL, PRIMARY KEY (chunk, ordinal)) WITHOUT ROWID;
{_FTS_TABLE};
"""


def _check_vectors(chunks: Sequence[Chunk], vectors, sentence_vectors) -> list:
    """One vector per chunk and one per sentence; the sentence vectors, as a list per chunk."""
    if len(chunks) != len(vectors):
        raise ValueError("one vector per chunk")
    sentence_vectors = [()] * len(chunks) if sentence_vectors is None else list(sentence_vectors)
    if len(sentence_vectors) != len(chunks) or any(
        len(v) != len(c.sentences) for c, v in zip(chunks, sentence_vectors)
    ):
        raise ValueError("one vector per sentence")
    return sentence_vectors


# Chroma, the store of record, holds every committed paper whole: a lost cache is read again
REBUILD_FROM_CHROMA = "run 'ddsearch doctor --fix' to make it again from the Chroma store"


class CacheLostError(IndexError_):
    """The SQLite cache is missing or unreadable beside a Chroma store that can refill it."""


class Store:
    """Read and write access to one data home's index."""

    def __init__(self, home: Path, *, readonly: bool = False, chroma_url: str | None = None):
        self.home = Path(home)
        self.db_path = self.home / "index.db"
        self.readonly = readonly
        self.deleted = False  # rows deleted since the last compact()
        if readonly and not self.db_path.exists() and not chroma_url:
            if (self.home / "chroma").is_dir():
                raise CacheLostError(
                    f"the index cache {self.db_path} is missing: {REBUILD_FROM_CHROMA}"
                )
            raise IndexError_(f"no index in {self.home}: run 'ddsearch ingest' first")
        self.home.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            version = self._schema_version()
        except sqlite3.DatabaseError as e:  # not a database, or damaged beyond reading
            self.db.close()
            message = f"the index in {self.home} cannot be read ({e}): "
            if chroma_url or (self.home / "chroma").is_dir():
                raise CacheLostError(message + REBUILD_FROM_CHROMA) from None
            raise IndexError_(message + "rebuild it with 'ddsearch ingest --rebuild'") from None
        if version is None and (not readonly or chroma_url):  # a server's cache is always made
            self.db.executescript(_SCHEMA)
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            self.bump_generation()
        elif version is None or version != SCHEMA_VERSION:
            raise IndexError_(
                f"the index in {self.home} has schema version {version}, this ddsearch reads "
                f"{SCHEMA_VERSION}: rebuild it with 'ddsearch ingest --rebuild'"
            )
        origin = self.meta("origin")
        if chroma_url:
            self._open_remote(chroma_url, origin)
        elif origin and not origin.startswith("embedded "):
            raise IndexError_(
                f"the index in {self.home} is a cache of a Chroma server ({origin.split()[1]}): "
                "pass --chroma-url, or use another --home"
            )
        else:
            self._open_embedded(origin)

    def _open_embedded(self, origin: str | None) -> None:
        """The Chroma database in the home. A reader never opens it (queries read the cache);
        a writer brings the cache up to what it committed, or, where the home has no such
        database yet (a home from before, or a deleted folder), writes the cache into it."""
        from ddsearch.index.remote import Remote

        self.remote = Remote(path=self.home / "chroma")
        if self.readonly:
            return
        if origin != self.remote.origin:
            self._adopt()
        self.sync()

    def _adopt(self) -> None:
        """Commit every cached paper to the embedded Chroma database, as it is (no embedding),
        and make the cache the derivation of it."""
        import numpy as np

        dim = int(self.meta("dimension") or 0)
        tokens = {}
        for pid, record in sorted(self.records().items()):
            rows = self.db.execute(
                "SELECT rowid, vector FROM chunks WHERE paper_id=? ORDER BY ordinal", (pid,)
            ).fetchall()
            found = self.chunks(r[0] for r in rows)
            chunks = [found[r[0]] for r in rows]
            vectors = (
                np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
                if rows
                else (np.zeros((0, dim), dtype=np.float32))
            )
            blobs = self.sentence_vectors(c.id for c in chunks)
            sentence = [blobs.get(c.id, np.zeros((0, dim), dtype=np.float32)) for c in chunks]
            _, committed, _, _ = self.remote.write_paper(
                record, chunks, vectors, self.model or "", sentence
            )
            tokens[pid] = committed["token"]
        with self.transaction():
            self.set_meta("remote_tokens", json.dumps(tokens, sort_keys=True))
            self.set_meta("origin", self.remote.origin)
        self._drop_legacy_collection()

    def _drop_legacy_collection(self) -> None:
        import chromadb
        from chromadb.config import Settings

        client = chromadb.PersistentClient(
            path=str(self.home / "chroma"), settings=Settings(anonymized_telemetry=False)
        )
        if LEGACY_COLLECTION in [getattr(c, "name", c) for c in client.list_collections()]:
            client.delete_collection(LEGACY_COLLECTION)

    def _open_remote(self, url: str, origin: str | None) -> None:
        """Check that the home caches this server (a new server: start the cache anew), sync."""
        from ddsearch.index.remote import Remote

        remote = Remote(url)
        if (origin is None or origin.startswith("embedded ")) and self.records():
            raise IndexError_(
                f"{self.home} holds a local (embedded) index; use another --home with --chroma-url"
            )
        if origin != remote.origin:
            with self.transaction():
                for pid in list(self.records()):
                    self._delete_rows(pid)
                self.db.execute("DELETE FROM papers")
                self.db.execute("DELETE FROM meta WHERE key IN ('remote_tokens', 'model')")
                self.set_meta("origin", remote.origin)
                self.bump_generation()
        self.remote = remote
        self.sync()

    def sync(self) -> bool:
        """Bring this cache up to what Chroma committed; True if anything changed. An embedded
        database changes only through this home's writer, so a reader has nothing to do."""
        if self.remote.embedded and self.readonly:
            return False
        return self.remote.sync(self)

    def _schema_version(self) -> int | None:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.OperationalError:
            return None
        try:
            return int(row[0]) if row else None
        except ValueError:
            return -1  # unreadable: incompatible

    def close(self) -> None:
        self.db.close()

    @staticmethod
    def set_aside(home: Path) -> Path:
        """Move a damaged cache (index.db and its companions) aside, for the next writer to
        make again from Chroma; return where index.db went. Hold the writer lock."""
        home = Path(home)
        aside = home / f"index.db.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        for name in ("index.db", "index.db-wal", "index.db-shm"):
            if (home / name).exists():
                os.replace(home / name, aside.with_name(aside.name + name[len("index.db") :]))
        (home / "postings.npz").unlink(missing_ok=True)
        return aside

    @staticmethod
    def drop(home: Path) -> None:
        """Delete the index files of a data home (the PDF cache stays); hold the writer lock."""
        import shutil

        home = Path(home)
        for name in ("index.db", "index.db-wal", "index.db-shm", "postings.npz"):
            (home / name).unlink(missing_ok=True)
        if "chromadb" in sys.modules:  # this process's handle on the folder goes with it
            from chromadb.api.client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
        shutil.rmtree(home / "chroma", ignore_errors=True)

    # -- metadata ---------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def bump_generation(self) -> None:
        """Mark a change of the searchable rows (inside the writer's transaction). A random
        token, not a counter: a recreated index.db must never match postings.npz or a
        reader's cache from an earlier one that happened to count to the same number."""
        self.set_meta("generation", uuid.uuid4().hex)

    @property
    def model(self) -> str | None:
        return self.meta("model")

    # -- papers -----------------------------------------------------------------------------
    def records(self) -> dict[str, PaperRecord]:
        rows = self.db.execute(
            "SELECT id, paper, sha256, settings, chunks, source, ingested_at FROM papers"
        ).fetchall()
        return {
            r[0]: PaperRecord(paper_from_json(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows
        }

    def record(self, paper_id: str) -> PaperRecord | None:
        return self.records().get(paper_id) if paper_id else None

    def count_chunks(self, paper_id: str | None = None) -> int:
        if paper_id is None:
            return self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        sql = "SELECT count(*) FROM chunks WHERE paper_id=?"
        return self.db.execute(sql, (paper_id,)).fetchone()[0]

    # -- writing ----------------------------------------------------------------------------
    def replace_paper(self, record: PaperRecord, chunks: Sequence[Chunk], vectors, model: str,
                      sentence_vectors: Sequence | None = None):  # fmt: skip
        """Make exactly these chunks (and their sentences, with one vector each in
        ``sentence_vectors``, per chunk) the paper's, atomically for readers."""
        sentence_vectors = _check_vectors(chunks, vectors, sentence_vectors)
        self.remote.replace_paper(self, record, chunks, vectors, model, sentence_vectors)

    def _write_rows(self, record: PaperRecord, chunks: Sequence[Chunk], vectors: Sequence[bytes],
                    sentence_vectors: Sequence[bytes],
                    ingested_at: float | None = None) -> None:  # fmt: skip
        """Inside a transaction: replace the paper's rows with these (vectors as float32 bytes,
        each chunk's sentence vectors as one SENTENCE_DTYPE blob)."""
        paper, db = record.paper, self.db
        self._delete_rows(paper.id)
        for c, v, sv in zip(chunks, vectors, sentence_vectors):
            cur = db.execute(
                "INSERT INTO chunks (id, paper_id, ordinal, text, pages, printed, section, "
                "vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (c.id, paper.id, c.ordinal, c.text, json.dumps(c.pages),
                 json.dumps(c.printed_pages), c.section, v),
            )  # fmt: skip
            db.execute(
                "INSERT INTO chunks_fts (rowid, title, section, text) VALUES (?, ?, ?, ?)",
                (cur.lastrowid, paper.title, c.section or "", c.text),
            )
            size = len(sv) // max(1, len(c.sentences))
            db.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(cur.lastrowid, i, s.start, s.end, json.dumps(s.pages), json.dumps(s.printed),
                  int(s.caption), sv[i * size : (i + 1) * size])
                 for i, s in enumerate(c.sentences)],
            )  # fmt: skip
        db.execute(
            "INSERT OR REPLACE INTO papers VALUES (?, ?, ?, ?, ?, ?, ?)",
            (paper.id, json.dumps(asdict(paper)), record.sha256, record.settings,
             len(chunks), record.source, ingested_at or record.ingested_at),
        )  # fmt: skip

    def _delete_rows(self, paper_id: str) -> None:
        rows = self.db.execute("SELECT rowid FROM chunks WHERE paper_id=?", (paper_id,)).fetchall()
        self.deleted = self.deleted or bool(rows)
        self.db.executemany("DELETE FROM chunks_fts WHERE rowid=?", rows)
        self.db.executemany("DELETE FROM sentences WHERE chunk=?", rows)
        self.db.execute("DELETE FROM chunks WHERE paper_id=?", (paper_id,))

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction on the cache: committed, or rolled back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def remove_paper(self, paper_id: str) -> None:
        self.remote.remove_paper(self, paper_id)

    def compact(self) -> None:
        """Merge the full-text indexes, here and in the embedded Chroma database, once papers
        were replaced or removed: FTS5 keeps a deleted row's entries until a merge, so every
        re-ingest grew them (Chroma's, 8 -> 34 MB over three re-ingests of the 45 papers).
        Same rows, same ranking; the freed pages are reused by the next writes."""
        if not self.deleted:
            return
        with self.transaction():
            self.db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('optimize')")
        self.remote.compact()
        self.deleted = False

    def reconcile(self) -> int:
        """Delete Chroma rows no commit owns (left by a crash); return how many."""
        return self.remote.reconcile()

    def rebuild_fts(self) -> None:
        """Rewrite the lexical index from the chunks table, in one transaction. The table is
        made anew, so this also repairs an index whose own pages are damaged."""
        with self.transaction():
            self.db.execute("DROP TABLE IF EXISTS chunks_fts")
            self.db.execute(_FTS_TABLE)
            self.db.execute(
                "INSERT INTO chunks_fts (rowid, title, section, text) "
                "SELECT c.rowid, json_extract(p.paper, '$.title'), coalesce(c.section, ''), c.text "
                "FROM chunks c JOIN papers p ON p.id = c.paper_id"
            )
            self.bump_generation()

    # -- reading ----------------------------------------------------------------------------
    def chunks(self, rowids: Iterable[int]) -> dict[int, Chunk]:
        rowids = list(rowids)
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        rows = self.db.execute(
            "SELECT rowid, id, paper_id, ordinal, text, pages, printed, section FROM chunks "
            f"WHERE rowid IN ({marks})",
            rowids,
        ).fetchall()
        sentences: dict[int, list[Sentence]] = {}
        for r in self.db.execute(
            "SELECT chunk, start, end, pages, printed, caption FROM sentences "
            f"WHERE chunk IN ({marks}) ORDER BY chunk, ordinal",
            rowids,
        ):
            sentences.setdefault(r[0], []).append(
                Sentence(r[1], r[2], tuple(json.loads(r[3])), tuple(json.loads(r[4])), bool(r[5]))
            )
        return {
            r[0]: Chunk(
                r[1], r[2], r[3], r[4], tuple(json.loads(r[5])), r[7], tuple(json.loads(r[6])),
                tuple(sentences.get(r[0], ())),
            )
            for r in rows
        }  # fmt: skip

    def sentence_vectors(self, chunk_ids: Iterable[str]) -> dict[str, object]:
        """Each chunk's sentence vectors (float32 rows, in sentence order) by chunk id."""
        import numpy as np

        chunk_ids = list(chunk_ids)
        if not chunk_ids:
            return {}
        dim = int(self.meta("dimension") or 0)
        parts: dict[str, list[bytes]] = {}
        for chunk, blob in self.db.execute(
            "SELECT c.id, s.vector FROM sentences s JOIN chunks c ON c.rowid = s.chunk "
            f"WHERE c.id IN ({','.join('?' * len(chunk_ids))}) ORDER BY c.id, s.ordinal",
            chunk_ids,
        ):
            parts.setdefault(chunk, []).append(blob)
        return {
            c: np.frombuffer(b"".join(p), dtype=SENTENCE_DTYPE).reshape(-1, dim).astype(np.float32)
            for c, p in parts.items()
        }

    def chunks_by_id(self, chunk_ids: Iterable[str]) -> list[Chunk]:
        ids = list(chunk_ids)
        if not ids:
            return []
        rows = self.db.execute(
            f"SELECT rowid FROM chunks WHERE id IN ({','.join('?' * len(ids))})", ids
        ).fetchall()
        return list(self.chunks(r[0] for r in rows).values())

    def chunks_of(self, paper_id: str) -> list[Chunk]:
        rows = self.db.execute(
            "SELECT rowid FROM chunks WHERE paper_id=? ORDER BY ordinal", (paper_id,)
        ).fetchall()
        found = self.chunks(r[0] for r in rows)
        return [found[r[0]] for r in rows]

    def vectors(self):
        """(rowids, matrix, paper ids, chunk ids) of every committed chunk, read in one consistent
        snapshot; a reader that keeps them checks a row's chunk id before trusting its rowid."""
        import numpy as np

        rows = self.db.execute(
            "SELECT rowid, paper_id, vector, id FROM chunks ORDER BY rowid"
        ).fetchall()
        dim = int(self.meta("dimension") or 0)
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(
            len(rows), dim
        )
        return rowids, matrix, [r[1] for r in rows], [r[3] for r in rows]

    def lexical(
        self, match: str, limit: int, papers: Iterable[str] | None = None
    ) -> list[tuple[int, float]]:
        """FTS5 bm25 ranking for a MATCH expression: (rowid, score) best first, score > 0;
        ``papers`` keeps only their chunks (before the limit, as postings.top does)."""
        weights = ", ".join(str(w) for w in COLUMN_WEIGHTS.values())
        where, args = "chunks_fts MATCH ?", [match]
        if papers is not None:
            papers = sorted(set(papers))
            where += (
                " AND rowid IN (SELECT rowid FROM chunks WHERE paper_id IN "
                f"({', '.join('?' * len(papers))}))"
            )
            args += papers
        sql = (
            f"SELECT rowid, -bm25(chunks_fts, {weights}) AS s "
            f"FROM chunks_fts WHERE {where} ORDER BY s DESC, rowid LIMIT ?"
        )
        try:
            return [(r[0], r[1]) for r in self.db.execute(sql, (*args, limit))]
        except sqlite3.DatabaseError as e:
            raise IndexError_(
                f"the lexical index in {self.home} is damaged ({e}): repair it with "
                "'ddsearch doctor --fix'"
            ) from None

    def document_frequencies(self, tokens) -> tuple[dict[str, int], int]:
        """({token: chunks holding it}, chunks) from FTS5's own vocabulary."""
        tokens = sorted(set(tokens))
        self.db.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_rows "
            "USING fts5vocab(main, chunks_fts, row)"
        )
        n = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        if not tokens:
            return {}, max(1, n)
        marks = ",".join("?" * len(tokens))
        sql = f"SELECT term, doc FROM temp.chunks_fts_rows WHERE term IN ({marks})"
        rows = self.db.execute(sql, tokens).fetchall()
        return dict(rows), max(1, n)

    def postings(self, *, build: bool = False, save: bool = True):
        """The lexical index's postings for the current generation (ddsearch.index.postings):
        loaded from the data home, else built (and saved, unless not ``save``) when ``build``,
        else None."""
        from ddsearch.index.postings import Postings

        generation = self.meta("generation") or "0"
        found = Postings.load(self.home, generation)
        if found is None and build:
            try:
                found = Postings.build(self.db, COLUMN_WEIGHTS)
            except (sqlite3.Error, RuntimeError, MemoryError):
                return None  # a damaged search index (doctor says so) or too little memory
            # a writer may have committed during the build: never let these replace newer ones
            if save and found.generation == (self.meta("generation") or "0"):
                with contextlib.suppress(OSError):  # a read-only home: keep them in memory
                    found.save(self.home)
        return found
