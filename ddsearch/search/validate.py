"""What a query may be, checked in one place: the library (``Searcher.search``), the CLI, serve
and MCP all call :func:`check_query` (or its parts), so the limits and the messages are the
same everywhere. Limits come from :class:`~ddsearch.config.QuerySettings`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ddsearch.catalog import UnknownIdError, resolve_ids
from ddsearch.config import QuerySettings
from ddsearch.errors import QueryError
from ddsearch.models import Mode, Paper

_WORD = re.compile(r"[^\W_]")  # a letter or digit, in any script


@dataclass(frozen=True)
class Query:
    """A query as checked: its text (stripped), how many results, which papers, which mode."""

    text: str
    k: int
    papers: tuple[str, ...]  # indexed ids; empty: all
    mode: Mode


def check_text(text: object, limits: QuerySettings = QuerySettings()) -> str:
    """The query's text, stripped; it holds a word and is no longer than ``limits.max_chars``."""
    if not isinstance(text, str):
        raise QueryError("the query must be text")
    if len(text) > limits.max_chars:
        raise QueryError(f"the query is longer than {limits.max_chars} characters")
    stripped = text.strip()
    if not stripped:
        raise QueryError("the query is empty", "give words to search for")
    if not _WORD.search(unicodedata.normalize("NFKC", stripped)):
        raise QueryError(f"the query {stripped!r} has no words to search for")
    return stripped


def check_k(k: object, limits: QuerySettings = QuerySettings()) -> int:
    """How many results: an integer from 1 to ``limits.max_k``."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= limits.max_k:
        raise QueryError(f"k must be an integer from 1 to {limits.max_k}, not {k!r}")
    return k


def check_mode(mode: object) -> Mode:
    try:
        return Mode(str(mode))
    except ValueError:
        choices = ", ".join(Mode)
        raise QueryError(f"unknown mode {mode!r}: choose one of {choices}") from None


def check_papers(ids: Iterable[str], indexed: Iterable[str],
                 catalog: Iterable[Paper] = ()) -> tuple[str, ...]:  # fmt: skip
    """The indexed ids that ``ids`` name, regardless of case ("Raft" names raft); an unknown one
    is told with the closest indexed ids, and with the ingest that adds it if the catalog has it."""
    indexed = list(indexed)
    try:
        return tuple(resolve_ids(ids, indexed))
    except UnknownIdError as e:
        asked = {i.strip().casefold() for i in ids}
        waiting = [p.id for p in catalog if p.id.casefold() in asked and p.id not in indexed]
        fix = f"run 'ddsearch ingest {' '.join(waiting)}' first" if waiting else ""
        raise QueryError(f"not in the index: {e}", fix) from None


def check_query(text: object, k: object = None, papers: Iterable[str] = (),
                mode: object = Mode.HYBRID, *, indexed: Iterable[str] | None = None,
                catalog: Iterable[Paper] = (),
                limits: QuerySettings = QuerySettings()) -> Query:  # fmt: skip
    """A whole query checked, in the order a user reads the messages: text, k, mode, papers
    (checked against ``indexed`` when given)."""
    checked = check_text(text, limits)
    count = check_k(limits.k if k is None else k, limits)
    chosen = check_mode(mode)
    ids = tuple(papers)
    if indexed is not None:
        ids = check_papers(ids, indexed, catalog)
    return Query(checked, count, ids, chosen)
