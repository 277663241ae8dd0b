"""Cleaning page text: Unicode, hyphens, running headers and footers, page numbers, junk."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddsearch.ingest.chunk import heading
from ddsearch.ingest.clean import clean_pages, normalize
from ddsearch.models import Page

PROSE = [
    "The master grants a lease to one replica, which becomes the primary for the chunk.",
    "Clients cache chunk locations and talk to chunkservers directly for data.",
    "Each mutation is applied in the same order at every replica of the chunk.",
    "A heartbeat message carries instructions from the master to the chunkservers.",
    "Stale replicas are detected with chunk version numbers and garbage collected.",
    "The operation log is replicated on multiple remote machines before replying.",
    "Record append lets many clients append to the same file concurrently.",
    "Snapshots are made with copy-on-write so that they are almost instantaneous.",
]


def clean_one(text: str) -> str:
    return clean_pages([Page(1, text)], is_heading=heading)[0].text


# ---------------------------------------------------------------- Unicode


def test_nfkc_expands_ligatures():
    assert normalize("e\ufb03cient \ufb01le o\ufb00set \ufb02ow") == "efficient file offset flow"
    assert clean_one("An e\ufb03cient \ufb01le system for large data.") == (
        "An efficient file system for large data."
    )


def test_soft_hyphens_join_words():
    assert normalize("associ\ufffe\nated") == "associated"  # pdfium's mark at a line break
    assert normalize("con\u00adsensus and con\u00ad\nsensus") == "consensus and consensus"
    assert clean_one("Replicas reach con\ufffe\nsensus on every log entry.") == (
        "Replicas reach consensus on every log entry."
    )


def test_a_compound_broken_at_a_line_end_keeps_its_hyphen():
    """pdfium marks a compound's own hyphen at a line end as soft: "high\ufffepriority". The
    paper writing "high-priority" elsewhere, and never "highpriority", tells the word."""
    text = (
        "A high-priority task can obtain resources at the expense of a lower\ufffe\n"
        "priority one. Quota at high\ufffe\npriority costs more than lower-priority quota,\n"
        "and the associ\ufffe\nated bookkeeping is done by the master."
    )
    assert clean_one(text) == (
        "A high-priority task can obtain resources at the expense of a lower-priority one. "
        "Quota at high-priority costs more than lower-priority quota,\n"
        "and the associated bookkeeping is done by the master."
    )
    # a word the paper also writes whole is joined, whatever else it writes
    assert clean_one("A time\ufffe\nout fires. A timeout and a time-out are one thing.") == (
        "A timeout fires. A timeout and a time-out are one thing."
    )


def test_a_compound_broken_at_a_page_end_keeps_its_hyphen():
    pages = [
        Page(1, "Fine-grained priorities help.\nThey keep the work fine\ufffe"),
        Page(2, "grained and small for every task."),
    ]
    out = clean_pages(pages, is_heading=heading)
    assert out[0].text.endswith("They keep the work fine-grained")
    assert out[1].text == "and small for every task."


def test_control_characters_and_line_breaks():
    assert normalize("a\r\nb\rc\x00d\x07e\u00a0f\u2010g") == "a\nb\ncde f-g"


# ---------------------------------------------------------------- de-hyphenation


def test_dehyphenation_joins_words_the_document_knows():
    text = "The lease is associ-\nated with a chunk. Leases are associated with chunks."
    assert clean_one(text) == (
        "The lease is associated with a chunk. Leases are associated with chunks."
    )


def test_dehyphenation_keeps_real_compounds():
    text = "Dynamo is a key-\nvalue store. Every key-value pair is replicated."
    assert clean_one(text) == "Dynamo is a key-value store. Every key-value pair is replicated."


def test_hard_hyphen_is_kept_where_soft_hyphens_are_marked():
    # the document marks its soft hyphens, so an unknown hard hyphen is a real one
    text = "Con\ufffe\nsensus needs a fault-\ntolerant design in practice."
    assert clean_one(text) == "Consensus needs a fault-tolerant design in practice."


def test_unknown_hyphenation_is_joined_without_soft_hyphen_marks():
    assert clean_one("The system is well suited to repli-\ncation across data centres.") == (
        "The system is well suited to replication across data centres."
    )


def test_capitalised_next_line_is_not_joined():
    text = "The protocol of Chandy-\nLamport takes snapshots of global state."
    assert clean_one(text) == text  # the hyphen stays, and so does the line break


# ---------------------------------------------------------------- headers, footers, numbers


NAMES = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
]


def paged(n: int, header: str | None, footer, body_lines: int = 4) -> list[Page]:
    """n pages of distinct prose, each with the header and footer(page number) given."""
    pages = []
    for i in range(1, n + 1):
        body = [
            f"{PROSE[j % len(PROSE)]} Host {NAMES[i]} {NAMES[j]} agrees." for j in range(body_lines)
        ]
        lines = ([header] if header else []) + body + ([footer(i)] if footer else [])
        pages.append(Page(i, "\n".join(lines)))
    return pages


def test_running_header_and_footer_removed():
    header = "Proceedings of the 19th ACM Symposium on Operating Systems Principles"
    pages = paged(6, header, lambda i: "SOSP'03, October 19-22, 2003, Bolton Landing, New York")
    out = clean_pages(pages, is_heading=heading)
    assert len(out) == 6
    for page, cleaned in zip(pages, out):
        assert "Proceedings" not in cleaned.text and "Bolton Landing" not in cleaned.text
        assert cleaned.text.splitlines() == page.text.splitlines()[1:-1]  # the body, all of it


def test_header_with_changing_page_number_is_removed():
    pages = paged(5, None, lambda i: f"USENIX Association OSDI '06: 7th Symposium, page {200 + i}")
    out = clean_pages(pages, is_heading=heading)
    assert all("USENIX" not in p.text for p in out)
    assert [p.printed for p in out] == [str(200 + i) for i in range(1, 6)]


def test_a_line_on_too_few_pages_is_kept():
    pages = paged(8, None, None)
    pages[0] = Page(1, "Distributed Snapshots of Global State\n" + pages[0].text)
    pages[1] = Page(2, "Distributed Snapshots of Global State\n" + pages[1].text)
    out = clean_pages(pages, is_heading=heading)
    assert out[0].text.startswith("Distributed Snapshots of Global State\n")
    assert out[1].text.startswith("Distributed Snapshots of Global State\n")


def test_page_number_lines_removed_and_printed_set():
    pages = paged(5, None, lambda i: str(204 + i))
    out = clean_pages(pages, is_heading=heading)
    assert [p.printed for p in out] == ["205", "206", "207", "208", "209"]
    assert [p.number for p in out] == [1, 2, 3, 4, 5]
    for page, cleaned in zip(pages, out):
        assert cleaned.text.splitlines() == page.text.splitlines()[:-1]


def test_page_x_of_y_and_roman_numerals_removed():
    pages = paged(4, None, lambda i: f"Page {i} of 4")
    out = clean_pages(pages, is_heading=heading)
    assert all("of 4" not in p.text for p in out)
    assert [p.printed for p in out] == ["1", "2", "3", "4"]
    assert clean_one(PROSE[0] + "\n" + PROSE[1] + "\niv") == PROSE[0] + "\n" + PROSE[1]


def test_no_printed_number_without_evidence():
    out = clean_pages(paged(5, None, None), is_heading=heading)
    assert all(p.printed is None for p in out)
    # two pages are too few to tell an offset
    assert all(p.printed is None for p in clean_pages(paged(2, None, lambda i: str(i + 10))))


def test_bare_number_amid_prose_is_dropped():
    lines = PROSE[:3] + ["42"] + PROSE[3:6]
    # a bare number amid prose is a junk line either way; the prose around it survives
    assert clean_one("\n".join(lines)).splitlines() == PROSE[:6]


# ---------------------------------------------------------------- junk


def test_junk_lines_dropped_prose_kept():
    text = "\n".join(
        [
            PROSE[0],
            "/g4/g367/g3/g90",
            "(cid:12)(cid:7)",
            "0 10 20 30 40 50",
            "0.5 1.0 1.5 2.0",
            "---- ==== ----",
            PROSE[1],
            "Figure 3: Write control and data flow.",
            PROSE[2],
        ]
    )
    assert clean_one(text).splitlines() == [
        PROSE[0],
        PROSE[1],
        "Figure 3: Write control and data flow.",
        PROSE[2],
    ]


def test_runs_of_figure_labels_dropped_but_headings_kept():
    labels = ["Client", "Master", "Chunkserver", "Linux file system"]
    assert clean_one("\n".join(labels + [PROSE[0]])) == PROSE[0]
    headings = ["Abstract", "1 Introduction", "2 Design Overview"]
    assert clean_one("\n".join(headings + [PROSE[0]])).splitlines() == headings + [PROSE[0]]
    # two short lines are not a figure
    assert clean_one("\n".join(["Leases", "Locks", PROSE[0]])).splitlines() == [
        "Leases",
        "Locks",
        PROSE[0],
    ]


def test_whitespace_collapsed_and_blank_lines_dropped():
    assert clean_one("  The   master\t stores  metadata.  \n\n\n  Chunks are large.  ") == (
        "The master stores metadata.\nChunks are large."
    )


def test_pages_keep_their_numbers_and_order():
    pages = [Page(n, PROSE[n % len(PROSE)]) for n in (1, 2, 3)]
    out = clean_pages(pages)
    assert [(p.number, p.text) for p in out] == [(p.number, p.text) for p in pages]


# ---------------------------------------------------------------- properties

_TOKEN = re.compile(r"[^\W\d_]+", re.U)

LINE_PARTS = st.sampled_from(
    [
        "replica", "lease", "associ-", "ated", "associated", "key-", "value", "key-value",
        "Paxos", "the", "of", "a", "log.", "12", "3.5", "/g4/g367", "(cid:3)", "e\ufb03cient",
        "con\u00ad", "sensus", "con\ufffe", "-", ",", "Page", "of", "iv", "Figure", "1",
        "Introduction", "\u00a0", "\t", "ﬁle", "Ä", "x",
    ]
)  # fmt: skip
LINE = st.one_of(
    st.lists(LINE_PARTS, max_size=10).map(" ".join),
    st.lists(LINE_PARTS, max_size=6).map("".join),
    st.text(max_size=40),
)
PAGES = st.lists(st.lists(LINE, max_size=12).map("\n".join), min_size=1, max_size=6)


def _segmentable(word: str, vocab: set[str]) -> bool:
    """Whether word is a concatenation of vocabulary words (de-hyphenation joins them)."""
    ok = [True] + [False] * len(word)
    for end in range(1, len(word) + 1):
        ok[end] = any(ok[start] and word[start:end] in vocab for start in range(end))
    return ok[-1]


@settings(max_examples=300, deadline=None)
@given(PAGES)
def test_cleaning_moves_only_a_broken_words_tail_between_pages_and_invents_no_words(texts):
    pages = [Page(i + 1, t) for i, t in enumerate(texts)]
    out = clean_pages(pages, is_heading=heading)
    assert [p.number for p in out] == [p.number for p in pages]
    for i, (before, after) in enumerate(zip(pages, out)):
        vocab = set(_TOKEN.findall(normalize(before.text)))
        if i + 1 < len(pages):  # a word broken at the page break is rejoined on this page
            vocab |= set(_TOKEN.findall(normalize(pages[i + 1].text)))
        for word in _TOKEN.findall(after.text):
            assert _segmentable(word, vocab), (word, before.text, after.text)
        assert "\n\n" not in after.text and after.text == after.text.strip()
        assert unicodedata.is_normalized("NFKC", after.text)


def test_a_page_number_glued_into_a_broken_word_is_removed_and_the_word_rejoined():
    """pdfium gives raft's page 6 as '... index iden\ufffe6', page 7 as 'tifying its ...'."""
    body = "The leader appends the command to its log as a new entry and replicates it.\n"
    pages = [  # PDF pages 1-4, printed 4-7
        Page(
            n - 3, body * 3 + ("Each entry has an integer index iden\ufffe6" if n == 6 else f"{n}")
        )
        for n in range(4, 7)
    ] + [Page(4, "tifying its position in the log.\n" + body * 3 + "7")]
    out = clean_pages(pages, is_heading=heading)
    assert out[2].text.endswith("Each entry has an integer index identifying")
    assert out[3].text.startswith("its position in the log.")
    assert "6" not in out[2].text and "iden6" not in out[2].text
    assert [p.printed for p in out] == ["4", "5", "6", "7"]


def test_a_hyphen_at_a_page_break_is_resolved_like_one_at_a_line_break():
    words = "The system associated each key-value pair with a lease. " * 3
    pages = [Page(1, words + "\nit was associ-"), Page(2, "ated with a key-\nvalue store."),
             Page(3, "a short key-"), Page(4, "value ends it.")]  # fmt: skip
    out = clean_pages(pages)
    assert out[0].text.endswith("it was associated")
    assert out[1].text == "with a key-value store."
    assert out[2].text == "a short key-value" and out[3].text == "ends it."


@pytest.mark.parametrize(
    "count, span, printed",
    [
        (14, (251, 264), "251"),  # the PDF is the published paper: the proceedings' pages
        (13, (137, 150), None),  # the PDF prints 1-13, the range is 14 pages: PDF pages
        (6, (1, 12), "1"),  # the printed numbers fit the range
    ],
)
def test_printed_pages_agree_with_the_published_range(count, span, printed):
    body = "Replicas agree on a timestamp before the commit wait ends.\n" * 4
    pages = [Page(n, body + str(n)) for n in range(1, count + 1)]
    out = clean_pages(pages, span=span)
    assert out[0].printed == printed
    if printed:
        assert all(span[0] <= int(p.printed) <= span[1] for p in out)
