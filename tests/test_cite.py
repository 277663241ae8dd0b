"""Citation keys, citations, quote selection and the sentence splitting they rely on."""

from __future__ import annotations

import math
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsearch.models import Chunk, Hit, Paper, Sentence
from ddsearch.search.cite import (
    Citation,
    ascii_fold,
    author_string,
    citation_keys,
    format_citation,
    make_citation,
    split_name,
)
from ddsearch.search.quote import Question, Quote, pick, sentence_scores, trim
from ddsearch.sentences import split_sentences, split_spans

DYNAMO = Paper(
    id="dynamo",
    title="Dynamo: Amazon's Highly Available Key-value Store",
    authors=("Giuseppe DeCandia", "Deniz Hastorun", "Madan Jampani", "Werner Vogels"),
    year=2007,
    venue="SOSP",
    url="https://www.allthingsdistributed.com/files/amazon-dynamo-sosp2007.pdf",
    doi="10.1145/1294261.1294281",
)
CAP = Paper(
    id="cap",
    title="Brewer's Conjecture and the Feasibility of Consistent, Available, "
    "Partition-Tolerant Web Services",
    authors=("Seth Gilbert", "Nancy Lynch"),
    year=2002,
    venue="ACM SIGACT News",
    kind="article",
)
CLOCKS = Paper(
    id="lamport-clocks",
    title="Time, Clocks, and the Ordering of Events in a Distributed System",
    authors=("Leslie Lamport",),
    year=1978,
    venue="Communications of the ACM",
    kind="article",
)


def hit(paper: Paper, pages=(5,), printed=(), text="Some passage text here.", rank=1) -> Hit:
    chunk = Chunk(f"{paper.id}-0", paper.id, 0, text, tuple(pages), None, tuple(printed))
    return Hit(rank=rank, chunk=chunk, paper=paper, score=0.5)


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "paper, key",
    [
        (DYNAMO, "decandia2007dynamo"),
        (CAP, "gilbert2002brewer"),
        (CLOCKS, "lamport1978time"),
        (Paper("p", "The Part-Time Parliament", ("Leslie Lamport",), 1998), "lamport1998part"),
        (
            Paper("raft", "In Search of an Understandable Consensus Algorithm",
                  ("Diego Ongaro", "John Ousterhout"), 2014),
            "ongaro2014search",
        ),
        (
            Paper("t", "Towards Robust Distributed Systems", ("Eric Brewer",), 2000),
            "brewer2000robust",
        ),
        (
            Paper("h", "How to Build a Highly Available System Using Consensus",
                  ("Butler Lampson",), 1996),
            "lampson1996build",
        ),
        (
            Paper("m", "MapReduce: Simplified Data Processing on Large Clusters",
                  ("Jeffrey Dean", "Sanjay Ghemawat"), 2004),
            "dean2004mapreduce",
        ),
    ],
)  # fmt: skip
def test_key_convention_and_stopwords(paper, key):
    assert citation_keys([paper]) == {paper.id: key}


def test_key_folds_to_ascii():
    papers = [
        Paper("a", "Über Konsens", ("Kurt Gödel",), 1931),
        Paper("b", "Études on Łódź", ("Paweł Łukasz Wójcik",), 2001),
        Paper("c", "Straße", ("Hans Großmann",), 1999),
        Paper("d", "Chain Replication for Supporting High Throughput and Availability",
              ("Robbert van Renesse", "Fred B. Schneider"), 2004),
    ]  # fmt: skip
    assert citation_keys(papers) == {
        "a": "godel1931uber",
        "b": "wojcik2001etudes",
        "c": "grossmann1999strasse",
        "d": "vanrenesse2004chain",
    }
    assert ascii_fold("Gödel, Erdős, Søren, Łukasz") == "Godel, Erdos, Soren, Lukasz"


def test_key_without_authors_or_year():
    assert citation_keys([Paper("x", "The Google File System")]) == {"x": "anongoogle"}
    assert citation_keys([Paper("y", "Of the and", ("A B",), 2000)]) == {"y": "b2000of"}


