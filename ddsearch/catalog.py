"""The catalog of papers: ``papers.toml``, validated strictly."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ddsearch.errors import NotFoundError, UserError
from ddsearch.models import Paper

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
KINDS = ("inproceedings", "article", "techreport", "misc", "phdthesis", "book")
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "title": str,
    "authors": list,
    "year": int,
    "venue": str,
    "kind": str,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "url": str, "sha256": str, "doi": str, "tags": list, "note": str, "volume": (str, int),
    "number": (str, int), "pages": str, "publisher": str, "institution": str, "names": list,
}  # fmt: skip


class CatalogError(UserError):
    """A catalog that cannot be used, with the file, entry and field at fault."""


def default_catalog_path() -> Path:
    """The catalog shipped in the package (or at the root of a source checkout)."""
    here = Path(__file__).resolve().parent
    shipped = here / "papers.toml"
    return shipped if shipped.is_file() else here.parent / "papers.toml"


def slugify(text: str) -> str:
    """A catalog-style id from a file stem: lower case, dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug or "paper"


@dataclass
class Catalog:
    path: Path | None
    papers: dict[str, Paper] = field(default_factory=dict)

    def __contains__(self, paper_id: str) -> bool:
        return paper_id in self.papers

    def __iter__(self):
        return iter(self.papers.values())

    def __len__(self) -> int:
        return len(self.papers)

    def get(self, paper_id: str) -> Paper | None:
        return self.papers.get(paper_id)


def _check(path: Path, index: int, entry: dict) -> Paper:
    where = f"{path}: paper #{index + 1}"
    if isinstance(entry.get("id"), str):
        where += f" (id {entry['id']!r})"
    for key in _REQUIRED:
        if key not in entry:
            raise CatalogError(f"{where}: missing required field '{key}'")
    for key, value in entry.items():
        kind = _REQUIRED.get(key) or _OPTIONAL.get(key)
        if kind is None:
            raise CatalogError(f"{where}: unknown field '{key}'")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CatalogError(
                f"{where}: field '{key}' has the wrong type ({type(value).__name__})"
            )
        if isinstance(value, str) and not value.strip():
            raise CatalogError(f"{where}: field '{key}' is empty")
    if not ID_PATTERN.match(entry["id"]):
        raise CatalogError(f"{where}: field 'id' must be lower-case letters, digits and dashes")
    if not entry["authors"] or not all(isinstance(a, str) and a.strip() for a in entry["authors"]):
        raise CatalogError(f"{where}: field 'authors' must be a non-empty list of names")
    for key in ("tags", "names"):
        if not all(isinstance(t, str) and t.strip() for t in entry.get(key, [])):
            raise CatalogError(f"{where}: field '{key}' must be a list of non-empty strings")
    if not 1000 <= entry["year"] <= 2100:
        raise CatalogError(f"{where}: field 'year' is out of range ({entry['year']})")
    if entry["kind"] not in KINDS:
        raise CatalogError(f"{where}: field 'kind' must be one of {', '.join(KINDS)}")
    url = entry.get("url")
    if url is not None and not re.match(r"^https?://\S+$", url):
        raise CatalogError(f"{where}: field 'url' must be an http(s) URL")
    sha = entry.get("sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise CatalogError(f"{where}: field 'sha256' must be 64 lower-case hex digits")
    values = dict(entry)
    values["authors"] = tuple(a.strip() for a in entry["authors"])
    values["tags"] = tuple(entry.get("tags", ()))
    if "names" in entry:
        values["names"] = tuple(n.strip() for n in entry["names"])
    for key in ("volume", "number"):
        if key in values:
            values[key] = str(values[key])
    return Paper(**values)


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate a catalog file; raise CatalogError naming the file, entry and field."""
    path = Path(path) if path else default_catalog_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: catalog file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CatalogError(f"{path}: cannot read catalog ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{path}: not valid TOML ({e})") from None
    extra = set(data) - {"paper"}
    if extra:
        raise CatalogError(f"{path}: unknown top-level key(s) {', '.join(sorted(extra))}")
    entries = data.get("paper", [])
    if not isinstance(entries, list):
        raise CatalogError(f"{path}: 'paper' must be an array of tables ([[paper]])")
    catalog = Catalog(path)
    for i, entry in enumerate(entries):
        paper = _check(path, i, entry)
        if paper.id in catalog.papers:
            raise CatalogError(f"{path}: paper #{i + 1}: duplicate id {paper.id!r}")
        catalog.papers[paper.id] = paper
    return catalog


class UnknownIdError(NotFoundError):
    """Paper ids that name no known paper, with the closest known ids for each."""


def closest_ids(wanted: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known ids most like ``wanted``: those containing it first, then by similarity."""
    wanted = wanted.lower()
    known = sorted(set(known))
    containing = [k for k in known if wanted and wanted in k]
    similar = difflib.get_close_matches(wanted, known, n=n, cutoff=0.0)
    return list(dict.fromkeys(containing + similar))[:n]


def resolve_ids(ids: Iterable[str], known: Iterable[str]) -> list[str]:
    """The known ids that ``ids`` name, matched regardless of case ("Raft" -> "raft").

    Raises UnknownIdError naming every id that matches none, with the closest known ids."""
    known = list(known)
    by_fold = {k.casefold(): k for k in known}
    out, unknown = [], []
    for i in ids:
        match = i if i in known else by_fold.get(i.strip().casefold())
        if match is None:
            unknown.append(i)
        else:
            out.append(match)
    if unknown:
        hints = [
            f"{i} (closest: {', '.join(closest_ids(i, known)) or 'none'})"
            if i.strip()
            else "an empty id"
            for i in unknown
        ]
        raise UnknownIdError("; ".join(hints))
    return list(dict.fromkeys(out))
