"""Fit the quote model (ddsearch/search/quote_model.json) on the tuning part of the dev questions.

    python bench/fit_quote.py --home HOME [--cv 5] [--write]

Questions: the tuning parts of ../shared/eval/dev.jsonl (bench/dev-split.json) and
dev-reader.jsonl (bench/dev-reader-split.json), pooled. For every tuning question, each sentence of each top-10 hit from a gold paper is a sample; it is
positive when it holds most of a gold quote (or is most of one, for quotes of several sentences).
A conditional logit (softmax over each chunk's sentences, L2, L-BFGS) over
ddsearch.search.quote.FEATURES gives the weights;
then the join probability (how much chance of holding the answer a neighbouring sentence must
add to join the quote) is chosen on the tuning part's quote accuracy. Both parts' figures are printed; only the tuning
part decides anything.
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
from ddsearch.search import quote as quote_module  # noqa: E402
from ddsearch.search.evaluate import (  # noqa: E402
    PageTexts,
    content_words,
    evaluate,
    load_questions,
    load_split,
    select,
    summarise,
)
from ddsearch.search.quote import FEATURES, features  # noqa: E402
from ddsearch.search.searcher import Searcher  # noqa: E402

MODEL = REPO / "ddsearch" / "search" / "quote_model.json"
L2 = 1.0
JOINS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def label(sentence: str, golds: tuple[str, ...]) -> bool:
    have = set(content_words(sentence))
    for gold in golds:
        want = set(content_words(gold))
        if not want or not have:
            continue
        if len(want & have) >= 0.5 * len(want) or len(want & have) >= 0.7 * len(have) >= 3:
            return True
    return False


def samples(searcher: Searcher, questions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, labels, group) of every sentence; a group is one chunk of one question."""
    xs, ys, groups = [], [], []
    for q in questions:
        if not q.quotes:
            continue
        hits = searcher.search(q.question, k=10)
        question = searcher.question(q.question)
        parts = [c for h in hits if h.paper.id in q.gold for c in h.parts or (h.chunk,)]
        vectors = searcher.store.sentence_vectors(c.id for c in parts)
        for hit in hits:
            if hit.paper.id not in q.gold:
                continue
            for part in hit.parts or (hit.chunk,):
                if part.id not in vectors or not part.sentences:
                    continue
                xs.append(features(question, part, vectors[part.id], hit.scores.get("dense", 0)))
                ys.extend(label(part.text[s.start : s.end], q.quotes) for s in part.sentences)
                groups.extend([len(xs)] * len(part.sentences))
    return np.vstack(xs), np.array(ys, dtype=float), np.array(groups)


def fit_logistic(x: np.ndarray, y: np.ndarray, groups=None) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method; the bias is not penalised."""
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    penalty = np.full(a.shape[1], L2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-(a @ w)))
        grad = a.T @ (p - y) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def fit_choice(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, float]:
    """A conditional logit: within each chunk, softmax over its sentences, fitted to put the
    probability on the sentences that hold the answer (L2-regularised, L-BFGS). The quote is
    chosen among one hit's sentences, so only differences within a chunk matter."""
    from scipy.optimize import minimize

    keep = np.isin(groups, np.unique(groups[y > 0]))  # chunks with an answer sentence
    x, y, groups = x[keep], y[keep], groups[keep]
    _, g = np.unique(groups, return_inverse=True)
    n_groups = g.max() + 1

    def loss(w):
        s = x @ w
        peak = np.full(n_groups, -np.inf)
        np.maximum.at(peak, g, s)
        e = np.exp(s - peak[g])
        z = np.bincount(g, e, n_groups)
        p = e / z[g]
        target = y / np.bincount(g, y, n_groups)[g]  # spread over a chunk's answer sentences
        value = -(target * np.log(p + 1e-12)).sum() + 0.5 * L2 * w @ w
        grad_s = p * np.bincount(g, target, n_groups)[g] - target
        return value, x.T @ grad_s + L2 * w

    w = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B").x
    return w, 0.0


def standalone(searcher: Searcher) -> None:
    """Have the searcher quote from sentences embedded one by one instead of the stored vectors."""
    cache: dict[str, np.ndarray] = {}

    def sentence_vectors(chunk_ids):
        ids = list(chunk_ids)
        chunks = {c.id: c for c in searcher.store.chunks_by_id(ids)}
        todo = [i for i in ids if i not in cache and i in chunks]
        texts = [chunks[i].text[s.start : s.end] for i in todo for s in chunks[i].sentences]
        vectors = searcher.embedder.encode(texts) if texts else []
        at = 0
        for i in todo:
            n = len(chunks[i].sentences)
            cache[i] = np.asarray(vectors[at : at + n])
            at += n
        return {i: cache[i] for i in ids if i in cache}

    searcher.store.sentence_vectors = sentence_vectors
    global MODEL
    MODEL = Path(tempfile.mkdtemp()) / "quote_model.standalone.json"
    MODEL.write_text(quote_module._MODEL_PATH.read_text())
    quote_module._MODEL_PATH = MODEL


