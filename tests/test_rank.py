"""Paper diversity: list questions see each paper's best hit first; others keep their top 5."""

from ddsearch.search.rank import asks_for_many_papers, diversify


def test_list_questions_are_recognised():
    assert asks_for_many_papers("Which systems send some messages over UDP rather than TCP?")
    assert asks_for_many_papers("which papers evaluate their system under network partitions?")
    assert asks_for_many_papers("What storage systems checksum their logs?")
    assert asks_for_many_papers("In which papers does a lease bound clock skew?")
    assert asks_for_many_papers("Across the reading list, which protocols use leases?")
    assert asks_for_many_papers("List the storage systems that checksum their data.")
    assert not asks_for_many_papers("Which system does Chubby replace?")
    assert not asks_for_many_papers("In which system is the tail the read path?")
    assert not asks_for_many_papers("Name the component that assigns tablets in Bigtable.")
    assert not asks_for_many_papers("How does Raft elect a leader?")
    assert not asks_for_many_papers("How can a company tell which services depend on others?")


def test_diversify_keeps_the_head_and_defers_repeats():
    ranked = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "b1", "c1"]
    out = diversify(ranked, lambda x: x[0], free=5, per_paper=2)
    assert out[:5] == ranked[:5]  # the top stays as scored
    assert out[5:7] == ["b1", "c1"]  # then other papers get their turn
    assert sorted(out) == sorted(ranked)  # nothing is dropped


def test_one_per_paper_for_list_questions():
    ranked = ["a1", "a2", "b1", "a3", "c1", "b2"]
    assert diversify(ranked, lambda x: x[0], free=1, per_paper=1) == [
        "a1", "b1", "c1", "a2", "a3", "b2",
    ]  # fmt: skip