def test_collisions_are_disambiguated_in_id_order():
    p1 = Paper("zz-later", "Paxos Made Simple", ("Leslie Lamport",), 2001)
    p2 = Paper("aa-first", "Paxos Made Live", ("Leslie Lamport",), 2001)
    p3 = Paper("mm", "Paxos Made Moderately Complex", ("Leslie Lamport",), 2001)
    other = Paper("o", "Generalized Consensus", ("Leslie Lamport",), 2005)
    keys = citation_keys([p1, p3, other, p2])
    assert keys == {
        "aa-first": "lamport2001paxosa",
        "mm": "lamport2001paxosb",
        "zz-later": "lamport2001paxosc",
        "o": "lamport2005generalized",
    }
    assert citation_keys([p2, p3, other, p1]) == keys  # order of input does not matter


def test_suffixed_key_never_collides_with_another_base_key():
    a = Paper("1", "Paxos", ("L Lamport",), 2001)
    b = Paper("2", "Paxos", ("L Lamport",), 2001)
    c = Paper("3", "Paxosa", ("L Lamport",), 2001)  # its base key is lamport2001paxosa
    keys = citation_keys([a, b, c])
    assert len(set(keys.values())) == 3
    assert keys["3"] == "lamport2001paxosa"


_names = st.text(alphabet=st.characters(codec="utf-8", categories=["L", "Zs"]), max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=30),
            st.lists(_names, max_size=3),
            st.one_of(st.none(), st.integers(1900, 2030)),
        ),
        max_size=30,
    )
)
def test_keys_are_unique_and_plain(entries):
    papers = [Paper(f"p{i}", t, tuple(a), y) for i, (t, a, y) in enumerate(entries)]
    keys = citation_keys(papers)
    assert set(keys) == {p.id for p in papers}
    assert len(set(keys.values())) == len(papers)
    assert all(re.fullmatch(r"[a-z0-9]+", k) for k in keys.values())


# ---------------------------------------------------------------- names and citations


@pytest.mark.parametrize(
    "full, parts",
    [
        ("Giuseppe DeCandia", ("Giuseppe", "DeCandia")),
        ("Leslie Lamport", ("Leslie", "Lamport")),
        ("Robbert van Renesse", ("Robbert", "van Renesse")),
        ("Fred B. Schneider", ("Fred B.", "Schneider")),
        ("Jean-Philippe de la Fontaine", ("Jean-Philippe", "de la Fontaine")),
        ("Lamport, Leslie", ("Leslie", "Lamport")),
        ("Plato", ("", "Plato")),
        ("Guy L. Steele Jr.", ("Guy L.", "Steele Jr.")),
        ("  Nancy   Lynch ", ("Nancy", "Lynch")),
        ("", ("", "")),
    ],
)
def test_split_name(full, parts):
    assert split_name(full) == parts


def test_author_strings():
    assert author_string(["Leslie Lamport"]) == "Lamport"
    assert author_string(["Seth Gilbert", "Nancy Lynch"]) == "Gilbert and Lynch"
    assert author_string(DYNAMO.authors) == "DeCandia et al."
    assert author_string(["Robbert van Renesse", "Fred B. Schneider"]) == (
        "van Renesse and Schneider"
    )
    assert author_string([]) == ""


def test_printed_pages_are_preferred():
    c = make_citation(hit(DYNAMO, pages=(5,), printed=("209",)), "decandia2007dynamo")
    assert isinstance(c, Citation)
    assert (c.pages, c.locator, c.printed, c.pdf_page) == ("p. 209", "209", True, 5)
    c = make_citation(hit(DYNAMO, pages=(5, 6), printed=("210", "209")), "k")
    assert (c.pages, c.locator, c.pdf_page) == ("pp. 209–210", "209–210", 5)


