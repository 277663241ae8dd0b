"""The ``ddsearch`` command: every subcommand, its output formats and its user errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SMALL_PAPERS
from pdfmaker import not_a_pdf

from ddsearch.cli import main
from ddsearch.index.chroma import CHUNKS
from ddsearch.index.store import Store

SUMMARY = re.compile(
    r"^(\d+) ingested \((\d+) chunks\), (\d+) unchanged, (\d+) skipped, (\d+) failed "
    r"in [\d.]+s; index: (.+)$",
    re.M,
)
PAPER_LINE = re.compile(r"^\[\s*(\d+)/(\d+)\] ([\w.-]+): (.+)$", re.M)
COMMANDS = ["ingest", "query", "papers", "cite", "eval"]


@pytest.fixture
def shared_model(monkeypatch, embedder):
    """Let every command reuse the session's loaded model instead of loading its own."""
    from ddsearch.index import embed
    from ddsearch.ingest import pipeline
    from ddsearch.search import searcher

    def factory(name=embed.DEFAULT_MODEL, stamp_dir=None, **options):
        if name == embedder.name:
            return embedder
        return embed.Embedder(name, stamp_dir, **options)

    monkeypatch.setattr(searcher, "Embedder", factory)
    monkeypatch.setattr(pipeline, "Embedder", factory)


def invoke(*args, env=None, input=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args], input=input)


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.exception is None
    return result.stdout


def user_error(result, code: int = 1) -> str:
    """A user error: the given exit status, one 'Error:' line, no traceback."""
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def home(indexed_home) -> Path:
    return indexed_home


# ---------------------------------------------------------------- help, version


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command):
    args = ([command] if command else []) + ["--help"]
    out = ok(invoke(*args))
    assert out.startswith("Usage: ")
    if command:
        assert f" {command} " in out.splitlines()[0]
    else:
        assert all(c in out for c in COMMANDS)
    assert ok(invoke(*args[:-1], "-h")) == out


def test_version():
    assert ok(invoke("--version")).strip() == "ddsearch, version 0.1.0"


def test_unknown_command_and_option():
    user_error(invoke("serch", "x"), 2)
    user_error(invoke("papers", "--jsn"), 2)


# ---------------------------------------------------------------- ingest


def test_ingest_from(tmp_home, small_pdfs, shared_model):
    folder = small_pdfs["lighthouse"].parent
    result = invoke("--home", tmp_home, "ingest", "--from", folder, "--no-progress")
    out = ok(result)
    m = SUMMARY.search(out)
    assert m, out
    assert (m[1], m[3], m[4], m[5], m[6]) == ("3", "0", "0", "0", str(tmp_home))
    store = Store(tmp_home, readonly=True)
    assert int(m[2]) == store.count_chunks() == store.chroma.collection(CHUNKS).count() > 0
    store.close()

    (folder / "SOURCES.md").write_text("where the PDFs came from")
    again = invoke("--home", tmp_home, "ingest", "--from", folder)
    # the unchanged papers are told apart from the file that is not a PDF
    assert SUMMARY.search(ok(again)).group(1, 2, 3, 4, 5) == ("0", "0", "3", "1", "0")
    assert "skipped  SOURCES.md: not a PDF file" in again.stderr


def test_ingest_logs_a_line_per_paper_without_a_terminal(tmp_home, small_pdfs, shared_model):
    folder = small_pdfs["lighthouse"].parent
    not_a_pdf(folder / "broken.pdf")
    result = invoke("--home", tmp_home, "ingest", "--from", folder)  # stderr: not a terminal
    lines = PAPER_LINE.findall(result.stderr)
    assert [(n, total, pid) for n, total, pid, _ in lines] == [
        ("1", "3", "ledger"), ("2", "3", "lighthouse"), ("3", "3", "orchard")
    ]  # fmt: skip
    said = {pid: what for _, _, pid, what in lines}
    assert re.fullmatch(r"ingested, \d+ chunks", said["ledger"])
    # a file that is no PDF fails before any paper is read, told in the summary's list
    assert "failed   broken: not a PDF file" in result.stderr
    again = invoke("--home", tmp_home, "ingest", "--from", folder, "lighthouse")
    assert PAPER_LINE.findall(again.stderr) == [("1", "1", "lighthouse", "unchanged")]


