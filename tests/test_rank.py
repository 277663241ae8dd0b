"""Paper diversity: list questions see each paper's best hit first; others keep their top 5."""

from ddsearch.search.rank import asks_for_many_papers, diversify, unwrapped


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


def test_a_request_around_the_question_is_taken_off():
    for typed, asked in [
        ("Can you tell me how Raft elects a leader?", "how Raft elects a leader?"),
        ("Hi, could you please explain to me why GFS uses a single master?",
         "why GFS uses a single master?"),
        ("Explain: in Google's lock service, how are locks released?",
         "in Google's lock service, how are locks released?"),
        ("Tell me about Dynamo's hinted handoff", "Dynamo's hinted handoff"),
        ("I'd like to know whether Chubby caches files", "Chubby caches files"),
        ("Quick question: how big are GFS chunks?", "how big are GFS chunks?"),
        ("Do you know how Zab recovers a new leader?", "how Zab recovers a new leader?"),
        # a sentence that only says which system becomes a label
        ("I'm reading about Google's lock service. How long is a lease?",
         "Google's lock service: How long is a lease?"),
        ("Quick question about GFS; why one master?", "GFS: why one master?"),
    ]:  # fmt: skip
        assert unwrapped(typed) == asked, typed
    # questions that only look like one: kept as typed
    for typed in (
        "Can you update several rows atomically in Bigtable?",
        "About how many machines does Borg manage?",
        "On average, how many items does a page fetch?",
        "Show that consensus is impossible with one faulty process",
        "Explain",  # nothing else left
        "I'm reading the Raft paper and wonder why terms exist",  # no sentence of its own
    ):
        assert unwrapped(typed) == typed
