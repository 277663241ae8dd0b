"""A reference manager's BibTeX/BibLaTeX export read into Papers, each with its PDF.

The ``file`` field comes in the forms the common tools write: Zotero (``Title:/abs.pdf:mime``,
several joined by ``;``, with ``\\``, ``:`` and ``;`` escaped by a backslash), Better BibTeX
(``/abs.pdf``) and JabRef (``:rel.pdf:PDF``, relative to the .bib's folder or to its
``jabref-meta: fileDirectory``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ddsearch.catalog import slugify
from ddsearch.models import Paper


class BibError(Exception):
    """A .bib file that cannot be read at all."""


@dataclass(frozen=True)
class BibEntry:
    """One entry of a .bib: its paper (id = the key's slug), its PDF, or why it has none."""

    key: str
    bib: Path
    line: int  # 1-based line of the entry in the .bib
    paper: Paper
    pdf: Path | None = None
    problem: str | None = None  # why the entry cannot be ingested
    fatal: bool = False  # the problem is an error (a broken link), not just "no PDF"


def key_id(key: str) -> str:
    """A stable paper id from a citation key: 'Burrows:2006:Chubby' -> 'burrows-2006-chubby'."""
    return slugify(key)


def disambiguated(key: str) -> str:
    """The id of a key whose slug another paper already has: slug plus a hash of the key."""
    return f"{key_id(key)}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"


# ---------------------------------------------------------------- the file field


def _split(text: str, sep: str) -> list[str]:
    """text split at each ``sep`` not escaped by a backslash; escapes are kept."""
    out, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\:;])", r"\1", text)


def attachments(value: str) -> list[tuple[str, str]]:
    """(path, type) of each file in a ``file`` field; type is '' when the field has none."""
    found = []
    for part in _split(value, ";"):
        pieces = [_unescape(p) for p in _split(part.strip(), ":")]
        if not "".join(pieces).strip():
            continue
        if len(pieces) == 1:
            path, kind = pieces[0], ""
        elif len(pieces) == 2:  # "C:\x.pdf" unescaped, or "description:path"
            drive = len(pieces[0]) == 1 and pieces[0].isalpha()
            path, kind = (":".join(pieces), "") if drive else (pieces[1], "")
        else:
            path, kind = ":".join(pieces[1:-1]), pieces[-1]
        found.append((path.strip(), kind.strip()))
    return found


def _candidates(path: str, folders: list[Path]) -> list[Path]:
    texts = [path]
    plain = re.sub(r"\\([_&%$#])", r"\1", path.replace("{", "").replace("}", ""))
    if plain != path:  # a path that went through LaTeX escaping
        texts.append(plain)
    out = []
    for text in texts:
        for form in dict.fromkeys((text, unicodedata.normalize("NFC", text),
                                   unicodedata.normalize("NFD", text))):  # fmt: skip
            p = Path(form).expanduser()
            out += [p] if p.is_absolute() else [f / p for f in folders]
    return out


def is_pdf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return b"%PDF-" in f.read(1024)
    except OSError:
        return False


def find_pdf(value: str, folders: list[Path]) -> tuple[Path | None, str | None, bool]:
    """(the PDF, None, False), or (None, why there is none, whether that is an error)."""
    files = attachments(value)
    if not files:
        return None, "no file attached", False
    missing: list[str] = []
    others: list[str] = []
    for path, kind in files:
        found = next((c for c in _candidates(path, folders) if c.is_file()), None)
        claims_pdf = "pdf" in kind.lower() or path.lower().endswith(".pdf")
        if found is None:
            (missing if claims_pdf else others).append(path)
        elif is_pdf(found):
            return found.resolve(), None, False
        else:
            others.append(f"{found.name} (not a PDF file)" if claims_pdf else found.name)
    if missing:
        return None, f"file not found: {missing[0]}", True
    return None, f"not a PDF: {', '.join(others)}", False


# ---------------------------------------------------------------- metadata


def _decoder():
    from pylatexenc.latex2text import LatexNodes2Text

    return LatexNodes2Text()


def _text(value: str, decoder) -> str:
    """A field as plain text: LaTeX accents and commands decoded, braces gone, spaces single."""
    try:
        text = decoder.latex_to_text(value)
    except Exception:  # pylatexenc is lenient; a field it still chokes on is kept raw
        text = value
    return " ".join(text.replace("{", "").replace("}", "").split())


