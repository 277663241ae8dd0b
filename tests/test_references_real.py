"""References of the shared papers against hand-verified edges (tests/data/citation_edges.json):
edge precision and recall, and each found edge's citing sentence on the right page."""

from __future__ import annotations

import pytest
from refscore import load, score

from ddsearch.catalog import load_catalog
from ddsearch.config import Limits, Settings
from ddsearch.ingest.pipeline import read_paper
from ddsearch.ingest.resolve import Resolver

pytestmark = pytest.mark.integration

GOLD = load()


@pytest.fixture(scope="module")
def found(shared_papers, embedder, tmp_path_factory):
    """Each verified paper's references, read as ingest reads them."""
    catalog = load_catalog()
    resolver = Resolver(catalog)
    settings = Settings(home=tmp_path_factory.mktemp("home"), limits=Limits(isolate=False))
    out = {}
    for pid in GOLD:
        pdf = shared_papers / f"{pid}.pdf"
        _, out[pid] = read_paper(catalog.get(pid), pdf, embedder, settings, resolver=resolver)
    return out


@pytest.mark.parametrize("split", ["tune", "check"])
def test_edges_and_citing_sentences_match_the_verified_ones(found, split):
    s = score(found, GOLD, split)
    assert s.true >= 60
    assert s.precision >= 0.95, (s.line(), s.misses)
    assert s.recall >= 0.90, (s.line(), s.misses)
    assert s.sentences >= 0.90, (s.line(), s.misses)


def test_every_verified_paper_has_a_reference_list(found):
    assert all(found[pid] for pid in GOLD), [pid for pid in GOLD if not found[pid]]


def test_a_slide_deck_has_no_reference_list(shared_papers, embedder, tmp_path):
    """rocksdb.pdf is slides: no list is found rather than a list made of its bullets."""
    catalog = load_catalog()
    settings = Settings(home=tmp_path, limits=Limits(isolate=False))
    pdf = shared_papers / "rocksdb.pdf"
    resolver = Resolver(catalog)
    _, refs = read_paper(catalog.get("rocksdb"), pdf, embedder, settings, resolver=resolver)
    assert refs is None
