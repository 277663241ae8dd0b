"""Reference lists read from made PDFs: each label style, lists across columns and pages, a
footer inside the list, an appendix after it; resolution to known papers and citing sentences."""

from __future__ import annotations

from pathlib import Path

import pytest
from pdfmaker import PAGE_HEIGHT, escape, make_pdf, pdf_bytes

from ddsearch.config import Limits, Settings
from ddsearch.ingest.citing import labels_in
from ddsearch.ingest.pipeline import read_paper
from ddsearch.ingest.resolve import Resolver
from ddsearch.models import Paper

RAFT = Paper("raft", "In Search of an Understandable Consensus Algorithm (Extended Version)",
             ("Diego Ongaro", "John Ousterhout"), 2014)  # fmt: skip
CHUBBY = Paper("chubby", "The Chubby lock service for loosely-coupled distributed systems",
               ("Mike Burrows",), 2006)  # fmt: skip
PAXOS = Paper("paxos-simple", "Paxos Made Simple", ("Leslie Lamport",), 2001)
CLOCKS = Paper("lamport-clocks", "Time, Clocks, and the Ordering of Events in a Distributed "
               "System", ("Leslie Lamport",), 1978)  # fmt: skip
CASSANDRA = Paper("cassandra", "Cassandra - A Decentralized Structured Storage System",
                  ("Avinash Lakshman", "Prashant Malik"), 2009)  # fmt: skip
SPARK = Paper("spark-rdd", "Resilient Distributed Datasets: A Fault-Tolerant Abstraction for "
              "In-Memory Cluster Computing", ("Matei Zaharia", "Mosharaf Chowdhury",
              "Tathagata Das", "Ankur Dave"), 2012)  # fmt: skip
KNOWN = [RAFT, CHUBBY, PAXOS, CLOCKS, CASSANDRA, SPARK]

BODY = [
    "1 Introduction",
    "Replicated state machines are used to build fault-tolerant services in large systems.",
    "Consensus keeps the replicas of a log identical even when some of the servers fail.",
    "Examples of replicated state machines include Chubby [2] and other lock services.",
    "Paxos [3, 4] has dominated the discussion of consensus algorithms for a decade.",
    "Terms act as a logical clock [4, §3] and let servers detect obsolete leaders.",
    "Systems such as Chubby[2] keep a log; see also [1][5] for recovery by snapshots.",
    "Several explanations exist [2-4], and none of them is short or simple to follow.",
    "The interval [0, 1] and the pair [x, y] are not citations of anything at all here.",
]


def read(tmp_path: Path, embedder, pages, known=KNOWN, paper_id: str = "made"):
    """The references of a made PDF, read as ingest reads them."""
    pdf = tmp_path / f"{paper_id}.pdf"
    if all(isinstance(p, list) for p in pages):
        make_pdf(pdf, pages)
    else:
        pdf.write_bytes(pdf_bytes(pages))
    settings = Settings(home=tmp_path / "home", limits=Limits(isolate=False))
    paper = Paper(paper_id, "A Made Paper About Consensus", ("Ann Author",), 2020)
    chunks, refs = read_paper(paper, pdf, embedder, settings, resolver=Resolver(known))
    return chunks, refs


def cited(refs, label: str) -> list[str]:
    return [c.text for r in refs if r.label == label for c in r.cited]


def by_label(refs) -> dict[str, str | None]:
    return {r.label: r.id for r in refs}


# ---------------------------------------------------------------- label styles


