"""What only the typesetting shows: bold titles (never quoted), small print inside a sentence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pdfmaker import make_pdf

from ddsearch.ingest.chunk import chunk_pages, heading
from ddsearch.ingest.clean import clean_pages
from ddsearch.ingest.extract import extract
from ddsearch.ingest.typeset import HEADING_MARK
from ddsearch.search.quote import pick


def _lines(tmp_path: Path, lines: list[str]) -> list[str]:
    return extract(make_pdf(tmp_path / "p.pdf", [lines])).pages[0].text.splitlines()


def _chunk(tmp_path: Path, embedder, lines: list[str]):
    """The one chunk of a one-page PDF of ``lines``, and its sentences' text."""
    pages = clean_pages(extract(make_pdf(tmp_path / "p.pdf", [lines])).pages, heading)
    [chunk] = chunk_pages("p", pages, embedder.count_tokens, 250, 20)
    return chunk, [chunk.text[s.start : s.end] for s in chunk.sentences]


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
    chunk, texts = _chunk(
        tmp_path,
        embedder,
        [
            "The lessons we learned are these.",
            "**Optimizing for power users at the expense of casual**",
            "**ones.** Borg provides a large set of features that",
            "let power users tune how their jobs run, and the casual",
            "user finds them hard to learn; we have since built tools",
            "that hide most of them behind sensible defaults.",
        ],
    )
    title = texts.index("Optimizing for power users at the expense of casual ones.")
    assert chunk.sentences[title].caption
    assert texts[title + 1].startswith("Borg provides a large set of features")


def test_a_heading_wrapped_over_two_bold_lines_is_one_section(tmp_path):
    from ddsearch.ingest.chunk import _sentences

    pdf = make_pdf(
        tmp_path / "p.pdf",
        [[
            "**4.7 Handling permanent failures: Replica**",
            "**synchronization**",
            "Hinted handoff works best if the system membership churn is low and node",
            "failures are transient. There are scenarios under which hinted replicas",
            "become unavailable before they can be returned to the original replica",
            "node. To handle this and other threats to durability, Dynamo implements",
            "an anti-entropy (replica synchronization) protocol to keep replicas in sync.",
            "**6.5 User Applications Built with Spark**",
            "**In-Memory Analytics** Conviva Inc used Spark to speed up reports.",
        ]],
    )  # fmt: skip
    sentences = _sentences(clean_pages(extract(pdf).pages, heading))
    found = {s.text: s.section for s in sentences}
    section = "4.7 Handling permanent failures: Replica synchronization"
    first = "Hinted handoff works best if the system membership churn is low and node failures"
    assert found[first + " are transient."] == section
    assert "synchronization" not in found  # the title's second line is no sentence of its own
    # a run-in paragraph title after a heading goes on with its text: no part of the heading
    assert found["In-Memory Analytics"] == "6.5 User Applications Built with Spark"
    assert found["Conviva Inc used Spark to speed up reports."].startswith("6.5 User")


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
    chunk, texts = _chunk(
        tmp_path,
        embedder,
        [
            "3 Applications",
            "We now describe some applications that use the service.",
            "**The Fetching Service** Crawling is an important part of",
            "a search engine, and it crawls billions of documents.",
            "The read traffic is much higher than the write traffic.",
        ],
    )
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


def test_a_footnote_inside_a_sentence_moves_after_the_sentence(tmp_path, embedder):
    text = _chunk(
        tmp_path,
        embedder,
        [
            "5.1 Job Scheduling",
            "The scheduler uses our representation of datasets.",
            "It runs a job as a graph of stages.",
            "The scheduler is similar to the one of Dryad, and it also takes into account",
            "which partitions of per-__3Note that our union operation keeps duplicates.__",
            "__join groupBy map__",
            "sistent datasets are in memory. Whenever a user runs an action,",
            "the scheduler builds a graph of stages to execute.",
            "Each stage holds as many narrow transformations as it can.",
            "The boundaries of the stages are the shuffles.",
            "Then tasks compute the missing partitions.",
        ],
    )[0].text
    assert "which partitions of persistent datasets are in memory." in text
    assert "the scheduler builds a graph of stages to execute. 3Note that our union" in text
    assert "duplicates. join groupBy map Each stage holds as many narrow" in text


@pytest.mark.parametrize(
    "lines",
    [
        # small print between whole sentences stays where it is
        [
            "The log is replicated to every server.",
            "__3A footnote that explains the log.__",
            "Each server applies the entries in order.",
        ],
        # a subscript at a line's end is too short to be an aside
        ["The value of the counter x__i__ grows with", "each request the server accepts."],
        # a running header: the page's top and bottom lines stay for clean to recognise
        [
            "482 __M. Herlihy and J. Wing, Linearizability__",
            "their specifications and",
            "the",
            "assumption that they",
            "are implemented correctly.",
            "Here are axioms.",
        ],
        # no sentence ends after it on this page: nowhere to move it to
        ["The value grows with__3A footnote that never ends a sentence__", "each request and"],
    ],
)
def test_small_print_that_interrupts_nothing_stays(tmp_path, embedder, lines):
    plain = " ".join(ln.replace("__", "") for ln in lines)
    assert _chunk(tmp_path, embedder, lines)[0].text == plain
