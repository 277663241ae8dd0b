"""The sentences of a passage that answer the query best, with their offsets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ddsearch.sentences import split_spans

# A neighbour joins the quote when it scores within this much of the best sentence ...
NEIGHBOUR_MARGIN = 0.1
# ... or when the quote so far is shorter than this many characters.
SHORT_QUOTE = 60
# Fragments with fewer words than this are not sentences (headings, "Fig. 3", page numbers).
MIN_WORDS = 3

Encoder = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class Quote:
    """``text == passage[start:end]``; ``score`` is the cosine of its best sentence."""

    text: str
    start: int
    end: int
    score: float = 0.0


def _cosines(query_vec: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    q = np.asarray(query_vec, dtype=np.float64).ravel()
    v = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), -1)
    norms = np.linalg.norm(v, axis=1) * (np.linalg.norm(q) or 1.0)
    norms[norms == 0] = 1.0
    return (v @ q) / norms


SHORTLIST = 5  # sentences per passage that the model scores


def _stem(word: str) -> str:
    """A crude stem, enough to match 'copied', 'copies', 'copy' and 'sales', 'sale'."""
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: len(word) - len(suffix)] + repl
            break
    return word[:5]


def _stems(text: str) -> set[str]:
    from ddsearch.search.rank import query_terms

    return {_stem(t) for t in query_terms(text)}


def shortlist(query: str, sentences: Sequence[str], size: int = SHORTLIST) -> list[str]:
    """The sentences sharing most word stems with the query (ties: passage order)."""
    terms = _stems(query)
    overlap = [len(terms & _stems(s)) for s in sentences]
    order = sorted(range(len(sentences)), key=lambda i: (-overlap[i], i))
    return [sentences[i] for i in order[:size]]


def best_quote(
    query_vec: np.ndarray,
    passage: str,
    encode: Encoder,
    max_sentences: int = 3,
) -> Quote:
    """The best-matching window of 1 to ``max_sentences`` contiguous sentences.

    Starts from the sentence closest to the query and grows towards the better-scoring
    neighbour while that neighbour scores within NEIGHBOUR_MARGIN of the best, or while
    the quote is shorter than SHORT_QUOTE characters. Fragments under MIN_WORDS words are
    not candidates (nor crossed) unless the passage has nothing else.
    """
    spans: Sequence[tuple[int, int]] = split_spans(passage)
    if not spans:
        return Quote("", 0, 0)
    eligible = [len(passage[s:e].split()) >= MIN_WORDS for s, e in spans]
    if not any(eligible):
        eligible = [True] * len(spans)
    idx = [i for i, ok in enumerate(eligible) if ok]
    scores = np.full(len(spans), -np.inf)
    vectors = encode([passage[spans[i][0] : spans[i][1]] for i in idx])
    scores[idx] = _cosines(query_vec, vectors)

    best = int(np.argmax(scores))
    lo = hi = best
    while hi - lo + 1 < max(1, max_sentences):
        options = [i for i in (lo - 1, hi + 1) if 0 <= i < len(spans) and eligible[i]]
        if not options:
            break
        nxt = max(options, key=lambda i: (scores[i], -i))
        short = spans[hi][1] - spans[lo][0] < SHORT_QUOTE
        if not (scores[nxt] >= scores[best] - NEIGHBOUR_MARGIN or short):
            break
        lo, hi = min(lo, nxt), max(hi, nxt)
    start, end = spans[lo][0], spans[hi][1]
    return Quote(passage[start:end], start, end, float(scores[best]))
