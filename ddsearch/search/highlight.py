"""Where a quote stands on its PDF pages: rectangles from pdfium's character boxes.

A quote is index text, cleaned at ingest (hyphenated words rejoined, page numbers and running
heads dropped, small print moved out of the sentence it interrupted), so it is found among the
page's own characters by their letters and digits alone (:func:`~.pdfs.letters`): in one piece
where it can be, else as the best chain of exact runs in page order, whatever the page adds
between them (a footnote, a page number, a figure's labels) left out. A quote that crosses a
page break is looked for on its pages read one after the other. Each run's characters give
pdfium's rectangles, merged into one per line.
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

from ddsearch.models import Highlight, Hit
from ddsearch.search.pdfs import LOCK, PageError, Pdfs, letters

SEED = 8  # letters a run must share at least to anchor the chain
LEFTOVER = 16  # letters of the quote no run covers that are looked for on their own
_SEED_PLACES = 24  # a seed found in more places than this anchors nothing
_MAX_BLOCKS = 300  # the longest matches chained (the chain is quadratic in them)
_JUMP = 40  # letters of added page text a jump between two runs costs one letter for
_BREAK = re.compile(r"[\r\n\0]")
_HYPHENS = ("-", "\u00ad", "\u2010", "\ufffe", "\x02")  # how pdfium reads a line-end hyphen

Run = tuple[int, int, int]  # (page index, first character, end character)
Block = tuple[int, int, int]  # (quote letter, page letter, length)


# ---------------------------------------------------------------- alignment (pure)


class _Page:
    """The letters of the pages read one after the other, and where their seeds stand."""

    def __init__(self, letters_: str):
        self.p = letters_
        self._seeds: dict[str, list[int]] | None = None

    @property
    def seeds(self) -> dict[str, list[int]]:
        if self._seeds is None:
            self._seeds = defaultdict(list)
            p = self.p
            for j in range(len(p) - SEED + 1):
                self._seeds[p[j : j + SEED]].append(j)
        return self._seeds

    def match(self, q: str, depth: int = 0) -> list[Block]:
        """Where the letters ``q`` stand: in one piece, else the best chain of runs in order,
        the few letters left next to them, and what is left longer looked for on its own."""
        start = self.p.find(q)
        if start >= 0:
            return [(0, start, len(q))]
        chain = self._edges(q, _chain(self._blocks(q)))
        out = list(chain)
        if depth < 2:
            for qa, qb in _uncovered(len(q), chain):
                if qb - qa >= LEFTOVER:
                    found = self.match(q[qa:qb], depth + 1)
                    if sum(n for *_, n in found) >= 0.6 * (qb - qa):
                        out += [(qa + i, j, n) for i, j, n in found]
        return out

    def _blocks(self, q: str) -> list[Block]:
        """Maximal exact matches of SEED letters or more, the longest first."""
        p, seeds = self.p, self.seeds
        out: list[Block] = []
        seen: set[tuple[int, int]] = set()
        for i in range(len(q) - SEED + 1):
            places = seeds.get(q[i : i + SEED], ())
            if len(places) > _SEED_PLACES:
                continue
            for j in places:
                a, b = i, j  # the match may start before this seed (a common one, skipped)
                while a and b and q[a - 1] == p[b - 1]:
                    a, b = a - 1, b - 1
                if (a, b) in seen:
                    continue
                seen.add((a, b))
                n = i - a + SEED
                while a + n < len(q) and b + n < len(p) and q[a + n] == p[b + n]:
                    n += 1
                out.append((a, b, n))
        return sorted(out, key=lambda b: -b[2])[:_MAX_BLOCKS]

    def _edges(self, q: str, chain: list[Block]) -> list[Block]:
        """The chain with the few letters left before, between and after its runs found
        whole right next to them (a word cut by a footnote mark, a page number)."""
        if not chain:
            return chain
        p = self.p
        out: list[Block] = []
        ends = [(0, -1)] + [(i + n, j + n) for i, j, n in chain]
        starts = [(i, j) for i, j, _ in chain] + [(len(q), -1)]
        for k, ((qa, pa), (qb, pb)) in enumerate(zip(ends, starts)):
            left = q[qa:qb]
            if 0 < len(left) < 2 * SEED:
                reach = len(left) + 8
                at = p.find(left, pa, pa + reach) if pa >= 0 else -1
                if at < 0 and pb >= 0:
                    at = p.rfind(left, max(0, pb - reach), pb)
                if at >= 0:
                    out.append((qa, at, len(left)))
            if k < len(chain):
                out.append(chain[k])
        return out


def _chain(blocks: list[Block]) -> list[Block]:
    """The chain of blocks, in order on both sides, that covers most of the quote; a jump
    over text the page adds costs a letter per ``_JUMP`` of it, so a short match far away
    does not join, and the tightest of equal chains wins."""
    if not blocks:
        return []
    blocks = sorted(blocks)
    best: list[float] = []
    back: list[tuple[int, int]] = []  # (previous block, letters trimmed off this one's start)
    for b, (i, j, n) in enumerate(blocks):
        score, link = float(n), (-1, 0)
        for a in range(b):
            ai, aj, an = blocks[a]
            trim = max(0, ai + an - i, aj + an - j)
            if trim >= n:
                continue
            jump = j + trim - (aj + an)
            s = best[a] + n - trim - (1 + jump / _JUMP if jump else 0)
            if s > score:
                score, link = s, (a, trim)
        best.append(score)
        back.append(link)
    b = max(range(len(blocks)), key=best.__getitem__)
    chain = []
    while b >= 0:
        i, j, n = blocks[b]
        a, trim = back[b]
        chain.append((i + trim, j + trim, n - trim))
        b = a
    return chain[::-1]


def _uncovered(length: int, blocks: list[Block]):
    """The (start, end) spans of the quote's letters no block covers."""
    at = 0
    for i, _, n in sorted(blocks):
        if i > at:
            yield at, i
        at = max(at, i + n)
    if at < length:
        yield at, length


