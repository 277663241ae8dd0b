"""Check a data home's index against itself, the catalog and the PDF cache; repair what is safe.

Problems make ``ok`` false (``ddsearch doctor`` exits 1); notes are worth knowing but need no
action. ``fix=True`` repairs only what can be rebuilt from what the index already holds: Chroma
rows no committed chunk owns (deleted), committed chunks missing from Chroma (re-written from
SQLite's copy of their vectors), a lexical index out of step with the chunks (rebuilt), and
stale ``.part`` downloads (deleted). Everything else names the command that fixes it.
With ``settings.chroma_url`` the home is a cache of a Chroma server: doctor syncs it, compares
it with the server's committed chunks, and ``fix`` deletes rows a dead writer left there.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ddsearch.catalog import Catalog
from ddsearch.config import Settings
from ddsearch.index.lock import LockedError, writer_lock
from ddsearch.index.store import (
    REBUILD_FROM_CHROMA,
    SCHEMA_VERSION,
    CacheLostError,
    IndexError_,
    Store,
)

_REFILL = "run 'ddsearch doctor --fix' (it reads every paper again from Chroma)"


@dataclass(frozen=True)
class Finding:
    check: str  # schema, database, model, chunks, fts, chroma, source, catalog, cache, lock
    message: str
    fix: str = ""  # what to do about it
    problem: bool = True  # False: a note, or a check that passed
    fixable: bool = False  # doctor --fix repairs it
    passed: bool = False  # a check that found everything in order

    @property
    def kind(self) -> str:
        """'problem', 'ok' (a check passed) or 'note' (worth knowing; nothing is wrong)."""
        return "problem" if self.problem else "ok" if self.passed else "note"


@dataclass
class Diagnosis:
    findings: list[Finding] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "findings": [{**asdict(f), "kind": f.kind} for f in self.findings],
            "fixed": self.fixed,
        }


def _id_list(ids, limit: int = 5) -> str:
    ids = sorted(ids)
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def _chroma_paper(chunk_id: str) -> str:
    return chunk_id.rsplit(":", 2)[0]


def diagnose(settings: Settings, catalog: Catalog | None = None, *, fix: bool = False) -> Diagnosis:
    """Examine ``settings.home``; with ``fix``, repair the safe things first (needs the lock)."""
    home = settings.home
    if fix:
        try:
            with writer_lock(home):
                fixed = _repair(settings)
        except LockedError as e:
            result = _examine(settings, catalog, busy=True)
            result.findings.insert(0, Finding("lock", f"not fixing: {e}", problem=False))
            return result
        result = _examine(settings, catalog, busy=False)
        result.fixed = fixed
        return result
    busy = False
    if (home / "ingest.lock").exists():
        try:
            with writer_lock(home):
                pass
        except LockedError:
            busy = True
    return _examine(settings, catalog, busy=busy)


def _repair(settings: Settings) -> list[str]:
    done: list[str] = []
    cache = settings.pdf_cache
    if cache.is_dir():
        for part in sorted(cache.glob("*.part")):
            part.unlink(missing_ok=True)
            done.append(f"removed stale download {part.name}")
    lost = _lost_cache(settings)
    if lost:  # Chroma holds every committed paper: read them all into a new cache
        aside = Store.set_aside(settings.home)
        if aside.exists():
            done.append(f"moved the damaged cache aside as {aside.name}")
    if not settings.chroma_url and not (settings.home / "index.db").exists() and not lost:
        return done
    try:
        store = Store(settings.home, chroma_url=settings.chroma_url)
    except IndexError_:
        return done
    if lost:
        store.postings(build=True)  # as an ingest leaves them
        done.append(f"made the cache again from Chroma: {len(store.records())} paper(s)")
    try:
        orphans = store.reconcile()
        if orphans:
            done.append(f"deleted {orphans} Chroma row(s) no committed chunk owns")
        differ = _differing(store)
        if differ:  # read those papers again from the store of record
            tokens = json.loads(store.meta("remote_tokens") or "{}")
            store.set_meta(
                "remote_tokens",
                json.dumps({p: t for p, t in tokens.items() if p not in differ}, sort_keys=True),
            )
            store.sync()
            done.append(f"read {_id_list(differ)} again from Chroma into the cache")
        if _fts_damage(store.db) or _fts_mismatch(store.db):
            store.rebuild_fts()
            done.append("rebuilt the lexical (FTS) index from the chunks")
    finally:
        store.close()
    return done


def _lost_cache(settings: Settings) -> bool:
    """Whether the SQLite cache is missing or damaged (not a database, or failing SQLite's
    check) while Chroma, the store of record, holds papers to make it again from."""
    db = settings.home / "index.db"
    if db.exists():
        try:
            con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            try:
                if con.execute("PRAGMA quick_check").fetchone()[0] == "ok":
                    return False
            finally:
                con.close()
        except sqlite3.DatabaseError:
            pass
    elif settings.chroma_url or not (settings.home / "chroma").is_dir():
        return False  # a server's cache is made afresh anyway; no Chroma: nothing to read
    return _chroma_papers(settings) > 0


def _chroma_papers(settings: Settings) -> int:
    """How many papers Chroma has committed (0 when it cannot be read)."""
    from ddsearch.index.remote import Remote

    remote = (
        Remote(settings.chroma_url)
        if settings.chroma_url
        else Remote(path=settings.home / "chroma")
    )
    try:
        return len(remote.manifest())
    except IndexError_:
        return 0


def _fts_damage(db: sqlite3.Connection) -> str | None:
    """What FTS5's own integrity check says is wrong with its index pages, or None."""
    try:
        db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
    except sqlite3.OperationalError as e:
        if "locked" in str(e) or "busy" in str(e):
            return None  # a writer holds the database: checked next time
        return str(e)
    except sqlite3.DatabaseError as e:
        return str(e)
    return None


