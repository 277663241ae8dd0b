"""The dev questions typed the ways readers type them: does a rewrite change the figures?

    python bench/phrasings.py --home HOME [--part tune|held ...]

For each part of dev.jsonl and dev-reader.jsonl, the hybrid figures of the questions as
written and of each rewrite, over the questions a rewrite changes (n): commas taken out, lower
case without "?", every punctuation mark out, a leading "In <system>, " phrase moved to the
end, "<Maker>'s <kind>" typed "the <kind> from <Maker>" or "the <Maker> <kind>", the leading
phrase put last after "according to the paper on", typed as a label ("<system>: how ...?")
or as a sentence of its own ("I'm reading about <system>. How ...?"), the question wrapped
in a request ("Can you tell me, how ...?", "Explain to me: how ..."), a typing slip (two
letters swapped in its longest word: "replciation") or in a name of four letters ("Rfat"), and
a camel-case name typed apart ("Map Reduce", "Zoo Keeper") or a one-word name typed as two
capitalised words ("Mega Store"). A rewrite that asks the
same thing should score what the question as written scores; a gap is a way of asking that
ddsearch reads worse.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fit_rank import SETS  # noqa: E402

from ddsearch.catalog import load_catalog  # noqa: E402
from ddsearch.search.evaluate import (  # noqa: E402
    PageTexts,
    evaluate,
    load_questions,
    load_split,
    select,
    summarise,
)
from ddsearch.search.names import Names, camel_split, paper_names, word_split  # noqa: E402
from ddsearch.search.searcher import Searcher  # noqa: E402
from ddsearch.search.spelling import NAME_LETTERS  # noqa: E402

_CATALOG = load_catalog()
_CAMEL_NAMES = sorted(
    {n for p in _CATALOG for n in paper_names(p) if camel_split(n)}, key=len, reverse=True
)
_SHORT_NAMES = sorted(Names(_CATALOG).of_letters(NAME_LETTERS).values())
_ONE_WORD_NAMES = sorted({n for p in _CATALOG for n in paper_names(p) if word_split(n)})
FIGURES = ("hit@5", "mrr@10", "paper@1", "quote_acc", "exact@1")
_OPENER = (
    r"(?:how|what|why|when|where|which|who|does|do|did|is|are|was|were|can|could|should|"
    r"would|will)\b"
)
_LEAD = re.compile(rf"^(In|For|Within|Inside|Across) ([^,]{{3,200}}), ({_OPENER}.*?)\??$", re.S)
_KINDS = (
    r"(?:store|service|system|database|datastore|framework|library|protocol|manager|engine|"
    r"paper|scheme|algorithm|deployment|successor|platform|explanation|write-up|proof)s?"
)
_POSSESSIVE = re.compile(rf"\b([A-Z][\w!]*)['’]s ((?:[\w-]+ ){{0,5}}?{_KINDS})\b")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def moved_lead(form: Callable[[str, str, str], str]) -> Callable[[str], str]:
    """A rewrite of the questions with a leading "In <system>, " phrase: ``form(word, system,
    asked)`` is the question typed another way; the other questions stay as written."""

    def rewrite(question: str) -> str:
        m = _LEAD.match(question)
        return form(*m.groups()) if m else question

    return rewrite


lead_last = moved_lead(lambda word, system, asked: f"{_capital(asked)} {word.lower()} {system}?")
label_first = moved_lead(lambda _, system, asked: f"{_capital(system)}: {asked}?")
reading_first = moved_lead(
    lambda _, system, asked: f"I'm reading about {system}. {_capital(asked)}?"
)
according_to = moved_lead(
    lambda _, system, asked: f"{_capital(asked)}, according to the paper on {system}?"
)


def maker_after(question: str) -> str:
    return _POSSESSIVE.sub(lambda m: f"the {m.group(2)} from {m.group(1)}", question)


def maker_before(question: str) -> str:
    return _POSSESSIVE.sub(lambda m: f"the {m.group(1)} {m.group(2)}", question)


def slipped(question: str) -> str:
    """Two letters swapped in the middle of the question's longest lower-case word."""
    words = re.findall(r"\b[a-z]{7,}\b", question)
    if not words:
        return question
    word = max(words, key=len)
    i = len(word) // 2
    typed = word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    return re.sub(rf"\b{word}\b", typed, question, count=1)


def short_name_slipped(question: str) -> str:
    """The two middle letters of a four-letter name swapped ("Rfat", "SIWM")."""
    for name in _SHORT_NAMES:
        question = re.sub(rf"\b{name}\b", name[0] + name[2] + name[1] + name[3], question)
    return question


def typed_apart(question: str) -> str:
    """A camel-case name typed as the words it is made of ("Map Reduce", "Zoo Keeper")."""
    for name in _CAMEL_NAMES:
        question = re.sub(rf"\b{name}\b", " ".join(camel_split(name) or ()), question)
    return question


def one_word_apart(question: str) -> str:
    """A one-word name typed as two capitalised words, parted in its middle ("Mega Store",
    "Bigt Able")."""
    for name in _ONE_WORD_NAMES:
        half = len(name) // 2
        apart = f"{name[:half].capitalize()} {name[half:].capitalize()}"
        question = re.sub(rf"\b{name}\b", apart, question)
    return question


REWRITES = {
    "no commas": lambda q: q.replace(",", ""),
    "lower, no ?": lambda q: q.lower().rstrip("?"),
    "no punctuation": lambda q: re.sub(r"[^\w\s']", " ", q),
    "system last": lead_last,
    "maker after": maker_after,
    "maker before": maker_before,
    "according to": according_to,
    "label: question": label_first,
    "I'm reading about": reading_first,
    "tell me": lambda q: f"Can you tell me, {q[0].lower()}{q[1:]}",
    "explain to me": lambda q: f"Explain to me: {q[0].lower()}{q[1:].rstrip('?')}.",
    "a typing slip": slipped,
    "a name typed apart": typed_apart,
    "a word name typed apart": one_word_apart,
    "a slip in a name": short_name_slipped,
}


def line(label: str, n: int, figures: dict) -> str:
    cells = " ".join(f"{figures[k]:7.3f}" for k in FIGURES)
    return f"  {label:16s} {n:4d} {cells}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, required=True)
    ap.add_argument("--part", action="append", choices=("tune", "held"))
    args = ap.parse_args()
    searcher = Searcher(args.home, catalog=load_catalog())
    searcher.warm()
    pages = PageTexts()
    header = " ".join(f"{k.removesuffix('_acc'):>7s}" for k in FIGURES)
    for name, split in SETS:
        questions = load_questions(REPO.parent / f"shared/eval/{name}.jsonl")
        for part in args.part or ["tune", "held"]:
            chosen = select(questions, load_split(REPO / split), part)
            print(f"{name}, {part} part:\n  {'':16s} {'n':>4s} {header}")
            # each question as written is scored once, for every rewrite that changes it
            rows = evaluate(searcher, chosen, part=part, page_text=pages).rows
            written = {q.id: row for q, row in zip(chosen, rows, strict=True)}
            for label, rewrite in REWRITES.items():
                changed = [q for q in chosen if rewrite(q.question) != q.question]
                if not changed:
                    continue
                typed = [replace(q, question=rewrite(q.question)) for q in changed]
                rows = evaluate(searcher, typed, part=part, page_text=pages).rows
                as_written = [written[q.id] for q in changed]
                for shown, scored in (("as written", as_written), (label, rows)):
                    print(line(shown, len(changed), summarise(scored, 5)), flush=True)
    searcher.store.close()


if __name__ == "__main__":
    main()
