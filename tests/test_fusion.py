"""Fusion by evidence: which paper a question asks about, then which of its passages answers."""

from __future__ import annotations

import numpy as np
import pytest

from ddsearch.catalog import load_catalog
from ddsearch.config import SearchSettings
from ddsearch.models import Chunk, Sentence
from ddsearch.search import fusion
from ddsearch.search.names import Names
from ddsearch.search.quote import Question, sentence_terms
from ddsearch.search.searcher import Searcher


@pytest.fixture(scope="module")
def names():
    """The names of two papers, as fusion.asking reads them."""
    return Names(p for p in load_catalog() if p.id in ("gfs", "raft"))


def test_clauses_split_a_question_about_two_systems():
    q = "Do Amazon's shopping-cart store and Facebook's inbox-search store find new nodes?"
    assert fusion.clauses(q) == [
        "Do Amazon's shopping-cart store",
        "Facebook's inbox-search store find new nodes?",
    ]
    assert fusion.clauses(
        "How is the next leader chosen in Raft compared with the one in Viewstamped Replication?"
    ) == ["How is the next leader chosen in Raft", "the one in Viewstamped Replication?"]
    # a clause needs words of its own: "reads and writes" is one thing asked
    assert fusion.clauses("How does GFS order reads and writes?") == []
    assert (
        fusion.clauses("How is a leader chosen in Raft compared with Viewstamped Replication") == []
    )


def test_asking_keeps_what_is_asked_not_what_names_the_system(names):
    # a leading "In <system>, " phrase only says which paper
    assert (
        fusion.asking("In Google's cluster file system, where does appended data go?", names, set())
        == "where does appended data go"
    )
    # a name is dropped, and so are the words that identify the likely paper
    assert fusion.asking("How does Raft pick a leader?", names, set()) == "how does pick a leader"
    assert (
        fusion.asking("How does the Acme queue keep a message?", names, {"acme", "queue"})
        == "how does the keep a message"
    )
    # a comma that does not end a description, and a question of only identifying words
    q = "In short, the master is a single point?"
    assert fusion.asking(q, names, set()) == "in short the master is a single point"
    assert fusion.asking("What is Raft?", names, set()) == "what is raft"


def test_asking_drops_a_system_described_by_its_maker_inside_the_question(names):
    q = "Do Amazon's shopping-cart key-value store and Facebook's inbox-search store find nodes?"
    assert fusion.asking(q, names, set()) == "do and find nodes"
    q = "How big is each volume file into which Facebook's photo store packs photos?"
    assert fusion.asking(q, names, set()) == "how big is each volume file into which packs photos"
    # after a name, what follows is what is asked; "it's" or "one's" names no maker
    q = "How does Raft's leader election protocol work?"
    assert fusion.asking(q, names, set()) == "how does leader election protocol work"
    q = "Why is it's store slow and one's own protocol fast?"
    assert fusion.asking(q, names, set()) == "why is it s store slow and one s own protocol fast"
    # case and punctuation other than the comma that ends a leading phrase change nothing
    q = "In Google's cluster file system, where does Amazon's key-value store put data?"
    for variant in (q, q.upper(), q.replace("'", " ").replace("?", " ?!")):
        assert fusion.asking(variant, names, set()) == "where does put data"


