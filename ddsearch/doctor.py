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

import shlex
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ddsearch.catalog import Catalog
from ddsearch.config import Settings, fingerprint
from ddsearch.errors import UserError
from ddsearch.index.lock import LockedError, writer_lock
from ddsearch.index.migrations import SCHEMA_VERSION
from ddsearch.index.store import CacheLostError, IndexError_, ServerError, Store, writable
from ddsearch.models import Check, Encoder, FindingKind

_REFILL = "run 'ddsearch doctor --fix' (it reads every paper again from Chroma)"


@dataclass(frozen=True)
class Finding:
    check: Check
    message: str
    fix: str = ""  # what to do about it
    problem: bool = True  # False: a note, or a check that passed
    fixable: bool = False  # doctor --fix repairs it
    passed: bool = False  # a check that found everything in order

    @property
    def kind(self) -> FindingKind:
        """A problem, a check that passed (ok), or a note (worth knowing; nothing is wrong)."""
        if self.problem:
            return FindingKind.PROBLEM
        return FindingKind.OK if self.passed else FindingKind.NOTE


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


def _chroma_paper(row_id: str) -> str:
    """The paper of a Chroma row: 'PAPER:ORDINAL:HASH@TOKEN' or 'PAPER@TOKEN#N'."""
    return row_id.split("@")[0].split(":")[0]


def diagnose(settings: Settings, catalog: Catalog | None = None, *, fix: bool = False) -> Diagnosis:
    """Examine ``settings.home``; with ``fix``, repair the safe things first (needs the lock)."""
    home = settings.home
    if fix:
        try:
            with writer_lock(home):
                fixed = _repair(settings)
        except LockedError as e:
            result = _examine(settings, catalog, busy=True)
            result.findings.insert(0, Finding(Check.LOCK, f"not fixing: {e}", problem=False))
            return result
        result = _examine(settings, catalog, busy=False)
        result.fixed = fixed
        return result
    busy = False
    if (home / "ingest.lock").exists() and writable(home):  # a read-only home has no writer
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
        store = Store.open(settings)
    except IndexError_:
        return done
    if lost:
        store.postings(build=True, weights=settings.search.column_weights)  # as ingest does
        done.append(f"made the cache again from Chroma: {len(store.records())} paper(s)")
    try:
        orphans = store.reconcile()
        if orphans:
            done.append(f"deleted {orphans} Chroma row(s) no committed chunk owns")
        differ = store.differing()
        if differ:  # read those papers again from the store of record
            store.forget(differ)
            store.sync()
            done.append(f"read {_id_list(differ)} again from Chroma into the cache")
        # a paper read again was deleted with the words the cache held, which FTS5 (told the
        # words of a deleted row, having none of its own) trusts: make it anew from the chunks
        if differ or store.fts_damage() or store.fts_mismatch():
            store.rebuild_fts()
            done.append("rebuilt the lexical (FTS) index from the chunks")
    finally:
        store.close()
    return done


def _lost_cache(settings: Settings) -> bool:
    """Whether the SQLite cache is missing or damaged (not a database, or failing SQLite's
    check) while Chroma, the store of record, holds papers to make it again from."""
    if (settings.home / "index.db").exists():
        if not Store.damaged(settings.home):
            return False
    elif settings.chroma_url or not (settings.home / "chroma").is_dir():
        return False  # a server's cache is made afresh anyway; no Chroma: nothing to read
    return _chroma_papers(settings) > 0


def _chroma_papers(settings: Settings) -> int:
    """How many papers Chroma has committed (0 when it cannot be read)."""
    from ddsearch.index.chroma import Chroma

    chroma = (Chroma(settings.chroma_url, settings.chroma_token, settings=settings.store)
              if settings.chroma_url else Chroma(path=settings.home / "chroma"))  # fmt: skip
    try:
        return len(chroma.manifest())
    except IndexError_:
        return 0


