"""What the index stores of a paper, shared by the embedded store and the Chroma server's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ddsearch.models import Paper

SENTENCE_DTYPE = "<f2"  # sentence vectors pick a quote, never rank alone: half precision


def sentence_blob(vectors) -> bytes:
    import numpy as np

    return np.asarray(vectors, dtype=SENTENCE_DTYPE).tobytes()


class IndexError_(Exception):
    """The index cannot be used as it is (wrong model, old schema, missing)."""


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


def paper_from_json(data: str) -> Paper:
    d = json.loads(data)
    for key in ("authors", "tags"):
        d[key] = tuple(d.get(key) or ())
    if d.get("names") is not None:
        d["names"] = tuple(d["names"])
    return Paper(**{k: v for k, v in d.items() if k in Paper.__dataclass_fields__})
