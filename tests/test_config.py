"""One typed settings object: every knob has its default there and reaches what it turns."""

from __future__ import annotations

import dataclasses

import pytest

from ddsearch.catalog import load_catalog
from ddsearch.config import FetchPolicy, Limits, SearchSettings, Settings
from ddsearch.ingest.pipeline import ingest
from ddsearch.search.searcher import Searcher


def test_settings_hold_the_search_extraction_and_fetch_knobs(tmp_path):
    s = Settings(home=tmp_path)
    assert isinstance(s.search, SearchSettings) and s.search.dense_weight == 0.35
    assert isinstance(s.limits, Limits) and s.limits.max_pages == 2000
    assert isinstance(s.fetch, FetchPolicy) and s.fetch.retries == 3
    assert s.fetch.user_agent.startswith("ddsearch/")
    tuned = dataclasses.replace(s, search=dataclasses.replace(s.search, named_weight=0.0))
    assert tuned.search.named_weight == 0.0 and s.search.named_weight == 0.2  # frozen, copied


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


def test_extraction_limits_reach_ingest(tmp_path, small_pdfs, embedder):
    settings = Settings(home=tmp_path / "home", limits=Limits(max_pages=2))
    report = ingest(settings, load_catalog(), [small_pdfs["lighthouse"]], embedder=embedder)
    (outcome,) = report.outcomes
    assert outcome.status == "failed" and "3 pages, more than the limit of 2" in outcome.reason


def test_the_bundled_model_is_recorded_under_one_name():
    from ddsearch.config import DEFAULT_MODEL, Settings

    assert Settings(model="all-MiniLM-L6-v2").model == DEFAULT_MODEL
    assert Settings(model="my/other-model").model == "my/other-model"
