"""Export search results (Markdown, JSON) and their bibliography (BibTeX, CSL-JSON, RIS).

A Paper's ``note`` is the catalog's provenance (which copy the PDF is, why there is no url):
it is for whoever keeps the catalog, not for a reader's bibliography, so no export writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ddsearch.models import Hit, Paper
from ddsearch.search.cite import Citation, citation_keys, make_citation, split_name

FORMATS = ("md", "json", "bib", "csl", "ris", "pdf", "png")
BIBLIOGRAPHY_FORMATS = ("bib", "csl", "ris")
PAGE_FORMATS = ("pdf", "png")  # drawn from the papers' own PDFs: ddsearch.search.packet

# checked in order, so ".csl.json" wins over ".json"
_EXTENSIONS = (
    (".csl.json", "csl"),
    (".json", "json"),
    (".md", "md"),
    (".markdown", "md"),
    (".bib", "bib"),
    (".bibtex", "bib"),
    (".ris", "ris"),
    (".pdf", "pdf"),
    (".png", "png"),
)
_ALIASES = {"markdown": "md", "bibtex": "bib", "csl-json": "csl", "csljson": "csl"}


def _formats_help() -> str:
    return "md (.md), json (.json), bib (.bib), csl (.csl.json), ris (.ris), pdf (.pdf), png (.png)"


def format_from_path(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The export format: ``fmt`` when given, else the one the file extension names."""
    if fmt:
        name = _ALIASES.get(fmt.lower(), fmt.lower())
        if name not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; use one of: {_formats_help()}")
        return name
    lower = Path(path).name.lower()
    for ext, name in _EXTENSIONS:
        if lower.endswith(ext):
            return name
    raise ValueError(
        f"cannot tell the export format of {str(path)!r} from its extension; "
        f"name the file or pass --format with one of: {_formats_help()}"
    )


# ---------------------------------------------------------------- shared helpers


def _extra(paper: Paper, name: str) -> str | None:
    """An optional Paper field that may not exist yet (volume, number, pages, ...)."""
    value = getattr(paper, name, None)
    return None if value in (None, "") else str(value)


def _papers(hits: Iterable[Hit]) -> list[Paper]:
    """The distinct papers of hits, in order of first appearance."""
    seen: dict[str, Paper] = {}
    for hit in hits:
        seen.setdefault(hit.paper.id, hit.paper)
    return list(seen.values())


def _complete_keys(papers: list[Paper], keys: dict[str, str]) -> dict[str, str]:
    """keys, plus generated unique keys for any paper it lacks."""
    missing = [p for p in papers if p.id not in keys]
    if not missing:
        return keys
    out = dict(keys)
    used = set(out.values())
    generated = citation_keys(papers)
    for paper in missing:
        key, n = generated[paper.id], 0
        while key in used:
            n += 1
            key = f"{generated[paper.id]}{n}"
        out[paper.id] = key
        used.add(key)
    return out


def _page_span(pages: str | None) -> tuple[str, str | None] | None:
    """'123-145' / '123–145' / '123--145' -> ('123', '145'); '7' -> ('7', None)."""
    if not pages:
        return None
    parts = [p.strip() for p in re.split(r"\s*(?:--|–|—|-)\s*", pages.strip()) if p.strip()]
    if not parts:
        return None
    return parts[0], (parts[-1] if len(parts) > 1 else None)


# ---------------------------------------------------------------- BibTeX

