"""ingest --bib: reference-manager exports (Zotero, Better BibTeX, JabRef) with their PDFs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SMALL_PAPERS
from pdfmaker import make_pdf, not_a_pdf

from ddsearch.catalog import Catalog, load_catalog
from ddsearch.cli import main
from ddsearch.config import Settings
from ddsearch.index.store import Store
from ddsearch.ingest.bib import attachments, read_bib
from ddsearch.ingest.pipeline import ingest, plan
from ddsearch.models import Paper
from ddsearch.search.cite import citation_keys


def pdf(path: Path, paper: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    title, pages = SMALL_PAPERS[paper]
    return make_pdf(path, pages, title=title)


def zotero_path(path: Path) -> str:
    """A path escaped as Zotero's BibTeX export writes it in a file field."""
    return str(path).replace("\\", "\\\\").replace(":", "\\:").replace(";", "\\;")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """One folder with a Zotero, a Better BibTeX and a JabRef export, and their PDFs."""
    root = tmp_path / "My Library"
    store = root / "Zotero storage" / "ÄB {x}"
    light = pdf(store / "Keepers; a:b.pdf", "lighthouse")
    ledger = pdf(root / "bbt" / "Quorum Lédger.pdf", "ledger")
    pdf(root / "jab" / "papers" / "orchard {v2}.pdf", "orchard")
    not_a_pdf(root / "snap.html")
    shutil.copy(root / "snap.html", root / "fake.pdf")
    (root / "zotero.bib").write_text(
        "@inproceedings{Keeper:2019:Light/house,\n"
        "  title = {{Lighthouse}: Gossip Among {K}eepers},\n"
        '  author = {Gr{\\"o}nvall, Åsa and van der Berg, Jan and {Coastal Guard Inc.}},\n'
        "  booktitle = {Proc. of the 3rd {Symposium} on Lighthouses},\n"
        "  year = {2019}, pages = {101--112}, doi = {10.9999/Light.2019},\n"
        f"  file = {{Snapshot:{zotero_path(root / 'snap.html')}:text/html;"
        f"Full Text PDF:{zotero_path(light)}:application/pdf}}\n}}\n"
        "@article{Gone:2020,\n  title = {Lost at Sea}, author = {Nobody, N.}, year = 2020,\n"
        "  file = {Full Text PDF:/nowhere/lost at sea.pdf:application/pdf}\n}\n"
        "@misc{Snap:2021, title = {Only a Snapshot}, year = 2021,\n"
        f"  file = {{Snapshot:{zotero_path(root / 'snap.html')}:text/html}}\n}}\n",
        encoding="utf-8",
    )
    (root / "bbt.bib").write_text(
        "@article{merchant2018quorum,\n  title = {Quorum Ledger: Replicated Accounts for Tea"
        " Merchants},\n  author = {Müller, Jörg and O'Neil, Pat},\n"
        "  journal = {Journal of Caravan Systems}, volume = {7}, number = {2}, year = {2018},\n"
        f"  pages = {{33--47}},\n  file = {{{ledger}}}\n}}\n"
        "@article{merchant2018quorum,\n  title = {A duplicate}, year = {2018}\n}\n"
        f"@misc{{fake, title = {{Fake}}, file = {{{root / 'fake.pdf'}}}}}\n"
        "@misc{nofile, title = {Never Attached}}\n",
        encoding="utf-8",
    )
    (root / "jab" / "jabref.bib").write_text(
        "@Comment{jabref-meta: fileDirectory:papers;}\n"
        "@InProceedings{Picker:2017,\n  Title = {Orchard: Consistent Hashing of Apple Trees},\n"
        "  Author = {Picker, Pia},\n  Booktitle = {OrchardConf},\n  Year = {2017},\n"
        "  File = {:orchard {v2}.pdf:PDF}\n}\n",
        encoding="utf-8",
    )
    return root


def bibs(root: Path) -> list[Path]:
    return [root / "zotero.bib", root / "bbt.bib", root / "jab" / "jabref.bib"]


def test_file_field_forms():
    assert attachments("Full Text PDF:/a/b.pdf:application/pdf;Snapshot:/a/s.html:text/html") == [
        ("/a/b.pdf", "application/pdf"),
        ("/a/s.html", "text/html"),
    ]
    escaped = r"PDF:/a/x\:y\;z.pdf:application/pdf"
    assert attachments(escaped) == [("/a/x:y;z.pdf", "application/pdf")]
    assert attachments(r"Full Text:C\:\\Users\\me\\p.pdf:application/pdf") == [
        ("C:\\Users\\me\\p.pdf", "application/pdf")
    ]
    assert attachments("/home/me/p.pdf") == [("/home/me/p.pdf", "")]
    assert attachments(":rel/p.pdf:PDF") == [("rel/p.pdf", "PDF")]
    assert attachments("") == []


