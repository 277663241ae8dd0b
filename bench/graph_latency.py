"""How long refs, cited-by and path take, warm: in the library (Graph opened once, as serve
and MCP hold it) and as a whole command (a new process each time, after a first run).

    python bench/graph_latency.py --home DIR [--runs 15] [--paper raft] [--cited paxos-simple]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _median_ms(fn, runs: int) -> float:
    fn()  # warm: the first run reads the pages into the OS cache
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--paper", default="raft", help="the paper for refs and path")
    parser.add_argument("--cited", default="paxos-simple", help="the paper for cited-by")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from ddsearch.catalog import load_catalog
    from ddsearch.config import Settings
    from ddsearch.search.graph import Graph

    catalog = load_catalog()
    jobs = {
        "refs": lambda g: [g.edge_json(e) for e in g.refs(args.paper)],
        "cited-by": lambda g: [g.edge_json(e) for e in g.cited_by(args.cited)],
        "path": lambda g: [g.step_json(s) for s in g.path([args.paper])],
    }
    settings = Settings(home=args.home)
    graph = Graph.open(settings, catalog)
    print(f"{'command':<10} {'library (ms)':>13} {'open+answer (ms)':>17} {'process (ms)':>13}")
    for name, job in jobs.items():
        held = _median_ms(lambda job=job: job(graph), args.runs)

        def fresh(job=job):
            g = Graph.open(settings, catalog)
            try:
                job(g)
            finally:
                g.close()

        opened = _median_ms(fresh, args.runs)
        target = args.cited if name == "cited-by" else args.paper
        command = [sys.executable, "-m", "ddsearch.cli", "--home", str(args.home), name, target,
                   "--json"]  # fmt: skip
        whole = _median_ms(lambda c=command: subprocess.run(c, check=True, capture_output=True,
                                                            cwd=ROOT), args.runs)  # fmt: skip
        print(f"{name:<10} {held:13.1f} {opened:17.1f} {whole:13.1f}")
    graph.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
