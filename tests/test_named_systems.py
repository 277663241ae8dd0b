"""Named systems on real papers: a question that names a system searches its paper, and one
that names several shows each one's best passage. Skips where ../shared/papers is absent."""

from __future__ import annotations

import pytest
from conftest import searcher_over

pytestmark = pytest.mark.integration

PAPERS = ("raft", "paxos-simple", "chubby", "zookeeper", "borg", "gfs")


@pytest.fixture(scope="module")
def searcher(tmp_path_factory, shared_papers, embedder):
    home = tmp_path_factory.mktemp("named") / "home"
    yield from searcher_over(home, shared_papers, embedder, PAPERS)


def test_the_readme_example_finds_the_leader_election_section(searcher):
    """ "Raft" names the paper, so the rest of the question ("elect a leader") decides among
    its passages, the section headings included: §5.2 Leader election is in the top 3."""
    hits = searcher.search("how does Raft elect a leader?", k=3)
    assert [h.paper.id for h in hits] == ["raft"] * 3
    assert any("Leader election" in (h.chunk.section or "") for h in hits), [
        h.chunk.section for h in hits
    ]
    assert hits[0].scores["named"] == 1.0 and "f_section" in hits[0].scores


def test_a_question_naming_several_systems_shows_each_ones_best_passage(searcher):
    hits = searcher.search("Compare how Chubby and ZooKeeper handle client sessions", k=5)
    assert {"chubby", "zookeeper"} <= {h.paper.id for h in hits[:2]}
    q = "How long does it take to notice a failed server in Chubby, ZooKeeper and Borg?"
    assert {h.paper.id for h in searcher.search(q, k=5)[:3]} == {"chubby", "zookeeper", "borg"}


def test_names_change_the_hybrid_ranking_only(searcher):
    for mode in ("dense", "lexical"):
        hits = searcher.search("how does Raft elect a leader?", k=5, mode=mode)
        assert not {"named", "section", "f_section"} & set(hits[0].scores)
