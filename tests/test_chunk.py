"""Headings and chunking: budgets, pages, sections, reference lists, ids, no text lost."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddsearch.ingest.chunk import chunk_id, chunk_pages, heading
from ddsearch.models import Page

# ---------------------------------------------------------------- headings


@pytest.mark.parametrize(
    "line, expected",
    [
        ("4.6 Handling Temporary Failures", "4.6 Handling Temporary Failures"),
        ("2. DESIGN OVERVIEW", "2 DESIGN OVERVIEW"),
        ("Abstract", "Abstract"),
        ("References", "References"),
        ("REFERENCES", "REFERENCES"),
        ("1 Introduction", "1 Introduction"),
        ("3.1 Leases and Mutation Order", "3.1 Leases and Mutation Order"),
        ("5.2 Consistency model", "5.2 Consistency model"),
        ("II. SYSTEM MODEL", "II SYSTEM MODEL"),
        ("B.1 Proofs of Safety", "B.1 Proofs of Safety"),
        ("Acknowledgments", "Acknowledgments"),
        ("Related Work", "Related Work"),
        ("Conclusions.", "Conclusions"),
        ("Appendix A", "Appendix A"),
        ("  6 Evaluation  ", "6 Evaluation"),
    ],
)
def test_headings(line, expected):
    assert heading(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "3. The client pushes the data to all the replicas.",
        "A replica can then apply the update to its own log in order.",
        "A replica fails.",
        "1. Each server stores the log on its local disk.",
        "In this paper we present Raft, a consensus algorithm.",
        "2 We then show that the protocol is safe under all failures.",
        "Figure 3: Write control and data flow.",
        "Table 2. Results",  # a caption is not a section
        "10 20 30 40",
        "4.2 Results from 12 machines",  # numbers in the title: a table row, not a heading
        "3 Replicas,",
        "D. Weaver, and R. Yerneni. Pnuts: Yahoo!’s hosted",  # a reference's authors
        "G. P., AND WILSON, W. G. DB2 parallel edition. IBM",
        "A. Fekete. MDCC: Multi-data center consistency. In",
        "ab",
        "1 " + "Very " * 20 + "Long",
        "",
    ],
)
def test_not_headings(line):
    assert heading(line) is None


def test_short_numbered_steps_are_not_headings():
    assert heading("3. The client retries.") is None


# ---------------------------------------------------------------- a synthetic paper

WORDS = [
    "replica",
    "lease",
    "master",
    "chunk",
    "quorum",
    "ballot",
    "leader",
    "follower",
    "snapshot",
    "client",
    "server",
    "log",
    "entry",
    "term",
    "vote",
    "heartbeat",
    "timeout",
    "partition",
    "gossip",
    "membership",
    "version",
    "clock",
    "write",
    "read",
]


@dataclass
class Doc:
    pages: list[Page]
    sentences: list[str]  # every body sentence, in order
    sentence_pages: dict[str, set[int]]
    sentence_section: dict[str, str]
    references: list[str]


def sentence(n: int) -> str:
    words = [WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(4 + n % 9)]
    return f"Claim {n} says the {' '.join(words)} holds."


def make_doc(sections: list[tuple[str, int]], lines_per_page=9, width=70, refs=True) -> Doc:
    """Sections of numbered sentences, wrapped into lines, laid out across pages."""
    laid: list[tuple[str, str | None, str | None]] = []  # (line, sentence on it, section)
    sentences, sentence_section = [], {}
    n = 0
    for title, count in sections:
        laid.append((title, None, None))
        texts = [sentence(n + i) for i in range(count)]
        n += count
        sentences += texts
        sentence_section.update({t: heading(title) for t in texts})
        lines = textwrap.wrap(" ".join(texts), width, break_on_hyphens=False)
        assert " ".join(lines) == " ".join(texts)
        laid += [(ln, None, None) for ln in lines]
    references = []
    if refs:
        references = [
            "[1] J. Dean and S. Ghemawat. MapReduce: simplified data processing. OSDI, 2004.",
            "[2] L. Lamport. The part-time parliament. ACM TOCS, 16(2):133-169, 1998.",
        ]
        laid += [("References", None, None)] + [(r, None, None) for r in references]
        # an appendix after the references is body text again
        sentences_app = [sentence(n + i) for i in range(3)]
        sentences += sentences_app
        sentence_section.update({t: "Appendix A" for t in sentences_app})
        laid += [("Appendix A", None, None), (" ".join(sentences_app), None, None)]

    pages: list[Page] = []
    line_pages: list[int] = []
    for start in range(0, len(laid), lines_per_page):
        number = len(pages) + 1
        chunk = laid[start : start + lines_per_page]
        pages.append(Page(number, "\n".join(ln for ln, _, _ in chunk), printed=str(300 + number)))
        line_pages += [number] * len(chunk)

    # where each sentence lies: find it in the stream of body lines of its page range
    stream, owners = "", []
    for (ln, _, _), page in zip(laid, line_pages):
        if heading(ln):
            stream += "\n"
            owners.append(page)
            continue
        for _ in ln + " ":
            owners.append(page)
        stream += ln + " "
    sentence_pages = {}
    for text in sentences:
        at = stream.index(text)
        sentence_pages[text] = set(owners[at : at + len(text)])
    return Doc(pages, sentences, sentence_pages, sentence_section, references)


SECTIONS = [
    ("Abstract", 3),
    ("1 Introduction", 14),
    ("2 Design Overview", 25),
    ("2.1 Leases and Mutation Order", 9),
    ("3 Evaluation", 18),
]
BUDGET, OVERLAP = 64, 16


@pytest.fixture(scope="module")
def doc() -> Doc:
    return make_doc(SECTIONS)


@pytest.fixture(scope="module")
def chunks(doc, embedder):
    return chunk_pages("gfs", doc.pages, embedder.count_tokens, BUDGET, OVERLAP)


def contained(doc: Doc, chunk) -> list[str]:
    return [s for s in doc.sentences if s in chunk.text]


def test_the_document_spans_pages(doc):
    assert len(doc.pages) >= 6
    assert any(len(p) > 1 for p in doc.sentence_pages.values())  # some sentences span a break


def test_every_chunk_fits_the_budget(chunks, embedder):
    assert len(chunks) > 5
    assert max(embedder.count_tokens([c.text for c in chunks])) <= BUDGET


def test_no_sentence_is_lost(doc, chunks):
    text = "\n".join(c.text for c in chunks)
    missing = [s for s in doc.sentences if s not in text]
    assert not missing


def test_chunks_hold_whole_sentences_in_order(doc, chunks):
    for c in chunks:
        inside = contained(doc, c)
        assert inside, c.text
        assert c.text == " ".join(inside)  # nothing else, nothing cut
        idx = [doc.sentences.index(s) for s in inside]
        assert idx == list(range(idx[0], idx[-1] + 1))


def test_pages_are_those_of_the_sentences(doc, chunks):
    spanning = 0
    for c in chunks:
        expected = sorted(set().union(*(doc.sentence_pages[s] for s in contained(doc, c))))
        assert list(c.pages) == expected, c.text
        assert c.printed_pages == tuple(str(300 + p) for p in expected)
        spanning += len(c.pages) > 1
    assert spanning  # the page break case is exercised


def test_sections_are_carried(doc, chunks):
    for c in chunks:
        sections = {doc.sentence_section[s] for s in contained(doc, c)}
        if len(sections) == 1:
            assert c.section == sections.pop()
        else:  # a short section folds into the next: the chunk is named for the latest one
            assert c.section == doc.sentence_section[contained(doc, c)[-1]]
    assert {c.section for c in chunks} >= {"1 Introduction", "2 Design Overview", "3 Evaluation"}
    # headings are not passage text
    assert not any("Design Overview" in c.text for c in chunks)


def test_chunks_do_not_straddle_long_sections(doc, chunks):
    for c in chunks:
        sections = {doc.sentence_section[s] for s in contained(doc, c)}
        assert len(sections) == 1 or "Abstract" in sections, (sections, c.text)


def test_neighbours_overlap_within_a_section(doc, chunks, embedder):
    shared = 0
    for a, b in zip(chunks, chunks[1:]):
        common = set(contained(doc, a)) & set(contained(doc, b))
        if common:
            shared += 1
            assert sum(embedder.count_tokens(sorted(common))) <= OVERLAP
            assert a.section == b.section
    assert shared > 0


def test_reference_list_is_left_out(doc, chunks):
    text = " ".join(c.text for c in chunks)
    assert "MapReduce: simplified" not in text and "part-time parliament" not in text
    assert any(c.section == "Appendix A" for c in chunks)


def test_ordinals_and_ids(chunks):
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(c.paper_id == "gfs" for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)
    for c in chunks:
        assert c.id == chunk_id("gfs", c.ordinal, c.text)
        assert re.fullmatch(r"gfs:\d{5}:[0-9a-f]{16}", c.id)


def test_ids_are_deterministic_and_follow_the_text(doc, chunks, embedder):
    again = chunk_pages("gfs", doc.pages, embedder.count_tokens, BUDGET, OVERLAP)
    assert [c.id for c in again] == [c.id for c in chunks]
    assert again == chunks

    edited = list(doc.pages)
    target = next(i for i, p in enumerate(edited) if "Claim 40 says" in p.text)
    edited[target] = Page(
        edited[target].number,
        edited[target].text.replace("Claim 40 says", "Claim 40 states"),
        edited[target].printed,
    )
    changed = chunk_pages("gfs", edited, embedder.count_tokens, BUDGET, OVERLAP)
    old_ids, new_ids = {c.id for c in chunks}, {c.id for c in changed}
    for c in changed:
        if "Claim 40 states" in c.text:
            assert c.id not in old_ids
    assert old_ids != new_ids
    # the chunks before the edit are untouched
    first = next(i for i, c in enumerate(changed) if "Claim 40 states" in c.text)
    assert [c.id for c in changed[:first]] == [c.id for c in chunks[:first]]

    other = chunk_pages("raft", doc.pages, embedder.count_tokens, BUDGET, OVERLAP)
    assert not ({c.id for c in other} & old_ids)


def test_budget_is_respected_for_a_long_sentence(embedder):
    words = " ".join(WORDS * 12)  # one sentence of about 300 word pieces
    pages = [Page(1, f"Intro sentence here. {words} end. Final sentence here.")]
    chunks = chunk_pages("p", pages, embedder.count_tokens, 50, 10)
    assert max(embedder.count_tokens([c.text for c in chunks])) <= 50
    joined = " ".join(c.text for c in chunks).split()
    for w in words.split():
        assert w in joined


def test_budget_is_respected_for_a_long_unbroken_word(embedder):
    url = "https://example.org/" + "a1b2c3d4e5/" * 40  # one word of ~370 word pieces
    pages = [Page(1, f"The data is at {url} for now. Another sentence follows here.")]
    chunks = chunk_pages("p", pages, embedder.count_tokens, 64, 16)
    assert max(embedder.count_tokens([c.text for c in chunks])) <= 64
    assert "".join("".join(c.text.split()) for c in chunks).count("a1b2c3d4e5") >= 40


def test_empty_and_reference_only_documents(embedder):
    assert chunk_pages("p", [], embedder.count_tokens, 64, 16) == []
    assert chunk_pages("p", [Page(1, "")], embedder.count_tokens, 64, 16) == []
    refs = [Page(1, "References\n[1] A. Author. A title. 2001.")]
    assert chunk_pages("p", refs, embedder.count_tokens, 64, 16) == []


# ---------------------------------------------------------------- property

TEXT = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCDE .,;:!?()-'\"\n\t  ")),
    max_size=400,
)


def _body_chars(pages: list[Page]) -> list[tuple[str, int]]:
    """(character, page) of every non-space character a chunk must keep, in order."""
    out, in_refs = [], False
    for page in pages:
        for line in page.text.split("\n"):
            if heading(line):
                in_refs = bool(
                    re.match(
                        r"^(?:[\dA-Z.]+\s+)?(?:references|bibliography)\.?$", line.strip(), re.I
                    )
                )
                continue
            if not in_refs:
                out += [(ch, page.number) for ch in line if not ch.isspace()]
    return out


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    texts=st.lists(TEXT, min_size=1, max_size=4),
    budget=st.integers(8, 80),
    overlap=st.integers(0, 20),
)
def test_chunking_keeps_text_pages_and_budget(embedder, texts, budget, overlap):
    pages = [Page(i + 1, t) for i, t in enumerate(texts)]
    chunks = chunk_pages("p", pages, embedder.count_tokens, budget, overlap)
    expected = _body_chars(pages)
    if not expected:
        assert chunks == []
        return
    counts = embedder.count_tokens([c.text for c in chunks])
    assert max(counts) <= budget
    # every kept character appears, in order, in the chunks; each chunk's pages include the
    # page of every character it holds and nothing outside the document
    stream = [(ch, c.pages) for c in chunks for ch in c.text if not ch.isspace()]
    i = 0
    for ch, pages_of_chunk in stream:
        if i < len(expected) and ch == expected[i][0] and expected[i][1] in pages_of_chunk:
            i += 1
    assert i == len(expected), "text was lost or given the wrong page"
    for c in chunks:
        assert c.pages and set(c.pages) <= {p.number for p in pages}
        assert list(c.pages) == sorted(set(c.pages))


# ---------------------------------------------------------------- a figure's own text


def test_a_figure_legend_set_into_a_paragraph_stays_out_of_its_sentence(tmp_path):
    """GFS's Figure 1 tops the page its paragraph goes on to, legend and bold box names first."""
    from pdfmaker import make_pdf

    from ddsearch.ingest.chunk import _sentences
    from ddsearch.ingest.clean import clean_pages
    from ddsearch.ingest.extract import extract

    prose = "The master stores three major types of metadata for every file and chunk."
    pdf = make_pdf(
        tmp_path / "gfs.pdf",
        [
            [*[prose] * 8, "Having a single master vastly simplifies our design and",
             "enables the master to make sophisticated chunk placement"],
            ["Legend:", "Data messages", "Application (file name, chunk index)",
             "**GFS chunkserver**", "(chunk handle, byte range)", "**GFS client**",
             "Figure 1: GFS Architecture",
             "and replication decisions using global knowledge. However,",
             "we must minimize its involvement in reads and writes.", *[prose] * 8],
        ],
    )  # fmt: skip
    sentences = _sentences(clean_pages(extract(pdf).pages, heading))
    texts = [s.text for s in sentences]
    whole = (
        "Having a single master vastly simplifies our design and enables the master to make "
        "sophisticated chunk placement and replication decisions using global knowledge."
    )
    assert whole in texts
    assert next(s for s in sentences if s.text == whole).pages == (1, 2)
    assert not any("Legend" in t or "chunkserver" in t or "(chunk" in t for t in texts)
    assert [s.text for s in sentences if s.caption] == ["Figure 1: GFS Architecture"]