def test_bracketed_numbers_resolve_and_find_their_citing_sentences(tmp_path, embedder):
    refs_page = [
        "References",
        "[1] M. Rosenblum and J. K. Ousterhout. The design and implementation of a",
        "log-structured file system. ACM TOCS 10, 1 (1992), 26-52.",
        "[2] M. Burrows. The Chubby lock service for loosely-coupled distributed systems.",
        "In Proc. OSDI (2006), pp. 335-350.",
        "[3] L. Lamport. Paxos made simple. ACM SIGACT News 32, 4 (Dec. 2001), 18-25.",
        "[4] L. Lamport. Time, clocks, and the ordering of events in a distributed system.",
        "Communications of the ACM 21, 7 (July 1978), 558-565.",
        "[5] D. Ongaro. Consensus: Bridging Theory and Practice. PhD thesis, Stanford, 2014.",
    ]
    _, refs = read(tmp_path, embedder, [BODY, refs_page])
    assert [r.label for r in refs] == ["[1]", "[2]", "[3]", "[4]", "[5]"]
    assert by_label(refs) == {
        "[1]": None, "[2]": "chubby", "[3]": "paxos-simple", "[4]": "lamport-clocks",
        "[5]": None,  # a thesis is not the paper
    }  # fmt: skip
    assert refs[3].text.endswith("21, 7 (July 1978), 558-565.")  # the junk-looking line kept
    assert refs[0].pages == (2,)
    chubby = cited(refs, "[2]")
    assert any("Chubby [2]" in s for s in chubby) and any("Chubby[2]" in s for s in chubby)
    assert any("[2-4]" in s for s in cited(refs, "[3]"))  # a range
    assert any("[4, §3]" in s for s in cited(refs, "[4]"))  # a locator in the group
    assert any("[1][5]" in s for s in cited(refs, "[5]"))  # adjacent groups
    everything = [c.text for r in refs for c in r.cited]
    assert not any("[0, 1]" in s for s in everything)
    assert all(c.pages == (1,) for r in refs for c in r.cited)


def test_dotted_numbers(tmp_path, embedder):
    body = [
        "1 Introduction",
        "Our model of time follows the happened-before relation of Lamport [2] closely.",
        "Deadlock detection has been studied at length in distributed databases [1].",
    ]
    refs_page = [
        "REFERENCES",
        "1. CHANDY, K. M., AND MISRA, J. Distributed deadlock detection. ACM Trans.",
        "Comput. Syst. 1, 2 (May 1983), 144-156.",
        "2. LAMPORT, L. Time, clocks, and the ordering of events in a distributed system.",
        "Commun. ACM 21, 7 (July 1978), 558-565.",
    ]
    _, refs = read(tmp_path, embedder, [body, refs_page])
    assert by_label(refs) == {"1.": None, "2.": "lamport-clocks"}
    assert cited(refs, "2.") == [body[1]]


def test_keyed_labels(tmp_path, embedder):
    body = [
        "1 Introduction",
        "Every server makes an independent random choice of a partner [Ra, Lam78].",
        "The Clearinghouse servers [Op] replicate their database on many sites.",
    ]
    refs_page = [
        "References",
        "[Lam78] L. Lamport. Time, Clocks, and the Ordering of Events in a Distributed",
        "System. Communications of the ACM 21(7):558-565, 1978.",
        "[Op] D. C. Oppen and Y. K. Dalal. The Clearinghouse: A Decentralized Agent for",
        "Locating Named Objects in a Distributed Environment. Xerox report, 1981.",
        "[Ra] M. O. Rabin. Randomized Byzantine Generals. FOCS, 1983.",
    ]
    _, refs = read(tmp_path, embedder, [body, refs_page])
    assert by_label(refs) == {"[Lam78]": "lamport-clocks", "[Op]": None, "[Ra]": None}
    assert cited(refs, "[Lam78]") == cited(refs, "[Ra]") == [body[1]]
    assert cited(refs, "[Op]") == [body[2]]


def test_unlabelled_author_year_list(tmp_path, embedder):
    body = [
        "1 Introduction",
        "Events are ordered by the happened-before relation (Lamport, 1978).",
        "Lamport [1978] defines logical clocks that respect that order for every process.",
        "Lamport's [1978] clocks are the basis of many later snapshot algorithms.",
        "Ongaro and Ousterhout 2014 describe a consensus algorithm built for clarity.",
        "Nothing in this sentence cites a paper, though it was written in 2014 or so.",
    ]
    refs_page = [
        "References",
        "Lamport, L. 1978. Time, clocks, and the ordering of events in a distributed",
        "system. Commun. ACM 21, 7, 558-565.",
        "Ongaro, D., and Ousterhout, J. 2014. In search of an understandable consensus",
        "algorithm. In Proc. USENIX ATC, 305-319.",
    ]
    _, refs = read(tmp_path, embedder, [body, refs_page])
    assert [(r.label, r.id) for r in refs] == [
        ("Lamport 1978", "lamport-clocks"),
        ("Ongaro 2014", "raft"),  # the conference version of the catalog's extended one
    ]
    assert cited(refs, "Lamport 1978") == body[1:4]
    assert cited(refs, "Ongaro 2014") == [body[4]]


# ---------------------------------------------------------------- layout