def test_pdf_pages_are_said_as_such():
    c = make_citation(hit(DYNAMO, pages=(5,)), "k")
    assert (c.pages, c.locator, c.printed) == ("PDF p. 5", "5", False)
    c = make_citation(hit(DYNAMO, pages=(6, 5)), "k")
    assert (c.pages, c.pdf_page) == ("PDF pp. 5–6", 5)
    c = make_citation(hit(DYNAMO, pages=()), "k")
    assert (c.pages, c.locator, c.pdf_page) == (None, None, None)


def test_pages_with_a_gap_are_never_bridged():
    # a slide deck's quote on pages 1, 3 and 4: "1–4" would claim page 2 as well
    c = make_citation(hit(DYNAMO, pages=(4, 1, 3)), "k")
    assert (c.pages, c.locator, c.pdf_page) == ("PDF pp. 1, 3–4", "1, 3–4", 1)
    c = make_citation(hit(DYNAMO, pages=(1, 3, 4), printed=("209", "211", "212")), "k")
    assert (c.pages, c.locator) == ("pp. 209, 211–212", "209, 211–212")
    c = make_citation(hit(DYNAMO, pages=(1, 2), printed=("iv", "v")), "k")
    assert c.pages == "pp. iv–v"


def test_deep_links(tmp_path: Path):
    c = make_citation(hit(DYNAMO, pages=(5,)), "k")
    assert c.link == DYNAMO.url + "#page=5"
    with_fragment = Paper("f", "T", url="https://example.org/x.pdf#view=Fit")
    assert make_citation(hit(with_fragment, pages=(3,)), "k").link == (
        "https://example.org/x.pdf#page=3"
    )
    pdf = tmp_path / "my papers" / "chain.pdf"
    local = Paper("local", "Chain Replication", path=str(pdf))
    link = make_citation(hit(local, pages=(2,)), "k").link
    assert link == pdf.resolve().as_uri() + "#page=2"
    assert link.startswith("file:///") and "%20" in link
    assert make_citation(hit(Paper("n", "Nowhere"), pages=(2,)), "k").link is None


def test_format_citation():
    c = make_citation(hit(DYNAMO, pages=(5,)), "decandia2007dynamo")
    assert format_citation(c) == (
        "DeCandia et al. (2007). Dynamo: Amazon's Highly Available Key-value Store. SOSP. "
        "PDF p. 5. " + DYNAMO.url + "#page=5"
    )
    c = make_citation(hit(CAP, pages=(2,), printed=("52",)), "gilbert2002brewer")
    assert format_citation(c).startswith("Gilbert and Lynch (2002). Brewer's Conjecture")
    assert format_citation(c).endswith("ACM SIGACT News. p. 52.")
    bare = make_citation(hit(Paper("b", "Untitled Notes."), pages=()), "k")
    assert format_citation(bare) == "Anonymous (n.d.). Untitled Notes."


# ---------------------------------------------------------------- sentences


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("DeCandia et al. describe Dynamo. It is a store.",
         ["DeCandia et al. describe Dynamo.", "It is a store."]),
        ("Lamport et al. [12] proposed Paxos. Next one.",
         ["Lamport et al. [12] proposed Paxos.", "Next one."]),
        ("Systems, e.g. Dynamo, use hashing. Next one.",
         ["Systems, e.g. Dynamo, use hashing.", "Next one."]),
        ("As Fig. 3 shows, latency is low. Next one.",
         ["As Fig. 3 shows, latency is low.", "Next one."]),
        ("We use vector clocks (Fig. 3). Next one.",
         ["We use vector clocks (Fig. 3).", "Next one."]),
        ("The ratio is 3.5 times higher. Next one.",
         ["The ratio is 3.5 times higher.", "Next one."]),
        ("See Section 4.6 for details. Next one.",
         ["See Section 4.6 for details.", "Next one."]),
        ("This is covered in Section 4.6. The next part.",
         ["This is covered in Section 4.6.", "The next part."]),
    ],
)  # fmt: skip
def test_sentence_splitting(text, sentences):
    assert split_sentences(text) == sentences
    assert [text[s:e] for s, e in split_spans(text)] == sentences


# ---------------------------------------------------------------- quotes

DIM = 512


