"""Sentence splitting that survives "et al.", "e.g.", "Fig. 3", "3.5" and section numbers."""

from __future__ import annotations

import re

_ABBREVIATIONS = {
    "al", "e.g", "i.e", "etc", "cf", "vs", "fig", "figs", "sec", "secs", "eq", "eqs", "ref",
    "refs", "vol", "pp", "ch", "approx", "resp", "dept", "univ", "inc", "ltd", "corp", "jr",
    "dr", "mr", "mrs", "prof", "thm", "lem", "alg", "tab", "viz", "ed", "eds", "jan", "feb",
    "apr", "jun", "jul", "aug", "sept", "oct", "nov", "dec", "proc", "conf", "trans", "comput",
    "syst",
}  # fmt: skip

# a candidate end: . ! or ? (possibly followed by closing quotes/brackets), then space
_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s+)")


def _is_boundary(text: str, end: int) -> bool:
    """Whether the punctuation ending at text[end-1] ends a sentence."""
    mark = text.rfind(".", 0, end) if text[end - 1] in "\"'”’)]" else end - 1
    if text[mark] != ".":
        return True
    word = re.search(r"(\S+)$", text[:mark])
    prev = word.group(1) if word else ""
    bare = prev.lstrip("([\"'“‘").lower()
    if bare in _ABBREVIATIONS:
        return False
    if len(bare) == 1 and bare.isalpha():  # initials: "J. Gray", "A. B. Smith"
        return False
    if re.fullmatch(r"\d+(\.\d+)*", bare) and len(prev) <= 6 and mark < 12:
        return False  # a section number at the start: "4.6. Handling ..."
    nxt = re.match(r"\s+(\S)", text[end:])
    # "e.g. the", "vs. Paxos" written without a known abbreviation: no boundary
    return not (nxt and (nxt.group(1).islower() or nxt.group(1) in ",;:"))


def split_spans(text: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of the sentences in text, whitespace trimmed."""
    spans = []
    start = 0
    for m in _END.finditer(text):
        if _is_boundary(text, m.end()):
            spans.append((start, m.end()))
            start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append((s, e))
    return out


def split_sentences(text: str) -> list[str]:
    """The sentences of text, in order."""
    return [text[s:e] for s, e in split_spans(text)]