def test_asking_reads_a_leading_phrase_typed_without_its_comma(names):
    cases = [
        ("In Google's cluster file system, where does data go?", "where does data go"),
        # a clause that opens first ("if") leaves the phrase in, with its comma or without
        (
            "In Facebook's RPC framework, if a call is one-way what returns?",
            "in if a call is one way what returns",
        ),
        # "where" and "which" before no helper go on describing the system
        (
            "In a scheduler where low-priority work may be evicted, how are chains avoided?",
            "how are chains avoided",
        ),
        (
            "In the store from Princeton that tracks which writes come first, do clients wait?",
            "do clients wait",
        ),
        # "which" a word before a helper opens the question; "can't" is not a helper here
        (
            "In a store where any replica may coordinate, which replica should coordinate?",
            "which replica should coordinate",
        ),
        (
            "In the proof that a service can't have it all once the net splits, why must it fail?",
            "why must it fail",
        ),
        # a parenthesis inside the phrase is skipped whole
        (
            "In Google's batch library (the one where you write a map function), what happens?",
            "what happens",
        ),
    ]
    for q, asked in cases:
        assert fusion.asking(q, names, set()) == asked
        assert fusion.asking(q.replace(",", ""), names, set()) == asked, q
    # a question that opens with what it asks has no leading phrase to drop
    q = "How does the master in Google's cluster file system find chunks?"
    assert fusion.asking(q, names, set()) == fusion.asking(q.replace(",", ""), names, set())
    q = "In what order are appends applied?"
    assert fusion.asking(q, names, set()) == "in what order are appends applied"
    # "where" before a verb's helper opens the question
    q = "Within Google's cluster file system where does appended data go?"
    assert fusion.asking(q, names, set()) == "where does appended data go"


def test_asking_drops_a_description_of_the_system_put_last(names):
    for q in (
        "Where does appended data go in Google's cluster file system?",
        "Where does appended data go in the cluster file system that Google built for crawls?",
        "Where does appended data go in Google's storage library (the one with chunks)?",
        "Where does appended data go, in the store from Google for its crawls?",
    ):
        assert fusion.asking(q, names, set()) == "where does appended data go", q
    # what follows the kind is asked, not more description; nor is a place that is no system
    q = "What happens to running jobs in Google's cluster manager if the controller goes down?"
    assert fusion.asking(q, names, set()) == (
        "what happens to running jobs in if the controller goes down"
    )
    q = "Why are chunks kept in 64 MB pieces in the file?"
    assert fusion.asking(q, names, set()) == "why are chunks kept in 64 mb pieces in the file"
    # the same description put first reads the same, and so does "according to" either end
    for first in (
        "In the cluster file system that Google built for crawls, where does appended data go?",
        "According to the paper on Google's cluster file system, where does appended data go?",
        "Where does appended data go, according to the paper on Google's cluster file system?",
        "Where does appended data go per the Google file system paper?",
    ):
        assert fusion.asking(first, names, set()) == "where does appended data go", first


def test_asking_drops_a_label_before_a_colon_or_a_dash(names):
    for q in (
        "In the cluster file system that Google built for crawls, where does appended data go?",
        "The cluster file system that Google built for crawls: where does appended data go?",
        "About Google's storage library (the one with chunks): where does appended data go?",
        "Google's cluster file system - where does appended data go?",
        "Google's cluster file system — where does appended data go?",
    ):
        assert fusion.asking(q, names, set()) == "where does appended data go", q
    # a question before the colon is asked, and so is a colon inside the question
    q = "How weak is the consensus FLP applies to: does one faulty process suffice?"
    assert fusion.asking(q, names, set()) == (
        "how weak is the consensus flp applies to does one faulty process suffice"
    )
    q = "Why are chunks 64 MB: is it for the master's memory?"
    assert fusion.asking(q, names, set()) == "why are chunks 64 mb is it for the master s memory"
    # a label needs a question after it
    q = "Appends: the record is written at least once"
    assert fusion.asking(q, names, set()) == "appends the record is written at least once"


def test_asking_drops_a_system_described_with_its_maker_after_it(names):
    for q in (
        "Where does the cluster file system from Google put appended data?",
        "Where does the cluster file system built at Google put appended data?",
        "Where does Google's cluster file system put appended data?",
        "Where does the Google cluster file system put appended data?",
        "Where does a Google-built cluster file system put appended data?",
    ):
        assert fusion.asking(q, names, set()) == "where does put appended data", q
    # before the kind, only a maker readers name: "the UDP protocol" is asked about
    q = "Why does the UDP protocol suit the Facebook cache service?"
    assert fusion.asking(q, names, set()) == "why does the udp protocol suit"
    # a name before the kind: what follows is asked ("the Raft election protocol")
    q = "How does the Raft election protocol work?"
    assert fusion.asking(q, names, set()) == "how does the election protocol work"
    # no maker: "at once", "by default", a determiner
    q = "Can the protocol by default run phase 1 for all instances of the algorithm at once?"
    assert fusion.asking(q, names, set()) == (
        "can the protocol by default run phase 1 for all instances of the algorithm at once"
    )
    q = "Where does the file system from which clients read put appended data?"
    assert fusion.asking(q, names, set()) == (
        "where does the file system from which clients read put appended data"
    )


