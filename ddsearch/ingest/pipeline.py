"""Ingest: catalog and local PDFs -> pages -> chunks -> vectors in the index, a paper at a time."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ddsearch.catalog import Catalog, slugify
from ddsearch.config import Limits, Settings, fingerprint
from ddsearch.errors import UserError
from ddsearch.files import sha256_file
from ddsearch.index.embed import Embedder, ModelError
from ddsearch.index.lock import writer_lock
from ddsearch.index.store import (
    CacheLostError,
    IndexError_,
    PaperRecord,
    ServerError,
    Store,
)
from ddsearch.ingest.chunk import chunk_pages, heading
from ddsearch.ingest.clean import clean_whole, page_range
from ddsearch.ingest.extract import ExtractError, check_file, extract
from ddsearch.ingest.references import read_references
from ddsearch.ingest.resolve import Resolver
from ddsearch.ingest.typeset import HEADING_MARK
from ddsearch.models import Chunk, Page, Paper, Reference, Status

__all__ = ["IngestError", "Outcome", "Report", "Source", "fingerprint", "ingest", "plan"]


class IngestError(UserError):
    """The run as a whole cannot start (bad ids, missing paths, wrong model)."""


@dataclass
class Outcome:
    paper_id: str
    status: Status
    reason: str = ""
    chunks: int = 0


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)  # seconds spent per stage, summed
    pages: int = 0  # pages read by papers that were (re)chunked

    def timed(self, stages: dict[str, float]) -> None:
        for name, secs in stages.items():
            self.stages[name] = self.stages.get(name, 0.0) + secs

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.of(Status.FAILED) and not self.interrupted


@dataclass(frozen=True)
class Source:
    """A paper to ingest, with its local PDF when it has one."""

    paper: Paper
    path: Path | None = None
    digest: str | None = None  # the PDF's sha256, when planning already read it


_YEAR = re.compile(r"\b(19[4-9]\d|20[0-4]\d)\b")
_NAME = re.compile(r"^(?:[^\W\d_][\w'’-]*\.?)(?:\s+[^\W\d_][\w'’-]*\.?){1,3}$")
_NOT_NAMES = re.compile(r"(?i)\b(?:university|universit|institut|college|laborator|lab|inc|corp|"
                        r"research|department|dept|school|abstract|introduction|journal|"
                        r"proceedings|conference|symposium|press|vol|http)\b|@")  # fmt: skip
_TITLE_LINES = 3  # a title wraps onto at most this many lines
_TITLE_WORDS = 24


def _names(line: str) -> tuple[str, ...]:
    """The personal names a byline holds ("A. Lee, B. Chen and C. Diaz"), or () if it is not
    a byline."""
    if _NOT_NAMES.search(line) or re.search(r"\d", line):
        return ()
    parts = [p.strip() for p in re.split(r",|;|\band\b|&|·", line) if p.strip()]
    if parts and all(_NAME.match(p) and p[0].isupper() for p in parts):
        return tuple(parts)
    return ()


def front_matter(pdf: Path, limits: Limits, stem: str = "") -> dict:
    """A local PDF's title, authors and year, for a paper the catalog does not have: the
    title from its metadata, else the first lines of its first page (a title may wrap); the
    authors from the bylines below the title; the year from the first page (else ``stem``,
    the file's name). Missing ones are left out."""
    try:
        doc = extract(pdf, limits)
    except ExtractError:
        return {}
    lines = [ln.strip().lstrip(HEADING_MARK).strip() for ln in doc.pages[0].text.splitlines()]
    lines = [ln for ln in lines if ln]
    start = next((i for i, ln in enumerate(lines) if len(ln) > 8 and len(ln.split()) >= 2), None)
    found: dict = {}
    if start is not None:
        end = start + 1
        while (end < len(lines) and end - start < _TITLE_LINES and not _names(lines[end])
               and not lines[end - 1].endswith((".", ":", "?", "!"))
               and not lines[end].endswith(".") and not _NOT_NAMES.search(lines[end])
               and len(" ".join(lines[start : end + 1]).split()) <= _TITLE_WORDS):  # fmt: skip
            end += 1
        found["title"] = doc.title or " ".join(lines[start:end])[:300]
        authors: list[str] = []
        for line in lines[end : end + 6]:
            names = _names(line)
            if names:
                authors += names
            elif authors:
                break
        if authors:
            found["authors"] = tuple(dict.fromkeys(authors))
    elif doc.title:
        found["title"] = doc.title
    year = _YEAR.search(doc.pages[0].text) or _YEAR.search(stem)
    if year:
        found["year"] = int(year.group(1))
    return found


def plan(
    catalog: Catalog,
    sources: Sequence[Path] = (),
    ids: Sequence[str] = (),
    bibs: Sequence[Path] = (),
    limits: Limits = Limits(),
) -> tuple[list[Source], list[Outcome]]:
    """The papers a run will ingest, and the files and entries it passes over (with why)."""
    todo, passed, _ = _plan(catalog, sources, ids, bibs, limits)
    return todo, passed


def _plan(catalog: Catalog, sources: Sequence[Path], ids: Sequence[str], bibs: Sequence[Path],
          limits: Limits):  # fmt: skip
    """plan(), and each .bib's entries as {paper id: key} (what --prune compares against)."""
    if not bibs:
        return (*_plan_files(catalog, sources, ids, limits), {})
    todo, passed = _plan_files(catalog, sources, (), limits) if sources else ([], [])
    more, skipped, listed = _plan_bibs(catalog, bibs, {s.paper.id for s in todo})
    todo, passed = todo + more, passed + skipped
    if ids:
        named = {s.paper.id: s for s in todo} | {s.paper.key: s for s in todo if s.paper.key}
        unknown = [i for i in ids if i not in named]
        if unknown:
            raise IngestError(f"not among the given PDFs and entries: {', '.join(unknown)}")
        todo = list({named[i].paper.id: named[i] for i in ids}.values())
    return todo, passed, listed


def _plan_bibs(catalog: Catalog, bibs: Sequence[Path], taken: set[str]):
    """Sources from .bib entries: a catalog paper (same DOI or PDF) keeps its id and takes the
    user's key; any other is the key's slug, with a hash of the key when the slug is taken."""
    from ddsearch.ingest.bib import BibError, disambiguated, normal_doi, read_bib

    by_doi = {normal_doi(p.doi): p for p in catalog if p.doi}
    by_sha = {p.sha256: p for p in catalog if p.sha256}
    passed: list[Outcome] = []
    entries: list = []
    first: dict[str, str] = {}
    listed: dict[str, dict[str, str]] = {}
    for bib in bibs:
        bib = Path(bib).expanduser()
        if not bib.is_file():
            raise IngestError(f"no such .bib file: {bib}")
        listed[str(bib.resolve())] = {}  # an emptied .bib still has its removed entries
        try:
            got, problems = read_bib(bib)
        except BibError as err:
            raise IngestError(str(err)) from None
        passed += [Outcome(label, Status.FAILED, reason) for label, reason in problems]
        for e in got:
            if e.key in first:
                passed.append(
                    Outcome(e.key, Status.FAILED, f"duplicate key: first in {first[e.key]}")
                )
                continue
            first[e.key] = f"{bib.name} line {e.line}"
            entries.append(e)
    slugs: dict[str, set[str]] = {}
    for e in entries:
        slugs.setdefault(e.paper.id, set()).add(e.key)
    todo: list[Source] = []
    holder: dict[str, str] = {}  # paper id or PDF digest -> the key that has it
    for e in entries:
        digest = sha256_file(e.pdf) if e.pdf else None
        match = by_doi.get(normal_doi(e.paper.doi)) or (by_sha.get(digest) if digest else None)
        if match:
            pid = match.id
        elif len(slugs[e.paper.id]) > 1 or e.paper.id in catalog or e.paper.id in taken:
            pid = disambiguated(e.key)
        else:
            pid = e.paper.id
        listed[str(e.bib.expanduser().resolve())][pid] = e.key
        if e.problem and (e.fatal or not match):
            passed.append(Outcome(e.key, Status.FAILED if e.fatal else Status.SKIPPED, e.problem))
            continue
        same = holder.get(pid) or (holder.get(digest) if digest else None)
        if same:
            passed.append(Outcome(e.key, Status.SKIPPED, f"the same paper as {same}"))
            continue
        holder[pid] = e.key
        if digest:
            holder[digest] = e.key
        if match:  # the catalog's metadata, the user's key; its own PDF, else the catalog's
            paper = replace(match, key=e.key, path=str(e.pdf) if e.pdf else None)
        else:
            paper = replace(e.paper, id=pid, path=str(e.pdf))
        todo.append(Source(paper, e.pdf, digest))
    return todo, passed, listed


def _plan_files(
    catalog: Catalog, sources: Sequence[Path], ids: Sequence[str], limits: Limits
) -> tuple[list[Source], list[Outcome]]:
    passed: list[Outcome] = []
    if not sources:
        unknown = [i for i in ids if i not in catalog]
        if unknown:
            raise IngestError(f"unknown paper id(s): {', '.join(unknown)} (see 'ddsearch papers')")
        chosen = [catalog.papers[i] for i in dict.fromkeys(ids)] if ids else list(catalog)
        return [Source(p) for p in chosen], passed

    files: dict[Path, Path] = {}  # by resolved path: "--from a --from ./a" names each once
    for src in sources:
        src = Path(src).expanduser()
        if src.is_dir():
            found = [f for f in sorted(src.iterdir()) if f.is_file()]
            if not any(f.suffix.lower() == ".pdf" for f in found):
                raise IngestError(f"no PDF files in {src} (its subfolders are not read)")
            for f in found:
                if f.suffix.lower() == ".pdf":
                    files.setdefault(f.resolve(), f)
                elif not f.name.startswith("."):
                    passed.append(Outcome(f.name, Status.SKIPPED, "not a PDF file"))
        elif src.is_file():
            files.setdefault(src.resolve(), src)
        else:
            raise IngestError(f"no such file or folder: {src}")
    named: dict[str, Path] = {}  # id -> its file, in the order given
    for f in files.values():
        pid = f.stem if f.stem in catalog else slugify(f.stem)
        if pid in named:
            passed.append(Outcome(pid, Status.FAILED, f"duplicate id: {f} has the id of "
                                  f"{named[pid]}, which is kept"))  # fmt: skip
        else:
            named[pid] = f
    if ids:
        unknown = [i for i in ids if i not in named]
        if unknown:
            raise IngestError(f"not among the given PDFs: {', '.join(unknown)}")
        # the folder's other files were not asked for: passing over them is no news
        passed = [o for o in passed if o.paper_id in ids]
        named = {i: named[i] for i in dict.fromkeys(ids)}
    digests: dict[str, str | None] = {}
    for pid, f in named.items():
        try:
            digests[pid] = sha256_file(f)
        except OSError:  # unreadable: the paper fails when it is read, with the reason
            digests[pid] = None
    holder: dict[str, str] = {}  # PDF digest -> the id that has it: a catalog id first
    for pid in sorted(named, key=lambda i: i not in catalog):
        holder.setdefault(digests[pid] or pid, pid)
    planned: list[Source] = []
    for pid, f in named.items():
        keeper = holder[digests[pid] or pid]
        if keeper != pid:  # one paper under two names would answer every question twice
            passed.append(Outcome(pid, Status.SKIPPED, f"the same PDF as {keeper}"))
            continue
        paper = catalog.get(pid)
        if paper is None:
            read = front_matter(f, limits, f.stem)
            paper = Paper(id=pid, title=read.pop("title", f.stem), kind="misc", **read)
        planned.append(Source(replace(paper, path=str(f.resolve())), f, digests[pid]))
    return planned, passed


def embedding_text(paper: Paper, chunk: Chunk, section_chars: int = 90) -> str:
    """What the model sees: the passage in its paper's and section's context."""
    head = paper.title
    if chunk.section:
        head += f" — {chunk.section[:section_chars]}"
    return f"{head}\n{chunk.text}"


def read_paper(
    paper: Paper,
    pdf: Path,
    embedder: Embedder,
    settings: Settings,
    stages: dict | None = None,
    resolver: Resolver | None = None,
) -> tuple[list[Chunk], list[Reference] | None]:
    """Extract, clean and chunk one PDF so that every chunk fits the model with its context;
    with a ``resolver``, also read its reference list (None: it has none that can be found)."""
    started = time.perf_counter()
    doc = extract(pdf, settings.limits)
    if stages is not None:
        stages["extract"] = time.perf_counter() - started
        stages["pages"] = len(doc.pages)
        started = time.perf_counter()
    pages, whole = clean_whole(doc.pages, heading, page_range(paper.pages))
    context = embedder.count_tokens([paper.title + " — "])[0] + settings.section_tokens + 1
    room = embedder.max_seq_length - 2 - context
    budget = min(settings.chunk_tokens, room)
    if budget < 32:
        raise ExtractError(
            f"the title is too long for the model's {embedder.max_seq_length} tokens"
        )
    chunks = chunk_pages(paper.id, pages, embedder.count_tokens, budget, settings.overlap_tokens)
    if stages is not None:
        stages["chunk"] = time.perf_counter() - started
        started = time.perf_counter()
    if not chunks:
        raise ExtractError("no extractable text (a scan without a text layer?)")
    references = None
    if resolver is not None:
        references = read_references(paper.id, whole, chunks, resolver)
        if stages is not None:
            stages["references"] = time.perf_counter() - started
    return chunks, references


def _fit(paper: Paper, chunks: list[Chunk], embedder: Embedder, settings: Settings) -> list[str]:
    """The texts to embed, checked against the model's limit: nothing may be truncated."""
    texts = [embedding_text(paper, c, settings.section_chars) for c in chunks]
    limit = embedder.max_seq_length - 2
    for n in embedder.count_tokens(texts):
        if n > limit:  # pragma: no cover - chunking guarantees this; a bug if reached
            raise RuntimeError(f"chunk of {n} word pieces exceeds the model's {limit}")
    return texts


def _obtain(source: Source, settings: Settings, refresh: bool) -> Path:
    """The paper's PDF, as an absolute path: the index records it, read from any folder."""
    if source.path is not None:
        return source.path.resolve()
    from ddsearch.ingest.fetch import fetch_paper

    settings.pdf_cache.mkdir(parents=True, exist_ok=True)
    return fetch_paper(
        source.paper, settings.pdf_cache, refresh=refresh, policy=settings.fetch
    ).resolve()


def ingest(
    settings: Settings,
    catalog: Catalog,
    sources: Sequence[Path] = (),
    ids: Sequence[str] = (),
    *,
    refresh: bool = False,
    rebuild: bool = False,
    progress: bool = False,
    embedder: Embedder | None = None,
    log: Callable[[str], None] | None = None,
    bibs: Sequence[Path] = (),
    prune: bool = False,
) -> Report:
    """Bring the index up to date with the chosen papers. One paper failing stops no other.

    ``progress`` shows bars (for a terminal); otherwise ``log``, when given, gets one line per
    paper (for a log file or CI). Either way a model's one-time preparation is announced.
    ``bibs``: BibTeX exports whose entries are ingested with their PDFs and keys; an entry
    gone from one since the last run is reported, and with ``prune`` removed from the index.
    """
    started = time.monotonic()
    todo, passed, listed = _plan(catalog, sources, ids, bibs, settings.limits)
    todo, damaged = _checked(todo)
    report = Report(outcomes=list(passed) + damaged)
    embedder = embedder or Embedder(settings.model, stamp_dir=settings.home, int8=settings.int8,
                                    tidy=True)  # fmt: skip
    say = _announcer(progress, log)
    with writer_lock(settings.home):
        if rebuild:  # a model that cannot load fails here, before anything is dropped
            _ready(embedder, say)
        try:
            store = Store.open(settings)
        except IndexError_ as e:
            if not rebuild or ids:  # with ids, the other papers are to be kept
                raise
            if isinstance(e, CacheLostError):
                Store.set_aside(settings.home)  # Chroma is dropped below, paper by paper
            else:
                Store.drop(settings.home)  # an old schema: start afresh
            store = Store.open(settings)
        try:
            if rebuild:
                _drop(store, settings, [s.paper.id for s in todo] if ids else None,
                      {s.paper.id for s in todo}, report)  # fmt: skip
            built_with = store.model
            if built_with and built_with != settings.model and store.records():
                raise IngestError(
                    f"the index in {settings.home} was built with {built_with!r}; to use "
                    f"{settings.model!r} re-ingest with --rebuild, or choose another --home"
                )
            store.reconcile()
            # references resolve to the catalog's papers and to this run's (the user's .bib)
            resolver = Resolver([*catalog, *(s.paper for s in todo)])
            _run(todo, store, embedder, settings, refresh, report, progress, say, log, resolver)
            if not report.interrupted:
                _settle_bibs(listed, store, catalog, settings, prune, report)
                # what other writers committed meanwhile, in commit order, so this cache
                # and its postings rank as every other client's do
                with contextlib.suppress(ServerError):
                    store.settle()
                began = time.monotonic()
                try:
                    store.compact()  # after replacing or removing papers
                    report.timed({"compact": time.monotonic() - began})
                    began = time.monotonic()
                    # queries rank lexically from these
                    store.postings(build=True, weights=settings.search.column_weights)
                except KeyboardInterrupt:  # saved atomically or not at all; FTS5 answers
                    report.interrupted = True
                report.timed({"postings": time.monotonic() - began})
        finally:
            store.close()
    report.seconds = time.monotonic() - started
    return report


def _checked(todo: list[Source]) -> tuple[list[Source], list[Outcome]]:
    """The sources whose local PDF passes the cheap checks, and a failure for each other: a
    truncated file is told at once, not after the model's one-time preparation."""
    kept, failed = [], []
    for source in todo:
        try:
            if source.path is not None:
                check_file(source.path)
        except ExtractError as e:
            failed.append(Outcome(source.paper.id, Status.FAILED, str(e)))
        else:
            kept.append(source)
    return kept, failed


def _drop(store: Store, settings: Settings, ids: list[str] | None, planned: set[str],
          report: Report) -> None:  # fmt: skip
    """--rebuild: remove the named papers (``ids``), or every paper, before ingesting them
    anew; a paper removed that this run does not ingest again is reported. Nothing is removed
    when papers kept would be of another model."""
    records = store.records()
    drop = [pid for pid in (ids if ids is not None else records) if pid in records]
    kept = set(records) - set(drop)
    if kept and store.model and store.model != settings.model:
        raise IngestError(
            f"the other papers in {settings.home} were built with {store.model!r}: to use "
            f"{settings.model!r}, rebuild them all (--rebuild without ids)"
        )
    for pid in drop:
        store.remove_paper(pid)
        if pid not in planned:
            report.outcomes.append(
                Outcome(pid, Status.REMOVED, "--rebuild: not among the papers given")
            )


@dataclass
class _Prepared:
    """A paper's PDF read and chunked (or found unchanged), ready to embed."""

    source: Source
    pdf: Path
    digest: str
    shape: str
    chunks: list[Chunk] | None  # None: the chunks and vectors indexed are still right
    stages: dict[str, float] = field(default_factory=dict)
    references: list[Reference] | None = None  # its reference list, when it has one
    relabel: bool = False  # only the metadata changed: store it, keep the chunks and vectors
    # an unchanged paper whose reference list was never read (ingested before ddsearch read
    # them): its pages, every line kept, to read the list from beside the chunks it has
    whole: list[Page] | None = None


def _prepare(source: Source, settings: Settings, encoder: str, refresh: bool,
             old: PaperRecord | None, embedder: Embedder, resolver: Resolver,
             unread: bool = False) -> _Prepared:  # fmt: skip
    """Fetch, hash, extract and chunk one paper (or find it unchanged, or changed only in
    metadata that neither its chunks nor its vectors depend on; ``unread``: then read its
    pages for the reference list it lacks)."""
    pdf = _obtain(source, settings, refresh)
    digest = source.digest or sha256_file(pdf)
    shape = fingerprint(source.paper, settings, encoder)
    if old is not None and (old.sha256, old.settings) == (digest, shape):
        paper = source.paper
        if paper.key is None and old.paper.key:  # the user's key stays until --prune drops it
            paper = replace(paper, key=old.paper.key, path=paper.path or old.paper.path)
        source = replace(source, paper=paper)
        whole = _whole_pages(paper, pdf, settings) if unread else None
        if paper == old.paper:
            return _Prepared(source, pdf, digest, shape, None, whole=whole)
        if paper.pages == old.paper.pages:  # the printed page numbers of the chunks hold
            return _Prepared(source, pdf, digest, shape, None, relabel=True, whole=whole)
    stages: dict[str, float] = {}
    chunks, references = read_paper(source.paper, pdf, embedder, settings, stages, resolver)
    return _Prepared(source, pdf, digest, shape, chunks, stages, references=references)


def _whole_pages(paper: Paper, pdf: Path, settings: Settings) -> list[Page]:
    """The paper's pages with every line kept, as read_paper reads its references from."""
    return clean_whole(extract(pdf, settings.limits).pages, heading, page_range(paper.pages))[1]


def _prepared(todo, settings, refresh, olds, embedder, resolver, unread=frozenset()):
    """Yield (source, future) for each paper, reading ahead of the one being embedded.

    A thread is enough: extraction itself runs in the extract worker process and onnxruntime
    releases the GIL, so reading, cleaning and chunking the next papers overlaps embedding.
    """
    from concurrent.futures import ThreadPoolExecutor

    encoder = embedder.backend if todo else ""  # nothing to read: the model is not prepared
    with ThreadPoolExecutor(1, thread_name_prefix="ddsearch-read") as pool:
        pending: list = []
        queue = iter(todo)
        try:
            while True:
                while len(pending) < settings.prefetch + 1:
                    source = next(queue, None)
                    if source is None:
                        break
                    old = olds.get(source.paper.id)
                    job = (source, settings, encoder, refresh, old, embedder, resolver,
                           source.paper.id in unread)  # fmt: skip
                    pending.append((source, pool.submit(_prepare, *job)))
                if not pending:
                    return
                yield pending.pop(0)
        finally:
            for _, fut in pending:
                fut.cancel()


def _store_one(ready: _Prepared, store: Store, embedder: Embedder, settings: Settings,
               report: Report, on_batch=None) -> Outcome:  # fmt: skip
    """Embed a prepared paper and make its chunks visible, all at once."""
    paper, chunks = ready.source.paper, ready.chunks
    assert chunks is not None  # a paper to embed, not one found unchanged
    started = time.perf_counter()
    texts = _fit(paper, chunks, embedder, settings)
    spans = [
        [(len(t) - len(c.text) + s.start, len(t) - len(c.text) + s.end) for s in c.sentences]
        for t, c in zip(texts, chunks)
    ]  # each sentence in the embedded text, which is the chunk's after its context line
    vectors, sentence_vectors = embedder.encode_passages(texts, spans, on_batch=on_batch)
    embedded = time.perf_counter()
    record = PaperRecord(paper, ready.digest, ready.shape, len(chunks), str(ready.pdf), time.time())
    # no list found is stored as such (()): only a paper never read has None
    store.replace_paper(record, chunks, vectors, settings.model, sentence_vectors,
                        ready.references or ())  # fmt: skip
    stages = {k: v for k, v in ready.stages.items() if k != "pages"}
    report.timed({**stages, "embed": embedded - started, "store": time.perf_counter() - embedded})
    report.pages += int(ready.stages.get("pages", 0))
    return Outcome(paper.id, Status.INGESTED, "", len(chunks))


def _line(n: int, total: int, outcome: Outcome) -> str:
    """'[ 3/45] raft: ingested, 312 chunks': one paper's outcome, for a log."""
    head = f"[{n:>{len(str(total))}}/{total}] {outcome.paper_id}: "
    if outcome.status == Status.INGESTED:
        return head + f"ingested, {outcome.chunks} chunks"
    if outcome.reason == "unchanged":
        return head + "unchanged"
    return head + f"{outcome.status}: {outcome.reason}"


def _announcer(progress: bool, log: Callable[[str], None] | None) -> Callable[[str], None]:
    """Where a line for the user goes: above the bars, to the log, or nowhere."""

    def say(line: str) -> None:
        if progress:
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)
        elif log is not None:
            log(line)

    return say


