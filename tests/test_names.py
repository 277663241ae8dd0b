"""Named systems: which papers a question names, and what the ranking does with them."""

from __future__ import annotations

import pytest

from ddsearch.catalog import CatalogError, load_catalog
from ddsearch.models import Paper, Respelling
from ddsearch.search.names import Names, camel_split, paper_names, word_split
from ddsearch.search.rank import named_first, union


def test_names_come_from_the_catalog_else_the_title_lead():
    assert paper_names(Paper("dynamo", "Dynamo: Amazon's Highly Available Key-value Store")) == (
        "Dynamo",
    )
    assert paper_names(Paper("dapper", "Dapper, a Large-Scale Tracing Infrastructure")) == (
        "Dapper",
    )
    # a lead of several words is a phrase, not a name; [] says the paper has none
    assert paper_names(Paper("x", "Distributed Systems - Towards a Formal Approach")) == ()
    assert paper_names(Paper("x", "Linearizability: A Correctness Condition", names=())) == ()
    assert paper_names(Paper("raft", "In Search of ...", names=("Raft",))) == ("Raft",)


def test_every_shipped_paper_that_introduces_a_system_is_named():
    names = Names(load_catalog())
    for question, paper in [
        ("how does Raft elect a leader?", "raft"),
        ("the Google File System's master", "gfs"),
        ("What does ZooKeeper's sync do?", "zookeeper"),
        ("Chubby lock sessions", "chubby"),
        ("are CRDTs commutative", "crdts"),
        ("Borg cells", "borg"),
    ]:
        assert [paper in m.papers for m in names.find(question)] == [True], question


def test_case_punctuation_possessives_and_plurals_find_the_same_name():
    names = Names(
        [Paper("zk", "ZooKeeper: Wait-free coordination"), Paper("c", "C", names=("CRDT",))]
    )
    for q in ("ZooKeeper", "zookeeper's watches", "ZOOKEEPER, please", "Zoo-Keeper"):
        found = names.find(q)
        assert (q, [m.papers for m in found]) == (
            q,
            [frozenset({"zk"})] if q != "Zoo-Keeper" else [],
        )
    assert [m.name for m in names.find("crdts and CRDT")] == ["CRDT", "CRDT"]


def test_the_longest_name_wins_and_the_rest_of_the_question_remains():
    names = Names(
        [
            Paper("ptp", "The Part-Time Parliament", names=("Paxos",)),
            Paper("simple", "Paxos Made Simple", names=("Paxos",)),
            Paper("commit", "Consensus on Transaction Commit", names=("Paxos Commit",)),
            Paper("chubby", "The Chubby lock service", names=("Chubby",)),
        ]
    )
    found = names.find("Does Chubby's Paxos differ from Paxos Commit?")
    assert [(m.name, m.papers) for m in found] == [
        ("Chubby", frozenset({"chubby"})),
        ("Paxos", frozenset({"ptp", "simple"})),  # one name, several papers
        ("Paxos Commit", frozenset({"commit"})),
    ]
    assert names.without("Does Chubby's Paxos differ from Paxos Commit?", found) == (
        "does differ from"
    )
    assert names.find("no system here") == []


def test_catalog_names_must_be_a_list_of_strings(tmp_path):
    entry = (
        '[[paper]]\nid = "raft"\ntitle = "T"\nauthors = ["A B"]\nyear = 2014\nvenue = "V"\n'
        'kind = "article"\n'
    )
    path = tmp_path / "papers.toml"
    path.write_text(entry + 'names = ["Raft", "raft consensus"]\n')
    assert load_catalog(path).get("raft").names == ("Raft", "raft consensus")
    path.write_text(entry)
    assert load_catalog(path).get("raft").names is None  # then the title's lead
    for bad in ('names = "Raft"\n', 'names = ["Raft", 3]\n', 'names = [""]\n'):
        path.write_text(entry + bad)
        with pytest.raises(CatalogError, match="names"):
            load_catalog(path)


def test_union_keeps_each_candidate_once_at_its_best_score():
    assert union([(1, 0.9), (2, 0.5)], [(2, 0.7), (3, 0.6)]) == [(1, 0.9), (2, 0.7), (3, 0.6)]