def test_entries_keep_key_and_metadata(library: Path):
    entries, problems = read_bib(library / "zotero.bib")
    light = entries[0]
    assert light.key == "Keeper:2019:Light/house"
    assert light.paper.id == "keeper-2019-light-house"
    assert light.paper.title == "Lighthouse: Gossip Among Keepers"
    assert light.paper.authors == ("Åsa Grönvall", "Jan van der Berg", "Coastal Guard Inc.,")
    assert light.paper.venue == "Proc. of the 3rd Symposium on Lighthouses"
    assert (light.paper.year, light.paper.pages) == (2019, "101--112")
    assert light.paper.kind == "inproceedings"
    assert light.pdf is not None and light.pdf.name == "Keepers; a:b.pdf"
    assert problems == []
    (bbt, _fake, _nofile), problems = read_bib(library / "bbt.bib")
    assert bbt.paper.authors == ("Jörg Müller", "Pat O'Neil")
    assert (bbt.paper.volume, bbt.paper.number, bbt.paper.venue) == (
        "7",
        "2",
        "Journal of Caravan Systems",
    )
    assert [label for label, _ in problems] == ["merchant2018quorum"]
    (jab,), _ = read_bib(library / "jab" / "jabref.bib")
    assert jab.pdf == (library / "jab" / "papers" / "orchard {v2}.pdf").resolve()


def test_summary_names_every_entry_not_ingested(library: Path):
    todo, passed = plan(load_catalog(), bibs=bibs(library))
    assert sorted(s.paper.key for s in todo) == ["Keeper:2019:Light/house", "Picker:2017",
                                                 "merchant2018quorum"]  # fmt: skip
    why = {o.paper_id: (o.status, o.reason) for o in passed}
    assert why["Gone:2020"] == ("failed", "file not found: /nowhere/lost at sea.pdf")
    assert why["Snap:2021"] == ("skipped", "not a PDF: snap.html")
    assert why["fake"] == ("skipped", "not a PDF: fake.pdf (not a PDF file)")
    assert why["nofile"] == ("skipped", "no file attached")
    status, reason = why["merchant2018quorum"]
    assert status == "failed" and "duplicate key" in reason
    assert len(passed) == 5


def test_ids_are_stable_and_distinct(tmp_path: Path):
    a = pdf(tmp_path / "a.pdf", "lighthouse")
    b = pdf(tmp_path / "b.pdf", "ledger")
    bib = tmp_path / "x.bib"
    bib.write_text(
        f"@misc{{Foo:1, title={{A}}, file={{{a}}}}}\n@misc{{foo/1, title={{B}}, file={{{b}}}}}\n"
    )
    todo, _ = plan(load_catalog(), bibs=[bib])
    ids = [s.paper.id for s in todo]
    assert len(set(ids)) == 2 and all(i.startswith("foo-1-") for i in ids)
    assert ids == [s.paper.id for s in plan(load_catalog(), bibs=[bib])[0]]


def test_user_keys_win_and_generated_keys_avoid_them():
    mine = Paper("x", "Dynamo", ("Giuseppe DeCandia",), 2007, key="decandia2007dynamo")
    other = Paper("y", "Dynamo Revisited", ("Giuseppe DeCandia",), 2007)
    keys = citation_keys([mine, other])
    assert keys["x"] == "decandia2007dynamo"
    assert keys["y"] != "decandia2007dynamo" and keys["y"].startswith("decandia2007dynamo")
    own = Paper("z", "T", key="Burrows:2006:Chubby")
    assert citation_keys([own]) == {"z": "Burrows:2006:Chubby"}


def test_catalog_paper_is_one_paper_with_the_users_key(tmp_path: Path):
    light = pdf(tmp_path / "l.pdf", "lighthouse")
    listed = Paper("lighthouse", "Lighthouse: Gossip Among Keepers", ("K. Eeper",), 2019,
                   venue="LH", doi="10.9999/LIGHT.2019")  # fmt: skip
    catalog = Catalog(None, {"lighthouse": listed})
    bib = tmp_path / "x.bib"
    bib.write_text(
        "@misc{MyKey, title={Other title}, doi={https://doi.org/10.9999/light.2019},"
        f" file={{{light}}}}}\n"
    )
    (source,), _ = plan(catalog, bibs=[bib])
    assert (source.paper.id, source.paper.key, source.paper.title) == (
        "lighthouse",
        "MyKey",
        listed.title,
    )


def cli(home: Path, *args: str):
    result = CliRunner().invoke(main, ["--home", str(home), *args], catch_exceptions=False)
    return result


