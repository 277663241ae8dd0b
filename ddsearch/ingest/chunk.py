"""Split a paper's cleaned pages into chunks that fit the model and remember their pages."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ddsearch.ingest.typeset import HEADING_MARK
from ddsearch.models import Chunk, Page, Sentence
from ddsearch.sentences import split_spans

TokenCounter = Callable[[Sequence[str]], list[int]]

_NUMBERED = re.compile(
    r"^(?P<num>(?:\d{1,2}(?:\.\d{1,2}){0,3}|[A-H](?:\.\d{1,2}){0,2}|[IVX]{1,5})\.?)\s+"
    r"(?P<title>[A-Z][^\n]{1,75})$"
)
_NAMED = re.compile(
    r"^(?:abstract|introduction|background|related work|conclusions?|concluding remarks|"
    r"discussion|evaluation|summary|future work|acknowledge?ments?|references|bibliography|"
    r"appendix(?: [a-z0-9]+)?)\.?$",
    re.I,
)
_REFERENCES = re.compile(r"^(?:[\dA-Z.]+\s+)?(?:references|bibliography)\.?$", re.I)
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or",
                "the", "to", "vs", "via", "with", "without", "into", "over", "under"}  # fmt: skip


def heading(line: str) -> str | None:
    """The section heading a line is, or None: '4.6 Handling Temporary Failures', 'Abstract'."""
    s = line.strip().lstrip(HEADING_MARK)
    if len(s) > 80 or len(s) < 3:
        return None
    if _NAMED.match(s):
        return s.rstrip(".")
    m = _NUMBERED.match(s)
    if not m:
        return None
    title = m.group("title").rstrip()
    words = title.split()
    if len(words) > 10 or title.endswith((",", ";", "-", ":")) or re.search(r"\d{2,}", title):
        return None
    if title.endswith(".") and len(words) > 6:
        return None
    content = [w for w in words if w.lower() not in _SMALL_WORDS and w[0].isalpha()]
    if not content:
        return None
    capitalised = sum(w[0].isupper() for w in content) / len(content)
    dotted = "." in m.group("num").rstrip(".")  # "5.4.2": sentence-case titles are common
    if capitalised < 0.6 and len(words) > 4 and not (dotted and len(words) <= 8):
        return None
    if title.endswith(".") and capitalised < 1:
        return None  # "3. The client retries." is a numbered step, not a heading
    if s.isupper() is False and m.group("num").isalpha() and capitalised < 1:
        return None  # "A replica ..." is prose, not appendix A
    if re.fullmatch(r"[A-H](?:\.\d{1,2})*\.?", m.group("num")) and words[0].endswith((",", ".")):
        return None  # "D. Weaver, and R. Yerneni." is a reference's authors, not appendix D
    return f"{m.group('num').rstrip('.')} {title.rstrip('.')}"


@dataclass
class _Sentence:
    text: str
    pages: tuple[int, ...]
    printed: tuple[str, ...]
    section: str | None
    tokens: int = 0
    caption: bool = False


_CAPTION = re.compile(r"^(?:Figure|Fig\.|Table|TABLE|FIGURE)\s+\d+[.:]")
_OPEN_END = re.compile(rf"(?:\b(?:{'|'.join(sorted(_SMALL_WORDS))})|[:\-–—])$", re.I)
_CAPTION_LINES = 8  # a caption longer than this many lines is prose that starts "Figure 3:"
_TITLE_WORDS = 12  # bold lines with more words between them are a bold paragraph, not a title


def _wrapped_heading(lines: list[str], i: int) -> tuple[str | None, int]:
    """The heading at lines[i] and how many lines it takes: a title that ends in 'and', 'of' or
    ':' continues on the next line ("6.3 Divergent Versions: When and" / "Why?")."""
    title = heading(lines[i])
    if title and _OPEN_END.search(title) and i + 1 < len(lines) and len(lines[i + 1]) < 50:
        joined = heading(f"{lines[i].strip()} {lines[i + 1].strip()}")
        if joined:
            return joined, 2
    return title, 1


def _bold_title(lines: list[str], marked: list[bool], i: int) -> tuple[str | None, int]:
    """The bold title (marked by extraction) at lines[i] and how many lines it takes."""
    n = 0
    while i + n < len(lines) and marked[i + n] and n < 3:
        n += 1
    text = " ".join(ln.strip() for ln in lines[i : i + n])
    return (text, n) if n and len(text.split()) <= _TITLE_WORDS else (None, 1)


def _line_width(lines: list[str]) -> float:
    """A page's typical full text line, in characters (the median of its longer lines)."""
    widths = sorted(len(ln) for ln in lines if len(ln.split()) >= 4)
    return widths[len(widths) // 2] if widths else 60.0


def _is_label(line: str, width: float) -> bool:
    """A line of a figure's own text (axis labels, box names), not of a paragraph."""
    s = line.strip()
    return len(s) < 0.7 * width and not s.endswith((".", "?", "!", ";")) and len(s.split()) <= 6


def _figure_text(lines: list[str], width: float) -> set[int]:
    """Indexes of the lines that are a figure's own text: its labels (a legend, box names,
    axis titles; bold ones too) just above its caption up to a heading or a line of prose,
    and two or more of them just below it, where pdfium read the caption first."""
    out: set[int] = set()

    def label(i: int) -> bool:
        return _is_label(lines[i], width) and not heading(lines[i]) and not _caption(lines[i])

    for c, line in enumerate(lines):
        if not _caption(line):
            continue
        i = c - 1
        while i >= 0 and i not in out and label(i):
            out.add(i)
            i -= 1
        below = c + _caption_length(lines, c, width)
        end = below
        while end < len(lines) and label(end):
            end += 1
        if end - below >= 2:
            out.update(range(below, end))
    return out


def _caption(line: str) -> bool:
    return bool(_CAPTION.match(line.strip()))


def _caption_length(lines: list[str], i: int, width: float) -> int:
    """How many lines the caption starting at lines[i] takes: it goes on while its lines are
    full (wrapped) and have not ended a sentence, and the next does not start one."""
    n = 1
    while (
        n < _CAPTION_LINES
        and i + n < len(lines)
        and len(lines[i + n - 1]) >= 0.8 * width
        and not lines[i + n - 1].rstrip().endswith((".", "?", "!"))
        and not lines[i + n][:1].isupper()
    ):
        n += 1
    return n


def _sentences(pages: Sequence[Page]) -> list[_Sentence]:
    """Sentences in reading order with their section and pages; reference lists left out.

    Figure and table captions come out as sentences of their own after their section's text,
    so a caption set inside a paragraph never splits the paragraph's sentences; the figure's
    own labels just above a caption are dropped. A bold title that is not a section heading
    ("The Fetching Service", "Leader election.") is a sentence of its own, never quoted."""
    blocks: list[tuple[str | None, list[tuple[int, int, str | None]], str, bool]] = []
    section: str | None = None
    in_refs = False
    buf: list[str] = []
    marks: list[tuple[int, int, str | None]] = []  # (offset in block text, page, printed)
    captions: list[tuple[str | None, list, str, bool]] = []
    length = 0

    def flush():
        nonlocal buf, marks, length
        if buf and not in_refs:
            blocks.append((section, marks, " ".join(buf), False))
        if not in_refs:
            blocks.extend(captions)
        captions.clear()
        buf, marks, length = [], [], 0

    for page in pages:
        lines = page.text.split("\n")
        marked = [ln.startswith(HEADING_MARK) for ln in lines]
        lines = [ln.lstrip(HEADING_MARK) for ln in lines]
        width = _line_width(lines)
        figure = _figure_text(lines, width)
        i = 0
        while i < len(lines):
            line = lines[i]
            if i in figure:
                i += 1
                continue
            title, used = _wrapped_heading(lines, i)
            if title:
                flush()
                section = title
                in_refs = bool(_REFERENCES.match(line.strip()))
                i += used
                continue
            bold, used = _bold_title(lines, marked, i)
            if bold:
                flush()
                if not in_refs:
                    blocks.append((section, [(0, page.number, page.printed)], bold, True))
                i += used
                continue
            if _CAPTION.match(line.strip()):
                n = _caption_length(lines, i, width)
                text = " ".join(ln.strip() for ln in lines[i : i + n])
                captions.append((section, [(0, page.number, page.printed)], text, True))
                i += n
                continue
            if not marks or marks[-1][1] != page.number:
                marks.append((length, page.number, page.printed))
            buf.append(line)
            length += len(line) + 1
            i += 1
    flush()

    out: list[_Sentence] = []
    for sec, block_marks, text, caption in blocks:
        starts = [m[0] for m in block_marks]
        for s, e in _page_bounded(text, split_spans(text), starts):
            covered = [
                m
                for i, m in enumerate(block_marks)
                if m[0] < e and (i + 1 == len(starts) or starts[i + 1] > s)
            ]
            out.append(
                _Sentence(
                    text=text[s:e],
                    pages=tuple(m[1] for m in covered),
                    printed=tuple(m[2] for m in covered if m[2]),
                    section=sec,
                    caption=caption,
                )
            )
    return out


def _page_bounded(
    text: str, spans: list[tuple[int, int]], starts: list[int]
) -> list[tuple[int, int]]:
    """A 'sentence' over more than two pages is text without full stops (slides, lists): cut
    it where each page starts, so nothing is quoted across pages it does not need."""
    out = []
    for s, e in spans:
        cuts = [p for p in starts if s < p < e]
        if len(cuts) < 2:
            out.append((s, e))
            continue
        for a, b in zip([s, *cuts], [*cuts, e]):
            while b > a and text[b - 1].isspace():
                b -= 1
            if b > a:
                out.append((a, b))
    return out


def _split_long(sentence: _Sentence, budget: int, count: TokenCounter) -> list[_Sentence]:
    """Cut a sentence longer than the budget into word windows that fit."""
    words = sentence.text.split()
    counts = count(words)
    pieces: list[list[str]] = []
    cur: list[str] = []
    cur_tokens = 0
    for word, n in zip(words, counts):
        for part, tokens in [(word, n)] if n <= budget else _cut_word(word, budget, count):
            if cur and cur_tokens + tokens > budget:
                pieces.append(cur)
                cur, cur_tokens = [], 0
            cur.append(part)
            cur_tokens += tokens
    if cur:
        pieces.append(cur)
    return [
        _Sentence(" ".join(p), sentence.pages, sentence.printed, sentence.section,
                  caption=sentence.caption)
        for p in pieces
    ]  # fmt: skip


def _cut_word(word: str, budget: int, count: TokenCounter) -> list[tuple[str, int]]:
    """A word longer than the budget (a URL, a run of symbols) as pieces that fit, none lost."""
    out = []
    while word:
        size, n = len(word), count([word])[0]
        while n > budget and size > 1:
            size = min(size - 1, max(1, size * budget // n))
            n = count([word[:size]])[0]
        out.append((word[:size], n))
        word = word[size:]
    return out


def chunk_id(paper_id: str, ordinal: int, text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{paper_id}:{ordinal:05d}:{digest}"


def chunk_pages(
    paper_id: str,
    pages: Sequence[Page],
    count: TokenCounter,
    budget: int,
    overlap: int,
    min_tokens: int = 24,
) -> list[Chunk]:
    """Greedy sentence packing within each section, each chunk at most ``budget`` tokens."""
    sentences = _sentences(pages)
    if not sentences:
        return []
    for s, n in zip(sentences, count([s.text for s in sentences])):
        s.tokens = n
    fitted: list[_Sentence] = []
    for s in sentences:
        if s.tokens > budget:
            pieces = _split_long(s, budget, count)
            for p, n in zip(pieces, count([p.text for p in pieces])):
                p.tokens = n
            fitted.extend(pieces)
        else:
            fitted.append(s)

    groups: list[list[_Sentence]] = []
    cur: list[_Sentence] = []
    cur_tokens = 0
    for s in fitted:
        new_section = cur and s.section != cur[-1].section and cur_tokens >= min_tokens
        if cur and (cur_tokens + s.tokens > budget or new_section):
            groups.append(cur)
            tail: list[_Sentence] = []
            if not new_section:
                kept = 0
                for prev in reversed(cur):
                    if kept + prev.tokens > overlap or kept + prev.tokens + s.tokens > budget:
                        break
                    tail.insert(0, prev)
                    kept += prev.tokens
            if len(tail) == len(cur):
                tail = []
            cur, cur_tokens = tail, sum(t.tokens for t in tail)
        cur.append(s)
        cur_tokens += s.tokens
    if cur:
        groups.append(cur)

    chunks = []
    for ordinal, group in enumerate(groups):
        text = " ".join(s.text for s in group)
        spans, at = [], 0
        for s in group:
            spans.append(Sentence(at, at + len(s.text), s.pages, s.printed, s.caption))
            at += len(s.text) + 1
        pages_ = sorted({p for s in group for p in s.pages})
        printed = sorted(  # by number: captions come after their section's text
            {p for s in group for p in s.printed}, key=lambda p: (not p.isdigit(), p.zfill(8))
        )
        sections = [s.section for s in group if s.section]
        chunks.append(
            Chunk(
                id=chunk_id(paper_id, ordinal, text),
                paper_id=paper_id,
                ordinal=ordinal,
                text=text,
                pages=tuple(pages_),
                section=sections[-1] if sections else None,
                printed_pages=tuple(printed),
                sentences=tuple(spans),
            )
        )
    return chunks