_BIB_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\textbraceleft{}",
    "}": r"\textbraceright{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_BIB_SPECIAL_RE = re.compile(r"[\\{}&%$#_~^]")


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def bib_escape(text: str) -> str:
    """Text with LaTeX/BibTeX special characters escaped.

    BibTeX counts braces even when escaped, so literal braces become \\{ \\} only when
    they pair up (Pandoc and LaTeX print those); unpaired ones become \\textbraceleft{}.
    """
    text = " ".join(text.split())
    table = dict(_BIB_SPECIAL)
    if _balanced(text):
        table.update({"{": r"\{", "}": r"\}"})
    return _BIB_SPECIAL_RE.sub(lambda m: table[m.group()], text)


def _bib_verbatim(text: str) -> str:
    """url/doi fields are verbatim in biblatex and Pandoc: keep them, but keep braces out."""
    return text.strip().replace("{", "%7B").replace("}", "%7D").replace(" ", "%20")


def _bib_name(full: str) -> str:
    given, family = split_name(full)
    return bib_escape(f"{family}, {given}" if given else family)


def _bib_type(kind: str) -> str:
    kind = (kind or "").lower()
    if kind in ("inproceedings", "conference", "paper-conference"):
        return "inproceedings"
    if kind in ("article", "journal", "article-journal"):
        return "article"
    if kind in ("techreport", "report"):
        return "techreport"
    if kind in ("phdthesis", "mastersthesis", "book", "misc"):
        return kind
    return "misc"


def bibtex_entry(paper: Paper, key: str) -> str:
    """One BibTeX entry. The title is wrapped in an extra pair of braces so styles keep
    its capitalisation ("Dynamo", "Amazon's", "MapReduce") instead of lowercasing it."""
    kind = _bib_type(paper.kind)
    fields: list[tuple[str, str]] = []
    if paper.authors:
        fields.append(("author", " and ".join(_bib_name(a) for a in paper.authors)))
    fields.append(("title", "{" + bib_escape(paper.title) + "}"))
    venue = bib_escape(paper.venue) if paper.venue else None
    institution = _extra(paper, "institution")
    publisher = _extra(paper, "publisher")
    if kind == "inproceedings" and venue:
        fields.append(("booktitle", venue))
    elif kind == "article" and venue:
        fields.append(("journal", venue))
    elif kind == "techreport":
        if institution or venue:
            fields.append(("institution", bib_escape(institution) if institution else venue or ""))
    elif kind in ("phdthesis", "mastersthesis"):
        if institution or venue:
            fields.append(("school", bib_escape(institution) if institution else venue or ""))
    elif kind == "book":
        if not publisher and venue:
            fields.append(("publisher", venue))
    elif venue:
        fields.append(("howpublished", venue))
    for name in ("volume", "number"):
        value = _extra(paper, name)
        if value:
            fields.append((name, bib_escape(value)))
    span = _page_span(_extra(paper, "pages"))
    if span:
        fields.append(("pages", bib_escape(span[0] + (f"--{span[1]}" if span[1] else ""))))
    if publisher and kind != "article":  # biblatex's @article has no publisher
        fields.append(("publisher", bib_escape(publisher)))
    if institution and kind not in ("techreport", "phdthesis", "mastersthesis"):
        fields.append(("organization", bib_escape(institution)))
    if paper.year:
        fields.append(("year", str(paper.year)))
    if paper.doi:
        fields.append(("doi", _bib_verbatim(paper.doi)))
    if paper.url:
        fields.append(("url", _bib_verbatim(paper.url)))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def render_bibtex(papers: Iterable[Paper], keys: dict[str, str]) -> str:
    return "\n".join(bibtex_entry(p, keys[p.id]) for p in papers)


# ---------------------------------------------------------------- CSL-JSON

_CSL_TYPES = {
    "inproceedings": "paper-conference",
    "article": "article-journal",
    "techreport": "report",
    "phdthesis": "thesis",
    "mastersthesis": "thesis",
    "book": "book",
}


def csl_item(paper: Paper, key: str) -> dict:
    """One CSL-JSON item (https://citeproc-js.readthedocs.io/en/latest/csl-json/markup.html)."""
    kind = _bib_type(paper.kind)
    item: dict = {"id": key, "type": _CSL_TYPES.get(kind, "document"), "title": paper.title}
    authors = []
    for full in paper.authors:
        given, family = split_name(full)
        authors.append({"family": family, "given": given} if given else {"family": family})
    if authors:
        item["author"] = authors
    if paper.year:
        item["issued"] = {"date-parts": [[int(paper.year)]]}
    publisher = _extra(paper, "publisher") or _extra(paper, "institution")
    if paper.venue and paper.venue != publisher:
        # container-title is a journal or proceedings (styles print "In ..."). Elsewhere the
        # venue is who issued it (as BibTeX readers take institution, school, howpublished:
        # publisher) or, beside a publisher, its kind ("Microsoft Research Technical Report").
        if kind in ("inproceedings", "article"):
            item["container-title"] = paper.venue
        elif not publisher:
            publisher = paper.venue
        else:
            item["genre"] = paper.venue
    if paper.doi:
        item["DOI"] = paper.doi
    if paper.url:
        item["URL"] = paper.url
    span = _page_span(_extra(paper, "pages"))
    if span:
        item["page"] = span[0] + (f"-{span[1]}" if span[1] else "")
    # a report's number is its report number; an article's is the issue of its volume
    number = "number" if item["type"] == "report" else "issue"
    for name, field in (("volume", "volume"), ("number", number)):
        value = _extra(paper, name)
        if value:
            item[field] = value
    if publisher:
        item["publisher"] = publisher
    return item


def render_csl(papers: Iterable[Paper], keys: dict[str, str]) -> str:
    items = [csl_item(p, keys[p.id]) for p in papers]
    return json.dumps(items, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- RIS

_RIS_TYPES = {
    "inproceedings": "CONF",
    "article": "JOUR",
    "techreport": "RPRT",
    "phdthesis": "THES",
    "mastersthesis": "THES",
    "book": "BOOK",
}


def conference_name(proceedings: str) -> str:
    """The conference a proceedings title names: "Proceedings of the 21st ACM Symposium on
    Operating Systems Principles (SOSP '07)" -> "21st ACM Symposium on ... (SOSP '07)"."""
    m = re.search(r"\bProceedings of (?:the )?(.+)$", proceedings, re.IGNORECASE)
    return m.group(1).strip() if m else proceedings


def ris_record(paper: Paper, key: str) -> str:
    """One RIS record: starts with TY, ends with ER, one 'XX  - value' tag a line.

    Tags are the ones Zotero's RIS translator and citation-js read for each type: a CONF
    has its conference name in T2 and its proceedings title in C3, and its date in DA
    (citation-js reads PY alone as the date of the event); a JOUR has its journal in T2 (JO
    is read as an abbreviation) and no publisher; a RPRT has its institution in PB, its
    number in SN and its kind in M3. A tag the reader has no field for becomes a note there.
    """
    kind = _bib_type(paper.kind)
    ty = _RIS_TYPES.get(kind, "GEN")
    lines = [("TY", ty), ("ID", key)]
    lines += [("AU", _ris_name(a)) for a in paper.authors]
    lines.append(("TI", paper.title))
    if paper.year:
        lines += [("PY", str(paper.year)), ("DA", f"{paper.year}///")]
    publisher = _extra(paper, "publisher") or _extra(paper, "institution")
    venue = paper.venue
    if venue and ty == "CONF":
        lines += [("T2", conference_name(venue)), ("C3", venue)]
    elif venue and ty == "JOUR":
        lines.append(("T2", venue))
    elif venue and publisher and venue != publisher:
        lines.append(("M3", venue))  # the kind of report, thesis or document
    elif venue:
        publisher = venue
    if ty == "JOUR":
        publisher = None  # a journal article has no publisher field (Zotero, biblatex)
    value = _extra(paper, "volume")
    if value and ty != "RPRT":
        lines.append(("VL", value))
    value = _extra(paper, "number")
    if value and ty in ("JOUR", "GEN"):
        lines.append(("IS", value))
    elif value and ty == "RPRT":
        lines.append(("SN", value))
    span = _page_span(_extra(paper, "pages"))
    if span:
        lines.append(("SP", span[0]))
        if span[1]:
            lines.append(("EP", span[1]))
    if publisher:
        lines.append(("PB", publisher))
    if paper.doi:
        lines.append(("DO", paper.doi))
    if paper.url:
        lines.append(("UR", paper.url))
    text = "".join(f"{tag}  - {' '.join(value.split())}\n" for tag, value in lines)
    return text + "ER  - \n"


def _ris_name(full: str) -> str:
    given, family = split_name(full)
    return f"{family}, {given}" if given else family


def render_ris(papers: Iterable[Paper], keys: dict[str, str]) -> str:
    return "\n".join(ris_record(p, keys[p.id]) for p in papers)


# ---------------------------------------------------------------- Markdown

_MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]<>@#$~^|{}&])")


def md_escape(text: str) -> str:
    """One line of Pandoc Markdown that renders as ``text`` literally (no citations from
    stray '@', no emphasis from '_', no list or heading from a leading '-' or '#')."""
    text = _MD_SPECIAL_RE.sub(r"\\\1", " ".join(text.split()))
    text = re.sub(r"^(\d+)([.)])(?=\s|$)", r"\1\\\2", text)
    return re.sub(r"^([-+:=])", r"\\\1", text)


def _md_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C")


def _md_citation(c: Citation) -> str:
    """Pandoc citation with a locator: [@key, p. 209] for a printed page; a PDF page index
    has no locator term of its own, so it is written as a suffix, [@key, PDF p. 5], which
    Pandoc prints as is after the author and year."""
    if not c.pages:
        return f"[@{c.key}]"
    return f"[@{c.key}, {c.pages}]"


def _md_link(c: Citation) -> str | None:
    if not c.link:
        return None
    if c.printed and c.pdf_page:
        label = f"{c.pages} (PDF page {c.pdf_page})"
    elif c.pdf_page:
        label = f"PDF page {c.pdf_page} (printed page number unknown)"
    else:
        label = "the paper"
    return f"[Open {md_escape(label)}]({_md_url(c.link)})"


def render_markdown(query: str, hits: list[Hit], keys: dict[str, str],
                    heading: str = "Search results") -> str:  # fmt: skip
    out = [f"# {heading}: {md_escape(query)}", ""]
    if not hits:
        out += ["No results.", ""]
    for hit in hits:
        c = make_citation(hit, keys[hit.paper.id])
        out += [f"## {hit.rank}. {md_escape(hit.paper.title)}", ""]
        if hit.chunk.section:
            out += [f"*Section: {md_escape(hit.chunk.section)}*", ""]
        out += [f"> {md_escape(hit.quote or hit.chunk.text)}", "", _md_citation(c), ""]
        link = _md_link(c)
        if link:
            out += [link, ""]
    out += ["# References", "", "::: {#refs}", ":::", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- JSON


def _json_result(hit: Hit, key: str) -> dict:
    c = make_citation(hit, key)
    return {
        "rank": hit.rank,
        "paper": hit.paper.id,
        "key": key,
        "title": hit.paper.title,
        "year": hit.paper.year,
        "pages": list(hit.cited_pages),  # what the citation claims: the quote's pages
        "printed_pages": list(hit.quote_printed if hit.quote_pages else hit.chunk.printed_pages),
        "page_label": c.pages,
        "passage_pages": list(hit.chunk.pages),  # the whole passage's, as context
        "section": hit.chunk.section,
        "score": float(hit.score),
        "scores": {k: float(v) for k, v in hit.scores.items()},
        "quote": hit.quote,
        "text": hit.chunk.text,
        "link": c.link,
        # where the quote stands on its pages, in PDF points: draw it over any rendering
        "highlight": [
            {"page": h.page, "box": list(h.box), "rects": [list(r) for r in h.rects]}
            for h in hit.highlight
        ],
        "citation": {
            "authors": list(hit.paper.authors),
            "year": hit.paper.year,
            "title": hit.paper.title,
            "venue": hit.paper.venue,
            "doi": hit.paper.doi,
            "url": hit.paper.url,
        },
    }


def render_json(query: str, hits: list[Hit], keys: dict[str, str]) -> str:
    reading = getattr(hits, "reading", None)  # hybrid search with the fitted models only
    doc = {
        "query": query,
        "weak_match": bool(getattr(hits, "weak_match", False)),  # a plain list: not known weak
        "reading": None
        if reading is None
        else {
            "asks": reading.asks,
            "papers": [{"id": p, "chance": c} for p, c in reading.papers],
        },
        "respelled": [{"typed": r.typed, "read": r.read} for r in getattr(hits, "respelled", ())],
        "results": [_json_result(h, keys[h.paper.id]) for h in hits],
    }
    return _NUMBERS.sub(_one_line, json.dumps(doc, indent=2, ensure_ascii=False)) + "\n"


# an array of numbers only (pages, a rectangle) on one line, not a line a number; the line
# breaks it matches are json.dumps's own (a string holds none, only escaped ones)
_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_NUMBERS = re.compile(rf"\[\n *({_NUMBER}(?:,\n *{_NUMBER})*)\n *\]")


def _one_line(m: re.Match) -> str:
    return "[" + re.sub(r",\n *", ", ", m.group(1)) + "]"


# ---------------------------------------------------------------- entry points


def render_papers(fmt: str, papers: Iterable[Paper], keys: dict[str, str]) -> str:
    """A bibliography (bib, csl or ris) of whole papers, e.g. for ``ddsearch cite ID...``."""
    fmt = format_from_path("", fmt)
    distinct = list({p.id: p for p in papers}.values())
    keys = _complete_keys(distinct, keys)
    if fmt == "bib":
        return render_bibtex(distinct, keys)
    if fmt == "csl":
        return render_csl(distinct, keys)
    if fmt == "ris":
        return render_ris(distinct, keys)
    raise ValueError(f"{fmt!r} is not a bibliography format; use one of: bib, csl, ris")


def render(fmt: str, query: str, hits: list[Hit], keys: dict[str, str],
           heading: str = "Search results") -> str:  # fmt: skip
    """Search results as md or json, or the bibliography of their papers as bib/csl/ris;
    ``heading``: what Markdown calls them ("Cited by" for a paper's citing sentences)."""
    fmt = format_from_path("", fmt)
    keys = _complete_keys(_papers(hits), keys)
    if fmt == "md":
        return render_markdown(query, hits, keys, heading)
    if fmt == "json":
        return render_json(query, hits, keys)
    return render_papers(fmt, _papers(hits), keys)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(path: str | os.PathLike[str], force: bool = False) -> Path:
    """The file an export will write, checked before any work: its folder exists and may be
    written to, and without force nothing (not even a dangling link) is there yet. Raises
    FileNotFoundError, PermissionError or FileExistsError."""
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"cannot write {target}: the folder {folder} {why}")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write {target}: the folder {folder} is not writable")
    if os.path.lexists(target) and not force:
        raise FileExistsError(f"{target} already exists; pass --force to overwrite it")
    return target


def write_atomic(path: str | os.PathLike[str], text: str | bytes, force: bool = False) -> Path:
    """Write text (or bytes) to path via a temporary file in the same directory, fsync and
    rename, so a reader never sees a half-written file. Without force an existing file is
    kept."""
    target = check_target(path, force)
    directory = target.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        handle: Any
        if isinstance(text, bytes):
            handle = os.fdopen(fd, "wb")
        else:
            handle = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        with handle as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        mode = target.stat().st_mode & 0o777 if target.exists() else 0o666 & ~_umask()
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return target
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
    return target


def export(
    path: str | os.PathLike[str],
    fmt: str | None,
    query: str,
    hits: list[Hit],
    keys: dict[str, str],
    force: bool = False,
    heading: str = "Search results",
) -> Path:
    """Render hits in fmt (or the format the extension of path names) and write the file."""
    fmt = format_from_path(path, fmt)
    return write_atomic(path, render(fmt, query, hits, keys, heading), force=force)
