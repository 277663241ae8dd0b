"""Which known paper a reference entry names: the title first, the authors and year to confirm.

A known paper's title (or its title without "(Extended Version)", or the part before its
colon) is looked for anywhere in the entry, letters and digits only, so line breaks, hyphens
and lost spaces ("columnoriented") do not matter; the authors before it must be the paper's.
A journal, tech-report or extended version of the same work carries the same title, or a
close one with the same authors and year, and resolves; another paper by the same authors does
not, nor does a thesis, a talk, a web site or a software release (no title of the catalog's,
or no authors of its).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from ddsearch.models import Paper

_NOT_A_PAPER = re.compile(
    r"\b(?:thesis|dissertation|ph\.?\s?d\b|master'?s|habilitation|invited talk|keynote|"
    r"slides|patent)",
    re.I,
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20[0-4]\d)(?!\d)")
_PARTICLES = {"van", "von", "de", "der", "den", "la", "le", "di", "da", "del", "jr", "ii", "iii"}
SAME_TITLE = 90  # partial-ratio score of a long title found in the entry
SAME_SHORT_TITLE = 96  # the same for a title of fewer than _SHORT letters
_SHORT = 25
CLOSE_TITLE = 70  # token-set score of a different wording (a journal version's title)
_FUZZY_NAME = 80  # an OCR'd surname ("D~LEV") still counts as its author


def fold(text: str) -> str:
    """Lower case ASCII letters, digits and single spaces: 'Léon, J.-M.' -> 'leon j m'."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NOT_ALNUM.sub(" ", text.lower()).strip()


def _squash(text: str) -> tuple[str, list[int]]:
    """The folded text without spaces, and where each of its characters stands in ``text``."""
    chars, where = [], []
    for i, ch in enumerate(text):
        if ch.isascii():
            if ch.isalnum():
                chars.append(ch.lower())
                where.append(i)
            continue
        for c in fold(ch).replace(" ", ""):
            chars.append(c)
            where.append(i)
    return "".join(chars), where


def surname(name: str) -> str:
    """The surname of 'Leslie Lamport', 'Robbert van Renesse', 'Lamport, L.': folded."""
    name = name.strip()
    if "," in name:
        name = name.split(",")[0]
        return fold(name).split(" ")[-1] if fold(name) else ""
    words = [w for w in fold(name).split(" ") if w and w not in _PARTICLES]
    return words[-1] if words else ""


def _variants(title: str) -> list[str]:
    """The ways an entry may give a paper's title: whole, without "(Extended Version)", and
    the part before a colon or dash when it is a title on its own ("Paxos Made Live")."""
    out = [title]
    bare = re.sub(r"\s*\([^)]*\)\s*$", "", title).strip()
    if bare != title:
        out.append(bare)
    head = re.split(r"\s*(?::|\s-\s|\s–\s|\s—\s)\s*", bare, maxsplit=1)[0]
    if head != bare and len(head.split()) >= 3:
        out.append(head)
    return out


_STOP = {"a", "an", "the", "of", "for", "and", "in", "on", "to", "with", "at", "by", "from",
         "via", "its", "is", "as", "into", "using"}  # fmt: skip
# what stands between the authors and the title: initials, "and", "et al.", a year
_AFTER_AUTHORS = re.compile(
    r"(?:[\s,.;:]+|(?:[A-Z]\.\s?-?)+|[A-Z]\b|et\.? al\.?|and\b|AND\b|\(?(?:1[89]|20)\d\d[a-z]?\)?)*"
)
_TITLE_END = re.compile(r"[.?!][\"”’]?\s|[”\"]|$")


def _content(title: str) -> list[str]:
    """A title's words that carry its meaning, plural endings off: 'systems' -> 'system'."""
    words = [w for w in fold(title).split() if w not in _STOP]
    return [w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w
            for w in words]  # fmt: skip


@dataclass(frozen=True)
class _Known:
    paper: Paper
    surnames: tuple[str, ...]
    words: tuple[str, ...]  # the title's content words
    lead: tuple[str, re.Pattern] | None  # the system the title is named for ("F1: ...")


