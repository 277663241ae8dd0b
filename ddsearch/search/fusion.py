"""Fusion by evidence: which paper a question asks about, then which of its passages answers.

Two small linear models, fitted on the tuning parts of the dev questions by bench/fit_rank.py
(rank_model.json beside this file):

- the **paper model** reads, for every indexed paper, how well its best passages match the
  question, how well its front matter (title, authors, abstract, the opening of its
  introduction) does, and whether the question names it; a softmax over the papers gives the
  chance that the question asks about each one. A question that describes a system instead of
  naming it ("Facebook's inbox-search store") identifies its paper this way.
- the **passage model** weighs each candidate passage's evidence: dense and lexical match, the
  same without the words that only identify the paper, its best sentence (cosine and the
  question's rare terms), its section heading, its paper's chance, and where it stands (front
  matter, related work), and the passage's and its best sentence's cosine with what the
  question asks once the phrase and words that only say which system are gone. Some runs are
  also weighed by what the question carries: how much the dense and lexical rankers agree, how
  specific its words are, whether it describes a system.

Every feature is computed from the index alone; the models hold no question or paper.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

PAPER_FEATURES = ("best", "top3", "front_lexical", "front_dense", "dense", "named")
PASSAGE_FEATURES = (
    "dense", "lexical", "lexical_rest", "sentence", "sentence_terms", "section", "paper",
    "named", "summary", "summary_described", "related", "fused", "dense_agree",
    "lexical_specific", "dense_described", "lexical_local", "ask_dense", "ask_sentence",
)  # fmt: skip
FRONT_CHUNKS = 3  # a paper's first chunks: title, authors, abstract, the introduction's start
FRONT_SHARE = 0.5  # a word whose paper-hits are mostly front matter identifies the paper
_SUMMARY = re.compile(r"\b(?:abstract|introduction|conclusions?|summary|concluding)\b", re.I)
_RELATED = re.compile(r"\b(?:related|previous|prior)\s+work\b", re.I)
_MODEL_PATH = Path(__file__).with_name("rank_model.json")
# where a question about two systems turns from one to the other
_CLAUSE = re.compile(
    r"\s*(?:[,;:]\s*)?\b(?:and|but|while|whereas|versus|vs|compared (?:with|to)|than|unlike)\b\s*",
    re.I,
)
MIN_CLAUSE_WORDS = 3


@dataclass(frozen=True)
class RankModel:
    paper: np.ndarray  # weights over PAPER_FEATURES
    passage: np.ndarray  # weights over PASSAGE_FEATURES
    described: float  # a paper's chance from which a question is taken to ask about it
    clause: float  # the same for one clause of a question searched on its own
    fitted_on: str


def model() -> RankModel:
    """The fitted weights (bench/fit_rank.py writes them)."""
    return _load(_MODEL_PATH)


@cache
def _load(path: Path) -> RankModel:
    data = json.loads(Path(path).read_text())
    if (
        tuple(data["paper_features"]) != PAPER_FEATURES
        or tuple(data["passage_features"]) != PASSAGE_FEATURES
    ):
        raise RuntimeError("rank_model.json was fitted on other features: run bench/fit_rank.py")
    return RankModel(
        np.array(data["paper_weights"], dtype=float),
        np.array(data["passage_weights"], dtype=float),
        float(data["described"]),
        float(data["clause"]),
        data.get("fitted_on", ""),
    )


def minmax(values) -> np.ndarray:
    """Scores scaled to [0, 1] over one query's candidates (all equal: 1)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    lo, hi = v.min(), v.max()
    return (v - lo) / (hi - lo) if hi > lo else np.ones_like(v)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max()) if z.size else z
    return e / e.sum() if z.size else z


def is_summary(section: str | None, ordinal: int) -> bool:
    """Front matter or a section that sums the paper up: where a description of the system
    matches best, and seldom the passage that answers."""
    return ordinal < FRONT_CHUNKS or bool(section and _SUMMARY.search(section))


def is_related(section: str | None) -> bool:
    return bool(section and _RELATED.search(section))