def test_ingest_says_when_it_prepares_the_model(tmp_home, small_pdfs, monkeypatch):
    """A fresh data home first checks the model and exports it to ONNX (a quarter minute of
    an idle bar): ingest says so. The stub encodes without that export, keeping this quick."""
    from _crashdriver import StubEmbedder

    from ddsearch.ingest import pipeline

    monkeypatch.setattr(pipeline, "Embedder", StubEmbedder)
    first = invoke("--home", tmp_home, "ingest", "--from", small_pdfs["orchard"])
    assert "preparing the model for this data home" in ok(first) + first.stderr
    assert re.search(r"^model ready in [\d.]+s$", first.stderr, re.M)


def test_a_prepared_model_is_not_announced(tmp_path, embedder):
    from ddsearch.index.embed import Embedder

    embedder.encode(["warm"])  # the session's model: checked and exported in its stamp dir
    assert embedder.prepared()
    assert not Embedder(stamp_dir=tmp_path / "fresh").prepared()
    assert not (tmp_path / "fresh" / "models").exists()  # asking exported nothing


def test_ingest_reports_failures(tmp_home, small_pdfs, shared_model):
    folder = small_pdfs["lighthouse"].parent
    not_a_pdf(folder / "broken.pdf")
    (folder / "notes.txt").write_text("notes")
    result = invoke("--home", tmp_home, "ingest", "--from", folder)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "failed   broken: not a PDF file" in result.stderr
    assert "skipped  notes.txt: not a PDF file" in result.stderr
    assert SUMMARY.search(result.stdout).group(1, 3, 4, 5) == ("3", "0", "1", "1")


def test_ingest_ids_with_from(tmp_home, small_pdfs, shared_model):
    folder = small_pdfs["lighthouse"].parent
    (folder / "SOURCES.md").write_text("where the PDFs came from")
    result = invoke("--home", tmp_home, "ingest", "ledger", "--from", folder)
    assert SUMMARY.search(ok(result)).group(1, 3, 4, 5) == ("1", "0", "0", "0")
    assert "SOURCES.md" not in result.output  # not asked for: not worth a word
    msg = user_error(invoke("--home", tmp_home, "ingest", "gfs", "--from", folder))
    assert "not among the given PDFs: gfs" in msg


def test_ingest_user_errors(tmp_home, tmp_path, small_pdfs, shared_model):
    msg = user_error(invoke("--home", tmp_home, "ingest", "no-such-paper"))
    assert "unknown paper id(s): no-such-paper" in msg
    msg = user_error(invoke("--home", tmp_home, "ingest", "--from", tmp_path / "missing"))
    assert "no such file or folder" in msg
    bad = tmp_path / "bad.toml"
    bad.write_text("[[paper]]\nid = 'x'\n")
    msg = user_error(invoke("--home", tmp_home, "ingest", "--catalog", bad, "--from", tmp_path))
    assert str(bad) in msg and "missing required field" in msg
    user_error(invoke("--home", tmp_home, "ingest", "--catalog", tmp_path / "no.toml"), 1)


def test_ingest_while_locked(tmp_home, small_pdfs, shared_model):
    from ddsearch.index.lock import writer_lock

    with writer_lock(tmp_home):
        msg = user_error(invoke("--home", tmp_home, "ingest", "--from", small_pdfs["orchard"]))
    assert "another ingest is writing" in msg


def test_ingest_with_another_model(tmp_path, small_pdfs, shared_model):
    home = tmp_path / "home"
    ok(invoke("--home", home, "ingest", "--from", small_pdfs["orchard"]))
    result = invoke(
        "--home", home, "ingest", "--from", small_pdfs["orchard"], "--model", "some-other/model"
    )
    assert "was built with" in user_error(result)


# ---------------------------------------------------------------- query


def test_query_text(home, shared_model):
    out = ok(invoke("--home", home, "query", "How often does a keeper light a beacon?", "-k", 2))
    lines = out.splitlines()
    assert lines[0] == "1. Lighthouse: Gossip Among Keepers"
    # neighbouring passages may be folded into the hit, widening its pages around page 2
    m = re.match(
        r"^   PDF (?:p\. (\d)|pp\. (\d)–(\d)) · § 2 Beacon Protocol · score \d\.\d{4}$", lines[1]
    )
    assert m, lines[1]
    first, last = (int(m[1]), int(m[1])) if m[1] else (int(m[2]), int(m[3]))
    assert first <= 2 <= last
    cited = f"p. {first}" if first == last else f"pp. {first}–{last}"
    assert lines[2].startswith(
        f"   Anonymous (n.d.). Lighthouse: Gossip Among Keepers. PDF {cited}. file://"
    )
    assert lines[2].endswith(f"lighthouse.pdf#page={first}")
    assert "ninety seconds" in out
    assert re.search(r"^2\. ", out, re.M)
    assert not re.search(r"^3\. ", out, re.M)