def bag_of_words(texts: list[str]) -> np.ndarray:
    """Deterministic stand-in for the embedding model: hashed, L2-normalised word counts."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            out[row, zlib.crc32(word.encode()) % DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return out / norms


def passage(text: str, pages=None, captions=()) -> Chunk:
    """A chunk of text whose sentences stand on ``pages`` (one per sentence; default 1)."""
    spans = split_spans(text)
    pages = pages or [1] * len(spans)
    sentences = tuple(
        Sentence(s, e, (p,) if isinstance(p, int) else tuple(p), (), i in captions)
        for i, ((s, e), p) in enumerate(zip(spans, pages))
    )
    return Chunk("x:00000:0", "x", 0, text, tuple(sorted({p for s in sentences for p in s.pages})),
                 sentences=sentences)  # fmt: skip


def quote_for(query: str, chunk: Chunk, n: int = 3) -> Quote | None:
    question = Question.make(query, bag_of_words([query])[0], lambda terms: [1.0] * len(terms))
    vectors = bag_of_words([chunk.text[s.start : s.end] for s in chunk.sentences])
    return pick(chunk, sentence_scores(question, chunk, vectors, 0.5), n, question=question)


PASSAGE = (
    "Dynamo targets applications that need an always writeable data store. "
    "To achieve this level of availability, Dynamo sacrifices consistency under certain "
    "failure scenarios. "
    "Vector clocks capture causality between different versions of the same object. "
    "Data is partitioned and replicated using consistent hashing over a ring of nodes, "
    "and each node owns a range of the ring."
)


def test_the_quote_is_the_answering_sentence_with_offsets_and_its_page():
    chunk = passage(PASSAGE, pages=[3, 3, 3, 4])
    q = quote_for("consistent hashing ring partitioned replicated", chunk, 1)
    assert q.text.startswith("Data is partitioned") and q.text.endswith("range of the ring.")
    assert PASSAGE[q.start : q.end] == q.text
    assert q.pages == (4,)  # the citation names the quote's page, not the passage's 3-4


def test_a_quote_with_a_number_answers_a_how_long_question():
    text = (
        "Each dead node is eventually suspected by the failure detector of its peers. "
        "Gossip spreads the news to the rest of the cluster quickly. "
        "A dead node is suspected by the failure detector within 15 seconds."
    )
    q = quote_for("how long until the failure detector suspects a dead node?", passage(text), 1)
    assert "15 seconds" in q.text


def test_a_neighbour_joins_when_it_adds_more_chance_than_the_join_probability():
    chunk = passage(
        "One two three four five. Six seven eight nine ten. Eleven twelve thirteen end."
    )
    both = "Six seven eight nine ten. Eleven twelve thirteen end."
    assert pick(chunk, [-5.0, 5.0, 4.9], join=0.5).text == both
    assert pick(chunk, [-5.0, 5.0, 4.9], join=0.999).text == "Six seven eight nine ten."
    assert pick(chunk, [5.0, 4.9, 4.8], max_sentences=1, join=0).text == "One two three four five."
    # the run with the most chance wins, even when the single best sentence is not in it
    four = passage(chunk.text + " Fourteen fifteen sixteen seventeen.")
    assert pick(four, [2.0, 2.0, -9.0, 2.1], max_sentences=2, join=0).text.startswith("One")
    long = passage(" ".join(["Word " + "word " * 44 + "end."] * 3))
    assert len(pick(long, [1.0, 1.0, 1.0], join=0).text.split()) <= 80


def test_an_over_long_sentence_is_cut_to_the_clauses_that_hold_the_question():
    # a table the text ran into makes one "sentence" of 120 words: quoted whole it would be a
    # passage, not the sentence that answers
    table = "Timestamp Concurrency Operation Replica Required " * 20
    text = (
        "The daemon polls the time masters every 30 seconds, and it assumes a drift rate of "
        f"200 microseconds per second, which together account {table}for the sawtooth bounds."
    )
    quote = quote_for("How often does the daemon poll the time masters, at what drift?",
                      passage(text))  # fmt: skip
    assert quote.text == text[quote.start : quote.end]
    assert quote.text == (
        "The daemon polls the time masters every 30 seconds, and it assumes a drift rate of "
        "200 microseconds per second"
    )
    quote = quote_for("How often does the daemon poll the time masters?", passage(text))
    assert quote.text == "The daemon polls the time masters every 30 seconds"
    # from the sentence's start where that reaches the question's words, else from a clause
    text = f"{'Word ' * 60}and more, while the lease timeout is 60 seconds; then {'word ' * 60}end."
    quote = quote_for("What is the lease timeout?", passage(text))
    assert quote.text == f"{'Word ' * 60}and more, while the lease timeout is 60 seconds"
    text = text.replace("Word " * 60, "Word " * 90)
    quote = quote_for("What is the lease timeout?", passage(text))
    assert quote.text == "while the lease timeout is 60 seconds"
    # nowhere to cut but between words: the first 80 words
    text = "Word " * 150 + "end."
    assert pick(passage(text), [1.0], join=0).text == ("Word " * 80).strip()
    # none of the question's words in it: the start, as much as fits, not its first clause
    text = "The coordinator, once every follower has voted, " + "word " * 100 + "end."
    quote = quote_for("Who decides to commit?", passage(text))
    assert quote.text.startswith("The coordinator, once") and len(quote.text.split()) == 80
    # a clause ended by a mark standing alone: neither the mark nor the space before it
    text = "alpha beta gamma delta ; " * 40 + "end."
    assert quote_for("alpha delta?", passage(text)).text == "alpha beta gamma delta"
    # parts that hold the same words in another order tie exactly: the earliest is quoted
    weights = {"alpha": 0.1, "betas": 0.2, "gamma": 0.3, "delta": 0.7}
    question = Question.make("alpha betas gamma delta", bag_of_words(["x"])[0],
                             lambda terms: [weights.get(t, 1.0) for t in terms])  # fmt: skip
    text = "alpha betas gamma delta, delta gamma betas alpha, " + "filler " * 100 + "end."
    cut = trim(text, 0, len(text), 80, question=question)
    assert text[cut[0] : cut[1]] == "alpha betas gamma delta"


def test_the_quote_score_is_the_log_odds_that_one_of_its_sentences_answers():
    chunk = passage("One two three four five. Six seven eight nine ten.")
    assert pick(chunk, [2.0, -40.0], max_sentences=1, join=0).score == pytest.approx(2.0)
    both = pick(chunk, [0.0, 0.0], join=0)  # two even chances: 3 in 4 that one answers
    assert both.score == pytest.approx(math.log(3))


def test_captions_and_fragments_are_never_quoted_and_never_crossed():
    text = (
        "Figure 2: The ring. Nodes are placed on a ring by a hash. Fig. 3. "
        "Keys go clockwise from their hash to a node."
    )
    chunk = passage(text, captions={0})
    q = pick(chunk, [9.0, 1.0, 8.0, 0.9], join=0)
    assert q.text == "Nodes are placed on a ring by a hash."  # the fragment between is not crossed
    assert pick(passage("Figure 1: Only a caption here.", captions={0}), [1.0]) is None


def test_a_sentence_across_a_page_break_cites_both_pages():
    chunk = passage("A short one here. This sentence starts on one page and ends on the next.",
                    pages=[5, (5, 6)])  # fmt: skip
    assert pick(chunk, [0.0, 3.0], 1).pages == (5, 6)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="abc xyz.,!?\n", max_size=300),
    st.text(alphabet="abc xyz", max_size=20),
    st.integers(1, 4),
)
def test_quote_offsets_always_point_into_the_passage(text, query, n):
    chunk = passage(text)
    q = quote_for(query, chunk, n)
    if q is None:
        assert not chunk.sentences
        return
    assert text[q.start : q.end] == q.text
    starts, ends = [s.start for s in chunk.sentences], [s.end for s in chunk.sentences]
    assert q.start in starts and q.end in ends
    assert ends.index(q.end) - starts.index(q.start) < n
