"""Scaling: ingest (store) time and warm query latency as the index grows.

    python bench/scale.py [--source HOME] [--sizes 1000 10000 50000 200000]

A synthetic corpus is made from a real index (``--source``, built by ``ddsearch ingest``):
each synthetic chunk mixes the sentences of two real chunks, and its vector is the normalised
mean of theirs plus a little noise, so no model runs while the index grows (the model's cost
is measured by bench/run.py). Papers of 100 chunks go through the real ``Store.replace_paper``
(Chroma + SQLite + FTS5). Queries are real dev questions through ``Searcher.search`` (the
real query encoder, no quotes). Writes bench/out/scale.json, bench/scale.md, docs/scale.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PER_PAPER = 100


def synthetic_papers(source, count: int, rng: np.random.Generator):
    """Yield (PaperRecord, chunks, vectors) for ``count`` chunks made from the source index."""
    from ddsearch.index.store import PaperRecord
    from ddsearch.ingest.chunk import chunk_id
    from ddsearch.models import Chunk, Paper
    from ddsearch.sentences import split_sentences

    rowids, matrix, _ = source.vectors()
    texts = source.chunks(rowids.tolist())
    pool = [split_sentences(texts[int(r)].text) for r in rowids]
    made = 0
    while made < count:
        n = min(PER_PAPER, count - made)
        pid = f"synthetic-{made // PER_PAPER:05d}"
        paper = Paper(id=pid, title=f"Synthetic paper {pid}", year=2000, kind="misc")
        chunks, vectors = [], np.zeros((n, matrix.shape[1]), dtype=np.float32)
        for i in range(n):
            a, b = rng.integers(0, len(pool), size=2)
            text = " ".join(pool[a][: len(pool[a]) // 2 + 1] + pool[b][len(pool[b]) // 2 :])
            v = matrix[a] + matrix[b] + rng.normal(0, 0.02, matrix.shape[1]).astype(np.float32)
            vectors[i] = v / np.linalg.norm(v)
            chunks.append(Chunk(chunk_id(pid, i, text), pid, i, text, (i // 5 + 1,)))
        yield PaperRecord(paper, "0" * 64, "synthetic", n, "", time.time()), chunks, vectors
        made += n


def measure(size: int, source_home: Path, questions: list[str], embedder, rng) -> dict:
    from ddsearch.index.store import Store
    from ddsearch.search.searcher import Searcher

    home = Path(tempfile.mkdtemp(prefix=f"ddsearch-scale-{size}-"))
    try:
        source = Store(source_home, readonly=True)
        store = Store(home)
        model = source.model
        started = time.perf_counter()
        for record, chunks, vectors in synthetic_papers(source, size, rng):
            store.replace_paper(record, chunks, vectors, model)
        ingest = time.perf_counter() - started
        store.close()
        source.close()
        searcher = Searcher(home, embedder=embedder)
        searcher.search(questions[0])  # loads the vectors once
        lat = {"hybrid": [], "dense": [], "lexical": []}
        for q in questions:
            searcher.encode_query(q)  # the encoder's cost is the same at every size
            for mode in lat:
                t = time.perf_counter()
                searcher.search(q, 10, mode=mode)
                lat[mode].append(1000 * (time.perf_counter() - t))
        searcher.store.close()
        q = {m: {"p50": statistics.median(v), "p95": sorted(v)[int(0.95 * (len(v) - 1))]}
             for m, v in lat.items()}  # fmt: skip
        return {"chunks": size, "ingest_s": ingest, "chunks_per_s": size / ingest, "query_ms": q}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", type=Path, required=True, help="a data home built by ingest")
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000, 200000])
    ap.add_argument("--queries", type=int, default=50)
    args = ap.parse_args()

    from ddsearch.index.embed import Embedder
    from ddsearch.search.evaluate import load_questions

    questions = [q.question for q in load_questions(args.questions)][: args.queries]
    embedder = Embedder(stamp_dir=args.source)
    rng = np.random.default_rng(7)
    rows = []
    for size in args.sizes:
        row = measure(size, args.source, questions, embedder, rng)
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(rows, indent=2))
    table = ["| chunks | ingest (store) | chunks/s | hybrid p50 / p95 | dense p50 / p95 | lexical p50 / p95 |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        q = r["query_ms"]
        table.append(
            f"| {r['chunks']:,} | {r['ingest_s']:.1f} s | {r['chunks_per_s']:.0f} | "
            + " | ".join(
                f"{q[m]['p50']:.1f} / {q[m]['p95']:.1f} ms" for m in ("hybrid", "dense", "lexical")
            )
            + " |"
        )
    (ROOT / "bench" / "scale.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    plot(rows, ROOT / "docs" / "scale.png")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["chunks"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(x, [r["ingest_s"] for r in rows], "o-")
    a.set(
        xscale="log", yscale="log", xlabel="chunks", ylabel="seconds", title="store time (no model)"
    )
    for mode in ("hybrid", "dense", "lexical"):
        b.plot(x, [r["query_ms"][mode]["p50"] for r in rows], "o-", label=f"{mode} p50")
        b.plot(x, [r["query_ms"][mode]["p95"] for r in rows], "x--", label=f"{mode} p95")
    b.axhline(50, color="grey", lw=0.8, ls=":")
    b.set(xscale="log", xlabel="chunks", ylabel="ms", title="warm query latency (k=10)")
    b.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