def _columns(left: list[str], right: list[str], footer: str | None = None) -> bytes:
    """A two-column page: the left column's lines, then the right's, as separate text runs."""
    ops = []
    for x, lines in ((54, left), (320, right)):
        y = PAGE_HEIGHT - 72
        for line in lines:
            ops.append(b"BT /F1 9 Tf %d %d Td (%s) Tj ET" % (x, y, escape(line)))
            y -= 12
    if footer:
        ops.append(b"BT /F1 9 Tf 54 40 Td (%s) Tj ET" % escape(footer))
    return b"\n".join(ops) + b"\n"


def test_a_list_across_two_columns_and_a_page_break_with_a_footer(tmp_path, embedder):
    body = [
        "1 Introduction",
        "Replicated logs [1] are kept consistent by consensus [2] in most systems today.",
        "Lock services such as Chubby [3] are built on top of such a replicated log.",
        "Datasets that are resilient [4] recompute lost partitions from their lineage.",
    ]
    footer = "Proceedings of the Made-Up Symposium on Systems 2024"
    left = ["References"] + [f"[{n}] A. Author. Paper number {n} on replication. In Proc."
                             f" Made-Up Conf., 19{80 + n}." for n in (1, 2)] + [
        "[3] M. Burrows. The Chubby lock service for",
    ]  # fmt: skip
    right = ["loosely-coupled distributed systems. In OSDI", "(2006), pp. 335-350.",
             "[4] M. Zaharia, M. Chowdhury, T. Das, and A. Dave.",
             "Resilient distributed datasets: A fault-tolerant"]  # fmt: skip
    next_page = ["abstraction for in-memory cluster computing.",
                 "Tech. Rep. UCB/EECS-2011-82, UC Berkeley, 2011.",
                 "[5] B. Writer. A last entry. Made-Up Journal, 2001."]  # fmt: skip
    pages = [
        _columns(body, [], footer),
        _columns(["More of the body: nothing else is cited on this page at all."], [], footer),
        _columns(left, right, footer),
        _columns(next_page, [], footer),
    ]
    _, refs = read(tmp_path, embedder, pages)
    assert [r.label for r in refs] == ["[1]", "[2]", "[3]", "[4]", "[5]"]
    chubby, spark = refs[2], refs[3]
    assert chubby.id == "chubby" and chubby.pages == (3,)
    assert chubby.text.startswith("M. Burrows. The Chubby lock service for loosely-coupled")
    assert spark.id == "spark-rdd"  # the tech report of the NSDI paper, across the page break
    assert spark.pages == (3, 4)
    assert all("Symposium" not in r.text for r in refs)  # the running footer is not an entry's
    assert [c.text for c in chubby.cited] == [body[2]]


def test_an_appendix_after_the_list_is_not_part_of_its_last_entry(tmp_path, embedder):
    refs_page = [
        "References",
        "[1] M. Burrows. The Chubby lock service for loosely-coupled distributed systems.",
        "In Proc. OSDI (2006), pp. 335-350.",
        "[2] L. Lamport. Paxos made simple. ACM SIGACT News 32, 4 (Dec. 2001), 18-25.",
        "A Proof of Safety",
        "This appendix proves that no two leaders are elected for the same term.",
        "The argument follows the one for Paxos [2] and needs no clock at all.",
    ]
    body = ["1 Introduction", "We build on a lock service [1] and on a consensus protocol."]
    _, refs = read(tmp_path, embedder, [body, refs_page])
    assert [r.label for r in refs] == ["[1]", "[2]"]
    assert refs[1].text == refs_page[3][4:]  # the appendix's heading and text are not in it
    assert any("follows the one for Paxos [2]" in s for s in cited(refs, "[2]"))


def test_a_paper_without_a_reference_list_has_none(tmp_path, embedder):
    _, refs = read(tmp_path, embedder, [BODY])
    assert refs is None


def test_a_citing_sentence_over_a_page_break_keeps_both_pages(tmp_path, embedder):
    page1 = BODY + ["The protocol that all of these systems share was first described by"]
    page2 = ["Lamport [1] in a paper that many readers found hard to follow at first.",
             "References",
             "[1] L. Lamport. Paxos made simple. ACM SIGACT News 32, 4 (2001), 18-25."]  # fmt: skip
    page1 = [line.replace("[", "(").replace("]", ")") for line in page1]  # no other citations
    _, refs = read(tmp_path, embedder, [page1, page2])
    (paxos,) = refs
    spanning = [c for c in paxos.cited if "first described by Lamport [1]" in c.text]
    assert spanning and spanning[0].pages == (1, 2)


