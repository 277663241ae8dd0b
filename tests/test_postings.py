"""In-memory postings: the same ranking as FTS5's bm25, from FTS5's own vocabulary."""

from __future__ import annotations

import random

import pytest

from ddsearch.config import SearchSettings
from ddsearch.index.postings import FILE, Postings, Tokenizer
from ddsearch.index.store import TOKENIZE, Store
from ddsearch.search.rank import fts_match, query_terms

COLUMN_WEIGHTS = SearchSettings().column_weights

WORDS = (  # noqa: SIM905
    "replica replicas replicated replication leader leaders election elect lease leases log "
    "logs commit commits committed quorum quorums paxos raft chubby lock locks locking tablet "
    "tablets server servers clock clocks timestamp timestamps gossip partition partitions "
    "failure failures detector heartbeat snapshot snapshots key-value café naïve 42 2pc"
).split()


def _store(tmp_path) -> Store:
    return Store(tmp_path / "home")


def _build(store: Store) -> Postings:
    return Postings.build(*store.vocabulary(list(COLUMN_WEIGHTS)), COLUMN_WEIGHTS)


def _fts_db(tmp_path, docs: int = 300, seed: int = 7) -> Store:
    """A store with only the FTS table filled: varied lengths, columns and repeats."""
    rnd = random.Random(seed)
    store = _store(tmp_path)
    db = store.db
    for rowid in rnd.sample(range(1, 10 * docs), docs):  # gaps, as deletes leave them
        title = " ".join(rnd.choices(WORDS, k=rnd.randint(1, 4)))
        section = " ".join(rnd.choices(WORDS, k=rnd.randint(0, 3)))
        text = " ".join(rnd.choices(WORDS, k=rnd.randint(0, 120)))
        db.execute(
            "INSERT INTO chunks_fts (rowid, title, section, text) VALUES (?, ?, ?, ?)",
            (rowid, title, section, text),
        )
    return store


def _fts5(store, query: str, limit: int):
    weights = ", ".join(map(str, COLUMN_WEIGHTS.values()))
    sql = (
        f"SELECT rowid, -bm25(chunks_fts, {weights}) AS s FROM chunks_fts "
        "WHERE chunks_fts MATCH ? ORDER BY s DESC, rowid LIMIT ?"
    )
    return store.db.execute(sql, (fts_match(query), limit)).fetchall()


def _tokens(query: str) -> list[str]:
    return [t for word in Tokenizer(TOKENIZE)(query_terms(query)) for t in word]


QUERIES = [
    "replica leader election",
    "How are replicas replicated? replication quorum",  # three words, one stem, counted thrice
    "chubby lock lease",
    "cafe naive key value",
    "42 2pc timestamp",
    "gossip",
    "unheardof",
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("limit", [5, 1000])
def test_the_ranking_and_scores_are_fts5s(tmp_path, query, limit):
    store = _fts_db(tmp_path)
    postings = _build(store)
    assert postings.top(_tokens(query), limit) == _fts5(store, query, limit)  # bit for bit
    assert postings.generation == store.generation


def test_allowed_rows_only(tmp_path):
    postings = _build(_fts_db(tmp_path))
    everything = postings.top(_tokens("replica lease"), 1000)
    allowed = {r for r, _ in everything[1::3]}
    assert postings.top(_tokens("replica lease"), 1000, allowed) == [
        (r, s) for r, s in everything if r in allowed
    ]


def test_an_empty_index(tmp_path):
    store = _store(tmp_path)
    postings = _build(store)
    assert postings.top(["replica"], 10) == []
    assert postings.generation == store.generation


def test_the_tokenizer_is_fts5s():
    tokenize = Tokenizer(TOKENIZE)
    assert tokenize(["Replicas", "Café", "key-value", "...", "x²"]) == [
        ["replica"],
        ["cafe"],
        ["kei", "valu"],
        [],
        ["x²"],
    ]
    assert tokenize([]) == []


def test_saved_postings_are_read_back_for_their_generation_only(tmp_path):
    store = _fts_db(tmp_path, docs=50)
    postings, now = _build(store), store.generation
    postings.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    back = Postings.load(tmp_path, now, COLUMN_WEIGHTS)
    tokens = _tokens("leader lease")
    assert back is not None and back.top(tokens, 20) == postings.top(tokens, 20)
    assert Postings.load(tmp_path, "another", COLUMN_WEIGHTS) is None  # the index moved on
    other = {**COLUMN_WEIGHTS, "title": 3.0}  # other weights: other scores
    assert Postings.load(tmp_path, now, other) is None
    (tmp_path / FILE).write_bytes(b"PK\x03\x04 not really a zip")
    assert Postings.load(tmp_path, now, COLUMN_WEIGHTS) is None
    (tmp_path / FILE).unlink()
    assert Postings.load(tmp_path, now, COLUMN_WEIGHTS) is None


def test_fts5_filters_papers_before_its_limit_as_the_postings_do(tmp_path):
    store = _fts_db(tmp_path)
    db = store.db
    rowids = [r for (r,) in db.execute("SELECT rowid FROM chunks_fts ORDER BY rowid")]
    owner = {r: f"p{i % 30}" for i, r in enumerate(rowids)}  # 30 papers of 10 chunks
    db.executemany(
        "INSERT INTO chunks (rowid, id, paper_id, ordinal, text, pages, printed) "
        "VALUES (?, ?, ?, 0, '', '[1]', '[]')",
        [(r, f"c{r}", p) for r, p in owner.items()],
    )
    postings = _build(store)
    query = "replica leader lease"
    ranked = postings.top(_tokens(query), 1000)
    best = {}  # each paper's best position in the unfiltered ranking
    for i, (r, _) in enumerate(ranked):
        best.setdefault(owner[r], i)
    last = max(best, key=best.get)
    assert best[last] >= 20  # below what a fetch of 20 x the limit would have seen
    allowed = {r for r in rowids if owner[r] == last}
    expected = postings.top(_tokens(query), 3, allowed)
    assert expected and store.lexical(fts_match(query), 3, {last}) == expected
    assert store.lexical(fts_match(query), 3, set()) == []
    store.close()


def test_term_scores_split_tops_scores_by_token(tmp_path):
    store = _fts_db(tmp_path)
    postings = _build(store)
    tokens = _tokens("replica leader lease unheardof")
    ranked = postings.top(tokens, 50)
    rows = [r for r, _ in ranked] + [10**9]  # and a rowid the index does not hold
    parts = postings.term_scores(tokens, rows)
    assert parts.shape == (len(tokens), len(rows))
    assert parts.sum(axis=0)[:-1].tolist() == pytest.approx([s for _, s in ranked])
    assert parts[:, -1].tolist() == [0.0] * len(tokens)
    assert parts[tokens.index("unheardof")].tolist() == [0.0] * len(rows)
    store.close()


def test_the_tokenizer_keeps_each_words_tokens_and_answers_alike():
    words = ["Replicas", "key-value", "café", "of", "", "2PC", "replicas", "Replicas"]
    fresh = Tokenizer(TOKENIZE)(words)
    keeping = Tokenizer(TOKENIZE)
    keeping(["replicas", "café"])  # some words seen before, some not
    assert keeping(words) == fresh == keeping(words)
    assert fresh[0] == fresh[6] == fresh[7] and fresh[4] == [] and len(fresh[1]) == 2
    keeping.KEEP = 3  # past its bound it starts again, with the same answers
    assert keeping(words) == fresh
    # a call with words seen before and new ones past the bound answers for all of them
    assert keeping(["Replicas", "quorum", "hinted"]) == [fresh[0], ["quorum"], ["hint"]]
