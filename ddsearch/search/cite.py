"""Citation keys and human-readable citations for search hits.

Keys follow the Google Scholar / Better BibTeX convention ``decandia2007dynamo``:
first author's surname (ASCII-folded, lowercased), year, first significant title word.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ddsearch.models import Hit, Paper

# Words skipped when choosing the title word of a key.
STOPWORDS = frozenset({
    "a", "an", "the", "on", "of", "in", "for", "and", "or", "but", "nor", "to", "towards",
    "toward", "with", "without", "how", "what", "why", "when", "where", "which", "who", "whom",
    "whose", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "at", "by",
    "from", "into", "onto", "upon", "over", "under", "about", "via", "vs", "versus", "as", "it",
    "its", "this", "that", "these", "those", "we", "our", "you", "your", "can", "using", "use",
    "new", "not", "no", "yet", "so", "than", "then", "there", "their", "they",
})  # fmt: skip

# Lowercase words that start a family name ("Robbert van Renesse", "Ludwig von Mises").
PARTICLES = frozenset({
    "van", "von", "der", "den", "de", "del", "della", "dela", "di", "da", "das", "dos", "du",
    "des", "le", "la", "ter", "ten", "zu", "zur", "af", "av",
})  # fmt: skip

# Generational suffixes kept with the family name ("Steele Jr.") but left out of keys.
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})

# Letters that NFKD does not decompose into ASCII.
_FOLD_EXTRA = str.maketrans(
    {
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "þ": "th",
        "Þ": "Th",
        "ð": "d",
        "Ð": "D",
        "ı": "i",
    }
)


def ascii_fold(text: str) -> str:
    """Text with accents removed and non-ASCII letters transliterated ("Gödel" -> "Godel")."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD_EXTRA))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def split_name(full: str) -> tuple[str, str]:
    """(given, family) of a personal name.

    Accepts "Given Family", "Given von Family" (the family keeps its lowercase particle:
    "Robbert van Renesse" -> ("Robbert", "van Renesse")), "Family, Given" and single names
    (-> ("", name)).
    """
    full = " ".join(full.split())
    if not full:
        return "", ""
    if "," in full:
        family, _, given = full.partition(",")
        return given.strip(), family.strip()
    words = full.split(" ")
    suffix = ""
    if len(words) > 2 and words[-1].lower() in _SUFFIXES:  # "Guy L. Steele Jr."
        suffix = " " + words.pop()
    if len(words) == 1:
        return "", words[0] + suffix
    # the family starts at the first lowercase particle after the first word, else it is
    # the last word
    start = len(words) - 1
    for i in range(1, len(words) - 1):
        if words[i].lower() in PARTICLES or words[i][:1].islower():
            start = i
            break
    return " ".join(words[:start]), " ".join(words[start:]) + suffix


def surname(full: str) -> str:
    """The family name of a personal name, as printed ("DeCandia", "van Renesse")."""
    return split_name(full)[1]