def _ready(embedder: Embedder, say: Callable[[str], None]) -> None:
    """Load the model, announcing the one-time export (else a fresh home sits silent at 0%
    for a quarter minute); raises ModelError for a model that cannot be had."""
    if not embedder.prepared():
        say("preparing the model for this data home: checking its weights, exporting it to "
            "ONNX (once, about 15 s)")  # fmt: skip
        began = time.monotonic()
        embedder.backend  # noqa: B018 - the property does the work
        say(f"model ready in {time.monotonic() - began:.1f}s")
    embedder.dimension  # noqa: B018 - a model the graph does not cover loads here


def _run(todo: Iterable[Source], store: Store, embedder: Embedder, settings: Settings,
         refresh: bool, report: Report, progress: bool, say: Callable[[str], None],
         log: Callable[[str], None] | None = None,
         resolver: Resolver = Resolver(())) -> None:  # fmt: skip
    from tqdm import tqdm

    todo = list(todo)
    if todo:  # nothing to read: the model need not be prepared
        _ready(embedder, say)

    records = store.records()
    olds = {pid: r for pid, r in records.items() if store.count_chunks(pid) == r.chunks}
    unread = frozenset(records) - set(store.reference_lists())
    todo = list(todo)
    bar = tqdm(total=len(todo), desc="papers", unit="paper", disable=not progress, leave=False)
    chunk_bar = tqdm(desc="chunks embedded", unit="chunk", disable=not progress, leave=False)
    ready = None
    try:
        for n, (source, future) in enumerate(
            _prepared(todo, settings, refresh, olds, embedder, resolver, unread), 1
        ):
            pid = source.paper.id
            bar.set_postfix_str(pid)
            try:
                ready = future.result()
                if ready.whole is not None:
                    _add_references(ready, store, settings, resolver)
                    why = "reference list read" + (", metadata" if ready.relabel else "")
                    outcome = Outcome(pid, Status.UPDATED, why, records[pid].chunks)
                elif ready.relabel:
                    _relabel(ready.source.paper, store, settings, ready.digest, ready.shape)
                    outcome = Outcome(pid, Status.UPDATED, "metadata only", records[pid].chunks)
                elif ready.chunks is None:
                    outcome = Outcome(pid, Status.SKIPPED, "unchanged", records[pid].chunks)
                else:
                    outcome = _store_one(ready, store, embedder, settings, report, chunk_bar.update)
            except (ServerError, ModelError):  # every other paper would fail the same way
                raise
            except Exception as e:  # one paper's failure is reported, never fatal to the run
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                outcome = Outcome(pid, Status.FAILED, re.sub(r"\s+", " ", reason))
            report.outcomes.append(outcome)
            ready = None  # reported: an interrupt from here on is between papers
            bar.update(1)
            if not progress and log is not None:
                log(_line(n, len(todo), outcome))
    except KeyboardInterrupt:  # between or inside papers: nothing half-stored is visible
        report.interrupted = True
        if ready is not None and ready.chunks is not None:  # stopped after its commit?
            rec = store.record(ready.source.paper.id)
            if rec and (rec.sha256, rec.settings) == (ready.digest, ready.shape):
                report.outcomes.append(Outcome(rec.paper.id, Status.INGESTED, "", rec.chunks))
    finally:
        bar.close()
        chunk_bar.close()


