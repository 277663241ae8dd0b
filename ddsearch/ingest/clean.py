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

from ddsearch.ingest.typeset import EDGE_LINES as _EDGE
from ddsearch.ingest.typeset import HEADING_MARK
from ddsearch.models import Page

_PAGE_NUMBER = re.compile(r"^(?:page\s+)?(\d{1,4}|[ivxlc]{1,6})(?:\s+of\s+\d+)?$", re.I)
_GLYPHS = re.compile(r"(?:/g\d+){2,}|(?:\(cid:\d+\)){1,}")
_CITATIONS = re.compile(r"\[\d{1,3}(?:\s*[,;\-–]\s*\d{1,3})*\]")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.U)
_HYPHEN_END = re.compile(r"([^\W\d_]+)-$", re.U)
_LOWER_START = re.compile(r"^([a-z][^\W\d_]*)(.*)$", re.U)
# a page that ends inside a word broken by a soft hyphen, the page number glued on after it:
# "... an integer index iden\ufffe6" (raft), "... that pro\ufffe223" (megastore)
_SOFT_END = re.compile(r"([^\W\d_])[\ufffe\u00ad](?:\s*(\d{1,4}))?\s*$", re.U)
_HARD_END = re.compile(r"([^\W\d_]-)(\d{1,4})\s*$", re.U)  # the same after a visible hyphen
# pdfium marks every hyphen that ends a line as soft, a compound's own included: "a high-" /
# "priority task" (borg) reads "high\ufffepriority"
_SOFT_BREAK = re.compile(r"([^\W\d_]+)[\ufffe\u00ad](?:\r?\n)?([^\W\d_]+)", re.U)
_COMPOUND = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+", re.U)
_LETTERS = re.compile(r"[^\W\d_]+", re.U)


