"""Typing slips: a question's word that no indexed passage holds, read as the word one slip away
that the passages do hold ("How does Raft handle leader elcetion?" asks about "election").

A slip is one letter left out, added, changed, or two swapped (Damerau's four; most misspellings
are one of them). A word is only respelled when the index holds none of it and the embedding
model does not know it as a word of its own: "stick", "wiped" or "neighbours" may be absent
from the papers but are words, and a reader who typed them meant them. Of the words one slip
away, a word the model knows comes first, then the one the most passages hold; it must be
written so in a passage (the lexical index holds stems: "embeddable" is one slip from
"embedeable", whose stem "embed" many passages hold, but no passage has that word). A word of
four letters is read only as an indexed paper's name with two neighbouring letters swapped, and
only when typed with a capital, as a name is ("Rfat": Raft, "SIWM": SWIM); a changed letter
would read real words as names ("Rant", "Skim").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from ddsearch.models import Respelling

MIN_LETTERS = 5  # a shorter word has too many neighbours one slip away ("etcd" -> "etc")
# a word of this many letters is read only as a paper's name with two letters swapped ("Rfat":
# Raft): the names are few, so "Borg" is the one word "Brog" can mean
NAME_LETTERS = 4
MIN_CHUNKS = 2  # a respelling at least this many passages hold, not one PDF's own misprint
TRIED = 3  # the likeliest respellings looked for as written (each a scan of the passages' text)
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_WORD = re.compile(rf"\b[A-Za-z]{{{NAME_LETTERS},}}\b")


def slips(word: str) -> set[str]:
    """Every word one slip away from ``word`` (lower case a-z)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b} | swaps(word)
    out |= {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    out |= {a + c + b for a, b in splits for c in _LETTERS}
    out.discard(word)
    return out


def swaps(word: str) -> set[str]:
    """Every word two neighbouring letters of ``word`` swapped make: the slip a four-letter
    name is read back from, as a changed letter makes real words of names ("rant", "skim")."""
    out = {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    out.discard(word)
    return out


def respell(
    text: str,
    held: Callable[[Sequence[str]], list[int]],
    known: Callable[[Sequence[str]], list[bool]],
    written: Callable[[str], bool],
    stopwords: frozenset[str] = frozenset(),
    names: Mapping[str, str] | None = None,
) -> tuple[str, tuple[Respelling, ...]]:
    """``text`` with its slips respelled, and what was respelled. ``held(words)``: how many
    indexed passages hold each word (as the lexical index reads it: by its stem);
    ``known(words)``: whether the embedding model knows each as a word of its own;
    ``written(word)``: whether a passage holds it spelled so; ``names``: the indexed papers'
    one-word names of NAME_LETTERS letters, lower case -> as written."""
    names = names or {}
    # each word once, lower case -> as first typed; a short word is taken for a name only
    # when typed as one: "Rfat", "SIWM"; not "rfat"
    forms: dict[str, str] = {}
    for m in _WORD.finditer(text):
        if len(m.group(0)) >= MIN_LETTERS or (names and m.group(0)[0].isupper()):
            forms.setdefault(m.group(0).lower(), m.group(0))
    typed = [w for w in forms if w not in stopwords]
    if not typed:
        return text, ()
    absent = [w for w, n in zip(typed, held(typed)) if n == 0]
    absent = [w for w, word in zip(absent, known(absent)) if not word] if absent else []
    read: dict[str, str] = {}
    for word in absent:
        if len(word) < MIN_LETTERS:
            meant = [n for n in sorted(swaps(word)) if n in names]
            if len(meant) == 1:
                read[word] = names[meant[0]]
            continue
        near = sorted(slips(word))
        counts = held(near)
        found = [(w, n) for w, n in zip(near, counts) if n >= MIN_CHUNKS]
        if not found:
            continue
        words = known([w for w, _ in found])
        ranked = sorted(zip(found, words), key=lambda t: (not t[1], -t[0][1], t[0][0]))
        best = next((w for (w, _), _ in ranked[:TRIED] if written(w)), None)
        if best is not None:
            read[word] = best
    if not read:
        return text, ()

    def swap(m: re.Match) -> str:
        word = m.group(0)
        new = read.get(word.lower())
        if new is None:
            return word
        if new.lower() != new:  # a name, as it is written
            return new
        if word.isupper():
            return new.upper()
        return new.capitalize() if word[:1].isupper() else new

    done = tuple(Respelling(forms[w], r) for w, r in read.items())
    return _WORD.sub(swap, text), done
