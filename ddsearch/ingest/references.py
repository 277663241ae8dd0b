"""A paper's reference list: found after its heading, split into labelled entries.

Numbered lists ("[12]", "12.") are split where the next number starts a line, so an entry that
runs over columns and pages stays whole and a stray line that starts with a number does not
start one; keyed lists ("[Lam78]") at every key; unlabelled author-year lists where a line
starts with a surname and initials after a line that ended an entry. The list ends at the next
heading (an appendix, a biography); the running headers and footers inside it are gone already
(clean.py), and a trailer glued onto the last entry ("Received January 1984; ...") is cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ddsearch.ingest.chunk import heading
from ddsearch.ingest.citing import cite
from ddsearch.ingest.resolve import Resolver
from ddsearch.ingest.typeset import HEADING_MARK
from ddsearch.models import Chunk, Page, Reference

_HEADING = re.compile(
    r"^(?:[0-9]{1,2}|[ivxIVX]{1,4}|[A-Z])?\.?(?:references?|bibliography|literaturecited|"
    r"workscited|referencesandnotes)[.:]?$",
    re.I,
)
# (OCR splits numbers: "2 1. REED, D." is entry 21)
_BRACKET = re.compile(r"^\[ ?(\d(?: ?\d){0,2}) ?\]\s*")
_DOTTED = re.compile(r"^(\d(?: ?\d){0,2})\.\s+(?=\S)")
_KEY = re.compile(r"^[^\w\s\[]?\[([A-Za-z][A-Za-z0-9+\-.']{0,11})\]\s*")  # a scan's "'[Ra]"
# a running header the cleaning left (it was not on enough pages): a page's first line, in
# capitals ("EPIDEMIC ALGORITHMS FOR REPLICATED DATABASE MAINTENANCE")
_SHOUTED = re.compile(r"^[A-Z][A-Z '’:\-]{11,}$")
# an unlabelled author-year entry starts "Lamport, L." / "LAMPORT, L., AND" / "van Renesse, R."
_AUTHOR_START = re.compile(
    r"^(?:(?:van|von|de|der|den|la|le|di|da|del)\s+)*[A-Z][A-Za-z'’\-]+(?:\s+[A-Z][a-z]+)?,\s+"
    r"(?:[A-Z]\.|[A-Z][a-z]+\b)"
)
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20[0-4]\d)([a-z]?)(?!\d)")
_TRAILER = re.compile(r"^(?:received|accepted|revised|copyright|permission to)\b", re.I)
_ENTRY_END = (".", ")", "]")
_SKIP = 3  # a numbered list may lose a few entries to extraction; more is not the next entry
_LONG = 2.0  # a last entry this many times the median length has text after the list in it
# a line that ends an entry: its year or its pages, then a full stop
_COMPLETE = re.compile(r"(?:(?:1[89]|20)\d\d[a-z]?\)?|\d+\s*[-–]\s*\d+)\.\)?$")


@dataclass
class _Line:
    text: str
    page: int


@dataclass
class _Entry:
    label: str
    key: str  # its number or key: "12", "Lam78"; "" for an unlabelled entry
    lines: list[_Line]

    @property
    def text(self) -> str:
        return _join(ln.text for ln in self.lines)


def _join(lines) -> str:
    out = ""
    for ln in lines:
        ln = ln.strip()
        if not ln:
            continue
        if out.endswith("-") and ln[:1].islower() and not out.endswith(" -"):
            out = out[:-1] + ln  # "peer-to-" + "peer" stays; "distribu-" + "ted" joins
        elif out.endswith(("/", "-")) and not ln[:1].isupper():
            out += ln  # a URL or a compound broken at the line end
        else:
            out = f"{out} {ln}" if out else ln
    return re.sub(r"\s+", " ", out).strip()


def is_heading(line: str) -> bool:
    """Whether a line is a reference list's heading ("References", "9. REFERENCES")."""
    if len(line) > 48:
        return False
    bare = re.sub(r"\s+", "", line.strip().lstrip(HEADING_MARK))
    return len(bare) < 32 and bool(_HEADING.match(bare))


def _style(lines: list[_Line]) -> str | None:
    """How the list's entries are labelled, from its first lines."""
    for ln in lines[:6]:
        s = ln.text
        m = _BRACKET.match(s)
        if m:
            return "bracket" if m.group(1) == "1" else None
        m = _DOTTED.match(s)
        if m and m.group(1) == "1":
            return "dotted"
        if _KEY.match(s):
            return "key"
        if _AUTHOR_START.match(s) and _YEAR.search(" ".join(x.text for x in lines[:8])):
            return "author"
    return None


def _split(lines: list[_Line], starts: Callable[[_Line, list[_Entry]], _Entry | None],
           ends: Callable[[str], bool]) -> list[_Entry]:  # fmt: skip
    """The entries: a line that ``starts`` one opens it, the others continue the last one,
    until a line that ``ends`` the list."""
    entries: list[_Entry] = []
    for ln in lines:
        entry = starts(ln, entries)
        if entry is not None:
            entries.append(entry)
        elif entries and ends(ln.text):
            break
        elif entries:
            entries[-1].lines.append(ln)
    return entries


def _numbered(pattern: re.Pattern, fmt: str) -> Callable[[_Line, list[_Entry]], _Entry | None]:
    """Numbered entries start where the next number (or one a few further) starts a line."""

    def starts(ln: _Line, entries: list[_Entry]) -> _Entry | None:
        m = pattern.match(ln.text)
        if not m:
            return None
        n = int(m.group(1).replace(" ", ""))
        expected = int(entries[-1].key) + 1 if entries else 1
        if not expected <= n <= expected + _SKIP:
            return None
        return _Entry(fmt.format(n), str(n), [_Line(ln.text[m.end() :], ln.page)])

    return starts


