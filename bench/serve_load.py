"""Load on `ddsearch serve`: N concurrent clients on loopback, bounded in count and time.

    python bench/serve_load.py --papers raft chubby paxos-simple      # builds a temp home
    python bench/serve_load.py --home DIR --clients 40 --rounds 2

Starts `ddsearch serve --port 0` on 127.0.0.1, warms it with one query, then each client sends
`--rounds` searches (different dev questions, k=10, quotes) at once. Reports the status
counts, p50/p95 latency, and searches/s (200 answers over the wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO / "tests"))


def questions(path: Path) -> list[str]:
    return [json.loads(line)["question"] for line in path.read_text().splitlines() if line.strip()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="an indexed data home (default: build one)")
    ap.add_argument("--papers", nargs="+", default=["raft", "chubby", "paxos-simple"])
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=1, help="searches per client")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=120, help="per request, seconds")
    ap.add_argument("--budget", type=float, default=600, help="the whole run, seconds")
    ap.add_argument("--questions", type=Path, default=SHARED / "eval" / "dev.jsonl")
    ap.add_argument("--serve-arg", action="append", default=[], help="passed to serve")
    a = ap.parse_args()
    if not 1 <= a.clients <= 200 or not 1 <= a.rounds <= 20:
        ap.error("--clients 1-200 and --rounds 1-20")
    from _servers import cli, ddsearch_server

    qs = questions(a.questions)
    with tempfile.TemporaryDirectory() as tmp:
        home = a.home
        if home is None:
            home = Path(tmp) / "home"
            pdfs = [f"--from={SHARED / 'papers' / f'{p}.pdf'}" for p in a.papers]
            print(f"ingesting {', '.join(a.papers)} ...", file=sys.stderr)
            cli("--home", str(home), "ingest", *pdfs, "--no-progress")
        with ddsearch_server(home, *a.serve_arg) as url:
            urllib.request.urlopen(f"{url}/search?q=warm+up&k={a.k}", timeout=a.timeout).read()
            results: list[tuple[int, float]] = []
            lock = threading.Lock()
            deadline = time.monotonic() + a.budget

            def client(i: int) -> None:
                for r in range(a.rounds):
                    if time.monotonic() > deadline:
                        return
                    q = qs[(i * a.rounds + r) % len(qs)]
                    t0 = time.perf_counter()
                    try:
                        with urllib.request.urlopen(
                            f"{url}/search?q={quote(q)}&k={a.k}", timeout=a.timeout
                        ) as resp:
                            resp.read()
                            status = resp.status
                    except urllib.error.HTTPError as e:
                        status = e.code
                    except OSError:
                        status = 0  # refused, reset or timed out
                    with lock:
                        results.append((status, time.perf_counter() - t0))

            threads = [threading.Thread(target=client, args=(i,)) for i in range(a.clients)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
    counts = Counter(s for s, _ in results)
    lat = sorted(d for _, d in results)
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else 0.0
    print(
        f"{a.clients} clients x {a.rounds}: "
        + ", ".join(f"{n} x {s or 'error'}" for s, n in sorted(counts.items()))
        + f"; p50 {statistics.median(lat) if lat else 0:.2f} s, p95 {p95:.2f} s; "
        f"{counts.get(200, 0) / wall:.1f} searches/s over {wall:.1f} s (cores: {os.cpu_count()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
