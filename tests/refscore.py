"""Scoring parsed references against the hand-verified edges of tests/data/citation_edges.json.

An edge is (citing paper, cited catalog id). Its citing sentence is found when one of the
sentences ingest says cite that paper holds the verified sentence (fuzzily: the verified text
was read in pdftotext, ingest's in pdfium) and stands on the verified page.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz

from ddsearch.ingest.resolve import fold
from ddsearch.models import Reference

EDGES = Path(__file__).resolve().parent / "data" / "citation_edges.json"
SAME_SENTENCE = 85  # partial-ratio of the verified sentence in ingest's


def load(path: Path = EDGES) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))["papers"]


@dataclass
class Score:
    true: int = 0  # verified edges
    found: int = 0  # edges ingest resolved
    hits: int = 0  # edges both
    quoted: int = 0  # of the hits, those whose verified sentence ingest found on its page
    misses: list[str] = field(default_factory=list)  # for a failing test's message

    @property
    def precision(self) -> float:
        return self.hits / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.true if self.true else 1.0

    @property
    def sentences(self) -> float:
        return self.quoted / self.hits if self.hits else 1.0

    def line(self) -> str:
        return (
            f"{self.hits}/{self.true} edges found, {self.found - self.hits} wrong: precision "
            f"{self.precision:.3f}, recall {self.recall:.3f}, citing sentence on its page "
            f"{self.sentences:.3f} ({self.quoted}/{self.hits})"
        )


def _quoted(verified: dict, refs: Iterable[Reference]) -> bool:
    want = fold(verified["sentence"])
    return any(
        verified["page"] in c.pages and fuzz.partial_ratio(want, fold(c.text)) >= SAME_SENTENCE
        for r in refs
        for c in r.cited
    )


def score(found: Mapping[str, Sequence[Reference] | None], gold: Mapping[str, dict],
          split: str | None = None) -> Score:  # fmt: skip
    """Edge precision and recall, and citing sentences on their pages, over ``gold``'s papers
    (those of ``split`` only, when given) that ``found`` has."""
    s = Score()
    for pid, paper in gold.items():
        if pid not in found or (split and paper["split"] != split):
            continue
        refs = found[pid] or []
        verified = {e["cites"]: e for e in paper["edges"]}
        resolved = {r.id for r in refs if r.id}
        s.true += len(verified)
        s.found += len(resolved)
        s.hits += len(resolved & set(verified))
        s.misses += [f"{pid} -> {i}: not found" for i in sorted(set(verified) - resolved)]
        s.misses += [f"{pid} -> {i}: wrong" for i in sorted(resolved - set(verified))]
        for cid in sorted(resolved & set(verified)):
            if _quoted(verified[cid], [r for r in refs if r.id == cid]):
                s.quoted += 1
            else:
                page = verified[cid]["page"]
                s.misses.append(f"{pid} -> {cid}: no citing sentence on page {page}")
    return s
