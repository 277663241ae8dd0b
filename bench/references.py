"""What reading reference lists costs at ingest, and how well it does on the verified edges.

    python bench/references.py [--papers ../shared/papers] [--repeat 3]

For every shared PDF: the time of the references step (find and split the list, resolve each
entry against the catalog, find its citing sentences), and what clean_whole (which keeps the
list's lines for it) adds to cleaning; both beside the time the paper takes to extract, clean
and chunk. Then edge precision, recall and citing sentences against
tests/data/citation_edges.json, over the catalog and over the papers with a PDF here.
Numbers, not assertions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from refscore import load, score  # noqa: E402

from ddsearch.catalog import load_catalog  # noqa: E402
from ddsearch.config import Limits, Settings  # noqa: E402
from ddsearch.index.embed import Embedder  # noqa: E402
from ddsearch.ingest.chunk import chunk_pages, heading  # noqa: E402
from ddsearch.ingest.clean import clean_pages, clean_whole, page_range  # noqa: E402
from ddsearch.ingest.extract import extract  # noqa: E402
from ddsearch.ingest.references import read_references  # noqa: E402
from ddsearch.ingest.resolve import Resolver  # noqa: E402


def _best(repeat: int, work, *args) -> tuple[float, object]:
    """The fastest of ``repeat`` runs of ``work(*args)`` (a busy machine only ever adds time),
    and what it returned."""
    times, out = [], None
    for _ in range(repeat):
        began = time.perf_counter()
        out = work(*args)
        times.append(time.perf_counter() - began)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=Path, default=ROOT.parent / "shared" / "papers")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    catalog = load_catalog()
    resolver = Resolver(catalog)
    settings = Settings(home=Path("/tmp/ddsearch-bench-refs"))
    embedder = Embedder(settings.model, stamp_dir=settings.home)
    rows, found = [], {}
    for pdf in sorted(args.papers.glob("*.pdf")):
        paper = catalog.get(pdf.stem)
        span = page_range(paper.pages if paper else None)
        began = time.perf_counter()
        raw = extract(pdf, Limits(isolate=False)).pages
        clean_t, pages = _best(args.repeat, clean_pages, raw, heading, span)
        chunks = chunk_pages(pdf.stem, pages, embedder.count_tokens, 200, 40)
        read = time.perf_counter() - began
        whole_t, (_, whole) = _best(args.repeat, clean_whole, raw, heading, span)
        refs_t, refs = _best(args.repeat, read_references, pdf.stem, whole, chunks, resolver)
        found[pdf.stem] = refs
        rows.append((pdf.stem, read, whole_t - clean_t, refs_t, len(refs or ())))
    print(f"{'paper':24} {'read s':>7} {'+whole ms':>9} {'refs ms':>8} {'entries':>7}")
    for pid, read, extra, refs_t, n in rows:
        print(f"{pid:24} {read:7.2f} {extra * 1000:9.1f} {refs_t * 1000:8.1f} {n:7d}")
    added = [(extra + refs_t) for _, _, extra, refs_t, _ in rows]
    total_read = sum(r[1] for r in rows)
    print(
        f"\nper paper: references step median {statistics.median(r[3] for r in rows) * 1000:.0f} "
        f"ms (max {max(r[3] for r in rows) * 1000:.0f}), clean_whole's extra median "
        f"{statistics.median(r[2] for r in rows) * 1000:.0f} ms; both together "
        f"{sum(added):.1f} s for {len(rows)} papers = {sum(added) / total_read:.1%} of "
        f"their extract+clean+chunk time ({total_read:.1f} s)"
    )
    gold = load()
    shared = {p.stem for p in args.papers.glob("*.pdf")}
    in_collection = {
        pid: {**paper, "edges": [e for e in paper["edges"] if e["cites"] in shared]}
        for pid, paper in gold.items()
    }
    kept = {
        pid: [r for r in refs or () if r.id is None or r.id in shared]
        for pid, refs in found.items()
    }
    for name, g, f in (("catalog", gold, found), ("collection", in_collection, kept)):
        for split in ("tune", "check"):
            print(f"{name:10} {split:5}: {score(f, g, split).line()}")


if __name__ == "__main__":
    main()