class Resolver:
    """Resolves entries against a set of known papers (the catalog, the user's .bib)."""

    def __init__(self, papers: Iterable[Paper]):
        self.known: list[_Known] = []
        self.choices: list[str] = []  # squashed title variants, for rapidfuzz's batch search
        self.owner: list[int] = []  # the index in ``known`` of each choice
        self.by_first: dict[str, list[_Known]] = {}  # first author's surname -> papers
        self.named: list[_Known] = []  # the papers named for a system
        seen: set[str] = set()
        for paper in papers:
            if paper.id in seen or not paper.title:
                continue
            seen.add(paper.id)
            names = tuple(s for s in (surname(a) for a in paper.authors) if s)
            known = _Known(paper, names, tuple(_content(paper.title)), _lead(paper.title))
            self.known.append(known)
            if names:
                self.by_first.setdefault(names[0], []).append(known)
            if known.lead:
                self.named.append(known)
            for variant in _variants(paper.title):
                squashed = _squash(variant)[0]
                if len(squashed) >= 8:
                    self.choices.append(squashed)
                    self.owner.append(len(self.known) - 1)

    def resolve(self, text: str, exclude: str | None = None) -> str | None:
        """The id of the known paper the entry ``text`` names, or None."""
        if not self.choices or _NOT_A_PAPER.search(text):
            return None
        squashed, where = _squash(text)
        if len(squashed) < 8:
            return None
        best: tuple[float, int, str] | None = None
        for _, score, i in process.extract(
            squashed, self.choices, scorer=fuzz.partial_ratio, score_cutoff=SAME_TITLE, limit=8
        ):
            known = self.known[self.owner[i]]
            if known.paper.id == exclude:
                continue
            found = self._same_title(known, self.choices[i], text, squashed, where, score)
            if found is not None and (best is None or found > best[:2]):
                best = (*found, known.paper.id)
        if best:
            return best[2]
        return self._close_title(text, exclude)

    def _same_title(self, known: _Known, title: str, text: str, squashed: str,
                    where: list[int], score: float) -> tuple[float, int] | None:  # fmt: skip
        """(title score, authors found) when the entry gives the known paper's title (whole
        or as the start of a longer one: "... Fault Tolerance and Proactive Recovery")."""
        if score < (SAME_SHORT_TITLE if len(title) < _SHORT else SAME_TITLE):
            return None
        found = fuzz.partial_ratio_alignment(title, squashed)
        start = where[found.dest_start] if found and found.dest_start < len(where) else 0
        before = text[:start].rstrip()
        # the title must start the entry's title: "A correctness proof for a practical
        # Byzantine-fault-tolerant ..." is another paper than "Practical Byzantine ..."
        last = before.split(" ")[-1] if before else ""
        if last and last[-1].isalpha() and last.islower():
            return None
        first, authors = _authors_found(known.surnames, before if start > 8 else text)
        if not _authors_agree(known.surnames, first, authors, text):
            return None
        return score, authors

    def _close_title(self, text: str, exclude: str | None) -> str | None:
        """A version of a known paper under another title, from the same year give or take
        one: by the same first author (and the others, unless "et al.") with a title that
        starts alike and shares most words ("Cassandra: structured storage system on a P2P
        network"); or named for the same system by the same team ("F1 — The Fault-Tolerant
        Distributed RDBMS ..." for "F1: A Distributed SQL Database That Scales")."""
        years = {int(y) for y in _YEAR.findall(text)}
        if not years:
            return None
        head = fold(text[:60]).split()[:3]  # the entry's first author leads it
        et_al = bool(re.search(r"\bet\.? al\b", text, re.I))
        firsts = [k for name in dict.fromkeys(head) for k in self.by_first.get(name, ())]
        lowered = text.lower()
        named = {
            id(k): k
            for k in self.named
            if k.lead and k.lead[0] in lowered and k.lead[1].search(text)
        }
        for known in {id(k): k for k in firsts + list(named.values())}.values():
            paper = known.paper
            if paper.id == exclude or paper.year is None:
                continue
            if min(abs(y - paper.year) for y in years) > 1:
                continue
            first, authors = _authors_found(known.surnames, text)
            if id(known) in named and (first or _authors_found(known.surnames, text, 99)[1] >= 3):
                return paper.id
            if not first or (not et_al and authors < min(3, len(known.surnames))):
                continue
            words = _content(_title_guess(text, known.surnames))
            if not words or not known.words or words[0] != known.words[0]:
                continue
            shared = len(set(words) & set(known.words))
            if shared >= 3 and shared >= 0.75 * min(len(set(words)), len(set(known.words))):
                return paper.id
        return None


def _lead(title: str) -> tuple[str, re.Pattern] | None:
    """The system a title is named for, and a pattern for another title it leads: "F1" of
    "F1: A Distributed SQL Database ..." finds "F1 — The Fault-Tolerant ..."."""
    m = re.match(r"\s*([^:—–]{2,24}?)\s*(?::|\s[—–-]\s)", title)
    if not m or len(m.group(1).split()) > 2:
        return None
    name = m.group(1)
    return name.lower(), re.compile(rf"(?<![\w-]){re.escape(name)}\s*(?::|\s[—–-]\s)", re.I)


def _title_guess(text: str, surnames: tuple[str, ...]) -> str:
    """The entry's title: after the last of the authors' surnames that lead it, up to the
    end of its sentence or its closing quote."""
    end = 0
    folded_words = text[: len(text) * 2 // 3]
    for name in surnames:
        for m in re.finditer(r"[^\W\d_][\w'’\-]*", folded_words):
            if fold(m.group(0)) == name:
                end = max(end, m.end())
                break
    rest = text[end:]
    after = _AFTER_AUTHORS.match(rest)
    rest = rest[after.end() if after else 0 :].lstrip("“\"'")
    stop = _TITLE_END.search(rest)
    return rest[: stop.start()] if stop else rest


def _authors_found(surnames: tuple[str, ...], text: str, first: int = 3) -> tuple[bool, int]:
    """Whether the first surname stands in ``text``, and how many of the ``first`` do (an
    OCR'd one fuzzily)."""
    words = set(fold(text).split())
    long_words = [w for w in words if len(w) >= 4]
    found = [
        name in words
        or (
            len(name) >= 4
            and process.extractOne(name, long_words, scorer=fuzz.ratio, score_cutoff=_FUZZY_NAME)
            is not None
        )
        for name in surnames[:first]
    ]
    return bool(found and found[0]), sum(found)


def _authors_agree(surnames: tuple[str, ...], first: bool, found: int, text: str) -> bool:
    """The entry's authors are the paper's: its first, and a second when it has more."""
    if not surnames:
        return True  # a .bib entry without authors: the title alone decides
    if not first:
        return False
    if len(surnames) == 1 or re.search(r"\bet\.? al\b", text, re.I):
        return True
    return found >= min(2, len(surnames))