def _fts_mismatch(db: sqlite3.Connection) -> tuple[int, ...]:
    """(chunks without an FTS row, FTS rows without a chunk), or () when they agree."""
    missing = db.execute(
        "SELECT count(*) FROM chunks WHERE rowid NOT IN (SELECT rowid FROM chunks_fts)"
    ).fetchone()[0]
    extra = db.execute(
        "SELECT count(*) FROM chunks_fts WHERE rowid NOT IN (SELECT rowid FROM chunks)"
    ).fetchone()[0]
    return (missing, extra) if missing or extra else ()


def _examine(settings: Settings, catalog: Catalog | None, *, busy: bool) -> Diagnosis:
    out = Diagnosis()
    add = out.findings.append
    if busy:
        add(
            Finding(
                "lock", "an ingest is running: rows it is writing are not counted", problem=False
            )
        )
    _check_cache(settings, catalog, busy, add)
    if not settings.chroma_url and not (settings.home / "index.db").exists():
        if (settings.home / "chroma").is_dir() and _chroma_papers(settings):
            add(
                Finding(
                    "database",
                    f"the cache {settings.home / 'index.db'} is missing beside the Chroma store",
                    _REFILL,
                    fixable=True,
                )
            )
            return out
        add(Finding("database", f"no index in {settings.home} yet", "run 'ddsearch ingest'", False))
        return out
    try:
        store = Store(settings.home, readonly=True, chroma_url=settings.chroma_url)
    except IndexError_ as e:
        add(_cannot_open(e))
        return out
    try:
        _check_index(store, settings, catalog, busy, add)
    finally:
        store.close()
    return out


def _cannot_open(e: IndexError_) -> Finding:
    """Why the index cannot be opened, with the step that fixes it (a rebuild only if needed)."""
    from ddsearch.index.remote import ServerError

    text = str(e)
    if isinstance(e, ServerError):
        return Finding("chroma", text, "start the Chroma server, or check --chroma-url")
    if isinstance(e, CacheLostError):  # a damaged cache: Chroma has it all
        return Finding(
            "database",
            text.removesuffix(f": {REBUILD_FROM_CHROMA}"),
            _REFILL,
            fixable=True,
        )
    for tail, fix in (
        (": rebuild", "run 'ddsearch ingest --rebuild'"),
        (
            ": pass --chroma-url",
            "pass --chroma-url (or set DDSEARCH_CHROMA_URL), or another --home",
        ),
        ("; use another --home", "use another --home with --chroma-url"),
    ):
        if tail in text:
            return Finding("schema", text.split(tail)[0], fix)
    return Finding("schema", text)


def _differing(store: Store) -> list[str]:
    """The papers whose content differs between the cache and Chroma's commits (or that one
    side lacks), by a hash of their chunk ids, texts, vectors and sentence vectors."""
    cached, recorded = _content(store)
    return sorted(p for p in set(cached) | set(recorded) if cached.get(p) != recorded.get(p))