def test_query_full_text(home, shared_model):
    out = ok(invoke("--home", home, "query", "beacon every ninety seconds", "-k", 1, "--full"))
    assert "Suspicion spreads by gossip" in out  # the whole passage, not just the quote
    assert "…" not in out


RESULT_KEYS = {"rank", "paper", "title", "year", "pages", "score", "text"}


def check_doc(doc: dict, query: str, k: int) -> None:
    assert doc["query"] == query
    assert 1 <= len(doc["results"]) <= k
    for i, r in enumerate(doc["results"], 1):
        assert set(r) >= RESULT_KEYS
        assert r["rank"] == i and r["paper"] in SMALL_PAPERS
        assert r["title"] == SMALL_PAPERS[r["paper"]][0]
        assert r["year"] is None
        pages = len(SMALL_PAPERS[r["paper"]][1])
        assert r["pages"] and all(isinstance(p, int) and 1 <= p <= pages for p in r["pages"])
        assert isinstance(r["score"], float) and r["text"].strip()
    scores = [r["score"] for r in doc["results"]]
    assert scores == sorted(scores, reverse=True)


def test_query_json(home, shared_model):
    q = "How many clerks must copy a sale?"
    doc = json.loads(ok(invoke("--home", home, "query", q, "--json", "-k", 3)))
    check_doc(doc, q, 3)
    answer = [r for r in doc["results"] if "two of the three clerks" in r["text"]]
    assert answer, "the answering passage is among the top 3"
    assert answer[0]["paper"] == "ledger" and 2 in answer[0]["pages"]
    assert all(r["quote"] and r["quote"] in r["text"] for r in doc["results"])


def test_query_file_jsonl(home, tmp_path, shared_model, monkeypatch):
    questions = [
        "How many trees moved when a tenth picker was added?",
        "How often does a keeper light a beacon?",
        "",
        "Where do hinted entries go when the clerk returns?",
    ]
    qfile = tmp_path / "q.txt"
    qfile.write_text("\n".join(questions) + "\n")

    from ddsearch.search.searcher import Searcher

    calls = []
    real = Searcher.search

    def spy(self, query, *a, **kw):
        calls.append(query)
        return real(self, query, *a, **kw)

    monkeypatch.setattr(Searcher, "search", spy)
    out = ok(invoke("--home", home, "query", "--file", qfile, "--jsonl", "-k", 2))
    lines = out.splitlines()
    asked = [q for q in questions if q]
    assert len(lines) == len(asked)
    docs = [json.loads(ln) for ln in lines]
    assert [d["query"] for d in docs] == asked
    for d in docs:
        check_doc(d, d["query"], 2)
    assert [d["results"][0]["paper"] for d in docs] == ["orchard", "lighthouse", "ledger"]
    assert calls == asked

    # --json: one JSON list, each question searched once
    calls.clear()
    docs = json.loads(ok(invoke("--home", home, "query", "--file", qfile, "--json", "-k", 1)))
    assert [d["query"] for d in docs] == asked
    assert [d["results"][0]["paper"] for d in docs] == ["orchard", "lighthouse", "ledger"]
    assert calls == asked

    # neither: the text a single query prints, under each question
    out = ok(invoke("--home", home, "query", "--file", qfile, "-k", 1, "--explain"))
    assert [ln[3:] for ln in out.splitlines() if ln.startswith("== ")] == asked
    assert out.count("evidence: dense ") == len(asked)
    assert sum(ln.startswith("1. ") for ln in out.splitlines()) == len(asked)  # one hit each


def test_query_file_goes_on_past_a_question_it_cannot_search(home, tmp_path, shared_model):
    qfile = tmp_path / "q.txt"
    qfile.write_text("How often does a keeper light a beacon?\n???\napples and baskets\n")
    result = invoke("--home", home, "query", "--file", qfile, "--jsonl", "-k", 1)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: line 2: the query '???' has no words to search for" in result.stderr
    docs = [json.loads(ln) for ln in result.stdout.splitlines()]
    assert [d["query"] for d in docs] == ["How often does a keeper light a beacon?", "???",
                                          "apples and baskets"]  # fmt: skip
    assert docs[1]["results"] == [] and "no words" in docs[1]["error"]
    assert docs[2]["results"][0]["paper"] == "orchard"
    assert "error" not in docs[0]


