"""Turning per-ranker candidate lists into one ranking."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TypeVar

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our ours out over own same she
    should so some such than that the their theirs them then there these they this those through
    to too under until up very was we were what when where which while who whom why will with
    would you your yours paper papers describe described describes say says said does did""".split()  # noqa: SIM905
)
Ranking = list[tuple[int, float]]  # (id, score), best first
T = TypeVar("T")
_TOKEN = re.compile(r"[^\W_]+", re.U)


def canonical(query: str) -> str:
    """The query as the rankers see it: case, punctuation and spacing never change a ranking
    (fusion.asking alone reads the question as typed, for where a leading "In <system>, "
    phrase ends)."""
    import unicodedata

    text = unicodedata.normalize("NFKC", query).lower()
    return " ".join(_TOKEN.findall(text))


# a request wrapped around the question ("Can you tell me ...", "Explain ...", "I'd like to
# know whether ..."): it says nothing of what is asked, and kept it would hide a leading
# "In <system>, " phrase (fusion.asking) and match "tell" and "explain" in the papers
_REQUEST = re.compile(
    r"""^\s*(?:(?:hi|hello|hey)\b[\s,!.]*)?(?:(?:quick\s+)?question\s*:\s*)?(?:please[\s,]+)?
    (?:(?:(?:can|could|would|will)\s+(?:you|someone|anyone)\s+(?:please\s+)?)?
        (?:(?:tell|show|remind)\s+(?:me|us)|(?:explain|describe|summari[sz]e)
          (?:\s+(?:to\s+)?(?:me|us))?)\b
      |i(?:['’]d|\s+would)\s+like\s+to\s+(?:know|understand|learn)\b
      |i\s+(?:want|wanted|need)\s+to\s+(?:know|understand|learn)\b
      |i(?:['’]m|\s+am)\s+(?:curious|wondering|trying\s+to\s+understand)\b
      |i\s+wonder\b
      |(?:do\s+you|does\s+anyone)\s+know\b
    )?(?:\s+(?:about|on|whether)\b)?[\s,:]*""",
    re.I | re.X,
)


# "I'm reading about Google's lock service. How long is a lease?": a sentence that only says
# which system, then the question; read as the label it is ("Google's lock service: how ...")
_CONTEXT = re.compile(
    r"""^\s*(?:i(?:['’]m|\s+am|\s+was)\s+(?:reading|studying|looking\s+at|learning)
        (?:\s+(?:about|up\s+on))?|(?:(?:a|one|quick)\s+)?question\s+(?:about|on))
    \s+(?P<system>[^.?!:;]{3,200}?)\s*[.;:!]\s+(?=\S)""",
    re.I | re.X,
)


def unwrapped(question: str) -> str:
    """The question without a request wrapped around it ("Can you tell me how Raft elects a
    leader?" asks "how Raft elects a leader?"; "I'm reading about Raft. How ...?" asks "Raft:
    how ...?"); as typed when nothing else is left."""
    context = _CONTEXT.match(question)
    if context:
        rest = f"{context.group('system')}: {question[context.end() :]}"
    else:
        found = _REQUEST.match(question)
        rest = question[found.end() :] if found else question
    return rest if query_terms(rest) else question


def query_terms(text: str) -> list[str]:
    """Lower-cased content words of a query, in order, without repeats."""
    terms = [t.lower() for t in _TOKEN.findall(text)]
    seen = dict.fromkeys(t for t in terms if t not in STOPWORDS and (len(t) > 1 or t.isdigit()))
    return list(seen)


def fts_match(text: str) -> str | None:
    """An FTS5 MATCH expression OR-ing the query's terms, each quoted so no syntax leaks in."""
    terms = query_terms(text)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


def normalise(ranking: Ranking) -> dict[int, float]:
    """Min-max normalised scores of one ranker's candidates: its best 1, its worst 0."""
    if not ranking:
        return {}
    scores = [s for _, s in ranking]
    lo, hi = min(scores), max(scores)
    return {item: (s - lo) / (hi - lo) if hi > lo else 1.0 for item, s in ranking}


def fuse(runs: Sequence[tuple[Ranking, float]]) -> dict[int, float]:
    """A convex combination of rankers' min-max normalised scores: {id: score}.

    ``runs`` holds each ranker's (id, score) candidates, best first, and its weight; an id a
    ranker did not return counts as that ranker's worst candidate (0). Unlike rank fusion, a
    ranker that is sure of its first answer keeps that margin.
    """
    fused: dict[int, float] = {}
    for ranking, weight in runs:
        for item, share in normalise(ranking).items():
            fused[item] = fused.get(item, 0.0) + weight * share
    return fused


_KINDS = r"(?:papers|systems|designs|protocols|databases|services|algorithms)"
_LIST_QUESTION = re.compile(
    # "Which systems ...", "In which papers ...", "Across the list, which protocols ...";
    # not "How can a company tell which services ..." (a question about one system)
    rf"(?:^\s*|[,;:]\s*|\b(?:in|among|across|of|for|from)\s+)(?:which|what)\s+(?:\w+\s+){{0,2}}?"
    rf"{_KINDS}\b"
    # "List the systems that ...", "Name all protocols that ..."
    rf"|^\s*(?:list|name)\s+(?:the\s+|all\s+|every\s+)?(?:\w+\s+)?{_KINDS}\b",
    re.I,
)


def asks_for_many_papers(query: str) -> bool:
    """'Which systems checksum their data ...?': the answer is a list of papers."""
    return bool(_LIST_QUESTION.search(query))


def diversify(
    ranked: Sequence[T],
    paper: Callable[[T], str],
    free: int,
    per_paper: int,
) -> list[T]:
    """Keep the top ``free`` as ranked; below, defer hits of papers already shown ``per_paper``
    times, so a question several papers answer sees more of them in the first page of results.
    """
    head: list[T] = []
    deferred: list[T] = []
    shown: Counter[str] = Counter()
    for item in ranked:
        p = paper(item)
        if len(head) < free or shown[p] < per_paper:
            head.append(item)
            shown[p] += 1
        else:
            deferred.append(item)
    return head + deferred


def union(a: Ranking, b: Ranking) -> Ranking:
    """Two candidate lists of one ranker for one query, as one, best first."""
    best = dict(a)
    for item, score in b:
        best[item] = max(score, best.get(item, score))
    return sorted(best.items(), key=lambda t: -t[1])


def named_first(ranked: Sequence[T], paper: Callable[[T], str], groups, free: int = 1) -> list[T]:
    """The top ``free`` as ranked, then the best hit of each group of papers (one group per name
    the question gives) not yet shown, then the rest as ranked."""
    head, rest = list(ranked[:free]), []
    left = [g for g in groups if not any(paper(item) in g for item in head)]
    for item in ranked[free:]:
        group = next((g for g in left if paper(item) in g), None)
        if group is not None:
            head.append(item)
            left.remove(group)
        else:
            rest.append(item)
    return head + rest