def write(weights, bias, mean, scale, join, note: str) -> None:
    quote_module._MODEL_PATH = MODEL
    MODEL.write_text(
        json.dumps(
            {
                "features": list(FEATURES),
                "weights": [round(float(v), 6) for v in weights],
                "bias": round(bias, 6),
                "mean": [round(float(v), 6) for v in mean],
                "scale": [round(float(v), 6) for v in scale],
                "join_probability": join,
                "fitted_on": note,
            },
            indent=1,
        )
        + "\n"
    )
    quote_module._model.cache_clear()


SETS = (("dev", "bench/dev-split.json"), ("dev-reader", "bench/dev-reader-split.json"))


def parts(args) -> dict[str, dict[str, list]]:
    """{file: {"tune": [...], "held": [...]}} of both question files."""
    out = {}
    for name, split in SETS:
        questions = load_questions(args.eval_dir / f"{name}.jsonl")
        chosen = load_split(REPO / split)
        out[name] = {p: select(questions, chosen, p) for p in ("tune", "held")}
    return out


def fitted(searcher, questions, fit):
    x, y, groups = samples(searcher, questions)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    weights, bias = fit((x - mean) / scale, y, groups)
    return weights, bias, mean, scale, len(y), int(y.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--eval-dir", type=Path, default=REPO.parent / "shared/eval")
    ap.add_argument(
        "--vectors",
        choices=["stored", "standalone"],
        default="stored",
        help="stored: the late-chunked vectors from ingest; standalone: embed each sentence "
        "alone (with fp32 weights, at query time) to compare; writes no model",
    )
    ap.add_argument(
        "--fit",
        choices=["logistic", "choice"],
        default="logistic",
        help="pointwise logistic regression, or a softmax within each chunk",
    )
    ap.add_argument("--cv", type=int, default=0, help="folds of cross-validation first")
    ap.add_argument("--write", action="store_true", help="save the model (else: report only)")
    args = ap.parse_args()

    questions = parts(args)
    tune = [q for name in questions for q in questions[name]["tune"]]
    searcher = Searcher(args.home, catalog=load_catalog())
    searcher.warm()
    if args.vectors == "standalone":
        standalone(searcher)
    fit = fit_choice if args.fit == "choice" else fit_logistic
    pages = PageTexts()
    saved = quote_module._MODEL_PATH.read_text()
    global MODEL
    MODEL = Path(tempfile.mkdtemp()) / "quote_model.trial.json"  # one per run
    quote_module._MODEL_PATH = MODEL

    if args.cv:
        order = np.random.default_rng(0).permutation(len(tune))
        rows = {name: [] for name in questions}
        for fold in range(args.cv):
            test = {int(i) for i in order[fold :: args.cv]}
            weights, bias, mean, scale, _, _ = fitted(
                searcher, [q for i, q in enumerate(tune) if i not in test], fit
            )
            write(weights, bias, mean, scale, 0.0, "cv")
            for name in questions:
                ids = {q.id for q in questions[name]["tune"]}
                part = [q for i, q in enumerate(tune) if i in test and q.id in ids]
                rows[name] += evaluate(searcher, part, page_text=pages).rows
        for name in rows:
            print(f"CV {name}: quote_acc {summarise(rows[name], 5)['quote_acc']:.3f}", flush=True)

    weights, bias, mean, scale, n, positive = fitted(searcher, tune, fit)
    print(f"{n} sentences, {positive} positive")
    for name, w in sorted(zip(FEATURES, weights), key=lambda t: -abs(t[1])):
        print(f"  {name:<18}{w:+.3f}")
    best = None
    for join in JOINS:
        write(weights, bias, mean, scale, join, "trial")
        acc = [summarise(evaluate(searcher, questions[n]["tune"], page_text=pages).rows, 5)
               ["quote_acc"] for n in questions]  # fmt: skip
        value = sum(a * len(questions[n]["tune"]) for a, n in zip(acc, questions))
        print(f"join {join}: tune quote_acc " + ", ".join(f"{a:.3f}" for a in acc))
        if best is None or value > best[1] + 1e-9:
            best = (join, value)
    write(weights, bias, mean, scale, best[0], "trial")
    for name in questions:
        for part in ("tune", "held"):
            figures = summarise(evaluate(searcher, questions[name][part], page_text=pages).rows, 5)
            print(f"{name} {part}: quote_acc {figures['quote_acc']:.3f}, exact@1 "
                  f"{figures['exact@1']:.3f}, hit@5 {figures['hit@5']:.3f}, "
                  f"link {figures['link=quote_page']:.3f}")  # fmt: skip
    note = f"tune parts of dev-split.json and dev-reader-split.json ({len(tune)} questions, {n} sentences)"
    target = REPO / "ddsearch" / "search" / "quote_model.json"
    if args.write and args.vectors == "stored":
        MODEL = target
        write(weights, bias, mean, scale, best[0], note)
        print(f"wrote {target} (join probability {best[0]})")
    else:
        target.write_text(saved)


if __name__ == "__main__":
    main()
