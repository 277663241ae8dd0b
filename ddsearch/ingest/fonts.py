"""Characters from a PDF's own font encodings, for glyphs pdfium gives no Unicode for.

pdfium maps a glyph to Unicode by its name in the font's encoding, through the Adobe Glyph
List; TeX's math fonts name glyphs the list lacks ("epsilon1", "prime", "precedesequal",
"floorleftbig"), and then pdfium gives the bare character code instead: Spanner's "how bad
does ε get?" reads "how bad does \\x0f get?". The name is in the PDF: in the font's
/Encoding /Differences, or, for an embedded Type 1 font that keeps its own encoding, in the
font program's "dup 15 /epsilon1 put". pypdf reads both, and its glyph list knows TeX's
names, so the character comes back. Read only for the pages that need it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BUILTIN = re.compile(rb"dup\s+(\d{1,3})\s*/([^\s/\[\]{}()<>]+)\s+put")
_UNI = re.compile(r"^u(?:ni)?([0-9A-F]{4,6})$")
_NUMBERED = re.compile(r"^a\d+$")
_SUBSET = re.compile(r"^[A-Z]{6}\+")  # "GMFWUF+CMMI10": a subset of CMMI10
_DEPTH = 3  # form XObjects inside form XObjects: fonts a page uses through them


def _glyph_list() -> dict[str, str]:
    """pypdf's glyph list (the Adobe Glyph List with TeX's names), empty if it moved."""
    try:
        from pypdf._codecs import adobe_glyphs
    except ImportError:  # pragma: no cover - a pypdf that keeps it elsewhere: gaps get marked
        return {}
    return adobe_glyphs


def char_of(name: str, glyphs: dict[str, str]) -> str | None:
    """The character a glyph name stands for: 'epsilon1' -> 'ϵ', 'uni2032' -> '′'; None for
    a name that only numbers the glyph ('a29', as bitmap fonts name theirs: pypdf's list
    reads it as chr(29)) and for one that stands for no printable character."""
    if _NUMBERED.match(name):
        return None
    found = glyphs.get("/" + name)
    if not found:
        m = _UNI.match(name)
        code = int(m.group(1), 16) if m else -1
        found = chr(code) if 0 <= code <= 0x10FFFF else None
    if not found or any(unicodedata.category(ch)[0] == "C" for ch in found):
        return None
    return found


class FontChars:
    """What the glyph names of one PDF's fonts say, read page by page when first asked."""

    def __init__(self, path: str | Path):
        self.path = path
        self._reader: Any = None
        self._broken = False
        self._pages: dict[int, dict[str, _Encoding]] = {}
        self._read: dict[object, _Encoding] = {}  # by font object: pages share their fonts
        self._forms_read: set[int] = set()  # pages whose forms' fonts were read as well

    def page(self, number: int) -> PageFonts:
        """The fonts of the 0-based page ``number``."""
        return PageFonts(self, number)

    def _encoding(self, page: int, font: str) -> _Encoding | None:
        if self._broken:
            return None
        try:
            fonts = self._pages.get(page)
            if fonts is None:  # the page's own fonts first; those of its forms if need be
                fonts = self._pages[page] = self._read_page(page, 0)
            if font not in fonts and page not in self._forms_read:
                fonts.update(self._read_page(page, _DEPTH))
                self._forms_read.add(page)
        except Exception:  # a PDF pypdf cannot read is no worse off: its gaps get marked
            self._broken = True
            return None
        return fonts.get(font)

    def _read_page(self, page: int, depth: int) -> dict[str, _Encoding]:
        if self._reader is None:
            import pypdf

            logging.getLogger("pypdf").setLevel(logging.ERROR)
            warnings.filterwarnings("ignore", module="pypdf")
            self._reader = pypdf.PdfReader(self.path)
        glyphs = _glyph_list()
        out: dict[str, _Encoding] = {}
        for base, ref in _fonts(self._reader.pages[page].get("/Resources"), depth, set()):
            key = getattr(ref, "idnum", None) or id(ref)
            encoding = self._read.get(key)
            if encoding is None:
                encoding = self._read[key] = _read_encoding(ref.get_object(), glyphs)
            old = out.get(base)
            if old is not None:  # two fonts of one name: keep what they agree on
                codes = {c: ch for c, ch in encoding.codes.items() if old.codes.get(c, ch) == ch}
                encoding = _Encoding(codes)
            out[base] = encoding
        return out


class PageFonts:
    """The glyph names of one page's fonts (a font is named as pdfium names it: its
    /BaseFont less any subset tag)."""

    def __init__(self, chars: FontChars, number: int):
        self._chars, self._number = chars, number

    def named(self, font: str, code: int) -> str | None:
        """The character the glyph at ``code`` is named for, or None where the PDF does not
        tell."""
        encoding = self._chars._encoding(self._number, font)
        return encoding.codes.get(code) if encoding else None


@dataclass
class _Encoding:
    codes: dict[int, str | None]  # code -> the character its glyph is named for


def _fonts(resources, depth: int, seen: set[int]):
    """(base font name, font reference) of every font the resources reach."""
    resources = resources.get_object() if resources is not None else None
    if not hasattr(resources, "get") or id(resources) in seen:
        return
    seen.add(id(resources))
    fonts = resources.get("/Font")
    fonts = fonts.get_object() if fonts is not None else {}
    for ref in fonts.values() if hasattr(fonts, "values") else ():
        font = ref.get_object()
        base = font.get("/BaseFont")
        if base is not None:
            yield _SUBSET.sub("", str(base).lstrip("/")), ref
        elif font.get("/Subtype") == "/Type3":
            yield "", ref  # pdfium names a Type 3 font only by its /BaseFont, if it has one
    if depth <= 0:
        return
    xobjects = resources.get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else {}
    for ref in xobjects.values() if hasattr(xobjects, "values") else ():
        xobject = ref.get_object()
        if xobject.get("/Subtype") == "/Form":
            yield from _fonts(xobject.get("/Resources"), depth - 1, seen)


def _read_encoding(font, glyphs: dict[str, str]) -> _Encoding:
    """Code -> character by the font's encoding: /Differences over the program's own."""
    table: dict[int, str | None] = {}
    descriptor = font.get("/FontDescriptor")
    program = descriptor.get_object().get("/FontFile") if descriptor is not None else None
    if program is not None:  # an embedded Type 1 font: its encoding, in the clear part
        data = program.get_object().get_data()
        clear = data.split(b"eexec", 1)[0]
        for code, name in _BUILTIN.findall(clear):
            table[int(code)] = char_of(name.decode("latin-1"), glyphs)
    encoding = font.get("/Encoding")
    encoding = encoding.get_object() if encoding is not None else None
    differences = (
        encoding.get("/Differences") if encoding is not None and hasattr(encoding, "get") else None
    )
    code = 0
    for item in differences.get_object() if differences is not None else ():
        if isinstance(item, int):
            code = item
        else:
            table[code] = char_of(str(item).lstrip("/"), glyphs)
            code += 1
    return _Encoding(table)