def align(quote: str, pages: Sequence[str], keys=None) -> list[Run]:
    """Where ``quote`` stands among the characters of ``pages`` (read one after the other;
    a NUL character is one to skip): runs of characters ``(page index, start, end)`` in the
    quote's order; [] when fewer than half its letters are found. ``keys``: the pages'
    :func:`letters`, when they are known already."""
    q, qat = letters(quote)
    if not q:
        return []
    keys = keys or [letters(text) for text in pages]
    starts = [0]  # where each page's letters start among all of them
    for key, _ in keys:
        starts.append(starts[-1] + len(key))
    blocks = _Page("".join(k for k, _ in keys)).match(q)
    if sum(n for *_, n in blocks) < 0.5 * len(q):
        return []  # not this quote: a few shared words are no place to point at
    runs: list[list[int]] = []  # in the quote's order, which the page's may not be
    for i, j, n in sorted(blocks):
        for page, first, last, a, b in _split(keys, starts, i, j, n):
            first, last = _widen(quote, qat, a, b, pages[page], first, last)
            if runs and runs[-1][0] == page and _joins(pages[page], runs[-1], first, last):
                runs[-1][1:] = [min(runs[-1][1], first), max(runs[-1][2], last + 1)]
            else:
                runs.append([page, first, last + 1])
    return [(page, start, end) for page, start, end in runs]


def _split(keys, starts: list[int], i: int, j: int, n: int):
    """The letters j..j+n of the pages read together (the quote's i..i+n) as pieces, one per
    page: (page, first char, last char, first quote letter, last quote letter)."""
    while n > 0:
        page = bisect.bisect_right(starts, j) - 1
        at = keys[page][1]
        k = j - starts[page]
        m = min(n, len(at) - k)
        yield page, at[k], at[k + m - 1], i, i + m - 1
        i, j, n = i + m, j + m, n - m


def _widen(quote: str, qat: list[int], a: int, b: int, text: str, first: int, last: int):
    """A piece of the page widened to the punctuation the quote has around its letters a..b
    ("(", "." or "”", where the page has them too), and to a hyphen that breaks its last
    word at the line's end."""
    k = qat[a] - 1
    while k >= 0 and first > 0 and not quote[k].isspace() and not quote[k].isalnum():
        if text[first - 1] != quote[k]:
            break
        first, k = first - 1, k - 1
    k = qat[b] + 1
    while k < len(quote) and last + 1 < len(text) and not quote[k].isspace() \
            and not quote[k].isalnum():  # fmt: skip
        if text[last + 1] != quote[k]:
            break
        last, k = last + 1, k + 1
    if text[last + 1 : last + 2] in _HYPHENS and _BREAK.match(text, last + 2):
        last += 1
    return first, last


