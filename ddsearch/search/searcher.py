"""Semantic, lexical and hybrid search over an index."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from ddsearch.index.embed import Embedder
from ddsearch.index.store import IndexError_, Store
from ddsearch.models import Chunk, Hit
from ddsearch.search.rank import (
    DENSE_WEIGHT,
    LIST_DENSE_WEIGHT,
    Ranking,
    asks_for_many_papers,
    diversify,
    fts_match,
    fuse,
    query_terms,
)

MODES = ("hybrid", "dense", "lexical")
CANDIDATES = 100


class QueryError(ValueError):
    """A query that cannot be run as given."""


class Searcher:
    """Answers questions from one data home's index; loads the model and vectors once."""

    def __init__(
        self,
        home: Path,
        *,
        model: str | None = None,
        embedder: Embedder | None = None,
        catalog=None,
        chroma_url: str | None = None,
    ):
        self.store = Store(home, readonly=True, chroma_url=chroma_url)
        self.catalog = catalog
        built_with = self.store.model
        if built_with is None:
            raise IndexError_(f"the index in {home} is empty: run 'ddsearch ingest' first")
        if model and model != built_with:
            raise IndexError_(
                f"the index was built with model {built_with!r}, not {model!r}: "
                "query without --model, or re-ingest with --rebuild --model"
            )
        self.embedder = embedder or Embedder(built_with, stamp_dir=Path(home))
        self._vectors = None
        self._records = None
        self._last_query = None
        self._generation = self.store.meta("generation")
        self._postings = None  # the lexical postings of the generation read, once found
        self._tokenizer = None

    def refresh(self) -> bool:
        """Re-read the index if it changed since it was read (another ingest, or the Chroma
        server's state); True when it did. A long-lived process calls this between queries."""
        if self.store.remote is not None:
            self.store.sync()
        generation = self.store.meta("generation")
        if generation == self._generation:
            return False
        self._generation, self._vectors, self._records = generation, None, None
        return True

    def warm(self) -> None:
        """Have the lexical index's in-memory postings ready, building them if this index
        generation has none saved (seconds per 100k chunks); a long-lived process calls this
        after loading and after each refresh. Without them, FTS5 answers the same, slower."""
        self._postings = self._matching(self.store.postings(build=True))

    @property
    def records(self):
        if self._records is None:
            self._records = self.store.records()
        return self._records

    def _has_paper(self, paper_id: str) -> bool:
        """Whether the paper is indexed, reading the manifest again if an ingest committed since."""
        if paper_id not in self.records:
            self._records = None
        return paper_id in self.records

    def paper(self, paper_id: str):
        """The paper's metadata: the catalog's when it has the id (with the user's key, from
        --bib), else what ingest recorded."""
        stored = self.records[paper_id].paper
        listed = self.catalog.get(paper_id) if self.catalog is not None else None
        return replace(listed, path=stored.path, key=stored.key) if listed else stored

    def _matrix(self):
        if self._vectors is None:
            self._vectors = self.store.vectors()
        return self._vectors

    def encode_query(self, query: str):
        """The query's vector; the last one is kept, since quotes need it again."""
        if self._last_query is None or self._last_query[0] != query:
            self._last_query = (query, self.embedder.encode([query])[0])
        return self._last_query[1]

    def add_quotes(self, query: str, hits: list[Hit], max_sentences: int = 3) -> None:
        """Set each hit's quote: the sentences of its passage closest to the query.

        Only a shortlist of each passage's sentences (those sharing most words with the query)
        is embedded, all hits in one batch: embedding every sentence of ten passages costs more
        than the rest of a query together."""
        import numpy as np

        from ddsearch.search.quote import best_quote, shortlist
        from ddsearch.sentences import split_sentences

        if not hits:
            return
        qvec = self.encode_query(query)
        chosen = {s for h in hits for s in shortlist(query, split_sentences(h.chunk.text))}
        ordered = sorted(chosen)
        known = dict(zip(ordered, self.embedder.encode(ordered)))
        zero = np.zeros_like(qvec)

        def encode(texts):
            return np.stack([known.get(t, zero) for t in texts])

        for hit in hits:
            quote = best_quote(qvec, hit.chunk.text, encode, max_sentences)
            hit.quote, hit.quote_span = quote.text, (quote.start, quote.end)

    def citation_keys(self, catalog=None) -> dict[str, str]:
        """Citation keys unique across the catalog and every indexed paper."""
        from ddsearch.search.cite import citation_keys

        papers = {p.id: p for p in (catalog or self.catalog or ())}
        for pid, rec in self.records.items():
            papers[pid] = replace(papers[pid], key=rec.paper.key) if pid in papers else rec.paper
        return citation_keys(papers.values())

    def dense(self, query: str, limit: int, papers: set[str] | None = None) -> Ranking:
        """(rowid, cosine) of the chunks nearest the query, best first."""
        import numpy as np

        rowids, matrix, owners = self._matrix()
        if len(rowids) == 0:
            return []
        scores = matrix @ self.encode_query(query)
        if papers:
            mask = np.fromiter((o in papers for o in owners), dtype=bool, count=len(owners))
            scores = np.where(mask, scores, -np.inf)
        limit = min(limit, len(scores))
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(rowids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def lexical(self, query: str, limit: int, papers: set[str] | None = None) -> Ranking:
        """(rowid, bm25) of the chunks that best match the query's terms, best first."""
        terms = query_terms(query)
        if not terms:
            return []
        postings = self._current_postings()
        if postings is not None:
            from ddsearch.index.store import TOKENIZE

            if self._tokenizer is None:
                from ddsearch.index.postings import Tokenizer

                self._tokenizer = Tokenizer(TOKENIZE)
            tokens = [t for word in self._tokenizer(terms) for t in word]
            allowed = None
            if papers:
                rowids, _, owners = self._matrix()
                allowed = {int(r) for r, o in zip(rowids, owners) if o in papers}
            return postings.top(tokens, limit, allowed)
        return self.store.lexical(fts_match(query), limit, papers or None)

    def _current_postings(self):
        # None is looked up again: an ingest saves this generation's postings when it ends
        if self._matching(self._postings) is None:
            self._postings = self._matching(self.store.postings())
        return self._postings

    def _matching(self, postings):
        """The postings if they were built from the index generation this searcher reads."""
        same = postings is not None and postings.generation == (self._generation or "0")
        return postings if same else None

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        papers: Iterable[str] | None = None,
        mode: str = "hybrid",
    ) -> list[Hit]:
        query = (query or "").strip()
        if not query:
            raise QueryError("the query is empty")
        if not 1 <= k <= 100:
            raise QueryError(f"-k must be between 1 and 100, not {k}")
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
        wanted = set(papers or ())
        unknown = wanted - set(self.records)
        if unknown:
            raise QueryError(f"not in the index: {', '.join(sorted(unknown))}")

        many = asks_for_many_papers(query)
        share = LIST_DENSE_WEIGHT if many else DENSE_WEIGHT
        runs = []
        if mode in ("hybrid", "dense"):
            weight = share if mode == "hybrid" else 1.0
            runs.append((self.dense(query, CANDIDATES, wanted), weight))
        if mode in ("hybrid", "lexical"):
            weight = 1.0 - share if mode == "hybrid" else 1.0
            runs.append((self.lexical(query, CANDIDATES, wanted), weight))
        fused = fuse(runs)
        order = sorted(fused, key=lambda r: -fused[r])
        chunks = self.store.chunks(order)
        found = [r for r in order if r in chunks and self._has_paper(chunks[r].paper_id)]
        hits = _merge_neighbours([(chunks[r], fused[r]) for r in found])
        if many:  # a list of papers: each paper's best hit first
            hits = diversify(hits, lambda hit: hit[0].paper_id, free=1, per_paper=1)
        else:
            hits = diversify(hits, lambda hit: hit[0].paper_id)
        return [
            Hit(rank=i + 1, chunk=c, paper=self.paper(c.paper_id), score=s)
            for i, (c, s) in enumerate(hits[:k])
        ]


