"""A page's text as its glyphs show it, where pdfium's text leaves something out.

- Words pdfium read as one ("The resiliency of our algorithmis optimal", GFS's "the file
  name and chunkindex"): their glyphs stand apart by a word gap. A space goes where two
  glyphs of a line are set further apart than any two glyphs inside a word on that page,
  and at least a third as far as its typical word gap.
- Glyphs pdfium gives no Unicode for: it gives the font's bare code instead (TeX's ε is
  "\\x0f"), or nothing at all (a Type 3 font's symbols).
  The name of the glyph in the font's encoding gives the character (fonts.PageFonts);
  where no name does, GAP stands for it instead of nothing, so the words around it are not
  read as neighbours ("how bad does get?").
- Symbols drawn as pictures inside a line (PBFT's "f" and "+" in "3f+1"): GAP where a
  glyph-sized picture sits between two words of a line ("3 1 is the" reads "3 � 1").

The result keeps, for every character, the index of the pdfium character it stands for, so
that what typesetting shows (typeset) is still read from the right glyph.
"""

from __future__ import annotations

import ctypes
import re
from bisect import bisect_right
from itertools import repeat
from pathlib import Path

import numpy as np

from ddsearch.index.clip import hidden_chars
from ddsearch.ingest.fonts import FontChars

GAP = "\ufffd"  # the Unicode replacement character: a glyph whose character is unknown
_CODES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # never text: a glyph's code
_BREAKS = re.compile(r"\t|\r(?!\n)|(?<!\r)\n")  # not pdfium's "\r\n": maybe a glyph's code
# pdfium marks a hyphen that ends a line as U+FFFE, and some glyphs it cannot name as well
# (EPaxos's γ, "Request(\ufffe)"): a mark not between a letter and the word's rest is a glyph
_NOT_A_HYPHEN = re.compile(r"(?<![^\W\d_])\ufffe|\ufffe(?=[^\w\r\n])")
_LETTER = re.compile(r"[^\W\d_]")
_BLANK = [0x20, 0x0D, 0x0A, 0x09]  # a space, pdfium's line break, a tab
_GAP_RUN = re.compile(f"{GAP}(?:[ ]*{GAP})+")
_OVERLAY = "\u0338"  # TeX's negation slash, drawn over the next glyph: "=" becomes "≠"
_SAME_LINE = 0.25  # baselines this far apart, in line heights, are one line
_MIN_WORD_GAPS = 20  # fewer word gaps on a page tell no typical one
_MIN_PAIRS = 100
_TIGHT = 0.25  # glyphs inside words must sit closer than this share of the word gap...
_MARGIN = 0.06  # ... and a space needs this much (line heights) more than the widest of them
_SHARE = 0.35  # ... and at least this share of the page's median word gap
_PICTURE_GAP = 0.45  # a gap in a line this wide (line heights) may hold a symbol's picture
_PICTURE_MAX = 3.0  # a wider one is a table's columns or a formula's layout
_PICTURE_PAGES = 3  # pages searched for pictures before a PDF is taken to draw no symbols
_PROSE_LETTERS = 20  # a line with fewer letters is a figure's or a formula's: not searched


