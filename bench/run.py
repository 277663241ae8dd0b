"""Benchmark ddsearch on the shared corpus: ingest stages, model limit, query latency, memory.

    python bench/run.py [--papers ../shared/papers] [--questions ../shared/eval/dev.jsonl]
                        [--baseline DIR]

``--baseline DIR`` (a checkout of an earlier ddsearch, e.g. ``git worktree add /tmp/base REV``)
also times that code's full ingest in the same run, so the two are compared on one machine.

Writes bench/out/bench.json and bench/out/bench.md. Numbers, not assertions: nothing here
fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wait4_measured(cmd: list[str], env: dict, cwd: Path = ROOT) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process, run in ``cwd`` (which
    ``python -c`` puts first on sys.path: it decides which ddsearch the child imports).

    The child's own peak comes from GNU time where it is installed: a forked child's rusage
    would start from this (large) process's high-water mark."""
    timer = shutil.which("time") or "/usr/bin/time"
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        wrapped = [timer, "-f", "%M", "-o", str(rss_file), *cmd] if Path(timer).exists() else cmd
        started = time.perf_counter()
        proc = subprocess.run(wrapped, env=env, capture_output=True, text=True, cwd=cwd)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-400:]}")
        rss = float(rss_file.read_text().split()[-1]) / 1024 if rss_file.exists() else float("nan")
        return wall, rss, proc.stdout


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    idx = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[idx]


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--papers", type=Path, default=ROOT.parent / "shared" / "papers")
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each cold command")
    ap.add_argument("--baseline", type=Path, help="an earlier checkout to time ingest against")
    args = ap.parse_args()

    from ddsearch.catalog import load_catalog
    from ddsearch.config import Settings
    from ddsearch.index.embed import Embedder
    from ddsearch.index.store import Store
    from ddsearch.ingest.pipeline import _fit

    home = Path(tempfile.mkdtemp(prefix="ddsearch-bench-"))
    env = {**os.environ, "DDSEARCH_HOME": str(home)}
    # a user's install keeps compiled bytecode; a sandbox that forbids writing it would time
    # recompiling every module on each cold start instead
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    exe = [sys.executable, "-m", "ddsearch.cli"]
    results: dict = {
        "machine": f"{cpu_name()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    try:
        # a model export happens once per data home; do it outside the timed ingest
        Embedder(stamp_dir=home).encode(["warm-up"])
        Embedder(stamp_dir=home, int8=True).encode(["warm-up"])

        report_file = home / "report.json"
        code = (
            "import json,sys; from pathlib import Path; from ddsearch.config import Settings;"
            "from ddsearch.catalog import load_catalog; from ddsearch.ingest.pipeline import ingest;"
            f"r=ingest(Settings(home=Path({str(home)!r})), load_catalog(), [Path({str(args.papers)!r})]);"
            f"Path({str(report_file)!r}).write_text(json.dumps({{'seconds': r.seconds, "
            "'stages': r.stages, 'pages': r.pages, 'chunks': sum(o.chunks for o in r.of('ingested')),"
            "'failed': [o.paper_id for o in r.of('failed')]}))"
        )
        wall, rss, _ = wait4_measured([sys.executable, "-c", code], env)
        ingest = json.loads(report_file.read_text())
        results["ingest"] = {"wall_s": wall, "peak_rss_mb": rss, **ingest}

        wall, _, _ = wait4_measured([sys.executable, "-c", code], env)
        results["reingest_unchanged_s"] = wall

        if args.baseline:
            base_home = Path(tempfile.mkdtemp(prefix="ddsearch-bench-base-"))
            base_env = {**env, "DDSEARCH_HOME": str(base_home),
                        "PYTHONPATH": str(args.baseline.resolve())}  # fmt: skip
            warm = (
                "from ddsearch.index.embed import Embedder; from pathlib import Path; "
                + "; ".join(
                    f"Embedder(stamp_dir=Path({str(base_home)!r}), int8={b}).encode(['warm-up'])"
                    for b in (False, True)
                )
            )
            base = args.baseline.resolve()
            subprocess.run([sys.executable, "-c", warm], env=base_env, check=True, cwd=base)
            base_code = code.replace(str(home), str(base_home))
            wall, _, _ = wait4_measured([sys.executable, "-c", base_code], base_env, base)
            check = "import ddsearch, sys; print(ddsearch.__file__)"
            _, _, where = wait4_measured([sys.executable, "-c", check], base_env, base)
            if not where.strip().startswith(str(base)):  # the baseline must be what is timed
                raise SystemExit(f"--baseline ran {where.strip()}, not the code in {base}")
            results["baseline_ingest_s"] = wall
            results["baseline_index_mb"] = (
                dir_size(base_home) - dir_size(base_home / "models")
            ) / 2**20
            shutil.rmtree(base_home, ignore_errors=True)

        store = Store(home, readonly=True)
        catalog = load_catalog()
        embedder = Embedder(stamp_dir=home, int8=Settings().int8)  # the encoder ingest used
        texts = []
        for pid, rec in store.records().items():
            paper = catalog.get(pid) or rec.paper
            texts += _fit(paper, store.chunks_of(pid), embedder, Settings(home=home))
        tokens = sum(embedder.count_tokens(texts))
        started = time.perf_counter()
        embedder.encode(texts)
        raw = time.perf_counter() - started
        results["model_raw"] = {"chunks": len(texts), "tokens": tokens, "seconds": raw,
                                "tokens_per_s": tokens / raw}  # fmt: skip
        emb = ingest["stages"].get("embed", 0.0)
        results["ingest"]["tokens_per_s"] = tokens / ingest["seconds"]
        results["ingest"]["pages_per_s"] = ingest["pages"] / ingest["seconds"]
        results["ingest_vs_raw_model"] = raw / ingest["seconds"]
        results["embed_stage_vs_raw_model"] = raw / emb if emb else None

        q = "how does Raft elect a leader?"
        subprocess.run(exe + ["query", q], env=env, capture_output=True, check=True)  # bytecode
        colds, rsses = [], []
        for _ in range(args.repeat):
            wall, rss, _ = wait4_measured(exe + ["query", q], env)
            colds.append(wall)
            rsses.append(rss)
        helps = [wait4_measured(exe + ["--help"], env)[0] for _ in range(args.repeat)]
        floor = [sys.executable, "-c", "import numpy, onnxruntime, tokenizers"]
        results["startup_floor_s"] = statistics.median(
            wait4_measured(floor, env)[0] for _ in range(args.repeat)
        )
        results["cold_query_s"] = statistics.median(colds)
        results["query_peak_rss_mb"] = max(rsses)
        results["help_s"] = statistics.median(helps)

        from ddsearch.search.evaluate import load_questions
        from ddsearch.search.searcher import Searcher

        searcher = Searcher(home, catalog=catalog)
        questions = [x.question for x in load_questions(args.questions)]
        searcher.search(questions[0])
        lat, lat_quotes = [], []
        for question in questions:
            started = time.perf_counter()
            hits = searcher.search(question, 10)
            lat.append(time.perf_counter() - started)
            searcher.add_quotes(question, hits)
            lat_quotes.append(time.perf_counter() - started)
        results["warm_query_ms"] = {
            "p50": 1000 * percentile(lat, 50), "p95": 1000 * percentile(lat, 95),
            "with_quotes_p50": 1000 * percentile(lat_quotes, 50),
            "with_quotes_p95": 1000 * percentile(lat_quotes, 95),
        }  # fmt: skip
        store.close()
        results["index_mb"] = {
            "sqlite": dir_size(home) - dir_size(home / "chroma") - dir_size(home / "models"),
            "chroma": dir_size(home / "chroma"),
        }
        results["index_mb"] = {k: v / 2**20 for k, v in results["index_mb"].items()}
    finally:
        shutil.rmtree(home, ignore_errors=True)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench.json").write_text(json.dumps(results, indent=2))
    (args.out / "bench.md").write_text(markdown(results))
    print(markdown(results))


def markdown(r: dict) -> str:
    i, st, w = r["ingest"], r["ingest"]["stages"], r["warm_query_ms"]
    rows = [
        ("full ingest, wall", f"{i['wall_s']:.1f} s ({i['pages']} pages, {i['chunks']} chunks)"),
        ("  of which extract / chunk / references (worker)",
         f"{st.get('extract', 0):.1f} s / {st.get('chunk', 0):.1f} s / {st.get('references', 0):.1f} s"),
        ("  of which embed / store", f"{st.get('embed', 0):.1f} s / {st.get('store', 0):.1f} s"),
        ("ingest throughput", f"{i['pages_per_s']:.1f} pages/s, {i['tokens_per_s']:.0f} tokens/s"),
        ("raw model on the same chunks", f"{r['model_raw']['seconds']:.1f} s, {r['model_raw']['tokens_per_s']:.0f} tokens/s"),
        ("ingest vs raw model (raw/ingest)", f"{r['ingest_vs_raw_model']:.2f}"),
        ("unchanged re-ingest, wall", f"{r['reingest_unchanged_s']:.1f} s"),
        ("cold `ddsearch query` (k=10, quotes), wall (median)", f"{r['cold_query_s']:.2f} s"),
        ("start-up floor `python -c 'import numpy, onnxruntime, tokenizers'` (median)",
         f"{r['startup_floor_s']:.2f} s (cold query = {r['cold_query_s'] / r['startup_floor_s']:.1f}x)"),
        ("`ddsearch --help`, wall (median)", f"{r['help_s']:.2f} s"),
        ("warm query p50 / p95 (search)", f"{w['p50']:.0f} / {w['p95']:.0f} ms"),
        ("warm query p50 / p95 (search + quotes)", f"{w['with_quotes_p50']:.0f} / {w['with_quotes_p95']:.0f} ms"),
        ("peak RSS ingest / query", f"{i['peak_rss_mb']:.0f} / {r['query_peak_rss_mb']:.0f} MB"),
        ("index on disk (SQLite / Chroma)", f"{r['index_mb']['sqlite']:.0f} / {r['index_mb']['chroma']:.0f} MB"),
    ]  # fmt: skip
    if "baseline_ingest_s" in r:
        rows.insert(
            1,
            (
                "baseline full ingest (--baseline), same run",
                f"{r['baseline_ingest_s']:.1f} s (this one {i['wall_s'] / r['baseline_ingest_s']:.2f}x)",
            ),
        )
        rows.append(("baseline index on disk (all files)", f"{r['baseline_index_mb']:.0f} MB"))
    out = [f"Machine: {r['machine']}; {r['date']}.", "", "| measure | value |", "|---|---|"]
    out += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
