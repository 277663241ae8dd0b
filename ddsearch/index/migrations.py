"""The index's schema changes and the adoptions of older homes, as numbered migrations (as
simonw/llm's ``embeddings_migrations.py`` keeps its own).

Each migration runs once per data home, in order; ``index.db``'s ``migrations`` table records
which ran. A home made before that table (schema version 2 in ``meta``) has run the first.
They run when a Store opens the home: a writer's as it is, a reader's under the writer lock,
and never on a read-only home (it is told to open the home once with write access). To change
what the index holds, add a migration at the end; to add data of a paper, add its table here
and its rows to ``Store._write_rows`` / ``Store._delete_rows``, in the paper's transaction.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ddsearch.index.records import SENTENCE_DTYPE, Commit, IndexError_, PaperRecord, PaperRows
from ddsearch.models import Chunk, Sentence

Store = Any  # ddsearch.index.store.Store, which imports this module (no import back)
TOKENIZE = "porter unicode61"
# contentless: the text is in ``chunks`` already; deleting a row tells FTS5 its words
FTS_TABLE = ("CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5("
             f"title, section, text, content='', tokenize='{TOKENIZE}')")  # fmt: skip
FILL_FTS = (
    "INSERT INTO chunks_fts (rowid, title, section, text) "
    "SELECT c.rowid, json_extract(p.paper, '$.title'), coalesce(c.section, ''), c.text "
    "FROM chunks c JOIN papers p ON p.id = c.paper_id ORDER BY c.rowid"
)
LEGACY = ("ddsearch_chunks", "ddsearch_papers", "chunks")  # Chroma collections of layout 1 and 0


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    run: Callable[[Store, bool], None]  # (the store, whether it may write the store of record)
    rewrites: bool = False  # restructures index.db: VACUUM after it


def m001_cache_tables(store: Store, writer: bool) -> None:
    """The cache as it was at schema version 2: manifest, chunks with their vectors, sentences
    with theirs, and the lexical index."""
    store.db.executescript("""
        CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS papers (
            id TEXT PRIMARY KEY, paper TEXT NOT NULL, sha256 TEXT NOT NULL,
            settings TEXT NOT NULL, chunks INTEGER NOT NULL, source TEXT NOT NULL,
            ingested_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS chunks (
            rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, paper_id TEXT NOT NULL,
            ordinal INTEGER NOT NULL, text TEXT NOT NULL, pages TEXT NOT NULL,
            printed TEXT NOT NULL, section TEXT, vector BLOB NOT NULL);
        CREATE INDEX IF NOT EXISTS chunks_paper ON chunks (paper_id, ordinal);
        CREATE TABLE IF NOT EXISTS sentences (
            chunk INTEGER NOT NULL, ordinal INTEGER NOT NULL, start INTEGER NOT NULL,
            end INTEGER NOT NULL, pages TEXT NOT NULL, printed TEXT NOT NULL,
            caption INTEGER NOT NULL, vector BLOB NOT NULL,
            PRIMARY KEY (chunk, ordinal)) WITHOUT ROWID;
        CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
            title, section, text, tokenize='porter unicode61');
    """)  # fmt: skip
    with store.transaction():
        store._bump_generation()


def m002_lean_cache(store: Store, writer: bool) -> None:
    """The vectors in a table of their own (a chunk row with its vector took a 4 KiB page to
    itself), and a contentless lexical index (its copy of the text was a second one). The same
    rowids and the same tokens, so the same ranking."""
    with store.transaction():  # one statement at a time: executescript would commit midway
        for sql in (
            "CREATE TABLE vectors (chunk INTEGER PRIMARY KEY, vector BLOB NOT NULL)",
            "INSERT INTO vectors SELECT rowid, vector FROM chunks",
            "ALTER TABLE chunks DROP COLUMN vector",
            "DROP TABLE chunks_fts",
            FTS_TABLE,
        ):
            store.db.execute(sql)
        store.db.execute(FILL_FTS)
        store._bump_generation()


def m003_chroma_layout_2(store: Store, writer: bool) -> None:
    """Chroma in layout 2 (ddsearch.index.chroma): exact vectors as embeddings, sentence
    vectors in embeddings of their own, nothing as base64 in metadata (which Chroma indexed
    again: 121 MB for the 45 papers, now 38). Every paper is committed again from the cache,
    after the cache took what the old collections last committed, so nothing is embedded again
    and nothing is lost; a home from before Chroma held anything (layout 0) is committed the
    same way. On the way each record takes today's fingerprint (the schema version left it;
    the section's characters joined it) and an absolute source path (older ingests recorded
    where ingest ran from)."""
    chroma = store.chroma
    names = set(chroma.collection_names())
    layout1 = {"ddsearch_chunks", "ddsearch_papers"} <= names
    if not chroma.embedded:
        from ddsearch.index.chroma import PAPERS

        upgraded = PAPERS in names and chroma.manifest()
        if upgraded or not layout1 or not _legacy_manifest(chroma):
            return  # nothing of layout 1 there: the cache syncs from layout 2 as it is
        if not writer:
            raise IndexError_(
                f"the Chroma server {chroma.url} holds an index made by an older ddsearch",
                f"upgrade it once: 'ddsearch --chroma-url {chroma.url} doctor --fix'",
            )
    if layout1:
        _legacy_sync(store)
    store._commit_cache(convert=_converter(store))
    old = [n for n in LEGACY if n in names]
    for name in old:
        chroma.delete_collection(name)
    if old:
        chroma.vacuum()


def m004_references(store: Store, writer: bool) -> None:
    """Each paper's reference list and the sentences citing each entry (ddsearch.ingest.
    references). A ``reference_lists`` row says the paper's list was read (``entries`` 0: it
    has none that can be recognised); a paper ingested before has none, and says so until
    the next ingest reads it. Chroma needs no change: a manifest row without references is a
    paper whose list was never read."""
    with store.transaction():
        for sql in (
            "CREATE TABLE reference_lists (paper_id TEXT PRIMARY KEY, entries INTEGER NOT NULL)",
            "CREATE TABLE reference_entries (paper_id TEXT NOT NULL, ordinal INTEGER NOT NULL, "
            "label TEXT NOT NULL, text TEXT NOT NULL, pages TEXT NOT NULL, cited TEXT, "
            "PRIMARY KEY (paper_id, ordinal)) WITHOUT ROWID",
            "CREATE INDEX reference_entries_cited ON reference_entries (cited) "
            "WHERE cited IS NOT NULL",
            "CREATE TABLE citing_sentences (paper_id TEXT NOT NULL, ordinal INTEGER NOT NULL, "
            "n INTEGER NOT NULL, chunk_id TEXT NOT NULL, start INTEGER NOT NULL, "
            "end INTEGER NOT NULL, text TEXT NOT NULL, pages TEXT NOT NULL, "
            "printed TEXT NOT NULL, PRIMARY KEY (paper_id, ordinal, n)) WITHOUT ROWID",
        ):
            store.db.execute(sql)


MIGRATIONS = [
    Migration(1, "cache tables", m001_cache_tables),
    Migration(2, "lean cache", m002_lean_cache, rewrites=True),
    Migration(3, "chroma layout 2", m003_chroma_layout_2),
    Migration(4, "references", m004_references),
]
SCHEMA_VERSION = MIGRATIONS[-1].number  # what meta's schema_version says (older ddsearch reads it)


def pending(db: sqlite3.Connection, home: Path) -> list[Migration]:
    """The migrations this index.db has not run, in order."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "migrations" in tables:
        done = {r[0] for r in db.execute("SELECT number FROM migrations")}
    elif "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if not row or row[0] != "2":
            raise IndexError_(
                f"the index in {home} has schema version {row[0] if row else None}, which this "
                "ddsearch cannot upgrade",
                "rebuild it with 'ddsearch ingest --rebuild'",
            )
        done = {1}  # schema version 2: the tables of the first migration
    else:
        done = set()
    unknown = done - {m.number for m in MIGRATIONS}
    if unknown:
        raise IndexError_(f"the index in {home} was made by a newer ddsearch "
                          f"(migration {max(unknown)})", "upgrade ddsearch")  # fmt: skip
    return [m for m in MIGRATIONS if m.number not in done]


