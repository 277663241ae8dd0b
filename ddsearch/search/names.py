"""Named systems: the papers a question names ("how does Raft elect a leader?" names raft).

A paper's names are its catalog ``names`` ("GFS", "Google File System"), else the lead of its
title where that is a name ("Dynamo: Amazon's Highly Available Key-value Store" -> "Dynamo").
Names match whole words, case and punctuation aside ("ZooKeeper's", "zookeeper"), the longest
first, so "Paxos Commit" is one name and not "Paxos" plus a word. A camel-case name typed apart
("Map Reduce", "Zoo-Keeper"), or a one-word name typed as two capitalised words ("Big Table"),
is read as the name before anything matches it (Names.joined).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass

from ddsearch.models import Paper, Respelling
from ddsearch.search.rank import canonical

_LEAD = re.compile(r"^([^:,]+?)\s*(?::|,|\s-\s)")
# the words inside a name written in camel case: "MapReduce" -> "Map", "Reduce"; "RocksDB" ->
# "Rocks", "DB"
_CAMEL_PART = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z][a-z]+|[a-z]+|\d+")
MAX_LEAD_WORDS = 1  # "Dynamo:" is a name; "Distributed Systems - Towards ..." is not
# "Big Table" for Bigtable: each word a name is typed apart into has this many letters or more
MIN_PART = 3


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


def camel_split(name: str) -> tuple[str, ...] | None:
    """A one-word name in camel case as the words readers type it apart in ("Map", "Reduce";
    "Foundation", "DB"); None for any other name, or where a part would be one letter."""
    if not re.fullmatch(r"\w+", name) or not re.search(r"[a-z][A-Z]", name):
        return None
    parts = tuple(_CAMEL_PART.findall(name))
    if "".join(parts) != name or min(map(len, parts)) < 2:
        return None
    return parts


def word_split(name: str, taken: Container[tuple[str, ...]] = ()) -> str | None:
    """A pattern for a one-word name that camel_split does not part, typed as two words each
    with a capital ("Big Table", "Mega-Store" for Bigtable, Megastore), wherever the name parts
    with at least MIN_PART letters a side and the two words are not a name ``taken``; None for
    any other name. The capitals are asked for because in lower case the words are mostly just
    words ("a big table")."""
    if not name.isalpha() or camel_split(name) or len(name) < 2 * MIN_PART:
        return None
    word = name.lower()

    def typed(part: str) -> str:  # a capital, then the rest in any case
        return f"[{part[0].upper()}](?i:{re.escape(part[1:])})"

    splits = [
        f"{typed(word[:k])}[\\s-]+{typed(word[k:])}"
        for k in range(MIN_PART, len(word) - MIN_PART + 1)
        if (word[:k], word[k:]) not in taken
    ]
    return "|".join(splits) or None


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
        # each name readers type apart: a camel-case name where its capitals part it, in any
        # case ("map reduce"), not where the words apart are a name of their own ("Le Lann"
        # beside "LeLann"); a one-word name as two capitalised words (word_split)
        apart: dict[str, str] = {}
        for name in sorted(set(spelled.values()), key=lambda n: (-len(n), n)):
            parts = camel_split(name)
            if parts and tuple(canonical(" ".join(parts)).split()) not in table:
                apart[name] = "(?i:" + r"[\s-]+".join(map(re.escape, parts)) + ")"
            elif not parts and (pattern := word_split(name, table)):
                apart[name] = pattern
        # one pattern, a group per name (the longer first): the group that matched names it
        groups = "|".join(f"(?P<n{i}>{p})" for i, p in enumerate(apart.values()))
        self._apart = (re.compile(rf"\b(?:{groups})\b") if apart else None, list(apart))
        self._spelled = spelled
        self._of_letters: dict[int, dict[str, str]] = {}
        self._longest = max((len(w) for w in table), default=0)

    def __bool__(self) -> bool:
        return bool(self._table)

    def joined(self, question: str) -> tuple[str, tuple[Respelling, ...]]:
        """The question with each name typed apart (a camel-case name, "Map Reduce",
        "zoo-keeper"; a one-word name as two capitalised words, "Big Table") written as the
        name is, and what was read so: every reader of the question, the model's included,
        then sees the name as the papers write it."""
        pattern, names = self._apart
        if pattern is None:
            return question, ()

        def written(found: re.Match) -> str:
            return names[int((found.lastgroup or "n0")[1:])]

        read = tuple(Respelling(f.group(0), written(f)) for f in pattern.finditer(question))
        return pattern.sub(written, question), read

    def of_letters(self, letters: int) -> dict[str, str]:
        """The one-word names of so many letters: lower case -> as written ("raft": "Raft");
        read once, as every question asks for them."""
        if letters not in self._of_letters:
            self._of_letters[letters] = {
                key[0]: self._spelled[key]
                for key in self._table
                if len(key) == 1 and len(key[0]) == letters and key[0].isalpha()
            }
        return self._of_letters[letters]

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
