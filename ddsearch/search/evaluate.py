"""Retrieval and citation quality against questions with gold (paper, pages, quote).

A hit is relevant when it is from a gold paper and the pages its citation names (the quote's)
meet that paper's gold pages. Besides hit@k, MRR@10, paper@1 and multi-paper recall@10, every
question is scored on what a user pastes: whether the first relevant hit's quote holds the
answer (quote accuracy), whether the top hit cites only gold pages (exact@1), whether the cited
passage is a single page, and whether the quote stands on the page the deep link opens. A
question about several papers also counts as answered at k (every@k) only when each gold
paper has a relevant hit in the top k.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ddsearch.config import EvalSettings, SearchSettings
from ddsearch.errors import UserError
from ddsearch.models import Hit

QUOTE_SHARE = EvalSettings.quote_share  # a quote holds the answer with this share of the gold's
BOOTSTRAP = EvalSettings.bootstrap  # resamples for the 95% intervals


class EvalError(UserError):
    """An evaluation file that cannot be read."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    style: str
    gold: dict[str, frozenset[int]]  # paper id -> gold pages (empty: any page)
    quotes: tuple[str, ...] = ()  # the gold quotes, when given


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
            if not str(d["question"]).strip():
                raise ValueError("the question is empty")
            gold: dict[str, set[int]] = defaultdict(set)
            for g in d["gold"]:
                gold[g["paper"]].update(int(p) for p in g.get("pages", []))
            questions.append(
                Question(
                    id=str(d.get("id", n)),
                    question=d["question"],
                    style=d.get("style", "all"),
                    gold={p: frozenset(s) for p, s in gold.items()},
                    quotes=tuple(g["quote"] for g in d["gold"] if g.get("quote")),
                )
            )
        except (ValueError, KeyError, TypeError) as e:
            raise EvalError(f"{path}:{n}: not a question with gold papers ({e})") from None
    if not questions:
        raise EvalError(f"{path}: no questions")
    return questions


# ---------------------------------------------------------------- the tuning / held-back split


def split_questions(questions: list[Question], held_share: float = 0.4) -> dict[str, str]:
    """Question id -> "tune" or "held": stratified by style and, within a style, by first gold
    paper; decided by a hash of the ids, so the same questions always fall on the same side."""
    strata: dict[tuple[str, str], list[Question]] = defaultdict(list)
    for q in questions:
        strata[(q.style, min(q.gold))].append(q)
    parts: dict[str, str] = {}
    carry = 0.0  # strata of one or two questions: spread the held share across them
    for key in sorted(strata):
        group = sorted(strata[key], key=lambda q: hashlib.sha256(q.id.encode()).hexdigest())
        carry += held_share * len(group)
        held = int(carry)
        carry -= held
        for i, q in enumerate(group):
            parts[q.id] = "held" if i < held else "tune"
    return parts


def load_split(path: Path) -> dict[str, str]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {qid: part for part, ids in data.items() for qid in ids}
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise EvalError(f"{path}: not a split file ({e})") from None


def select(questions: list[Question], split: dict[str, str], part: str) -> list[Question]:
    if part == "all":
        return questions
    chosen = [q for q in questions if split.get(q.id) == part]
    if not chosen:
        raise EvalError(f"no questions in the {part!r} part of the split")
    return chosen


# ---------------------------------------------------------------- per-question scores

_WORD = re.compile(r"[^\W_]+")