def test_query_file_from_stdin(home, shared_model):
    out = ok(
        invoke(
            "--home", home, "query", "--file", "-", "--jsonl", "-k", 1, input="apples and baskets\n"
        )
    )
    assert json.loads(out)["results"][0]["paper"] == "orchard"


def test_query_paper_filter(home, shared_model):
    q = "gossip about beacons"
    doc = json.loads(ok(invoke("--home", home, "query", q, "--json", "--paper", "orchard")))
    assert doc["results"] and {r["paper"] for r in doc["results"]} == {"orchard"}
    doc = json.loads(
        ok(invoke("--home", home, "query", q, "--json", "--paper", "orchard", "--paper", "ledger"))
    )
    assert {r["paper"] for r in doc["results"]} == {"orchard", "ledger"}
    msg = user_error(invoke("--home", home, "query", q, "--paper", "ledgr"))
    assert "not in the index: ledgr (closest: ledger" in msg
    # an id in another case names the indexed paper
    doc = json.loads(ok(invoke("--home", home, "query", q, "--json", "--paper", "Orchard")))
    assert doc["results"] and {r["paper"] for r in doc["results"]} == {"orchard"}


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_query_modes(home, shared_model, mode):
    q = "saffron and jasmine hash trees"
    doc = json.loads(ok(invoke("--home", home, "query", q, "--json", "--mode", mode, "-k", 2)))
    assert doc["results"][0]["paper"] == "ledger"


def test_query_lexical_no_results(home, shared_model):
    out = ok(invoke("--home", home, "query", "zyzzyva", "--mode", "lexical"))
    assert out.strip() == "no results"
    doc = json.loads(ok(invoke("--home", home, "query", "zyzzyva", "--mode", "lexical", "--json")))
    assert doc == {"query": "zyzzyva", "weak_match": True, "reading": None, "respelled": [],
                   "results": []}  # fmt: skip


def test_query_searches_a_typing_slip_as_the_word_the_papers_hold(home, shared_model):
    typed = "How often does a keeper light a beakon?"
    right = "How often does a keeper light a beacon?"
    out = ok(invoke("--home", home, "query", typed, "-k", 2))
    assert out.splitlines()[0] == "searched “beacon” for “beakon”"
    assert out.split("\n", 1)[1] == ok(invoke("--home", home, "query", right, "-k", 2))
    doc = json.loads(ok(invoke("--home", home, "query", typed, "--json", "-k", 2)))
    assert doc["query"] == typed and doc["respelled"] == [{"typed": "beakon", "read": "beacon"}]
    again = json.loads(ok(invoke("--home", home, "query", right, "--json", "-k", 2)))
    assert again["respelled"] == [] and again["results"] == doc["results"]


def test_nonsense_is_a_weak_match_and_no_words_is_an_error(home, shared_model):
    doc = json.loads(ok(invoke("--home", home, "query", "zzqqxxy blorf", "--json", "-k", "3")))
    assert doc["weak_match"] is True and doc["results"]  # shown, but said to be weak
    out = ok(invoke("--home", home, "query", "zzqqxxy blorf", "-k", "1"))
    assert out.startswith("weak match:")
    real = json.loads(ok(invoke("--home", home, "query", "How many clerks copy a sale?", "--json")))
    assert real["weak_match"] is False
    result = invoke("--home", home, "query", "🙂 🚀 ?!")
    assert result.exit_code == 2 and "has no words to search for" in result.output


