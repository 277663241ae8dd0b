"""Questions asked in readers' words (issue #27), on real papers: the system is described, not
named, and so is the mechanism. Written for this test from the PDFs, not taken from the dev
files; each answering page was read in the PDF (1-based). Skips where ../shared/papers is absent.
"""

from __future__ import annotations

import re

import pytest
from conftest import searcher_over

pytestmark = pytest.mark.integration

# the answering papers, and papers on neighbouring subjects that could take their place
PAPERS = ("dynamo", "chubby", "haystack", "bigtable", "gfs")
DISTRACTORS = ("cassandra", "zookeeper", "mapreduce", "spark-rdd")

QUANTITY = (
    "How much memory does the master of Google's cluster file system need for each piece "
    "of a file it tracks?"
)
# question -> {paper: the PDF pages that answer it}
QUESTIONS = {
    # §4.6 Hinted handoff: the replica goes to the next healthy node with a hint naming its owner
    "In Amazon's always-writable key-value store, if a node that should keep a copy is down "
    "when a write arrives, where does that copy go, and how does it get back later?": {
        "dynamo": {8}
    },
    # §2.7 Caching: the master blocks the change until every cache is invalidated (6, on to 7)
    "How does Google's lock service stop the file contents that clients keep cached from "
    "going stale when somebody changes a file?": {"chubby": {6, 7}},
    # §3.6.1 Compaction: copy the live needles to a new volume file, skipping deleted ones
    "How does Facebook's photo storage win back the disk space taken up by pictures that "
    "people have deleted?": {"haystack": {8}},
    # §6 Bloom filters: most lookups for rows that do not exist never touch the disk
    "In Google's wide-column store, how does a lookup for a row that isn't there avoid going "
    "to disk for every data file of the range?": {"bigtable": {7}},
    # §2.6.1: "less than 64 bytes of metadata for each 64 MB chunk"
    QUANTITY: {"gfs": {4}},
}

# a quantity question's quote must carry its number, as written in the paper
NUMBERS = {QUANTITY: "64 bytes"}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, shared_papers, embedder):
    home = tmp_path_factory.mktemp("readers") / "home"
    yield from searcher_over(home, shared_papers, embedder, PAPERS + DISTRACTORS)


@pytest.mark.parametrize("commas", [True, False], ids=["as-written", "without-commas"])
@pytest.mark.parametrize("question", list(QUESTIONS), ids=lambda q: q[:40])
def test_the_answering_page_is_cited_in_the_top_five(searcher, question, commas):
    # readers type questions without their commas too ("In Google's wide-column store how ...")
    asked = question if commas else question.replace(",", "")
    hits = searcher.search(asked, k=5)
    searcher.add_quotes(asked, hits)
    cited = [(h.paper.id, set(h.cited_pages)) for h in hits]
    for paper, pages in QUESTIONS[question].items():
        answering = [h for h in hits if h.paper.id == paper and pages & set(h.cited_pages)]
        assert answering, f"{paper} p. {sorted(pages)} not cited in the top 5: {cited}"
        if question in NUMBERS:
            quotes = [re.sub(r"\s+", " ", h.quote or "") for h in answering]
            assert any(NUMBERS[question] in q for q in quotes), quotes


def cited(searcher, asked: str) -> list[tuple[str, tuple[int, ...]]]:
    """The top 5's (paper, cited pages), in sorted order: the dense run reads the words in
    their order, so two forms of one question may trade two places."""
    hits = searcher.search(asked, k=5)
    searcher.add_quotes(asked, hits)
    return sorted((h.paper.id, tuple(h.cited_pages)) for h in hits)


