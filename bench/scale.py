"""Scaling: ingest (store) time and warm query latency as the index grows.

    python bench/scale.py [--source HOME] [--sizes 1000 10000 50000 200000]
                          [--server-sizes 1000 10000 50000] [--out DIR]

A synthetic corpus is made from a real index (``--source``, built by ``ddsearch ingest``):
each synthetic chunk mixes the sentences of two real chunks, and its vector is the normalised
mean of theirs plus a little noise, so no model runs while the index grows (the model's cost
is measured by bench/run.py). Papers of 100 chunks go through the real ``Store.replace_paper``
(Chroma + SQLite + FTS5). Queries are real dev questions through ``Searcher.search`` (the
real query encoder, no quotes).

``--server-sizes`` measures the same curve with the index on a Chroma server (``--chroma-url``):
a fresh ``chroma run`` per size, the papers written through ``Store(home, chroma_url=...)``,
then a second, empty data home opens a ``Searcher`` on the server as another client would (its
first sync is timed) and runs the same queries. Each size's corpus is the same in both stores.

Writes bench/out/scale.json, bench/scale.md, docs/scale.png (or all three into ``--out``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's ddsearch, and tests/_servers for `chroma run`
PER_PAPER = 100
MODES = ("hybrid", "dense", "lexical")


def synthetic_papers(source, count: int, rng: np.random.Generator):
    """Yield (PaperRecord, chunks, vectors, sentence vectors) for ``count`` chunks made from the
    source index (a sentence's vector is its chunk's plus noise)."""
    from ddsearch.index.store import PaperRecord
    from ddsearch.ingest.chunk import chunk_id
    from ddsearch.models import Chunk, Paper, Sentence
    from ddsearch.sentences import split_sentences, split_spans

    rowids, matrix, _, _ = source.vectors()
    texts = source.chunks(rowids.tolist())
    pool = [split_sentences(texts[int(r)].text) for r in rowids]
    made = 0
    while made < count:
        n = min(PER_PAPER, count - made)
        pid = f"synthetic-{made // PER_PAPER:05d}"
        paper = Paper(id=pid, title=f"Synthetic paper {pid}", year=2000, kind="misc")
        chunks, vectors = [], np.zeros((n, matrix.shape[1]), dtype=np.float32)
        sentence_vectors = []
        for i in range(n):
            a, b = rng.integers(0, len(pool), size=2)
            text = " ".join(pool[a][: len(pool[a]) // 2 + 1] + pool[b][len(pool[b]) // 2 :])
            v = matrix[a] + matrix[b] + rng.normal(0, 0.02, matrix.shape[1]).astype(np.float32)
            vectors[i] = v / np.linalg.norm(v)
            page = (i // 5 + 1,)
            sentences = tuple(Sentence(a, b, page) for a, b in split_spans(text))
            noise = rng.normal(0, 0.05, (len(sentences), matrix.shape[1])).astype(np.float32)
            sentence_vectors.append(vectors[i] + noise)
            chunks.append(Chunk(chunk_id(pid, i, text), pid, i, text, page, sentences=sentences))
        record = PaperRecord(paper, "0" * 64, "synthetic", n, "", time.time())
        yield record, chunks, vectors, sentence_vectors
        made += n


def percentiles(values: list[float]) -> dict:
    return {"p50": statistics.median(values), "p95": sorted(values)[int(0.95 * (len(values) - 1))]}


def store_papers(size: int, source_home: Path, home: Path,
                 chroma_url: str | None = None) -> tuple[float, float]:  # fmt: skip
    """Seconds to write ``size`` synthetic chunks into ``home`` (or the server) via Store, as
    ``ddsearch ingest`` does (the lexical postings built at the end), and of those the
    postings' seconds."""
    from ddsearch.index.store import Store

    source = Store(source_home, readonly=True)
    store = Store(home, chroma_url=chroma_url)
    rng = np.random.default_rng(size)  # the same corpus for both stores at one size
    try:
        started = time.perf_counter()
        for record, chunks, vectors, sentence_vectors in synthetic_papers(source, size, rng):
            store.replace_paper(record, chunks, vectors, source.model, sentence_vectors)
        postings = time.perf_counter()
        store.postings(build=True)
        done = time.perf_counter()
        return done - started, done - postings
    finally:
        store.close()
        source.close()


