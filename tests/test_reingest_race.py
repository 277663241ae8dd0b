"""A search while the last paper is re-ingested: a rowid the index gives to a new chunk must
never show the new chunk's text with the old chunk's score (a long-lived Searcher keeps the
vectors it read; serve answers between ingest commits)."""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request

import pytest
from conftest import SMALL_PAPERS, write_small_papers
from pdfmaker import make_pdf

from ddsearch.catalog import load_catalog
from ddsearch.config import Settings
from ddsearch.index.embed import Embedder
from ddsearch.index.store import Store
from ddsearch.ingest.pipeline import ingest
from ddsearch.search.rank import canonical
from ddsearch.search.searcher import Searcher

QUESTION = "how are apple trees assigned to pickers on the circle?"
LAST = "orchard"  # ingested last, so its rows hold the highest rowids


def _version_b(folder):
    """The last paper again, with other words: new chunk ids, and the same rowids once its old
    rows are deleted (SQLite hands out max(rowid) + 1)."""
    title, pages = SMALL_PAPERS[LAST]
    swap = {"apple": "pear", "Apple": "Pear", "picker": "gatherer", "tree": "vine"}
    changed = []
    for page in pages:
        lines = []
        for line in page:
            for a, b in swap.items():
                line = line.replace(a, b)
            lines.append(line)
        changed.append(lines)
    return make_pdf(folder / f"{LAST}.pdf", changed, title=title)


def _rows(home):
    store = Store(home, readonly=True)
    try:
        rowids, matrix, owners, ids = store.vectors()
        texts = store.chunks(rowids.tolist())
        return {ids[i]: (int(r), texts[int(r)].text, matrix[i]) for i, r in enumerate(rowids)}
    finally:
        store.close()


def test_a_rowid_reused_by_a_reingest_never_pairs_text_and_score(tmp_path, embedder):
    catalog = load_catalog()
    pdfs = write_small_papers(tmp_path / "a", list(SMALL_PAPERS))
    home = tmp_path / "home"
    assert ingest(Settings(home=home), catalog, [pdfs[p] for p in SMALL_PAPERS], embedder=embedder)
    searcher = Searcher(home, embedder=embedder, catalog=catalog)
    searcher.search(QUESTION)  # the vectors are read now
    before = _rows(home)
    assert ingest(Settings(home=home), catalog, [_version_b(tmp_path / "b")], embedder=embedder)
    after = _rows(home)
    reused = {r for r, _, _ in after.values()} & {r for r, _, _ in before.values()}
    moved = [i for i, (r, _, _) in after.items() if i not in before and r in reused]
    assert moved, "the re-ingest did not reuse a rowid: the test shows nothing"

    hits = searcher.search(QUESTION, k=10, mode="dense")  # no refresh() in between
    query = searcher.encode_query(canonical(QUESTION))  # what the rankers embed
    assert hits
    for h in hits:
        for part in h.parts:  # a hit may be merged from neighbours; the first scored it
            assert part.id in after  # only chunks that exist now, with their own text
            assert part.text == after[part.id][1]
        vector = after[h.parts[0].id][2]
        assert h.scores["dense"] == pytest.approx(float(vector @ query), abs=1e-5)
    searcher.store.close()


@pytest.mark.integration
def test_serve_answers_while_the_last_paper_is_reingested(tmp_path, embedder):
    """Every answer pairs a passage of one version with a score of that same version."""
    from _servers import ddsearch_server

    catalog = load_catalog()
    a = write_small_papers(tmp_path / "a", list(SMALL_PAPERS))
    b = _version_b(tmp_path / "b")
    home = tmp_path / "home"
    assert ingest(Settings(home=home), catalog, list(a.values()), embedder=embedder)
    versions = {"a": _rows(home)}
    assert ingest(Settings(home=home), catalog, [b], embedder=embedder)
    versions["b"] = _rows(home)
    query = Embedder(stamp_dir=home).encode([canonical(QUESTION)])[0]
    cosines = {v: {round(float(m @ query), 4) for _, _, m in rows.values()}
               for v, rows in versions.items()}  # fmt: skip

    stop, errors = threading.Event(), []

    def reingest():
        flip = 0
        while not stop.is_set():
            pdf = a[LAST] if flip % 2 == 0 else b
            ingest(Settings(home=home), catalog, [pdf], embedder=embedder)
            flip += 1

    with ddsearch_server(home) as url:
        worker = threading.Thread(target=reingest)
        worker.start()
        try:
            for _ in range(60):
                q = urllib.parse.urlencode({"q": QUESTION, "k": 5, "mode": "dense"})
                with urllib.request.urlopen(f"{url}/search?{q}", timeout=60) as response:
                    assert response.status == 200
                    doc = json.load(response)
                for r in doc["results"]:
                    if r["paper"] != LAST:
                        continue
                    version = "b" if "gatherer" in r["text"] or "vine" in r["text"] else "a"
                    score = round(r["scores"]["dense"], 4)
                    if not any(abs(score - c) < 2e-4 for c in cosines[version]):
                        errors.append((version, score, r["text"][:80]))
        finally:
            stop.set()
            worker.join()
    assert not errors, errors
