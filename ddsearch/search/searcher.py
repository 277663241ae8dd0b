"""Semantic, lexical and hybrid search over an index."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ddsearch.config import QuerySettings, SearchSettings, model_name
from ddsearch.errors import QueryError
from ddsearch.index.embed import Embedder
from ddsearch.index.store import IndexError_, Store
from ddsearch.models import Chunk, Hit, Mode, Reading, Respelling, Results
from ddsearch.search.fusion import Layout
from ddsearch.search.names import Names
from ddsearch.search.rank import (
    STOPWORDS,
    Ranking,
    asks_for_many_papers,
    canonical,
    diversify,
    fts_match,
    fuse,
    named_first,
    normalise,
    query_terms,
    union,
    unwrapped,
)
from ddsearch.search.validate import check_query

__all__ = ["QueryError", "Searcher"]


class _Moved(Exception):
    """The index changed under a search: a rowid now holds another chunk."""


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
        chroma_token: str | None = None,
        settings: SearchSettings | None = None,
        limits: QuerySettings | None = None,
    ):
        self.settings = settings or SearchSettings()  # the ranking's weights and floors
        self.limits = limits or QuerySettings()  # what a query may ask (ddsearch.search.validate)
        self.store = Store(home, readonly=True, chroma_url=chroma_url, chroma_token=chroma_token)
        self.catalog = catalog
        built_with = self.store.model
        if built_with is None:
            raise IndexError_(f"the index in {home} is empty: run 'ddsearch ingest' first")
        if model and model_name(model) != built_with:
            raise IndexError_(
                f"the index was built with model {built_with!r}, not {model!r}: "
                "query without --model, or re-ingest with --rebuild --model"
            )
        self.embedder = embedder or Embedder(built_with, stamp_dir=Path(home))
        self._vectors: tuple | None = None  # Store.vectors(), once read
        self._row_ids: dict | None = None  # rowid -> chunk id, of the rows the vectors came with
        self._records: dict | None = None
        self._last_query: tuple | None = None
        self._generation = self.store.meta("generation")
        self._postings: Any = None  # the lexical postings of the generation read, once found
        self._tokenizer: Any = None
        self._names: tuple | None = None  # (the records they were read from, Names)
        self._layout: tuple | None = None  # (the vectors it was read from, Layout)
        self._kept: tuple | None = None  # (vectors, generation read with, {rowid: Chunk})
        self._frequency: tuple | None = None  # (generation, {token: chunks holding it}, chunks)
        self._dense_all: tuple | None = None  # (query, vectors, cosine of every row): the last
        self._asked: tuple | None = None  # (canonical query, what it asks, its vector): the last
        self._read: tuple | None = None  # (text, how it was read): the last (Searcher.read)
        self.last_evidence: Evidence | None = None  # the last hybrid query's, for fitting

    def refresh(self) -> bool:
        """Re-read the index if it changed since it was read (another ingest, or the Chroma
        server's state); True when it did. A long-lived process calls this between queries."""
        self.store.sync()
        generation = self.store.meta("generation")
        if generation == self._generation:
            return False
        self._generation, self._vectors, self._records = generation, None, None
        self._read = None  # a word the index lacked may be in it now
        return True

    def warm(self) -> None:
        """Have the lexical index's in-memory postings ready, building them if this index
        generation has none saved (seconds per 100k chunks); a long-lived process calls this
        after loading and after each refresh. Without them, FTS5 answers the same, slower."""
        weights = self.settings.column_weights
        self._postings = self._matching(self.store.postings(build=True, weights=weights))

    @property
    def records(self):
        if self._records is None:
            self._records = self.store.records()
        return self._records

    @property
    def names(self) -> Names:
        """The indexed papers' names, read again when the manifest is."""
        records = self.records
        if self._names is None or self._names[0] is not records:
            self._names = (records, Names(self.paper(pid) for pid in records))
        return self._names[1]

    def _has_paper(self, paper_id: str) -> bool:
        """Whether the paper is indexed, reading the manifest again if an ingest committed since."""
        if paper_id not in self.records:
            self._records = None
        return paper_id in self.records

    def paper(self, paper_id: str):
        """The paper's metadata: the catalog's when it has the id (with the user's key, from
        --bib), else what ingest recorded."""
        from ddsearch.search.cite import citable

        listed = self.catalog.get(paper_id) if self.catalog is not None else None
        return citable(listed, self.records[paper_id].paper)

    def _matrix(self):
        if self._vectors is None:
            self._vectors, self._row_ids = self.store.vectors(), None
        return self._vectors

    def encode_query(self, query: str):
        """The query's vector; the last one is kept, since quotes need it again."""
        if self._last_query is None or self._last_query[0] != query:
            self._last_query = (query, self.embedder.encode([query])[0])
        return self._last_query[1]

    def idf(self, terms: list[str]) -> list[float]:
        """Inverse document frequency of each query term over the chunks, from the lexical
        index's own counts (the same on every client of an index)."""
        return [idf for idf, _ in self._term_stats(terms)[0]]

    def _term_stats(self, terms: list[str]) -> tuple[list[tuple[float, bool]], int]:
        """(idf, whether any chunk holds it) of each term, and the chunk count, in one read of
        the vocabulary."""
        tokens = self._tokenize(terms)
        df, n = self._frequencies({t for word in tokens for t in word})
        out = []
        for word in tokens:
            most = max((df.get(t, 0) for t in word), default=0)
            out.append((math.log(1 + (n - most + 0.5) / (most + 0.5)), most > 0))
        return out, n

    def _frequencies(self, tokens: set[str]) -> tuple[dict[str, int], int]:
        """({token: chunks holding it}, chunks), kept for the index's generation: a query reads
        its words' counts for the paper chance, the headings, the quotes and the weak-match
        check alike."""
        generation = self.store.generation
        if self._frequency is None or self._frequency[0] != generation:
            self._frequency = (generation, {}, self.store.document_frequencies(())[1])
        _, known, n = self._frequency
        new = tokens - known.keys()
        if new:
            found, _ = self.store.document_frequencies(new)
            known.update({t: found.get(t, 0) for t in new})
        return {t: known[t] for t in tokens}, n

    def add_quotes(self, query: str, hits: list[Hit], max_sentences: int | None = None) -> None:
        """Set each hit's quote, and so the pages its citation names: the best 1-3 sentences
        of its passage (ddsearch.search.quote), from vectors stored at ingest."""
        from ddsearch.search.quote import pick, sentence_scores

        if not hits:
            return
        question = self.question(query)
        vectors = self.store.sentence_vectors(c.id for h in hits for c in h.parts or (h.chunk,))
        for hit in hits:
            best = None
            for part in hit.parts or (hit.chunk,):
                found = vectors.get(part.id)
                if found is None or len(found) != len(part.sentences):
                    continue
                scores = sentence_scores(question, part, found, hit.scores.get("dense", 0.0))
                knobs = self.settings
                quote = pick(
                    part,
                    scores,
                    max_sentences or knobs.quote_sentences,
                    max_words=knobs.quote_max_words,
                    min_words=knobs.quote_min_words,
                    question=question,
                )
                if quote and (best is None or quote.score > best.score):
                    best = quote
            if best is None:
                continue
            start = hit.chunk.text.find(best.text)
            hit.quote, hit.quote_span = best.text, (start, start + len(best.text))
            hit.quote_pages, hit.quote_printed = best.pages, best.printed
            hit.scores["quote"] = round(best.score, 6)  # the quote model's log-odds

    def question(self, text: str):
        """The quote model's reading of a question (ddsearch.search.quote.Question): the whole
        question, and what it asks less what identifies its system, as the last search of it
        found (else less its leading phrase and names only)."""
        from ddsearch.search import fusion
        from ddsearch.search.quote import Question

        text = self.read(text)[0]
        query = canonical(text)
        kept = self._asked
        if kept is None or kept[0] != query:
            ask = fusion.asking(text, self.names, set())
            kept = (query, ask, self.encode_query(query) if ask == query else None)
        ask, vector = kept[1], kept[2]
        if vector is None:
            vector = self.embedder.encode([ask])[0]
            self._asked = (query, ask, vector)
        return Question.make(query, self.encode_query(query), self.idf, (ask, vector))

    def citation_keys(self, catalog=None) -> dict[str, str]:
        """Citation keys unique across the catalog and every indexed paper (the same keys
        `ddsearch cite` gives)."""
        from ddsearch.search.cite import citation_keys, known_papers

        indexed = (rec.paper for rec in self.records.values())
        return citation_keys(known_papers(catalog or self.catalog or (), indexed).values())

    def dense(self, query: str, limit: int, papers: set[str] | None = None) -> Ranking:
        """(rowid, cosine) of the chunks nearest the query, best first."""
        import numpy as np

        rowids = self._matrix()[0]
        if len(rowids) == 0:
            return []
        scores = self.cosines(query)
        if papers:
            mask = np.zeros(len(scores), dtype=bool)
            mask[self._rows_of(papers)] = True
            scores = np.where(mask, scores, -np.inf)
        limit = min(limit, len(scores))
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(rowids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def cosines(self, query: str):
        """The query's cosine with every row of the vectors (in their order), kept for the
        last query."""
        vectors = self._matrix()
        kept = self._dense_all
        if kept is None or kept[0] != query or kept[1] is not vectors:  # an id() may be reused
            kept = self._dense_all = (query, vectors, vectors[1] @ self.encode_query(query))
        return kept[2]

    def layout(self) -> Layout:
        """Where each row of the vectors stands: its paper, and whether it is front matter."""
        vectors = self._matrix()
        if self._layout is None or self._layout[0] is not vectors:
            self._layout = (vectors, Layout.of(vectors[2], vectors[3]))
        return self._layout[1]

    def _rows_of(self, papers: Iterable[str]):
        """The row positions of these papers' chunks in the vectors (Layout.rows, no scan)."""
        import numpy as np

        rows = self.layout().rows
        found = [rows[p] for p in papers if p in rows]
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def lexical(self, query: str, limit: int, papers: set[str] | None = None) -> Ranking:
        """(rowid, bm25) of the chunks that best match the query's terms, best first."""
        terms = query_terms(query)
        if not terms:
            return []
        postings = self._current_postings()
        if postings is not None:
            tokens = [t for word in self._tokenize(terms) for t in word]
            allowed = None
            if papers:
                allowed = set(self._matrix()[0][self._rows_of(papers)].tolist())
            return postings.top(tokens, limit, allowed)
        weights = self.settings.column_weights
        return self.store.lexical(fts_match(query) or "", limit, papers or None, weights)

    def _tokenize(self, terms: list[str]) -> list[list[str]]:
        """The lexical index's own tokens of each term (porter stems)."""
        if self._tokenizer is None:
            from ddsearch.index.postings import Tokenizer
            from ddsearch.index.store import TOKENIZE

            self._tokenizer = Tokenizer(TOKENIZE)
        return self._tokenizer(terms)

    def _current_postings(self):
        # None is looked up again: an ingest saves this generation's postings when it ends
        if self._matching(self._postings) is None:
            weights = self.settings.column_weights
            self._postings = self._matching(self.store.postings(weights=weights))
        return self._postings

    def _matching(self, postings):
        """The postings if they were built from the index generation this searcher reads."""
        same = postings is not None and postings.generation == (self._generation or "0")
        return postings if same else None

    def search(
        self,
        query: str,
        k: int | None = None,
        *,
        papers: Iterable[str] | None = None,
        mode: str = Mode.HYBRID,
    ) -> Results:
        """The ``k`` best hits for ``query`` (default: ``limits.k``), checked first by
        ddsearch.search.validate ("Raft" names raft; an unknown id is told with the closest)."""
        asked = check_query(query, k, papers or (), mode, indexed=self.records,
                            catalog=self.catalog or (), limits=self.limits)  # fmt: skip
        (original, respelled), k, mode = self.read(asked.text), asked.k, asked.mode
        wanted = set(asked.papers)
        query = canonical(original)
        try:
            found = self._search(original, query, k, wanted, mode, check=True)
        except _Moved:  # an ingest committed since the vectors were read: read them again
            self._vectors = self._records = None
            self._generation = self.store.meta("generation")
            found = self._search(original, query, k, wanted, mode, check=False)
        found.respelled = respelled
        return found

    def read(self, text: str) -> tuple[str, tuple[Respelling, ...]]:
        """The question as it is searched: without a request around it (rank.unwrapped), a
        name typed apart written as the name (Names.joined), its typing slips
        respelled (ddsearch.search.spelling), and what was read otherwise than typed."""
        from ddsearch.search.spelling import NAME_LETTERS, respell

        text = text.strip()  # search reads the question stripped; a caller may pass it padded
        kept = self._read
        if kept is None or kept[0] != text:
            asked = unwrapped(text)
            apart: tuple[Respelling, ...] = ()
            found: tuple[str, tuple[Respelling, ...]] = (asked, ())
            if self.settings.respell:
                asked, apart = self.names.joined(asked)
                short = self.names.of_letters(NAME_LETTERS)
                found = respell(
                    asked, self._held, self._known, self.store.written, STOPWORDS, short
                )
            kept = self._read = (text, (found[0], apart + found[1]))
        return kept[1]

    def _held(self, words: Sequence[str]) -> list[int]:
        """How many chunks hold each word, as the lexical index reads it."""
        tokens = self._tokenize(list(words))
        wanted = {t for word in tokens for t in word}
        postings = self._current_postings()
        if postings is not None:
            counts = {t: postings.frequency(t) for t in wanted}
        else:
            counts = self.store.document_frequencies(wanted)[0]
        return [min((counts.get(t, 0) for t in word), default=0) for word in tokens]

    def _known(self, words: Sequence[str]) -> list[bool]:
        """Whether the embedding model knows each word as a word of its own (one word piece)."""
        return [n == 1 for n in self.embedder.count_tokens(list(words))]

    def _search(self, original: str, query: str, k: int, wanted: set[str], mode: str,
                check: bool) -> Results:  # fmt: skip
        many = asks_for_many_papers(original)
        knobs = self.settings
        share = knobs.list_dense_weight if many else knobs.dense_weight
        # a question that names systems searches their papers too; inside them the name is
        # in every passage, so the lexical ranker matches the rest of the question
        mentions = self.names.find(query) if mode == "hybrid" and knobs.named_weight else []
        named = {p for m in mentions for p in m.papers if p in self.records}
        named = named & wanted if wanted else named
        words = self.names.without(query, mentions) if named else query
        words = words if query_terms(words) else query
        runs = []
        if mode in ("hybrid", "dense"):
            weight = share if mode == "hybrid" else 1.0
            ranking = self.dense(query, knobs.candidates, wanted)
            if named and not wanted:
                ranking = union(ranking, self.dense(query, knobs.candidates, named))
            runs.append(("dense", ranking, weight))
        if mode in ("hybrid", "lexical"):
            weight = 1.0 - share if mode == "hybrid" else 1.0
            ranking = self.lexical(words, knobs.candidates, wanted)
            if named and not wanted:
                ranking = union(ranking, self.lexical(words, knobs.candidates, named))
            runs.append(("lexical", ranking, weight))
        fused = fuse([(ranking, weight) for _, ranking, weight in runs])
        order = sorted(fused, key=lambda r: -fused[r])
        chunks = self._chunks(order, check)
        if named:
            ranking = [(r, 1.0) for r in order if r in chunks and chunks[r].paper_id in named]
            runs.append(("named", ranking, knobs.named_weight))
            fused = fuse([(ranking, weight) for _, ranking, weight in runs])
            order = sorted(fused, key=lambda r: -fused[r])
        groups = list(dict.fromkeys(m.papers & named for m in mentions if m.papers & named))
        evidence = None
        if mode == "hybrid" and knobs.fusion:
            evidence = self.evidence(original, query, words, named, runs, fused, order,
                                     chunks, wanted, check)  # fmt: skip
            self.last_evidence = evidence  # for bench/fit_rank.py
            fused, order = evidence.scores, evidence.order
            groups = evidence.groups(groups)
        else:
            top = order[: knobs.rerank]  # heading and sentence evidence re-weigh the fused top
            if mode == "hybrid" and knobs.section_weight:
                runs.append(self._section_run(words, top, chunks))
            if mode == "hybrid" and knobs.sentence_weight:
                runs.append(self._sentence_run(query, top, chunks))
            if mode == "hybrid" and (knobs.section_weight or knobs.sentence_weight):
                fused = fuse([(ranking, weight) for _, ranking, weight in runs])
                order = sorted(fused, key=lambda r: -fused[r])
        found = [r for r in order if r in chunks and self._has_paper(chunks[r].paper_id)]
        merged = _merge_neighbours([(chunks[r], fused[r], r) for r in found], knobs.max_parts)
        if many:  # a list of papers: each paper's best hit first
            merged = diversify(merged, lambda hit: hit[0].paper_id, free=1,
                               per_paper=knobs.list_per_paper)  # fmt: skip
        else:
            merged = diversify(
                merged, lambda hit: hit[0].paper_id, knobs.diverse_below, knobs.per_paper
            )
        if len(groups) > 1 and knobs.named_first:  # "Compare Chubby and ZooKeeper": each one's best
            merged = named_first(merged, lambda hit: hit[0].paper_id, groups)
        raw = {name: dict(ranking) for name, ranking, _ in runs}
        shares = {name: normalise(ranking) for name, ranking, _ in runs}
        hits = [
            Hit(
                rank=i + 1,
                chunk=c,
                paper=self.paper(c.paper_id),
                score=s,
                scores={
                    **{name: round(raw[name].get(r, 0.0), 6) for name in raw},
                    **{f"{name}_norm": round(shares[name].get(r, 0.0), 6) for name in raw},
                    **(evidence.explain(r) if evidence is not None else {}),
                },
                parts=parts,
            )
            for i, (c, s, r, parts) in enumerate(merged[:k])
        ]
        reading = None
        if evidence is not None:
            chances = sorted(evidence.chance.items(), key=lambda t: -t[1])
            reading = Reading(evidence.asks, tuple((p, round(c, 3)) for p, c in chances[:3]))
        return Results(hits, self._weak(query, runs), reading)

    def _clause_chances(self, clauses: list[str], layout: Layout, postings, named: set[str]):
        """The paper model's chances for each clause of a question, searched on its own (the
        clauses encoded in one call)."""
        import numpy as np

        from ddsearch.search import fusion

        rowids, matrix, _, _ = self._matrix()
        front = np.flatnonzero(layout.front)
        share = self.settings.dense_weight
        vectors = self.embedder.encode([canonical(c) for c in clauses]) if clauses else []
        for clause, vector in zip(clauses, vectors):
            cos = matrix @ vector
            tokens = [t for word in self._tokenize(query_terms(clause)) for t in word]
            bm25 = postings.term_scores(tokens, rowids).sum(axis=0)
            stage = share * fusion.top_minmax(cos, self.settings.candidates) + (
                1 - share
            ) * fusion.top_minmax(bm25, self.settings.candidates)
            x = fusion.paper_features(layout, stage, cos, bm25[front], named)
            yield fusion.softmax(x @ fusion.model().paper)

    def evidence(self, original: str, query: str, words: str, named: set[str], runs,
                 fused: dict[int, float], order: list[int], chunks: dict[int, Chunk],
                 wanted: set[str], check: bool = False) -> Evidence:  # fmt: skip
        """Which papers the question asks about, and each candidate passage's evidence scored
        by the fitted models (ddsearch.search.fusion); ``chunks`` gains the passages drawn
        from a described paper."""
        import numpy as np

        from ddsearch.search import fusion
        from ddsearch.search.quote import Question, sentence_terms

        fitted = fusion.model()
        layout = self.layout()
        rowids, _, _, _ = self._matrix()
        cos = self.cosines(query)
        terms = query_terms(words)
        tokens = self._tokenize(terms)
        # the features read every row's bm25: without saved postings (a new client of a
        # Chroma server) they are built in memory, so every client of an index ranks alike
        postings = self._current_postings()
        if postings is None:
            self._postings = self._matching(self.store.postings(build=True, save=False))
            postings = self._postings
        lexical_of = dict(next((r for n, r, _ in runs if n == "lexical"), []))

        def lexical(rows: np.ndarray, drop: frozenset[int] = frozenset()) -> np.ndarray:
            """bm25 of the chunks at these row positions, less the terms in ``drop``."""
            if postings is None:  # FTS5 ranks without postings: its candidates' scores only
                return np.array([lexical_of.get(int(r), 0.0) for r in rowids[rows]])
            keep = [t for i, word in enumerate(tokens) if i not in drop for t in word]
            return postings.term_scores(keep, rowids[rows]).sum(axis=0)

        # which paper: its best passages, its front matter, its name
        position = {int(r): i for i, r in enumerate(rowids)}
        stage = np.zeros(len(rowids))
        for r, score in fused.items():
            if r in position:
                stage[position[r]] = score
        front = np.flatnonzero(layout.front)
        paper_x = fusion.paper_features(layout, stage, cos, lexical(front), named)
        allowed = np.array([not wanted or p in wanted for p in layout.papers])
        chance = fusion.softmax(paper_x @ fitted.paper) * allowed
        chance = chance / (chance.sum() or 1.0)
        likely = layout.papers[int(np.argmax(chance))]
        chosen = {p for p, c in zip(layout.papers, chance) if c >= fitted.described}
        # a question about two systems: a clause that identifies another paper on its own
        # (a threshold above 1, which no chance reaches, turns this off)
        readable = postings is not None and fitted.clause <= 1.0
        parts = fusion.clauses(original) if readable else []
        for found in self._clause_chances(parts, layout, postings, named):
            found = found * allowed
            if found.max() >= fitted.clause:
                chosen.add(layout.papers[int(np.argmax(found))])
        described = [p for p in layout.papers if p in chosen and p not in named]

        # the candidates: the fused top, and the best passages of a described paper
        top = [r for r in order[: self.settings.rerank] if r in chunks]
        extra = []
        asked = described + (sorted(named) if len(named) + len(described) > 1 else [])
        for p in asked:
            best = union(self.dense(query, 10, {p}), self.lexical(words, 10, {p}))
            extra += [r for r, _ in best if r not in top]
        missing = [r for r in extra if r not in chunks]
        if missing:
            chunks.update(self._chunks(missing, check))
        top += [r for r in dict.fromkeys(extra) if r in chunks]
        rows = np.array([position[r] for r in top], dtype=np.int64)

        held_in: dict[str, np.ndarray] = {}

        def held_by(paper: str) -> np.ndarray:
            """Which of the paper's chunks hold each word: words x its rows, read once."""
            if paper not in held_in:
                own = rowids[layout.rows[paper]]
                held_in[paper] = np.vstack(
                    [postings.term_scores(word, own).sum(axis=0) > 0 for word in tokens]
                )
            return held_in[paper]

        # the words that only identify the likely paper: mostly in its front matter
        drop: set[int] = set()
        if postings is not None and tokens:
            own = layout.rows[likely]
            held = held_by(likely)
            hits_front = (held & layout.front[own]).sum(axis=1)
            hits_all = held.sum(axis=1)
            share = np.divide(hits_front, hits_all, out=np.zeros(len(tokens)), where=hits_all > 0)
            drop = {i for i, s in enumerate(share) if s >= fusion.FRONT_SHARE}
            if len(drop) == len(tokens):
                drop = set()

        vectors = self.store.sentence_vectors(chunks[r].id for r in top)
        qvec = self.encode_query(query)
        # what the question asks, less what identifies the system it asks about
        ask = fusion.asking(original, self.names, {terms[i] for i in drop})
        avec = self.embedder.encode([ask])[0] if ask != query else qvec
        self._asked = (query, ask, avec)
        ask_sentence = np.zeros(len(top))
        question = Question.make(words, qvec, self.idf)
        sentence = np.zeros(len(top))
        held_terms = np.zeros(len(top))
        for i, r in enumerate(top):
            found = vectors.get(chunks[r].id)
            if found is not None and len(found):
                sentence[i] = float((found @ qvec).max())
                ask_sentence[i] = float((found @ avec).max())
            held_terms[i] = sentence_terms(question, chunks[r])
        heading = dict(self._section_run(words, top, chunks)[1])
        dense_top = {r for r, _ in next((r for n, r, _ in runs if n == "dense"), [])[:10]}
        lexical_top = set(list(lexical_of)[:10])
        agree = len(dense_top & lexical_top) / 10
        weights = self.idf(terms) if terms else []
        specific = (sum(weights) / len(weights) / math.log(len(rowids) + 1)) if weights else 0.0
        by_description = not named and bool(described)
        summary = np.array([fusion.is_summary(chunks[r].section, chunks[r].ordinal) for r in top])
        local = np.zeros(len(top))
        if postings is not None and tokens:
            for p in {chunks[r].paper_id for r in top}:
                own = layout.rows[p]
                shares = dict(zip(rowids[own].tolist(), fusion.local_share(held_by(p))))
                for i, r in enumerate(top):
                    if chunks[r].paper_id == p:
                        local[i] = shares.get(r, 0.0)
        dense = fusion.minmax(cos[rows])
        lexical_all = fusion.minmax(lexical(rows))
        x = np.column_stack(
            [
                dense,
                lexical_all,
                fusion.minmax(lexical(rows, frozenset(drop))),
                fusion.minmax(sentence),
                held_terms,
                [heading.get(r, 0.0) for r in top],
                chance[layout.paper_of[rows]],
                [chunks[r].paper_id in named for r in top],
                summary,
                summary & np.array([chunks[r].paper_id == likely for r in top]) & by_description,
                [fusion.is_related(chunks[r].section) for r in top],
                fusion.minmax([fused.get(r, 0.0) for r in top]),
                dense * agree,
                lexical_all * specific,
                dense * by_description,
                local,
                fusion.minmax(self._matrix()[1][rows] @ avec),
                fusion.minmax(ask_sentence),
            ]
        ).astype(float)
        scores = x @ fitted.passage
        floor = float(scores.min()) if len(scores) else 0.0
        rest = [r for r in order if r not in set(top)]
        merged = {r: float(s) for r, s in zip(top, scores)}
        below: Any = fusion.minmax([fused[r] for r in rest]) if rest else []
        for r, s in zip(rest, below):  # the rest keep their fused order, below the scored
            merged[r] = floor - 1.0 + float(s) * 0.5
        return Evidence(
            order=sorted(merged, key=lambda r: -merged[r]),
            scores=merged,
            features={r: x[i] for i, r in enumerate(top)},
            chunks={r: chunks[r] for r in top},
            papers=layout.papers,
            paper_features=paper_x,
            chance={p: float(c) for p, c in zip(layout.papers, chance) if c >= 0.01},
            described=tuple(described),
            asks=ask,
        )

    def _chunks(self, rowids: list[int], check: bool) -> dict[int, Chunk]:
        """The chunks of these rows, as the vectors read hold them (:meth:`_same_rows`); kept
        while those vectors and the index's generation are, since the next query reads most of
        them again (a re-ingest meanwhile may give a kept rowid to another chunk)."""
        vectors, generation = self._matrix(), self.store.generation
        if self._kept is None or self._kept[0] is not vectors or self._kept[1] != generation:
            self._kept = (vectors, generation, {})
        kept = self._kept[2]
        missing = [r for r in rowids if r not in kept]
        if missing:
            found = self._same_rows(self.store.chunks(missing), check)
            if len(kept) + len(found) > self.settings.kept_chunks:
                kept.clear()
            kept.update(found)
        return {r: kept[r] for r in rowids if r in kept}

    def _same_rows(self, chunks: dict[int, Chunk], check: bool) -> dict[int, Chunk]:
        """The chunks whose rowid still holds the chunk the vectors were read with: a re-ingest
        that commits meanwhile may give a deleted chunk's rowid to a new one, whose text must
        not be shown with the old one's score. ``check``: raise _Moved instead of dropping."""
        if self._row_ids is None:
            rowids, _, _, chunk_ids = self._matrix()
            self._row_ids = dict(zip(rowids.tolist(), chunk_ids))
        ids = self._row_ids
        same = {r: c for r, c in chunks.items() if ids.get(r) == c.id}
        if check and len(same) < len(chunks):
            raise _Moved
        return same

    def _section_run(self, words: str, rowids: list[int], chunks: dict[int, Chunk]):
        """("section", the idf-weighted share of the question's words that the passage's
        section heading holds, weight): "leader election" finds the section titled so."""
        terms = query_terms(words)
        stems = [set(t) for t in self._tokenize(terms)]
        weights = self.idf(terms) if terms else []
        total = sum(weights) or 1.0
        ranking = []
        for r in rowids:
            heading = chunks[r].section if r in chunks else None
            if heading:
                have = {t for word in self._tokenize(query_terms(heading)) for t in word}
                share = sum(w for s, w in zip(stems, weights) if s & have) / total
                ranking.append((r, share))
        return "section", sorted(ranking, key=lambda t: -t[1]), self.settings.section_weight

    def _sentence_run(self, query: str, rowids: list[int], chunks: dict[int, Chunk]):
        """("sentence", the best sentence's cosine of each candidate, weight): a passage with
        one sentence right on the question is evidence that a topical passage is not."""
        vectors = self.store.sentence_vectors(chunks[r].id for r in rowids if r in chunks)
        qvec = self.encode_query(query)
        ranking = [
            (r, float((vectors[chunks[r].id] @ qvec).max()))
            for r in rowids
            if r in chunks and len(vectors.get(chunks[r].id, ()))
        ]
        return "best_sentence", sorted(ranking, key=lambda t: -t[1]), self.settings.sentence_weight

    def _weak(self, query: str, runs) -> bool:
        """Whether even the best candidates match weakly: the nearest passage is far from the
        query, or few of the query's words (weighted by rarity) occur in the index at all."""
        best_dense = max(
            (s for name, r, _ in runs if name == "dense" for _, s in r[:1]), default=None
        )
        if best_dense is None:
            best_dense = float(self.dense(query, 1)[0][1]) if len(self._matrix()[0]) else 0.0
        floors = self.settings
        return best_dense < floors.weak_dense or self.term_coverage(query) < floors.weak_terms

    def term_coverage(self, query: str) -> float:
        """The idf-weighted share of the query's words that some chunk holds."""
        terms = query_terms(query)
        if not terms:
            return 1.0
        stats, n = self._term_stats(terms)
        weights = [(w if held else math.log(n + 1), held) for w, held in stats]
        return sum(w for w, held in weights if held) / (sum(w for w, _ in weights) or 1.0)


@dataclass
class Evidence:
    """One question's reading by the fitted models: the candidates' order and scores, each
    scored candidate's features, and the papers it likely asks about."""

    order: list[int]
    scores: dict[int, float]
    features: dict[int, Any]  # rowid -> its PASSAGE_FEATURES values
    chance: dict[str, float]  # paper id -> the chance that the question asks about it
    described: tuple[str, ...]  # papers the question describes without naming them
    asks: str  # what it asks, less what identifies its system (fusion.asking)
    chunks: dict[int, Chunk]  # the scored candidates
    papers: tuple[str, ...]  # the indexed papers, in the order of paper_features' rows
    paper_features: Any  # per paper, its PAPER_FEATURES values

    def groups(self, named_groups: list) -> list:
        """The papers a question asks about, one group per system: each named one, then each
        described one."""
        out = list(named_groups)
        for p in self.described:
            if not any(p in g for g in out):
                out.append(frozenset({p}))
        return out

    def explain(self, rowid: int) -> dict[str, float]:
        from ddsearch.search.fusion import PASSAGE_FEATURES

        found = self.features.get(rowid)
        if found is None:
            return {}
        return {f"f_{n}": round(float(v), 6) for n, v in zip(PASSAGE_FEATURES, found)}


def _join(a: str, b: str, least: int = 21) -> str:
    """a followed by b, less the overlap (`least` chars or more) where a ends as b starts."""
    i = a.find(b[:least], max(0, len(a) - len(b)))
    while i != -1:
        if b.startswith(a[i:]):
            return a + b[len(a) - i :]
        i = a.find(b[:least], i + 1)
    return f"{a} {b}"


def _merge_neighbours(
    ranked: list[tuple[Chunk, float, int]], max_parts: int
) -> list[tuple[Chunk, float, int, tuple[Chunk, ...]]]:
    """Fold a hit into a better-ranked hit on the adjacent chunk of the same paper; each
    result keeps its best rowid and the chunks it is made of (best first)."""
    out: list[list] = []  # [chunk, score, rowid, lowest ordinal, highest ordinal, parts]
    for chunk, score, rowid in ranked:
        for entry in out:
            kept, _, _, lo, hi, parts = entry
            if kept.paper_id != chunk.paper_id or len(parts) >= max_parts:
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
                sentences=(),  # the merged text's sentences are its parts'
            )
            entry[3], entry[4] = min(lo, chunk.ordinal), max(hi, chunk.ordinal)
            entry[5] = (*parts, chunk)
            break
        else:
            out.append([chunk, score, rowid, chunk.ordinal, chunk.ordinal, (chunk,)])
    return [(e[0], e[1], e[2], e[5]) for e in out]
