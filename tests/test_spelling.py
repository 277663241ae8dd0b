"""Typing slips read as the word one slip away (ddsearch.search.spelling), on plain word lists
standing for an index: how many passages hold a word, whether the model knows it, whether a
passage has it written so."""

from __future__ import annotations

from ddsearch.models import Respelling
from ddsearch.search.spelling import respell, slips

# word -> passages holding it (by stem, as the lexical index counts), and whether it is written
HELD = {"election": 40, "elections": 40, "leader": 90, "quorum": 12, "paxos": 30,
        "paxo": 30, "embed": 31, "embedeable": 31, "raft": 50, "stack": 9, "beacon": 2,
        "beacons": 2}  # fmt: skip
WRITTEN = {"election", "elections", "leader", "quorum", "paxos", "embed", "raft", "stack",
           "beacon", "beacons"}  # fmt: skip
KNOWN = {"election", "elections", "leader", "stick", "stack", "wiped", "neighbours"}


def held(words):
    return [HELD.get(w.lower(), 0) for w in words]


def known(words):
    return [w.lower() in KNOWN for w in words]


def read(text: str):
    return respell(text, held, known, WRITTEN.__contains__, frozenset({"which", "about"}))


def test_slips_are_the_four_kinds_of_one_letter_mistake():
    near = slips("paxso")
    assert {"paxos", "paxo", "paxsos", "pbxso"} <= near  # swapped, left out, added, changed
    assert "paxso" not in near and "pxaos" not in near  # itself; two slips away
    assert len(slips("ab")) == len({"b", "a", "ba"} | slips("ab"))


def test_a_slip_is_searched_as_the_written_word_one_slip_away():
    text, done = read("How does Raft handle leader elcetion?")
    assert text == "How does Raft handle leader election?"
    assert done == (Respelling("elcetion", "election"),)
    text, done = read("Qourum sizes in Paxso?")  # a capital kept; a word the model lacks
    assert text == "Quorum sizes in Paxos?"  # "paxo" holds the stem but is not written so
    assert done == (Respelling("Qourum", "quorum"), Respelling("Paxso", "paxos"))  # as typed
    assert read("PAXSO QUORUM")[0] == "PAXOS QUORUM"  # typed in capitals, kept so


def test_words_that_are_words_or_held_or_short_stay_as_typed():
    for text in (
        "Does the stick rule hold once wiped by neighbours?",  # words the model knows
        "How does the leader win an election?",  # held
        "Does Raft's raf or rfat work?",  # shorter than five letters
        "Which is it about?",  # stopwords
    ):
        assert read(text) == (text, ())


def test_nothing_written_one_slip_away_leaves_the_word():
    assert read("Is embeddable storage zyxwvut?") == ("Is embeddable storage zyxwvut?", ())


def test_a_word_the_model_knows_comes_before_a_more_held_one():
    HELD.update(shard=50, share=10)
    WRITTEN.update({"shard", "share"})
    KNOWN.add("share")
    try:
        assert read("one shart")[0] == "one share"  # "shard" is held 50 times, unknown
        KNOWN.discard("share")
        assert read("one shart")[0] == "one shard"  # neither known: the more held
    finally:
        for w in ("shard", "share"):
            HELD.pop(w)
            WRITTEN.discard(w)


def test_a_four_letter_word_is_read_only_as_a_name_swapped_and_typed_with_a_capital():
    names = {"raft": "Raft", "borg": "Borg", "swim": "SWIM", "cops": "COPS", "ocsp": "OCSP"}

    def with_names(text: str):
        return respell(text, held, known, WRITTEN.__contains__, frozenset(), names)

    text, done = with_names("Does Rfat or SIWM gossip, and does Brog?")
    assert text == "Does Raft or SWIM gossip, and does Borg?"  # the names as they are written
    assert done == (
        Respelling("Rfat", "Raft"),
        Respelling("SIWM", "SWIM"),
        Respelling("Brog", "Borg"),
    )
    for text in (
        "does rfat or daft work?",  # typed in lower case: a word, not a name
        "Does Raft's raf work?",  # three letters
        "Does Stck work?",  # one slip from "stack", but only names are read at four letters
        "Does Ocps work?",  # "cops" and "ocsp" both two letters swapped: which is meant?
        "Rant and Skim: Daft?",  # a changed letter: real words, however typed
    ):
        assert with_names(text) == (text, ()), text
    assert read("Does Rfat work?") == ("Does Rfat work?", ())  # no names given