class Reader:
    """Reads the pages of one PDF, putting back what pdfium's text leaves out."""

    def __init__(self, path: str | Path | None = None):
        self._fonts = FontChars(path) if path is not None else None  # None: no glyph names
        self._searched = 0  # pages whose wide gaps were searched for pictures
        self._drawn = False  # whether this PDF draws symbols as pictures

    def page_text(self, number: int, page, textpage) -> tuple[str, list[int]]:
        """The 0-based page's text with missing word spaces, glyphs and gaps put back and the
        text it clips away left out (ddsearch.index.clip), and for each of its characters the index
        of the pdfium character it stands for."""
        import pypdfium2.raw as raw

        text = _aligned(raw, textpage)
        hidden = hidden_chars(page, textpage) if len(text) else []
        page, textpage = page.raw, textpage.raw
        n = len(text)
        if n == 0:
            return text, []
        glyph = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        codes = {m.start() for m in _CODES.finditer(text)}
        codes |= {m.start() for m in _NOT_A_HYPHEN.finditer(text)}
        generated = raw.FPDFText_IsGenerated
        codes |= {m.start() for m in _BREAKS.finditer(text) if not generated(textpage, m.start())}
        boxes = _boxes(raw, textpage, glyph)
        font = _FontNames(raw, textpage)
        fonts = self._fonts.page(number) if self._fonts else None
        edits: dict[int, str] = {}  # pdfium index -> what stands for that character
        lines = _Lines(text, codes)
        for i in sorted(codes):
            # a glyph is looked up by name where it stands in a line of text or a formula and
            # its font has a name (a nameless Type 3 font numbers its glyphs: "a29"); a line of
            # mostly codes is a figure's, which clean drops
            named = None
            if fonts and text[i] != "\0" and font(i) and lines.text(i):
                named = fonts.named(font(i), ord(text[i]))
            edits[i] = named or GAP
            if not named and font(i) == "":  # a Type 3 font's symbol: its neighbours in the
                for j in _same_font_neighbours(text, i, font, codes):  # font are none either
                    edits[j] = GAP
        for i in _word_gaps(glyph, boxes, codes):
            edits.setdefault(i, " " + text[i])
        for i in self._picture_gaps(raw, page, glyph, boxes, lines):
            edits[i] = f" {GAP} "
        for i in [i for i, e in edits.items() if e == _OVERLAY]:
            edits[i] = ""
            if i + 1 < n and not text[i + 1].isspace():
                edits[i + 1] = edits.get(i + 1, text[i + 1]) + _OVERLAY
        for i in hidden:  # drawn and clipped away: no reader sees it (ddsearch.index.clip)
            edits[i] = ""
        return _apply(text, edits)

    def _picture_gaps(self, raw, page, glyph: np.ndarray, boxes: np.ndarray, lines) -> list[int]:
        """Indexes of the spaces between two glyphs of a line of text where a picture or a
        drawing the size of a glyph stands: a symbol the PDF draws instead of setting it in a
        font. A PDF that shows none on its first pages with wide gaps is not searched further."""
        if not self._drawn and self._searched >= _PICTURE_PAGES:
            return []
        wide = [w for w in _wide_gaps(glyph, boxes) if lines.letters(w[0]) >= _PROSE_LETTERS]
        if not wide:
            return []
        self._searched += 1
        pictures = _pictures(raw, page)
        if not len(pictures):
            return []
        x, y, x2, y2 = pictures.T
        out = []
        for space, x0, x1, base, h in wide:
            inside = (x0 - 1 <= x) & (x2 <= x1 + 1) & (x2 - x < 3 * h) & (y2 - y < 1.5 * h)
            middle = (y + y2) / 2
            if np.any(inside & (base - 0.5 * h <= middle) & (middle <= base + 1.2 * h)):
                out.append(space)
        self._drawn = self._drawn or bool(out)
        return out


class _FontNames:
    """The name of each char's font (pdfium's base font name), read once per char."""

    def __init__(self, raw, textpage):
        self._raw, self._textpage = raw, textpage
        self._buffer = ctypes.create_string_buffer(128)
        self._seen: dict[int, str] = {}

    def __call__(self, i: int) -> str:
        name = self._seen.get(i)
        if name is None:
            size = self._raw.FPDFText_GetFontInfo(self._textpage, i, self._buffer, 128, None)
            name = self._buffer.value.decode("latin-1") if size else ""
            self._seen[i] = name
        return name


def _same_font_neighbours(text: str, i: int, font, codes: set[int]):
    """Chars next to ``i``, no space between, in the same nameless (Type 3) font."""
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(text) and j not in codes and not text[j].isspace() and font(j) == "":
            yield j
            j += step


def _aligned(raw, textpage) -> str:
    """pdfium's text, one character per pdfium char index: a char pdfium leaves out of its
    text (it has no Unicode at all) stands as NUL."""
    text = textpage.get_text_range()
    n = raw.FPDFText_CountChars(textpage.raw)
    if len(text) == n:
        return text
    chars = ["\0"] * n
    for t, ch in enumerate(text):
        i = raw.FPDFText_GetCharIndexFromTextIndex(textpage.raw, t)
        if 0 <= i < n:
            chars[i] = ch
    return "".join(chars)


def _boxes(raw, textpage, glyph: np.ndarray) -> np.ndarray:
    """Each char's loose box (left, top, right, bottom): the height of its font and the
    width it advances by, where it stands. pdfium is asked once per glyph, through a
    prototype that takes plain addresses (ctypes converts those fastest); the spaces and
    line breaks pdfium made up are not asked about."""
    boxes = np.zeros((len(glyph), 4), dtype=np.float32)
    wanted = np.flatnonzero(~np.isin(glyph, [0x20, 0x0D, 0x0A]))
    get = _address_prototype(raw.FPDFText_GetLooseCharBox)
    page = ctypes.cast(textpage, ctypes.c_void_p).value
    start, step = boxes.ctypes.data, boxes.strides[0]
    list(map(get, repeat(page), wanted.tolist(), (start + step * wanted).tolist()))
    return boxes.astype(np.float64)


def _address_prototype(function):
    """``function`` (pdfium's, of a handle, an int and a pointer) taking plain addresses."""
    prototype = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
    return prototype(ctypes.cast(function, ctypes.c_void_p).value or 0)