def _join(a: str, b: str, least: int = 21) -> str:
    """a followed by b, less the overlap (`least` chars or more) where a ends as b starts."""
    i = a.find(b[:least], max(0, len(a) - len(b)))
    while i != -1:
        if b.startswith(a[i:]):
            return a + b[len(a) - i :]
        i = a.find(b[:least], i + 1)
    return f"{a} {b}"


def _merge_neighbours(
    ranked: list[tuple[Chunk, float]], max_parts: int = 3
) -> list[tuple[Chunk, float]]:
    """Fold a hit into a better-ranked hit on the adjacent chunk of the same paper."""
    out: list[list] = []  # [chunk, score, lowest ordinal, highest ordinal, parts]
    for chunk, score in ranked:
        for entry in out:
            kept, _, lo, hi, parts = entry
            if kept.paper_id != chunk.paper_id or parts >= max_parts:
                continue
            if chunk.ordinal == lo - 1:
                text = _join(chunk.text, kept.text)
                printed = chunk.printed_pages + kept.printed_pages
            elif chunk.ordinal == hi + 1:
                text = _join(kept.text, chunk.text)
                printed = kept.printed_pages + chunk.printed_pages
            else:
                continue
            entry[0] = replace(
                kept,
                text=text,
                pages=tuple(sorted(set(kept.pages) | set(chunk.pages))),
                printed_pages=tuple(dict.fromkeys(printed)),
            )
            entry[2], entry[3], entry[4] = min(lo, chunk.ordinal), max(hi, chunk.ordinal), parts + 1
            break
        else:
            out.append([chunk, score, chunk.ordinal, chunk.ordinal, 1])
    return [(e[0], e[1]) for e in out]