def run(store: Store, todo: list[Migration], *, writer: bool) -> None:
    """Run these migrations in order, recording each as it completes."""
    rewrote = False
    for m in todo:
        m.run(store, writer)
        with store.transaction():
            store.db.execute("CREATE TABLE IF NOT EXISTS migrations (number INTEGER PRIMARY KEY,"
                             " name TEXT NOT NULL, applied_at REAL NOT NULL)")  # fmt: skip
            done = [x for x in MIGRATIONS if x.number <= m.number]
            store.db.executemany("INSERT OR IGNORE INTO migrations VALUES (?, ?, ?)",
                                 [(x.number, x.name, time.time()) for x in done])  # fmt: skip
            store._set_meta("schema_version", str(m.number))
        rewrote = rewrote or m.rewrites
    if rewrote:
        store.db.execute("VACUUM")  # the restructured tables' old pages back to the disk
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# -- reading layout 1 (m003) -------------------------------------------------------------------
def _legacy_manifest(chroma) -> dict[str, dict]:
    papers = chroma.call("open the old manifest", chroma.client.get_collection, "ddsearch_papers")
    got = chroma.call("read the old manifest", papers.get, include=["metadatas"])
    return dict(zip(got["ids"], got["metadatas"]))


def _legacy_sync(store: Store) -> None:
    """Bring the cache up to what layout 1's collections committed (vectors as base64)."""
    chroma = store.chroma
    manifest = _legacy_manifest(chroma)
    local = store._tokens()
    changed = sorted((p for p, m in manifest.items() if local.get(p) != m["token"]),
                     key=lambda p: (manifest[p]["committed_ns"], p))  # fmt: skip
    removed = [p for p in local if p not in manifest]
    if not changed and not removed:
        return
    papers = chroma.client.get_collection("ddsearch_papers")
    chunks = chroma.client.get_collection("ddsearch_chunks")
    fetched = []
    for pid in changed:
        m = manifest[pid]
        doc = chroma.call("read the old records", papers.get, ids=[pid], include=["documents"])
        rows = chroma.call(f"read the old chunks of {pid}", chunks.get,
                           where={"$and": [{"paper": pid}, {"token": m["token"]}]},
                           include=["documents", "metadatas"])  # fmt: skip
        if not doc["ids"] or len(rows["ids"]) != m["chunks"]:
            continue  # never whole: the cache keeps what it has
        record = PaperRecord.from_json(json.loads(doc["documents"][0]))
        commit = Commit(pid, m["token"], m["committed_ns"], m["chunks"], m["model"],
                        m["dimension"])  # fmt: skip
        fetched.append((commit, _legacy_rows(record, m, rows)))
    store._apply(removed, fetched)