def _word_gaps(glyph: np.ndarray, boxes: np.ndarray, codes: set[int]) -> list[int]:
    """Indexes of the glyphs that start a word pdfium glued to the one before."""
    left, top, right, bottom = boxes.T
    height = top - bottom
    ink = (height > 0) & ~np.isin(glyph, _BLANK)
    ink[list(codes)] = False
    # neighbouring glyphs of one line (i-1, i), and word gaps (a, space, a+2)
    line = np.abs(bottom[1:] - bottom[:-1]) < _SAME_LINE * np.maximum(height[1:], height[:-1])
    pairs = ink[:-1] & ink[1:] & line
    inner = (left[1:] - right[:-1]) / np.where(height[1:] > 0, height[1:], 1.0)
    a = np.flatnonzero(ink[:-2] & (glyph[1:-1] == 0x20) & ink[2:])
    a = a[np.abs(bottom[a] - bottom[a + 2]) < _SAME_LINE * height[a + 2]]
    word = (left[a + 2] - right[a]) / height[a + 2]
    gaps = inner[pairs]
    if len(word) < _MIN_WORD_GAPS or len(gaps) < _MIN_PAIRS:
        return []
    typical, widest = float(np.median(word)), float(np.percentile(gaps, 99))
    if widest > _TIGHT * typical:
        return []  # glyph boxes too loose on this page to tell a word gap from a letter's
    found = np.flatnonzero(pairs & (inner >= max(widest + _MARGIN, _SHARE * typical)))
    out = []
    for k in found.tolist():  # a gap between two letters of a letter-spaced word is no word gap
        around = [inner[j] for j in (k - 1, k + 1) if 0 <= j < len(inner) and pairs[j]]
        if all(g < inner[k] / 2 for g in around):
            out.append(k + 1)
    return out


def _wide_gaps(glyph: np.ndarray, boxes: np.ndarray) -> list[tuple]:
    """(space index, left, right, baseline, height) of each single space between two glyphs
    of a line that leaves room for a glyph of its own."""
    left, top, right, bottom = boxes.T
    height = top - bottom
    ink = ~np.isin(glyph, _BLANK)
    a = np.flatnonzero(ink[:-2] & (glyph[1:-1] == 0x20) & ink[2:])
    b = a + 2
    h = np.maximum(height[a], height[b])
    gap = left[b] - right[a]
    keep = (h > 0) & (np.abs(bottom[a] - bottom[b]) < _SAME_LINE * np.maximum(h, 1e-6))
    keep &= (gap > _PICTURE_GAP * h) & (gap < _PICTURE_MAX * h)
    return [
        (int(i) + 1, right[i], left[j], min(bottom[i], bottom[j]), hh)
        for i, j, hh in zip(a[keep], b[keep], h[keep])
    ]


def _pictures(raw, page) -> np.ndarray:
    """Bounds (left, bottom, right, top) of the page's images and drawings that could be a
    glyph (not a rule)."""
    out = []
    bounds = [ctypes.c_float() for _ in range(4)]
    refs = [ctypes.byref(v) for v in bounds]
    kinds = (raw.FPDF_PAGEOBJ_IMAGE, raw.FPDF_PAGEOBJ_PATH)
    for i in range(raw.FPDFPage_CountObjects(page)):
        obj = raw.FPDFPage_GetObject(page, i)
        if raw.FPDFPageObj_GetType(obj) in kinds and raw.FPDFPageObj_GetBounds(obj, *refs):
            x, y, x2, y2 = (v.value for v in bounds)
            if x2 - x > 1 and y2 - y > 1:
                out.append((x, y, x2, y2))
    return np.array(out, dtype=np.float64).reshape(-1, 4)


class _Lines:
    """The letters and glyph codes of the line a char stands in: a line of more codes than
    letters, or of few letters, is a figure's or a formula's, not text."""

    def __init__(self, text: str, codes: set[int]):
        self._text = text
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)] + [len(text) + 1]
        self._codes = sorted(codes)
        self._seen: dict[int, tuple[int, int]] = {}

    def _line(self, i: int) -> tuple[int, int]:
        n = bisect_right(self._starts, i) - 1
        if n not in self._seen:
            start, end = self._starts[n], self._starts[n + 1] - 1
            codes = bisect_right(self._codes, end) - bisect_right(self._codes, start - 1)
            self._seen[n] = len(_LETTER.findall(self._text, start, end)), codes
        return self._seen[n]

    def letters(self, i: int) -> int:
        return self._line(i)[0]

    def text(self, i: int) -> bool:
        """Whether the line has at least as many letters as glyph codes."""
        letters, codes = self._line(i)
        return letters >= codes


def _apply(text: str, edits: dict[int, str]) -> tuple[str, list[int]]:
    """The text with each edited character replaced, and each output character's source;
    GAPs with only spaces between them are one GAP."""
    parts: list[str] = []
    source: list[int] = []
    at = 0
    for i in sorted(edits):
        parts += [text[at:i], edits[i]]
        source += [*range(at, i), *[i] * len(edits[i])]
        at = i + 1
    parts.append(text[at:])
    source += range(at, len(text))
    out = "".join(parts)
    if GAP not in out:
        return out, source
    merged, kept, at = [], [], 0
    for m in _GAP_RUN.finditer(out):
        merged.append(out[at : m.start() + 1])
        kept += source[at : m.start() + 1]
        at = m.end()
    merged.append(out[at:])
    kept += source[at:]
    return "".join(merged), kept
