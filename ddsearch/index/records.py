"""What the index stores of a paper, as plain data: the cache (ddsearch.index.store) and the
store of record (ddsearch.index.chroma) pass these between them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ddsearch.errors import UnavailableError
from ddsearch.models import Chunk, CitingSentence, Paper, Reference

if TYPE_CHECKING:
    import numpy as np

SENTENCE_DTYPE = "<f2"  # sentence vectors pick a quote, never rank alone: half precision


def sentence_blob(vectors) -> bytes:
    import numpy as np

    return np.asarray(vectors, dtype=SENTENCE_DTYPE).tobytes()


class IndexError_(UnavailableError):
    """The index cannot be used as it is (wrong model, old schema, missing)."""


class CacheLostError(IndexError_):
    """The SQLite cache is missing or unreadable beside a Chroma store that can refill it."""


@dataclass(frozen=True)
class PaperRecord:
    """What the manifest knows of one indexed paper."""

    paper: Paper
    sha256: str
    settings: str  # fingerprint of everything that shaped the chunks and vectors
    chunks: int
    source: str  # the PDF's path when ingested
    ingested_at: float

    def pdf(self, cache: Path) -> Path:
        """Where the paper's PDF is, whatever the working directory.

        Ingest stores absolute paths; older ones stored them relative to where ingest ran, so
        those are found from what does not move: a --from file's path (resolved when planned),
        else the download cache.
        """
        src = Path(self.source)
        if src.is_absolute():
            return src.resolve()
        if self.paper.path:
            return Path(self.paper.path).resolve()
        return Path(cache) / src.name

    def as_json(self) -> dict:
        from dataclasses import asdict

        return {
            "paper": asdict(self.paper),
            "sha256": self.sha256,
            "settings": self.settings,
            "chunks": self.chunks,
            "source": self.source,
            "ingested_at": self.ingested_at,
        }

    @classmethod
    def from_json(cls, doc: dict) -> PaperRecord:
        return cls(paper_from_json(json.dumps(doc["paper"])), doc["sha256"], doc["settings"],
                   doc["chunks"], doc["source"], doc["ingested_at"])  # fmt: skip


@dataclass(frozen=True)
class PaperRows:
    """Everything the index holds of one paper: its record, chunks (in order), one float32
    vector per chunk, per chunk its sentences' vectors (SENTENCE_DTYPE rows), and its
    reference list: the entries, ``()`` when the paper has none that can be recognised, None
    when it was never read (a paper ingested before ddsearch read reference lists)."""

    record: PaperRecord
    chunks: list[Chunk]
    vectors: np.ndarray
    sentence_vectors: list[np.ndarray]
    model: str
    references: tuple[Reference, ...] | None = None

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1]) if len(self.vectors) else 0

    def checked(self) -> PaperRows:
        """These rows, with one vector per chunk and one per sentence (else ValueError)."""
        if len(self.chunks) != len(self.vectors):
            raise ValueError("one vector per chunk")
        if len(self.sentence_vectors) != len(self.chunks) or any(
            len(v) != len(c.sentences) for c, v in zip(self.chunks, self.sentence_vectors)
        ):
            raise ValueError("one vector per sentence")
        return self


def references_json(references: tuple[Reference, ...]) -> list:
    """A reference list as compact JSON for the store of record; a citing sentence is kept
    as where it stands (its chunk, span, pages), its text being the chunk's."""
    return [[r.ordinal, r.label, r.text, list(r.pages), r.id,
             [[c.chunk_id, c.start, c.end, list(c.pages), list(c.printed)] for c in r.cited]]
            for r in references]  # fmt: skip


def references_from_json(data: list, chunks: list[Chunk]) -> tuple[Reference, ...]:
    """The reference list ``references_json`` wrote, its citing sentences' texts read from
    the paper's ``chunks``."""
    texts = {c.id: c.text for c in chunks}
    return tuple(
        Reference(ordinal, label, text, tuple(pages), cited_id,
                  tuple(CitingSentence(chunk, start, end, texts.get(chunk, "")[start:end],
                                       tuple(cpages), tuple(printed))
                        for chunk, start, end, cpages, printed in cited))
        for ordinal, label, text, pages, cited_id, cited in data
    )  # fmt: skip


@dataclass(frozen=True)
class Commit:
    """A paper's row in the store of record's manifest: which commit holds its rows."""

    paper_id: str
    token: str
    committed_ns: int
    chunks: int
    model: str
    dimension: int
    blocks: int = 0  # records of sentence vectors


def paper_from_json(data: str) -> Paper:
    d = json.loads(data)
    for key in ("authors", "tags"):
        d[key] = tuple(d.get(key) or ())
    if d.get("names") is not None:
        d["names"] = tuple(d["names"])
    return Paper(**{k: v for k, v in d.items() if k in Paper.__dataclass_fields__})