@dataclass(frozen=True)
class Layout:
    """Where each row of an index's vectors stands (rows in the order of ``Store.vectors``)."""

    papers: tuple[str, ...]  # each paper once, in order of its first row
    paper_of: np.ndarray  # per row: its paper's index in ``papers``
    front: np.ndarray  # per row: one of its paper's first FRONT_CHUNKS chunks
    rows: dict[str, np.ndarray]  # paper id -> its rows' positions

    @classmethod
    def of(cls, owners, chunk_ids) -> Layout:
        papers = tuple(dict.fromkeys(owners))
        index = {p: i for i, p in enumerate(papers)}
        paper_of = np.fromiter((index[o] for o in owners), dtype=np.int64, count=len(owners))
        # chunk ids are "paper:ordinal:hash"; a paper id may itself hold a colon
        ordinal = np.fromiter(
            (int(c.rsplit(":", 2)[1]) for c in chunk_ids), dtype=np.int64, count=len(owners)
        )
        order = np.argsort(paper_of, kind="stable")
        bounds = np.searchsorted(paper_of[order], np.arange(len(papers) + 1))
        rows = {p: order[bounds[i] : bounds[i + 1]] for i, p in enumerate(papers)}
        return cls(papers, paper_of, ordinal < FRONT_CHUNKS, rows)

    def per_paper_max(self, values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """The highest value of each paper's rows (of ``rows`` only, when given); -inf for
        a paper with none."""
        out = np.full(len(self.papers), -np.inf)
        at = np.arange(len(self.paper_of)) if rows is None else rows
        np.maximum.at(out, self.paper_of[at], values)
        return out


def clauses(question: str) -> list[str]:
    """The parts of a question joined by "and", "compared with", "than", ...: each may identify
    a system of its own ("Amazon's shopping-cart store and Facebook's inbox-search store")."""
    from ddsearch.search.rank import query_terms

    parts = [p for p in _CLAUSE.split(question) if len(query_terms(p)) >= MIN_CLAUSE_WORDS]
    return parts if len(parts) > 1 else []


def top_minmax(scores: np.ndarray, limit: int) -> np.ndarray:
    """Scores scaled as a ranker's top ``limit`` candidates are (their best 1, their worst 0),
    and 0 for every other row."""
    out = np.zeros(len(scores))
    if len(scores) == 0:
        return out
    top = np.argpartition(-scores, min(limit, len(scores)) - 1)[:limit]
    top = top[scores[top] > 0] if (scores[top] > 0).any() else top
    out[top] = minmax(scores[top])
    return out


def paper_features(layout: Layout, stage: np.ndarray, cos: np.ndarray, front_lexical,
                   named: set[str]) -> np.ndarray:  # fmt: skip
    """PAPER_FEATURES of every paper: ``stage`` and ``cos`` hold each row's fused score and
    cosine, ``front_lexical`` the bm25 of the front rows (in their order)."""
    best = stage.max() if len(stage) and stage.max() > 0 else 1.0
    top3 = np.zeros(len(layout.papers))
    for i, p in enumerate(layout.papers):
        own = np.sort(stage[layout.rows[p]])[::-1][:3]
        top3[i] = own.sum() / 3
    front = np.flatnonzero(layout.front)
    return np.column_stack(
        [
            np.maximum(layout.per_paper_max(stage), 0.0) / best,
            top3 / best,
            minmax(finite(layout.per_paper_max(np.asarray(front_lexical), front))),
            minmax(finite(layout.per_paper_max(cos[front], front))),
            minmax(finite(layout.per_paper_max(cos))),
            [p in named for p in layout.papers],
        ]
    )


def finite(values: np.ndarray) -> np.ndarray:
    """-inf (a paper with no such rows) as the lowest finite value, for min-max scaling."""
    ok = np.isfinite(values)
    return np.where(ok, values, values[ok].min() if ok.any() else 0.0)


def local_share(held: np.ndarray) -> np.ndarray:
    """Per chunk of one paper, the share of the question's words it holds, each word weighed
    by how few of that paper's chunks hold it: inside a paper, its own common words ("leader"
    in Raft) say little about which passage answers. ``held``: words x the paper's chunks."""
    n = held.shape[1]
    df = held.sum(axis=1)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    return (held * idf[:, None]).sum(axis=0) / (idf.sum() or 1.0)


# a verb's helper, which can open a question ("does", "can")
_HELPERS = "does|do|did|is|are|was|were|can|could|should|would|will"
# a word that opens a question, and a word that opens a leading phrase ("In ..., how ...")
_QUESTION_WORD = rf"(?:how|what|why|when|where|which|who|whom|{_HELPERS})\b"
_INTRODUCER = r"(?:in|for|with|within|inside|on|across|according\s+to)\b"
# Both read the question as the rankers do (lower case, no punctuation; a leading phrase ends
# at its comma), so case and quotes never change what is asked. "in google s cluster file
# system , how ...": a leading phrase that only says which system
_LEAD_DESCRIPTION = re.compile(rf"^{_INTRODUCER}[^,]{{3,200}} , (?={_QUESTION_WORD})")
# the same phrase typed without its comma ("In Google's lock service how does ..."), read on
# the question as written: it ends where the question opens, at a question word or a verb's
# helper ("where", "which" and "who" only a word or two before a helper: "a scheduler where
# work may be evicted" goes on describing); a parenthesis inside it is skipped whole. Where a
# clause opens first ("if", "after"), the comma version sees no leading phrase, nor does this.
_AUX = rf"(?:{_HELPERS})\b(?!['’])"
_CLAUSE_FIRST = r"(?:if|unless|after|before)\b"
_OPENS = (
    rf"(?:(?:how|what|why|when)\b|{_CLAUSE_FIRST}|{_AUX}"
    rf"|(?:where|which|who|whom)(?:\s+\S+){{0,2}}\s+{_AUX})"
)
_LEAD_BARE = re.compile(
    rf"^\s*{_INTRODUCER}(?:\s*\([^()]*\)|\s+(?!{_OPENS})[^\s,()]+)"
    rf"{{1,40}}(?:\s*,)?\s+(?={_OPENS})(?!{_CLAUSE_FIRST})",
    re.I,
)
# "Google's lock service: how long is a lease?", "About Amazon's cart store - how ...": a
# label before a colon or a dash, then the question; the label only says which system
_LABEL = re.compile(
    rf"^(?!\s*{_QUESTION_WORD})"
    rf"[^:?–—]{{3,200}}?(?:\s*[:–—]|\s+-)\s+(?={_OPENS})",
    re.I,
)
# the kinds of thing a reader calls a system when describing it
_KINDS = (
    r"(?:store|service|system|database|datastore|framework|library|protocol|manager|engine|"
    r"paper|scheme|algorithm|deployment|successor|platform|explanation|write up|proof)s?"
)
# "... amazon s shopping cart key value store and ...": a phrase inside the question that
# describes a system by its maker and what kind of thing it is ("the lock manager" is not one)
_INLINE_DESCRIPTION = re.compile(rf"\b(?P<who>\w+) s(?: \S+){{0,6}}? {_KINDS}\b")
_NOT_MAKERS = frozenset({"it", "that", "what", "who", "there", "here", "let", "one"})
# the same with its maker after the kind: "the shopping cart key value store from amazon"
_MAKER_AFTER = re.compile(
    rf"\bthe(?: \S+){{0,6}}? {_KINDS}"
    r"(?: (?:from|by)| (?:built|made|developed|designed|run|written) (?:at|by|in)) (?P<who>\w+)\b"
)
# the same with its maker as an adjective after a determiner: "the Google lock service", "a
# Facebook photo store". Without the possessive a maker cannot be told from any other word
# ("the UDP protocol", "the practical Byzantine fault tolerance paper"), so these are the
# makers readers name, a hand list like the kinds
_MAKERS = (
    r"(?:google|amazon|facebook|meta|yahoo|microsoft|vmware|linkedin|twitter|apple|ibm|xerox|"
    r"parc|mit|berkeley|cornell|cmu|princeton|stanford|harvard|yale|netflix|uber|alibaba|"
    r"baidu|apache)"
)
_MAKER_BEFORE = re.compile(
    rf"\b(?:the|a|an) (?P<who>{_MAKERS})(?: (?!(?:and|or|but|that|which|who|of|in|to|for)\b)"
    rf"\S+){{0,5}}? {_KINDS}\b"
)
_NOT_MAKERS_AFTER = _NOT_MAKERS | {
    "the", "a", "an", "its", "their", "his", "her", "our", "your", "each", "every", "this",
    "these", "those", "which", "whom", "whose", "all", "many", "some", "other", "any",
    "default", "design", "hand", "itself", "then", "now", "far",
}  # fmt: skip
# "... where does appended data go in google s cluster file system": the leading phrase put
# last, from the first "in" whose next few words name a kind of system to the end, when what
# follows the kind describes it ("... that tracks ...", "... Amazon built for ...") and is not
# a clause of the question ("... in Google's cluster manager if the controller goes down")
_LAST_ASIDE = re.compile(r"^(.*?)\s*\([^()]*\)\W*$", re.S)
_TRAIL_DESCRIPTION = re.compile(
    rf" (?:in|within|inside|across|according to|per) "
    rf"(?:(?!(?:in|within|and|or|but)\b)[^ ,]+ ){{0,7}}?{_KINDS}\b"
    r"(?: (?:that|which|whose|where|for|from|of|on|by|with|at|behind|underneath|built|called|"
    r"used|\w+ (?:built|made|designed|developed|wrote|described))\b[^,]*)?$"
)


def marked(question: str) -> str:
    """The question canonical but for its commas, kept as " , " (where a phrase ends)."""
    from ddsearch.search.rank import canonical

    return " , ".join(canonical(part) for part in question.split(","))


def trailing(question: str, text: str) -> str | None:
    """The question (``text``: ``marked(question)``) canonical, less a description of its
    system put last, if it has one; a parenthesis that ends the question ("... library (the
    one where you write ...)?") goes with it."""
    aside = _LAST_ASIDE.match(question)
    for candidate in (marked(aside.group(1)), text) if aside else (text,):
        found = _TRAIL_DESCRIPTION.search(" " + candidate)
        if found:
            return " ".join(w for w in (" " + candidate)[: found.start()].split() if w != ",")
    return None


def asking(question: str, names, identifying: set[str]) -> str:
    """What the question asks, less what identifies its system: a label before a colon or a
    dash ("Google's lock service: how ..."), a leading "In <system>, " or "According to
    <system>, " phrase (its comma typed or not) or the same put last, a phrase that describes a
    system by its maker ("Amazon's shopping-cart store", "the photo store from Facebook", "the
    Google lock service"; not after a name: in "Raft's election protocol" the protocol is what
    is asked about), the names it gives and the words that identify the likely paper
    (``identifying``: words whose hits in that paper are mostly front matter), canonical."""
    from ddsearch.search.rank import canonical, query_terms

    label = _LABEL.match(question)
    asked = question[label.end() :] if label else question
    whole = marked(asked)
    lead = _LEAD_DESCRIPTION.match(whole)
    bare = None if lead else _LEAD_BARE.match(asked)
    if lead:
        rest = whole[lead.end() :]
    elif bare:
        rest = canonical(asked[bare.end() :].replace(",", " "))
    else:
        rest = trailing(asked, whole) or whole
    rest = rest.replace(" , ", " ")

    def described(not_makers: frozenset[str]):
        def drop(m: re.Match) -> str:
            keep = m.group("who") in not_makers or bool(names.find(m.group("who")))
            return m.group(0) if keep else " "

        return drop

    rest = " " + _INLINE_DESCRIPTION.sub(described(_NOT_MAKERS), " " + rest)
    rest = _MAKER_AFTER.sub(described(_NOT_MAKERS_AFTER), rest)
    rest = _MAKER_BEFORE.sub(" ", rest)
    rest = names.without(rest, names.find(rest))
    words = [w for w in rest.split() if w not in identifying]
    text = " ".join(words)
    return text if query_terms(text) else canonical(question)
