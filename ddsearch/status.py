"""What the data home holds for each paper: downloaded, indexed, how many chunks, and how it
stands in the collection's citation graph."""

from __future__ import annotations

from dataclasses import dataclass

from ddsearch.catalog import Catalog
from ddsearch.config import Settings
from ddsearch.index.store import Store
from ddsearch.models import PaperState


@dataclass(frozen=True)
class PaperStatus:
    id: str
    title: str
    year: int | None
    status: PaperState
    chunks: int
    source: str | None  # the PDF the index was built from
    cites: int | None = None  # papers of the collection it cites; None: its list never read
    cited_by: int = 0  # papers of the collection whose lists cite it

    def as_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "year": self.year, "status": self.status,
                "chunks": self.chunks, "source": self.source, "cites": self.cites,
                "cited_by": self.cited_by}  # fmt: skip


def paper_statuses(settings: Settings, catalog: Catalog) -> list[PaperStatus]:
    """Every catalog paper and every indexed local paper, catalog order first."""
    records = {}
    read: set[str] = set()
    edges: list[tuple[str, str]] = []
    home = settings.home  # a Chroma store without its cache is told (Store), not "0 indexed"
    if (home / "index.db").exists() or (home / "chroma").is_dir() or settings.chroma_url:
        store = Store.open(settings, readonly=True)
        try:
            records = store.records()
            read = set(store.reference_lists())
            edges = [(a, b) for a, b in store.citation_edges() if b in records or b in catalog]
        finally:
            store.close()
    cites: dict[str, int] = {}
    cited_by: dict[str, int] = {}
    for a, b in edges:
        if b in records:
            cites[a] = cites.get(a, 0) + 1
        cited_by[b] = cited_by.get(b, 0) + 1
    out = []
    papers = list(catalog) + [r.paper for pid, r in sorted(records.items()) if pid not in catalog]
    for paper in papers:
        rec = records.get(paper.id)
        if rec:
            status = PaperState.INDEXED
        elif (settings.pdf_cache / f"{paper.id}.pdf").is_file():
            status = PaperState.DOWNLOADED
        elif paper.url:
            status = PaperState.NOT_DOWNLOADED
        else:
            status = PaperState.NO_URL
        out.append(
            PaperStatus(
                paper.id,
                paper.title,
                paper.year,
                status,
                rec.chunks if rec else 0,
                rec.source if rec else None,
                cites.get(paper.id, 0) if paper.id in read else None,
                cited_by.get(paper.id, 0),
            )  # fmt: skip
        )
    return out
