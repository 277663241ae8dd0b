"""Turning per-ranker candidate lists into one ranking."""

from __future__ import annotations

import re
from collections.abc import Sequence

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our ours out over own same she
    should so some such than that the their theirs them then there these they this those through
    to too under until up very was we were what when where which while who whom why will with
    would you your yours paper papers describe described describes say says said does did""".split()  # noqa: SIM905
)
_TOKEN = re.compile(r"[^\W_]+", re.U)


def query_terms(text: str) -> list[str]:
    """Lower-cased content words of a query, in order, without repeats."""
    terms = [t.lower() for t in _TOKEN.findall(text)]
    seen = dict.fromkeys(t for t in terms if t not in STOPWORDS and (len(t) > 1 or t.isdigit()))
    return list(seen)


def fts_match(text: str) -> str | None:
    """An FTS5 MATCH expression OR-ing the query's terms, each quoted so no syntax leaks in."""
    terms = query_terms(text)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


def rrf(rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None):
    """Reciprocal rank fusion of lists of ids (best first): {id: score}."""
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, item in enumerate(ranking):
            scores[item] = scores.get(item, 0.0) + w / (k + rank + 1)
    return scores
