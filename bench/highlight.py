"""Speed of the page views (issue 29), as ratios measured in one run, interleaved:

    python bench/highlight.py --home DIR [--questions ../shared/eval/dev.jsonl] [--n 40]
                              [--baseline CHECKOUT]

1. draw: per dev question's top hit, pdfium's bare render of the cited page (opened afresh,
   scale 1.5) against the highlighted one: the quote found on the page, the page drawn and
   highlighted (afresh too); and against /page's work when the marks are given. Each pair is
   timed back to back, so the machine's load falls on both alike.
2. packet: the reading packet of 10 hits (their highlights found afresh, the PDF written).
3. serve: /search p50 with and without the page view in place, i.e. while browsers fetch the
   results' crops; with --baseline (a checkout of the code before, e.g. `git worktree add
   /tmp/base 905236b`), also /search p50 of that code's server on the same home, the requests
   alternating between the two.

DIR is an indexed data home; it is only read. Prints medians and ratios, by the wall clock and
by the CPU time of this process (which a busy machine does not inflate), and the load
average; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests"))


def median_ms(values) -> float:
    return 1000 * statistics.median(list(values))


def questions(path: Path, n: int) -> list[str]:
    lines = [json.loads(line)["question"] for line in path.read_text().splitlines() if line]
    return lines[:n]


def top_hits(home: Path, qs: list[str], k: int = 1):
    from ddsearch.catalog import load_catalog
    from ddsearch.search.searcher import Searcher

    searcher = Searcher(home, catalog=load_catalog())
    searcher.warm()
    out = []
    for q in qs:
        hits = searcher.search(q, k)
        searcher.add_quotes(q, hits)
        out.append((q, hits))
    return searcher, out


def bench_draw(home: Path, searcher, found) -> dict:
    import pypdfium2 as pdfium

    from ddsearch.config import Settings
    from ddsearch.search.highlight import Highlighter
    from ddsearch.search.pdfs import Pdfs
    from ddsearch.search.render import draw, png

    cache = Settings(home=home).pdf_cache
    pdfs = Pdfs(cache)  # as in serve: each file's sha256 checked once, then documents reopened
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "lit": [], "marked": [], "png": []}

    def timed(name, job, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        out = job(*args)
        times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        return out

    def bare(path, number):
        doc = pdfium.PdfDocument(str(path))
        doc[number - 1].render(scale=1.5, rev_byteorder=True).to_numpy().copy()
        doc.close()

    def lit(record, hit, path, number):
        where = Highlighter(pdfs).locate(record, sorted(hit.cited_pages), hit.quote)
        marks = next((h.rects for h in where if h.page == number), ())
        image, _ = draw(pdfs, path, number, scale=1.5, marks=marks)
        pdfs.close()
        return marks

    def marked(path, number, marks):
        image, _ = draw(pdfs, path, number, scale=1.5, marks=marks)
        pdfs.close()
        return image

    for _, hits in found:
        hit = hits[0]
        record = searcher.records[hit.paper.id]
        path = pdfs.path(record)
        number = min(hit.cited_pages)
        for _ in range(2):  # the second round reads the file from the OS cache, as the first
            timed("bare", bare, path, number)
            marks = timed("lit", lit, record, hit, path, number)
            image = timed("marked", marked, path, number, marks)
            timed("png", png, image)
    out = {"pages": len(times["bare"])}
    for k, clock in enumerate(("wall", "cpu")):
        b, h, m = (median_ms(t[k] for t in times[n]) for n in ("bare", "lit", "marked"))
        out[clock] = {
            "bare_render_ms": round(b, 1),
            "highlighted_ms": round(h, 1),
            "with_marks_ms": round(m, 1),
            "png_encode_ms": round(median_ms(t[k] for t in times["png"]), 1),
            "ratio_highlighted": round(h / b, 2),
            "ratio_with_marks": round(m / b, 2),
        }
    return out


def bench_packet(home: Path, searcher, qs: list[str], rounds: int = 5) -> dict:
    from ddsearch.config import Settings
    from ddsearch.search.highlight import Highlighter
    from ddsearch.search.packet import packet
    from ddsearch.search.pdfs import Pdfs

    keys = searcher.citation_keys()
    wall, cpu, sizes = [], [], []
    for q in qs[:rounds]:
        hits = searcher.search(q, 10)
        searcher.add_quotes(q, hits)
        started, used = time.perf_counter(), time.process_time()
        pdfs = Pdfs(Settings(home=home).pdf_cache)
        Highlighter(pdfs).add(hits, searcher.records)
        data, _ = packet(q, hits, keys, pdfs, searcher.records)
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)
        sizes.append(len(data))
        pdfs.close()
    return {"packets": len(wall), "hits": 10, "median_wall_s": round(statistics.median(wall), 2),
            "median_cpu_s": round(statistics.median(cpu), 2),
            "max_wall_s": round(max(wall), 2), "median_mb": round(statistics.median(sizes) / 1e6, 1)}  # fmt: skip


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as r:
        return r.read()


def bench_serve(home: Path, qs: list[str], baseline: Path | None, rounds: int = 3) -> dict:
    import contextlib

    from _servers import ddsearch_server

    times: dict[str, list[float]] = {"alone": [], "page_view": [], "baseline": []}
    crops: list[str] = []
    stop = threading.Event()

    def browsers(base: str) -> None:  # fetch the crops of the last results, as a page view does
        while not stop.is_set():
            for src in list(crops):
                if stop.is_set():
                    break
                with contextlib.suppress(OSError):
                    _get(base + src)

    with contextlib.ExitStack() as stack:
        url = stack.enter_context(ddsearch_server(home))
        other = None
        if baseline is not None:
            env = {"PYTHONPATH": str(baseline)}
            other = stack.enter_context(ddsearch_server(home, env=env))
            _get(f"{other}/search?q=warm+up&k=10")
        _get(f"{url}/search?q=warm+up&k=10")
        for _ in range(rounds):
            for phase in ("alone", "page_view"):
                thread = None
                if phase == "page_view":
                    stop.clear()
                    thread = threading.Thread(target=browsers, args=(url,), daemon=True)
                    thread.start()
                for q in qs:
                    t = time.perf_counter()
                    body = _get(f"{url}/search?q={quote(q)}&k=10")
                    times[phase].append(time.perf_counter() - t)
                    if other is not None and phase == "alone":
                        t = time.perf_counter()
                        _get(f"{other}/search?q={quote(q)}&k=10")
                        times["baseline"].append(time.perf_counter() - t)
                    if phase == "page_view":
                        results = json.loads(body)["results"]
                        crops[:] = _crops(results)
                if thread is not None:
                    stop.set()
                    thread.join(60)
    out = {name: round(median_ms(v), 1) for name, v in times.items() if v}
    out["searches"] = len(times["alone"])
    out["ratio_page_view"] = round(out["page_view"] / out["alone"], 3)
    if times["baseline"]:
        out["ratio_to_baseline"] = round(out["alone"] / out["baseline"], 3)
    return {f"search_p50_ms_{k}" if not k.startswith(("ratio", "searches")) else k: v
            for k, v in out.items()}  # fmt: skip


def _crops(results: list[dict]) -> list[str]:
    out = []
    for r in results:
        for h in r["highlight"][:1]:
            marks = "&".join("mark=" + ",".join(f"{v:g}" for v in rect) for rect in h["rects"])
            out.append(f"/page/{quote(r['paper'], safe='')}/{h['page']}.png?{marks}"
                       "&crop=1&scale=1.5")  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True, help="an indexed data home (only read)")
    ap.add_argument("--questions", type=Path, default=SHARED / "eval" / "dev.jsonl")
    ap.add_argument("--n", type=int, default=40, help="dev questions (their top hits' pages)")
    ap.add_argument("--baseline", type=Path, help="a checkout of the code to compare /search with")
    ap.add_argument("--skip-serve", action="store_true")
    a = ap.parse_args()
    qs = questions(a.questions, a.n)
    searcher, found = top_hits(a.home, qs)
    found = [(q, hits) for q, hits in found if hits and hits[0].quote]
    report = {"draw": bench_draw(a.home, searcher, found)}
    print(json.dumps(report["draw"]), flush=True)
    report["packet"] = bench_packet(a.home, searcher, qs)
    print(json.dumps(report["packet"]), flush=True)
    if not a.skip_serve:
        report["serve"] = bench_serve(a.home, qs[:20], a.baseline)
        print(json.dumps(report["serve"]), flush=True)
    report["load_average"] = [round(x, 1) for x in __import__("os").getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
