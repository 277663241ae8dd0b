"""The whole catalog's bibliography, read back by the tools reference managers use.

citation-js (npm, installed in tests/js by .ci/run: ``npm ci``) reads the RIS, BibTeX and
CSL-JSON that ``ddsearch cite`` prints; rispy is a second RIS reader; biber checks the BibTeX
against biblatex's data model. A tool that is missing skips its test here, and fails it in CI
(CI=true), where .ci/run installs them all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import rispy
from click.testing import CliRunner

from ddsearch.catalog import load_catalog
from ddsearch.cli import main
from ddsearch.models import Chunk, Hit
from ddsearch.search.cite import citation_keys
from ddsearch.search.export import conference_name, render

JS = Path(__file__).parent / "js"
CATALOG = load_catalog()
KEYS = citation_keys(CATALOG)
BY_KEY = {KEYS[p.id]: p for p in CATALOG}
CSL_TYPES = {
    "inproceedings": "paper-conference",
    "article": "article-journal",
    "techreport": "report",
    "misc": "document",
}


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed; .ci/run installs it")
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """``ddsearch cite --format F`` of every catalog paper, one file per format."""
    folder = tmp_path_factory.mktemp("cite")
    ids = [p.id for p in CATALOG]
    out = {}
    for fmt, name in (("ris", "catalog.ris"), ("bib", "catalog.bib"), ("csl", "catalog.json")):
        result = CliRunner().invoke(
            main, ["--home", str(folder / "home"), "cite", "--format", fmt, *ids]
        )
        assert result.exit_code == 0, result.output
        out[fmt] = folder / name
        out[fmt].write_text(result.stdout, encoding="utf-8")
    return out


def citation_js(fmt: str, path: Path) -> list[dict]:
    node = need("node")
    if not (JS / "node_modules" / "@citation-js" / "core").is_dir():
        pytest.fail(f"citation-js is not installed: run 'npm ci' in {JS}")
    done = subprocess.run(
        [node, str(JS / "read.js"), fmt, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("fmt", ["ris", "bib", "csl"])
def test_citation_js_reads_year_and_venue_of_every_entry(exports, fmt):
    items = citation_js(fmt, exports[fmt])
    assert len(items) == len(CATALOG)
    for item in items:
        paper = BY_KEY[item.get("citation-key", item["id"])]
        where = f"{fmt} {paper.id}"
        assert item["title"] == paper.title, where
        assert item["type"] == CSL_TYPES[paper.kind], where
        assert item["issued"]["date-parts"][0][0] == paper.year, where
        assert len(item["author"]) == len(paper.authors), where
        assert item.get("container-title") or item.get("publisher"), f"{where}: no venue"
        assert "note" not in item, f"{where}: the catalog's provenance note was exported"
        if paper.kind in ("inproceedings", "article"):
            assert item["container-title"] == paper.venue, where
        else:  # a report or a misc entry is not "In <venue>"
            assert "container-title" not in item, where
        if fmt == "ris" and paper.kind == "inproceedings":
            assert item["event-title"] == conference_name(paper.venue), where


def test_raft_is_not_in_a_free_text_container(exports):
    raft = next(i for i in citation_js("csl", exports["csl"]) if i["id"] == KEYS["raft"])
    assert raft["publisher"].startswith("Extended version of the paper")
    assert "container-title" not in raft


def test_conference_name_from_proceedings_title():
    sosp = "21st ACM Symposium on Operating Systems Principles (SOSP '07)"
    assert conference_name(f"Proceedings of the {sosp}") == sosp
    assert conference_name("Information Processing 77: Proceedings of IFIP Congress 77") == (
        "IFIP Congress 77"
    )
    assert conference_name("Advances in Neural Information Processing Systems 30") == (
        "Advances in Neural Information Processing Systems 30"
    )


# The tags Zotero's RIS translator (translators/RIS.js: importTypeMap, fieldMap) reads into
# a field of the item type it imports each RIS type as; any other tag it keeps in a note.
ZOTERO_RIS = {
    "CONF": ("conferencePaper", {"T2": "conferenceName", "C3": "proceedingsTitle",
                                 "PB": "publisher", "VL": "volume"}),
    "JOUR": ("journalArticle", {"T2": "publicationTitle", "VL": "volume", "IS": "issue"}),
    "RPRT": ("report", {"PB": "institution", "SN": "reportNumber", "M3": "reportType"}),
    # Zotero imports GEN as a journal article, which has no field for a misc entry's free-text
    # venue: it keeps PB in a note, where it is at least not printed as a journal's name
    "GEN": ("journalArticle", {"PB": "(note)", "VL": "volume", "IS": "issue"}),
}  # fmt: skip
ZOTERO_ANY = {"TY", "ID", "AU", "TI", "PY", "DA", "SP", "EP", "DO", "UR"}  # ID: ignored


def test_ris_tags_are_the_ones_zotero_reads(exports):
    text = exports["ris"].read_text(encoding="utf-8")
    records = rispy.loads(text, skip_unknown_tags=False)
    assert len(records) == len(CATALOG)
    raw = text.split("ER  - \n")[:-1]
    for record, lines in zip(records, raw, strict=True):
        paper = BY_KEY[record["id"]]
        tags = {line[:2] for line in lines.strip().splitlines()}
        ty = record["type_of_reference"]
        fields = ZOTERO_RIS[ty][1]
        assert tags <= ZOTERO_ANY | set(fields), f"{paper.id}: {tags - ZOTERO_ANY - set(fields)}"
        assert record["year"] == str(paper.year) and record["date"] == f"{paper.year}///"
        assert record["title"] == paper.title
        if ty == "CONF":  # Zotero: T2 conference name, C3 proceedings title, DA/PY date
            assert record["secondary_title"] == conference_name(paper.venue)
            assert record["custom3"] == paper.venue
        elif ty == "JOUR":
            assert record["secondary_title"] == paper.venue
        else:
            assert record["publisher"], paper.id
        assert "notes" not in record, paper.id


def test_biber_validates_the_catalog_bibtex(exports, tmp_path):
    biber = need("biber")
    done = subprocess.run(
        [biber, "--tool", "--validate-datamodel", "--output-file", str(tmp_path / "out.bib"),
         str(exports["bib"])],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [line for line in done.stdout.splitlines() if line.startswith(("WARN", "ERROR"))]
    assert warnings == []
    assert "Datamodel validation complete" in done.stdout


def test_no_provenance_note_in_any_export(exports):
    noted = [p for p in CATALOG if p.note]
    assert len(noted) > 10  # the catalog does carry notes, so the check below can fail
    for fmt, path in exports.items():
        text = " ".join(path.read_text(encoding="utf-8").split())
        for paper in noted:
            assert paper.note[:40] not in text, f"{fmt}: the note of {paper.id}"
    assert "note =" not in exports["bib"].read_text(encoding="utf-8")


def test_no_provenance_note_in_search_result_exports():
    noted = [p for p in CATALOG if p.note]
    hits = [
        Hit(rank=i, chunk=Chunk(f"{p.id}-0", p.id, 0, "A passage.", (1,)), paper=p, score=1.0)
        for i, p in enumerate(noted, 1)
    ]
    for fmt in ("md", "json"):
        text = " ".join(render(fmt, "q", hits, KEYS).split())
        assert not [p.id for p in noted if p.note[:40] in text], fmt