def _legacy_rows(record: PaperRecord, meta: dict, rows: dict) -> PaperRows:
    import numpy as np

    dim, pid = meta["dimension"], record.paper.id
    items = []
    for text, m in zip(rows["documents"], rows["metadatas"]):
        extra = json.loads(m["chunk"])
        sentences = tuple(Sentence(a, b, tuple(pages), tuple(printed), bool(caption))
                          for a, b, pages, printed, caption in extra["sentences"])  # fmt: skip
        chunk = Chunk(extra["id"], pid, m["ordinal"], text, tuple(extra["pages"]),
                      extra["section"], tuple(extra["printed"]), sentences)  # fmt: skip
        vector = np.frombuffer(base64.b64decode(m["vector"]), dtype="<f4")
        blob = np.frombuffer(base64.b64decode(m["sentence_vectors"]), dtype=SENTENCE_DTYPE)
        items.append((chunk, vector, blob.reshape(len(sentences), dim)))
    items.sort(key=lambda item: item[0].ordinal)
    vectors = np.stack([v for _, v, _ in items]) if items else np.zeros((0, dim), np.float32)
    return PaperRows(record, [c for c, _, _ in items], vectors, [s for _, _, s in items],
                     meta["model"])  # fmt: skip


def _old_fingerprint(record: PaperRecord, model: str, encoder: str) -> str:
    """A paper's fingerprint as schema version 2 computed it, with its default chunk settings."""
    shape = {"pipeline": 6, "schema": 2, "model": model, "chunk_tokens": 200,
             "overlap_tokens": 40, "section_tokens": 24, "pages": record.paper.pages,
             "encoder": encoder, "title": record.paper.title}  # fmt: skip
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def _converter(store: Store) -> Callable[[PaperRecord], PaperRecord]:
    from ddsearch.config import Settings, fingerprint
    from ddsearch.models import Encoder

    model = store.model or ""
    settings = Settings(home=store.home, model=model) if model else None
    cache = store.home / "pdfs"

    def convert(record: PaperRecord) -> PaperRecord:
        shape = record.settings
        for encoder in Encoder:
            if settings is not None and shape == _old_fingerprint(record, model, encoder):
                shape = fingerprint(record.paper, settings, encoder)
        source = Path(record.source)
        if not source.is_absolute():  # found from what does not move: a --from file's path,
            source = (Path(record.paper.path).resolve() if record.paper.path  # else the cache
                      else cache.resolve() / source.name)  # fmt: skip
        return replace(record, settings=shape, source=str(source))

    return convert
