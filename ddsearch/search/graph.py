"""The collection as a citation graph: what a paper cites, who cites it, what to read first.

Every answer comes from the reference lists ingest read (ddsearch.index.store keeps them, with
the sentences that cite each entry and their pages), so each edge can be quoted and cited like
a search hit. A paper ingested before ddsearch read reference lists has none until the next
``ddsearch ingest``; the answers say which papers those are rather than leave them out
silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ddsearch.catalog import UnknownIdError, resolve_ids
from ddsearch.config import Settings
from ddsearch.errors import NotFoundError, UserError
from ddsearch.index.store import Store
from ddsearch.models import Chunk, CitingSentence, Hit, Paper
from ddsearch.search.cite import citation_keys, known_papers, make_citation

__all__ = ["Edge", "Graph", "NoReferencesError", "Step"]


class NoReferencesError(NotFoundError):
    """A paper of the collection whose reference list could not be found (or was never read)."""


@dataclass(frozen=True)
class Edge:
    """One entry of a paper's reference list, seen from the side asked about: for ``refs`` the
    cited paper (``id``: its catalog id, None when the entry names no known paper), for
    ``cited_by`` the citing one. ``source`` is the paper whose sentences ``citations`` are."""

    id: str | None
    label: str
    reference: str
    citations: tuple[CitingSentence, ...]
    source: Paper


@dataclass(frozen=True)
class Step:
    """A paper of a reading order: the papers of the order that build on it (``dependents``,
    directly or through others) and the sentences of those that cite it directly."""

    paper: Paper
    target: bool  # one of the papers the order was asked for
    dependents: tuple[str, ...]
    reasons: tuple[Edge, ...]  # each: a citing paper of the order, its entry and sentences


class Graph:
    """The citation graph of one data home's papers; ``catalog``: the papers an entry may
    name that are not in the collection."""

    def __init__(self, store: Store, catalog: Iterable[Paper] = ()):
        self.store = store
        self.records = store.records()
        self.known = known_papers(catalog, [r.paper for r in self.records.values()])
        self.read = store.reference_lists()  # {paper id: entries} of the lists read
        self._keys: dict[str, str] | None = None

    @classmethod
    def open(cls, settings: Settings, catalog: Iterable[Paper] = ()) -> Graph:
        return cls(Store.open(settings, readonly=True), catalog)

    def close(self) -> None:
        self.store.close()

    @property
    def keys(self) -> dict[str, str]:
        """Citation keys of every known paper, as query and cite make them."""
        if self._keys is None:
            self._keys = citation_keys(self.known.values())
        return self._keys

    @property
    def unread(self) -> list[str]:
        """The papers of the collection whose reference list was never read."""
        return sorted(set(self.records) - set(self.read))

    # -- checking ids ---------------------------------------------------------------------
    def paper_id(self, wanted: str, *, indexed: bool = True) -> str:
        """The id ``wanted`` names (any case): a paper of the collection, or with ``indexed``
        False any known one; else a one-line error naming the closest ids."""
        pool = self.records if indexed else self.known
        try:
            return resolve_ids([wanted], pool)[0]
        except UnknownIdError as e:
            if indexed and wanted.casefold() in {k.casefold() for k in self.known}:
                raise NotFoundError(
                    f"{wanted} is in the catalog but not in the collection",
                    f"ingest it first: 'ddsearch ingest {wanted}'",
                ) from None
            where = "no paper in the collection" if indexed else "no known paper"
            raise UnknownIdError(f"{where} has the id {e.message}",
                                 "see 'ddsearch papers'") from None  # fmt: skip

    def _list(self, pid: str) -> Sequence:
        if pid not in self.read:
            raise NoReferencesError(
                f"{pid} was ingested before ddsearch read reference lists",
                "run 'ddsearch ingest' to read them (chunks and vectors are kept)",
            )
        found = self.store.references(pid) or ()
        if not found:
            raise NoReferencesError(f"{pid}: no reference list found in its PDF")
        return found

    # -- the questions --------------------------------------------------------------------
    def refs(self, wanted: str, *, everything: bool = False) -> list[Edge]:
        """What the paper cites that is known (in the collection or the catalog), in the
        order of its list, each with its citing sentences; ``everything``: every entry."""
        pid = self.paper_id(wanted)
        source = self.records[pid].paper
        return [Edge(r.id, r.label, r.text, r.cited, source)
                for r in self._list(pid) if everything or r.id is not None]  # fmt: skip

    def cited_by(self, wanted: str) -> list[Edge]:
        """The papers of the collection that cite this one (of the collection or catalog),
        each with its entry and the sentences that say what it takes from it."""
        pid = self.paper_id(wanted, indexed=False)
        return [Edge(citer, r.label, r.text, r.cited, self.records[citer].paper)
                for citer, r in self.store.citers(pid) if citer in self.records]  # fmt: skip

    def edges(self) -> dict[tuple[str, str], int]:
        """{(citing, cited): citing sentences} between papers of the collection."""
        out: dict[tuple[str, str], int] = {}
        for a, b in self.store.citation_edges():
            if a in self.records and b in self.records:
                out[(a, b)] = 0
        for (a, b), n in self.store.citing_counts().items():
            if (a, b) in out:
                out[(a, b)] = n
        return out

    def counts(self) -> dict[str, tuple[int, int]]:
        """{paper id: (papers of the collection it cites, papers of the collection citing it)}."""
        cites: dict[str, int] = {}
        cited: dict[str, int] = {}
        for a, b in self.edges():
            cites[a] = cites.get(a, 0) + 1
            cited[b] = cited.get(b, 0) + 1
        return {pid: (cites.get(pid, 0), cited.get(pid, 0)) for pid in self.records}

    def path(self, wanted: Sequence[str], depth: int = 1) -> list[Step]:
        """A reading order for these papers: the papers of the collection they build on
        (what they cite; with ``depth`` 2, what those cite too, and so on), prerequisites first,
        as a topological order of the citation graph; among papers free to go next, the one
        more readings depend on first, then the older. A cycle (two papers citing each other,
        a journal version and its tech report) is read in that same order."""
        if not wanted:
            raise UserError("give at least one paper id")
        if depth < 1:
            raise UserError(f"--depth must be at least 1, not {depth}")
        targets = list(dict.fromkeys(self.paper_id(w) for w in wanted))
        for pid in targets:
            self._list(pid)  # a target without a list has no order to give
        cites: dict[str, set[str]] = {}
        for a, b in self.edges():
            cites.setdefault(a, set()).add(b)
        chosen, frontier, level = set(targets), list(targets), 0
        while frontier and level < depth:
            level += 1
            frontier = [b for a in frontier for b in sorted(cites.get(a, ())) if b not in chosen]
            frontier = list(dict.fromkeys(frontier))
            chosen.update(frontier)
        needs = {a: cites.get(a, set()) & chosen for a in chosen}  # a reads after each of these
        users = {b: {a for a in chosen if b in needs[a]} for b in chosen}
        dependents = {b: _reach(b, users) for b in chosen}
        order: list[str] = []
        left = set(chosen)
        while left:
            free = [p for p in left if not (needs[p] & left)] or list(left)  # a cycle: all
            best = min(free, key=lambda p: self._rank(p, dependents, targets))
            order.append(best)
            left.discard(best)
        steps = []
        for pid in order:
            reasons = [
                Edge(citer, r.label, r.text, r.cited, self.records[citer].paper)
                for citer, r in self.store.citers(pid)
                if citer in users[pid]
            ]
            reasons.sort(key=lambda e: (e.id not in targets, not e.citations, e.id or ""))
            steps.append(Step(self.records[pid].paper, pid in targets,
                              tuple(sorted(dependents[pid])), tuple(reasons)))  # fmt: skip
        return steps

    def _rank(self, pid: str, dependents: dict[str, set[str]], targets: list[str]):
        paper = self.records[pid].paper
        return (pid in targets, -len(dependents[pid]), paper.year or 9999, pid)

    # -- citing sentences as citations ----------------------------------------------------
    def hit(self, edge: Edge, sentence: CitingSentence, rank: int = 1) -> Hit:
        """A citing sentence as a search hit of its paper: cited, linked, exported alike."""
        chunk = Chunk(sentence.chunk_id, edge.source.id, 0, sentence.text, sentence.pages,
                      printed_pages=sentence.printed)  # fmt: skip
        return Hit(rank, chunk, edge.source, 0.0, quote=sentence.text,
                   quote_pages=sentence.pages, quote_printed=sentence.printed)  # fmt: skip

    def citation(self, edge: Edge, sentence: CitingSentence) -> dict:
        """A citing sentence as JSON: its page, page label, quote and a link to the page."""
        c = make_citation(self.hit(edge, sentence), self.keys.get(edge.source.id, ""))
        return {"page": sentence.pages[0] if sentence.pages else None,
                "pages": list(sentence.pages), "page_label": c.pages, "quote": sentence.text,
                "link": c.link, "paper": edge.source.id, "key": c.key}  # fmt: skip

    def edge_json(self, edge: Edge) -> dict:
        return {"id": edge.id, "label": edge.label, "reference": edge.reference,
                "citations": [self.citation(edge, s) for s in edge.citations]}  # fmt: skip

    def step_json(self, step: Step) -> dict:
        return {"id": step.paper.id, "title": step.paper.title, "year": step.paper.year,
                "target": step.target, "dependents": list(step.dependents),
                "reasons": [self.edge_json(e) for e in step.reasons]}  # fmt: skip


def _reach(start: str, users: dict[str, set[str]]) -> set[str]:
    """Every paper that builds on ``start``, directly or through others."""
    seen: set[str] = set()
    todo = list(users[start])
    while todo:
        p = todo.pop()
        if p not in seen and p != start:
            seen.add(p)
            todo.extend(users[p])
    return seen


# -- drawing the whole graph -------------------------------------------------------------
def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def render_graph(graph: Graph, fmt: str) -> str:
    """The collection's citation graph, citing paper -> cited paper, as Graphviz DOT (each
    edge weighted by its citing sentences) or as JSON nodes and edges."""
    import json

    edges = graph.edges()
    counts = graph.counts()
    papers = [graph.records[pid].paper for pid in sorted(graph.records)]
    if fmt == "json":
        doc = {
            "nodes": [{"id": p.id, "title": p.title, "year": p.year,
                       "references_read": p.id in graph.read,
                       "cites": counts[p.id][0], "cited_by": counts[p.id][1]}
                      for p in papers],
            "edges": [{"source": a, "target": b, "sentences": n}
                      for (a, b), n in sorted(edges.items())],
        }  # fmt: skip
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt != "dot":
        raise UserError(f"unknown graph format {fmt!r}; use dot or json")
    out = ["digraph citations {", "  rankdir=BT;", "  node [shape=box];"]
    for p in papers:
        label = f"{p.id}\n{p.year}" if p.year else p.id
        out.append(f"  {_dot_string(p.id)} [label={_dot_string(label)}, "
                   f"tooltip={_dot_string(p.title)}];")  # fmt: skip
    for (a, b), n in sorted(edges.items()):
        out.append(f"  {_dot_string(a)} -> {_dot_string(b)} [weight={max(n, 1)}];")
    out.append("}")
    return "\n".join(out) + "\n"
