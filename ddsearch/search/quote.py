"""The quote: the 1-3 contiguous sentences of a hit that answer the question best.

Every sentence of a passage has a vector computed at ingest (ddsearch.index.embed), so picking a
quote embeds nothing. Each sentence is described by a few signals (its similarity to the question,
alone and against the passage's best, the share of the question's rare terms and word pairs it
holds, numbers where the question asks for a quantity, its length and place) and scored by a
logistic model fitted on the tuning part of the dev questions (bench/fit_quote.py writes
quote_model.json beside this file). Captions and fragments are never quoted while a passage has
a real sentence, and a quote never spans a caption.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from ddsearch.config import SearchSettings
from ddsearch.models import Chunk

# for callers without settings: SearchSettings' own defaults (why: there)
MIN_WORDS = SearchSettings.quote_min_words
MAX_QUOTE_WORDS = SearchSettings.quote_max_words
_NUMBER = re.compile(r"\d")
# a question that wants a quantity: the sentence with the number is the answer
_QUANTITY = re.compile(
    r"\b(?:how (?:many|much|long|large|big|fast|often|quickly|soon|far|small|slow)|"
    r"what (?:fraction|percentage|proportion|share|size|rate|number|latency|throughput)|"
    r"by how much|how .* (?:take|last))\b",
    re.I,
)
FEATURES = (
    "cosine", "cosine_gap", "cosine_rank", "rare_terms", "rare_density", "rarest", "terms",
    "pairs", "number", "quantity_number", "first", "short", "long", "neighbour_cosine",
    "neighbour_rare", "ask_cosine", "ask_gap", "ask_rare",
)  # fmt: skip


@dataclass(frozen=True)
class Quote:
    """``text == chunk.text[start:end]``, standing on PDF ``pages`` (printed as ``printed``)."""

    text: str
    start: int
    end: int
    pages: tuple[int, ...]
    printed: tuple[str, ...]
    score: float  # the model's score of its best sentence


@dataclass(frozen=True)
class Question:
    """What the quote model needs of the question, computed once per query."""

    vector: np.ndarray
    stems: dict[str, float]  # stem -> idf weight
    pairs: frozenset[tuple[str, str]]  # adjacent content-word stems
    quantity: bool
    # what it asks, less what identifies the system (ddsearch.search.fusion.asking)
    ask_vector: np.ndarray
    ask_stems: dict[str, float]

    @classmethod
    def make(cls, text: str, vector, idf: Callable[[list[str]], list[float]],
             ask: tuple[str, np.ndarray] | None = None) -> Question:  # fmt: skip
        """``ask``: the asking part's text and vector (default: the whole question's)."""
        stems = _weighted_stems(text, idf)
        words = [stem(t) for t in query_terms_in_order(text)]
        vector = np.asarray(vector, dtype=np.float32)
        return cls(
            vector=vector,
            stems=stems,
            pairs=frozenset(zip(words, words[1:])),
            quantity=bool(_QUANTITY.search(text)),
            ask_vector=vector if ask is None else np.asarray(ask[1], dtype=np.float32),
            ask_stems=stems if ask is None else _weighted_stems(ask[0], idf),
        )


def _weighted_stems(text: str, idf: Callable[[list[str]], list[float]]) -> dict[str, float]:
    """stem -> idf weight of the text's content words."""
    from ddsearch.search.rank import query_terms

    terms = query_terms(text)
    weights = idf(terms) if terms else []
    stems: dict[str, float] = {}
    for term, w in zip(terms, weights):
        stems[stem(term)] = max(w, stems.get(stem(term), 0.0))
    return stems


def query_terms_in_order(text: str) -> list[str]:
    """Content words in order, repeats kept (for word pairs)."""
    from ddsearch.search.rank import _TOKEN, STOPWORDS

    return [t for t in (w.lower() for w in _TOKEN.findall(text)) if t not in STOPWORDS]


@lru_cache(maxsize=1 << 16)  # a query stems thousands of words, nearly all seen before
def stem(word: str) -> str:
    """A crude stem, enough to match 'copied', 'copies', 'copy' and 'sales', 'sale'."""
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: len(word) - len(suffix)] + repl
            break
    return word[:6]