def test_layout_knows_each_rows_paper_and_front_matter():
    owners = ["a", "a", "b", "a", "b", "a"]
    ids = ["a:00000:x", "a:00001:x", "b:00000:y", "a:00002:x", "b:00001:y", "a:00003:x"]
    layout = fusion.Layout.of(owners, ids)
    assert layout.papers == ("a", "b")
    assert layout.rows["a"].tolist() == [0, 1, 3, 5] and layout.rows["b"].tolist() == [2, 4]
    assert layout.front.tolist() == [True, True, True, True, True, False]  # ordinals < 3
    assert layout.per_paper_max(np.array([1.0, 5.0, 2.0, 3.0, 0.5, 9.0])).tolist() == [9.0, 2.0]
    only = np.array([0, 2])
    assert layout.per_paper_max(np.array([1.0, 2.0]), only).tolist() == [1.0, 2.0]


def test_a_paper_own_common_words_count_for_little_inside_it():
    # word 0 ("leader") is in every chunk of the paper, word 1 ("timeout") in one
    held = np.array([[1, 1, 1, 1], [0, 0, 1, 0]], dtype=bool)
    share = fusion.local_share(held)
    assert share[2] == pytest.approx(1.0)
    assert share[0] < 0.3 and share[0] == share[1] == share[3]


def test_minmax_softmax_and_top_minmax():
    assert fusion.minmax([2.0, 4.0, 3.0]).tolist() == [0.0, 1.0, 0.5]
    assert fusion.minmax([1.0, 1.0]).tolist() == [1.0, 1.0]
    p = fusion.softmax(np.array([0.0, np.log(3.0)]))
    assert p.tolist() == pytest.approx([0.25, 0.75])
    top = fusion.top_minmax(np.array([0.0, 5.0, 1.0, 3.0]), 2)
    assert top.tolist() == [0.0, 1.0, 0.0, 0.0]  # the top two scaled: 5 -> 1, 3 -> 0


def test_front_matter_and_related_work_are_told_apart():
    assert fusion.is_summary(None, 0) and fusion.is_summary("7 Conclusions", 40)
    assert fusion.is_summary("1 Introduction", 5) and not fusion.is_summary("4.2 Leases", 9)
    assert fusion.is_related("8 Related Work") and not fusion.is_related("3 Design")


def test_the_shipped_model_matches_the_features():
    model = fusion.model()
    assert len(model.paper) == len(fusion.PAPER_FEATURES)
    assert len(model.passage) == len(fusion.PASSAGE_FEATURES)
    assert 0 < model.described <= 1.01 and 0 < model.clause <= 1.01


def test_sentence_terms_is_the_best_single_sentence_share():
    text = "Leaders send heartbeats. A randomized election timeout avoids split votes."
    cut = text.index("A ")
    sentences = (Sentence(0, cut - 1, (1,)), Sentence(cut, len(text), (1,)))
    chunk = Chunk("p:00000:h", "p", 0, text, (1,), sentences=sentences)
    q = Question.make("randomized election timeout", np.zeros(3), lambda ts: [1.0] * len(ts))
    assert sentence_terms(q, chunk) == pytest.approx(1.0)
    q2 = Question.make("heartbeats election", np.zeros(3), lambda ts: [1.0] * len(ts))
    assert sentence_terms(q2, chunk) == pytest.approx(0.5)


