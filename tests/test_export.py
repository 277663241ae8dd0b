"""Exports checked by real consumers: bibtexparser (v2), the CSL-JSON schema, Pandoc.

tests/data/csl-data.json is the CSL input-data JSON schema, vendored verbatim from
https://github.com/citation-style-language/schema, file schemas/input/csl-data.json
(commit 00412663cee29f630e8a112abf751fce6c9c1748; MIT licence).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import bibtexparser
import jsonschema
import pytest

from ddsearch.models import Chunk, Highlight, Hit, Paper
from ddsearch.search.cite import citation_keys
from ddsearch.search.export import (
    FORMATS,
    export,
    format_from_path,
    render,
    render_papers,
)

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class FullPaper(Paper):
    """A Paper with the optional bibliographic fields the catalog may carry."""

    volume: str | None = None
    number: str | None = None
    pages: str | None = None
    publisher: str | None = None
    institution: str | None = None


DYNAMO = Paper(
    id="dynamo",
    title="Dynamo: Amazon's Highly Available Key-value Store",
    authors=("Giuseppe DeCandia", "Deniz Hastorun", "Madan Jampani", "Gunavardhan Kakulapati"),
    year=2007,
    venue="SOSP",
    url="https://www.allthingsdistributed.com/files/amazon-dynamo-sosp2007.pdf",
    doi="10.1145/1294261.1294281",
)
CAP = FullPaper(
    id="cap",
    title="Brewer's Conjecture and the Feasibility of Consistent, Available, "
    "Partition-Tolerant Web Services",
    authors=("Seth Gilbert", "Nancy Lynch"),
    year=2002,
    venue="ACM SIGACT News",
    kind="article",
    doi="10.1145/564585.564601",
    volume="33",
    number="2",
    pages="51-59",
    publisher="ACM",
)
CLOCKS = FullPaper(
    id="lamport-clocks",
    title="Time, Clocks, and the Ordering of Events in a Distributed System",
    authors=("Leslie Lamport",),
    year=1978,
    venue="Communications of the ACM",
    kind="article",
    volume="21",
    number="7",
    pages="558–565",
)
CHAIN = Paper(
    id="chain",
    title="Chain Replication for Supporting High Throughput & Availability",
    authors=("Robbert van Renesse", "Fred B. Schneider"),
    year=2004,
    venue="OSDI",
    path="/tmp/ddsearch papers/chain.pdf",
)
FLP_TR = FullPaper(
    id="flp-tr",
    title="Impossibility of Distributed Consensus with One Faulty Process",
    authors=("Michael J. Fischer", "Nancy Lynch", "Michael S. Paterson"),
    year=1982,
    venue="Yale University",
    kind="techreport",
    institution="Yale University",
    number="YALEU/DCS/TR-245",
)
NOTES = Paper(id="notes", title="Notes on Data Base Operating Systems", authors=("Jim Gray",),
              year=1978, venue="Operating Systems: An Advanced Course", kind="misc")  # fmt: skip
# every BibTeX special character, a stray '@' and markdown syntax in one title
WEIRD = Paper(
    id="weird",
    title="50% of $cost & #1 {fast} path_name ~x^2 \\o: *not* [emphasis] @nobody",
    authors=("Ana María Pérez-García", "Ludwig von Mises"),
    year=2020,
    venue="Workshop on A & B",
    url="https://example.org/paper_v2.pdf?x=1%20y",
)
PAPERS = [DYNAMO, CAP, CLOCKS, CHAIN, FLP_TR, NOTES, WEIRD]
KEYS = citation_keys(PAPERS)


def make_hit(rank, paper, text, pages, printed=(), quote=None, section=None) -> Hit:
    chunk = Chunk(f"{paper.id}-{rank}", paper.id, rank, text, pages, section, printed)
    return Hit(rank=rank, chunk=chunk, paper=paper, score=1.0 / rank, quote=quote)


HITS = [
    make_hit(1, DYNAMO,
             "To achieve this level of availability, Dynamo sacrifices consistency under "
             "certain failure scenarios.\nIt makes extensive use of object versioning.",
             (5,), ("209",), quote="Dynamo sacrifices consistency", section="4.2 Partitioning"),
    make_hit(2, CAP, "- It is impossible in the asynchronous network model to implement a "
             "read/write data object.", (2, 3), ("52", "53")),
    make_hit(3, CLOCKS, "1. The concept of one event happening before another.", (1,)),
    make_hit(4, CHAIN, "Chain replication [12] e-mail: rvr@cs.cornell.edu or @fbs.", (2,)),
    make_hit(5, FLP_TR, "No completely asynchronous consensus protocol can tolerate even a "
             "single unannounced process death.", (1,)),
    make_hit(6, NOTES, "The two-phase commit protocol.", ()),
    make_hit(7, WEIRD, "Text with `code`, <html>, | pipes | and #hash.", (9,)),
    make_hit(8, DYNAMO, "Dynamo uses consistent hashing.", (6, 7), ("210", "211")),
]  # fmt: skip
HITS[0].highlight = (Highlight(5, (0, 0, 612, 792), ((72.0, 700.5, 300.25, 709.0),)),)


# ---------------------------------------------------------------- formats and files


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("out.md", "md"),
        ("notes.MARKDOWN", "md"),
        ("r.json", "json"),
        ("refs.bib", "bib"),
        ("refs.csl.json", "csl"),
        ("REFS.CSL.JSON", "csl"),
        ("refs.ris", "ris"),
        ("dir.v2/refs.bib", "bib"),
    ],
)
def test_format_from_extension(name, fmt):
    assert format_from_path(name) == fmt
    assert format_from_path(Path(name)) == fmt


def test_explicit_format_wins():
    assert format_from_path("results.txt", "json") == "json"
    assert format_from_path("refs.json", "csl") == "csl"
    assert format_from_path("x", "markdown") == "md"


def test_unknown_format_is_a_clear_error():
    with pytest.raises(ValueError) as err:
        format_from_path("results.txt")
    msg = str(err.value)
    assert "results.txt" in msg and "--format" in msg
    assert all(f in msg for f in FORMATS) and ".csl.json" in msg
    with pytest.raises(ValueError, match="unknown export format 'docx'"):
        format_from_path("x.md", "docx")


def test_export_writes_atomically(tmp_path: Path):
    target = tmp_path / "out.md"
    assert export(target, None, "consistency", HITS, KEYS) == target
    first = target.read_text(encoding="utf-8")
    assert first.startswith("# Search results: consistency")
    assert os.listdir(tmp_path) == ["out.md"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask

    with pytest.raises(FileExistsError) as err:
        export(target, None, "other query", HITS[:1], KEYS)
    assert str(target) in str(err.value) and "--force" in str(err.value)
    assert "\n" not in str(err.value)
    assert target.read_text(encoding="utf-8") == first

    export(target, "md", "other query", HITS[:1], KEYS, force=True)
    assert target.read_text(encoding="utf-8").startswith("# Search results: other query")
    assert os.listdir(tmp_path) == ["out.md"]


def test_failed_export_leaves_no_temp_file(tmp_path: Path):
    occupied = tmp_path / "refs.bib"
    occupied.mkdir()
    (occupied / "keep").write_text("x")
    with pytest.raises(OSError):
        export(occupied, None, "q", HITS, KEYS, force=True)
    assert sorted(os.listdir(tmp_path)) == ["refs.bib"]
    assert os.listdir(occupied) == ["keep"]


def test_missing_keys_are_generated():
    out = json.loads(render("json", "q", HITS[:2], {}))
    assert [r["key"] for r in out["results"]] == ["decandia2007dynamo", "gilbert2002brewer"]


# ---------------------------------------------------------------- JSON


def test_json_export():
    doc = json.loads(render("json", "why sacrifice consistency?", HITS, KEYS))
    assert doc["query"] == "why sacrifice consistency?"
    first, second, last = doc["results"][0], doc["results"][1], doc["results"][-1]
    assert first == {
        "rank": 1,
        "paper": "dynamo",
        "key": "decandia2007dynamo",
        "title": DYNAMO.title,
        "year": 2007,
        "pages": [5],
        "printed_pages": ["209"],
        "passage_pages": [5],
        "page_label": "p. 209",
        "section": "4.2 Partitioning",
        "score": 1.0,
        "scores": {},
        "quote": "Dynamo sacrifices consistency",
        "text": HITS[0].chunk.text,
        "link": DYNAMO.url + "#page=5",
        "highlight": [
            {"page": 5, "box": [0, 0, 612, 792], "rects": [[72.0, 700.5, 300.25, 709.0]]}
        ],
        "citation": {
            "authors": list(DYNAMO.authors),
            "year": 2007,
            "title": DYNAMO.title,
            "venue": "SOSP",
            "doi": DYNAMO.doi,
            "url": DYNAMO.url,
        },
    }
    assert second["quote"] is None and second["page_label"] == "pp. 52–53"
    assert last["pages"] == [6, 7] and last["printed_pages"] == ["210", "211"]
    chain = doc["results"][3]
    assert chain["link"].startswith("file:///") and chain["link"].endswith("chain.pdf#page=2")
    assert chain["page_label"] == "PDF p. 2"


# ---------------------------------------------------------------- BibTeX


def parse_bib(text: str):
    assert int(bibtexparser.__version__.split(".")[0]) >= 2, "the tests need bibtexparser>=2"
    from bibtexparser.middlewares import (
        LatexDecodingMiddleware,
        SeparateCoAuthors,
        SplitNameParts,
    )

    library = bibtexparser.parse_string(
        text, append_middleware=[LatexDecodingMiddleware(), SeparateCoAuthors(), SplitNameParts()]
    )
    assert library.failed_blocks == []
    return {e.key: e for e in library.entries}


def field(entry, name):
    return entry.fields_dict[name].value


def test_bibtex_parses_with_a_real_parser():
    text = render("bib", "q", HITS, KEYS)
    entries = parse_bib(text)
    assert list(entries) == [KEYS[p.id] for p in PAPERS]  # each paper once, in hit order
    assert {k: e.entry_type for k, e in entries.items()} == {
        "decandia2007dynamo": "inproceedings",
        "gilbert2002brewer": "article",
        "lamport1978time": "article",
        "vanrenesse2004chain": "inproceedings",
        "fischer1982impossibility": "techreport",
        "gray1978notes": "misc",
        "perezgarcia2020cost": "inproceedings",
    }

    dynamo = entries["decandia2007dynamo"]
    assert field(dynamo, "title") == DYNAMO.title
    assert field(dynamo, "booktitle") == "SOSP"
    assert field(dynamo, "year") == "2007"
    assert field(dynamo, "doi") == DYNAMO.doi
    assert field(dynamo, "url") == DYNAMO.url
    assert [n.last for n in field(dynamo, "author")] == [
        ["DeCandia"], ["Hastorun"], ["Jampani"], ["Kakulapati"]
    ]  # fmt: skip
    assert field(dynamo, "author")[0].first == ["Giuseppe"]

    cap = entries["gilbert2002brewer"]
    assert field(cap, "journal") == "ACM SIGACT News"
    assert (field(cap, "volume"), field(cap, "number")) == ("33", "2")
    assert field(cap, "pages") == "51–59"  # "51--59", which LaTeX prints as an en dash
    assert "51--59" in text and "558--565" in text
    assert "publisher" not in cap.fields_dict  # biblatex's @article has no such field

    chain = field(entries["vanrenesse2004chain"], "author")
    assert (chain[0].first, chain[0].von, chain[0].last) == (["Robbert"], ["van"], ["Renesse"])
    assert field(entries["fischer1982impossibility"], "institution") == "Yale University"
    assert field(entries["fischer1982impossibility"], "number") == "YALEU/DCS/TR-245"
    assert field(entries["gray1978notes"], "howpublished") == NOTES.venue


def test_bibtex_escapes_special_characters():
    text = render_papers("bib", [WEIRD], KEYS)
    assert r"50\% of \$cost \& \#1 \{fast\} path\_name" in text
    assert r"\textasciitilde{}x\textasciicircum{}2 \textbackslash{}o" in text
    assert text.count("{") == text.count("}")
    weird = parse_bib(text)["perezgarcia2020cost"]
    # pylatexenc, the decoder bibtexparser uses, turns \textasciicircum into U+02C6
    assert field(weird, "title").replace("\u02c6", "^") == WEIRD.title
    assert field(weird, "booktitle") == "Workshop on A & B"
    # url is a verbatim field (biblatex, Pandoc): written as is, so read it without LaTeX
    # decoding, which would take the '%' of "%20" for a comment
    raw = bibtexparser.parse_string(text).entries[0]
    assert field(raw, "url") == WEIRD.url
    names = field(weird, "author")
    assert (names[0].first, names[0].last) == (["Ana", "María"], ["Pérez-García"])
    assert (names[1].von, names[1].last) == (["von"], ["Mises"])


def test_bibtex_protects_title_capitalisation():
    text = render_papers("bib", [DYNAMO], KEYS)
    assert "title = {{Dynamo: Amazon's Highly Available Key-value Store}}" in text


# ---------------------------------------------------------------- CSL-JSON


def test_csl_json_is_valid_against_the_schema():
    schema = json.loads((DATA / "csl-data.json").read_text(encoding="utf-8"))
    items = json.loads(render("csl", "q", HITS, KEYS))
    jsonschema.validate(items, schema)
    by_id = {i["id"]: i for i in items}
    assert list(by_id) == [KEYS[p.id] for p in PAPERS]
    assert by_id["decandia2007dynamo"] == {
        "id": "decandia2007dynamo",
        "type": "paper-conference",
        "title": DYNAMO.title,
        "author": [
            {"family": "DeCandia", "given": "Giuseppe"},
            {"family": "Hastorun", "given": "Deniz"},
            {"family": "Jampani", "given": "Madan"},
            {"family": "Kakulapati", "given": "Gunavardhan"},
        ],
        "issued": {"date-parts": [[2007]]},
        "container-title": "SOSP",
        "DOI": DYNAMO.doi,
        "URL": DYNAMO.url,
    }
    cap = by_id["gilbert2002brewer"]
    assert cap["type"] == "article-journal"
    assert (cap["volume"], cap["issue"], cap["page"], cap["publisher"]) == (
        "33", "2", "51-59", "ACM"
    )  # fmt: skip
    flp = by_id["fischer1982impossibility"]
    assert (flp["type"], flp["publisher"], flp["number"]) == (
        "report", "Yale University", "YALEU/DCS/TR-245"
    )  # fmt: skip
    assert "container-title" not in flp  # the venue is the institution: say it once
    notes = by_id["gray1978notes"]  # misc: the venue is free text, not a container
    assert (notes["type"], notes["publisher"]) == ("document", NOTES.venue)
    assert "container-title" not in notes
    assert by_id["vanrenesse2004chain"]["author"][0] == {
        "family": "van Renesse",
        "given": "Robbert",
    }


def test_csl_json_schema_rejects_garbage():
    """The vendored schema is live: it does reject malformed items."""
    schema = json.loads((DATA / "csl-data.json").read_text(encoding="utf-8"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"id": "x", "type": "paper-conference", "authors": []}], schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"id": "x", "type": "inproceedings"}], schema)


# ---------------------------------------------------------------- RIS

RIS_LINE = re.compile(r"^[A-Z][A-Z0-9]  - (.*)$")


def parse_ris(text: str) -> list[list[tuple[str, str]]]:
    records, current = [], None
    for line in text.splitlines():
        if not line.strip():
            assert current is None, "blank line inside a record"
            continue
        m = RIS_LINE.match(line)
        assert m, f"not a RIS tag line: {line!r}"
        tag, value = line[:2], m.group(1)
        if current is None:
            assert tag == "TY", f"record starts with {tag}, not TY"
            current = []
        current.append((tag, value))
        if tag == "ER":
            records.append(current)
            current = None
    assert current is None, "last record has no ER"
    return records


def test_ris_structure():
    records = parse_ris(render("ris", "q", HITS, KEYS))
    assert len(records) == len(PAPERS)
    assert [r[0][1] for r in records] == ["CONF", "JOUR", "JOUR", "CONF", "RPRT", "GEN", "CONF"]
    assert all(r[-1] == ("ER", "") for r in records)
    dynamo = records[0]
    assert [v for t, v in dynamo if t == "AU"] == [
        "DeCandia, Giuseppe", "Hastorun, Deniz", "Jampani, Madan", "Kakulapati, Gunavardhan"
    ]  # fmt: skip
    tags = dict(dynamo)
    assert tags["TI"] == DYNAMO.title and tags["PY"] == "2007" and tags["DA"] == "2007///"
    assert (tags["T2"], tags["C3"]) == ("SOSP", "SOSP")
    assert tags["DO"] == DYNAMO.doi and tags["UR"] == DYNAMO.url
    cap = dict(records[1])
    assert "JO" not in cap  # Zotero reads JO as the journal's abbreviation
    assert (cap["T2"], cap["VL"], cap["IS"], cap["SP"], cap["EP"]) == (
        "ACM SIGACT News", "33", "2", "51", "59"
    )  # fmt: skip
    assert dict(records[2])["EP"] == "565"
    assert [v for t, v in records[3] if t == "AU"][0] == "van Renesse, Robbert"


# ---------------------------------------------------------------- Markdown and whole papers


def test_markdown_structure():
    md = render("md", "why sacrifice consistency?", HITS, KEYS)
    assert md.startswith("# Search results: why sacrifice consistency?\n")
    assert "> Dynamo sacrifices consistency\n" in md  # the quote when there is one
    assert "> \\- It is impossible in the asynchronous network model" in md  # else the passage
    assert "[@decandia2007dynamo, p. 209]" in md
    assert "[@gilbert2002brewer, pp. 52–53]" in md
    assert "[@lamport1978time, PDF p. 1]" in md
    assert "[@gray1978notes]" in md
    assert f"[Open p. 209 (PDF page 5)]({DYNAMO.url}#page=5)" in md
    assert "[Open PDF page 2 (printed page number unknown)](file:///" in md
    assert "ddsearch%20papers/chain.pdf#page=2)" in md
    assert "rvr\\@cs.cornell.edu or \\@fbs." in md
    assert md.endswith("# References\n\n::: {#refs}\n:::\n")


def test_render_papers_for_the_cite_command():
    bib = parse_bib(render_papers("bib", [CLOCKS, DYNAMO, CLOCKS], KEYS))
    assert list(bib) == ["lamport1978time", "decandia2007dynamo"]
    csl = json.loads(render_papers("csl", [CLOCKS], {}))
    assert csl[0]["id"] == "lamport1978time"
    assert parse_ris(render_papers("ris", [CLOCKS], KEYS))[0][0] == ("TY", "JOUR")
    with pytest.raises(ValueError, match="bib, csl, ris"):
        render_papers("md", [CLOCKS], KEYS)


def test_empty_results():
    assert json.loads(render("json", "nothing", [], {})) == {
        "query": "nothing",
        "weak_match": False,
        "reading": None,
        "respelled": [],
        "results": [],
    }
    assert "No results." in render("md", "nothing", [], {})
    assert render("bib", "nothing", [], {}) == ""
    assert json.loads(render("csl", "nothing", [], {})) == []
    assert parse_ris(render("ris", "nothing", [], {})) == []


# ---------------------------------------------------------------- Pandoc

needs_pandoc = pytest.mark.skipif(shutil.which("pandoc") is None, reason="pandoc not installed")


def run_pandoc(tmp_path: Path, markdown: str, bibliography: str, bib_name: str) -> str:
    (tmp_path / "in.md").write_text(markdown, encoding="utf-8")
    (tmp_path / bib_name).write_text(bibliography, encoding="utf-8")
    proc = subprocess.run(
        ["pandoc", "--citeproc", "--bibliography", bib_name, "in.md", "-t", "plain",
         "--wrap=none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not re.search(r"Citeproc: citation \S+ not found", proc.stderr), proc.stderr
    assert "[WARNING]" not in proc.stderr, proc.stderr
    return proc.stdout.replace("\xa0", " ")  # Pandoc ties "p." to its number


@needs_pandoc
@pytest.mark.parametrize("fmt, bib_name", [("bib", "cites.bib"), ("csl", "cites.json")])
def test_markdown_renders_with_pandoc_citeproc(tmp_path: Path, fmt, bib_name):
    out = run_pandoc(tmp_path, render("md", "q", HITS, KEYS), render(fmt, "q", HITS, KEYS),
                     bib_name)  # fmt: skip
    cites = out.split("\nReferences\n")[0]
    # author-date citations with their locators (Pandoc's default style, Chicago)
    assert "(DeCandia et al. 2007, 209)" in cites
    assert "(Gilbert and Lynch 2002, 52–53)" in cites
    assert "(Lamport 1978, PDF p. 1)" in cites
    assert "Schneider 2004, PDF p. 2)" in cites and "Renesse" in cites
    assert "(Fischer, Lynch, and Paterson 1982, PDF p. 1)" in cites
    assert "(Gray 1978)" in cites
    assert "Pérez-García and" in cites and "2020, PDF p. 9)" in cites
    # escaped text comes out literally
    assert "rvr@cs.cornell.edu or @fbs." in out
    assert "Text with `code`, <html>, | pipes | and #hash." in out
    # the bibliography is placed under References, one entry per paper
    refs = out.split("\nReferences\n")[1]
    for paper in PAPERS:
        assert str(paper.year) in refs
    assert "Chain Replication for Supporting High Throughput & Availability" in refs
    assert "https://example.org/paper_v2.pdf?x=1%20y" in refs
    assert "YALEU/DCS/TR-245" in refs
    weird = "50% of $cost & #1 {fast} path_name ~x^2 \\o: *not* [emphasis] @nobody"
    if fmt == "bib":  # the braces keep the title's capitalisation
        assert "Dynamo: Amazon’s Highly Available Key-value Store" in refs
        assert weird in refs
    else:  # a CSL title is title-cased by the style
        assert "Dynamo: Amazon’s Highly Available Key-Value Store" in refs
        assert weird.lower() in refs.lower()


@needs_pandoc
def test_pandoc_check_catches_a_missing_key(tmp_path: Path):
    """The warning run_pandoc looks for is the one Pandoc really prints."""
    (tmp_path / "in.md").write_text("See [@nosuchkey2000paper, p. 3].\n", encoding="utf-8")
    (tmp_path / "cites.bib").write_text(render_papers("bib", [DYNAMO], KEYS), encoding="utf-8")
    proc = subprocess.run(
        ["pandoc", "--citeproc", "--bibliography", "cites.bib", "in.md", "-t", "plain"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert re.search(r"Citeproc: citation \S+ not found", proc.stderr), proc.stderr


def test_json_puts_arrays_of_numbers_on_one_line_and_leaves_strings_alone():
    text = render("json", "pages [ 1, 2 ] and\n[\n 3\n]", HITS[:1], KEYS)
    assert '"pages": [5],' in text and '"rects": [\n' in text
    assert "[72.0, 700.5, 300.25, 709.0]" in text
    assert json.loads(text)["query"] == "pages [ 1, 2 ] and\n[\n 3\n]"