def _content(store: Store) -> tuple[dict[str, str], dict[str, str]]:
    """A hash of each paper's content (chunk ids, texts, vectors, sentence vectors, in order)
    as the cache holds it, and as Chroma's committed rows hold it."""
    import base64
    import hashlib

    def digest(rows) -> str:
        h = hashlib.sha256()
        for part in rows:
            for value in part:
                h.update(len(value).to_bytes(8, "little"))
                h.update(value)
        return h.hexdigest()

    sentences: dict[int, list[bytes]] = {}
    for chunk, blob in store.db.execute(
        "SELECT chunk, vector FROM sentences ORDER BY chunk, ordinal"
    ):
        sentences.setdefault(chunk, []).append(blob)
    cached: dict[str, list] = {}
    for pid, cid, text, vector, rowid in store.db.execute(
        "SELECT paper_id, id, text, vector, rowid FROM chunks ORDER BY paper_id, ordinal"
    ):
        joined = b"".join(sentences.get(rowid, ()))
        cached.setdefault(pid, []).append((cid.encode(), text.encode(), vector, joined))
    for pid in store.records():
        cached.setdefault(pid, [])
    recorded: dict[str, list] = {}
    for pid, meta in store.remote.manifest().items():
        where = {"$and": [{"paper": pid}, {"token": meta["token"]}]}
        got = store.remote.chunks.get(where=where, include=["documents", "metadatas"])
        rows = sorted(zip(got["documents"], got["metadatas"]), key=lambda r: r[1]["ordinal"])
        recorded[pid] = [
            (
                json.loads(m["chunk"])["id"].encode(),
                text.encode(),
                base64.b64decode(m["vector"]),
                base64.b64decode(m["sentence_vectors"]),
            )
            for text, m in rows
        ]
    return (
        {p: digest(r) for p, r in cached.items()},
        {p: digest(r) for p, r in recorded.items()},
    )


def _check_cache(settings: Settings, catalog: Catalog | None, busy: bool, add) -> None:
    cache = settings.pdf_cache
    if not cache.is_dir():
        return
    parts = sorted(p.name for p in cache.glob("*.part"))
    if parts and not busy:
        add(
            Finding(
                "cache",
                f"{len(parts)} stale partial download(s) in {cache}: {_id_list(parts)}",
                "run 'ddsearch doctor --fix' to delete them",
                fixable=True,
            )
        )
    if catalog is None:
        return
    from ddsearch.files import sha256_file

    for paper in catalog:
        cached = cache / f"{paper.id}.pdf"
        if paper.sha256 and cached.is_file() and sha256_file(cached) != paper.sha256:
            add(
                Finding(
                    "cache",
                    f"{cached.name} does not match the catalog's sha256",
                    f"run 'ddsearch ingest --refresh {paper.id}'",
                )
            )


def _check_index(store: Store, settings: Settings, catalog, busy: bool, add) -> None:
    db = store.db
    integrity = db.execute("PRAGMA quick_check").fetchone()[0]
    if integrity != "ok":
        add(
            Finding(
                "database",
                f"SQLite integrity check: {integrity}",
                _REFILL,
                fixable=True,
            )
        )
        return
    add(Finding("schema", f"schema version {SCHEMA_VERSION}", problem=False, passed=True))
    records = store.records()
    model = store.model
    if records and not model:
        add(Finding("model", "the index records no model", "run 'ddsearch ingest --rebuild'"))
    elif model:
        _check_model(store, model, add)

    # chunk counts: manifest vs SQLite vs Chroma, per paper
    counts = dict(db.execute("SELECT paper_id, count(*) FROM chunks GROUP BY paper_id").fetchall())
    committed = {r[0] for r in db.execute("SELECT id FROM chunks")}
    _check_server(store, busy, add)
    for pid, rec in sorted(records.items()):
        n = counts.get(pid, 0)
        if n != rec.chunks:
            add(
                Finding(
                    "chunks",
                    f"{pid}: the manifest says {rec.chunks} chunks, SQLite holds {n}",
                    f"run 'ddsearch ingest {pid}' (a count mismatch makes it re-ingest)",
                )
            )
    strays = set(counts) - set(records)
    if strays:
        add(
            Finding(
                "chunks",
                f"chunks of papers not in the manifest: {_id_list(strays)}",
                "run 'ddsearch ingest --rebuild'",
            )
        )
    dim = int(store.meta("dimension") or 0)
    if committed and dim:
        bad = db.execute(
            "SELECT count(*) FROM chunks WHERE length(vector) != ?", (dim * 4,)
        ).fetchone()[0]
        if bad:
            add(
                Finding(
                    "chunks",
                    f"{bad} vector(s) are not {dim}-dimensional",
                    "run 'ddsearch ingest --rebuild'",
                )
            )
    damage = None if busy else _fts_damage(db)
    mismatch = () if damage else _fts_mismatch(db)
    if damage:
        add(
            Finding(
                "fts",
                f"the lexical index is damaged ({damage})",
                "run 'ddsearch doctor --fix' (rebuilds it)",
                fixable=True,
            )
        )
    if mismatch:
        add(
            Finding(
                "fts",
                f"the lexical index is out of step: {mismatch[0]} chunk(s) without an entry, "
                f"{mismatch[1]} entr(ies) without a chunk",
                "run 'ddsearch doctor --fix' (rebuilds it)",
                fixable=True,
            )
        )
    _check_sources(records, settings, catalog, model, add)


