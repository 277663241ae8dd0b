"""The sentences of a paper's body that cite each entry of its reference list.

Labels are read in brackets, alone or in groups ("[18, 19, 3]", "[5, §1]", "[10][24]",
"Chubby[3]", "[3–6]", "[Ra, Be85]"); a group counts only when every label in it is one of the
list's (so "[0, 1]" and "[x, y]" are not citations). An unlabelled author-year list is cited
by surname and year: "Lamport [21]" needs a label, "(Lamport, 1978)", "Lamport [1978]",
"Lamport's [1978]", "Chandy and Lamport 1985" do not. The sentences are the chunks' own,
with their pages, so a citing sentence is quoted and cited as any other.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from ddsearch.ingest.resolve import fold
from ddsearch.models import Chunk, CitingSentence, Reference

_GROUP = re.compile(r"\[([^\[\]]{1,160})\]")
# a scan's OCR reads the closing bracket as "1": "[ 151" is [15], "[6, 13, 21-241 (" [6, 13, 21-24]
_OCR_GROUP = re.compile(r"\[ ?(\d[\d ,;\-–]{0,60}?)1(?=\s*[^\d\s,;\-–\]])")
_RANGE = re.compile(r"^(\d{1,3})\s*[-–—]\s*(\d{1,3})$")
# what may stand beside labels in a group: "[5, §1]", "[12, Section 3]", "[see 4]", "[4, p. 7]"
_LOCATOR = re.compile(
    r"^(?:§+\s*[\w.]+|(?:sec(?:tion)?s?|ch(?:ap(?:ter)?)?|thm|theorem|lemma|def(?:inition)?|"
    r"fig(?:ure)?|table|app(?:endix)?|pp?|pages?|eq|corollary|prop(?:osition)?)\.?\s*[\w.\-–]+)$",
    re.I,
)
_FILLER = re.compile(r"^(?:e\.?g\.?|i\.?e\.?|cf\.?|see(?:\s+also)?|also|and)$", re.I)
_LEAD = re.compile(r"^(?:see(?:\s+also)?|e\.g\.,?|cf\.|and)\s+", re.I)
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20[0-4]\d)([a-z]?)(?!\d)")
_MAX_RANGE = 40


def _key(label: str) -> str:
    """What the body cites an entry by: "[12]" -> "12", "12." -> "12", "[Lam78]" -> "Lam78"."""
    return label.strip().strip("[]").rstrip(".").strip()


def _labels(group: str, keys: set[str]) -> list[str] | None:
    """The labels a bracketed group cites, or None when it is not a citation."""
    out: list[str] = []
    for token in re.split(r"[,;]", group):
        token = _LEAD.sub("", token.strip()).strip()
        if not token or _FILLER.match(token):
            continue
        if token in keys:
            out.append(token)
            continue
        m = _RANGE.match(token)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            span = [str(n) for n in range(a, b + 1)]
            if 0 < b - a <= _MAX_RANGE and str(a) in keys and str(b) in keys:
                out.extend(n for n in span if n in keys)
                continue
            return None
        if out and _LOCATOR.match(token):
            continue  # "[5, §1]": where in the cited paper
        return None
    return out or None


def labels_in(text: str, keys: set[str]) -> list[str]:
    """Every label the text cites, in order, each once."""
    found: list[str] = []
    taken: list[tuple[int, int]] = []
    for m in _GROUP.finditer(text):
        taken.append(m.span())
        found.extend(_labels(m.group(1), keys) or ())
    if all(k.isdigit() for k in keys):
        for m in _OCR_GROUP.finditer(text):
            if any(a <= m.start() < b for a, b in taken):
                continue
            got = _labels(m.group(1), keys)
            if got:
                found.extend(got)
    return list(dict.fromkeys(found))


def _author_year(text: str, entries: list[tuple[Reference, str, str, str]]) -> list[Reference]:
    """The unlabelled entries a sentence cites by surname and year ("(Lamport, 1978)")."""
    if not entries:
        return []
    out = []
    for m in _YEAR.finditer(text):
        window = fold(text[max(0, m.start() - 80) : m.start()]).split()
        for ref, name, year, suffix in entries:
            if year == m.group(1) and (not m.group(2) or m.group(2) == suffix) and name in window:
                out.append(ref)
    return list(dict.fromkeys(out))


def _lists(references: Sequence[Reference]) -> list[list[Reference]]:
    """A paper's lists (an erratum may bring a second one): a list restarts at a label seen."""
    lists: list[list[Reference]] = [[]]
    for ref in references:
        if any(r.label == ref.label for r in lists[-1]):
            lists.append([])
        lists[-1].append(ref)
    return lists


def cite(references: Sequence[Reference], chunks: Sequence[Chunk]) -> list[Reference]:
    """``references`` with the sentences of ``chunks`` that cite each one (``cited``)."""
    lists = _lists(references)
    last_page = [max(p for r in refs for p in r.pages) for refs in lists]
    signatures = {fold(r.text)[:40] for r in references if len(r.text) > 30}
    keyed = [{_key(r.label): r for r in refs if not r.label[:1].isalpha()} for refs in lists]
    authored = []
    for refs in lists:
        year_labelled = []
        for r in refs:
            m = re.match(r"^(\S.*?)\s+(\d{4})([a-z]?)$", r.label)
            if r.label[:1].isalpha() and m:
                year_labelled.append((r, fold(m.group(1)).split()[-1], m.group(2), m.group(3)))
        authored.append(year_labelled)
    citing: dict[int, list[CitingSentence]] = {r.ordinal: [] for r in references}
    seen: set[tuple[str, tuple[int, ...]]] = set()
    for chunk in chunks:
        before: CitingSentence | None = None  # the sentence before, in this chunk
        for s in chunk.sentences:
            text = chunk.text[s.start : s.end]
            sentence = CitingSentence(chunk.id, s.start, s.end, text, s.pages, s.printed)
            prev, before = before, sentence
            if (text, s.pages) in seen or ("[" not in text and not _YEAR.search(text)):
                continue
            seen.add((text, s.pages))
            folded = fold(text)
            if any(sig in folded for sig in signatures):
                continue  # an entry of a list that has no heading, read as body text
            which = next((i for i, p in enumerate(last_page) if s.pages[0] <= p), -1)
            keys = keyed[which]
            found: list[tuple[Reference, CitingSentence | None]] = []
            if "[" in text:
                # "... recover from failures. [1] ZooKeeper is ...": a group that starts a
                # sentence cites for the sentence it follows
                lead = _GROUP.match(text)
                cut = lead.end() if lead and prev is not None else 0
                found += [(keys[k], prev) for k in labels_in(text[:cut], set(keys))]
                found += [(keys[k], sentence) for k in labels_in(text[cut:], set(keys))]
            found += [(r, sentence) for r in _author_year(text, authored[which])]
            for ref, owner in found:
                if owner is not None and owner not in citing[ref.ordinal]:
                    citing[ref.ordinal].append(owner)
    return [replace(r, cited=tuple(citing[r.ordinal])) for r in references]
