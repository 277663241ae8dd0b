"""In-memory postings: the same ranking as FTS5's bm25, from FTS5's own vocabulary."""

from __future__ import annotations

import random
import sqlite3

import pytest

from ddsearch.index.postings import FILE, Postings, Tokenizer
from ddsearch.index.store import _SCHEMA, COLUMN_WEIGHTS, SCHEMA_VERSION, TOKENIZE, Store
from ddsearch.search.rank import fts_match, query_terms

WORDS = (  # noqa: SIM905
    "replica replicas replicated replication leader leaders election elect lease leases log "
    "logs commit commits committed quorum quorums paxos raft chubby lock locks locking tablet "
    "tablets server servers clock clocks timestamp timestamps gossip partition partitions "
    "failure failures detector heartbeat snapshot snapshots key-value café naïve 42 2pc"
).split()


def _fts_db(tmp_path, docs: int = 300, seed: int = 7) -> sqlite3.Connection:
    """An index.db with only the FTS table filled: varied lengths, columns and repeats."""
    rnd = random.Random(seed)
    db = sqlite3.connect(tmp_path / "index.db", isolation_level=None)
    db.executescript(_SCHEMA)
    db.execute("INSERT INTO meta VALUES ('generation', '5')")
    for rowid in rnd.sample(range(1, 10 * docs), docs):  # gaps, as deletes leave them
        title = " ".join(rnd.choices(WORDS, k=rnd.randint(1, 4)))
        section = " ".join(rnd.choices(WORDS, k=rnd.randint(0, 3)))
        text = " ".join(rnd.choices(WORDS, k=rnd.randint(0, 120)))
        db.execute(
            "INSERT INTO chunks_fts (rowid, title, section, text) VALUES (?, ?, ?, ?)",
            (rowid, title, section, text),
        )
    return db


def _fts5(db, query: str, limit: int):
    weights = ", ".join(map(str, COLUMN_WEIGHTS.values()))
    sql = (
        f"SELECT rowid, -bm25(chunks_fts, {weights}) AS s FROM chunks_fts "
        "WHERE chunks_fts MATCH ? ORDER BY s DESC, rowid LIMIT ?"
    )
    return db.execute(sql, (fts_match(query), limit)).fetchall()


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
    db = _fts_db(tmp_path)
    postings = Postings.build(db, COLUMN_WEIGHTS)
    assert postings.top(_tokens(query), limit) == _fts5(db, query, limit)  # bit for bit
    assert postings.generation == "5"


def test_allowed_rows_only(tmp_path):
    db = _fts_db(tmp_path)
    postings = Postings.build(db, COLUMN_WEIGHTS)
    everything = postings.top(_tokens("replica lease"), 1000)
    allowed = {r for r, _ in everything[1::3]}
    assert postings.top(_tokens("replica lease"), 1000, allowed) == [
        (r, s) for r, s in everything if r in allowed
    ]


def test_an_empty_index(tmp_path):
    db = sqlite3.connect(tmp_path / "index.db", isolation_level=None)
    db.executescript(_SCHEMA)
    postings = Postings.build(db, COLUMN_WEIGHTS)
    assert postings.top(["replica"], 10) == []
    assert postings.generation == "0"


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
    db = _fts_db(tmp_path, docs=50)
    postings = Postings.build(db, COLUMN_WEIGHTS)
    postings.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    back = Postings.load(tmp_path, "5")
    tokens = _tokens("leader lease")
    assert back is not None and back.top(tokens, 20) == postings.top(tokens, 20)
    assert Postings.load(tmp_path, "6") is None  # the index moved on
    (tmp_path / FILE).write_bytes(b"PK\x03\x04 not really a zip")
    assert Postings.load(tmp_path, "5") is None
    (tmp_path / FILE).unlink()
    assert Postings.load(tmp_path, "5") is None


def test_fts5_filters_papers_before_its_limit_as_the_postings_do(tmp_path):
    db = _fts_db(tmp_path)
    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    rowids = [r for (r,) in db.execute("SELECT rowid FROM chunks_fts ORDER BY rowid")]
    owner = {r: f"p{i % 30}" for i, r in enumerate(rowids)}  # 30 papers of 10 chunks
    db.executemany(
        "INSERT INTO chunks (rowid, id, paper_id, ordinal, text, pages, printed, vector) "
        "VALUES (?, ?, ?, 0, '', '[1]', '[]', x'')",
        [(r, f"c{r}", p) for r, p in owner.items()],
    )
    db.close()
    store = Store(tmp_path, readonly=True)
    postings = Postings.build(store.db, COLUMN_WEIGHTS)
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
    db = _fts_db(tmp_path)
    postings = Postings.build(db, COLUMN_WEIGHTS)
    tokens = _tokens("replica leader lease unheardof")
    ranked = postings.top(tokens, 50)
    rows = [r for r, _ in ranked] + [10**9]  # and a rowid the index does not hold
    parts = postings.term_scores(tokens, rows)
    assert parts.shape == (len(tokens), len(rows))
    assert parts.sum(axis=0)[:-1].tolist() == pytest.approx([s for _, s in ranked])
    assert parts[:, -1].tolist() == [0.0] * len(tokens)
    assert parts[tokens.index("unheardof")].tolist() == [0.0] * len(rows)
