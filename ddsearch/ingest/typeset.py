"""What only the typesetting shows: bold titles, and small print set inside a sentence.

"The Fetching Service Crawling is an important part..." (zookeeper) and "In-Memory Analytics
Conviva Inc, ..." (spark-rdd) read as one sentence in plain text; in the PDF the title is bold.
Such a title is put on a line of its own that starts with HEADING_MARK, so that chunking keeps
it out of the sentence it precedes and a quote never begins with it.

A footnote or a figure's small print that pdfium reads in the middle of a sentence ("which
partitions of per-" + "7Note that our union ..." + "sistent RDDs are ...") is moved after the
line where that sentence ends, so the sentence reads whole and the footnote stays searchable.
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from collections.abc import Sequence

HEADING_MARK = "\ue000"  # a private-use character: never in a paper's own text
_BOLD_WEIGHT = 600
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi|medi", re.I)
_MAX_WORDS = 10  # a longer bold run is emphasis or a bold paragraph, not a title
_MAX_BOLD_SHARE = 0.3  # a page set mostly in bold says nothing by its boldness
_CAPTION = re.compile(r"(?:Figure|Fig\.|Table|TABLE|FIGURE)\s*\d")
_FULL_STOP = (".", "?", "!")
_ENDS_SENTENCE = (*_FULL_STOP, ":")
_SMALL = 0.95  # of the page's body size: a footnote, a caption, a figure's labels
EDGE_LINES = 3  # lines at a page's top and bottom that may be a running header or footer
_TITLE_LINES = 3  # a title wrapped over more lines than this is a bold paragraph
_NUMBERED = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*|[A-H](?:\.\d{1,2})+|[IVX]{1,5})\.?\s")
_ASIDE_LETTERS = 12  # less small print at a line's end is a subscript or a marker, not an aside


def _is_bold(raw, textpage, index: int, name: ctypes.Array) -> bool | None:
    """Whether the character is set in a bold face (None: a space pdfium made up)."""
    weight = raw.FPDFText_GetFontWeight(textpage, index)
    if weight == -1:
        return None
    if weight >= _BOLD_WEIGHT:
        return True
    flags = ctypes.c_int()
    raw.FPDFText_GetFontInfo(textpage, index, name, len(name), ctypes.byref(flags))
    return bool(_BOLD_NAME.search(name.value.decode("latin-1")))


def _bold_share(raw, textpage, text: str, at, name) -> float:
    letters = [i for i in range(0, len(text), 11) if text[i].isalpha()]
    if not letters:
        return 0.0
    return sum(bool(_is_bold(raw, textpage, at(i), name)) for i in letters) / len(letters)


def typeset(textpage, text: str, source: Sequence[int] | None = None) -> str:
    """``text`` (the page's text) with small print moved out of the sentences it interrupts
    and bold titles on lines that start with HEADING_MARK; ``source[i]`` is the pdfium char
    that text[i] stands for (by default the text is pdfium's own). Unchanged where the
    characters cannot be matched to the text."""
    import pypdfium2.raw as raw

    if source is None:
        source = range(len(text))
        if raw.FPDFText_CountChars(textpage) != len(text):
            return text
    if len(source) != len(text) or HEADING_MARK in text:
        return text
    lines, start = [], 0
    for line in text.splitlines(keepends=True):
        lines.append((start, start + len(line.rstrip("\r\n"))))
        start += len(line)
    at = source.__getitem__
    spans = _asides_moved(raw, textpage, text, at, lines)
    return "\n".join(_titles(raw, textpage, text, at, spans))


def _asides_moved(raw, textpage, text: str, at, lines: list[tuple[int, int]]):
    """The lines as (start, end) spans in reading order, small print that interrupts a
    sentence (its own lines, or the tail of a line) moved after the line that ends it."""
    sizes = Counter(
        round(raw.FPDFText_GetFontSize(textpage, at(i)) * 2) / 2
        for i in range(0, len(text), 7)
        if text[i].isalpha()
    )
    if not sizes:
        return lines
    limit = _SMALL * sizes.most_common(1)[0][0]
    segments: list[tuple[int, int, bool]] = []  # (start, end, small print?)
    edge: set[int] = set()  # segments of the lines where running headers and footers stand
    for n, (a, b) in enumerate(lines):
        first, p = len(segments), b
        while p > a and (
            text[p - 1].isspace() or raw.FPDFText_GetFontSize(textpage, at(p - 1)) < limit
        ):
            p -= 1
        if p == a and sum(ch.isalpha() for ch in text[a:b]) >= 3:
            segments.append((a, b, True))  # (a lone "i" or "0" is a subscript: it stays)
        elif p < b and sum(ch.isalpha() for ch in text[p:b]) >= _ASIDE_LETTERS:
            segments.extend([(a, p, False), (p, b, True)])
        else:
            segments.append((a, b, False))
        if n < EDGE_LINES or n >= len(lines) - EDGE_LINES:
            edge.update(range(first, len(segments)))
    order: list[tuple[int, int]] = []
    held: list[tuple[int, int]] = []  # small print waiting for its sentence to end
    i = 0
    while i < len(segments):
        a, b, small = segments[i]
        if not small:
            order.append((a, b))
            if held and text[a:b].rstrip().endswith(_FULL_STOP):
                order.extend(held)
                held = []
            i += 1
            continue
        j = i
        while j < len(segments) and segments[j][2]:
            j += 1
        run = [(s, e) for s, e, _ in segments[i:j]]
        before = text[order[-1][0] : order[-1][1]].rstrip() if order else ""
        after = text[segments[j][0] : segments[j][1]].lstrip() if j < len(segments) else ""
        inside = before and not before.endswith(_ENDS_SENTENCE) and after[:1].islower()
        inside = inside and not edge & set(range(i, j))
        if inside and not held and _ends_later(text, segments[j:]):
            held = run
        else:
            if order and order[-1][1] == run[0][0]:  # a line's own tail, staying: one line again
                order[-1] = (order[-1][0], run.pop(0)[1])
            order.extend(run)
        i = j
    return order + held


def _ends_later(text: str, segments) -> bool:
    """Whether a line of body text among ``segments`` ends a sentence."""
    return any(not small and text[a:b].rstrip().endswith(_FULL_STOP) for a, b, small in segments)


def _titles(raw, textpage, text: str, at, lines: list[tuple[int, int]]) -> list[str]:
    """The lines' text, a bold title at a line's start on a line of its own, marked; a title
    set whole over two or three lines in one size is one line ("4.7 Handling permanent
    failures: Replica" / "synchronization")."""
    name = ctypes.create_string_buffer(128)
    if _bold_share(raw, textpage, text, at, name) > _MAX_BOLD_SHARE:
        return [text[a:b] for a, b in lines]
    out: list[str] = []
    previous = ""  # the last line, as it stands in ``out``
    wrapped = 0  # lines of the title ``out[-1]`` is, when it is a whole line's title
    size = 0.0  # and its font size
    for start, stop in lines:
        body = text[start:stop]
        lead = len(body) - len(body.lstrip())
        end = start + lead
        while end < stop:
            bold = _is_bold(raw, textpage, at(end), name)
            if bold is False or (bold is None and not text[end].isspace()):
                break
            end += 1
        run = text[start + lead : end].rstrip()
        rest = text[end:stop].lstrip()
        marked = _title(run, rest, previous)
        if marked is None:
            out.append(body)
            previous, wrapped = body, 0
            continue
        this = raw.FPDFText_GetFontSize(textpage, at(start + lead)) if not rest else 0.0
        if wrapped and _goes_on(out[-1], marked, wrapped, size, this):
            out[-1] += " " + marked
            previous, wrapped = out[-1], wrapped + 1
            continue
        out.append(HEADING_MARK + marked)
        if rest:
            out.append(rest)
        previous = rest or HEADING_MARK + marked
        wrapped, size = (0, 0.0) if rest else (1, this)
    return out


def _goes_on(title: str, line: str, lines: int, size: float, this: float) -> bool:
    """Whether a whole bold ``line`` goes on with the whole bold ``title`` above it: the
    same size, the title not ended, the line no numbered title of its own."""
    return (
        lines < _TITLE_LINES
        and abs(size - this) <= 0.02 * max(size, this)
        and not title.rstrip().endswith(_ENDS_SENTENCE)
        and not _NUMBERED.match(line)
        and len(title.split()) + len(line.split()) <= 2 * _MAX_WORDS
    )


def _title(run: str, rest: str, previous: str) -> str | None:
    """The bold run at a line's start if it is a title, else None."""
    words = run.split()
    if not words or len(words) > _MAX_WORDS or sum(ch.isalpha() for ch in run) < 3:
        return None
    continues = previous.startswith(HEADING_MARK)  # a title's second line: "casual / ones."
    if not (run[0].isupper() or run[0].isdigit() or continues) or _CAPTION.match(run):
        return None
    if not rest:
        return run  # the whole line is bold and short
    # run-in: "Leader election. Raft uses ..." or "The Fetching Service Crawling is ..."
    if not (rest[0].isupper() or run.endswith((".", ":", "—"))):
        return None  # "**create** is called ..." is emphasis inside a sentence
    opens = not previous.strip() or previous.startswith(HEADING_MARK)
    return run if opens or previous.rstrip().endswith(_ENDS_SENTENCE) else None
