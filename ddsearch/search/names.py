"""Named systems: the papers a question names ("how does Raft elect a leader?" names raft).

A paper's names are its catalog ``names`` ("GFS", "Google File System"), else the lead of its
title where that is a name ("Dynamo: Amazon's Highly Available Key-value Store" -> "Dynamo").
Names match whole words, case and punctuation aside ("ZooKeeper's", "zookeeper"), the longest
first, so "Paxos Commit" is one name and not "Paxos" plus a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ddsearch.models import Paper
from ddsearch.search.rank import canonical

_LEAD = re.compile(r"^([^:,]+?)\s*(?::|,|\s-\s)")
MAX_LEAD_WORDS = 1  # "Dynamo:" is a name; "Distributed Systems - Towards ..." is not


def paper_names(paper: Paper) -> tuple[str, ...]:
    """What a question may call ``paper`` by."""
    if paper.names is not None:
        return paper.names
    lead = _LEAD.match(paper.title)
    if not lead:
        return ()
    words = lead.group(1).split()
    if len(words) > MAX_LEAD_WORDS or not all(w[:1].isupper() or w[:1].isdigit() for w in words):
        return ()
    return (lead.group(1),)


@dataclass(frozen=True)
class Mention:
    """A name found in a question: its words' place in the canonical query, and its papers."""

    name: str
    start: int  # word index in canonical(query)
    end: int
    papers: frozenset[str]


class Names:
    """Every paper's names, looked up by their canonical words."""

    def __init__(self, papers: Iterable[Paper]):
        table: dict[tuple[str, ...], set[str]] = {}
        spelled: dict[tuple[str, ...], str] = {}
        for paper in papers:
            for name in paper_names(paper):
                words = tuple(canonical(name).split())
                # "Google's file system" is the Google File System: a possessive after the
                # first word of a longer name
                variants = [words, (words[0], "s", *words[1:])] if len(words) > 1 else [words]
                for key in variants if words else ():
                    table.setdefault(key, set()).add(paper.id)
                    spelled.setdefault(key, name)
        self._table = {w: frozenset(ids) for w, ids in table.items()}
        self._spelled = spelled
        self._longest = max((len(w) for w in table), default=0)

    def __bool__(self) -> bool:
        return bool(self._table)

    def find(self, query: str) -> list[Mention]:
        """The names in ``query``, in order; a possessive or plural "s" after one is allowed."""
        words = canonical(query).split()
        found, i = [], 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                key = tuple(words[i : i + n])
                if key not in self._table and key[-1].endswith("s"):
                    key = (*key[:-1], key[-1][:-1])  # "CRDTs", "Raft's" (canonical: "raft s")
                if key in self._table:
                    end = i + n + (i + n < len(words) and words[i + n] == "s")
                    found.append(Mention(self._spelled[key], i, end, self._table[key]))
                    i = end
                    break
            else:
                i += 1
        return found

    def without(self, query: str, mentions: list[Mention]) -> str:
        """The canonical query less the named words: what to match inside the named papers,
        where every passage says the name."""
        words = canonical(query).split()
        named = {j for m in mentions for j in range(m.start, m.end)}
        return " ".join(w for j, w in enumerate(words) if j not in named)
