"""Sentence splitting: abbreviations, decimals, initials, section numbers, quotes, brackets."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsearch.sentences import split_sentences, split_spans


@pytest.mark.parametrize(
    "text, sentences",
    [
        # abbreviations
        ("Systems, i.e. Dynamo and Cassandra, gossip. They converge.",
         ["Systems, i.e. Dynamo and Cassandra, gossip.", "They converge."]),
        ("Compare Paxos vs. Raft here. Then decide.",
         ["Compare Paxos vs. Raft here.", "Then decide."]),
        ("See Sec. 4 and Eq. 2 for the bound. It is tight.",
         ["See Sec. 4 and Eq. 2 for the bound.", "It is tight."]),
        ("Leases, locks, etc. are granted by the master. Clients cache them.",
         ["Leases, locks, etc. are granted by the master.", "Clients cache them."]),
        ("Chang et al. built Bigtable. It stores rows.",
         ["Chang et al. built Bigtable.", "It stores rows."]),
        # decimals and versions
        ("Latency fell from 12.5 ms to 3.25 ms. Throughput rose.",
         ["Latency fell from 12.5 ms to 3.25 ms.", "Throughput rose."]),
        ("Version 2.0.1 fixed it. Upgrade soon.", ["Version 2.0.1 fixed it.", "Upgrade soon."]),
        # initials
        ("The protocol of J. Gray and A. B. Smith commits. It blocks.",
         ["The protocol of J. Gray and A. B. Smith commits.", "It blocks."]),
        # section numbers at the start
        ("4.6. Handling temporary failures is next. Hinted handoff helps.",
         ["4.6. Handling temporary failures is next.", "Hinted handoff helps."]),
        # quotes and brackets close the sentence with it
        ('The master said "the lease expired." Clients retried.',
         ['The master said "the lease expired."', "Clients retried."]),
        ("The log is replicated (see below.) Followers apply it.",
         ["The log is replicated (see below.)", "Followers apply it."]),
        ("Leaders are elected [as in Raft.] Terms increase.",
         ["Leaders are elected [as in Raft.]", "Terms increase."]),
        ("It is “linearizable.” Reads see writes.",
         ["It is “linearizable.”", "Reads see writes."]),
        # ordinary end marks
        ("Why a single master? It simplifies placement! Done.",
         ["Why a single master?", "It simplifies placement!", "Done."]),
        # an unknown abbreviation followed by a lower-case word does not end a sentence
        ("We use approx. the same budget. Next.", ["We use approx. the same budget.", "Next."]),
        ("Replicas (resp. clients) wait. Then they retry.",
         ["Replicas (resp. clients) wait.", "Then they retry."]),
        ("No end mark at all", ["No end mark at all"]),
        ("  Leading and trailing space.  ", ["Leading and trailing space."]),
        ("", []),
        ("   \n\t ", []),
    ],
)  # fmt: skip
def test_split(text, sentences):
    assert split_sentences(text) == sentences
    assert [text[s:e] for s, e in split_spans(text)] == sentences


def test_newlines_are_whitespace():
    assert split_sentences("First line ends here.\nSecond starts.") == [
        "First line ends here.",
        "Second starts.",
    ]


def check_spans(text: str) -> None:
    spans = split_spans(text)
    prev_end = 0
    for s, e in spans:
        assert prev_end <= s < e <= len(text)  # in order, non-empty, non-overlapping
        assert not text[s].isspace() and not text[e - 1].isspace()  # trimmed
        assert not text[prev_end:s].strip()  # nothing but whitespace between sentences
        prev_end = e
    assert not text[prev_end:].strip()
    covered = "".join(text[s:e] for s, e in spans)
    assert "".join(covered.split()) == "".join(text.split())  # all non-space text, once


SENTENCE_CHARS = st.sampled_from(list("abcXYZ019 .!?\"')](“”’\n\t,;:") + ["e.g.", "et al.", "3.5"])


@settings(max_examples=300, deadline=None)
@given(st.lists(SENTENCE_CHARS, max_size=80).map("".join))
def test_spans_cover_text_in_order(text):
    check_spans(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_spans_cover_arbitrary_text(text):
    check_spans(text)