# ---------------------------------------------------------------- resolution


@pytest.fixture(scope="module")
def resolver():
    return Resolver(KNOWN)


@pytest.mark.parametrize(
    "entry, expected",
    [
        # a version of the same work, under its own title or another one
        (
            "A. Lakshman and P. Malik. Cassandra: structured storage system on a p2p network. "
            "In PODC, 2009.",
            "cassandra",
        ),
        (
            "LAKSHMAN, A., AND MALIK, P. Cassandra - a decentralized structured storage system. "
            "SIGOPS Oper. Syst. Rev. 44, 2 (2010), 35-40.",
            "cassandra",
        ),
        (
            "ONGARO, D., AND OUSTERHOUT, J. In search of an understandable consensus algorithm. "
            "In Proc. ATC'14 (2014), USENIX.",
            "raft",
        ),
        (
            "M. Zaharia, M. Chowdhury, T. Das, A. Dave, J. Ma, M. McCauley, M. Franklin, "
            "S. Shenker, and I. Stoica. Resilient distributed datasets: A fault-tolerant "
            "abstraction for in-memory cluster computing. Technical Report UCB/EECS-2011-82, "
            "2011.",
            "spark-rdd",
        ),
        (
            "Burrows, M.: The chubby lock service for looselycoupled distributed systems. In: "
            "OSDI. pp. 335-350 (2006)",
            "chubby",
        ),
        ("Leslie Lamport. “Paxos Made Simple”. ACM SIGACT News 32.4 (2001).", "paxos-simple"),
        # another paper by the same authors
        ("L. Lamport. Fast Paxos. Distributed Computing 19, 2 (2006), 79-103.", None),
        ("L. Lamport. Generalized consensus and Paxos. Tech. Rep. MSR-TR-2005-33, 2005.", None),
        (
            "L. Lamport. The implementation of reliable distributed multiprocess systems. "
            "Computer Networks 2 (1978), 95-114.",
            None,
        ),
        (
            "M. Zaharia, M. Chowdhury, M. Franklin, S. Shenker, and I. Stoica. Spark: Cluster "
            "computing with working sets. In HotCloud, 2010.",
            None,
        ),
        # the title inside another title, or by other authors
        ("R. van Renesse. Paxos made moderately complex. Tech. rep., Cornell, 2012.", None),
        ("J. Doe. A critique of Paxos made simple. Made-Up Letters, 2003.", None),
        ("J. Doe and R. Roe. Paxos made simple. Made-Up Letters, 2003.", None),
        # a thesis, a web site, a software release
        (
            "D. Ongaro. In search of an understandable consensus algorithm. PhD thesis, "
            "Stanford University, 2014.",
            None,
        ),
        ("Apache Cassandra. http://cassandra.apache.org/, 2008.", None),
        ("Cassandra 1.2 release notes. The Apache Software Foundation, 2013.", None),
    ],
)
def test_resolution(resolver, entry, expected):
    assert resolver.resolve(entry) == expected


def test_a_paper_never_resolves_to_itself(resolver):
    entry = "D. Ongaro and J. Ousterhout. In search of an understandable consensus algorithm."
    assert resolver.resolve(entry) == "raft"
    assert resolver.resolve(entry, exclude="raft") is None


def test_a_bib_paper_without_authors_resolves_by_title():
    mine = Paper("my-notes", "Notes on Replicated Logs in Practice", (), None)
    assert Resolver([mine]).resolve("Someone. Notes on replicated logs in practice. 2019.") == (
        "my-notes"
    )


def test_labels_in_groups():
    keys = {str(n) for n in range(1, 30)}
    assert labels_in("as in [18, 19, 3] and [5, §1]", keys) == ["18", "19", "3", "5"]
    assert labels_in("see [10][24] and Chubby[3]", keys) == ["10", "24", "3"]
    assert labels_in("ranges [3–6]", keys) == ["3", "4", "5", "6"]
    assert labels_in("[see 4, Section 2.1] and [e.g., 7]", keys) == ["4", "7"]
    assert labels_in("the interval [0, 1], the pair [x, y], the list [1, 99]", keys) == []
    assert labels_in("OCR's [ 151) and [6, 21-241 (see", keys) == ["15", "6", "21", "22", "23",
                                                                  "24"]  # fmt: skip
