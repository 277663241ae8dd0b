"""A paper's name typed otherwise than the paper writes it, on real papers: a camel-case name
typed apart ("Map Reduce", "Zoo Keeper", "Rocks DB"), a one-word name typed as two capitalised
words ("Big Table") and a slip in a name of four letters ("Rfat", "SIWM") are searched as the
name, and the reader is told. Skips where ../shared/papers is absent."""

from __future__ import annotations

import pytest
from conftest import searcher_over

from ddsearch.models import Respelling

pytestmark = pytest.mark.integration

# the named papers, and papers on the same subjects that could take their place
PAPERS = ("mapreduce", "zookeeper", "rocksdb", "raft", "swim", "bigtable")
DISTRACTORS = ("zab", "chubby", "paxos-simple", "spark-rdd")

# as typed -> as the paper writes the name
TYPED = {
    "How does Map Reduce deal with a worker that fails in the middle of a job?": (
        "How does MapReduce deal with a worker that fails in the middle of a job?"
    ),
    "How does Zoo Keeper order the writes of a client?": (
        "How does ZooKeeper order the writes of a client?"
    ),
    "How does Rocks DB decide when to compact files?": (
        "How does RocksDB decide when to compact files?"
    ),
    "How does Big Table find the server that holds a tablet?": (
        "How does Bigtable find the server that holds a tablet?"
    ),
    "How does Rfat make sure that a newly elected leader holds every committed entry?": (
        "How does Raft make sure that a newly elected leader holds every committed entry?"
    ),
    "How does SIWM keep a false suspicion from removing a healthy member?": (
        "How does SWIM keep a false suspicion from removing a healthy member?"
    ),
}


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, shared_papers, embedder):
    home = tmp_path_factory.mktemp("names") / "home"
    yield from searcher_over(home, shared_papers, embedder, PAPERS + DISTRACTORS)


def cited(searcher, asked: str) -> list[tuple[str, tuple[int, ...]]]:
    hits = searcher.search(asked, k=5)
    searcher.add_quotes(asked, hits)
    return [(h.paper.id, tuple(h.cited_pages)) for h in hits]


@pytest.mark.parametrize("typed", list(TYPED), ids=lambda q: q[:40])
def test_a_name_typed_otherwise_cites_what_the_name_cites(searcher, typed):
    assert cited(searcher, typed) == cited(searcher, TYPED[typed])
    # and the reader is told what was searched
    (told,) = searcher.search(typed, k=1).respelled
    assert told.read in TYPED[typed] and told.typed in typed  # as typed


def test_a_name_typed_apart_is_not_read_where_its_paper_is_not_indexed(searcher):
    # FoundationDB is in the catalog, not in this index: its words stay words
    asked = "How does Foundation DB test its code?"
    assert searcher.read(asked) == (asked, ())
    assert searcher.read("How does Rfat work?")[1] == (Respelling("Rfat", "Raft"),)