def _add_references(ready: _Prepared, store: Store, settings: Settings,
                    resolver: Resolver) -> None:  # fmt: skip
    """Store the reference list of a paper indexed before ddsearch read them, beside the
    chunks and vectors it has (and its new metadata, if any)."""
    assert ready.whole is not None
    paper = ready.source.paper
    rows = store.paper_rows(paper.id)
    found = read_references(paper.id, ready.whole, rows.chunks, resolver)
    old = rows.record
    record = (PaperRecord(paper, ready.digest, ready.shape, len(rows.chunks), old.source,
                          time.time()) if ready.relabel else old)  # fmt: skip
    store.replace_paper(record, rows.chunks, rows.vectors, settings.model, rows.sentence_vectors,
                        found or ())  # fmt: skip


def _relabel(paper: Paper, store: Store, settings: Settings, digest: str | None = None,
             shape: str | None = None) -> None:  # fmt: skip
    """Store new metadata for an indexed paper, with the chunks and vectors it has."""
    rows = store.paper_rows(paper.id)
    old = rows.record
    record = PaperRecord(paper, digest or old.sha256, shape or old.settings, len(rows.chunks),
                         old.source, time.time())  # fmt: skip
    store.replace_paper(record, rows.chunks, rows.vectors, settings.model, rows.sentence_vectors,
                        rows.references)  # fmt: skip