def _examine(settings: Settings, catalog: Catalog | None, *, busy: bool) -> Diagnosis:
    out = Diagnosis()
    add = out.findings.append
    if busy:
        add(
            Finding(
                Check.LOCK,
                "an ingest is running: rows it is writing are not counted",
                problem=False,
            )
        )
    _check_cache(settings, catalog, busy, add)
    if not settings.chroma_url and not (settings.home / "index.db").exists():
        if (settings.home / "chroma").is_dir() and _chroma_papers(settings):
            add(
                Finding(
                    Check.DATABASE,
                    f"the cache {settings.home / 'index.db'} is missing beside the Chroma store",
                    _REFILL,
                    fixable=True,
                )
            )
            return out
        add(
            Finding(
                Check.DATABASE, f"no index in {settings.home} yet", "run 'ddsearch ingest'", False
            )
        )
        return out
    try:
        store = Store.open(settings, readonly=True)
    except UserError as e:
        add(_cannot_open(e))
        return out
    try:
        _check_index(store, settings, catalog, busy, add)
    finally:
        store.close()
    return out


def _cannot_open(e: UserError) -> Finding:
    """Why the index cannot be opened, with the step that fixes it (a rebuild only if needed)."""
    if isinstance(e, ServerError):
        return Finding(Check.CHROMA, str(e), "start the Chroma server, or check --chroma-url")
    if isinstance(e, CacheLostError):  # a damaged cache: Chroma has it all
        return Finding(Check.DATABASE, e.message, _REFILL, fixable=True)
    if "doctor --fix" in e.fix:  # an upgrade this reader could not run
        return Finding(Check.UPGRADE, e.message, e.fix, fixable=True)
    return Finding(Check.SCHEMA, e.message, e.fix)


def _check_cache(settings: Settings, catalog: Catalog | None, busy: bool, add) -> None:
    cache = settings.pdf_cache
    if not cache.is_dir():
        return
    parts = sorted(p.name for p in cache.glob("*.part"))
    if parts and not busy:
        add(
            Finding(
                Check.CACHE,
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
                    Check.CACHE,
                    f"{cached.name} does not match the catalog's sha256",
                    f"run 'ddsearch ingest --refresh {paper.id}'",
                )
            )


def _check_index(store: Store, settings: Settings, catalog, busy: bool, add) -> None:
    integrity = store.integrity()
    if integrity != "ok":
        add(
            Finding(
                Check.DATABASE,
                f"SQLite integrity check: {integrity}",
                _REFILL,
                fixable=True,
            )
        )
        return
    add(Finding(Check.SCHEMA, f"schema version {SCHEMA_VERSION}", problem=False, passed=True))
    records = store.records()
    model = store.model
    if records and not model:
        add(Finding(Check.MODEL, "the index records no model", "run 'ddsearch ingest --rebuild'"))
    elif model:
        _check_model(store, model, add)

    # chunk counts: manifest vs SQLite vs Chroma, per paper
    counts = store.chunk_counts()
    _check_server(store, busy, add)
    for pid, rec in sorted(records.items()):
        n = counts.get(pid, 0)
        if n != rec.chunks:
            add(
                Finding(
                    Check.CHUNKS,
                    f"{pid}: the manifest says {rec.chunks} chunks, SQLite holds {n}",
                    f"run 'ddsearch ingest {pid}' (a count mismatch makes it re-ingest)",
                )
            )
    unread = sorted(set(records) - set(store.reference_lists()))
    if unread:  # nothing wrong, but refs/cited-by/path answer without them
        add(
            Finding(
                Check.CHUNKS,
                f"{len(unread)} paper(s) ingested before ddsearch read reference lists: "
                f"{_id_list(unread)}",
                "run 'ddsearch ingest' to read them (nothing is embedded again)",
                problem=False,
            )
        )
    strays = set(counts) - set(records)
    if strays:
        add(
            Finding(
                Check.CHUNKS,
                f"chunks of papers not in the manifest: {_id_list(strays)}",
                "run 'ddsearch ingest --rebuild'",
            )
        )
    dim = store.dimension
    if counts and dim:
        bad = store.misshapen_vectors()
        if bad:
            add(
                Finding(
                    Check.CHUNKS,
                    f"{bad} vector(s) are not {dim}-dimensional",
                    "run 'ddsearch ingest --rebuild'",
                )
            )
    damage = None if busy else store.fts_damage()
    mismatch = () if damage else store.fts_mismatch()
    if damage:
        add(
            Finding(
                Check.FTS,
                f"the lexical index is damaged ({damage})",
                "run 'ddsearch doctor --fix' (rebuilds it)",
                fixable=True,
            )
        )
    if mismatch:
        add(
            Finding(
                Check.FTS,
                f"the lexical index is out of step: {mismatch[0]} chunk(s) without an entry, "
                f"{mismatch[1]} entr(ies) without a chunk",
                "run 'ddsearch doctor --fix' (rebuilds it)",
                fixable=True,
            )
        )
    _check_sources(records, settings, catalog, model, add)