def person(raw: str, decoder) -> str:
    """One BibTeX name as 'Given von Family' (the catalog's form) when that form reads back
    unambiguously, else as 'Family, Given' ('García Márquez, Gabriel', 'Steele Jr., Guy')."""
    from bibtexparser.middlewares.names import parse_single_name_into_parts

    try:
        parts = parse_single_name_into_parts(raw, strict=False)
    except Exception:
        return _text(raw, decoder)
    first = _text(" ".join(parts.first), decoder)
    von = _text(" ".join(parts.von), decoder)
    last = _text(" ".join(parts.last + parts.jr), decoder)
    family = " ".join(w for w in (von, last) if w)
    plain = (
        len(last.split()) == 1
        and not parts.jr
        and (not von or von[:1].islower())
        and not any(w[:1].islower() for w in first.split())
    )
    if plain:
        return f"{first} {family}" if first else family
    return f"{family}, {first}" if first else f"{family},"


def authors(value: str, decoder) -> tuple[str, ...]:
    from bibtexparser.middlewares.names import split_multiple_persons_names

    names = [n for n in split_multiple_persons_names(value) if n.strip()]
    return tuple(p for p in (person(n, decoder) for n in names) if p and p.lower() != "others")


def normal_doi(doi: str | None) -> str | None:
    """'https://doi.org/10.1/X' / 'doi:10.1/x' -> '10.1/x' (DOIs are case-insensitive)."""
    if not doi:
        return None
    doi = re.sub(r"^(https?://(dx\.)?doi\.org/|doi:)", "", doi.strip(), flags=re.I)
    return doi.lower() or None


def _year(fields: dict[str, str]) -> int | None:
    m = re.search(r"\b(\d{4})\b", fields.get("year") or fields.get("date") or "")
    return int(m.group(1)) if m else None


VENUE_FIELDS = ("booktitle", "journal", "journaltitle", "eventtitle", "howpublished",
                "institution", "school", "publisher")  # fmt: skip


def entry_paper(key: str, kind: str, fields: dict[str, str], decoder) -> Paper:
    """The Paper of one entry (its id the key's slug; no path yet)."""

    def text(*names: str) -> str | None:
        for name in names:
            if fields.get(name, "").strip():
                return _text(fields[name], decoder)
        return None

    doi = fields.get("doi", "").replace("\\_", "_").replace("{", "").replace("}", "").strip()
    pages = fields.get("pages", "").replace("{", "").replace("}", "").strip()
    return Paper(
        id=key_id(key),
        title=text("title") or key,
        authors=authors(fields["author"], decoder) if fields.get("author") else (),
        year=_year(fields),
        venue=text(*VENUE_FIELDS),
        doi=doi or None,
        kind=kind.lower(),
        volume=text("volume"),
        number=text("number", "issue"),
        pages=pages or None,
        publisher=text("publisher"),
        institution=text("institution", "school"),
        key=key,
    )


def _file_dirs(library, bib: Path) -> list[Path]:
    """The .bib's folder, after the folders its JabRef metadata names for files."""
    dirs = []
    for c in library.comments:
        m = re.match(r"\s*jabref-meta:\s*fileDirectory[^:]*:(.*?);?\s*$", getattr(c, "comment", ""))
        if m and m.group(1).strip():
            d = Path(_unescape(m.group(1).strip())).expanduser()
            dirs.append(d if d.is_absolute() else bib.parent / d)
    return dirs + [bib.parent]


def read_bib(path: Path) -> tuple[list[BibEntry], list[tuple[str, str]]]:
    """The entries of a .bib, and (label, reason) of each block that could not be read
    (a syntax error, a duplicate key: the first entry with a key is the one kept)."""
    import bibtexparser
    from bibtexparser.model import DuplicateBlockKeyBlock, ParsingFailedBlock

    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BibError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    parser_log = logging.getLogger("bibtexparser")
    level = parser_log.level
    parser_log.setLevel(logging.CRITICAL)  # failed blocks are reported by us, with the entry
    try:
        library = bibtexparser.parse_string(text)
    finally:
        parser_log.setLevel(level)
    decoder = _decoder()
    folders = _file_dirs(library, path.resolve())
    problems = []
    for block in library.failed_blocks:
        line = (block.start_line or 0) + 1
        if isinstance(block, DuplicateBlockKeyBlock):
            problems.append((block.key, f"duplicate key in {path.name} line {line}; the first "
                                        "entry with this key is the one used"))  # fmt: skip
        elif isinstance(block, ParsingFailedBlock):
            head = (block.raw or "").strip().splitlines()[0][:60] if block.raw else "?"
            problems.append((f"{path.name}:{line}", f"cannot parse the entry {head!r}"))
    entries = []
    for entry in library.entries:
        fields = {f.key.lower(): str(f.value) for f in entry.fields}
        paper = entry_paper(entry.key, entry.entry_type, fields, decoder)
        pdf, problem, fatal = find_pdf(fields.get("file", ""), folders)
        line = (entry.start_line or 0) + 1
        entries.append(BibEntry(entry.key, path, line, paper, pdf, problem, fatal))
    return entries, problems
