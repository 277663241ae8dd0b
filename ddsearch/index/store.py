"""The index: Chroma is the store of record, SQLite the cache every query reads.

In both deployments, Chroma embedded in the data home (``HOME/chroma``) or a Chroma server
(``--chroma-url``), a paper is committed to Chroma first (ddsearch.index.chroma: rows under a
fresh token, then one manifest row), and the SQLite file derives from it: the manifest, each
chunk's text, metadata and vector (so queries need no Chroma client), the sentences and the
FTS5 lexical index. A paper becomes visible to queries when its SQLite transaction commits,
whole or not at all; a crash between the two writes leaves the old paper in the cache, and the
next writer (or ``doctor --fix``) brings the cache up to what Chroma committed.

:class:`Store` is the only code that speaks SQL to ``index.db`` (its schema changes are the
numbered migrations of ddsearch.index.migrations) and the only one that asks Chroma for rows.
Data of a paper lives in tables keyed by its id or its chunks' rowids, written and deleted in
the paper's one transaction (``_write_rows`` / ``_delete_rows``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddsearch.config import Settings, StoreSettings
from ddsearch.errors import BusyError, ReadOnlyHomeError
from ddsearch.index import migrations
from ddsearch.index.chroma import Chroma, ServerError
from ddsearch.index.records import (
    SENTENCE_DTYPE,
    CacheLostError,
    Commit,
    IndexError_,
    PaperRecord,
    PaperRows,
    paper_from_json,
    references_json,
)
from ddsearch.models import Chunk, CitingSentence, Reference, Sentence

if TYPE_CHECKING:
    import numpy as np

    from ddsearch.index.postings import Postings

__all__ = ["CacheLostError", "IndexError_", "PaperRecord", "PaperRows", "ServerError", "Store"]

TOKENIZE = migrations.TOKENIZE
INDEX_FILES = ("index.db", "index.db-wal", "index.db-shm", "postings.npz")
# Chroma, the store of record, holds every committed paper whole: a lost cache is read again
REBUILD_FROM_CHROMA = "run 'ddsearch doctor --fix' to make it again from the Chroma store"
_BIB = "bib "  # meta key prefix: + a .bib's resolved path -> its entries' {paper id: key}


def writable(home: Path) -> bool:
    """Whether this process may create files in the data home (or make it)."""
    home = Path(home)
    while not home.exists() and home != home.parent:
        home = home.parent
    return os.access(home, os.W_OK)


class Store:
    """Read and write access to one data home's index. ``readonly``: a reader (queries), which
    never opens Chroma in a local home; otherwise the caller holds the home's writer lock."""

    def __init__(self, home: Path, *, readonly: bool = False, chroma_url: str | None = None,
                 chroma_token: str | None = None,
                 settings: StoreSettings = StoreSettings()):  # fmt: skip
        self.home = Path(home)
        self.db_path = self.home / "index.db"
        self.readonly = readonly
        self.deleted = False  # rows deleted since the last compact()
        self.settings = settings
        self.chroma = (
            Chroma(chroma_url, chroma_token, settings=settings)
            if chroma_url
            else Chroma(path=self.home / "chroma", settings=settings)
        )
        if not readonly and not writable(self.home):
            raise ReadOnlyHomeError(f"the data home {self.home} is read-only",
                                    "choose another --home, or make it writable")  # fmt: skip
        if readonly and not self.db_path.exists() and not chroma_url:
            if (self.home / "chroma").is_dir():
                raise CacheLostError(f"the index cache {self.db_path} is missing",
                                     REBUILD_FROM_CHROMA)  # fmt: skip
            raise IndexError_(f"no index in {self.home}", "run 'ddsearch ingest' first")
        if writable(self.home):
            self.home.mkdir(parents=True, exist_ok=True)
        try:
            self.db = self._connect()
            pending = migrations.pending(self.db, self.home)
        except sqlite3.DatabaseError as e:  # not a database, or damaged beyond reading
            if hasattr(self, "db"):
                self.db.close()
            self._unreadable(e, chroma_url)
        except IndexError_:
            self.db.close()
            raise
        if pending:
            self._upgrade(pending, chroma_url)
        origin = self.meta("origin")
        if chroma_url:
            self._open_server(origin)
        elif origin and not origin.startswith("embedded "):
            raise IndexError_(
                f"the index in {self.home} is a cache of a Chroma server ({origin.split()[1]})",
                "pass --chroma-url, or use another --home",
            )
        elif not readonly:
            if origin != self.chroma.origin:
                self._commit_cache()  # a deleted chroma folder: the cache goes into a new one
            self.sync()

    @classmethod
    def open(cls, settings: Settings, *, readonly: bool = False) -> Store:
        """The store of ``settings.home`` (and ``settings.chroma_url``, when set)."""
        return cls(settings.home, readonly=readonly, chroma_url=settings.chroma_url,
                   chroma_token=settings.chroma_token, settings=settings.store)  # fmt: skip

    def _connect(self) -> sqlite3.Connection:
        if writable(self.home):
            db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.DatabaseError:
                db.close()
                raise
            return db
        # a read-only home (a read-only mount, a shared folder): no writer can change it, and
        # SQLite need not make its WAL companions, which it could not
        uri = f"{self.db_path.resolve().as_uri()}?mode=ro&immutable=1"
        return sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)

    def _unreadable(self, e: Exception, chroma_url: str | None) -> None:
        message = f"the index in {self.home} cannot be read ({e})"
        if chroma_url or (self.home / "chroma").is_dir():
            raise CacheLostError(message, REBUILD_FROM_CHROMA) from None
        raise IndexError_(message, "rebuild it with 'ddsearch ingest --rebuild'") from None

    def _upgrade(self, pending: list[migrations.Migration], chroma_url: str | None) -> None:
        """Run the pending migrations: a writer as it is, a reader under the writer lock."""
        if not writable(self.home):
            raise ReadOnlyHomeError(
                f"the index in {self.home} was made by an older ddsearch and needs a one-time "
                "upgrade, which a read-only home cannot take",
                f"open it once with write access: 'ddsearch --home {self.home} doctor --fix'",
            )
        if not self.readonly:
            migrations.run(self, pending, writer=True)
            return
        from ddsearch.index.lock import LockedError, writer_lock

        try:
            with writer_lock(self.home):
                todo = migrations.pending(self.db, self.home)  # another may have run them
                migrations.run(self, todo, writer=not chroma_url)
        except LockedError as e:
            raise BusyError(f"the index in {self.home} is being upgraded or written ({e.message})",
                            "run again when that finishes") from None  # fmt: skip

    def _open_server(self, origin: str | None) -> None:
        """Check that the home caches this server (a new server: start the cache anew), sync."""
        if (origin is None or origin.startswith("embedded ")) and self.records():
            raise IndexError_(f"{self.home} holds a local (embedded) index",
                              "use another --home with --chroma-url")  # fmt: skip
        if origin != self.chroma.origin:
            with self.transaction():
                for pid in list(self.records()):
                    self._delete_rows(pid)
                    self.db.execute("DELETE FROM papers WHERE id=?", (pid,))
                self.db.execute("DELETE FROM meta WHERE key IN ('remote_tokens', 'model')")
                self._set_meta("origin", self.chroma.origin)
                self._bump_generation()
        self.sync()

    def close(self) -> None:
        self.db.close()
        self.chroma.close()

    # -- files of the home --------------------------------------------------------------------
    @staticmethod
    def set_aside(home: Path) -> Path:
        """Move a damaged cache (index.db and its companions) aside, for the next writer to
        make again from Chroma; return where index.db went. Hold the writer lock."""
        home = Path(home)
        aside = home / f"index.db.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        for name in INDEX_FILES[:3]:
            if (home / name).exists():
                os.replace(home / name, aside.with_name(aside.name + name[len("index.db") :]))
        (home / "postings.npz").unlink(missing_ok=True)
        return aside

    @staticmethod
    def drop(home: Path) -> None:
        """Delete the index files of a data home (the PDF cache stays); hold the writer lock."""
        import shutil

        home = Path(home)
        for name in INDEX_FILES:
            (home / name).unlink(missing_ok=True)
        if "chromadb" in sys.modules:  # this process's handle on the folder goes with it
            from chromadb.api.client import SharedSystemClient

            SharedSystemClient.clear_system_cache()
        shutil.rmtree(home / "chroma", ignore_errors=True)

    @staticmethod
    def damaged(home: Path) -> bool:
        """Whether index.db exists and is not a sound SQLite database."""
        db = Path(home) / "index.db"
        if not db.exists():
            return False
        try:
            con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            try:
                return con.execute("PRAGMA quick_check").fetchone()[0] != "ok"
            finally:
                con.close()
        except sqlite3.DatabaseError:
            return True

    # -- metadata ---------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _bump_generation(self) -> None:
        """Mark a change of the searchable rows (inside the writer's transaction). A random
        token, not a counter: a recreated index.db must never match postings.npz or a
        reader's cache from an earlier one that happened to count to the same number."""
        self._set_meta("generation", uuid.uuid4().hex)

    @property
    def generation(self) -> str:
        return self.meta("generation") or "0"

    @property
    def model(self) -> str | None:
        return self.meta("model")

    @property
    def dimension(self) -> int:
        return int(self.meta("dimension") or 0)

    def _tokens(self) -> dict[str, str]:
        """Each cached paper's commit token in Chroma."""
        return json.loads(self.meta("remote_tokens") or "{}")

    def bib_entries(self, bib: str) -> dict[str, str]:
        """A .bib's entries at the last ingest from it: {paper id: key}."""
        return json.loads(self.meta(_BIB + bib) or "{}")

    def set_bib_entries(self, bib: str, entries: dict[str, str]) -> None:
        with self.transaction():
            self._set_meta(_BIB + bib, json.dumps(entries, sort_keys=True))

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

    def chunk_counts(self) -> dict[str, int]:
        """Chunks per paper id, as the cache holds them (papers without any left out)."""
        return dict(self.db.execute("SELECT paper_id, count(*) FROM chunks GROUP BY paper_id"))

    def paper_rows(self, paper_id: str) -> PaperRows:
        """Everything the cache holds of one paper, as the store of record takes it."""
        import numpy as np

        record = self.records()[paper_id]
        rows = self.db.execute(
            "SELECT c.rowid, v.vector FROM chunks c JOIN vectors v ON v.chunk = c.rowid "
            "WHERE c.paper_id=? ORDER BY c.ordinal", (paper_id,)
        ).fetchall()  # fmt: skip
        found = self.chunks(r[0] for r in rows)
        chunks = [found[r[0]] for r in rows]
        dim = self.dimension
        vectors = (np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows]) if rows
                   else np.zeros((0, dim), dtype=np.float32))  # fmt: skip
        blobs = self._sentence_blobs(r[0] for r in rows)
        sentence_vectors = [
            np.frombuffer(blobs.get(r[0], b""), dtype=SENTENCE_DTYPE).reshape(-1, dim) for r in rows
        ]
        return PaperRows(record, chunks, vectors, sentence_vectors, self.model or "",
                         self.references(paper_id))  # fmt: skip

    # -- references ---------------------------------------------------------------------
    def _has(self, table: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
        return self.db.execute(sql, (table,)).fetchone() is not None

    def references(self, paper_id: str) -> tuple[Reference, ...] | None:
        """The paper's reference list, each entry with its citing sentences; ``()`` when it has
        none that can be recognised, None when it was never read."""
        if not self._has("reference_lists"):
            return None  # a migration before the fourth reads the papers it rewrites
        found = self.db.execute("SELECT entries FROM reference_lists WHERE paper_id=?",
                                (paper_id,)).fetchone()  # fmt: skip
        if found is None:
            return None
        cited: dict[int, list[CitingSentence]] = {}
        for r in self.db.execute(
            "SELECT ordinal, chunk_id, start, end, text, pages, printed FROM citing_sentences "
            "WHERE paper_id=? ORDER BY ordinal, n", (paper_id,)
        ):  # fmt: skip
            cited.setdefault(r[0], []).append(_citing(r[1:]))
        return tuple(
            Reference(r[0], r[1], r[2], _pages(r[3]), r[4], tuple(cited.get(r[0], ())))
            for r in self.db.execute(
                "SELECT ordinal, label, text, pages, cited FROM reference_entries "
                "WHERE paper_id=? ORDER BY ordinal", (paper_id,)
            )
        )  # fmt: skip

    def citers(self, paper_id: str) -> list[tuple[str, Reference]]:
        """(citing paper id, its entry naming ``paper_id``, with the sentences citing it) for
        every cached paper whose reference list names it, by paper id."""
        entries = self.db.execute(
            "SELECT paper_id, ordinal, label, text, pages FROM reference_entries WHERE cited=? "
            "ORDER BY paper_id, ordinal", (paper_id,)
        ).fetchall()  # fmt: skip
        cited: dict[tuple[str, int], list[CitingSentence]] = {}
        for r in self.db.execute(
            "SELECT s.paper_id, s.ordinal, s.chunk_id, s.start, s.end, s.text, s.pages, "
            "s.printed FROM citing_sentences s JOIN reference_entries e "
            "ON e.paper_id = s.paper_id AND e.ordinal = s.ordinal WHERE e.cited=? "
            "ORDER BY s.paper_id, s.ordinal, s.n", (paper_id,)
        ):  # fmt: skip
            cited.setdefault((r[0], r[1]), []).append(_citing(r[2:]))
        return [(e[0], Reference(e[1], e[2], e[3], _pages(e[4]), paper_id,
                                 tuple(cited.get((e[0], e[1]), ()))))
                for e in entries]  # fmt: skip

    def reference_lists(self) -> dict[str, int]:
        """{paper id: entries in its reference list (0: none found)} of the papers whose list
        was read; a cached paper missing here was ingested before ddsearch read them."""
        return dict(self.db.execute("SELECT paper_id, entries FROM reference_lists"))

    def citation_edges(self) -> list[tuple[str, str]]:
        """(citing paper, cited paper) for every resolved entry of every cached list, once
        each; the cited paper may be a catalog paper that is not in the collection."""
        sql = ("SELECT DISTINCT paper_id, cited FROM reference_entries WHERE cited IS NOT NULL "
               "AND cited != paper_id ORDER BY paper_id, cited")  # fmt: skip
        return [(r[0], r[1]) for r in self.db.execute(sql)]

    def citing_counts(self) -> dict[tuple[str, str], int]:
        """{(citing paper, cited paper): its sentences citing it} of every resolved entry."""
        sql = ("SELECT e.paper_id, e.cited, count(s.n) FROM reference_entries e "
               "LEFT JOIN citing_sentences s ON s.paper_id = e.paper_id AND s.ordinal = e.ordinal "
               "WHERE e.cited IS NOT NULL GROUP BY e.paper_id, e.cited")  # fmt: skip
        return {(r[0], r[1]): r[2] for r in self.db.execute(sql)}

    # -- writing ----------------------------------------------------------------------------
    def replace_paper(self, record: PaperRecord, chunks: Sequence[Chunk], vectors, model: str,
                      sentence_vectors: Sequence | None = None,
                      references: Sequence[Reference] | None = None) -> None:  # fmt: skip
        """Make exactly these chunks (and their sentences, with one vector each in
        ``sentence_vectors``, per chunk) and this reference list (None: not read) the
        paper's: committed to Chroma, then to the cache, atomically for readers."""
        import numpy as np

        vectors = np.asarray(vectors, dtype=np.float32)
        dim = vectors.shape[1] if vectors.ndim == 2 else 0
        if sentence_vectors is None:
            sentence_vectors = [np.zeros((0, dim))] * len(chunks)
        rows = PaperRows(record, list(chunks), vectors,
                         [np.asarray(v, dtype=SENTENCE_DTYPE).reshape(-1, dim)
                          for v in sentence_vectors], model,
                         None if references is None else tuple(references)).checked()  # fmt: skip
        commit = self.chroma.write(rows)
        self._apply([], [(commit, rows)])

    def remove_paper(self, paper_id: str) -> None:
        self.chroma.remove(paper_id)
        self.sync()

    def _write_rows(self, rows: PaperRows) -> None:
        """Inside a transaction: replace the paper's rows with these."""
        record, db = rows.record, self.db
        paper = record.paper
        self._delete_rows(paper.id)
        db.execute(
            "INSERT OR REPLACE INTO papers VALUES (?, ?, ?, ?, ?, ?, ?)",
            (paper.id, json.dumps(record.as_json()["paper"]), record.sha256, record.settings,
             len(rows.chunks), record.source, record.ingested_at),
        )  # fmt: skip
        for c, v, sv in zip(rows.chunks, rows.vectors, rows.sentence_vectors):
            cur = db.execute(
                "INSERT INTO chunks (id, paper_id, ordinal, text, pages, printed, section) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (c.id, paper.id, c.ordinal, c.text, json.dumps(c.pages),
                 json.dumps(c.printed_pages), c.section),
            )  # fmt: skip
            db.execute("INSERT INTO vectors VALUES (?, ?)",
                       (cur.lastrowid, v.astype("<f4").tobytes()))  # fmt: skip
            db.execute(
                "INSERT INTO chunks_fts (rowid, title, section, text) VALUES (?, ?, ?, ?)",
                (cur.lastrowid, paper.title, c.section or "", c.text),
            )
            blob = sv.astype(SENTENCE_DTYPE)
            db.executemany(
                "INSERT INTO sentences VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(cur.lastrowid, i, s.start, s.end, json.dumps(s.pages), json.dumps(s.printed),
                  int(s.caption), blob[i].tobytes()) for i, s in enumerate(c.sentences)],
            )  # fmt: skip
        if rows.references is not None:
            self._write_references(paper.id, rows.references)

    def _write_references(self, paper_id: str, references: Sequence[Reference]) -> None:
        db = self.db
        db.execute("INSERT INTO reference_lists VALUES (?, ?)", (paper_id, len(references)))
        db.executemany(
            "INSERT INTO reference_entries VALUES (?, ?, ?, ?, ?, ?)",
            [(paper_id, r.ordinal, r.label, r.text, json.dumps(r.pages), r.id)
             for r in references],
        )  # fmt: skip
        db.executemany(
            "INSERT INTO citing_sentences VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(paper_id, r.ordinal, n, c.chunk_id, c.start, c.end, c.text, json.dumps(c.pages),
              json.dumps(c.printed)) for r in references for n, c in enumerate(r.cited)],
        )  # fmt: skip

    def _delete_rows(self, paper_id: str) -> None:
        """Inside a transaction: delete the paper's chunks and all that hangs off them. The
        lexical index is contentless: it is told each row's words, read before they go."""
        rows = self.db.execute("SELECT rowid FROM chunks WHERE paper_id=?", (paper_id,)).fetchall()
        self.deleted = self.deleted or bool(rows)
        self.db.execute(
            "INSERT INTO chunks_fts (chunks_fts, rowid, title, section, text) "
            "SELECT 'delete', c.rowid, json_extract(p.paper, '$.title'), coalesce(c.section, ''), "
            "c.text FROM chunks c JOIN papers p ON p.id = c.paper_id WHERE c.paper_id=?",
            (paper_id,),
        )
        self.db.executemany("DELETE FROM sentences WHERE chunk=?", rows)
        self.db.executemany("DELETE FROM vectors WHERE chunk=?", rows)
        self.db.execute("DELETE FROM chunks WHERE paper_id=?", (paper_id,))
        for table in ("reference_lists", "reference_entries", "citing_sentences"):
            self.db.execute(f"DELETE FROM {table} WHERE paper_id=?", (paper_id,))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction on the cache: committed, or rolled back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def compact(self) -> None:
        """Merge the full-text indexes, here and in the embedded Chroma database, once papers
        were replaced or removed: FTS5 keeps a deleted row's entries until a merge, so every
        re-ingest grew them. Same rows, same ranking; the freed pages are reused."""
        if not self.deleted:
            return
        with self.transaction():
            self.db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('optimize')")
        self.chroma.compact()
        self.deleted = False

    def reconcile(self) -> int:
        """Delete Chroma rows no commit owns (left by a crash); return how many."""
        return self.chroma.reconcile()

    def rebuild_fts(self) -> None:
        """Rewrite the lexical index from the chunks table, in one transaction. The table is
        made anew, so this also repairs an index whose own pages are damaged."""
        with self.transaction():
            self.db.execute("DROP TABLE IF EXISTS chunks_fts")
            self.db.execute(migrations.FTS_TABLE)
            self.db.execute(migrations.FILL_FTS)
            self._bump_generation()

    # -- the cache and the store of record --------------------------------------------------
    def sync(self, manifest: dict[str, Commit] | None = None) -> bool:
        """Bring this cache up to what Chroma committed; True if anything changed. An embedded
        database changes only through this home's writer, so a reader has nothing to do."""
        if self.chroma.embedded and self.readonly:
            return False
        manifest = self.chroma.manifest() if manifest is None else manifest
        local = self._tokens()
        changed = [p for p, c in manifest.items() if local.get(p) != c.token]
        removed = [p for p in local if p not in manifest]
        if not changed and not removed:
            return False
        self._apply(removed, self.chroma.read(manifest, changed))
        return True

    def settle(self) -> None:
        """Sync, and make sure the cache holds the papers in commit order, as a new client's
        does (equal scores go by row order). A writer's cache takes its own papers as it
        commits them, so it is out of order only if another writer committed meanwhile;
        then all of it is read again and replaced in one transaction."""
        manifest = self.chroma.manifest()
        self.sync(manifest)
        cached = self.paper_order()
        ordered = sorted(cached, key=lambda p: (manifest[p].committed_ns, p) if p in manifest
                         else (0, p))  # fmt: skip
        if cached != ordered:
            self._apply(cached, self.chroma.read(manifest, list(manifest)), replace=True)

    def paper_order(self) -> list[str]:
        """The cached papers in the order of their rows."""
        sql = "SELECT paper_id FROM chunks GROUP BY paper_id ORDER BY min(rowid)"
        return [r[0] for r in self.db.execute(sql)]

    def forget(self, paper_ids: Iterable[str]) -> None:
        """Have the next sync read these papers again from Chroma."""
        drop = set(paper_ids)
        with self.transaction():
            tokens = {p: t for p, t in self._tokens().items() if p not in drop}
            self._set_meta("remote_tokens", json.dumps(tokens, sort_keys=True))

    def _apply(self, removed: Sequence[str], fetched: Sequence[tuple[Commit, PaperRows]], *,
               replace: bool = False) -> None:  # fmt: skip
        """Remove and write papers in the cache, in one transaction; ``replace``: ``removed``
        are all the cached papers and ``fetched`` all of Chroma's."""
        with self.transaction():
            tokens = self._tokens()  # another process may have synced meanwhile: decide
            for pid in removed:  # again under the lock
                if pid in tokens or replace:
                    self._delete_rows(pid)
                    self.db.execute("DELETE FROM papers WHERE id=?", (pid,))
                    tokens.pop(pid, None)
            latest = None
            for commit, rows in fetched:
                if tokens.get(commit.paper_id) == commit.token:
                    continue
                self._write_rows(rows)
                tokens[commit.paper_id] = commit.token
                latest = commit
            if latest is not None:
                self._set_meta("model", latest.model)
                if latest.dimension:
                    self._set_meta("dimension", str(latest.dimension))
            self._set_meta("remote_tokens", json.dumps(tokens, sort_keys=True))
            self._bump_generation()

    def _commit_cache(self, convert=None) -> None:
        """Commit every cached paper to Chroma as it is (no embedding), in the cache's order,
        and make the cache the derivation of it; ``convert`` may rewrite each record on the
        way (a migration's)."""
        tokens = {}
        for pid in self.paper_order() + sorted(set(self.records()) - set(self.paper_order())):
            rows = self.paper_rows(pid)
            if convert is not None:
                rows = PaperRows(convert(rows.record), rows.chunks, rows.vectors,
                                 rows.sentence_vectors, rows.model, rows.references)  # fmt: skip
                with self.transaction():
                    self._set_record(rows.record)
            tokens[pid] = self.chroma.write(rows).token
        with self.transaction():
            self._set_meta("remote_tokens", json.dumps(tokens, sort_keys=True))
            self._set_meta("origin", self.chroma.origin)

    def _set_record(self, record: PaperRecord) -> None:
        """Inside a transaction: a cached paper's record, its rows as they are."""
        self.db.execute(
            "UPDATE papers SET paper=?, sha256=?, settings=?, source=?, ingested_at=? WHERE id=?",
            (json.dumps(record.as_json()["paper"]), record.sha256, record.settings,
             record.source, record.ingested_at, record.paper.id),
        )  # fmt: skip

    def differing(self) -> list[str]:
        """The papers whose content differs between the cache and Chroma's commits (or that
        one side lacks), by a hash of their chunk ids, texts, vectors and sentence vectors."""
        manifest = self.chroma.manifest()
        recorded = {rows.record.paper.id: digest(rows)
                    for _, rows in self.chroma.read(manifest, list(manifest))}  # fmt: skip
        recorded.update({p: "incomplete" for p in manifest if p not in recorded})
        cached = {pid: digest(self.paper_rows(pid)) for pid in self.records()}
        return sorted(p for p in set(cached) | set(recorded) if cached.get(p) != recorded.get(p))

    # -- checks (doctor) ----------------------------------------------------------------------
    def integrity(self) -> str:
        """SQLite's quick check: 'ok', or what it found."""
        return self.db.execute("PRAGMA quick_check").fetchone()[0]

    def fts_damage(self) -> str | None:
        """What FTS5's own integrity check says is wrong with its index pages, or None."""
        try:
            self.db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                return None  # a writer holds the database: checked next time
            return str(e)
        except sqlite3.DatabaseError as e:
            return str(e)
        return None

    def fts_mismatch(self) -> tuple[int, ...]:
        """(chunks without an FTS row, FTS rows without a chunk), or () when they agree."""
        missing = self.db.execute(
            "SELECT count(*) FROM chunks WHERE rowid NOT IN (SELECT rowid FROM chunks_fts)"
        ).fetchone()[0]
        extra = self.db.execute(
            "SELECT count(*) FROM chunks_fts WHERE rowid NOT IN (SELECT rowid FROM chunks)"
        ).fetchone()[0]
        return (missing, extra) if missing or extra else ()

    def misshapen_vectors(self) -> int:
        """How many chunk vectors are not of the index's dimension."""
        sql = "SELECT count(*) FROM vectors WHERE length(vector) != ?"
        return self.db.execute(sql, (self.dimension * 4,)).fetchone()[0] if self.dimension else 0

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
                Sentence(r[1], r[2], _pages(r[3]), _pages(r[4]), bool(r[5]))
            )
        return {
            r[0]: Chunk(
                r[1], r[2], r[3], r[4], _pages(r[5]), r[7], _pages(r[6]),
                tuple(sentences.get(r[0], ())),
            )
            for r in rows
        }  # fmt: skip

    def _sentence_blobs(self, rowids: Iterable[int]) -> dict[int, bytes]:
        rowids = list(rowids)
        parts: dict[int, list[bytes]] = {}
        for start in range(0, len(rowids), 900):
            some = rowids[start : start + 900]
            for chunk, blob in self.db.execute(
                "SELECT chunk, vector FROM sentences "
                f"WHERE chunk IN ({','.join('?' * len(some))}) ORDER BY chunk, ordinal", some
            ):  # fmt: skip
                parts.setdefault(chunk, []).append(blob)
        return {c: b"".join(p) for c, p in parts.items()}

    def sentence_vectors(self, chunk_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """Each chunk's sentence vectors (float32 rows, in sentence order) by chunk id."""
        import numpy as np

        chunk_ids = list(chunk_ids)
        if not chunk_ids:
            return {}
        dim = self.dimension
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

    def written(self, word: str) -> bool:
        """Whether some chunk's text holds ``word`` as spelled, as a word of its own (case
        aside): the lexical index holds stems, which do not say a word is written so."""
        word = word.lower()
        whole = re.compile(rf"(?<![^\W\d_]){re.escape(word)}(?![^\W\d_])")
        sql = "SELECT lower(text) FROM chunks WHERE instr(lower(text), ?) > 0"
        rows = self.db.execute(sql, (word,))
        return any(whole.search(text) for (text,) in rows)

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

    def vectors(self) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
        """(rowids, matrix, paper ids, chunk ids) of every committed chunk, read in one consistent
        snapshot; a reader that keeps them checks a row's chunk id before trusting its rowid."""
        import numpy as np

        rows = self.db.execute(
            "SELECT c.rowid, c.paper_id, v.vector, c.id FROM chunks c "
            "JOIN vectors v ON v.chunk = c.rowid ORDER BY c.rowid"
        ).fetchall()
        dim = self.dimension
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(
            len(rows), dim
        )
        return rowids, matrix, [r[1] for r in rows], [r[3] for r in rows]

    def lexical(self, match: str, limit: int, papers: Iterable[str] | None = None,
                weights: dict[str, float] | None = None) -> list[tuple[int, float]]:  # fmt: skip
        """FTS5 bm25 ranking for a MATCH expression: (rowid, score) best first, score > 0;
        ``papers`` keeps only their chunks (before the limit, as postings.top does);
        ``weights``: each column's bm25() weight (SearchSettings.column_weights)."""
        weights = weights or _default_weights()
        given = ", ".join(str(w) for w in weights.values())
        where, args = "chunks_fts MATCH ?", [match]
        if papers is not None:
            papers = sorted(set(papers))
            where += (
                " AND rowid IN (SELECT rowid FROM chunks WHERE paper_id IN "
                f"({', '.join('?' * len(papers))}))"
            )
            args += papers
        sql = (
            f"SELECT rowid, -bm25(chunks_fts, {given}) AS s "
            f"FROM chunks_fts WHERE {where} ORDER BY s DESC, rowid LIMIT ?"
        )
        try:
            return [(r[0], r[1]) for r in self.db.execute(sql, (*args, limit))]
        except sqlite3.DatabaseError as e:
            raise IndexError_(f"the lexical index in {self.home} is damaged ({e})",
                              "repair it with 'ddsearch doctor --fix'") from None  # fmt: skip

    def document_frequencies(self, tokens: Iterable[str]) -> tuple[dict[str, int], int]:
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

    def postings(self, *, build: bool = False, save: bool = True,
                 weights: dict[str, float] | None = None) -> Postings | None:  # fmt: skip
        """The lexical index's postings for the current generation and these column weights
        (ddsearch.index.postings): loaded from the data home, else built (and saved, unless not
        ``save``) when ``build``, else None."""
        from ddsearch.index.postings import Postings

        weights = weights or _default_weights()
        found = Postings.load(self.home, self.generation, weights)
        if found is None and build:
            try:
                found = Postings.build(*self.vocabulary(list(weights)), weights)
            except (sqlite3.Error, RuntimeError, MemoryError):
                return None  # a damaged search index (doctor says so) or too little memory
            # a writer may have committed during the build: never let these replace newer ones
            if save and found.generation == self.generation:
                with contextlib.suppress(OSError):  # a read-only home: keep them in memory
                    found.save(self.home)
        return found

    def vocabulary(self, columns: list[str]) -> tuple[str, int, list, np.ndarray]:
        """FTS5's vocabulary in one snapshot, for Postings.build."""
        import numpy as np

        db = self.db
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_instances "
                   "USING fts5vocab(main, chunks_fts, instance)")  # fmt: skip
        db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_columns "
                   "USING fts5vocab(main, chunks_fts, col)")  # fmt: skip
        which = " ".join(f"WHEN ? THEN {i}" for i in range(len(columns)))
        db.execute("BEGIN")
        try:
            generation = self.generation
            n_rows = db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
            per_col = db.execute(
                "SELECT term, doc FROM temp.chunks_fts_columns ORDER BY term, col"
            ).fetchall()
            cursor = db.execute(
                f"SELECT doc, CASE col {which} ELSE {len(columns)} END, count(*) "
                "FROM temp.chunks_fts_instances GROUP BY term, doc, col ORDER BY term, doc, col",
                columns,
            )
            parts = []
            while rows := cursor.fetchmany(200_000):
                parts.append(np.array(rows, dtype=np.int64))
        finally:
            db.execute("COMMIT")
        groups = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
        return generation, n_rows, per_col, groups

    def sizes(self) -> dict[str, int]:
        """Bytes on disk of the cache, the postings and the embedded Chroma database."""
        home = self.home
        out = {"cache": sum((home / n).stat().st_size for n in INDEX_FILES[:3]
                            if (home / n).exists())}  # fmt: skip
        out["postings"] = (
            (home / "postings.npz").stat().st_size if (home / "postings.npz").exists() else 0
        )
        chroma = home / "chroma"
        out["chroma"] = (
            sum(f.stat().st_size for f in chroma.rglob("*") if f.is_file())
            if chroma.is_dir()
            else 0
        )
        return out


