"""The words ddsearch's choices are spelled with, defined once: every interface takes and shows
these, and their order is the order options and schemas list them in.

Each is a ``StrEnum``: a member is its own string (``Mode.HYBRID == "hybrid"``), so JSON,
Click choices and typed HTTP/MCP parameters take them as they are.
"""

from __future__ import annotations

from enum import StrEnum


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
    """What ``query --export`` writes: the passages (Markdown, JSON) or their bibliography."""

    MD = "md"
    JSON = "json"
    BIB = "bib"
    CSL = "csl"
    RIS = "ris"


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
