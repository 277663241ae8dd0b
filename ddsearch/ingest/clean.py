"""Clean page text while keeping each line on its page.

NFKC, soft hyphens, de-hyphenation of line breaks, running headers/footers and page numbers
removed (the printed page number is kept on the Page), junk lines (figure labels, glyph codes,
tick runs) dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import replace

from ddsearch.models import Page

_EDGE = 3  # lines at the top and bottom of a page that may be a running header/footer
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?(\d{1,4}|[ivxlc]{1,6})(?:\s+of\s+\d+)?$", re.I)
_GLYPHS = re.compile(r"(?:/g\d+){2,}|(?:\(cid:\d+\)){1,}")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.U)
_HYPHEN_END = re.compile(r"([^\W\d_]+)-$", re.U)
_LOWER_START = re.compile(r"^([a-z][^\W\d_]*)(.*)$", re.U)


def normalize(text: str) -> str:
    """Unicode NFKC, soft hyphens resolved, one kind of line break, no control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # pdfium marks a soft hyphen at a line break with U+FFFE (sometimes followed by the break)
    text = re.sub("[\ufffe\u00ad]\n?", "", text)
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2010", "-").replace("\u2011", "-").replace("\u00a0", " ")
    text = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")
    return text


def _key(line: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"\d+", "#", line.lower())).strip()


def _edge_indexes(lines: list[str]) -> list[int]:
    idx = [i for i, ln in enumerate(lines) if ln.strip()]
    return sorted(set(idx[:_EDGE] + idx[-_EDGE:]))


def _is_junk(line: str) -> bool:
    s = line.strip()
    if not s:
        return True
    if _GLYPHS.search(s):
        return True
    compact = s.replace(" ", "")
    letters = sum(ch.isalpha() for ch in compact)
    if letters == 0:
        return True  # tick runs, lone numbers, punctuation
    return len(compact) >= 4 and letters / len(compact) < 0.4


def _short_label(line: str) -> bool:
    s = line.strip()
    return len(s) < 24 and not s.endswith((".", ",", ";", ":", "?", "!")) and len(s.split()) <= 3


def _drop_label_runs(lines: list[str], keep) -> list[str]:
    """Drop runs of 3+ short label-like lines (figure boxes, axis labels), keeping headings."""
    out: list[str] = []
    run: list[str] = []

    def flush():
        if len(run) >= 3:
            out.extend(ln for ln in run if keep(ln))
        else:
            out.extend(run)
        run.clear()

    for ln in lines:
        if _short_label(ln):
            run.append(ln)
        else:
            flush()
            out.append(ln)
    flush()
    return out


def _printed_offset(pages: list[list[str]], first_page: int | None = None) -> int | None:
    """The offset between printed and PDF page numbers, if the page numbers tell one.

    ``first_page``, the first page in the venue as the catalog gives it, settles ties such as
    footers that print both an issue's and the proceedings' page number."""
    offsets: Counter[int] = Counter()
    for number, lines in enumerate(pages, start=1):
        seen = set()
        for i in _edge_indexes(lines):
            for m in re.finditer(r"(?<![\d.])(\d{1,4})(?![\d.])", lines[i]):
                seen.add(int(m.group(1)) - number)
        offsets.update(seen)
    if not offsets or len(pages) < 3:
        return None
    enough = max(3, 0.4 * len(pages))
    if first_page is not None and offsets[first_page - 1] >= enough:
        return first_page - 1
    offset, count = offsets.most_common(1)[0]
    return offset if count >= enough else None


def _vocabulary(pages: list[list[str]]) -> Counter[str]:
    vocab: Counter[str] = Counter()
    for lines in pages:
        for ln in lines:
            vocab.update(w.lower() for w in _WORD.findall(ln))
    return vocab


def _dehyphenate(lines: list[str], vocab: Counter[str], soft_marked: bool) -> list[str]:
    """Join 'associ-' + 'ated' across line breaks; keep real hyphens such as 'key-value'."""
    out: list[str] = []
    for line in lines:
        prev = out[-1] if out else ""
        m = _HYPHEN_END.search(prev)
        nxt = _LOWER_START.match(line)
        if m and nxt:
            head, tail = m.group(1).lower(), nxt.group(1).lower()
            if vocab[head + tail] > 0:
                joined = True
            elif vocab[f"{head}-{tail}"] > 0:
                joined = False
            else:
                joined = not soft_marked  # where soft hyphens are marked, a hard one is real
            out[-1] = (prev[:-1] if joined else prev) + line
        else:
            out.append(line)
    return out


def clean_pages(
    pages: list[Page], is_heading=lambda line: False, first_page: int | None = None
) -> list[Page]:
    """Return pages with cleaned text (one line per text line) and printed page numbers set."""
    raw = [p.text for p in pages]
    soft_marked = any("\ufffe" in t or "\u00ad" in t for t in raw)
    lines = [[ln.strip() for ln in normalize(t).split("\n")] for t in raw]
    lines = [[re.sub(r"\s+", " ", ln) for ln in page if ln] for page in lines]

    offset = _printed_offset(lines, first_page)
    counts: Counter[str] = Counter()
    for page in lines:
        counts.update({_key(page[i]) for i in _edge_indexes(page)})
    threshold = max(3, 0.3 * len(lines))
    repeated = {k for k, c in counts.items() if c >= threshold and re.search(r"[a-z]", k)}

    cleaned: list[list[str]] = []
    for page in lines:
        edges = set(_edge_indexes(page))
        kept = []
        for i, ln in enumerate(page):
            if i in edges and (_key(ln) in repeated or _PAGE_NUMBER.match(ln)):
                continue
            if _is_junk(ln) and not is_heading(ln):
                continue
            kept.append(ln)
        cleaned.append(_drop_label_runs(kept, is_heading))

    vocab = _vocabulary(cleaned)
    result = []
    for page, ln in zip(pages, cleaned):
        printed = (
            str(page.number + offset) if offset is not None and page.number + offset > 0 else None
        )
        text = "\n".join(_dehyphenate(list(ln), vocab, soft_marked))
        result.append(replace(page, text=text, printed=printed))
    return result