def test_explain_prints_each_rankers_evidence(home, shared_model):
    out = ok(
        invoke("--home", home, "query", "How many clerks copy a sale?", "-k", "1", "--explain")
    )
    assert "evidence: dense " in out and "lexical " in out and "quote " in out
    doc = json.loads(ok(invoke("--home", home, "query", "How many clerks copy a sale?", "--json")))
    scores = doc["results"][0]["scores"]
    assert {"dense", "dense_norm", "lexical", "lexical_norm", "f_sentence", "quote"} <= set(scores)
    # a question naming a paper brings the named run: --explain shows every run, and what the
    # fitted passage model weighed
    q = "How does Lighthouse gossip among keepers?"
    out = ok(invoke("--home", home, "query", q, "-k", "1", "--explain"))
    scores = json.loads(ok(invoke("--home", home, "query", q, "--json")))["results"][0]["scores"]
    runs = {n for n in scores if not n.endswith("_norm") and n != "quote" and n[:2] != "f_"}
    assert {"named"} <= runs
    evidence = next(ln for ln in out.splitlines() if "evidence:" in ln)
    assert all(f"{n} {scores[n]:.4f} " in evidence for n in runs), (runs, evidence)
    fitted = {n for n in scores if n.startswith("f_")}
    assert {"f_section", "f_paper"} <= fitted
    assert all(f"{n[2:]} {scores[n]:.3f}" in evidence for n in fitted), (fitted, evidence)
    # how the question was read: what it asks without the name, and the likely papers
    read = next(ln for ln in out.splitlines() if ln.startswith("read as:"))
    assert "asks “how does gossip among keepers”" in read
    assert "lighthouse" in read.split("papers")[1]
    reading = json.loads(ok(invoke("--home", home, "query", q, "--json")))["reading"]
    assert reading["asks"] == "how does gossip among keepers"
    assert reading["papers"][0]["id"] == "lighthouse" and 0 < reading["papers"][0]["chance"] <= 1
    plain = ok(invoke("--home", home, "query", q, "-k", "1"))
    assert "read as:" not in plain
    lexical = ok(invoke("--home", home, "query", q, "-k", "1", "--mode", "lexical", "--explain"))
    assert "read as:" not in lexical  # only hybrid search reads the question with the models
    args = ("--home", home, "query", q, "--mode", "lexical", "--json")
    assert json.loads(ok(invoke(*args)))["reading"] is None


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["query"], 2, "give a QUESTION"),
        (["query", ""], 2, "the query is empty: give words to search for"),
        (["query", "   "], 2, "the query is empty: give words to search for"),
        (["query", "beacon", "-k", "0"], 2, "k must be an integer from 1 to 100, not 0"),
        (["query", "beacon", "-k", "101"], 2, "k must be an integer from 1 to 100, not 101"),
        (["query", "beacon", "-k", "many"], 2, "'many' is not a valid integer"),
        (["query", "beacon", "--mode", "magic"], 2, "'magic' is not one of"),
        (["query", "beacon", "--paper", ""], 1, "not in the index: an empty id"),
        (["query", "beacon", "--paper", "Raft"], 1, "run 'ddsearch ingest raft' first"),
        (["query", "beacon", "--jsonl"], 2, "--jsonl goes with --file"),
        (["query", "--file", "-", "--json", "--jsonl"], 2, "choose one"),
        (["query", "beacon", "--export", "a.md", "--export", "./a.md"], 2, "given twice"),
        (["query", "beacon", "--file", "-"], 2, "not both"),
        (["query", "beacon", "--format", "bib"], 2, "exactly one --export"),
        (["query", "beacon", "--export", "out.txt"], 2, "cannot tell the export format"),
        (["query", "beacon", "--model", "other-model"], 1, "built with model"),
        (["query", "--file", "-", "--export", "x.md"], 2, "--export goes with a QUESTION"),
        (["query", "--file", "no-such-questions.txt"], 2, "no-such-questions.txt"),
    ],
)
def test_query_user_errors(home, shared_model, args, code, needle):
    assert needle in user_error(invoke("--home", home, *args), code)


def test_the_bundled_model_answers_to_its_short_name(home, shared_model):
    out = ok(invoke("--home", home, "query", "beacon", "-k", 1, "--model", "all-MiniLM-L6-v2"))
    assert out.startswith("1. Lighthouse")


def test_query_without_an_index(tmp_path):
    msg = user_error(invoke("--home", tmp_path / "none", "query", "beacon"))
    assert "no index in" in msg and "ddsearch ingest" in msg
    assert not (tmp_path / "none").exists()


# ---------------------------------------------------------------- exports


def test_exports(home, tmp_path, shared_model):
    q = "How often does a keeper light a beacon?"
    names = ["x.md", "x.bib", "x.ris", "x.csl.json", "x.json"]
    paths = [tmp_path / n for n in names]
    args = [a for p in paths for a in ("--export", p)]
    result = invoke("--home", home, "query", q, "-k", 2, *args)
    ok(result)
    for p in paths:
        assert f"wrote {p}" in result.stderr
    md = paths[0].read_text()
    assert q in md and "Lighthouse: Gossip Among Keepers" in md
    bib = paths[1].read_text()
    assert re.search(r"@misc\{\w+,", bib) and "Lighthouse: Gossip Among Keepers" in bib
    ris = paths[2].read_text()
    assert ris.startswith("TY  - ") and "ER  - " in ris
    csl = json.loads(paths[3].read_text())
    assert isinstance(csl, list) and csl[0]["title"]
    doc = json.loads(paths[4].read_text())
    check_doc(doc, q, 2)
    assert doc["results"][0]["paper"] == "lighthouse"

    # an existing file is never overwritten without --force, and is left as it was
    paths[1].write_text("% my own notes\n")
    msg = user_error(invoke("--home", home, "query", q, "--export", paths[1]))
    assert "already exists; pass --force" in msg
    assert paths[1].read_text() == "% my own notes\n"
    ok(invoke("--home", home, "query", q, "--export", paths[1], "--force"))
    assert "Lighthouse" in paths[1].read_text()