def test_a_possessive_inside_a_name_still_names_the_paper():
    names = Names(p for p in load_catalog() if p.id == "gfs")
    (m,) = names.find("How many copies does Google's file system keep?")
    assert m.papers == {"gfs"}


def test_fusion_ranks_and_explains_on_a_real_index(indexed_home, embedder):
    s = Searcher(indexed_home, embedder=embedder, catalog=load_catalog())
    hits = s.search("which pickers arrive for the harvest results?", k=5)
    assert {f"f_{n}" for n in fusion.PASSAGE_FEATURES} <= set(hits[0].scores)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    ev = s.last_evidence
    assert ev is not None and abs(sum(ev.chance.values()) - 1) < 0.05
    assert max(ev.chance, key=ev.chance.get) == hits[0].paper.id
    fixed = Searcher(indexed_home, embedder=embedder, settings=SearchSettings(fusion=False))
    plain = fixed.search("which pickers arrive for the harvest results?", k=5)
    assert not any(k.startswith("f_") for k in plain[0].scores)
    for searcher in (s, fixed):
        searcher.store.close()


HERON = (
    "Heron: A Durable Message Queue",
    [
        [
            "Heron: A Durable Message Queue",
            "Abstract",
            "Heron is the durable message queue that the Acme photo sharing service built for its",
            "upload pipeline. Uploads from millions of phones wait in Heron until the resizing",
            "workers take them, and no upload is lost when a data center fails.",
            "1 Introduction",
            "The Acme photo sharing service receives uploads from millions of phones every day.",
            "Each upload must reach the resizing workers even when a whole data center fails.",
            "Phones retry slowly, so the queue must answer them within a few milliseconds.",
        ],
        [
            "2 Design",
            "Each message is written to three brokers before the phone hears that it is safe.",
            "Brokers form a chain, and the tail of the chain acknowledges the write.",
            "A broker that falls behind is removed from the chain by the coordinator.",
            "3 Partitions",
            "Messages are spread over partitions by the hash of the uploading account.",
            "A partition moves to another chain when its brokers run short of disk.",
        ],
        [
            "4 Retention",
            "How long should a message stay in the queue after a worker has read it?",
            "Heron keeps every message for seven days after it was read, then deletes it.",
            "The seven days let an operator replay a day of uploads after a bad deploy.",
            "5 Conclusions",
            "A chain of brokers keeps the photo uploads of Acme safe and quick.",
        ],
    ],
)


@pytest.fixture(scope="module")
def heron_home(tmp_path_factory, embedder):
    """The made-up papers of conftest and Heron, whose abstract describes the system."""
    from conftest import write_small_papers
    from pdfmaker import make_pdf

    from ddsearch.config import Settings
    from ddsearch.ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("heron")
    write_small_papers(root / "pdfs")
    make_pdf(root / "pdfs" / "heron.pdf", HERON[1], title=HERON[0])
    home = root / "home"
    report = ingest(Settings(home=home), load_catalog(), [root / "pdfs"], embedder=embedder)
    assert report.ok, report
    return home


def test_a_description_finds_the_section_that_answers_not_the_abstract(heron_home, embedder):
    s = Searcher(heron_home, embedder=embedder, catalog=load_catalog())
    q = "How long does the upload queue of Acme's photo sharing service keep a message once read?"
    hits = s.search(q, k=3)
    s.add_quotes(q, hits)
    assert hits[0].paper.id == "heron"
    assert "Retention" in (hits[0].chunk.section or "")
    # the answer, not the sentence that asks the question again
    assert "seven days after it was read" in hits[0].quote
    assert hits[0].quote_pages == (3,)
    # the same asked after a phrase that only describes the system
    q = "In the queue Acme built for its photo uploads, how long is a message kept once read?"
    hits = s.search(q, k=3)
    s.add_quotes(q, hits)
    assert hits[0].paper.id == "heron" and "Retention" in (hits[0].chunk.section or "")
    assert "seven days after it was read" in hits[0].quote
    s.store.close()
