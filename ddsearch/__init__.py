"""ddsearch: search the canon of distributed-systems papers, answered with paper and page.

The library API (the CLI is a thin shell over it)::

    from ddsearch import Settings, load_catalog, ingest, Searcher
    report = ingest(Settings(), load_catalog(), sources=[Path("papers/")])
    hits = Searcher(Settings().home).search("why does GFS use a single master?")

Heavy modules (torch, sentence-transformers, chromadb) load only when a call needs them.
"""

from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "Settings": "ddsearch.config",
    "load_catalog": "ddsearch.catalog",
    "Catalog": "ddsearch.catalog",
    "ingest": "ddsearch.ingest.pipeline",
    "Searcher": "ddsearch.search.searcher",
    "Paper": "ddsearch.models",
    "Page": "ddsearch.models",
    "Chunk": "ddsearch.models",
    "Hit": "ddsearch.models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'ddsearch' has no attribute {name!r}")