def _default_weights() -> dict[str, float]:
    from ddsearch.config import SearchSettings

    return SearchSettings().column_weights


def digest(rows: PaperRows) -> str:
    """A hash of a paper's content: chunk ids, texts, vectors, sentence vectors, in order."""
    h = hashlib.sha256()
    parts: list[Any] = []
    for c, v, sv in zip(rows.chunks, rows.vectors, rows.sentence_vectors):
        parts += [c.id.encode(), c.text.encode(), v.astype("<f4").tobytes(),
                  sv.astype(SENTENCE_DTYPE).tobytes()]  # fmt: skip
    if rows.references is not None:  # a list never read leaves the hash as it always was
        parts.append(json.dumps(references_json(rows.references)).encode())
    for value in parts:
        h.update(len(value).to_bytes(8, "little"))
        h.update(value)
    return h.hexdigest()


@functools.lru_cache(maxsize=4096)
def _pages(text: str) -> tuple:
    """A stored list of page numbers or labels ("[3, 4]", '["213"]'), as a tuple. A query
    reads a few thousand of them, nearly all alike: each text is decoded once."""
    return tuple(json.loads(text))


def _citing(row: Sequence) -> CitingSentence:
    """A citing sentence from its stored columns: chunk_id, start, end, text, pages, printed."""
    return CitingSentence(row[0], row[1], row[2], row[3], _pages(row[4]), _pages(row[5]))
