"""Bold titles the plain text does not show: put on a line of their own, never quoted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pdfmaker import make_pdf

from ddsearch.ingest.bold import HEADING_MARK
from ddsearch.ingest.chunk import chunk_pages, heading
from ddsearch.ingest.clean import clean_pages
from ddsearch.ingest.extract import extract
from ddsearch.search.quote import pick


def _lines(tmp_path: Path, lines: list[str]) -> list[str]:
    return extract(make_pdf(tmp_path / "p.pdf", [lines])).pages[0].text.splitlines()


def test_a_run_in_title_gets_its_own_marked_line(tmp_path):
    lines = _lines(
        tmp_path,
        [
            "We now describe some applications that use the service.",
            "**The Fetching Service** Crawling is an important part of",
            "a search engine, and it crawls billions of documents.",
        ],
    )
    i = lines.index(HEADING_MARK + "The Fetching Service")
    assert lines[i + 1].strip() == "Crawling is an important part of"
    assert sum(ln.startswith(HEADING_MARK) for ln in lines) == 1


def test_a_whole_bold_line_is_marked_and_still_a_numbered_heading(tmp_path):
    lines = _lines(tmp_path, ["**5.2 Leader election**", "Raft uses a heartbeat mechanism."])
    assert lines[0] == HEADING_MARK + "5.2 Leader election"
    assert heading(lines[0]) == "5.2 Leader election"


def test_a_title_wrapped_onto_a_second_line_is_read_whole(tmp_path, embedder):
    pdf = make_pdf(
        tmp_path / "p.pdf",
        [
            [
                "The lessons we learned are these.",
                "**Optimizing for power users at the expense of casual**",
                "**ones.** Borg provides a large set of features that",
                "let power users tune how their jobs run, and the casual",
                "user finds them hard to learn; we have since built tools",
                "that hide most of them behind sensible defaults.",
            ]
        ],
    )
    pages = clean_pages(extract(pdf).pages, heading)
    [chunk] = chunk_pages("p", pages, embedder.count_tokens, 200, 20)
    texts = [chunk.text[s.start : s.end] for s in chunk.sentences]
    title = texts.index("Optimizing for power users at the expense of casual ones.")
    assert chunk.sentences[title].caption
    assert texts[title + 1].startswith("Borg provides a large set of features")


@pytest.mark.parametrize(
    "lines",
    [
        ["The client then calls", "**create** with the path of the new znode."],  # emphasis
        ["A leader keeps its term until", "**Raft** Uses a new term."],  # mid-sentence
        ["**Figure 3:** Latency of reads and writes as the load grows."],  # a caption
        ["**Abstract**"] + [f"**Every line of this page is bold {i}.**" for i in range(5)],
        ["**A sentence that is set in bold all the way through, much longer than a title**"],
    ],
)
def test_emphasis_captions_and_bold_pages_are_left_alone(tmp_path, lines):
    assert not any(ln.startswith(HEADING_MARK) for ln in _lines(tmp_path, lines))


def test_the_title_is_a_sentence_of_its_own_that_is_never_quoted(tmp_path, embedder):
    pdf = make_pdf(
        tmp_path / "p.pdf",
        [
            [
                "3 Applications",
                "We now describe some applications that use the service.",
                "**The Fetching Service** Crawling is an important part of",
                "a search engine, and it crawls billions of documents.",
                "The read traffic is much higher than the write traffic.",
            ]
        ],
    )
    pages = clean_pages(extract(pdf).pages, heading)
    [chunk] = chunk_pages("p", pages, embedder.count_tokens, 200, 20)
    texts = [chunk.text[s.start : s.end] for s in chunk.sentences]
    assert HEADING_MARK not in chunk.text
    title = texts.index("The Fetching Service")
    assert chunk.sentences[title].caption
    assert texts[title + 1].startswith("Crawling is an important part of a search engine")
    assert chunk.section == "3 Applications"
    # even when the model likes the title best, the quote is prose around it, not the title
    scores = np.full(len(texts), -5.0)
    scores[title] = 5.0
    quote = pick(chunk, scores, max_sentences=1)
    assert quote is not None and "Fetching Service" not in quote.text
    assert len(quote.text.split()) >= 4