@pytest.mark.integration
def test_ingest_update_prune_and_pandoc(library: Path, tmp_path: Path, embedder):
    home = tmp_path / "home"
    settings = Settings(home=home)
    catalog = load_catalog()
    report = ingest(settings, catalog, bibs=bibs(library), embedder=embedder)
    got = sorted((o.paper_id, o.status) for o in report.outcomes)
    assert got == sorted([
        ("keeper-2019-light-house", "ingested"), ("merchant2018quorum", "ingested"),
        ("merchant2018quorum", "failed"), ("picker-2017", "ingested"), ("Gone:2020", "failed"),
        ("Snap:2021", "skipped"), ("fake", "skipped"), ("nofile", "skipped"),
    ])  # fmt: skip

    # an edited .bib: new metadata, nothing embedded again; a removed entry is reported
    jab = library / "jab" / "jabref.bib"
    jab.write_text(jab.read_text().replace("OrchardConf", "Orchard Conference 2017"))
    zot = library / "zotero.bib"
    zot.write_text(zot.read_text().split("@article{Gone")[0])
    again = ingest(settings, catalog, bibs=bibs(library), embedder=embedder)
    got = {o.paper_id: (o.status, o.reason) for o in again.outcomes if o.status != "failed"}
    assert got["picker-2017"] == ("updated", "metadata only")
    assert got["merchant2018quorum"] == ("skipped", "unchanged")
    assert got["keeper-2019-light-house"] == ("skipped", "unchanged")
    assert not again.of("ingested")
    store = Store(home, readonly=True)
    assert store.record("picker-2017").paper.venue == "Orchard Conference 2017"
    store.close()

    # a Markdown export of a query builds with Pandoc against the user's own .bib
    notes = tmp_path / "notes.md"
    result = cli(home, "query", "keepers gossip beacons", "-k", "3", "--export", str(notes))
    assert result.exit_code == 0, result.output
    text = notes.read_text()
    cited = re.findall(r"\[@[^\]]*\]", text)
    # the page locator is the printed page once the lead's rule maps pages = {101--112} onto
    # the PDF; until then a PDF page
    assert any(c.startswith("[@Keeper:2019:Light/house, ") for c in cited), cited
    if shutil.which("pandoc"):
        done = subprocess.run(
            ["pandoc", "--citeproc", "--bibliography", str(zot), "--bibliography",
             str(library / "bbt.bib"), "--bibliography", str(jab), str(notes), "-t", "plain"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "[WARNING]" not in done.stderr, done.stderr
        assert "Grönvall" in done.stdout

    out = json.loads(cli(home, "query", "apple trees pickers", "--json").output)
    assert out["results"][0]["key"] == "Picker:2017"

    # an entry gone from its .bib: reported, then removed with --prune
    jab.write_text(jab.read_text().split("@InProceedings")[0])
    result = cli(home, "ingest", "--bib", str(jab))
    assert "stale    picker-2017: Picker:2017 is no longer in jabref.bib" in result.output
    result = cli(home, "ingest", "--bib", str(jab), "--prune")
    assert result.exit_code == 0, result.output
    assert "pruned   picker-2017" in result.output
    store = Store(home, readonly=True)
    assert "picker-2017" not in store.records()
    store.close()


@pytest.mark.integration
def test_merged_catalog_paper_keeps_the_users_key(tmp_path: Path, embedder):
    """Ingested from the catalog first, then named in a .bib: not embedded again, cited with
    the user's key; a later catalog ingest keeps the key, --prune gives it back."""
    from ddsearch.files import sha256_file
    from ddsearch.search.searcher import Searcher

    light = pdf(tmp_path / "pdfs" / "lighthouse.pdf", "lighthouse")
    listed = Paper("lighthouse", "Lighthouse: Gossip Among Keepers", ("Kay Eeper",), 2019,
                   venue="LH", sha256=sha256_file(light))  # fmt: skip
    catalog = Catalog(None, {"lighthouse": listed})
    settings = Settings(home=tmp_path / "home")
    first = ingest(settings, catalog, [light], embedder=embedder)
    assert [o.status for o in first.outcomes] == ["ingested"]
    bib = tmp_path / "mine.bib"
    bib.write_text(f"@misc{{Eeper:LH, title={{Mine}}, file={{{light}}}}}\n")
    merged = ingest(settings, catalog, bibs=[bib], embedder=embedder)
    assert [(o.paper_id, o.status) for o in merged.outcomes] == [("lighthouse", "updated")]

    def key() -> str:
        s = Searcher(settings.home, embedder=embedder, catalog=catalog)
        try:
            hit = s.search("beacon", 1)[0]
            return s.citation_keys()[hit.paper.id]
        finally:
            s.store.close()

    assert key() == "Eeper:LH"
    # `cite` gives the key a query cites it by, though the catalog lists the paper
    from click.testing import CliRunner

    from ddsearch.cli import main

    toml = tmp_path / "papers.toml"
    toml.write_text(
        '[[paper]]\nid = "lighthouse"\ntitle = "Lighthouse: Gossip Among Keepers"\n'
        'authors = ["Kay Eeper"]\nyear = 2019\nvenue = "LH"\nkind = "misc"\n'
    )
    args = ["--home", str(settings.home), "cite", "lighthouse", "--catalog", str(toml)]
    cited = CliRunner().invoke(main, args)
    assert cited.exit_code == 0 and cited.output.startswith("@misc{Eeper:LH,"), cited.output
    again = ingest(settings, catalog, [light], embedder=embedder)
    assert [o.status for o in again.outcomes] == ["skipped"] and key() == "Eeper:LH"
    bib.write_text("")
    pruned = ingest(settings, catalog, bibs=[bib], prune=True, embedder=embedder)
    assert [(o.paper_id, o.status) for o in pruned.outcomes] == [("lighthouse", "pruned")]
    assert key() == "eeper2019lighthouse"
