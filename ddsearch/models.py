"""Plain data objects passed between ingest, index and search, and the words ddsearch's
choices are spelled with, defined once: every interface takes and shows these, and their
order is the order options and schemas list them in. Each is a ``StrEnum``: a member is its
own string (``Mode.HYBRID == "hybrid"``), so JSON, Click choices and typed HTTP/MCP
parameters take them as they are."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True)
class Paper:
    """A catalog entry, or a local PDF that has no entry."""

    id: str
    title: str
    authors: tuple[str, ...] = ()
    year: int | None = None
    venue: str | None = None
    url: str | None = None
    sha256: str | None = None
    doi: str | None = None
    tags: tuple[str, ...] = ()
    kind: str = "inproceedings"  # BibTeX entry type: inproceedings, article, techreport, ...
    volume: str | None = None
    number: str | None = None
    pages: str | None = None  # the page range in the venue, e.g. "205--220"
    publisher: str | None = None
    institution: str | None = None
    note: str | None = None  # e.g. why there is no open-access URL
    path: str | None = None  # local PDF, when the paper came from --from
    key: str | None = None  # the user's own citation key (from --bib), cited exactly as given
    # what a question may call the paper by ("Raft", "GFS"); None: the title's lead ("Dynamo:")
    names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Page:
    """One PDF page's text. ``number`` is the 1-based index of the page in the file."""

    number: int
    text: str
    printed: str | None = None  # the page number printed on the paper, when known


@dataclass(frozen=True)
class Sentence:
    """A sentence of a chunk: ``chunk.text[start:end]``, on the PDF pages it stands on."""

    start: int
    end: int
    pages: tuple[int, ...]
    printed: tuple[str, ...] = ()
    caption: bool = False  # a caption or a bold title, not prose: searchable, never quoted


@dataclass(frozen=True)
class Chunk:
    """A passage of one paper, with the PDF pages it spans and its sentences."""

    id: str
    paper_id: str
    ordinal: int
    text: str
    pages: tuple[int, ...]
    section: str | None = None
    printed_pages: tuple[str, ...] = ()
    sentences: tuple[Sentence, ...] = ()


@dataclass(frozen=True)
class CitingSentence:
    """A sentence of a paper's body that cites a reference: ``chunk.text[start:end]`` of the
    chunk it was read in, on the PDF pages it stands on (quoted and cited like any other)."""

    chunk_id: str
    start: int
    end: int
    text: str
    pages: tuple[int, ...]
    printed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reference:
    """One entry of a paper's reference list, and the paper it names when that is known."""

    ordinal: int  # its place in the list, from 1
    label: str  # as printed ("[15]", "15.", "[Lam78]"); an unlabelled list's "Lamport 1978"
    text: str  # the entry, its lines joined
    pages: tuple[int, ...]  # the PDF pages the entry stands on
    id: str | None = None  # the catalog's (or the user's .bib's) paper it is a version of
    cited: tuple[CitingSentence, ...] = ()  # the body's sentences that cite it, in order


@dataclass(frozen=True)
class Highlight:
    """Where a quote stands on one PDF page: rectangles ``(x0, y0, x1, y1)`` in PDF points (the
    page's own coordinates, y upwards, as annotations' QuadPoints), one per line it covers."""

    page: int  # 1-based index of the page in the file
    box: tuple[float, float, float, float]  # the page as a viewer shows it (its crop box)
    rects: tuple[tuple[float, float, float, float], ...]


@dataclass
class Hit:
    """One ranked search result."""

    rank: int
    chunk: Chunk
    paper: Paper
    score: float
    scores: dict[str, float] = field(default_factory=dict)  # per-ranker evidence
    quote: str | None = None  # the sentences of the passage that answer best, when computed
    quote_span: tuple[int, int] | None = None  # where the quote stands in chunk.text
    quote_pages: tuple[int, ...] = ()  # the PDF pages the quote stands on: what is cited
    quote_printed: tuple[str, ...] = ()  # the same pages as printed on the paper
    parts: tuple[Chunk, ...] = ()  # the index's chunks merged into ``chunk``, best first
    highlight: tuple[Highlight, ...] = ()  # where the quote stands on its pages, when found

    @property
    def cited_pages(self) -> tuple[int, ...]:
        """The PDF pages the citation names: the quote's, else the passage's."""
        return self.quote_pages or self.chunk.pages


