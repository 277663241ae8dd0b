"""Split a paper's cleaned pages into chunks that fit the model and remember their pages."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ddsearch.models import Chunk, Page
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
    s = line.strip()
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
    if capitalised < 0.6 and len(words) > 4:
        return None
    if title.endswith(".") and capitalised < 1:
        return None  # "3. The client retries." is a numbered step, not a heading
    if s.isupper() is False and m.group("num").isalpha() and capitalised < 1:
        return None  # "A replica ..." is prose, not appendix A
    return f"{m.group('num').rstrip('.')} {title.rstrip('.')}"


@dataclass
class _Sentence:
    text: str
    pages: tuple[int, ...]
    printed: tuple[str, ...]
    section: str | None
    tokens: int = 0


def _sentences(pages: Sequence[Page]) -> list[_Sentence]:
    """Sentences in reading order with their section and pages; reference lists left out."""
    blocks: list[tuple[str | None, list[tuple[int, int, str | None]], str]] = []
    section: str | None = None
    in_refs = False
    buf: list[str] = []
    marks: list[tuple[int, int, str | None]] = []  # (offset in block text, page, printed)
    length = 0

    def flush():
        nonlocal buf, marks, length
        if buf and not in_refs:
            blocks.append((section, marks, " ".join(buf)))
        buf, marks, length = [], [], 0

    for page in pages:
        for line in page.text.split("\n"):
            title = heading(line)
            if title:
                flush()
                section = title
                in_refs = bool(_REFERENCES.match(line.strip()))
                continue
            if not marks or marks[-1][1] != page.number:
                marks.append((length, page.number, page.printed))
            buf.append(line)
            length += len(line) + 1
    flush()

    out: list[_Sentence] = []
    for sec, block_marks, text in blocks:
        starts = [m[0] for m in block_marks]
        for s, e in split_spans(text):
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
                )
            )
    return out


def _split_long(sentence: _Sentence, budget: int, count: TokenCounter) -> list[_Sentence]:
    """Cut a sentence longer than the budget into word windows that fit."""
    words = sentence.text.split()
    counts = count(words)
    pieces, cur, cur_tokens = [], [], 0
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
        _Sentence(" ".join(p), sentence.pages, sentence.printed, sentence.section) for p in pieces
    ]


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
        pages_ = sorted({p for s in group for p in s.pages})
        printed = list(dict.fromkeys(p for s in group for p in s.printed))
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
            )
        )
    return chunks
