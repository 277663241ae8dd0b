"""The citation graph: references and citing sentences stored with their paper (in the cache and
in Chroma, the store of record), and the questions asked of them (refs, cited-by, path, graph,
papers) through the CLI. The papers are made PDFs that cite each other (tests/citeweb.py); the
embedder is the stub (real tokenizer, hashed vectors): the graph does not rank."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pdfmaker import make_pdf

from ddsearch.catalog import load_catalog
from ddsearch.cli import main
from ddsearch.config import Settings
from ddsearch.index.store import Store
from ddsearch.ingest.pipeline import ingest

sys.path.insert(0, str(Path(__file__).parent))
from _crashdriver import StubEmbedder  # noqa: E402
from citeweb import BODIES, PAPERS, write_web  # noqa: E402


@pytest.fixture(scope="module")
def web(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(home, catalog, pdfs) with alpha, beta, gamma and delta ingested. Shared: read only."""
    root = tmp_path_factory.mktemp("web")
    pdfs, catalog = write_web(root)
    home = root / "home"
    report = ingest(Settings(home=home), load_catalog(catalog), [pdfs], embedder=StubEmbedder())
    assert report.ok and len(report.of("ingested")) == 4, report
    return home, catalog, pdfs


def _copy(web, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(web[0], home)
    return home


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def cli(web, *args: str, code: int = 0, home: Path | None = None) -> str:
    return run("--home", home or web[0], *args, "--catalog", web[1], code=code)


def _references(store: Store) -> dict:
    return {pid: store.references(pid) for pid in sorted(store.records())}


# ---------------------------------------------------------------- stored with the paper
def test_references_are_stored_in_the_cache_and_in_chroma_alike(web):
    store = Store(web[0], readonly=True)
    cached = _references(store)
    manifest = store.chroma.manifest()
    recorded = {rows.record.paper.id: rows.references
                for _, rows in store.chroma.read(manifest, list(manifest))}  # fmt: skip
    store.close()
    assert cached == recorded
    assert cached["delta"] == ()  # read, and no list found: not the None of "never read"
    gamma = {r.label: r for r in cached["gamma"]}
    assert {k: r.id for k, r in gamma.items()} == {"[1]": "beta", "[2]": "alpha", "[3]": "omega"}
    lease = [(c.text, c.pages) for c in gamma["[2]"].cited]
    assert lease == [
        ("Each shard is a replicated log whose leader holds a quorum lease [2].", (1,)),
        ("Leases [2] cut the latency of reads by half in our measurements of the ledger.", (2,)),
    ]
    assert [r.id for r in cached["alpha"]] == [None]  # Gray's notes: not a paper we know


def test_a_cache_made_again_from_chroma_has_the_same_edges(web, tmp_path):
    home = _copy(web, tmp_path)
    before = _references(Store(home, readonly=True))
    for name in ("index.db", "index.db-wal", "index.db-shm", "postings.npz"):
        (home / name).unlink(missing_ok=True)
    Store(home).close()  # a writer without a cache takes every paper from Chroma
    store = Store(home, readonly=True)
    assert _references(store) == before
    assert store.citation_edges() == [("beta", "alpha"), ("gamma", "alpha"), ("gamma", "beta"),
                                      ("gamma", "omega")]  # fmt: skip
    store.close()


def test_reingest_replaces_a_papers_edges_whole(web, tmp_path):
    home = _copy(web, tmp_path)
    pdfs = tmp_path / "pdfs"
    shutil.copytree(web[2], pdfs)
    body = BODIES["gamma"]
    kept = [[ln for ln in page if "Omega" not in ln and "offshore" not in ln] for page in body]
    make_pdf(pdfs / "gamma.pdf", kept, title=PAPERS["gamma"][0])
    report = ingest(Settings(home=home), load_catalog(web[1]), [pdfs / "gamma.pdf"],
                    embedder=StubEmbedder())  # fmt: skip
    assert [o.status for o in report.outcomes] == ["ingested"]
    store = Store(home, readonly=True)
    assert [r.id for r in store.references("gamma")] == ["beta", "alpha"]
    assert store.citers("omega") == []
    db = sqlite3.connect(home / "index.db")
    counts = db.execute("SELECT (SELECT count(*) FROM reference_entries WHERE paper_id='gamma'),"
                        " (SELECT count(*) FROM citing_sentences WHERE paper_id='gamma')"
                        ).fetchone()  # fmt: skip
    db.close()
    assert counts == (2, 3)  # nothing of the old list is left beside the new one
    manifest = store.chroma.manifest()
    ((_, rows),) = store.chroma.read(manifest, ["gamma"])
    assert rows.references == store.references("gamma")
    store.close()


def test_a_chroma_server_home_gets_the_edges_and_so_does_every_home_caching_it(web, tmp_path):
    from _servers import chroma_executable, chroma_server

    if chroma_executable() is None:
        pytest.skip("no chroma executable")
    with chroma_server(tmp_path / "chroma") as url:
        first = tmp_path / "first"
        report = ingest(Settings(home=first, chroma_url=url), load_catalog(web[1]), [web[2]],
                        embedder=StubEmbedder())  # fmt: skip
        assert report.ok
        out = run("--home", tmp_path / "second", "--chroma-url", url, "cited-by", "alpha",
                  "--json", "--catalog", web[1])  # fmt: skip
        assert [e["id"] for e in json.loads(out)] == ["beta", "gamma"]
        local = Store(web[0], readonly=True)
        remote = Store(tmp_path / "second", readonly=True, chroma_url=url)
        assert _references(remote) == _references(local)
        remote.close()
        local.close()


# ---------------------------------------------------------------- refs
def test_refs_lists_the_known_papers_cited_with_their_sentences(web):
    doc = json.loads(cli(web, "refs", "gamma", "--json"))
    assert [(e["id"], e["label"]) for e in doc] == [("beta", "[1]"), ("alpha", "[2]"),
                                                    ("omega", "[3]")]  # fmt: skip
    alpha = doc[1]
    assert alpha["reference"].startswith("A. Arbor and B. Brook. Alpha: Quorum leases")
    first = alpha["citations"][0]
    assert first["quote"] == "Each shard is a replicated log whose leader holds a quorum lease [2]."
    assert (first["page"], first["page_label"]) == (1, "PDF p. 1")
    assert first["link"].endswith("gamma.pdf#page=1")
    assert [c["page"] for c in alpha["citations"]] == [1, 2]
    text = cli(web, "refs", "Gamma")  # ids in any case, as cite takes them
    assert "gamma cites 3 known paper(s) of the 3 entries" in text
    assert "[3] omega (catalog, not ingested):" in text
    assert 'PDF p. 2: "Leases [2] cut the latency' in text


def test_refs_all_lists_the_entries_naming_no_known_paper(web):
    assert json.loads(cli(web, "refs", "alpha", "--json")) == []
    doc = json.loads(cli(web, "refs", "alpha", "--all", "--json"))
    assert [(e["id"], e["label"]) for e in doc] == [(None, "[1]")]
    assert "Gray [1]" in doc[0]["citations"][0]["quote"]
    text = cli(web, "refs", "alpha")
    assert "alpha cites 0 known paper(s) of the 1 entries of its reference list; --all" in text
    assert "[1] (not in the catalog): J. Gray." in cli(web, "refs", "alpha", "--all")


def test_a_paper_without_a_reference_list_says_so(web):
    out = cli(web, "refs", "delta", code=1)
    assert out.strip() == "Error: delta: no reference list found in its PDF"
    cli(web, "refs", "delta", "--json", code=1)  # never an empty success
    cli(web, "path", "delta", code=1)


@pytest.mark.parametrize("command", ["refs", "cited-by", "path"])
def test_an_unknown_id_is_one_line_naming_the_nearest(web, command):
    out = cli(web, command, "gamm", code=1)
    assert len(out.strip().splitlines()) == 1
    assert "gamm (closest: gamma" in out


def test_a_catalog_paper_not_ingested_has_no_list_to_show(web):
    out = cli(web, "refs", "omega", code=1)
    assert "omega is in the catalog but not in the collection" in out


# ---------------------------------------------------------------- cited-by
def test_cited_by_lists_the_citing_papers_with_their_sentences(web):
    doc = json.loads(cli(web, "cited-by", "alpha", "--json"))
    assert [(e["id"], e["label"]) for e in doc] == [("beta", "[1]"), ("gamma", "[2]")]
    beta = doc[0]["citations"][0]
    assert beta["quote"].startswith("We keep the membership list in a replicated log")
    assert beta["paper"] == "beta" and beta["page_label"] == "PDF p. 1"
    assert "alpha is cited by 2 paper(s) of the collection" in cli(web, "cited-by", "alpha")
    # a catalog paper outside the collection is cited too
    assert [e["id"] for e in json.loads(cli(web, "cited-by", "omega", "--json"))] == ["gamma"]
    assert "no paper of the collection cites delta" in cli(web, "cited-by", "delta")
    assert json.loads(cli(web, "cited-by", "delta", "--json")) == []


@pytest.mark.skipif(shutil.which("pandoc") is None, reason="pandoc not installed")
def test_cited_by_exports_notes_that_pandoc_builds(web, tmp_path):
    notes, bib = tmp_path / "notes.md", tmp_path / "notes.bib"
    run("--home", web[0], "cited-by", "alpha", "--export", notes, "--export", bib,
        "--catalog", web[1])  # fmt: skip
    markdown = notes.read_text()
    assert markdown.startswith("# Cited by: Alpha: Quorum Leases for Replicated Logs")
    assert "> We keep the membership list in a replicated log with quorum leases \\[1\\]." in (
        markdown
    )
    proc = subprocess.run(["pandoc", "--citeproc", "--bibliography", bib.name, notes.name,
                           "-t", "plain", "--wrap=none"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0 and "[WARNING]" not in proc.stderr, proc.stderr
    out = proc.stdout.replace("\xa0", " ")
    assert "(Cole 2011, PDF p. 1)" in out
    assert "(Dale and Eden 2014, PDF p. 2)" in out
    # an existing file is kept unless --force
    again = run("--home", web[0], "cited-by", "alpha", "--export", notes, "--catalog", web[1],
                code=1)  # fmt: skip
    assert "exists" in again
    run("--home", web[0], "cited-by", "alpha", "--export", tmp_path / "x.pdf",
        "--catalog", web[1], code=2)  # fmt: skip


# ---------------------------------------------------------------- path
def test_path_orders_prerequisites_first_with_the_sentences_saying_why(web):
    doc = json.loads(cli(web, "path", "gamma", "--json"))
    assert [s["id"] for s in doc] == ["alpha", "beta", "gamma"]
    assert [s["target"] for s in doc] == [False, False, True]
    assert doc[0]["dependents"] == ["beta", "gamma"]
    why = doc[0]["reasons"][0]  # the target's own sentence first
    assert why["id"] == "gamma" and why["label"] == "[2]"
    assert why["citations"][0]["quote"].startswith("Each shard is a replicated log")
    assert doc[1]["reasons"][0]["citations"][0]["quote"].startswith("Shard membership spreads")
    assert [s["id"] for s in json.loads(cli(web, "path", "beta", "--json"))] == ["alpha", "beta"]
    shallow = json.loads(cli(web, "path", "gamma", "--depth", "1", "--json"))
    assert [s["id"] for s in shallow] == ["alpha", "beta", "gamma"]
    text = cli(web, "path", "gamma")
    assert re.search(r"^1\. alpha \(2008\) Alpha: Quorum Leases .*\[2 of these build on it\]$",
                     text, re.M)  # fmt: skip
    assert 'gamma, PDF p. 1: "Each shard is a replicated log' in text
    assert re.search(r"^3\. gamma \(2014\) .*\[what you asked for\]$", text, re.M)


def test_path_of_several_papers_reads_each_prerequisite_once(web):
    doc = json.loads(cli(web, "path", "beta", "gamma", "--json"))
    assert [s["id"] for s in doc] == ["alpha", "beta", "gamma"]
    assert [s["target"] for s in doc] == [False, True, True]


# ---------------------------------------------------------------- papers, graph
def test_papers_shows_cites_and_cited_by(web):
    rows = {r["id"]: r for r in json.loads(cli(web, "papers", "--json"))}
    assert (rows["gamma"]["cites"], rows["gamma"]["cited_by"]) == (2, 0)
    assert (rows["alpha"]["cites"], rows["alpha"]["cited_by"]) == (0, 2)
    assert (rows["omega"]["cites"], rows["omega"]["cited_by"]) == (None, 1)
    assert (rows["delta"]["cites"], rows["delta"]["cited_by"]) == (0, 0)
    text = cli(web, "papers")
    assert re.search(r"^beta\s+2011\s+indexed\s+\d+\s+1\s+1\s+Beta:", text, re.M)


def test_graph_json_has_the_collections_edges(web):
    doc = json.loads(cli(web, "graph", "--format", "json"))
    assert [n["id"] for n in doc["nodes"]] == ["alpha", "beta", "delta", "gamma"]
    edges = {(e["source"], e["target"]): e["sentences"] for e in doc["edges"]}
    assert edges == {("beta", "alpha"): 1, ("gamma", "alpha"): 2, ("gamma", "beta"): 1}


# ---------------------------------------------------------------- a home of before
def test_a_home_without_references_says_so_and_the_next_ingest_reads_them(web, tmp_path):
    """A home whose papers were ingested before ddsearch read reference lists: its manifest
    rows carry none and migration 4's tables are empty (as migration 4 leaves a home of
    schema 3). Nothing pretends; the next ingest reads the lists without embedding again."""
    home = _copy(web, tmp_path)
    store = Store(home)
    for pid in sorted(store.records()):
        rows = store.paper_rows(pid)
        store.replace_paper(rows.record, rows.chunks, rows.vectors, rows.model,
                            rows.sentence_vectors, None)  # fmt: skip
    vectors = {pid: store.paper_rows(pid).vectors.tobytes() for pid in store.records()}
    store.close()
    out = cli(web, "refs", "gamma", home=home, code=1)
    assert "gamma was ingested before ddsearch read reference lists" in out
    assert "run 'ddsearch ingest'" in out
    result = CliRunner().invoke(main, ["--home", str(home), "cited-by", "alpha", "--catalog",
                                       str(web[1])])  # fmt: skip
    assert result.exit_code == 0
    assert "note: 4 paper(s) were ingested before ddsearch read reference lists" in result.output
    assert "cites '?': 4 paper(s)" in cli(web, "papers", home=home)
    from ddsearch.doctor import diagnose

    found = diagnose(Settings(home=home))
    notes = [f.message for f in found.findings if "before ddsearch read reference" in f.message]
    assert found.ok and notes == ["4 paper(s) ingested before ddsearch read reference lists: "
                                  "alpha, beta, delta, gamma"]  # fmt: skip
    report = ingest(Settings(home=home), load_catalog(web[1]), [web[2]], embedder=StubEmbedder())
    assert {(o.status, o.reason) for o in report.outcomes} == {("updated", "reference list read")}
    store = Store(home, readonly=True)
    assert {pid: store.paper_rows(pid).vectors.tobytes() for pid in store.records()} == vectors
    assert _references(store) == _references(Store(web[0], readonly=True))
    store.close()
    again = ingest(Settings(home=home), load_catalog(web[1]), [web[2]], embedder=StubEmbedder())
    assert {o.status for o in again.outcomes} == {"skipped"}


def test_graph_dot_reads_back_with_pydot(web):
    import pydot

    (graph,) = pydot.graph_from_dot_data(cli(web, "graph", "--format", "dot"))
    nodes = {n.get_name().strip('"') for n in graph.get_nodes()} - {"node"}
    assert nodes == {"alpha", "beta", "gamma", "delta"}
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')): int(e.get("weight"))
             for e in graph.get_edges()}  # fmt: skip
    assert edges == {("beta", "alpha"): 1, ("gamma", "alpha"): 2, ("gamma", "beta"): 1}
    alpha = graph.get_node('"alpha"')[0]
    assert alpha.get("tooltip").strip('"') == PAPERS["alpha"][0]


# ---------------------------------------------------------------- serve and MCP
def test_serve_answers_refs_cited_by_path_and_graph(web):
    import urllib.error
    import urllib.request

    from _servers import ddsearch_server

    from ddsearch.serve.schemas import ReadingStep, ReferenceEntry

    def get(url: str) -> tuple[int, str, str]:
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                return r.status, r.headers["Content-Type"], r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers["Content-Type"], e.read().decode()

    with ddsearch_server(web[0], "--catalog", str(web[1])) as url:
        status, _, body = get(f"{url}/refs/gamma")
        assert status == 200
        assert json.loads(body) == json.loads(cli(web, "refs", "gamma", "--json"))
        for entry in json.loads(body):
            ReferenceEntry.model_validate(entry)
        status, _, body = get(f"{url}/cited-by/alpha")
        assert [e["id"] for e in json.loads(body)] == ["beta", "gamma"]
        status, _, body = get(f"{url}/path?id=gamma")
        steps = [ReadingStep.model_validate(s) for s in json.loads(body)]
        assert [s.id for s in steps] == ["alpha", "beta", "gamma"]
        status, kind, body = get(f"{url}/graph?format=dot")
        assert status == 200 and kind.startswith("text/vnd.graphviz")
        assert '"gamma" -> "alpha"' in body
        status, _, body = get(f"{url}/refs/delta")
        assert status == 404 and "no reference list found" in json.loads(body)["error"]["message"]
        status, _, body = get(f"{url}/refs/gamm")
        assert status == 404 and "closest: gamma" in body
        assert get(f"{url}/path")[0] == 400
        assert get(f"{url}/refs/gamma?x=1")[0] == 400
        doc = json.loads(get(f"{url}/openapi.json")[2])
        assert {"/refs/{id}", "/cited-by/{id}", "/path", "/graph"} <= set(doc["paths"])
        status, _, page = get(f"{url}/?q=quorum+leases")
        assert status == 200
        assert 'href="/refs/' in page and 'href="/cited-by/' in page


def test_mcp_tools_refs_cited_by_and_path(web):
    import os

    import anyio
    from _servers import REPO
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "ddsearch.cli", "--home", str(web[0]), "mcp", "--catalog", str(web[1])],
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )

    async def talk():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
            calls = [("refs", {"paper": "gamma"}), ("cited_by", {"paper": "alpha"}),
                     ("path", {"papers": ["gamma"]}), ("refs", {"paper": "delta"}),
                     ("refs", {"paper": "alpha", "all": True})]  # fmt: skip
            return tools, [await session.call_tool(n, a) for n, a in calls]

    tools, (refs, cited, path, none, every) = anyio.run(talk)
    assert {"refs", "cited_by", "path"} <= set(tools)
    assert refs.structured_content["references"] == json.loads(cli(web, "refs", "gamma", "--json"))
    assert [e["id"] for e in cited.structured_content["cited_by"]] == ["beta", "gamma"]
    assert [s["id"] for s in path.structured_content["path"]] == ["alpha", "beta", "gamma"]
    assert none.is_error and "no reference list found" in none.content[0].text
    assert [e["id"] for e in every.structured_content["references"]] == [None]