def _check_server(store: Store, busy: bool, add) -> None:
    """The store of record against the cache: rows no commit owns, and each paper's content."""
    chroma = store.chroma
    where = chroma.where
    try:
        orphans = chroma.orphans()
        differ = store.differing()
    except Exception as e:  # a server down, a damaged Chroma folder
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        fix = "check the server" if not chroma.embedded else "run 'ddsearch ingest --rebuild'"
        add(Finding(Check.CHROMA, f"{where} {chroma.url}: {line}", fix))
        return
    if orphans and not busy:
        add(
            Finding(
                Check.CHROMA,
                f"{len(orphans)} row(s) in {where} no commit owns (left by an interrupted "
                f"ingest) in {_id_list({_chroma_paper(i) for _, i in orphans})}",
                "run 'ddsearch doctor --fix' or any 'ddsearch ingest'",
                fixable=True,
            )
        )
    if differ and not busy:
        add(
            Finding(
                Check.CHROMA,
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
                Check.CHROMA,
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
        add(Finding(Check.MODEL, str(e), "reinstall ddsearch, or rebuild with another --model"))
        return
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            add(
                Finding(
                    Check.MODEL,
                    f"model {model!r}: {path} holds no model",
                    "restore the model files",
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
                    Check.MODEL,
                    f"model {model!r} is not available offline",
                    "download it once (e.g. run a query online), or rebuild with another --model",
                )
            )
            return
    add(Finding(Check.MODEL, f"model {model!r} found", problem=False, passed=True))


def _check_sources(records, settings: Settings, catalog, model, add) -> None:
    from ddsearch.files import sha256_file

    cache = settings.pdf_cache.resolve()
    shaped = replace(settings, model=model) if model else settings
    for pid, rec in sorted(records.items()):
        src = rec.pdf(cache)
        ours = src.parent == cache
        if not src.is_file():
            if ours:
                add(
                    Finding(
                        Check.SOURCE,
                        f"{pid}: the cached PDF {src.name} is gone",
                        f"run 'ddsearch ingest {pid}' to download it again",
                    )
                )
            else:
                add(
                    Finding(
                        Check.SOURCE,
                        f"{pid}: indexed from {src}, which is gone (search still "
                        "works; re-ingesting needs the file)",
                        problem=False,
                    )
                )
        elif sha256_file(src) != rec.sha256:
            add(
                Finding(
                    Check.SOURCE,
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
            if all(fingerprint(paper, shaped, e) != rec.settings for e in Encoder):
                add(
                    Finding(
                        Check.CATALOG,
                        f"{pid}: its catalog entry or the chunk settings changed "
                        "since it was ingested",
                        f"run 'ddsearch ingest {pid}"
                        + ("" if ours or not src.is_file() else f" --from {shlex.quote(str(src))}")
                        + "'",
                    )
                )