_MODEL_PATH = Path(__file__).with_name("quote_model.json")


@cache
def _model() -> tuple[np.ndarray, float, np.ndarray, np.ndarray, float]:
    """(weights, bias, feature means, feature scales, join probability) from quote_model.json."""
    data = json.loads(_MODEL_PATH.read_text())
    if tuple(data["features"]) != FEATURES:
        raise RuntimeError("quote_model.json was fitted on other features: run bench/fit_quote.py")
    return (
        np.array(data["weights"]),
        float(data["bias"]),
        np.array(data["mean"]),
        np.array(data["scale"]),
        float(data["join_probability"]),
    )


def features(question: Question, chunk: Chunk, vectors: np.ndarray, passage_cosine: float):
    """One row of FEATURES per sentence of the chunk (``passage_cosine`` is the chunk's own)."""
    n = len(chunk.sentences)
    out = np.zeros((n, len(FEATURES)))
    if n == 0:
        return out
    cos = vectors @ question.vector if len(vectors) else np.zeros(n)
    order = np.argsort(-cos, kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n)
    ask = vectors @ question.ask_vector if len(vectors) else np.zeros(n)
    total = sum(question.stems.values()) or 1.0
    ask_total = sum(question.ask_stems.values()) or 1.0
    rarest = max(question.stems.values(), default=0.0) or 1.0
    rare = np.zeros(n)
    ask_rare = np.zeros(n)
    rows = []
    for i, s in enumerate(chunk.sentences):
        words = query_terms_in_order(chunk.text[s.start : s.end])
        stems = [stem(w) for w in words]
        have = set(stems)
        shared = [t for t in question.stems if t in have]
        rare[i] = sum(question.stems[t] for t in shared) / total
        ask_rare[i] = sum(w for t, w in question.ask_stems.items() if t in have) / ask_total
        pairs = set(zip(stems, stems[1:]))
        has_number = bool(_NUMBER.search(chunk.text[s.start : s.end]))
        rows.append((words, shared, pairs, has_number))
    for i, (words, shared, pairs, has_number) in enumerate(rows):
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < n]
        out[i] = (
            cos[i],
            cos[i] - cos.max(),
            rank[i] / n,
            rare[i],
            rare[i] / math.sqrt(max(1, len(words))),
            max((question.stems[t] for t in shared), default=0.0) / rarest,
            len(shared) / max(1, len(question.stems)),
            len(pairs & question.pairs) / max(1, len(question.pairs)),
            has_number,
            has_number and question.quantity,
            i == 0,
            len(words) < 6,
            math.log1p(len(words)) / 4,
            max((cos[j] for j in neighbours), default=cos[i]),
            max((rare[j] for j in neighbours), default=rare[i]),
            ask[i],
            ask[i] - ask.max(),
            ask_rare[i],
        )
    return out


@lru_cache(maxsize=1 << 15)  # every query reads the candidates' sentences: each once
def sentence_stems(text: str) -> frozenset[str]:
    """The stems of a sentence's content words."""
    return frozenset(stem(w) for w in query_terms_in_order(text))


def sentence_terms(question: Question, chunk: Chunk) -> float:
    """The largest idf-weighted share of the question's words that one sentence of the chunk
    holds: a passage with one sentence on the question's rare words answers it more often than
    one that holds them scattered."""
    total = sum(question.stems.values())
    if not total:
        return 0.0
    best = 0.0
    for s in chunk.sentences:
        have = sentence_stems(chunk.text[s.start : s.end])
        best = max(best, sum(w for t, w in question.stems.items() if t in have))
    return best / total


def sentence_scores(question: Question, chunk: Chunk, vectors, passage_cosine: float):
    """The model's log-odds that each sentence holds the answer."""
    weights, bias, mean, scale, _ = _model()
    x = (features(question, chunk, vectors, passage_cosine) - mean) / scale
    return x @ weights + bias


def _quotable(chunk: Chunk, min_words: int = MIN_WORDS) -> list[bool]:
    ok = [
        not s.caption and len(chunk.text[s.start : s.end].split()) >= min_words
        for s in chunk.sentences
    ]
    return ok if any(ok) else [not s.caption for s in chunk.sentences]


_CLAUSE_END = ",;:"  # a word ending in one of these ends a clause of a long sentence