def _settle_bibs(listed: dict[str, dict[str, str]], store: Store, catalog: Catalog,
                 settings: Settings, prune: bool, report: Report) -> None:  # fmt: skip
    """Report (or with prune remove) the papers whose entries left their .bib since the last
    run; a catalog paper stays, without the key. Then remember each .bib's entries."""
    records = store.records()
    for bib, now in listed.items():
        before = store.bib_entries(bib)
        keep = dict(now)
        name = Path(bib).name
        for pid, key in sorted(before.items()):
            rec = records.get(pid)
            if pid in now or rec is None or rec.paper.key != key:
                continue  # not ours any more: another entry, or another .bib, holds the id
            if not prune:
                keep[pid] = key
                why = f"{key} is no longer in {name}; --prune removes it"
                report.outcomes.append(Outcome(pid, Status.STALE, why, rec.chunks))
            elif pid in catalog:
                _relabel(replace(rec.paper, key=None, path=None), store, settings)
                why = f"{key} is no longer in {name}; the catalog paper stays, without the key"
                report.outcomes.append(Outcome(pid, Status.PRUNED, why))
            else:
                store.remove_paper(pid)
                report.outcomes.append(Outcome(pid, Status.PRUNED, f"{key} is no longer in {name}"))
        store.set_bib_entries(bib, keep)