def content_words(text: str) -> list[str]:
    from ddsearch.search.rank import STOPWORDS

    words = (w.lower() for w in _WORD.findall(text))
    return [w for w in words if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def quote_holds(quote: str | None, gold: str,
                max_words: int = SearchSettings.quote_max_words) -> bool:  # fmt: skip
    """At least QUOTE_SHARE of the gold quote's content words, in at most max_words words."""
    if not quote or len(quote.split()) > max_words:
        return False
    want = set(content_words(gold))
    return bool(want) and len(want & set(content_words(quote))) >= QUOTE_SHARE * len(want)


def _squash(text: str) -> str:
    import unicodedata

    return "".join(ch for ch in unicodedata.normalize("NFKC", text).lower() if ch.isalnum())


def on_page(quote: str, page_text: str, crosses: bool = False) -> bool:
    """Whether the quote's opening stands on the page (letters and digits compared only); a
    quote that ``crosses`` onto the next page may leave this one after 20 characters."""
    head, page = _squash(quote), _squash(page_text)
    return bool(head) and (head[:40] in page or (crosses and head[:20] in page))


def _relevant(hit: Hit, q: Question) -> bool:
    pages = q.gold.get(hit.paper.id)
    return pages is not None and (not pages or bool(pages & set(hit.cited_pages)))


def score_question(q: Question, hits: list[Hit], k: int, page_text: Callable) -> dict:
    """One question's figures; ``page_text(paper, pdf_page)`` reads a PDF page's text."""
    first = next((h for h in hits[:10] if _relevant(h, q)), None)
    d = {
        "hit": first is not None and first.rank <= k,
        "rr": 1.0 / first.rank if first else 0.0,
        "paper1": bool(hits) and hits[0].paper.id in q.gold,
    }
    if len(q.gold) > 1:
        d["multi"] = len({h.paper.id for h in hits[:10]} & set(q.gold)) / len(q.gold)
        # a question about several papers is answered when each one's answer is in the top k
        d["every"] = all(any(h.paper.id == p and _relevant(h, q) for h in hits[:k]) for p in q.gold)
    if q.quotes:
        d["quote"] = first is not None and any(quote_holds(first.quote, g) for g in q.quotes)
    top = hits[0] if hits else None
    gold = q.gold.get(top.paper.id) if top else None
    d["exact1"] = bool(top and gold is not None and _relevant(top, q)
                       and (not gold or set(top.cited_pages) <= gold))  # fmt: skip
    if first is not None:
        d["single_page"] = len(first.cited_pages) == 1
        if first.quote:
            from ddsearch.search.cite import make_citation

            page = make_citation(first, "").pdf_page
            text = page_text(first.paper, page) if page else None
            if text is not None:
                d["link_page"] = on_page(first.quote, text, len(first.cited_pages) > 1)
    return d


METRICS = {  # name in reports -> per-question field
    "hit": "hit", "mrr@10": "rr", "paper@1": "paper1", "multi_recall@10": "multi",
    "every_paper": "every",
    "quote_acc": "quote", "exact@1": "exact1", "single_page": "single_page",
    "link=quote_page": "link_page",
}  # fmt: skip


def summarise(rows: list[dict], k: int, intervals: bool = False, seed: int = 0) -> dict:
    """Means of each metric over the questions that have it (with bootstrap 95% intervals)."""
    out: dict = {"questions": len(rows)}
    rng = random.Random(seed)
    for name, fieldname in METRICS.items():
        values = [float(r[fieldname]) for r in rows if fieldname in r]
        label = f"hit@{k}" if name == "hit" else f"every@{k}" if name == "every_paper" else name
        out[label] = round(sum(values) / len(values), 4) if values else None
        if name == "multi_recall@10":
            out["multi_questions"] = len(values)
        if intervals and values:
            means = sorted(
                sum(rng.choices(values, k=len(values))) / len(values) for _ in range(BOOTSTRAP)
            )
            out[f"{label}_ci"] = [
                round(means[int(0.025 * BOOTSTRAP)], 4),
                round(means[int(0.975 * BOOTSTRAP) - 1], 4),
            ]
    return out


@dataclass
class Evaluation:
    k: int
    mode: str
    part: str = "all"
    rows: list[dict] = field(default_factory=list)
    missed: list[dict] = field(default_factory=list)

    def as_dict(self, intervals: bool = False) -> dict:
        styles: dict[str, list[dict]] = defaultdict(list)
        for r in self.rows:
            styles[r["style"]].append(r)
        return {
            "k": self.k,
            "mode": self.mode,
            "part": self.part,
            "overall": summarise(self.rows, self.k, intervals),
            "styles": {s: summarise(v, self.k) for s, v in sorted(styles.items())},
            "missed": self.missed,
        }


class PageTexts:
    """The raw text of PDF pages, read once per paper, for the link check."""

    def __init__(self):
        self._texts: dict[str, list[str] | None] = {}

    def __call__(self, paper, page: int) -> str | None:
        if paper.id not in self._texts:
            self._texts[paper.id] = _read_pages(paper.path)
        texts = self._texts[paper.id]
        return texts[page - 1] if texts and 0 < page <= len(texts) else None


def _read_pages(path: str | None) -> list[str] | None:
    if not path or not Path(path).is_file():
        return None
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(path)
    try:
        return [doc[i].get_textpage().get_text_range() for i in range(len(doc))]
    finally:
        doc.close()


def evaluate(
    searcher,
    questions: Iterable[Question],
    k: int = EvalSettings.k,
    mode: str = "hybrid",
    part: str = "all",
    page_text: Callable | None = None,
) -> Evaluation:
    """Run every question with quotes; score retrieval and the citations."""
    ev = Evaluation(k=k, mode=mode, part=part)
    page_text = page_text or PageTexts()
    for q in questions:
        hits = searcher.search(q.question, k=max(10, k), mode=mode)
        searcher.add_quotes(q.question, hits)
        row = score_question(q, hits, k, page_text)
        row.update(id=q.id, style=q.style)
        ev.rows.append(row)
        if not row["hit"]:
            ev.missed.append(
                {
                    "id": q.id,
                    "question": q.question,
                    "gold": {p: sorted(s) for p, s in q.gold.items()},
                    "got": [(h.paper.id, list(h.cited_pages)) for h in hits[:k]],
                }
            )
    return ev