def test_named_first_shows_each_named_papers_best_after_the_top_hit():
    ranked = ["chubby:1", "chubby:2", "other:1", "zk:1", "chubby:3", "borg:1"]
    paper = lambda hit: hit.split(":")[0]  # noqa: E731
    groups = [frozenset({"chubby"}), frozenset({"zk"}), frozenset({"borg"})]
    assert named_first(ranked, paper, groups) == [
        "chubby:1", "zk:1", "borg:1", "chubby:2", "other:1", "chubby:3",
    ]  # fmt: skip
    assert named_first(ranked, paper, groups, free=0)[0] == "chubby:1"
    assert named_first(ranked, paper, []) == ranked


def test_a_one_word_name_typed_as_two_capitalised_words_is_read_as_the_name():
    names = Names(
        [
            Paper("bt", "Bigtable: A Distributed Storage System for Structured Data"),
            Paper("ms", "M", names=("Megastore",)),
            Paper("raft", "R", names=("Raft",)),
            Paper("mr", "MapReduce: Simplified Data Processing on Large Clusters"),
        ]
    )
    text, read = names.joined("Does Big Table, or Mega-Store, or BIG TABLE's master keep logs?")
    assert text == "Does Bigtable, or Megastore, or Bigtable's master keep logs?"
    assert read == (
        Respelling("Big Table", "Bigtable"),
        Respelling("Mega-Store", "Megastore"),
        Respelling("BIG TABLE", "Bigtable"),
    )
    assert [m.papers for m in names.find(text)] == [frozenset({"bt"}), frozenset({"ms"}),
                                                    frozenset({"bt"})]  # fmt: skip
    # a letter whose lower case is another letter's ("ı", "ſ") reads the name, as the pattern does
    assert names.joined("Bıg Table") == ("Bigtable", (Respelling("Bıg Table", "Bigtable"),))
    # in lower case the words are words; each word of three letters or more; whole words only
    for kept in ("a big table of results", "a Big table", "Ra Ft", "Big Tables", "Big Tablet"):
        assert names.joined(kept) == (kept, ())
    assert word_split("Raft") is word_split("MapReduce") is word_split("Memcache2") is None
    # not where the two words are a name of their own
    both = Names([Paper("hs", "H", names=("Haystack",)), Paper("o", "O", names=("Hay Stack",))])
    assert both.joined("Hay Stack and Hays Tack") == (
        "Hay Stack and Haystack",
        (Respelling("Hays Tack", "Haystack"),),
    )


def test_a_camel_case_name_typed_apart_is_read_as_the_name():
    names = Names(
        [
            Paper("mr", "MapReduce: Simplified Data Processing on Large Clusters"),
            Paper("rocks", "R", names=("RocksDB",)),
            Paper("bt", "Bigtable: A Distributed Storage System for Structured Data"),
            Paper("ep", "E", names=("EPaxos",)),
            Paper("lcr", "L", names=("LeLann", "Le Lann")),
        ]
    )
    assert names.joined("Le Lann's ring") == ("Le Lann's ring", ())  # a name of its own
    text, read = names.joined("Does map reduce's master, or Rocks-DB, keep a big table?")
    assert text == "Does MapReduce's master, or RocksDB, keep a big table?"
    assert read == (Respelling("map reduce", "MapReduce"), Respelling("Rocks-DB", "RocksDB"))
    assert [m.papers for m in names.find(text)] == [frozenset({"mr"}), frozenset({"rocks"})]
    # only where the name's own capitals say where its words part; whole words only
    assert names.joined("a big table of E Paxos maps; mapreduce") == (
        "a big table of E Paxos maps; mapreduce",
        (),
    )
    assert names.joined("heap reduce")[1] == names.joined("map reducer")[1] == ()
    assert camel_split("FoundationDB") == ("Foundation", "DB")
    assert camel_split("EPaxos") is None  # "E Paxos": a part of one letter
    assert camel_split("Bigtable") is camel_split("Le Lann") is camel_split("VM-FT") is None
