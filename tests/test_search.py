"""Search through the library's public API: Searcher over a real index of the made-up papers
(the real model), its settings, its checks, and the lexical ranking with and without postings."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from ddsearch.catalog import load_catalog
from ddsearch.config import QuerySettings, SearchSettings
from ddsearch.errors import QueryError
from ddsearch.index.postings import FILE
from ddsearch.index.store import IndexError_, Store
from ddsearch.models import Respelling
from ddsearch.search.searcher import Searcher


@pytest.fixture(scope="module")
def searcher(indexed_home, embedder):
    s = Searcher(indexed_home, embedder=embedder)
    yield s
    s.store.close()


@pytest.fixture(scope="module")
def without_postings(indexed_home, embedder, tmp_path_factory):
    """A searcher over a copy of the index without its saved postings: FTS5 ranks."""
    home = tmp_path_factory.mktemp("no-postings") / "home"
    shutil.copytree(indexed_home, home)
    (home / FILE).unlink()
    s = Searcher(home, embedder=embedder)
    yield s
    s.store.close()


@pytest.mark.parametrize(
    "question, paper, page",
    [
        ("How often does each keeper light a beacon?", "lighthouse", 2),
        ("What happened to false suspicions in the fog?", "lighthouse", 3),
        ("How many clerks must copy a sale before the write succeeds?", "ledger", 2),
        ("How many trees moved when a tenth picker was added?", "orchard", 3),
    ],
)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_search_finds_the_page(searcher, question, paper, page, mode):
    hits = searcher.search(question, k=3, mode=mode)
    assert hits and hits[0].paper.id == paper
    assert page in hits[0].chunk.pages
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(hits[i].score >= hits[i + 1].score for i in range(len(hits) - 1))


def test_search_filters_and_quotes(searcher):
    hits = searcher.search("beacon gossip keepers", k=5, papers=["Orchard"])  # any case
    assert hits and {h.paper.id for h in hits} == {"orchard"}
    hits = searcher.search("How many clerks must copy a sale?", k=2)
    searcher.add_quotes("How many clerks must copy a sale?", hits)
    for hit in hits:
        assert hit.quote and hit.chunk.text[hit.quote_span[0] : hit.quote_span[1]] == hit.quote
    answer = [h for h in hits if "two of the three clerks" in h.chunk.text]
    assert answer, "the passage that answers is among the top 2"
    assert "two of the three clerks" in answer[0].quote  # and its quote is that sentence


def test_a_typing_slip_is_searched_as_the_word_the_papers_hold(searcher, indexed_home, embedder):
    right = searcher.search("How often does each keeper light a beacon?", k=3)
    typed = searcher.search("How often does each keeper light a beakon?", k=3)
    assert right.respelled == () and typed.respelled == (Respelling("beakon", "beacon"),)
    assert [h.chunk.id for h in typed] == [h.chunk.id for h in right]
    assert searcher.search("beakon", k=3, mode="lexical").respelled  # every mode reads it so
    # its quotes are read for the word searched, too
    searcher.add_quotes("How often does each keeper light a beakon?", typed)
    assert "ninety seconds" in typed[0].quote
    # the question is read once, however it is padded (search strips it; a caller may not)
    assert searcher.read("  a beakon? ") is searcher.read("a beakon?")
    knobs = SearchSettings(respell=False)
    as_typed = Searcher(indexed_home, embedder=embedder, settings=knobs)
    found = as_typed.search("beakon", k=3, mode="lexical")
    assert found.respelled == () and len(found) == 0
    as_typed.store.close()


def test_a_word_an_ingest_brings_is_respelled_to_after_a_refresh(tmp_path, embedder):
    from conftest import write_small_papers

    from ddsearch.config import Settings
    from ddsearch.ingest.pipeline import ingest

    pdfs = write_small_papers(tmp_path / "pdfs")
    home, catalog = tmp_path / "home", load_catalog()
    assert ingest(Settings(home=home), catalog, [pdfs["lighthouse"]], embedder=embedder).ok
    s = Searcher(home, embedder=embedder)
    assert s.search("pickres", k=1, mode="lexical").respelled == ()  # no paper holds pickers
    assert ingest(Settings(home=home), catalog, [pdfs["orchard"]], embedder=embedder).ok
    assert s.refresh()
    found = s.search("pickres", k=1, mode="lexical")
    assert found.respelled == (Respelling("pickres", "pickers"),) and found[0].paper.id == "orchard"
    s.store.close()


def test_written_says_whether_a_passage_holds_the_word_as_spelled(searcher):
    assert searcher.store.written("Beacon") and searcher.store.written("beacons")
    assert not searcher.store.written("beaco")  # inside a word only
    assert not searcher.store.written("beakon")


def test_results_say_whether_they_match_weakly(searcher):
    assert searcher.search("how often does a keeper light a beacon?").weak_match is False
    assert searcher.search("zebra quantum marmalade xylophone").weak_match is True


@pytest.mark.parametrize(
    "query, papers",
    [("keeper beacon fog", None), ("clerks copy sale ledger", None),
     ("keeper trees picker", {"orchard"})],
)  # fmt: skip
def test_lexical_ranking_from_postings_is_fts5s(searcher, without_postings, query, papers):
    searcher.warm()  # postings in memory
    fast = searcher.lexical(query, 50, papers)
    assert fast and fast == without_postings.lexical(query, 50, papers)
    assert not (without_postings.store.home / FILE).exists()  # it ranked with FTS5


def test_postings_saved_meanwhile_give_the_same_ranking(without_postings):
    before = without_postings.search("keeper beacon fog", k=5, mode="lexical")
    store = Store(without_postings.store.home)  # what an ingest does when it ends
    store.postings(build=True)
    store.close()
    after = without_postings.search("keeper beacon fog", k=5, mode="lexical")
    assert [(h.chunk.id, h.score) for h in after] == [(h.chunk.id, h.score) for h in before]
    (without_postings.store.home / FILE).unlink()


def test_list_questions_lean_on_the_lexical_ranking(searcher, monkeypatch):
    rowids, _, owners, _ = searcher.store.vectors()
    first = {}
    for r, o in zip(rowids, owners):
        first.setdefault(o, int(r))
    a, b, c = first["lighthouse"], first["ledger"], first["orchard"]
    # dense prefers a, lexical b: at the default share a wins, with less weight on dense b does
    # (the fixed weights' fusion; the fitted models read the real runs, not these stand-ins)
    fixed = dataclasses.replace(searcher.settings, fusion=False)
    monkeypatch.setattr(searcher, "settings", fixed)
    monkeypatch.setattr(searcher, "dense", lambda *_: [(a, 1.0), (c, 0.5), (b, 0.0)])
    monkeypatch.setattr(searcher, "lexical", lambda *_: [(b, 1.0), (a, 0.7), (c, 0.0)])
    assert searcher.search("Where do keepers light beacons?", k=1)[0].paper.id == "lighthouse"
    assert searcher.search("Which papers light beacons?", k=1)[0].paper.id == "ledger"


def test_search_errors_are_the_shared_checks(searcher):
    for bad in ("", "   "):
        with pytest.raises(QueryError, match="the query is empty: give words to search for"):
            searcher.search(bad)
    with pytest.raises(QueryError, match="has no words to search for"):
        searcher.search("?! …")
    for k in (0, -1, 101, True):
        with pytest.raises(QueryError, match="k must be an integer from 1 to 100"):
            searcher.search("beacon", k=k)
    with pytest.raises(QueryError, match="unknown mode 'magic': choose one of hybrid"):
        searcher.search("beacon", mode="magic")
    with pytest.raises(QueryError, match="not in the index: nope"):
        searcher.search("beacon", papers=["nope"])
    with pytest.raises(QueryError, match="longer than 1000 characters"):
        searcher.search("beacon " * 200)
    assert searcher.search("the of and", mode="lexical") == []  # only stopwords


def test_the_limits_are_the_settings(indexed_home, embedder):
    narrow = Searcher(indexed_home, embedder=embedder, limits=QuerySettings(max_k=3, k=2,
                      assistant_k=2, max_chars=20))  # fmt: skip
    assert len(narrow.search("keepers and beacons")) == 2
    with pytest.raises(QueryError, match="from 1 to 3"):
        narrow.search("beacon", k=4)
    with pytest.raises(QueryError, match="longer than 20"):
        narrow.search("how do the keepers gossip about dark stations?")
    narrow.store.close()


def test_an_unknown_paper_of_the_catalog_says_how_to_ingest_it(indexed_home, embedder):
    s = Searcher(indexed_home, embedder=embedder, catalog=load_catalog())
    with pytest.raises(QueryError, match="not in the index: Raft .*run 'ddsearch ingest raft'"):
        s.search("leader election", papers=["Raft"])
    s.store.close()


def test_the_searcher_ranks_by_its_settings(indexed_home, embedder):
    q = "how often does a Lighthouse keeper light a beacon?"
    plain = Searcher(indexed_home, embedder=embedder, catalog=load_catalog())
    assert {"f_paper", "f_section", "f_sentence"} <= set(plain.search(q)[0].scores)  # fitted
    assert not plain.search(q).weak_match
    fixed = SearchSettings(fusion=False)
    weighed = Searcher(indexed_home, embedder=embedder, catalog=load_catalog(), settings=fixed)
    assert {"named", "section", "best_sentence"} <= set(weighed.search(q)[0].scores)
    off = SearchSettings(named_weight=0, section_weight=0, sentence_weight=0, fusion=False)
    bare = Searcher(indexed_home, embedder=embedder, catalog=load_catalog(), settings=off)
    assert set(bare.search(q)[0].scores) == {"dense", "lexical", "dense_norm", "lexical_norm"}
    strict = Searcher(indexed_home, embedder=embedder, settings=SearchSettings(weak_dense=0.99))
    assert strict.search(q).weak_match
    for s in (plain, weighed, bare, strict):
        s.store.close()


def test_heading_evidence_ranks_without_sentence_evidence(indexed_home, embedder):
    """Each re-ranking signal counts on its own: with the sentence weight at 0, a heavy heading
    weight still puts the passage whose heading holds the question's words first."""
    only = SearchSettings(sentence_weight=0, section_weight=5.0, fusion=False)
    s = Searcher(indexed_home, embedder=embedder, settings=only)
    hits = s.search("which pickers arrive for the harvest results?", k=5)
    assert "best_sentence" not in hits[0].scores
    assert hits[0].scores["section"] == max(h.scores.get("section", 0.0) for h in hits) > 0
    assert "Harvest Results" in hits[0].chunk.section
    for h in hits:  # each hit's score is the weighted sum of the evidence it shows
        n = h.scores
        want = only.dense_weight * n["dense_norm"] + (1 - only.dense_weight) * n["lexical_norm"]
        assert h.score == pytest.approx(want + 5.0 * n.get("section_norm", 0.0), abs=1e-5)
    s.store.close()