def _keyed(ln: _Line, entries: list[_Entry]) -> _Entry | None:
    m = _KEY.match(ln.text)
    return (
        _Entry(f"[{m.group(1)}]", m.group(1), [_Line(ln.text[m.end() :], ln.page)]) if m else None
    )


def _unlabelled(ln: _Line, entries: list[_Entry]) -> _Entry | None:
    """An author-year entry starts with a surname and initials after a line that ended one."""
    prev = entries[-1].lines[-1].text.rstrip() if entries else ""
    if _AUTHOR_START.match(ln.text) and (not entries or prev.endswith(_ENTRY_END)):
        return _Entry("", "", [ln])
    return None


def author_year(text: str) -> str:
    """An unlabelled entry's label: its first author's surname and its year ("Lamport 1978")."""
    surname = re.match(r"\s*((?:(?:van|von|de|der|den|la|le|di|da|del)\s+)*[^\s,]+)", text)
    year = _YEAR.search(text)
    name = surname.group(1).strip(".,") if surname else "?"
    if name.isupper():
        name = name.title()
    return f"{name} {year.group(0)}" if year else name


def _trim(entries: list[_Entry]) -> None:
    """Cut what follows the list from its last entry: a journal's "Received ..." line, a
    copyright notice, a figure's text on a page after the list with no heading of its own."""
    if not entries:
        return
    last = entries[-1]
    for j, ln in enumerate(last.lines[1:], 1):
        if _TRAILER.match(ln.text):
            del last.lines[j:]
            break
    sizes = sorted(len(e.text) for e in entries)
    median = sizes[len(sizes) // 2]
    if len(entries) >= 3 and len(last.text) > max(_LONG * median, 300):
        for j, ln in enumerate(last.lines[:-1]):
            if _COMPLETE.search(ln.text.rstrip()):
                del last.lines[j + 1 :]
                break


def _debris(text: str) -> str:
    """The entry without the letterless bits a page left after its end ("2001. 209 219")."""
    words = text.split(" ")
    while (
        len(words) > 1
        and not re.search(r"[^\W\d_]", words[-1])
        and (len(words[-1]) <= 4 or words[-1].isdigit())
        and not words[-2].lower().startswith(("pp", "p.", "vol", "no."))
    ):
        words.pop()
    return " ".join(words)


def _lines(pages: Sequence[Page]) -> list[_Line]:
    out = []
    for p in pages:
        lines = [ln for ln in p.text.split("\n") if ln.strip()]
        if lines and _SHOUTED.match(lines[0].lstrip(HEADING_MARK)) and not is_heading(lines[0]):
            lines = lines[1:]
        out += [_Line(ln, p.number) for ln in lines]
    return out


def _regions(lines: list[_Line]) -> list[int]:
    """Where reference lists start: the line after each heading, else (no heading) the last
    line that starts "[1]" with "[2]" and "[3]" starting lines after it."""
    starts = [i + 1 for i, ln in enumerate(lines) if is_heading(ln.text)]
    if starts:
        return starts
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].text.startswith("[1]"):
            later = [ln.text[:3] for ln in lines[i + 1 :]]
            if "[2]" in later and "[3]" in later:
                return [i]
    return []


def read_references(paper_id: str, pages: Sequence[Page], chunks: Sequence[Chunk],
                    resolver: Resolver) -> list[Reference] | None:  # fmt: skip
    """A paper's reference list, each entry resolved against the known papers (never to the
    paper itself) and with the sentences of ``chunks`` that cite it; None when the paper has
    no list that can be recognised.

    ``pages``: the paper's pages with every line kept (clean.clean_whole)."""
    found = parse_references(pages, heading)
    if found is None:
        return None
    resolved = [replace(r, id=resolver.resolve(r.text, exclude=paper_id)) for r in found]
    return cite(resolved, chunks)


def parse_references(
    pages: Sequence[Page], is_section: Callable[[str], object] = lambda line: None
) -> list[Reference] | None:
    """The entries of a paper's reference list(s), in order; None when it has none.

    ``pages``: the paper's pages with every line kept (clean.clean_whole); ``is_section``:
    whether a line is a section heading (an appendix after the list ends it)."""
    lines = _lines(pages)
    found: list[list[_Entry]] = []
    for start in _regions(lines):
        body = [_Line(ln.text.lstrip(HEADING_MARK).strip(), ln.page) for ln in lines[start:]]

        def ends(text: str) -> bool:
            return is_heading(text) or bool(is_section(text))

        style = _style(body)
        if style is None:
            continue
        starts = {
            "bracket": _numbered(_BRACKET, "[{}]"),
            "dotted": _numbered(_DOTTED, "{}."),
            "key": _keyed,
            "author": _unlabelled,
        }[style]
        entries = _split(body, starts, ends)
        if style == "author":
            for e in entries:
                e.label = author_year(e.text)
        _trim(entries)
        seen = {(e.label, e.text[:60]) for f in found for e in f}
        if entries and not all((e.label, e.text[:60]) in seen for e in entries):
            found.append(entries)  # (a page whose text layer repeats lists it twice)
    if not found:
        return None
    out: list[Reference] = []
    for entries in found:
        for e in entries:
            pages_ = tuple(dict.fromkeys(ln.page for ln in e.lines))
            out.append(Reference(len(out) + 1, e.label, _debris(e.text), pages_))
    return out
