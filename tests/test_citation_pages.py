"""Sentences in the index: a made PDF's quotes cite the page where they stand, debris removed.

The PDF (tests/pdfmaker.py) has a sentence that straddles a page break, a word broken by a
soft hyphen with the page number glued on (as pdfium reads raft.pdf), and a figure's labels
and caption set inside a paragraph (as in GFS's Figure 1).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ddsearch.catalog import load_catalog
from ddsearch.config import Settings
from ddsearch.ingest.pipeline import ingest
from ddsearch.search.cite import make_citation
from ddsearch.search.searcher import Searcher

FILLER = "The harbour keeps its ledger of every ship that enters and leaves the bay."

PAGES = [
    [
        "Harbour Ledger: Tracking Ships Across Tides",
        "1 Introduction",
        *[FILLER] * 6,
        "Each arrival gets an entry with an integer index iden\u00ad1",
    ],
    [
        "tifying its berth in the harbour ledger.",
        "The harbourmaster walks the quay every morning and counts the moored",
        "Legend:",
        "Berth",
        "Quay",
        "Figure 1: The harbour layout",
        "boats against the ledger before the tide turns.",
        *[FILLER] * 5,
        "A pilot boat is dispatched when the tide gauge shows more than",
        "2",
    ],
    [
        "four metres of water over the harbour bar at dawn.",
        *[FILLER] * 6,
        "3",
    ],
]


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, embedder) -> Searcher:
    from pdfmaker import make_pdf

    root = tmp_path_factory.mktemp("harbour")
    make_pdf(root / "harbour.pdf", PAGES, title="Harbour Ledger: Tracking Ships Across Tides")
    report = ingest(Settings(home=root / "home"), load_catalog(), [root], embedder=embedder)
    assert report.ok, report
    return Searcher(root / "home", embedder=embedder, catalog=load_catalog())


def _quote_hit(searcher, question):
    hits = searcher.search(question, k=3)
    searcher.add_quotes(question, hits)
    return hits[0]


def test_a_sentence_across_a_page_break_is_cited_on_both_pages(searcher):
    hit = _quote_hit(searcher, "When is the pilot boat dispatched over the harbour bar?")
    assert "more than four metres of water" in hit.quote
    assert hit.quote_pages == (2, 3)
    assert make_citation(hit, "k").pages == "pp. 2–3"


def test_a_page_number_inside_a_broken_word_is_gone(searcher):
    hit = _quote_hit(searcher, "What does the integer index of an arrival identify?")
    assert "index identifying its berth" in hit.quote
    assert "iden1" not in hit.chunk.text and "iden" + " tifying" not in hit.chunk.text
    assert hit.quote_pages == (1, 2)  # the sentence starts on page 1 and ends on page 2


def test_a_figure_inside_a_paragraph_stays_out_of_its_sentences(searcher):
    hit = _quote_hit(searcher, "What does the harbourmaster count every morning on the quay?")
    assert "counts the moored boats against the ledger before the tide turns." in hit.quote
    assert "Legend" not in hit.quote and "Figure 1" not in hit.quote
    db = sqlite3.connect(Path(searcher.store.db_path))
    captions = [
        text[a:b]
        for text, a, b in db.execute(
            "SELECT c.text, s.start, s.end FROM sentences s JOIN chunks c ON c.rowid = s.chunk "
            "WHERE s.caption = 1"
        )
    ]
    assert captions == ["Figure 1: The harbour layout"]
    assert all("Legend:" not in t for (t,) in db.execute("SELECT text FROM chunks"))


def test_json_pages_are_the_quotes_and_the_passage_keeps_its_own(searcher):
    import json

    from ddsearch.search.export import render_json

    question = "What does the harbourmaster count every morning on the quay?"
    hits = searcher.search(question, k=1)
    searcher.add_quotes(question, hits)
    doc = json.loads(render_json(question, hits, searcher.citation_keys()))["results"][0]
    assert doc["pages"] == [2]
    assert 2 in doc["passage_pages"] and doc["link"].endswith("#page=2")
    assert doc["page_label"] == "p. 2"
    assert doc["scores"]["dense"] > 0 and doc["scores"]["lexical"] > 0
