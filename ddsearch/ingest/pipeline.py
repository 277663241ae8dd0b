"""Ingest: catalog and local PDFs -> pages -> chunks -> vectors in the index, a paper at a time."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ddsearch.catalog import Catalog, slugify
from ddsearch.config import Settings
from ddsearch.files import sha256_file
from ddsearch.index.embed import Embedder
from ddsearch.index.lock import writer_lock
from ddsearch.index.remote import ServerError
from ddsearch.index.store import SCHEMA_VERSION, IndexError_, PaperRecord, Store
from ddsearch.ingest.chunk import chunk_pages, heading
from ddsearch.ingest.clean import clean_pages, page_range
from ddsearch.ingest.extract import ExtractError, extract
from ddsearch.models import Chunk, Paper

PIPELINE_VERSION = 2  # bump when extraction, cleaning or chunking changes their output


class IngestError(Exception):
    """The run as a whole cannot start (bad ids, missing paths, wrong model)."""


@dataclass
class Outcome:
    paper_id: str
    status: str  # ingested | skipped | failed
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
        return not self.of("failed") and not self.interrupted


@dataclass(frozen=True)
class Source:
    """A paper to ingest, with its local PDF when it has one."""

    paper: Paper
    path: Path | None = None


def _first_line_title(pdf: Path) -> str | None:
    try:
        doc = extract(pdf)
    except ExtractError:
        return None
    for line in doc.pages[0].text.splitlines():
        line = line.strip()
        if len(line) > 8 and len(line.split()) >= 2:
            return doc.title or line[:200]
    return doc.title


def plan(
    catalog: Catalog, sources: Sequence[Path] = (), ids: Sequence[str] = ()
) -> tuple[list[Source], list[Outcome]]:
    """The papers a run will ingest, and the files it passes over (with the reason)."""
    passed: list[Outcome] = []
    if not sources:
        unknown = [i for i in ids if i not in catalog]
        if unknown:
            raise IngestError(f"unknown paper id(s): {', '.join(unknown)} (see 'ddsearch papers')")
        chosen = [catalog.papers[i] for i in dict.fromkeys(ids)] if ids else list(catalog)
        return [Source(p) for p in chosen], passed

    files: list[Path] = []
    for src in sources:
        src = Path(src).expanduser()
        if src.is_dir():
            for f in sorted(src.iterdir()):
                if f.is_file() and f.suffix.lower() == ".pdf":
                    files.append(f)
                elif f.is_file() and not f.name.startswith("."):
                    passed.append(Outcome(f.name, "skipped", "not a PDF file"))
        elif src.is_file():
            files.append(src)
        else:
            raise IngestError(f"no such file or folder: {src}")
    planned: dict[str, Source] = {}
    for f in files:
        pid = f.stem if f.stem in catalog else slugify(f.stem)
        if pid in planned:
            passed.append(Outcome(pid, "failed", f"duplicate id: {f} and {planned[pid].path}"))
            continue
        paper = catalog.get(pid)
        if paper is None:
            paper = Paper(id=pid, title=_first_line_title(f) or f.stem, kind="misc")
        planned[pid] = Source(replace(paper, path=str(f.resolve())), f)
    if ids:
        unknown = [i for i in ids if i not in planned]
        if unknown:
            raise IngestError(f"not among the given PDFs: {', '.join(unknown)}")
        # the folder's other files were not asked for: passing over them is no news
        passed = [o for o in passed if o.paper_id in ids]
        return [planned[i] for i in dict.fromkeys(ids)], passed
    return list(planned.values()), passed


def embedding_text(paper: Paper, chunk: Chunk, section_chars: int = 90) -> str:
    """What the model sees: the passage in its paper's and section's context."""
    head = paper.title
    if chunk.section:
        head += f" — {chunk.section[:section_chars]}"
    return f"{head}\n{chunk.text}"


def fingerprint(paper: Paper, settings: Settings, encoder: str) -> str:
    """Everything besides the PDF bytes that shapes a paper's chunks and vectors."""
    shape = {
        "pipeline": PIPELINE_VERSION,
        "schema": SCHEMA_VERSION,
        "model": settings.model,
        "chunk_tokens": settings.chunk_tokens,
        "overlap_tokens": settings.overlap_tokens,
        "section_tokens": settings.section_tokens,
        "pages": paper.pages,  # the published range decides the printed page numbers
        "encoder": encoder,  # onnx, onnx-int8 or torch: what computed the vectors
        "title": paper.title,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def make_chunks(
    paper: Paper, pdf: Path, embedder: Embedder, settings: Settings, stages: dict | None = None
) -> list[Chunk]:
    """Extract, clean and chunk one PDF so that every chunk fits the model with its context."""
    started = time.perf_counter()
    doc = extract(pdf)
    if stages is not None:
        stages["extract"] = time.perf_counter() - started
        stages["pages"] = len(doc.pages)
        started = time.perf_counter()
    pages = clean_pages(doc.pages, heading, page_range(paper.pages))
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
    if not chunks:
        raise ExtractError("no extractable text (a scan without a text layer?)")
    return chunks


def _fit(paper: Paper, chunks: list[Chunk], embedder: Embedder) -> list[str]:
    """The texts to embed, checked against the model's limit: nothing may be truncated."""
    texts = [embedding_text(paper, c) for c in chunks]
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
    return fetch_paper(source.paper, settings.pdf_cache, refresh=refresh).resolve()


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
) -> Report:
    """Bring the index up to date with the chosen papers. One paper failing stops no other.

    ``progress`` shows bars (for a terminal); otherwise ``log``, when given, gets one line per
    paper (for a log file or CI). Either way a model's one-time preparation is announced."""
    started = time.monotonic()
    todo, passed = plan(catalog, sources, ids)
    report = Report(outcomes=list(passed))
    embedder = embedder or Embedder(settings.model, stamp_dir=settings.home, int8=settings.int8)
    with writer_lock(settings.home):
        try:
            store = Store(settings.home, chroma_url=settings.chroma_url)
        except IndexError_:
            if not rebuild:
                raise
            Store.drop(settings.home)  # an old schema or a damaged file: start afresh
            store = Store(settings.home, chroma_url=settings.chroma_url)
        try:
            if rebuild:
                for pid in list(store.records()):
                    store.remove_paper(pid)
            built_with = store.model
            if built_with and built_with != settings.model and store.records():
                raise IngestError(
                    f"the index in {settings.home} was built with {built_with!r}; to use "
                    f"{settings.model!r} re-ingest with --rebuild, or choose another --home"
                )
            store.reconcile()
            _run(todo, store, embedder, settings, refresh, report, progress, log)
            if not report.interrupted:
                if store.remote is not None:
                    # what other writers committed meanwhile, in commit order, so this cache
                    # and its postings rank as every other client's do
                    with contextlib.suppress(ServerError):
                        store.remote.settle(store)
                began = time.monotonic()
                try:
                    store.postings(build=True)  # queries rank lexically from these
                except KeyboardInterrupt:  # saved atomically or not at all; FTS5 answers
                    report.interrupted = True
                report.timed({"postings": time.monotonic() - began})
        finally:
            store.close()
    report.seconds = time.monotonic() - started
    return report