def test_bm25_column_weights_are_settings(indexed_home, embedder):
    """A title weight of 0 takes the title's words out of the lexical evidence."""
    title_only = "quorum ledger"  # the ledger paper's title words, not in its passages' text
    usual = Searcher(indexed_home, embedder=embedder)
    blind = Searcher(indexed_home, embedder=embedder, settings=SearchSettings(bm25_title=0.0))
    assert usual.lexical(title_only, 10) != blind.lexical(title_only, 10)
    for s in (usual, blind):
        s.store.close()


def test_query_with_another_model_is_refused(indexed_home, embedder):
    with pytest.raises(IndexError_, match="built with model .*all-MiniLM-L6-v2.*not 'other-model'"):
        Searcher(indexed_home, model="other-model", embedder=embedder)
    same = Searcher(indexed_home, model=embedder.name, embedder=embedder)
    same.store.close()


def test_missing_and_empty_indexes(tmp_path):
    with pytest.raises(IndexError_, match="no index in .*run 'ddsearch ingest' first"):
        Store(tmp_path / "nowhere", readonly=True)
    assert not (tmp_path / "nowhere").exists()  # a reader creates nothing
    with pytest.raises(IndexError_):
        Searcher(tmp_path / "nowhere")
    Store(tmp_path / "empty").close()  # a writer made the file, but nothing is indexed
    with pytest.raises(IndexError_, match="empty"):
        Searcher(tmp_path / "empty")


def test_chunks_kept_between_queries_answer_as_chunks_read_anew(indexed_home, embedder):
    """The searcher keeps the chunks it decoded; a bound of one chunk (read anew nearly every
    time) gives the same answers, query after query."""
    questions = ["How often does each keeper light a beacon?", "hinted entries for a clerk",
                 "How often does each keeper light a beacon?"]  # fmt: skip
    keeping = Searcher(indexed_home, embedder=embedder, catalog=load_catalog())
    anew = Searcher(indexed_home, embedder=embedder, catalog=load_catalog(),
                    settings=SearchSettings(kept_chunks=1))  # fmt: skip
    for q in questions:
        a, b = keeping.search(q, k=5), anew.search(q, k=5)
        keeping.add_quotes(q, a)
        anew.add_quotes(q, b)
        assert [(h.chunk.id, h.score, h.quote) for h in a] == [
            (h.chunk.id, h.score, h.quote) for h in b
        ]
    keeping.store.close()
    anew.store.close()
