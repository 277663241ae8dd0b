"""The shipped catalog, and strict validation of broken ones."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ddsearch.catalog import KINDS, CatalogError, default_catalog_path, load_catalog, slugify
from ddsearch.models import Paper


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_shipped_catalog_loads(catalog):
    assert catalog.path == default_catalog_path()
    assert len(catalog) >= 45
    ids = [p.id for p in catalog]
    assert len(ids) == len(set(ids))
    for p in catalog:
        assert isinstance(p, Paper)
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", p.id)
        assert p.title.strip() and p.authors and all(a.strip() for a in p.authors)
        assert isinstance(p.year, int) and 1000 <= p.year <= 2100
        assert p.venue and p.kind in KINDS
        assert p.url is None or p.url.startswith(("http://", "https://"))
        assert p.path is None


def test_catalog_container_protocol(catalog):
    first = next(iter(catalog))
    assert first.id in catalog and catalog.get(first.id) is first
    assert "no-such-paper" not in catalog and catalog.get("no-such-paper") is None


def test_every_shared_pdf_has_an_entry(catalog, shared_papers):
    stems = sorted(p.stem for p in shared_papers.glob("*.pdf"))
    assert len(stems) == 45
    assert [s for s in stems if s not in catalog] == []
    for stem in stems:
        assert catalog.get(stem).id == stem


def test_known_entries(catalog):
    dynamo = catalog.get("dynamo")
    assert dynamo.year == 2007 and "Dynamo" in dynamo.title
    assert dynamo.authors[0] == "Giuseppe DeCandia"
    assert catalog.get("raft").year == 2014


def test_volume_and_number_become_strings(tmp_path):
    path = write(tmp_path, GOOD.replace('kind = "article"', 'kind = "article"\nvolume = 21'))
    assert load_catalog(path).get("clocks").volume == "21"


# ---------------------------------------------------------------- broken catalogs

GOOD = """
[[paper]]
id = "clocks"
title = "Time, Clocks, and the Ordering of Events in a Distributed System"
authors = ["Leslie Lamport"]
year = 1978
venue = "Communications of the ACM"
kind = "article"
url = "https://lamport.azurewebsites.net/pubs/time-clocks.pdf"

[[paper]]
id = "flp"
title = "Impossibility of Distributed Consensus with One Faulty Process"
authors = ["Michael J. Fischer", "Nancy A. Lynch", "Michael S. Paterson"]
year = 1985
venue = "Journal of the ACM"
kind = "article"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "papers.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_catalog(tmp_path):
    cat = load_catalog(write(tmp_path, GOOD))
    assert [p.id for p in cat] == ["clocks", "flp"]
    assert cat.get("flp").authors == ("Michael J. Fischer", "Nancy A. Lynch", "Michael S. Paterson")
    assert cat.get("flp").tags == ()


@pytest.mark.parametrize(
    "old, new, entry, field",
    [
        ('year = 1985\n', '', "'flp'", "year"),  # missing
        ('year = 1985', 'year = "1985"', "'flp'", "year"),  # wrong type
        ('year = 1985', 'year = true', "'flp'", "year"),  # bool is not an int
        ('year = 1985', 'year = 85', "'flp'", "year"),  # out of range
        ('venue = "Journal of the ACM"', 'venue = "JACM"\npublisherr = "ACM"', "'flp'",
         "publisherr"),
        ('url = "https://lamport', 'url = "ftp://lamport', "'clocks'", "url"),
        ('url = "https://lamport', 'url = "javascript:alert(1)//lamport', "'clocks'", "url"),
        ('kind = "article"\nurl', 'kind = "article"\nsha256 = "abc123"\nurl', "'clocks'", "sha256"),
        ('kind = "article"\nurl', 'kind = "article"\nsha256 = "' + "A" * 64 + '"\nurl', "'clocks'",
         "sha256"),
        ('authors = ["Leslie Lamport"]', 'authors = []', "'clocks'", "authors"),
        ('authors = ["Leslie Lamport"]', 'authors = "Leslie Lamport"', "'clocks'", "authors"),
        ('authors = ["Leslie Lamport"]', 'authors = ["Leslie Lamport", 3]', "'clocks'", "authors"),
        ('kind = "article"\nurl', 'kind = "article"\ntags = ["a", 1]\nurl', "'clocks'", "tags"),
        ('Journal of the ACM"\nkind = "article"', 'Journal of the ACM"\nkind = "journal"', "'flp'",
         "kind"),
        ('id = "flp"', 'id = "FLP 85"', "'FLP 85'", "id"),
        ('id = "flp"', 'id = 7', "paper #2", "id"),
        ('title = "Impossibility of Distributed Consensus with One Faulty Process"',
         'title = "  "', "'flp'", "title"),
    ],
)  # fmt: skip
def test_bad_field_names_file_entry_and_field(tmp_path, old, new, entry, field):
    assert GOOD.count(old) == 1, old
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    msg = str(info.value)
    assert str(path) in msg
    assert entry in msg
    assert f"'{field}'" in msg
    assert "\n" not in msg


def test_entry_is_numbered_when_it_has_no_id(tmp_path):
    path = write(tmp_path, GOOD.replace('id = "flp"\n', ""))
    with pytest.raises(CatalogError, match=r"paper #2: missing required field 'id'"):
        load_catalog(path)


def test_duplicate_id(tmp_path):
    path = write(tmp_path, GOOD.replace('id = "flp"', 'id = "clocks"'))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    msg = str(info.value)
    assert str(path) in msg and "paper #2" in msg and "duplicate id 'clocks'" in msg


def test_bad_toml(tmp_path):
    path = write(tmp_path, GOOD.replace("year = 1985", "year = = 1985"))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert str(path) in str(info.value) and "not valid TOML" in str(info.value)
    assert "line" in str(info.value)  # where the syntax error is


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(CatalogError, match="catalog file not found"):
        load_catalog(tmp_path / "nope.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'title = "caf\xe9"\n')
    with pytest.raises(CatalogError, match=re.escape(str(bad))):
        load_catalog(bad)


def test_wrong_shape(tmp_path):
    with pytest.raises(CatalogError, match="unknown top-level key"):
        load_catalog(write(tmp_path, "papers = []\n" + GOOD))
    with pytest.raises(CatalogError, match=r"array of tables"):
        load_catalog(write(tmp_path, 'paper = "x"\n'))


def test_empty_catalog_is_allowed(tmp_path):
    assert len(load_catalog(write(tmp_path, "# nothing yet\n"))) == 0


@pytest.mark.parametrize(
    "stem, slug",
    [("GFS", "gfs"), ("Paxos Made Simple", "paxos-made-simple"), ("raft_v2", "raft-v2"),
     ("--x--", "x"), ("!!!", "paper")],
)  # fmt: skip
def test_slugify(stem, slug):
    assert slugify(stem) == slug