def query_latency(searcher, questions: list[str]) -> dict:
    """Warm p50/p95 milliseconds of ``searcher.search`` per mode (the query encoded already)."""
    searcher.search(questions[0])  # loads the vectors once
    lat = {mode: [] for mode in MODES}
    for q in questions:
        searcher.encode_query(q)  # the encoder's cost is the same at every size
        for mode in lat:
            t = time.perf_counter()
            searcher.search(q, 10, mode=mode)
            lat[mode].append(1000 * (time.perf_counter() - t))
    return {m: percentiles(v) for m, v in lat.items()}


def refresh_latency(searcher, times: int) -> dict:
    """p50/p95 milliseconds of a refresh that finds nothing new (with a server: one manifest
    read, what ``ddsearch serve`` pays every 2 s and a query's process pays when it opens)."""
    lat = []
    for _ in range(times):
        t = time.perf_counter()
        searcher.refresh()
        lat.append(1000 * (time.perf_counter() - t))
    return percentiles(lat)


def row(store: str, size: int, ingest: float, queries: dict, **extra) -> dict:
    return {"store": store, "chunks": size, "ingest_s": ingest, "chunks_per_s": size / ingest,
            **extra, "query_ms": queries}  # fmt: skip


def measure(size: int, source_home: Path, questions: list[str], embedder) -> dict:
    """The embedded store: write, then query from the same data home."""
    from ddsearch.search.searcher import Searcher

    home = Path(tempfile.mkdtemp(prefix=f"ddsearch-scale-{size}-"))
    try:
        ingest, postings = store_papers(size, source_home, home)
        searcher = Searcher(home, embedder=embedder)
        queries = query_latency(searcher, questions)
        searcher.store.close()
        return row("embedded", size, ingest, queries, postings_s=postings)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def measure_server(size: int, source_home: Path, questions: list[str], embedder) -> dict:
    """A Chroma server: one client writes; a second, new data home syncs and queries."""
    from ddsearch.search.searcher import Searcher
    from tests._servers import chroma_server  # `chroma run` on a free 127.0.0.1 port

    tmp = Path(tempfile.mkdtemp(prefix=f"ddsearch-scale-server-{size}-"))
    try:
        with chroma_server(tmp / "chroma", timeout=120) as url:
            ingest, postings = store_papers(size, source_home, tmp / "writer", chroma_url=url)
            started = time.perf_counter()
            searcher = Searcher(tmp / "reader", embedder=embedder, chroma_url=url)
            searcher.warm()  # as `ddsearch serve` does: its own postings, built from its cache
            searcher.search(questions[0])  # the first answer: the cache filled, vectors loaded
            first_sync = time.perf_counter() - started
            queries = query_latency(searcher, questions)
            refresh = refresh_latency(searcher, len(questions))
            searcher.store.close()
        return row("server", size, ingest, queries, postings_s=postings,
                   first_sync_s=first_sync, refresh_ms=refresh)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(rows: list[dict]) -> str:
    """The markdown table of bench/scale.md: one row per store and size."""
    lines = ["| store | chunks | ingest (store) | chunks/s | first sync | hybrid p50 / p95 | "
             "dense p50 / p95 | lexical p50 / p95 | refresh p50 / p95 |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        q, refresh = r["query_ms"], r.get("refresh_ms")
        sync = f"{r['first_sync_s']:.1f} s" if "first_sync_s" in r else "–"
        cells = [r["store"], f"{r['chunks']:,}", f"{r['ingest_s']:.1f} s",
                 f"{r['chunks_per_s']:.0f}", sync]  # fmt: skip
        cells += [f"{q[m]['p50']:.1f} / {q[m]['p95']:.1f} ms" for m in MODES]
        cells.append(f"{refresh['p50']:.1f} / {refresh['p95']:.1f} ms" if refresh else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", type=Path, required=True, help="a data home built by ingest")
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 50000, 200000])
    ap.add_argument("--server-sizes", type=int, nargs="*", default=[],
                    help="sizes to measure with the index on a Chroma server (chroma run)")  # fmt: skip
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--out", type=Path, help="write scale.json, scale.md, scale.png here")
    args = ap.parse_args()

    from ddsearch.index.embed import Embedder
    from ddsearch.search.evaluate import load_questions
    from tests._servers import chroma_executable

    if not args.sizes and not args.server_sizes:
        ap.error("nothing to measure: give --sizes or --server-sizes")
    if args.server_sizes and chroma_executable() is None:
        ap.error("--server-sizes needs the chroma executable (pip install chromadb)")
    questions = [q.question for q in load_questions(args.questions)][: args.queries]
    embedder = Embedder(stamp_dir=args.source)
    embedder.encode(["warm up"])  # the model loads here, not in a timed first answer
    runs = [(measure, s) for s in args.sizes] + [(measure_server, s) for s in args.server_sizes]
    rows = []
    for fn, size in runs:
        rows.append(fn(size, args.source, questions, embedder))
        print(json.dumps(rows[-1]), flush=True)
    write(rows, args.out)


