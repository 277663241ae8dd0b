"""Where a quote stands on its page: the alignment on letters (pure), and the rectangles on
made PDFs whose text pdfium reads back from inside them; hidden text, a missing or changed
PDF, and the cache."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from pdfmaker import make_pdf, pdf_bytes

from ddsearch.errors import Problem
from ddsearch.index.records import PaperRecord
from ddsearch.models import Paper
from ddsearch.search.highlight import Highlighter, align, merge_lines
from ddsearch.search.pdfs import LOCK, PageError, Pdfs, letters


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


# ---------------------------------------------------------------- letters and alignment


def test_letters_fold_case_accents_and_ligatures_and_say_where_they_stand():
    key, at = letters("Ein ﬁne Café, 2×3!")
    assert key == "einfinecafe23"
    assert at == [0, 1, 2, 4, 4, 5, 6, 8, 9, 10, 11, 14, 16]


def test_a_quote_in_one_piece():
    page = "Header\r\nThe leader sends heartbeats. Followers wait.\r\n7"
    (run,) = align("The leader sends heartbeats.", [page])
    assert page[run[1] : run[2]] == "The leader sends heartbeats."


def test_a_word_hyphenated_at_a_line_end_is_one_run():
    page = "We call it associ-\r\nated state, kept apart."
    (run,) = align("We call it associated state, kept apart.", [page])
    assert page[run[1] : run[2]] == page


def test_what_the_page_adds_inside_the_quote_is_left_out():
    page = (
        "which partitions of per-\r\n"
        "7Note that our union operation does not drop duplicates.\r\n"
        "sistent datasets are kept in memory. Then more."
    )
    runs = align("which partitions of persistent datasets are kept in memory.", [page])
    assert [page[a:b] for _, a, b in runs] == [
        "which partitions of per-",
        "sistent datasets are kept in memory.",
    ]


def test_a_quote_across_a_page_break_has_runs_on_both_pages():
    first = "Intro text.\r\nEach keeper lights a beacon every ninety\r\n12"
    second = "Lighthouse: Gossip Among Keepers\r\nseconds to show that it is alive. Next."
    runs = align("Each keeper lights a beacon every ninety seconds to show that it is alive.",
                 [first, second])  # fmt: skip
    assert [(n, [first, second][n][a:b]) for n, a, b in runs] == [
        (0, "Each keeper lights a beacon every ninety"),
        (1, "seconds to show that it is alive."),
    ]


def test_a_part_the_page_has_elsewhere_is_found_there_and_kept_in_the_quotes_order():
    # a footnote that cleaning moved after its sentence stands before it on the page
    page = (
        "2The code is available at example.org/zk.\r\n"
        "Some other text goes here for a while.\r\n"
        "For these experiments, we configured the servers to have a maximum of 2,000 requests."
    )
    quote = (
        "For these experiments, we configured the servers to have a maximum of 2,000 requests. "
        "2The code is available at example.org/zk."
    )
    runs = align(quote, [page])
    assert [page[a:b] for _, a, b in runs] == [
        "For these experiments, we configured the servers to have a maximum of 2,000 requests.",
        "2The code is available at example.org/zk.",
    ]


def test_a_quote_that_is_not_there_has_no_place():
    assert align("Paxos chooses a single value.", ["Raft elects a leader first."]) == []
    assert align("...", ["anything"]) == []
    # a few shared words are no place to point at
    assert align("the leader of the cluster sends a message", ["the cluster of the"]) == []


def test_characters_marked_hidden_are_skipped():
    page = "\0" * 20 + " visible text here"
    (run,) = align("visible text here", [page])
    assert run[1] >= 20


def test_lines_merge_side_by_side_not_across_columns_or_lines():
    rects = [(72, 700, 150, 710), (152, 701, 300, 710), (72, 686, 300, 696),
             (320, 686, 540, 696), (323, 692, 326, 698)]  # fmt: skip
    assert merge_lines(rects) == [[72, 700, 300, 710], [72, 686, 300, 696], [320, 686, 540, 698]]


# ---------------------------------------------------------------- on made PDFs


def record_of(path: Path, pid: str = "made") -> PaperRecord:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return PaperRecord(Paper(id=pid, title="Made"), sha, "", 1, str(path.resolve()), 0.0)


def read_back(pdfs: Pdfs, path: Path, highlight) -> str:
    """The text pdfium finds inside the rectangles, in their order."""
    with LOCK:
        page = pdfs.page(path, highlight.page)
        return " ".join(page.textpage.get_text_bounded(*r) for r in highlight.rects)


@pytest.fixture
def pdfs(tmp_path):
    pdfs = Pdfs(tmp_path / "cache")
    yield pdfs
    pdfs.close()


def test_rectangles_cover_the_quote_and_nothing_else(tmp_path, pdfs):
    path = make_pdf(tmp_path / "a.pdf", [[
        "Coastal stations fail often because storms cut their power.",
        "A central registry cannot see a station that the storm has",
        "silenced. We therefore let every keeper gossip with a few",
        "random neighbours, which spreads news quickly.",
    ]])  # fmt: skip
    quote = "A central registry cannot see a station that the storm has silenced."
    (found,) = Highlighter(pdfs).locate(record_of(path), [1], quote)
    assert found.page == 1 and found.box == (0, 0, 612, 792)
    assert len(found.rects) == 2  # one per line
    assert words(read_back(pdfs, path, found)) == words(quote)
    first, second = found.rects
    assert first[0] == pytest.approx(72, abs=1) and second[2] < 140  # "silenced." ends early


def test_a_hyphenated_word_and_small_print_inside_the_sentence(tmp_path, pdfs):
    path = make_pdf(tmp_path / "b.pdf", [[
        "Spark keeps the partitions of per-",
        "__7Note that our union operation does not drop duplicates.__",
        "sistent datasets in memory, and associ-",
        "ated lineage rebuilds a lost one.",
    ]])  # fmt: skip
    quote = "Spark keeps the partitions of persistent datasets in memory, and associated " \
            "lineage rebuilds a lost one."  # fmt: skip
    (found,) = Highlighter(pdfs).locate(record_of(path), [1], quote)
    assert len(found.rects) == 3  # the footnote's line is not highlighted
    text = read_back(pdfs, path, found)
    assert "Note" not in text and "union" not in text
    assert letters(text)[0] == letters(quote)[0]


def test_a_quote_across_a_page_break_is_highlighted_on_both_pages(tmp_path, pdfs):
    path = make_pdf(tmp_path / "c.pdf", [
        ["Intro text that comes first.", "Each keeper lights a beacon every ninety", "1"],
        ["Lighthouse: Gossip Among Keepers", "seconds to show that it is alive.", "More."],
    ])  # fmt: skip
    quote = "Each keeper lights a beacon every ninety seconds to show that it is alive."
    first, second = Highlighter(pdfs).locate(record_of(path), [1, 2], quote)
    assert (first.page, second.page) == (1, 2)
    assert read_back(pdfs, path, first).strip() == "Each keeper lights a beacon every ninety"
    assert read_back(pdfs, path, second).strip() == "seconds to show that it is alive."


def _page_with_hidden_copy() -> bytes:
    """A line drawn where it shows, and again lower down inside a clip that shows nothing of
    it (as an older version of a figure under the new one)."""
    line = b"(Gossip spreads rumours about dark stations.) Tj"
    return (
        b"q 0 0 612 40 re W n BT /F1 10 Tf 72 600 Td " + line + b" ET Q\n"
        b"BT /F1 10 Tf 72 700 Td " + line + b" ET\n"
    )


def test_text_hidden_by_its_clip_path_is_not_highlighted(tmp_path, pdfs):
    path = tmp_path / "d.pdf"
    path.write_bytes(pdf_bytes([_page_with_hidden_copy()]))
    (found,) = Highlighter(pdfs).locate(record_of(path), [1],
                                        "Gossip spreads rumours about dark stations.")  # fmt: skip
    ((x0, y0, x1, y1),) = found.rects
    assert 695 < y0 < y1 < 712  # the copy at y=700 that shows, not the one at 600


def test_a_quote_not_on_the_page_gets_no_highlight(tmp_path, pdfs):
    path = make_pdf(tmp_path / "e.pdf", [["Raft elects a leader first."]])
    assert Highlighter(pdfs).locate(record_of(path), [1], "Paxos chooses one value.") == ()


def test_a_missing_or_changed_pdf_and_a_page_out_of_range_are_refused(tmp_path, pdfs):
    path = make_pdf(tmp_path / "f.pdf", [["One page only."]])
    record = record_of(path)
    highlighter = Highlighter(pdfs)
    with pytest.raises(PageError, match="page 2 is not in the PDF") as e:
        highlighter.locate(record, [2], "One page only.")
    assert e.value.problem is Problem.NOT_FOUND  # 404 over HTTP, a tool error in MCP
    path.write_bytes(pdf_bytes([["One page, changed."]]))
    with pytest.raises(PageError, match="changed since it was ingested"):
        highlighter.locate(record, [1], "One page only.")
    path.unlink()
    with pytest.raises(PageError, match="gone from") as e:
        highlighter.locate(record, [1], "One page only.")
    assert "ddsearch ingest made" in str(e.value) and "\n" not in str(e.value)


def test_hits_without_their_pdf_keep_no_highlight(tmp_path, pdfs):
    from ddsearch.models import Chunk, Hit

    path = make_pdf(tmp_path / "g.pdf", [["A quote to find here."]])
    record = record_of(path)
    hit = Hit(1, Chunk("c", "made", 0, "A quote to find here.", (1,)), record.paper, 1.0,
              quote="A quote to find here.", quote_pages=(1,))  # fmt: skip
    lost = replace(hit, paper=Paper(id="lost", title="Lost"))
    gone = replace(hit, paper=Paper(id="gone", title="Gone"))
    missing = replace(record, paper=gone.paper, source=str(tmp_path / "nowhere.pdf"))
    Highlighter(pdfs).add([hit, lost, gone], {"made": record, "gone": missing})
    assert hit.highlight and hit.highlight[0].page == 1
    assert lost.highlight == () and gone.highlight == ()


def test_answers_are_kept_and_a_replaced_file_is_read_again(tmp_path, pdfs):
    path = make_pdf(tmp_path / "h.pdf", [["Some words on a page."]])
    highlighter = Highlighter(pdfs)
    first = highlighter.locate(record_of(path), [1], "Some words on a page.")
    assert highlighter.locate(record_of(path), [1], "Some words on a page.") is first
    path.write_bytes(pdf_bytes([["", "", "Some words on a page."]]))  # lower down
    os.utime(path, ns=(1, 1))
    again = highlighter.locate(record_of(path), [1], "Some words on a page.")
    assert again[0].rects[0][1] < first[0].rects[0][1]
