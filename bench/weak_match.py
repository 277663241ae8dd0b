"""Calibrate the weak-match floors (ddsearch.config.SearchSettings weak_dense, weak_terms).

    python bench/weak_match.py --home HOME [--questions ../shared/eval/dev.jsonl]

Prints, for the tuning and held-back dev questions and for queries that match nothing in the
canon, the nearest passage's cosine and the share of query words the index holds, and how many
of each the current floors flag. Real questions must not be flagged; nonsense must be.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ddsearch.catalog import load_catalog  # noqa: E402
from ddsearch.search import searcher as searcher_module  # noqa: E402
from ddsearch.search.evaluate import load_questions, load_split, select  # noqa: E402
from ddsearch.search.rank import canonical  # noqa: E402

NONSENSE = [
    "zzqqxxy blorf", "qwertyuiop asdfgh", "blarg wibble flooz", "xkcd zorp quux",
    "lorem ipsum dolor sit amet", "banana bread recipe with walnuts", "best hiking trails in Utah",
    "how to knit a wool scarf", "who won the 1998 world cup final", "vvvvvv", "frobnicate the glorp",
    "purple elephant dancing tango", "ffffjjjj kkkk", "the the the", "asdf",
]  # fmt: skip


def evidence(searcher, query: str) -> tuple[float, float]:
    q = canonical(query)
    return searcher.dense(q, 1)[0][1], searcher.term_coverage(q)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--questions", type=Path, default=REPO.parent / "shared/eval/dev.jsonl")
    ap.add_argument("--split", type=Path, default=REPO / "bench/dev-split.json")
    args = ap.parse_args()
    searcher = searcher_module.Searcher(args.home, catalog=load_catalog())
    searcher.warm()
    questions, split = load_questions(args.questions), load_split(args.split)
    groups = {
        "tune": [q.question for q in select(questions, split, "tune")],
        "held": [q.question for q in select(questions, split, "held")],
        "nonsense": NONSENSE,
    }
    floors = (searcher.settings.weak_dense, searcher.settings.weak_terms)
    for name, queries in groups.items():
        rows = [evidence(searcher, q) for q in queries]
        dense = sorted(r[0] for r in rows)
        terms = sorted(r[1] for r in rows)
        flagged = sum(d < floors[0] or t < floors[1] for d, t in rows)
        print(
            f"{name:<9} n={len(rows):3}  dense min {dense[0]:.3f} p5 {dense[len(dense) // 20]:.3f}"
            f" max {dense[-1]:.3f}  terms min {terms[0]:.2f} max {terms[-1]:.2f}"
            f"  flagged {flagged}/{len(rows)} at floors {floors}"
        )


if __name__ == "__main__":
    main()