def _check_server(store: Store, busy: bool, add) -> None:
    """The store of record against the cache: rows no commit owns, and each paper's content."""
    where = "Chroma" if store.remote.embedded else "Chroma server"
    try:
        orphans = store.remote.orphans()
        differ = _differing(store)
    except Exception as e:  # a server down, a damaged Chroma folder
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        fix = "check the server" if not store.remote.embedded else "run 'ddsearch ingest --rebuild'"
        add(Finding("chroma", f"{where} {store.remote.url}: {line}", fix))
        return
    if orphans and not busy:
        add(
            Finding(
                "chroma",
                f"{len(orphans)} row(s) in {where} no commit owns (left by an interrupted "
                f"ingest) in {_id_list({_chroma_paper(i) for i in orphans})}",
                "run 'ddsearch doctor --fix' or any 'ddsearch ingest'",
                fixable=True,
            )
        )
    if differ and not busy:
        add(
            Finding(
                "chroma",
                f"the cache in {store.db_path} differs from what {where} committed, by content "
                f"hash, in {_id_list(differ)}",
                "run 'ddsearch doctor --fix' (reads those papers again from Chroma)",
                fixable=True,
            )
        )
    elif not differ:
        n = len(store.records())
        add(
            Finding(
                "chroma",
                f"{n} papers, the cache and {where} agree by content hash",
                problem=False,
                passed=True,
            )
        )


def _check_model(store: Store, model: str, add) -> None:
    from ddsearch.index.embed import Embedder, ModelError

    try:
        path = Path(Embedder(model, stamp_dir=store.home).path)
    except ModelError as e:
        add(Finding("model", str(e), "reinstall ddsearch, or rebuild with another --model"))
        return
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            add(
                Finding(
                    "model", f"model {model!r}: {path} holds no model", "restore the model files"
                )
            )
            return
    else:
        try:
            from huggingface_hub import snapshot_download

            snapshot_download(model, local_files_only=True)
        except Exception:
            add(
                Finding(
                    "model",
                    f"model {model!r} is not available offline",
                    "download it once (e.g. run a query online), or rebuild with another --model",
                )
            )
            return
    add(Finding("model", f"model {model!r} found", problem=False, passed=True))


def _check_sources(records, settings: Settings, catalog, model, add) -> None:
    from ddsearch.files import sha256_file
    from ddsearch.ingest.pipeline import fingerprint

    cache = settings.pdf_cache.resolve()
    shaped = replace(settings, model=model) if model else settings
    for pid, rec in sorted(records.items()):
        src = rec.pdf(cache)
        ours = src.parent == cache
        if not src.is_file():
            if ours:
                add(
                    Finding(
                        "source",
                        f"{pid}: the cached PDF {src.name} is gone",
                        f"run 'ddsearch ingest {pid}' to download it again",
                    )
                )
            else:
                add(
                    Finding(
                        "source",
                        f"{pid}: indexed from {src}, which is gone (search still "
                        "works; re-ingesting needs the file)",
                        problem=False,
                    )
                )
        elif sha256_file(src) != rec.sha256:
            add(
                Finding(
                    "source",
                    f"{pid}: {src} changed since it was ingested",
                    f"run 'ddsearch ingest {pid}'"
                    if ours
                    else f"run 'ddsearch ingest --from {shlex.quote(str(src))}'",
                )
            )
        listed = catalog.get(pid) if catalog is not None else None
        if listed is not None:
            paper = replace(listed, path=rec.paper.path)
            # either precision ingest may have been asked for; torch where there is no ONNX
            encoders = ("onnx-int8", "onnx", "torch")
            if all(fingerprint(paper, shaped, e) != rec.settings for e in encoders):
                add(
                    Finding(
                        "catalog",
                        f"{pid}: its catalog entry or the chunk settings changed "
                        "since it was ingested",
                        f"run 'ddsearch ingest {pid}"
                        + ("" if ours or not src.is_file() else f" --from {shlex.quote(str(src))}")
                        + "'",
                    )
                )