# a system described by a phrase of the reader's own, typed with its comma, without it, or
# another way round
DESCRIBED = {
    "In the key-value store Amazon built to keep shopping carts always writable, how are the "
    "versions of an object that diverged during a partition reconciled?": (
        "How are the versions of an object that diverged during a partition reconciled in the "
        "key-value store Amazon built to keep shopping carts always writable?"
    ),
    "In the lock service Google built for loosely-coupled distributed systems, how long is a "
    "client's session lease by default?": (
        "How long is a client's session lease by default in the lock service Google built for "
        "loosely-coupled distributed systems?"
    ),
    # the maker after the kind, or before it without the possessive
    "How does Google's lock service stop the file contents that clients keep cached from going "
    "stale when somebody changes a file?": (
        "How does the lock service from Google stop the file contents that clients keep cached "
        "from going stale when somebody changes a file?",
        "How does the Google lock service stop the file contents that clients keep cached from "
        "going stale when somebody changes a file?",
    ),
    # the description last, after "according to"
    "In Facebook's photo storage system, how is the disk space of deleted pictures won back?": (
        "How is the disk space of deleted pictures won back, according to the paper on "
        "Facebook's photo storage system?"
    ),
}


@pytest.mark.parametrize("question", list(DESCRIBED), ids=lambda q: q[:40])
def test_a_described_system_reads_the_same_wherever_it_is_typed(searcher, question):
    # the same passages cited
    as_written = cited(searcher, question)
    assert cited(searcher, question.replace(",", "")) == as_written
    others = DESCRIBED[question]
    for other in (others,) if isinstance(others, str) else others:
        assert cited(searcher, other) == as_written, other


# a question wrapped in a request, as readers type into a search box or an assistant, or put
# after a label that says which system
WRAPPED = {
    "Can you tell me, in Amazon's always-writable key-value store, if a node that should keep "
    "a copy is down when a write arrives, where does that copy go?": (
        "In Amazon's always-writable key-value store, if a node that should keep a copy is down "
        "when a write arrives, where does that copy go?"
    ),
    "Explain to me: in the lock service Google built for loosely-coupled distributed systems, "
    "how long is a client's session lease by default?": (
        "In the lock service Google built for loosely-coupled distributed systems, how long is a "
        "client's session lease by default?"
    ),
    "Hi! I'd like to know how Facebook's photo storage wins back the disk space taken up by "
    "pictures that people have deleted.": (
        "How does Facebook's photo storage win back the disk space taken up by pictures that "
        "people have deleted?"
    ),
    "I'm reading about the lock service Google built for loosely-coupled distributed systems. "
    "How long is a client's session lease by default?": (
        "In the lock service Google built for loosely-coupled distributed systems, how long is a "
        "client's session lease by default?"
    ),
    "The key-value store Amazon built to keep shopping carts always writable: how are the "
    "versions of an object that diverged during a partition reconciled?": (
        "In the key-value store Amazon built to keep shopping carts always writable, how are the "
        "versions of an object that diverged during a partition reconciled?"
    ),
}


@pytest.mark.parametrize("wrapped", list(WRAPPED), ids=lambda q: q[:40])
def test_a_request_or_a_label_around_the_question_changes_nothing_it_cites(searcher, wrapped):
    assert cited(searcher, wrapped) == cited(searcher, WRAPPED[wrapped])


# the same questions with a typing slip or two, as readers make them in a search box
SLIPPED = {
    "How does Google's lock service stop the file contnets that clients keep cached from going "
    "stale when somebody changes a file?": (
        "How does Google's lock service stop the file contents that clients keep cached from "
        "going stale when somebody changes a file?"
    ),
    "How does Facebook's photo storage win back the disk space taken up by pictures that "
    "people have deletd?": (
        "How does Facebook's photo storage win back the disk space taken up by pictures that "
        "people have deleted?"
    ),
    "In Google's wide-column store, how does a lookup for a row that isn't there avoid going "
    "to disk for every data file of the rnage? Does Bigtabel use bloom fliters?": (
        "In Google's wide-column store, how does a lookup for a row that isn't there avoid going "
        "to disk for every data file of the range? Does Bigtable use bloom filters?"
    ),
}


@pytest.mark.parametrize("slipped", list(SLIPPED), ids=lambda q: q[:40])
def test_a_typing_slip_changes_nothing_it_cites(searcher, slipped):
    assert cited(searcher, slipped) == cited(searcher, SLIPPED[slipped])
    assert searcher.search(slipped, k=1).respelled  # and the reader is told what was searched