def trim(text: str, start: int, end: int, max_words: int, min_words: int = MIN_WORDS,
         question: Question | None = None) -> tuple[int, int]:  # fmt: skip
    """The part of ``text[start:end]`` to quote: all of it within ``max_words`` words; of one
    sentence longer than that (often a table or a formula the text ran into), at most
    ``max_words`` words that hold the most idf weight of the question's words, from the
    sentence's start or else the earliest clause that starts such a part, to the first place a
    clause ends (else between words) where it holds that much; where it holds none of them, its
    first ``max_words`` words. A quote past that length is read as a passage, not as the
    sentence that answers."""
    words = [m.span() for m in re.finditer(r"\S+", text[start:end])]
    n = len(words)
    if n <= max_words:
        return start, end
    weights = question.stems if question is not None else {}
    held_by = [sentence_stems(text[start + a : start + b]) & weights.keys() for a, b in words]
    real = [any(c.isalnum() for c in text[start + a : start + b]) for a, b in words]
    ends = [text[start + b - 1] in _CLAUSE_END or k == n - 1 for k, (a, b) in enumerate(words)]
    firsts = [0] + [k + 1 for k in range(n - 1) if ends[k]]
    best: tuple[tuple, int, int] | None = None
    for i in firsts:
        held: set[str] = set()
        count = 0
        last = min(i + max_words, n) - 1
        for j in range(i, last + 1):
            held |= held_by[j]
            count += real[j]
            if count < min_words or not (ends[j] or j == last):
                continue
            weight = sum(w for t, w in weights.items() if t in held)  # in one order: exact ties
            # nothing of the question in it: as much of the sentence's start as fits
            key = (weight, -i, ends[j], i - j) if weight else (0.0, -i, j - i, ends[j])
            if best is None or key > best[0]:
                best = (key, i, j)
    if best is None:  # no part of min_words words: the first max_words words
        best = ((), 0, max_words - 1)
    _, i, j = best
    a, b = start + words[i][0], start + words[j][1]
    kept = text[a:b].rstrip(_CLAUSE_END).rstrip()
    return a, a + (len(kept) or b - a)


def pick(chunk: Chunk, scores: Sequence[float], max_sentences: int = SearchSettings.quote_sentences,
         join: float | None = None, max_words: int = MAX_QUOTE_WORDS,
         min_words: int = MIN_WORDS, question: Question | None = None) -> Quote | None:  # fmt: skip
    """The run of 1 to ``max_sentences`` contiguous quotable sentences, at most MAX_QUOTE_WORDS
    words, that most likely holds the answer: each sentence adds its probability less ``join``
    (default: the model's), so a neighbour joins when it adds more than ``join`` of chance.
    A sentence longer than that is quoted alone, cut to its part that holds the most of the
    ``question``'s words (``trim``)."""
    sentences = chunk.sentences
    ok = _quotable(chunk, min_words)
    if not any(ok):
        return None
    join = _model()[4] if join is None else join
    odds = np.asarray(scores, dtype=float)
    gain = 1 / (1 + np.exp(-odds)) - join
    best: tuple[float, int, int] | None = None
    for lo in (i for i in range(len(sentences)) if ok[i]):
        value = 0.0
        for hi in range(lo, min(len(sentences), lo + max_sentences)):
            words = len(chunk.text[sentences[lo].start : sentences[hi].end].split())
            if not ok[hi] or (hi > lo and words > max_words):
                break
            value += gain[hi]
            if best is None or value > best[0] + 1e-12:
                best = (value, lo, hi)
    assert best is not None  # some sentence is quotable
    _, lo, hi = best
    run = sentences[lo : hi + 1]
    start, end = trim(chunk.text, run[0].start, run[-1].end, max_words, min_words, question)
    chance = 1 - np.prod(1 / (1 + np.exp(odds[lo : hi + 1])))  # that some sentence answers
    return Quote(
        chunk.text[start:end],
        start,
        end,
        tuple(dict.fromkeys(p for s in run for p in s.pages)),
        tuple(dict.fromkeys(p for s in run for p in s.printed)),
        float(math.log(max(chance, 1e-12) / max(1 - chance, 1e-12))),
    )
