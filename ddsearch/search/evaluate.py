"""Retrieval quality against questions with gold (paper, pages)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ddsearch.models import Hit


class EvalError(ValueError):
    """An evaluation file that cannot be read."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    style: str
    gold: dict[str, frozenset[int]]  # paper id -> gold pages (empty: any page)


def load_questions(path: Path) -> list[Question]:
    questions = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise EvalError(f"{path}: cannot read ({e.strerror or e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            gold: dict[str, set[int]] = defaultdict(set)
            for g in d["gold"]:
                gold[g["paper"]].update(int(p) for p in g.get("pages", []))
            questions.append(
                Question(
                    id=str(d.get("id", n)),
                    question=d["question"],
                    style=d.get("style", "all"),
                    gold={p: frozenset(s) for p, s in gold.items()},
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise EvalError(f"{path}:{n}: not a question with gold papers ({e})") from None
    if not questions:
        raise EvalError(f"{path}: no questions")
    return questions


def _relevant(hit: Hit, q: Question) -> bool:
    pages = q.gold.get(hit.paper.id)
    return pages is not None and (not pages or bool(pages & set(hit.chunk.pages)))


@dataclass
class Scores:
    n: int = 0
    hit: float = 0.0
    rr: float = 0.0
    paper1: float = 0.0
    multi_n: int = 0
    multi: float = 0.0

    def add(self, q: Question, hits: list[Hit], k: int) -> bool:
        self.n += 1
        first = next((h.rank for h in hits[:10] if _relevant(h, q)), None)
        found = first is not None and first <= k
        self.hit += found
        self.rr += 1.0 / first if first else 0.0
        self.paper1 += bool(hits) and hits[0].paper.id in q.gold
        if len(q.gold) > 1:
            self.multi_n += 1
            self.multi += len({h.paper.id for h in hits[:10]} & set(q.gold)) / len(q.gold)
        return found

    def as_dict(self, k: int) -> dict:
        d = {
            "questions": self.n,
            f"hit@{k}": round(self.hit / self.n, 4) if self.n else None,
            "mrr@10": round(self.rr / self.n, 4) if self.n else None,
            "paper@1": round(self.paper1 / self.n, 4) if self.n else None,
        }
        d["multi_questions"] = self.multi_n
        d["multi_recall@10"] = round(self.multi / self.multi_n, 4) if self.multi_n else None
        return d


@dataclass
class Evaluation:
    k: int
    mode: str
    overall: Scores = field(default_factory=Scores)
    styles: dict[str, Scores] = field(default_factory=lambda: defaultdict(Scores))
    missed: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "k": self.k,
            "mode": self.mode,
            "overall": self.overall.as_dict(self.k),
            "styles": {s: v.as_dict(self.k) for s, v in sorted(self.styles.items())},
            "missed": self.missed,
        }


def evaluate(searcher, questions: list[Question], k: int = 5, mode: str = "hybrid") -> Evaluation:
    """Run every question; score hit@k, MRR@10, paper@1 and multi-paper recall@10."""
    ev = Evaluation(k=k, mode=mode)
    for q in questions:
        hits = searcher.search(q.question, k=max(10, k), mode=mode)
        found = ev.overall.add(q, hits, k)
        ev.styles[q.style].add(q, hits, k)
        if not found:
            ev.missed.append(
                {
                    "id": q.id,
                    "question": q.question,
                    "gold": {p: sorted(s) for p, s in q.gold.items()},
                    "got": [(h.paper.id, list(h.chunk.pages)) for h in hits[:k]],
                }
            )
    return ev
