"""Fit the paper and passage models (ddsearch/search/rank_model.json) on the tuning parts.

    python bench/fit_rank.py --home HOME [--cv 5] [--write]

Questions: the tuning parts of ../shared/eval/dev.jsonl (bench/dev-split.json) and of
dev-reader.jsonl (bench/dev-reader-split.json), pooled. For every question the hybrid search
gives each indexed paper its PAPER_FEATURES and each scored candidate passage its
PASSAGE_FEATURES (ddsearch.search.fusion); the gold papers are the paper model's targets, and
the candidates on a gold paper's gold pages are the passage model's (twice the weight when the
passage holds a gold quote). Both are softmax models (a conditional logit over the papers,
resp. over one question's candidates), L2-regularised, fitted by L-BFGS. The paper chance from
which a question counts as describing a paper is chosen on the tuning parts' eval figures.

--cv N first scores the whole procedure by N-fold cross-validation over the tuning questions
(each fold's models fitted on the others, its questions run through the real search); then the
models are fitted on all tuning questions and both parts of both files are scored. Only the
tuning parts decide anything; --write saves the model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ddsearch.catalog import load_catalog  # noqa: E402
from ddsearch.search import fusion  # noqa: E402
from ddsearch.search.evaluate import (  # noqa: E402
    PageTexts,
    content_words,
    evaluate,
    load_questions,
    load_split,
    select,
    summarise,
)
from ddsearch.search.searcher import Searcher  # noqa: E402

SETS = (("dev", "bench/dev-split.json"), ("dev-reader", "bench/dev-reader-split.json"))
L2 = 1.0
# (whole question, one clause): the chance from which a paper counts as asked about
DESCRIBED = (
    (1.01, 1.01),
    (0.5, 1.01),
    (1.01, 0.6),
    (1.01, 0.8),
    (1.01, 0.9),
    (0.5, 0.8),
    (0.7, 0.9),
)
FIGURES = ("hit@5", "mrr@10", "paper@1", "every@5", "quote_acc", "exact@1")


def softmax_fit(groups: list[tuple[np.ndarray, np.ndarray]], l2: float = L2) -> np.ndarray:
    """Weights w maximising sum over groups of sum(t * log softmax(X w)), t = y / sum(y)."""
    from scipy.optimize import minimize

    groups = [(x, y / y.sum()) for x, y in groups if y.sum() > 0]
    dim = groups[0][0].shape[1]

    def loss(w):
        value, grad = 0.5 * l2 * w @ w, l2 * w
        for x, t in groups:
            s = x @ w
            s = s - s.max()
            p = np.exp(s)
            p /= p.sum()
            value -= float((t * np.log(p + 1e-12)).sum())
            grad = grad + x.T @ (p - t)
        return value, grad

    return minimize(loss, np.zeros(dim), jac=True, method="L-BFGS-B").x


class Fitter:
    def __init__(self, home: Path):
        self.searcher = Searcher(home, catalog=load_catalog())
        self.searcher.warm()
        self.pages = PageTexts()
        self.questions = {}
        for name, split in SETS:
            qs = load_questions(REPO.parent / "shared/eval" / f"{name}.jsonl")
            parts = load_split(REPO / split)
            self.questions[name] = {p: select(qs, parts, p) for p in ("tune", "held")}
        self.tmp = Path(tempfile.mkdtemp()) / "rank_model.json"

    def use(self, paper_w, passage_w, described, note: str = "trial") -> None:
        self.tmp.write_text(json.dumps(_model_json(paper_w, passage_w, described, note)))
        fusion._MODEL_PATH = self.tmp
        fusion._load.cache_clear()

    def samples(self, questions):
        """(paper groups, passage groups): features and targets of each question."""
        papers, passages = [], []
        for q in questions:
            self.searcher.search(q.question, k=10)
            ev = self.searcher.last_evidence
            if ev is None:
                continue
            papers.append(
                (
                    np.asarray(ev.paper_features, float),
                    np.array([p in q.gold for p in ev.papers], float),
                )
            )
            rows = list(ev.features)
            x = np.vstack([ev.features[r] for r in rows])
            y = np.array([_target(ev.chunks[r], q) for r in rows])
            passages.append((x, y))
        return papers, passages

    def fit(self, questions, described: float):
        start_p = np.array(
            json.loads((REPO / "ddsearch/search/rank_model.json").read_text())["paper_weights"]
        )
        start_c = np.array(
            json.loads((REPO / "ddsearch/search/rank_model.json").read_text())["passage_weights"]
        )
        self.use(start_p, start_c, described)
        papers, _ = self.samples(questions)
        paper_w = softmax_fit(papers)
        self.use(paper_w, start_c, described)  # the passage features read the paper model
        _, passages = self.samples(questions)
        passage_w = softmax_fit(passages)
        self.use(paper_w, passage_w, described)
        return paper_w, passage_w

    def score(self, questions) -> dict:
        return summarise(evaluate(self.searcher, questions, page_text=self.pages).rows, 5)


def _target(chunk, q) -> float:
    pages = q.gold.get(chunk.paper_id)
    if pages is None or (pages and not pages & set(chunk.pages)):
        return 0.0
    have = set(content_words(chunk.text))
    holds = any(
        len(set(content_words(g)) & have) >= 0.6 * len(set(content_words(g))) for g in q.quotes
    )
    return 2.0 if holds else 1.0


def _model_json(paper_w, passage_w, described, note):
    return {
        "paper_features": list(fusion.PAPER_FEATURES),
        "paper_weights": [round(float(v), 6) for v in paper_w],
        "passage_features": list(fusion.PASSAGE_FEATURES),
        "passage_weights": [round(float(v), 6) for v in passage_w],
        "described": described[0],
        "clause": described[1],
        "fitted_on": note,
    }


def line(name: str, figures: dict) -> str:
    return f"{name:<22}" + " ".join(
        f"{k} {figures[k]:.3f}" for k in FIGURES if figures.get(k) is not None
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--cv", type=int, default=0, help="folds of cross-validation first (0: none)")
    ap.add_argument(
        "--write", action="store_true", help="save the model fitted on all tuning questions"
    )
    ap.add_argument(
        "--described",
        type=float,
        nargs=2,
        metavar=("WHOLE", "CLAUSE"),
        help="use these thresholds instead of choosing them",
    )
    args = ap.parse_args()
    f = Fitter(args.home)
    tune = [q for name, _ in SETS for q in f.questions[name]["tune"]]

    # the described threshold, chosen on the tuning parts with models fitted on them
    best = (tuple(args.described), 0.0) if args.described is not None else None
    for described in DESCRIBED if args.described is None else ():
        f.fit(tune, described)
        figures = {name: f.score(f.questions[name]["tune"]) for name, _ in SETS}
        value = sum(
            figures[n]["mrr@10"] + figures[n]["hit@5"] + (figures[n]["every@5"] or 0)
            for n in figures
        )
        print(
            f"described {described}: " + " | ".join(line(n, figures[n]) for n in figures),
            flush=True,
        )
        if best is None or value > best[1] + 1e-9:
            best = (described, value)
    described = best[0]
    print(f"described: {described}")

    if args.cv:
        rng = np.random.default_rng(0)
        order = rng.permutation(len(tune))
        rows = {name: [] for name, _ in SETS}
        for fold in range(args.cv):
            test = {int(i) for i in order[fold :: args.cv]}
            f.fit([q for i, q in enumerate(tune) if i not in test], described)
            held = [q for i, q in enumerate(tune) if i in test]
            for name, _ in SETS:
                ids = {q.id for q in f.questions[name]["tune"]}
                part = [q for q in held if q.id in ids]
                if part:
                    rows[name] += evaluate(f.searcher, part, page_text=f.pages).rows
        for name in rows:
            print(line(f"CV {name}", summarise(rows[name], 5)))

    paper_w, passage_w = f.fit(tune, described)
    for name, _ in SETS:
        for part in ("tune", "held"):
            print(line(f"{name} {part}", f.score(f.questions[name][part])))
    print("paper:", dict(zip(fusion.PAPER_FEATURES, np.round(paper_w, 3))))
    print("passage:", dict(zip(fusion.PASSAGE_FEATURES, np.round(passage_w, 3))))
    if args.write:
        note = f"tune parts of dev-split.json and dev-reader-split.json ({len(tune)} questions)"
        path = REPO / "ddsearch/search/rank_model.json"
        path.write_text(
            json.dumps(_model_json(paper_w, passage_w, described, note), indent=1) + "\n"
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