def _key_part(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", ascii_fold(text).lower())


def _title_word(title: str) -> str:
    words = [w for w in re.split(r"[^a-z0-9]+", ascii_fold(title).lower()) if w]
    for word in words:  # a bare number next to the year reads badly: "smith2020" + "50"
        if word not in STOPWORDS and not word.isdigit():
            return word
    return words[0] if words else ""


def base_key(paper: Paper) -> str:
    """The key of a paper before disambiguation: surname + year + title word."""
    family = surname(paper.authors[0]).split(" ") if paper.authors else []
    if len(family) > 1 and family[-1].lower() in _SUFFIXES:
        family.pop()
    name = _key_part(" ".join(family))
    year = str(paper.year) if paper.year else ""
    key = (name or "anon") + year + _title_word(paper.title)
    return key


def _suffix(n: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa', ..."""
    out = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        out = chr(ord("a") + r) + out
    return out


def citable(listed: Paper | None, stored: Paper) -> Paper:
    """The paper a citation names, of an indexed paper (``stored``, as ingest recorded it):
    the catalog's entry when it has one (``listed``), with the user's own key (from --bib) and
    the local PDF ingest read; else the paper as recorded."""
    return replace(listed, key=stored.key, path=stored.path) if listed else stored


def known_papers(catalog: Iterable[Paper], indexed: Iterable[Paper] = ()) -> dict[str, Paper]:
    """Paper id -> the paper every command cites: the catalog's entries, and each indexed
    paper as :func:`citable` names it."""
    papers = {p.id: p for p in catalog}
    for paper in indexed:
        papers[paper.id] = citable(papers.get(paper.id), paper)
    return papers


def citation_keys(papers: Iterable[Paper]) -> dict[str, str]:
    """Paper id -> citation key, unique across papers.

    A paper's own key (the user's, from their .bib) is used as given; when two papers claim
    one, the first by paper id keeps it. The others get generated keys, which never equal a
    user's key (not even in case: BibTeX compares keys case-insensitively). Papers whose
    generated keys collide get 'a', 'b', ... appended in order of paper id, so the same set
    of papers always gets the same keys.
    """
    by_id = {p.id: p for p in papers}
    keys: dict[str, str] = {}
    reserved: set[str] = set()  # the users' keys, lowercased
    for pid in sorted(by_id):
        own = by_id[pid].key
        if own and own.lower() not in reserved:
            keys[pid] = own
            reserved.add(own.lower())
    groups: dict[str, list[str]] = defaultdict(list)
    for pid in sorted(by_id):
        if pid not in keys:
            groups[base_key(by_id[pid])].append(pid)
    taken = {base for base, ids in groups.items() if len(ids) == 1 and base not in reserved}
    for base in sorted(groups):
        ids = groups[base]
        if len(ids) == 1 and base not in reserved:
            keys[ids[0]] = base
            continue
        n = 0
        for pid in ids:
            while (
                base + _suffix(n) in taken
                or base + _suffix(n) in groups
                or base + _suffix(n) in reserved
            ):
                n += 1
            keys[pid] = base + _suffix(n)
            taken.add(keys[pid])
            n += 1
    return keys


def author_string(authors: Iterable[str]) -> str:
    """ "Lamport", "Gilbert and Lynch", "DeCandia et al."; "" when there are no authors."""
    names = [surname(a) for a in authors if a.strip()]
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def page_range(first: str, last: str) -> str:
    """'5' or '5–6' (en dash)."""
    return first if first == last else f"{first}–{last}"


def page_runs(labels: list[str]) -> str:
    """Sorted page labels as runs: '5', '5–6', '1, 3–4' (a gap is never bridged); labels that
    are not numbers ('iv', 'S3') as their first and last."""
    if not all(p.isdigit() for p in labels):
        return page_range(labels[0], labels[-1])
    runs: list[list[int]] = []
    for n in map(int, labels):
        if runs and n <= runs[-1][1] + 1:
            runs[-1][1] = max(runs[-1][1], n)
        else:
            runs.append([n, n])
    return ", ".join(page_range(str(a), str(b)) for a, b in runs)


@dataclass(frozen=True)
class Citation:
    """Where a hit comes from, ready to print or export."""

    key: str
    paper_id: str
    authors: str  # "DeCandia et al."
    author_list: tuple[str, ...]
    year: int | None
    title: str
    venue: str | None
    pages: str | None  # "p. 209", "pp. 209–210", "PDF p. 5", "PDF pp. 5–6", "PDF pp. 1, 3–4"
    locator: str | None  # the page numbers alone: "209", "5–6", "1, 3–4"
    printed: bool  # whether locator is the page number printed on the paper
    pdf_page: int | None  # first PDF page (1-based index in the file)
    link: str | None  # deep link to pdf_page, when there is a url or a local file
    doi: str | None = None
    url: str | None = None


def deep_link(paper: Paper, page: int | None) -> str | None:
    """paper.url (else the local file as a file:// URI) opened at PDF page ``page``."""
    if paper.url:
        base = paper.url.split("#", 1)[0]
    elif paper.path:
        base = Path(paper.path).expanduser().resolve().as_uri()
    else:
        return None
    return f"{base}#page={page}" if page else base


def make_citation(hit: Hit, key: str) -> Citation:
    """The citation of one hit: who, when, what, where, which pages, and a link there.

    The pages are the quote's, where the hit has one: what a reader checks is the quote."""
    paper, chunk = hit.paper, hit.chunk
    pdf_pages = sorted(hit.cited_pages)
    printed_pages = [
        p for p in (hit.quote_printed if hit.quote_pages else chunk.printed_pages) if p
    ]
    if all(p.isdigit() for p in printed_pages):
        printed_pages.sort(key=int)
    if len(printed_pages) != len(pdf_pages):
        printed_pages = []  # some of the pages have no printed number: cite PDF pages
    printed = bool(printed_pages)
    labels = list(dict.fromkeys(printed_pages)) if printed else [str(p) for p in pdf_pages]
    locator = page_runs(labels) if labels else None
    pages = None
    if locator:
        prefix = "pp." if "–" in locator or "," in locator else "p."
        pages = f"{prefix} {locator}" if printed else f"PDF {prefix} {locator}"
    first = pdf_pages[0] if pdf_pages else None
    return Citation(
        key=key,
        paper_id=paper.id,
        authors=author_string(paper.authors),
        author_list=tuple(paper.authors),
        year=paper.year,
        title=paper.title,
        venue=paper.venue,
        pages=pages,
        locator=locator,
        printed=printed,
        pdf_page=first,
        link=deep_link(paper, first),
        doi=paper.doi,
        url=paper.url,
    )


def format_citation(c: Citation) -> str:
    """One line: 'DeCandia et al. (2007). Dynamo: ... . SOSP. p. 5. https://...#page=5'."""
    head = c.authors or "Anonymous"
    parts = [f"{head} ({c.year if c.year else 'n.d.'})", c.title.rstrip(".")]
    if c.venue:
        parts.append(c.venue)
    if c.pages:
        parts.append(c.pages)
    line = ". ".join(parts) + "."
    return f"{line} {c.link}" if c.link else line