def test_export_into_a_missing_folder(home, tmp_path, shared_model):
    target = tmp_path / "no" / "such" / "folder" / "x.md"
    msg = user_error(invoke("--home", home, "query", "apples", "-k", 1, "--export", target))
    assert msg == f"Error: cannot write {target}: the folder {target.parent} does not exist"
    assert not target.parent.exists()
    # checked before the search: a home without an index fails on the folder, not the index
    msg = user_error(invoke("--home", tmp_path / "none", "query", "apples", "--export", target))
    assert "the folder" in msg and "no index" not in msg
    (tmp_path / "file").write_text("")
    msg = user_error(invoke("--home", home, "query", "apples", "--export", tmp_path / "file/x.md"))
    assert msg.endswith("is not a folder")


def test_export_that_cannot_be_written_is_a_one_line_error(home, tmp_path, shared_model):
    # /sys takes no new files, even from root (read-only, or sysfs refusing them)
    if not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    msg = user_error(invoke("--home", home, "query", "apples", "-k", 1, "--export", "/sys/x.md"))
    assert msg.startswith("Error: cannot write /sys/x.md: ")
    # a dangling link where the file would go counts as a file there: not replaced unasked
    link = tmp_path / "x.md"
    link.symlink_to(tmp_path / "gone.md")
    msg = user_error(invoke("--home", home, "query", "apples", "-k", 1, "--export", link))
    assert "already exists; pass --force" in msg and link.is_symlink()


def test_export_with_explicit_format(home, tmp_path, shared_model):
    target = tmp_path / "refs.txt"
    ok(invoke("--home", home, "query", "apples", "-k", 1, "--export", target, "--format", "ris"))
    assert target.read_text().startswith("TY  - ")


# ---------------------------------------------------------------- papers


def test_papers_json(home):
    rows = json.loads(ok(invoke("--home", home, "papers", "--json")))
    assert isinstance(rows, list)
    for r in rows:
        assert {"id", "title", "year", "status", "chunks"} <= set(r)
    by_id = {r["id"]: r for r in rows}
    store = Store(home, readonly=True)
    for pid in SMALL_PAPERS:
        assert by_id[pid]["status"] == "indexed"
        assert by_id[pid]["title"] == SMALL_PAPERS[pid][0]
        assert by_id[pid]["chunks"] == store.count_chunks(pid) > 0
        assert by_id[pid]["source"].endswith(f"{pid}.pdf")
    store.close()
    assert by_id["gfs"]["status"] == "not downloaded" and by_id["gfs"]["chunks"] == 0
    assert by_id["gfs"]["year"] == 2003
    assert by_id["vector-clocks-fidge"]["status"] == "no open-access URL"
    assert sum(r["status"] == "indexed" for r in rows) == 3
    # catalog order first, then local papers in id order
    assert [r["id"] for r in rows[-3:]] == sorted(SMALL_PAPERS)


def test_papers_text(home):
    out = ok(invoke("--home", home, "papers"))
    lines = out.splitlines()
    m = re.fullmatch(r"(\d+) papers, 3 indexed, (\d+) chunks", lines[-1])
    assert m
    store = Store(home, readonly=True)
    assert int(m[2]) == store.count_chunks()
    store.close()
    assert int(m[1]) == len(lines) - 2
    assert re.fullmatch(r"id\s+year\s+status\s+chunks\s+cites\s+cited-by\s+title", lines[0])
    assert any(re.match(r"^ledger\s+indexed\s+\d+\s+Quorum Ledger", ln) for ln in lines)
    assert any(
        re.match(r"^gfs\s+2003\s+not downloaded\s+The Google File System", ln) for ln in lines
    )


