"""Where the answer sentence is when a quote misses it (issue #27: "the answer, not its setup").

    python bench/quote_misses.py --home HOME [--part tune|held|all] [--list]

For every question of ../shared/eval/dev.jsonl and dev-reader.jsonl (the part of
bench/dev-split.json / dev-reader-split.json asked for) whose first relevant hit's quote does
not hold the gold quote, the hit's sentences that hold the gold (as bench/fit_quote.py labels
a sentence) are located against the quote: the sentence right after it, further after, before
it, inside it (the gold spans sentences the quote holds only some of), in another of the
index's chunks merged into the hit (a quote is chosen inside one chunk), or nowhere in the hit
(a retrieval miss, not a quote miss). The counts say which structural signal could pay before
one is fitted: a "next sentence" rule can only win the first column.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fit_quote import label  # noqa: E402

from ddsearch.catalog import load_catalog  # noqa: E402
from ddsearch.search.evaluate import (  # noqa: E402
    _relevant,
    load_questions,
    load_split,
    quote_holds,
    select,
)
from ddsearch.search.searcher import Searcher  # noqa: E402

SETS = (("dev", "bench/dev-split.json"), ("dev-reader", "bench/dev-reader-split.json"))
PLACES = ("next", "after", "before", "partly quoted", "other chunk", "not in hit")


def place(hit, golds: tuple[str, ...]) -> str:
    """Where the gold sentence nearest the quote stands, seen from the quote."""
    parts = hit.parts or (hit.chunk,)
    quoted = next((p for p in parts if hit.quote and hit.quote in p.text), None)
    if quoted is None:
        return "not in hit"
    texts = [quoted.text[s.start : s.end] for s in quoted.sentences]
    gold = [i for i, t in enumerate(texts) if label(t, golds)]
    if not gold:
        other = any(
            label(p.text[s.start : s.end], golds)
            for p in parts
            if p is not quoted
            for s in p.sentences
        )
        return "other chunk" if other else "not in hit"
    inside = [i for i, t in enumerate(texts) if t in hit.quote]
    last = max(inside, default=-1)
    if set(gold) & set(inside):
        return "partly quoted"
    if any(i == last + 1 for i in gold):
        return "next"
    return "after" if any(i > last for i in gold) else "before"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--part", choices=["tune", "held", "all"], default="tune")
    ap.add_argument("--list", action="store_true", help="print each missed question's place")
    args = ap.parse_args()
    searcher = Searcher(args.home, catalog=load_catalog())
    searcher.warm()
    for name, split in SETS:
        questions = load_questions(REPO.parent / "shared/eval" / f"{name}.jsonl")
        chosen = select(questions, load_split(REPO / split), args.part)
        counts: Counter[str] = Counter()
        for q in chosen:
            if not q.quotes:
                continue
            hits = searcher.search(q.question, k=10)
            searcher.add_quotes(q.question, hits)
            first = next((h for h in hits if _relevant(h, q)), None)
            if first is None:
                continue
            counts["relevant"] += 1
            if any(quote_holds(first.quote, g) for g in q.quotes):
                continue
            where = place(first, q.quotes)
            counts[where] += 1
            if args.list:
                print(f"  {q.id:<28} {where}")
        missed = sum(counts[p] for p in PLACES)
        print(
            f"{name} {args.part}: {counts['relevant']} questions with a relevant hit, "
            f"{missed} quotes miss: " + ", ".join(f"{p} {counts[p]}" for p in PLACES)
        )


if __name__ == "__main__":
    main()