def normalize(text: str) -> str:
    """Unicode NFKC, soft hyphens resolved, one kind of line break, no control characters
    (HEADING_MARK, which extraction put at the start of a bold heading's line, is kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # pdfium marks a soft hyphen at a line break with U+FFFE (sometimes followed by the break)
    text = re.sub("[\ufffe\u00ad]\n?", "", text)
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2010", "-").replace("\u2011", "-").replace("\u00a0", " ")
    keep = ("\n", HEADING_MARK)
    text = "".join(ch for ch in text if ch in keep or unicodedata.category(ch)[0] != "C")
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
    # a line's citations are words, not debris: "Paxos [18, 19, 3, 25, 1, 27]." is prose
    compact = _CITATIONS.sub("", s).replace(" ", "")
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


def _joins(head: str, tail: str, vocab: Counter[str], soft_marked: bool) -> bool:
    """Whether 'head-' at a line end and 'tail' are one word ('associ-ated'), not 'key-value'."""
    head, tail = head.lower(), tail.lower()
    if vocab[head + tail] > 0:
        return True
    if vocab[f"{head}-{tail}"] > 0:
        return False
    return not soft_marked  # where soft hyphens are marked, a hard one is real


def _dehyphenate(lines: list[str], vocab: Counter[str], soft_marked: bool) -> list[str]:
    """Join 'associ-' + 'ated' across line breaks; keep real hyphens such as 'key-value'."""
    out: list[str] = []
    for line in lines:
        prev = out[-1] if out else ""
        m = _HYPHEN_END.search(prev)
        nxt = _LOWER_START.match(line)
        if m and nxt:
            joined = _joins(m.group(1), nxt.group(1), vocab, soft_marked)
            out[-1] = (prev[:-1] if joined else prev) + line
        else:
            out.append(line)
    return out


def page_range(pages: str | None) -> tuple[int, int] | None:
    """(first, last) of a venue page range such as "205--220"; None if it is not one."""
    m = re.match(r"\s*(\d+)\s*(?:-+|–|—)\s*(\d+)\s*$", pages or "")
    if not m or int(m.group(2)) < int(m.group(1)):
        return None
    return int(m.group(1)), int(m.group(2))


def _published_offset(lines: list[list[str]], span: tuple[int, int] | None) -> int | None:
    """The printed-page offset, consistent with the published range ``span`` when there is one.

    A PDF with exactly as many pages as the range is the published paper, whatever an authors'
    copy prints (Spanner's 1-14 is pp. 251-264); otherwise the printed numbers are believed only
    if they fall in the range, and a reader with the proceedings gets PDF pages instead."""
    if span is None:
        return _printed_offset(lines)
    first, last = span
    if len(lines) == last - first + 1:
        return first - 1
    offset = _printed_offset(lines, first)
    if offset is None:
        return None
    inside = sum(first <= n + offset <= last for n in range(1, len(lines) + 1))
    return offset if inside >= len(lines) / 2 else None


class _Compounds:
    """Whether a word broken at a soft-marked line end keeps its hyphen: where the paper
    writes it hyphenated elsewhere ("high-priority") and never as one word."""

    def __init__(self, texts: list[str]):
        self._texts = texts
        self._pairs: set[tuple[str, str]] = set()
        self._words: set[str] | None = None

    def keeps_hyphen(self, head: str, tail: str) -> bool:
        if self._words is None:  # read once, the soft breaks making no word of their own
            whole = re.sub("[\ufffe\u00ad]", " ", "\n".join(self._texts)).lower()
            for compound in _COMPOUND.findall(whole):
                parts = compound.split("-")
                self._pairs.update(zip(parts, parts[1:]))
            self._words = set(_LETTERS.findall(whole))
        head, tail = head.lower(), tail.lower()
        return (head, tail) in self._pairs and head + tail not in self._words

    def mend(self, text: str) -> str:
        """The text with each soft-marked break joined, or hyphenated where that is the word."""
        return _SOFT_BREAK.sub(
            lambda m: m.group(1) + ("-" if self.keeps_hyphen(m.group(1), m.group(2)) else "")
            + m.group(2), text
        )  # fmt: skip


def _join_across_pages(
    pages: list[list[str]],
    soft: list[bool],
    vocab: Counter[str],
    soft_marked: bool,
    compounds: _Compounds,
) -> None:
    """Rejoin a word broken across a page break onto the page where it starts."""
    for i in range(len(pages) - 1):
        prev, nxt = pages[i], pages[i + 1]
        if not prev or not nxt:
            continue
        hyphen, tail = _HYPHEN_END.search(prev[-1]), _LOWER_START.match(nxt[0])
        if not tail or not (soft[i] or hyphen):
            continue
        if soft[i]:  # the soft hyphen is gone already: the word just stops
            head = re.search(r"[^\W\d_]+$", prev[-1])
            keep = head and compounds.keeps_hyphen(head.group(0), tail.group(1))
            prev[-1] += ("-" if keep else "") + tail.group(1)
        elif hyphen and _joins(hyphen.group(1), tail.group(1), vocab, soft_marked):
            prev[-1] = prev[-1][:-1] + tail.group(1)
        else:
            prev[-1] += tail.group(1)  # "key-" + "value": the word stays whole, hyphen kept
        rest = tail.group(2).lstrip()
        if rest:
            nxt[0] = rest
        else:
            nxt.pop(0)


def clean_pages(
    pages: list[Page], is_heading=lambda line: False, span: tuple[int, int] | None = None
) -> list[Page]:
    """Return pages with cleaned text (one line per text line) and printed page numbers set.

    ``span``: the paper's (first, last) page in its venue, when the catalog gives it."""
    return _clean(pages, is_heading, span, whole=False)[0]


def clean_whole(
    pages: list[Page], is_heading=lambda line: False, span: tuple[int, int] | None = None
) -> tuple[list[Page], list[Page]]:
    """clean_pages(), and the same pages with every line of text kept (running headers,
    footers and page numbers still go): a reference list's "21, 7 (1978), 558-565." lines
    read as junk to the prose filter, yet they hold the volume, pages and year."""
    prose, whole = _clean(pages, is_heading, span, whole=True)
    return prose, whole or []


def _clean(pages: list[Page], is_heading, span: tuple[int, int] | None,
           whole: bool) -> tuple[list[Page], list[Page] | None]:  # fmt: skip
    raw = [p.text.rstrip() for p in pages]
    soft_marked = any("\ufffe" in t or "\u00ad" in t for t in raw)
    compounds = _Compounds(raw)
    raw = [compounds.mend(t) for t in raw]
    soft = [bool(_SOFT_END.search(t)) for t in raw]
    # the glued page number goes on a line of its own, where footers are recognised
    raw = [_SOFT_END.sub(lambda m: m.group(1) + "\n" + (m.group(2) or ""), t) for t in raw]
    raw = [_HARD_END.sub(r"\1\n\2", t) for t in raw]
    lines = [[ln.strip() for ln in normalize(t).split("\n")] for t in raw]
    lines = [[re.sub(r"\s+", " ", ln) for ln in page if ln] for page in lines]

    offset = _published_offset(lines, span)
    counts: Counter[str] = Counter()
    for page in lines:
        counts.update({_key(page[i]) for i in _edge_indexes(page)})
    threshold = max(3, 0.3 * len(lines))
    repeated = {k for k, c in counts.items() if c >= threshold and re.search(r"[a-z]", k)}

    cleaned: list[list[str]] = []
    texts: list[list[str]] = []  # every line but the running headers, footers, page numbers
    for page in lines:
        edges = set(_edge_indexes(page))
        kept = []
        for i, ln in enumerate(page):
            if i in edges and (_key(ln) in repeated or _PAGE_NUMBER.match(ln)):
                continue
            kept.append(ln)
        texts.append(kept)
        kept = [ln for ln in kept if not _is_junk(ln) or is_heading(ln)]
        cleaned.append(_drop_label_runs(kept, is_heading))

    vocab = _vocabulary(cleaned)
    versions = [cleaned, texts] if whole else [cleaned]
    out: list[list[Page]] = []
    for version in versions:
        _join_across_pages(version, soft, vocab, soft_marked, compounds)
        result = []
        for source, page_lines in zip(pages, version):
            number = source.number + offset if offset is not None else 0
            inside = span is None or span[0] <= number <= span[1]
            printed = str(number) if number > 0 and inside else None
            text = "\n".join(_dehyphenate(list(page_lines), vocab, soft_marked))
            result.append(replace(source, text=text, printed=printed))
        out.append(result)
    return out[0], (out[1] if whole else None)