def _joins(text: str, run: list[int], first: int, last: int) -> bool:
    """Whether characters first..last join a run on its page: they overlap it, or follow it
    a few characters on, on the same line (past a footnote mark or a subscript)."""
    _, start, end = run
    if first < end and last >= start:
        return True
    return 0 <= first - end <= 6 and not _BREAK.search(text, end, first)


# ---------------------------------------------------------------- rectangles (pdfium)


def _char_rects(textpage, start: int, end: int) -> list[tuple[float, float, float, float]]:
    """pdfium's rectangles of characters start..end (one per run of a text object)."""
    rects = [textpage.get_rect(k) for k in range(textpage.count_rects(start, end - start))]
    return [r for r in rects if r[2] > r[0] and r[3] > r[1]]


def merge_lines(rects) -> list[list[float]]:
    """Rectangles in reading order merged into one per line: a rectangle joins the one
    before it when they share most of their height and stand side by side or over each
    other (a superscript, the next word set in another font), not when a column's gap or a
    new line parts them; again until none joins (a subscript may have started a line)."""
    out = [list(r) for r in rects]
    while True:
        merged: list[list[float]] = []
        for x0, y0, x1, y1 in out:
            if merged:
                r = merged[-1]
                height = min(r[3] - r[1], y1 - y0)
                overlap = min(r[3], y1) - max(r[1], y0)
                gap = max(x0 - r[2], r[0] - x1)  # < 0: they share some width
                near = gap <= 1.2 * max(r[3] - r[1], y1 - y0)
                if overlap >= 0.5 * height and near:
                    r[:] = [min(r[0], x0), min(r[1], y0), max(r[2], x1), max(r[3], y1)]
                    continue
            merged.append([x0, y0, x1, y1])
        if len(merged) == len(out):
            return merged
        out = merged


def _rounded(rects) -> tuple[tuple[float, float, float, float], ...]:
    return tuple(tuple(round(v, 2) for v in r) for r in rects)


def _visible(text: str, opened) -> list[Run]:
    """The quote's runs on the open pages, found again without any run the page hides; []
    after a few tries (a figure kept in several versions, all but one cut away)."""
    texts = [page.text for page in opened]
    keys = [(page.key, page.at) for page in opened]
    for _ in range(4):
        runs = align(text, texts, keys)
        hidden = [r for r in runs if opened[r[0]].hides(r[1], r[2])]
        if not hidden:
            return runs
        for n, start, end in hidden:
            texts[n] = texts[n][:start] + "\0" * (end - start) + texts[n][end:]
            keys[n] = letters(texts[n])
    return []


class Highlighter:
    """Highlights for hits, from the papers' PDFs; answers are kept (a quote's place on its
    pages does not change while its PDF does not)."""

    def __init__(self, pdfs: Pdfs, max_answers: int = 4096):
        self.pdfs = pdfs
        self.max_answers = max_answers
        self._answers: OrderedDict[tuple, tuple[Highlight, ...]] = OrderedDict()

    def locate(self, record, pages: Sequence[int], text: str) -> tuple[Highlight, ...]:
        """Where ``text`` stands on ``pages`` (1-based, in order) of the record's PDF; () when
        it is not found there. Raises PageError when the PDF is gone or changed."""
        path = self.pdfs.path(record)
        key = (record.sha256, tuple(pages), text)
        with LOCK:
            found = self._answers.get(key)
            if found is not None:
                self._answers.move_to_end(key)
                return found
            opened = [self.pdfs.page(path, n) for n in pages]
            runs = _visible(text, opened)
            rects: dict[int, list] = {}
            for index, start, end in runs:
                page = opened[index]
                rects.setdefault(page.number, []).extend(_char_rects(page.textpage, start, end))
            boxes = {page.number: page.box for page in opened}
            found = tuple(
                Highlight(n, _rounded([boxes[n]])[0], _rounded(merge_lines(r)))
                for n, r in sorted(rects.items())
                if r
            )
            self._answers[key] = found
            while len(self._answers) > self.max_answers:
                self._answers.popitem(last=False)
        return found

    def add(self, hits: Sequence[Hit], records) -> None:
        """Set each hit's ``highlight``: its quote (else its passage) on the pages it cites.
        A hit whose PDF is not here (gone, changed, or on another machine) keeps none."""
        for hit in hits:
            record = records.get(hit.paper.id)
            if record is None:
                continue
            try:
                hit.highlight = self.locate(
                    record, sorted(hit.cited_pages), hit.quote or hit.chunk.text
                )
            except PageError:
                continue