# ---------------------------------------------------------------- the real papers
@pytest.mark.integration
def test_the_real_papers_graph(shared_papers, tmp_path):
    """Raft, Paxos Made Simple, Chubby and ZooKeeper from ../shared: the edges between them,
    each with its sentence and page, and a reading order for Raft."""
    sources = [shared_papers / f"{p}.pdf" for p in ("raft", "paxos-simple", "chubby", "zookeeper")]
    home = tmp_path / "home"
    report = ingest(Settings(home=home), load_catalog(), sources, embedder=StubEmbedder())
    assert report.ok, report
    refs = {e["id"]: e for e in json.loads(run("--home", home, "refs", "raft", "--json"))}
    assert {"paxos-simple", "chubby", "zookeeper", "part-time-parliament"} <= set(refs)
    chubby = refs["chubby"]["citations"][0]
    assert (chubby["page"], chubby["page_label"]) == (2, "p. 2")
    assert "Chubby [2] and ZooKeeper [11]" in chubby["quote"]
    cited = json.loads(run("--home", home, "cited-by", "chubby", "--json"))
    assert [e["id"] for e in cited] == ["raft", "zookeeper"]
    order = [s["id"] for s in json.loads(run("--home", home, "path", "raft", "--json"))]
    assert order == ["paxos-simple", "chubby", "zookeeper", "raft"]
    assert "paxos-simple" in run("--home", home, "cited-by", "paxos-simple")