@dataclass(frozen=True)
class Reading:
    """How hybrid search read a question: what it asks once the words that only say which
    system are gone, and the papers it likely asks about with their chance."""

    asks: str
    papers: tuple[tuple[str, float], ...]  # (paper id, chance), likeliest first

    def __str__(self) -> str:
        """As --explain and the search page show it."""
        papers = ", ".join(f"{p} {c:.2f}" for p, c in self.papers)
        return f"asks “{self.asks}” · papers {papers}"


@dataclass(frozen=True)
class Respelling:
    """A word of a question as typed, and the word it was searched as (a typing slip, or a
    camel-case name typed apart: "Map Reduce" searched as "MapReduce")."""

    typed: str
    read: str


def respelled(slips: Iterable[Respelling]) -> str:
    """What was searched for what was typed, as the CLI and the search page say it."""
    return ", ".join(f"“{r.read}” for “{r.typed}”" for r in slips)


class Results(list[Hit]):
    """The hits of one query, best first, whether even the best of them matches weakly, and
    how the question was read (hybrid search with the fitted models; else None)."""

    def __init__(self, hits: Iterable[Hit] = (), weak_match: bool = False,
                 reading: Reading | None = None):  # fmt: skip
        super().__init__(hits)
        self.weak_match = weak_match
        self.reading = reading
        self.respelled: tuple[Respelling, ...] = ()  # words read otherwise than typed


# -- the vocabulary -----------------------------------------------------------------------


class Mode(StrEnum):
    """How a query ranks: both rankers fused, vectors only, or bm25 only."""

    HYBRID = "hybrid"
    DENSE = "dense"
    LEXICAL = "lexical"


class CiteFormat(StrEnum):
    """Bibliography formats: BibTeX, CSL-JSON, RIS."""

    BIB = "bib"
    CSL = "csl"
    RIS = "ris"


class ExportFormat(StrEnum):
    """What ``query --export`` writes: the passages (Markdown, JSON), their bibliography, or
    the cited pages themselves (a PDF packet, a PNG of the top hit's page)."""

    MD = "md"
    JSON = "json"
    BIB = "bib"
    CSL = "csl"
    RIS = "ris"
    PDF = "pdf"
    PNG = "png"


class GraphFormat(StrEnum):
    """What ``ddsearch graph`` writes: Graphviz DOT, or JSON nodes and edges."""

    DOT = "dot"
    JSON = "json"


class Precision(StrEnum):
    """The weights that embed passages at ingest (queries always use fp32)."""

    INT8 = "int8"
    FP32 = "fp32"


class Encoder(StrEnum):
    """What computed an index's vectors; part of each paper's fingerprint."""

    ONNX_INT8 = "onnx-int8"
    ONNX = "onnx"
    TORCH = "torch"


class PaperState(StrEnum):
    """What the data home holds of a paper (``ddsearch papers``)."""

    INDEXED = "indexed"
    DOWNLOADED = "downloaded"
    NOT_DOWNLOADED = "not downloaded"
    NO_URL = "no open-access URL"


class Status(StrEnum):
    """What an ingest did with one paper (or one file or entry it passed over)."""

    INGESTED = "ingested"
    UPDATED = "updated"  # its metadata only; chunks and vectors kept
    SKIPPED = "skipped"
    FAILED = "failed"
    STALE = "stale"  # its entry left its .bib; --prune removes it
    PRUNED = "pruned"
    REMOVED = "removed"  # --rebuild removed it and this run did not ingest it again


class FindingKind(StrEnum):
    """What one of doctor's findings is."""

    PROBLEM = "problem"
    NOTE = "note"  # worth knowing; nothing is wrong
    OK = "ok"  # a check that passed


class Check(StrEnum):
    """What doctor checks."""

    LOCK = "lock"
    UPGRADE = "upgrade"
    SCHEMA = "schema"
    DATABASE = "database"
    MODEL = "model"
    CHUNKS = "chunks"
    CHROMA = "chroma"
    FTS = "fts"
    SOURCE = "source"
    CATALOG = "catalog"
    CACHE = "cache"


class Part(StrEnum):
    """Which questions of an eval file's split are scored."""

    ALL = "all"
    TUNE = "tune"
    HELD = "held"
