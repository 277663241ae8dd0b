"""FTS5's postings held in memory with their bm25 weights, for a fast top-k.

FTS5 computes bm25 for every row that matches any query term, which at 200k chunks costs
over 100 ms a query. The same scores are a sum of per-(term, chunk) weights once the
collection statistics are fixed, so they are computed once per index generation from
FTS5's own vocabulary tables (same tokenizer, same counts) and saved beside the index.
The scores equal FTS5's ``-bm25(chunks_fts, *weights)`` exactly (the column weights of
SearchSettings); equal scores go by rowid. Saved postings are for one generation and weights.
"""

from __future__ import annotations

import os
import sqlite3
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

K1, B = 1.2, 0.75  # FTS5's bm25 constants (fts5_aux.c)
FILE = "postings.npz"
# bumped when what the file holds changes (2: the column weights); other versions are rebuilt
FORMAT = 2


@dataclass
class Postings:
    """Per term, the chunks holding it and each one's bm25 contribution."""

    generation: str
    rowids: np.ndarray  # int64, ascending: the chunks that have any token
    terms: dict[str, int]
    indptr: np.ndarray  # int64, len(terms) + 1: term t's entries are [indptr[t], indptr[t+1])
    rows: np.ndarray  # int32 positions into rowids
    weights: np.ndarray  # float64, as FTS5 computes them
    columns: tuple[float, ...] = ()  # the column weights they were computed with

    @classmethod
    def build(cls, generation: str, n_rows: int, per_col: list[tuple[str, int]],
              groups: np.ndarray, columns: dict[str, float]) -> Postings:  # fmt: skip
        """Every bm25 weight, from FTS5's vocabulary read in one snapshot (Store.vocabulary):
        the generation it was read at, the rows, each (term, column)'s document count and
        each (term, document, column)'s hits; ``columns`` maps the table's column names to
        the weights given to bm25()."""
        index = {t: i for i, t in enumerate(dict.fromkeys(t for t, _ in per_col))}
        per_term = np.zeros(len(index), dtype=np.int64)  # (doc, col) groups of each term
        for term, docs in per_col:
            per_term[index[term]] += docs
        if per_term.sum() != len(groups):
            raise RuntimeError("the lexical index changed while it was read")
        term_of = np.repeat(np.arange(len(index), dtype=np.int64), per_term)
        doc, col, count = groups[:, 0], groups[:, 1], groups[:, 2]
        w = np.array([*columns.values(), 1.0])  # bm25() weighs each hit by its column
        freq = w[col] * count
        # one entry per (term, doc): groups are sorted by term, then doc, then column
        starts = np.flatnonzero(np.r_[True, (term_of[1:] != term_of[:-1]) | (doc[1:] != doc[:-1])])
        starts = starts[: len(groups)]  # none at all for an empty index
        freq = np.add.reduceat(freq, starts) if len(starts) else freq
        term_of, doc = term_of[starts], doc[starts]
        rowids, pos = np.unique(doc, return_inverse=True)
        length = np.bincount(np.searchsorted(rowids, groups[:, 0]), weights=count,
                             minlength=len(rowids))  # fmt: skip
        avgdl = count.sum() / n_rows if n_rows else 1.0
        hits = np.bincount(term_of, minlength=len(index))  # rows holding the term
        idf = np.maximum(np.log((n_rows - hits + 0.5) / (hits + 0.5)), 1e-6)
        # the operations of fts5Bm25Function in its order, so the sums come out bit for bit
        norm = K1 * (1 - B + B * length[pos] / avgdl)
        weights = idf[term_of] * ((freq * (K1 + 1.0)) / (freq + norm))
        indptr = np.r_[0, np.cumsum(hits)].astype(np.int64)
        return cls(
            generation=generation,
            rowids=rowids.astype(np.int64),
            terms=index,
            indptr=indptr,
            rows=pos.astype(np.int32),
            weights=weights,
            columns=tuple(float(w) for w in columns.values()),
        )

    def top(self, tokens: list[str], limit: int, allowed=None) -> list[tuple[int, float]]:
        """(rowid, score) of the best chunks for an OR of these tokens, best first, score > 0.

        A token listed twice counts twice, as a phrase repeated in an FTS5 query does;
        ``allowed`` (a set of rowids) keeps only those chunks."""
        scores = np.zeros(len(self.rowids))
        for token in tokens:
            t = self.terms.get(token)
            if t is not None:
                span = slice(self.indptr[t], self.indptr[t + 1])
                scores[self.rows[span]] += self.weights[span]
        if allowed is not None:
            scores[~np.isin(self.rowids, np.fromiter(allowed, dtype=np.int64))] = 0
        found = np.flatnonzero(scores > 0)
        if len(found) > limit:  # the best `limit`, and any that tie with the last of them
            cut = np.partition(-scores[found], limit - 1)[limit - 1]
            found = found[-scores[found] <= cut]
        found = found[np.lexsort((found, -scores[found]))][:limit]  # ties: lower rowid first
        return [(int(self.rowids[i]), float(scores[i])) for i in found]

    def frequency(self, token: str) -> int:
        """How many chunks hold the token."""
        t = self.terms.get(token)
        return 0 if t is None else int(self.indptr[t + 1] - self.indptr[t])

    def term_scores(self, tokens: list[str], rowids) -> np.ndarray:
        """Each token's bm25 contribution to each of these chunks: (len(tokens), len(rowids)),
        0 where a chunk lacks the token or is not indexed; a row sums as ``top`` scores."""
        rowids = np.asarray(rowids, dtype=np.int64)
        at = np.searchsorted(self.rowids, rowids)
        at[at >= len(self.rowids)] = 0
        known = self.rowids[at] == rowids if len(self.rowids) else np.zeros(len(rowids), bool)
        where = np.full(len(self.rowids), -1, dtype=np.int64)
        where[at[known]] = np.flatnonzero(known)
        out = np.zeros((len(tokens), len(rowids)))
        for i, token in enumerate(tokens):
            t = self.terms.get(token)
            if t is None:
                continue
            span = slice(self.indptr[t], self.indptr[t + 1])
            cols = where[self.rows[span]]
            mine = cols >= 0
            out[i, cols[mine]] = self.weights[span][mine]
        return out

    def save(self, home: Path) -> None:
        """Write atomically: a reader sees the old file or the new one."""
        path = Path(home) / FILE
        tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    format=np.array(FORMAT),
                    generation=np.array(self.generation),
                    rowids=self.rowids,
                    terms=np.array(list(self.terms), dtype=str),
                    indptr=self.indptr,
                    rows=self.rows,
                    weights=self.weights,
                    columns=np.array(self.columns, dtype=np.float64),
                )
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, home: Path, generation: str | None,
             columns: dict[str, float]) -> Postings | None:  # fmt: skip
        """The saved postings if they were built from this generation of the index, with these
        column weights."""
        try:
            with np.load(Path(home) / FILE) as z:
                if int(z["format"]) != FORMAT or str(z["generation"]) != str(generation):
                    return None
                if tuple(z["columns"].tolist()) != tuple(float(w) for w in columns.values()):
                    return None
                terms = z["terms"].tolist()
                return cls(
                    str(z["generation"]),
                    z["rowids"],
                    {t: i for i, t in enumerate(terms)},
                    z["indptr"],
                    z["rows"],
                    z["weights"],
                    tuple(z["columns"].tolist()),
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            # absent, damaged, or written by another version: build anew
            return None


class Tokenizer:
    """Splits query words into the tokens FTS5 indexes, using FTS5's own tokenizer."""

    KEEP = 50_000  # words whose tokens are kept: a query's words and its candidates' headings

    def __init__(self, tokenize: str):
        self._known: dict[str, tuple[str, ...]] = {}  # each word is tokenized on its own: once
        self.db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self.db.execute(f"CREATE VIRTUAL TABLE words USING fts5(w, tokenize='{tokenize}')")
        self.db.execute("CREATE VIRTUAL TABLE tokens USING fts5vocab(words, instance)")

    def __call__(self, words: list[str]) -> list[list[str]]:
        """Each word's tokens, in order (a word may give none, or several)."""
        known = self._known
        new = list(dict.fromkeys(w for w in words if w not in known))
        if new:
            db = self.db
            db.execute("BEGIN")
            try:
                db.execute("DELETE FROM words")
                db.executemany("INSERT INTO words (rowid, w) VALUES (?, ?)", enumerate(new))
                found = db.execute("SELECT doc, term FROM tokens ORDER BY doc, offset").fetchall()
            finally:
                db.execute("ROLLBACK")
            out: list[list[str]] = [[] for _ in new]
            for i, term in found:
                out[i].append(term)
            if len(known) + len(new) > self.KEEP:  # keep this call's other words only
                kept = {w: known[w] for w in words if w in known}
                known.clear()
                known.update(kept)
            known.update((w, tuple(t)) for w, t in zip(new, out))
        return [list(known[w]) for w in words]