def write(rows: list[dict], out: Path | None) -> None:
    """scale.json, scale.md and scale.png: into ``out``, else where the repository keeps them."""
    paths = (
        (out / "scale.json", out / "scale.md", out / "scale.png")
        if out
        else (ROOT / "bench" / "out" / "scale.json", ROOT / "bench" / "scale.md",
              ROOT / "docs" / "scale.png")
    )  # fmt: skip
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    paths[0].write_text(json.dumps(rows, indent=2))
    paths[1].write_text(table(rows))
    print(table(rows))
    plot(rows, paths[2])


def plot(rows: list[dict], path: Path) -> None:
    """Store time (both stores, and a server's first sync), then query latency per store."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stores = [s for s in ("embedded", "server") if any(r["store"] == s for r in rows)]
    fig, axes = plt.subplots(1, 1 + len(stores), figsize=(5 * (1 + len(stores)), 4))
    a = axes[0]
    for store, style in zip(stores, ("o-", "s--")):
        mine = [r for r in rows if r["store"] == store]
        a.plot([r["chunks"] for r in mine], [r["ingest_s"] for r in mine], style, label=store)
    synced = [r for r in rows if "first_sync_s" in r]
    if synced:
        x = [r["chunks"] for r in synced]
        a.plot(x, [r["first_sync_s"] for r in synced], "^:", label="server: a new client's sync")
    a.set(xscale="log", yscale="log", xlabel="chunks", ylabel="seconds", title="store time (no model)")  # fmt: skip
    a.legend(fontsize=7)
    for b, store in zip(axes[1:], stores):
        latency_panel(b, [r for r in rows if r["store"] == store], store)
    if len(stores) == 2:  # the same axes, so the two stores' latencies compare at a glance
        axes[2].sharex(axes[1])
        axes[2].sharey(axes[1])
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def latency_panel(ax, rows: list[dict], store: str) -> None:
    x = [r["chunks"] for r in rows]
    for mode in MODES:
        ax.plot(x, [r["query_ms"][mode]["p50"] for r in rows], "o-", label=f"{mode} p50")
        ax.plot(x, [r["query_ms"][mode]["p95"] for r in rows], "x--", label=f"{mode} p95")
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel="chunks", ylabel="ms", title=f"warm query latency, {store} (k=10)")
    ax.legend(fontsize=7)


if __name__ == "__main__":
    main()
