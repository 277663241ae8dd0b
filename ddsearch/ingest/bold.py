"""Headings that only the font shows: a bold line, or a bold run-in title at a line's start.

"The Fetching Service Crawling is an important part..." (zookeeper) and "In-Memory Analytics
Conviva Inc, ..." (spark-rdd) read as one sentence in plain text; in the PDF the title is bold.
Such a title is put on a line of its own that starts with HEADING_MARK, so that chunking keeps
it out of the sentence it precedes and a quote never begins with it.
"""

from __future__ import annotations

import ctypes
import re

HEADING_MARK = "\ue000"  # a private-use character: never in a paper's own text
_BOLD_WEIGHT = 600
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi|medi", re.I)
_MAX_WORDS = 10  # a longer bold run is emphasis or a bold paragraph, not a title
_MAX_BOLD_SHARE = 0.3  # a page set mostly in bold says nothing by its boldness
_CAPTION = re.compile(r"(?:Figure|Fig\.|Table|TABLE|FIGURE)\s*\d")
_ENDS_SENTENCE = (".", "?", "!", ":")


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


def _bold_share(raw, textpage, text: str, name) -> float:
    letters = [i for i in range(0, len(text), 11) if text[i].isalpha()]
    if not letters:
        return 0.0
    return sum(bool(_is_bold(raw, textpage, i, name)) for i in letters) / len(letters)


def mark_headings(textpage, text: str) -> str:
    """``text`` (pdfium's text of the page) with bold headings on lines that start with
    HEADING_MARK; unchanged where the characters cannot be matched to the text."""
    import pypdfium2.raw as raw

    if raw.FPDFText_CountChars(textpage) != len(text) or HEADING_MARK in text:
        return text
    name = ctypes.create_string_buffer(128)
    if _bold_share(raw, textpage, text, name) > _MAX_BOLD_SHARE:
        return text
    out: list[str] = []
    at = 0
    previous = ""  # the last line, as it stands in ``out``
    for line in text.splitlines(keepends=True):
        start, body = at, line.rstrip("\r\n")
        at += len(line)
        lead = len(body) - len(body.lstrip())
        end = start + lead
        while end < start + len(body):
            bold = _is_bold(raw, textpage, end, name)
            if bold is False or (bold is None and not text[end].isspace()):
                break
            end += 1
        run = text[start + lead : end].rstrip()
        rest = text[end : start + len(body)].lstrip()
        marked = _title(run, rest, previous)
        if marked is None:
            out.append(line)
            previous = body
            continue
        newline = line[len(body) :] or "\n"
        out.append(HEADING_MARK + marked + ("\n" + rest + newline if rest else newline))
        previous = rest or HEADING_MARK + marked
    return "".join(out)


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