def test_papers_with_a_downloaded_pdf(tmp_home):
    from pdfmaker import make_pdf

    make_pdf(tmp_home / "pdfs" / "raft.pdf", [["In Search of an Understandable Consensus"]])
    rows = {r["id"]: r for r in json.loads(ok(invoke("papers", "--json")))}
    assert rows["raft"]["status"] == "downloaded"
    assert not any(r["status"] == "indexed" for r in rows.values())


def test_papers_with_a_bad_catalog(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[paper]\n")
    assert "not valid TOML" in user_error(invoke("papers", "--catalog", bad))


# ---------------------------------------------------------------- home


def test_home_from_environment(home, tmp_path):
    rows = json.loads(ok(invoke("papers", "--json", env={"DDSEARCH_HOME": str(home)})))
    assert sum(r["status"] == "indexed" for r in rows) == 3
    # --home wins over the environment
    rows = json.loads(
        ok(
            invoke(
                "--home", tmp_path / "empty", "papers", "--json", env={"DDSEARCH_HOME": str(home)}
            )
        )
    )
    assert not any(r["status"] == "indexed" for r in rows)


def test_query_home_from_environment(home, shared_model):
    out = ok(
        invoke("query", "apples and baskets", "-k", 1, "--json", env={"DDSEARCH_HOME": str(home)})
    )
    assert json.loads(out)["results"][0]["paper"] == "orchard"


def test_ingest_home_from_environment(tmp_path, small_pdfs, shared_model):
    home = tmp_path / "envhome"
    out = ok(invoke("ingest", "--from", small_pdfs["orchard"], env={"DDSEARCH_HOME": str(home)}))
    assert SUMMARY.search(out)[6] == str(home)
    assert (home / "index.db").is_file()


def test_home_must_not_be_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    user_error(invoke("--home", f, "papers"), 2)


# ---------------------------------------------------------------- cite


def test_cite_formats():
    bib = ok(invoke("cite", "dynamo", "gfs"))
    assert bib.count("@") == 2
    assert re.search(r"@inproceedings\{decandia2007dynamo,", bib)
    assert "Giuseppe DeCandia" in bib or "DeCandia, Giuseppe" in bib
    csl = json.loads(ok(invoke("cite", "dynamo", "--format", "csl")))
    assert csl[0]["title"].startswith("Dynamo") and csl[0]["issued"]["date-parts"][0][0] == 2007
    assert ok(invoke("cite", "Dynamo")) == ok(invoke("cite", "dynamo"))
    ris = ok(invoke("cite", "raft", "--format", "ris"))
    assert ris.startswith("TY  - ") and "PY  - 2014" in ris and ris.rstrip().endswith("ER  -")


def test_cite_local_paper(home):
    bib = ok(invoke("--home", home, "cite", "lighthouse"))
    assert "Lighthouse: Gossip Among Keepers" in bib and bib.startswith("@misc{")


def test_cite_and_query_give_each_paper_one_key(home):
    doc = json.loads(ok(invoke("--home", home, "query", "beacon gossip", "--json", "-k", "10")))
    assert len({r["paper"] for r in doc["results"]}) > 1
    for r in doc["results"]:
        bib = ok(invoke("--home", home, "cite", r["paper"]))
        assert bib.split("{", 1)[1].split(",", 1)[0] == r["key"]


def test_cite_errors(home):
    msg = user_error(invoke("--home", home, "cite", "gfs", "dynamo2"))
    assert "unknown paper id(s): dynamo2 (closest: dynamo" in msg
    user_error(invoke("cite"), 2)
    user_error(invoke("cite", "gfs", "--format", "md"), 2)


# ---------------------------------------------------------------- eval


@pytest.fixture
def questions(tmp_path) -> Path:
    rows = [
        {"id": "l1", "style": "fact", "question": "How often does a keeper light a beacon?",
         "gold": [{"paper": "lighthouse", "pages": [2]}]},
        {"id": "o1", "style": "fact", "question": "How many trees moved with a tenth picker?",
         "gold": [{"paper": "orchard", "pages": [3]}]},
        {"id": "q1", "style": "natural", "question": "Who holds entries for a travelling clerk?",
         "gold": [{"paper": "ledger", "pages": [2]}]},
        {"id": "x1", "style": "natural", "question": "How many clerks copy each sale?",
         "gold": [{"paper": "gfs", "pages": [1]}]},  # a paper not in the index: a miss
    ]  # fmt: skip
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    return path


def test_eval_json(home, questions, shared_model):
    r = json.loads(ok(invoke("--home", home, "eval", questions, "--json", "-k", 3)))
    assert r["k"] == 3 and r["mode"] == "hybrid"
    assert r["overall"]["questions"] == 4
    assert r["overall"]["hit@3"] == 0.75
    assert r["overall"]["paper@1"] == 0.75
    assert r["overall"]["mrr@10"] == 0.75
    assert set(r["styles"]) == {"fact", "natural"}
    assert r["styles"]["fact"]["hit@3"] == 1.0 and r["styles"]["natural"]["hit@3"] == 0.5
    assert [m["id"] for m in r["missed"]] == ["x1"]
    assert r["missed"][0]["gold"] == {"gfs": [1]}
    assert r["missed"][0]["got"][0][0] == "ledger"


def test_eval_text_and_modes(home, questions, shared_model):
    out = ok(invoke("--home", home, "eval", questions, "--mode", "dense", "--mode", "lexical"))
    assert "mode dense" in out and "mode lexical" in out
    assert re.search(r"^overall\s+4\s+0\.750\s", out, re.M)
    assert "missed at 5 (1):" in out and "x1: How many clerks copy each sale?" in out
    # the gold paper that is not indexed is told, once per run, and scored as a miss
    result = invoke("--home", home, "eval", questions)
    assert result.stderr.count("warning: 1 question(s) name papers not in the index") == 1
    assert result.stderr.strip().endswith("scored as misses: gfs")
    both = json.loads(
        ok(
            invoke(
                "--home", home, "eval", questions, "--json", "--mode", "hybrid", "--mode", "lexical"
            )
        )
    )
    assert [r["mode"] for r in both] == ["hybrid", "lexical"]


def test_eval_errors(home, tmp_path, shared_model):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no gold here"}\n')
    assert f"{bad}:1: not a question with gold papers" in user_error(
        invoke("--home", home, "eval", bad)
    )
    blank = tmp_path / "blank.jsonl"
    blank.write_text('{"question": "beacon", "gold": [{"paper": "lighthouse"}]}\n'
                     '{"question": "  ", "gold": [{"paper": "lighthouse"}]}\n')  # fmt: skip
    assert f"{blank}:2: not a question with gold papers (the question is empty)" in user_error(
        invoke("--home", home, "eval", blank)
    )
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    assert "no questions" in user_error(invoke("--home", home, "eval", empty))
    user_error(invoke("--home", home, "eval", tmp_path / "missing.jsonl"), 2)
    user_error(invoke("--home", home, "eval", bad, "-k", "11"), 2)
    good = tmp_path / "good.jsonl"
    good.write_text('{"question": "beacon", "gold": [{"paper": "lighthouse"}]}\n')
    assert "no index in" in user_error(invoke("--home", tmp_path / "none", "eval", good))


# ---------------------------------------------------------------- a real process


def test_real_process_user_error_has_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("ddsearch")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ddsearch.cli"]
    proc = subprocess.run(
        [*cmd, "--home", str(tmp_path / "none"), "query", "beacon"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: no index in") and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_cli_holds_no_heavy_imports():
    heavy = "('torch', 'chromadb', 'sentence_transformers')"
    code = f"import sys; from ddsearch import cli; print([m for m in {heavy} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]"


def test_small_papers_fixture_is_untouched(home):
    # the shared home is read by many tests: none of them may have changed it
    store = Store(home, readonly=True)
    assert sorted(store.records()) == sorted(SMALL_PAPERS)
    store.close()


def test_a_read_only_home_answers_queries_and_writers_say_it_is_read_only(home, tmp_path):
    """On a read-only mount: queries, papers and doctor work; ingest and doctor --fix say
    in one line that the home is read-only (no OSError traceback about ingest.lock)."""
    import shutil

    from _servers import read_only

    copy = tmp_path / "ro-home"
    shutil.copytree(home, copy)
    query = read_only(copy, "query", "how do keepers detect dark stations", "-k", "1")
    assert query.returncode == 0 and query.stdout.startswith("1. Lighthouse"), query.stderr
    assert read_only(copy, "papers").returncode == 0
    doctor = read_only(copy, "doctor")
    assert "Traceback" not in doctor.stderr + doctor.stdout and "read-only" not in doctor.stdout
    from conftest import write_small_papers

    pdfs = write_small_papers(tmp_path / "pdfs", ["orchard"])
    for args in (("ingest", "--from", str(pdfs["orchard"])), ("doctor", "--fix")):
        result = read_only(copy, *args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith(f"Error: the data home {copy} is read-only"), result.stderr
        assert result.stderr.count("\n") == 1