@dataclass
class _Prepared:
    """A paper's PDF read and chunked (or found unchanged), ready to embed."""

    source: Source
    pdf: Path
    digest: str
    shape: str
    chunks: list[Chunk] | None  # None: unchanged since the last ingest
    stages: dict[str, float] = field(default_factory=dict)


def _prepare(source: Source, settings: Settings, encoder: str, refresh: bool, old: tuple | None,
             embedder: Embedder) -> _Prepared:  # fmt: skip
    """Fetch, hash, extract and chunk one paper (or find it unchanged)."""
    pdf = _obtain(source, settings, refresh)
    digest = sha256_file(pdf)
    shape = fingerprint(source.paper, settings, encoder)
    if old == (digest, shape):
        return _Prepared(source, pdf, digest, shape, None)
    stages: dict[str, float] = {}
    chunks = make_chunks(source.paper, pdf, embedder, settings, stages)
    return _Prepared(source, pdf, digest, shape, chunks, stages)


PREFETCH = 2  # papers read ahead of the one being embedded


def _prepared(todo, settings, refresh, olds, embedder):
    """Yield (source, future) for each paper, reading ahead of the one being embedded.

    A thread is enough: extraction itself runs in the extract worker process and onnxruntime
    releases the GIL, so reading, cleaning and chunking the next papers overlaps embedding.
    """
    from concurrent.futures import ThreadPoolExecutor

    encoder = embedder.backend
    with ThreadPoolExecutor(1, thread_name_prefix="ddsearch-read") as pool:
        pending = []
        queue = iter(todo)
        try:
            while True:
                while len(pending) < PREFETCH + 1:
                    source = next(queue, None)
                    if source is None:
                        break
                    job = (source, settings, encoder, refresh, olds.get(source.paper.id), embedder)
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
    started = time.perf_counter()
    texts = _fit(paper, chunks, embedder)
    spans = [
        [(len(t) - len(c.text) + s.start, len(t) - len(c.text) + s.end) for s in c.sentences]
        for t, c in zip(texts, chunks)
    ]  # each sentence in the embedded text, which is the chunk's after its context line
    vectors, sentence_vectors = embedder.encode_passages(texts, spans, on_batch=on_batch)
    embedded = time.perf_counter()
    record = PaperRecord(paper, ready.digest, ready.shape, len(chunks), str(ready.pdf), time.time())
    store.replace_paper(record, chunks, vectors, settings.model, sentence_vectors)
    stages = {k: v for k, v in ready.stages.items() if k != "pages"}
    report.timed({**stages, "embed": embedded - started, "store": time.perf_counter() - embedded})
    report.pages += int(ready.stages.get("pages", 0))
    return Outcome(paper.id, "ingested", "", len(chunks))


def _line(n: int, total: int, outcome: Outcome) -> str:
    """'[ 3/45] raft: ingested, 312 chunks': one paper's outcome, for a log."""
    head = f"[{n:>{len(str(total))}}/{total}] {outcome.paper_id}: "
    if outcome.status == "ingested":
        return head + f"ingested, {outcome.chunks} chunks"
    if outcome.reason == "unchanged":
        return head + "unchanged"
    return head + f"{outcome.status}: {outcome.reason}"


def _run(todo: Iterable[Source], store: Store, embedder: Embedder, settings: Settings,
         refresh: bool, report: Report, progress: bool,
         log: Callable[[str], None] | None = None) -> None:  # fmt: skip
    from tqdm import tqdm

    def say(line: str) -> None:
        if progress:
            tqdm.write(line, file=sys.stderr)
        elif log is not None:
            log(line)

    if not embedder.prepared():  # else a fresh home sits silent at 0% for a quarter minute
        say("preparing the model for this data home: checking its weights, exporting it to "
            "ONNX (once, about 15 s)")  # fmt: skip
        began = time.monotonic()
        embedder.backend  # noqa: B018 - the property does the work
        say(f"model ready in {time.monotonic() - began:.1f}s")

    records = store.records()
    olds = {
        pid: (r.sha256, r.settings)
        for pid, r in records.items()
        if store.count_chunks(pid) == r.chunks
    }
    todo = list(todo)
    bar = tqdm(total=len(todo), desc="papers", unit="paper", disable=not progress, leave=False)
    chunk_bar = tqdm(desc="chunks embedded", unit="chunk", disable=not progress, leave=False)
    ready = None
    try:
        for n, (source, future) in enumerate(_prepared(todo, settings, refresh, olds, embedder), 1):
            pid = source.paper.id
            bar.set_postfix_str(pid)
            try:
                ready = future.result()
                if ready.chunks is None:
                    outcome = Outcome(pid, "skipped", "unchanged", records[pid].chunks)
                else:
                    outcome = _store_one(ready, store, embedder, settings, report, chunk_bar.update)
            except ServerError:  # the Chroma server went away: every other paper would fail too
                raise
            except Exception as e:  # one paper's failure is reported, never fatal to the run
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                outcome = Outcome(pid, "failed", re.sub(r"\s+", " ", reason))
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
                report.outcomes.append(Outcome(rec.paper.id, "ingested", "", rec.chunks))
    finally:
        bar.close()
        chunk_bar.close()
