"""The ``ddsearch`` command: parses options, calls the library, prints. No logic lives here."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ddsearch import __version__
from ddsearch.config import EvalSettings, QuerySettings, ServeSettings, Settings
from ddsearch.errors import QueryError, UserError
from ddsearch.models import (
    CiteFormat,
    ExportFormat,
    GraphFormat,
    Mode,
    Part,
    Precision,
    Results,
    Status,
    respelled,
)

if TYPE_CHECKING:
    from ddsearch.search.searcher import Searcher


def _choices(vocabulary) -> click.Choice:
    """A StrEnum's values as a Click choice (Click would show an Enum's names)."""
    return click.Choice([m.value for m in vocabulary])


def _default(cls, name: str):
    """A settings field's default: options show and take the settings' own."""
    return cls.__dataclass_fields__[name].default


class _Group(click.Group):
    """Every UserError from the library is one line on stderr and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as e:
            raise click.ClickException(str(e)) from e


def _settings(ctx: click.Context, **overrides) -> Settings:
    """Settings from the environment (ddsearch.config), then the global options, then these."""
    values = {k: v for k, v in ctx.obj.items() if v is not None}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)


def _catalog(path: Path | None):
    from ddsearch.catalog import load_catalog

    return load_catalog(path)


def _searcher(
    ctx: click.Context, model: str | None = None, catalog_path: Path | None = None
) -> Searcher:
    from ddsearch.search.searcher import Searcher

    settings = _settings(ctx)
    return Searcher(settings.home, model=model, catalog=_catalog(catalog_path),
                    chroma_url=settings.chroma_url, chroma_token=settings.chroma_token,
                    settings=settings.search, limits=settings.query)  # fmt: skip


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data home (index, PDF cache). Default: $DDSEARCH_HOME or the user data dir.",
)
@click.option(
    "--chroma-url",
    metavar="http://HOST:PORT",
    help="Keep the index on this Chroma server ('chroma run'); the home then holds a cache. "
    "Default: $DDSEARCH_CHROMA_URL.",
)
@click.option(
    "--chroma-token",
    metavar="TOKEN",
    help="Token for a Chroma server with token auth (sent as Authorization: Bearer). "
    "Default: $DDSEARCH_CHROMA_TOKEN.",
)
@click.version_option(__version__, prog_name="ddsearch")
@click.pass_context
def main(
    ctx: click.Context, home: Path | None, chroma_url: str | None, chroma_token: str | None
) -> None:
    """Search the canon of distributed-systems papers; answers cite paper and page."""
    ctx.ensure_object(dict)
    ctx.obj.update(home=home, chroma_url=chroma_url, chroma_token=chroma_token)


# ------------------------------------------------------------------------------ ingest
@main.command()
@click.argument("ids", nargs=-1)
@click.option(
    "--from",
    "sources",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A local PDF or a folder of PDFs (repeatable). Without it, downloads.",
)
@click.option(
    "--bib",
    "bibs",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A BibTeX export (Zotero, Better BibTeX, JabRef): its entries' PDFs, cited with "
    "their own keys (repeatable).",
)
@click.option("--prune", is_flag=True, help="Remove papers whose entries left their --bib file.")
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog file (default: the papers.toml shipped with ddsearch).",
)
@click.option(
    "--model", help="sentence-transformers model name or path (default: all-MiniLM-L6-v2, bundled)."
)
@click.option(
    "--precision",
    type=_choices(Precision),
    default=(Precision.INT8 if _default(Settings, "int8") else Precision.FP32).value,
    show_default=True,
    help="Weights for embedding passages (queries always use fp32).",
)
@click.option("--refresh", is_flag=True, help="Download cached PDFs again.")
@click.option(
    "--rebuild",
    is_flag=True,
    help="Drop the index (with IDS: those papers) first and ingest anew; the model is "
    "checked before anything is dropped.",
)
@click.option(
    "--progress/--no-progress", default=None, help="Progress bars (default: on a terminal)."
)
@click.pass_context
def ingest(ctx, ids, sources, bibs, prune, catalog_path, model, precision, refresh, rebuild,
           progress):  # fmt: skip
    """Fetch, extract, chunk and embed papers into the index.

    IDS restricts the run to those papers. A paper whose PDF, settings and model are unchanged
    is skipped; a changed one is replaced whole.
    """
    from ddsearch.ingest.pipeline import ingest as run

    if prune and not bibs:
        raise click.UsageError("--prune goes with --bib")
    settings = _settings(ctx, model=model, int8=precision == Precision.INT8)
    if progress is None:
        progress = sys.stderr.isatty()
    try:
        report = run(
            settings,
            _catalog(catalog_path),
            list(sources),
            list(ids),
            refresh=refresh,
            rebuild=rebuild,
            progress=progress,
            log=lambda line: click.echo(line, err=True),  # one line a paper, without bars
            bibs=list(bibs),
            prune=prune,
        )
    except KeyboardInterrupt:  # before the first paper started: nothing half-done is visible
        click.echo("interrupted before any paper was ingested; run again to finish", err=True)
        ctx.exit(130)
    told = (Status.STALE, Status.PRUNED, Status.REMOVED, Status.SKIPPED)
    for o in report.outcomes:
        if o.status == Status.FAILED:
            click.echo(f"failed   {o.paper_id}: {o.reason}", err=True)
        elif o.status in told and o.reason != "unchanged":
            click.echo(f"{o.status:<8} {o.paper_id}: {o.reason}", err=True)
    done = report.of(Status.INGESTED)
    unchanged = sum(o.reason == "unchanged" for o in report.of(Status.SKIPPED))
    also = "".join(f", {len(report.of(s))} {s}" for s in (Status.UPDATED, Status.STALE,
                   Status.PRUNED, Status.REMOVED) if report.of(s))  # fmt: skip
    click.echo(
        f"{len(done)} ingested ({sum(o.chunks for o in done)} chunks){also}, {unchanged} "
        f"unchanged, {len(report.of(Status.SKIPPED)) - unchanged} skipped, "
        f"{len(report.of(Status.FAILED))} failed "
        f"in {report.seconds:.1f}s; index: {settings.home}"
    )
    if report.interrupted:
        names = [o.paper_id for o in done + report.of(Status.UPDATED)]
        said = f"{len(names)} paper(s) done ({', '.join(names)})" if names else "no paper done"
        click.echo(f"interrupted: {said}; run again to finish the rest", err=True)
        ctx.exit(130)
    if not report.ok:
        ctx.exit(1)


# ------------------------------------------------------------------------------ query
_RANKERS = ("dense", "lexical", "named", "section", "best_sentence")  # the runs a hit may have


def _explain(hit) -> str:
    """Each ranker's raw and normalised evidence, and the quote model's score."""
    names = [n for n in _RANKERS if n in hit.scores]
    parts = [f"{n} {hit.scores[n]:.4f} (norm {hit.scores.get(n + '_norm', 0):.3f})" for n in names]
    if "quote" in hit.scores:
        parts.append(f"quote {hit.scores['quote']:+.2f}")
    fitted = [f"{n[2:]} {v:.3f}" for n, v in hit.scores.items() if n.startswith("f_")]
    if fitted:  # what the fitted passage model weighed (ddsearch.search.fusion)
        parts.append("fitted: " + ", ".join(fitted))
    return "evidence: " + ", ".join(parts)


def _print_hit(hit, key: str, width: int, full: bool, explain: bool = False) -> None:
    from ddsearch.search.cite import format_citation, make_citation

    c = make_citation(hit, key)
    head = f"{hit.rank}. {hit.paper.title}"
    if hit.paper.year:
        head += f" ({hit.paper.year})"
    click.echo(click.style(head, bold=True))
    where = [
        c.pages or "",
        f"§ {hit.chunk.section}" if hit.chunk.section else "",
        f"score {hit.score:.4f}",
    ]
    click.echo("   " + " · ".join(w for w in where if w))
    if explain:
        click.echo("   " + click.style(_explain(hit), dim=True))
    click.echo("   " + click.style(format_citation(c), fg="cyan"))
    text = hit.chunk.text
    if hit.quote_span and not full:
        s, e = hit.quote_span
        body = ("… " if s > 0 else "") + text[s:e] + (" …" if e < len(text) else "")
        lines = textwrap.wrap(body, width=width - 3)
        for line in lines:
            click.echo("   " + click.style(line, fg="yellow"))
    else:
        s, e = hit.quote_span or (0, 0)
        for line in textwrap.wrap(text, width=width - 3):
            click.echo("   " + line)
    click.echo()


_WEAK_NOTICE = "weak match: nothing in the index is close to this question; check the results"


@main.command()
@click.argument("question", required=False)
@click.option("-k", "k", type=int, default=_default(QuerySettings, "k"), show_default=True,
              help=f"How many results (1-{_default(QuerySettings, 'max_k')}).")  # fmt: skip
@click.option("--paper", "papers", multiple=True, help="Only search this paper id (repeatable).")
@click.option(
    "--mode",
    type=_choices(Mode),
    default=Mode.HYBRID.value,
    show_default=True,
    help="Ranking: both fused, vectors only, or bm25 only.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object (with --file: a JSON list)."
)
@click.option("--file", "qfile", type=click.File("r"), help="Questions, one per line ('-': stdin).")
@click.option("--jsonl", is_flag=True, help="With --file: one JSON object per line.")
@click.option("--full", is_flag=True, help="Show whole passages, not just the quotes.")
@click.option(
    "--export",
    "exports",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the cited passages to FILE (.md .json .bib .csl.json .ris; .pdf: a reading "
    "packet of the cited pages, the quotes highlighted; .png: the top hit's page; repeatable).",
)
@click.option(
    "--format",
    "fmt",
    type=_choices(ExportFormat),
    help="Export format, when the file's extension does not say.",
)
@click.option(
    "--annotate",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write copies of the cited papers' PDFs into DIR (made if missing), a highlight "
    "with a note on each quote (PDF readers and Zotero import them).",
)
@click.option(
    "--pages",
    "pages_dir",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Write each hit's cited page, the quote highlighted, as a PNG into DIR.",
)
@click.option("--force", is_flag=True, help="Overwrite existing export files.")
@click.option("--model", help="Fail unless the index was built with this model.")
@click.option("--explain", is_flag=True, help="Show each hit's evidence from every ranker.")
@click.pass_context
def query(ctx, question, k, papers, mode, as_json, qfile, jsonl, full, exports, fmt, annotate,
          pages_dir, force, model, explain):  # fmt: skip
    """Search the index: ranked passages with paper, page and citation."""
    if qfile is not None and question:
        raise click.UsageError("give a QUESTION or --file, not both")
    if qfile is None and question is None:
        raise click.UsageError("give a QUESTION, or --file FILE with one question per line")
    from ddsearch.search.validate import check_k, check_mode, check_text

    limits = _settings(ctx).query
    try:  # the checks every interface makes, before the model loads
        if qfile is None:
            check_text(question, limits)
        check_k(k, limits)
        check_mode(mode)
    except QueryError as e:
        raise click.UsageError(str(e)) from None
    if jsonl and qfile is None:
        raise click.UsageError("--jsonl goes with --file")
    if jsonl and as_json:
        raise click.UsageError("--json and --jsonl: choose one")
    for given, name in ((exports, "--export"), (annotate, "--annotate"), (pages_dir, "--pages")):
        if given and qfile is not None:
            raise click.UsageError(f"{name} goes with a QUESTION, not with --file")
    if fmt and len(exports) != 1:
        raise click.UsageError("--format goes with exactly one --export")
    if exports or as_json or qfile is not None or annotate or pages_dir:  # a plain query: no import
        from ddsearch.search.export import (
            check_target,
            export,
            render_json,
            write_atomic,
        )

    _check_exports(exports, fmt, force)  # before the search, which may take a while
    for folder in (annotate, pages_dir):
        if folder is not None:
            _check_folder(folder)

    searcher = _searcher(ctx, model)
    keys = searcher.citation_keys()
    highlighter = None
    if as_json or jsonl or exports or annotate or pages_dir:  # the JSON and exports show them
        from ddsearch.search.highlight import Highlighter
        from ddsearch.search.pdfs import Pdfs

        highlighter = Highlighter(Pdfs(_settings(ctx).pdf_cache))

    def run(q: str) -> Results:
        hits = searcher.search(q, k, papers=papers, mode=mode)
        searcher.add_quotes(q, hits)
        if highlighter is not None:
            highlighter.add(hits, searcher.records)
        return hits

    if qfile is not None:
        _query_file(ctx, qfile, run, keys, "jsonl" if jsonl else "json" if as_json else "text",
                    full, explain)  # fmt: skip
        return
    hits = run(question)
    drawn = _drawn(question, hits, keys, searcher.records, highlighter, exports, fmt,
                   annotate, pages_dir)  # fmt: skip
    for path in drawn:  # before anything is written (a folder still to make holds nothing)
        if path.parent.is_dir():
            try:
                check_target(path, force)
            except OSError as e:
                raise click.ClickException(str(e)) from None
    for path in exports:
        try:
            if path in drawn:
                write_atomic(path, drawn.pop(path), force=force)
            else:
                export(path, fmt, question, hits, keys, force=force)
        except FileExistsError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:  # a folder that cannot be written to, a full disk, ...
            why = f"cannot write {path}: {e.strerror}" if e.strerror else str(e)
            raise click.ClickException(why) from None
        click.echo(f"wrote {path}", err=True)
    _write_drawn(drawn, force)
    if as_json:
        click.echo(render_json(question, hits, keys), nl=False)
        return
    _print_hits(hits, keys, full, explain)


def _check_exports(exports, fmt: str | None, force: bool, refuse: tuple = (),
                   why: str = "") -> None:  # fmt: skip
    """The --export files, checked before any work: each named once, of a format it can be
    written in (``refuse``: those this command cannot write, told with ``why``), and
    writable (or --force)."""
    if not exports:  # a plain query imports no export code
        return
    from ddsearch.search.export import check_target, format_from_path

    if len({Path(p).resolve() for p in exports}) < len(exports):
        raise click.UsageError("the same --export file is given twice")
    for path in exports:
        try:
            kind = format_from_path(path, fmt)
        except ValueError as e:
            raise click.UsageError(str(e)) from None
        if kind in refuse:
            raise click.UsageError(why)
        try:
            check_target(path, force)
        except OSError as e:
            raise click.ClickException(str(e)) from None


def _check_folder(folder: Path) -> None:
    """A folder exports go into, checked before any work: it is one, or can be made."""
    if folder.exists() and not folder.is_dir():
        raise click.ClickException(f"cannot write into {folder}: it is not a folder")
    parent = folder if folder.exists() else folder.parent
    if not parent.is_dir():
        raise click.ClickException(f"cannot make {folder}: the folder {parent} does not exist")
    import os

    if not os.access(parent, os.W_OK):
        raise click.ClickException(f"cannot write into {parent}: it is not writable")


def _drawn(query, hits, keys, records, highlighter, exports, fmt, annotate, pages_dir):
    """{path: bytes} of every export drawn from the papers' PDFs (packets, PNGs, annotated
    copies), made whole before any is written; a hit left without a highlight is told."""
    from ddsearch.search.export import PAGE_FORMATS, format_from_path

    wanted = [p for p in exports if format_from_path(p, fmt) in PAGE_FORMATS]
    if not (wanted or annotate or pages_dir):
        return {}
    from ddsearch.search import packet

    if not hits:
        raise click.ClickException("no results: there is no page to draw")
    pdfs, out, skipped = highlighter.pdfs, {}, []
    for path in wanted:
        if format_from_path(path, fmt) == "pdf":
            out[path], missed = packet.packet(query, hits, keys, pdfs, records)
            skipped += missed
        else:
            out[path] = packet.page_images(hits[:1], pdfs, records)[0]
    if annotate is not None:
        copies, missed = packet.annotated(query, hits, keys, pdfs, records)
        out.update({annotate / f"{pid}.pdf": data for pid, data in copies.items()})
        skipped += missed
    if pages_dir is not None:
        images = packet.page_images(hits, pdfs, records)
        out.update({pages_dir / name: data
                    for name, data in zip(packet.image_names(hits), images)})  # fmt: skip
    for s in {(s.rank, s.paper): s for s in skipped}.values():
        click.echo(f"not highlighted: #{s.rank} {s.paper}: {s.reason}", err=True)
    return out


def _write_drawn(files: dict, force: bool) -> None:
    """Write the annotated copies and page images (the folders made first)."""
    from ddsearch.search.packet import write_all

    if not files:
        return
    for folder in {p.parent for p in files}:
        folder.mkdir(exist_ok=True)
    try:
        written = write_all(files, force=force)
    except FileExistsError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"cannot write: {e.strerror or e}") from None
    for path in written:
        click.echo(f"wrote {path}", err=True)


def _print_hits(hits: Results, keys: dict[str, str], full: bool, explain: bool) -> None:
    if not hits:
        click.echo("no results")
        return
    if hits.weak_match:
        click.echo(click.style(_WEAK_NOTICE, fg="red"))
    if hits.respelled:
        click.echo(click.style(f"searched {respelled(hits.respelled)}", fg="yellow"))
    if explain and hits.reading is not None:  # what the fitted models took the question for
        click.echo(click.style(f"read as: {hits.reading}", dim=True))
        click.echo()
    width = min(shutil.get_terminal_size((100, 20)).columns, 110)
    for hit in hits:
        _print_hit(hit, keys[hit.paper.id], width, full, explain)


def _query_file(ctx, qfile, run, keys, output: str, full: bool, explain: bool) -> None:
    """Each non-blank line's results as text, a JSON list, or JSON lines. A question that
    cannot be searched is told on stderr (and, as JSON, as its own ``error``); the rest run."""
    from ddsearch.search.export import render_json

    docs, failed = [], 0
    for n, line in enumerate(qfile, 1):
        q = line.strip()
        if not q:
            continue
        try:
            hits = run(q)
        except QueryError as e:
            failed += 1
            click.echo(f"Error: line {n}: {e}", err=True)
            doc = {"query": q, "error": str(e), "results": []}
        else:
            if output == "text":
                click.echo(click.style(f"== {q}", bold=True))
                _print_hits(hits, keys, full, explain)
                continue
            doc = json.loads(render_json(q, hits, keys))
        if output == "jsonl":
            click.echo(json.dumps(doc, ensure_ascii=False))
        elif output == "json":
            docs.append(doc)
    if output == "json":
        click.echo(json.dumps(docs, indent=2, ensure_ascii=False))
    if failed:
        ctx.exit(1)


# ------------------------------------------------------------------------------ papers, cite
@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def papers(ctx, as_json, catalog_path):
    """The catalog and local papers, with their status and chunk counts."""
    from ddsearch.status import paper_statuses

    rows = paper_statuses(_settings(ctx), _catalog(catalog_path))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2, ensure_ascii=False))
        return
    width = max((len(r.id) for r in rows), default=2)
    click.echo(f"{'id':<{width}}  year  {'status':<18} chunks  cites  cited-by  title")
    for r in rows:
        chunks = f"{r.chunks:6d}" if r.chunks else "      "
        year = r.year or "    "
        cites = "     ?" if r.cites is None and r.status == "indexed" else f"{r.cites or '':>6}"
        cited = f"{r.cited_by or '':>8}"
        click.echo(f"{r.id:<{width}}  {year}  {r.status:<18} {chunks}  {cites}  {cited}  {r.title}")
    indexed = sum(r.status == "indexed" for r in rows)
    click.echo(f"{len(rows)} papers, {indexed} indexed, {sum(r.chunks for r in rows)} chunks")
    unread = sum(r.cites is None and r.status == "indexed" for r in rows)
    if unread:
        click.echo(f"cites '?': {unread} paper(s) ingested before ddsearch read reference lists; "
                   "run 'ddsearch ingest' to read them")  # fmt: skip


@main.command()
@click.argument("ids", nargs=-1, required=True)
@click.option(
    "--format",
    "fmt",
    type=_choices(CiteFormat),
    default=CiteFormat.BIB.value,
    show_default=True,
)
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def cite(ctx, ids, fmt, catalog_path):
    """Print the bibliography entries of whole papers."""
    from ddsearch.catalog import UnknownIdError, resolve_ids
    from ddsearch.search.cite import citation_keys, known_papers
    from ddsearch.search.export import render_papers

    settings = _settings(ctx)
    indexed = []  # the keys depend on every paper a query could cite, as in query and serve
    if (settings.home / "index.db").exists() or settings.chroma_url:
        from ddsearch.index.store import Store

        store = Store.open(settings, readonly=True)
        indexed = [r.paper for r in store.records().values()]
        store.close()
    known = known_papers(_catalog(catalog_path), indexed)
    try:
        ids = resolve_ids(ids, known)
    except UnknownIdError as e:
        raise click.ClickException(f"unknown paper id(s): {e}") from None
    click.echo(render_papers(fmt, [known[i] for i in ids], citation_keys(known.values())), nl=False)


# ------------------------------------------------------------------------------ the graph
def _graph(ctx: click.Context, catalog_path: Path | None):
    from ddsearch.search.graph import Graph

    return Graph.open(_settings(ctx), _catalog(catalog_path))


def _note_unread(graph) -> None:
    """Say which papers' lists were never read: an answer without them is not the whole."""
    unread = graph.unread
    if unread:
        shown = ", ".join(unread[:5]) + (", ..." if len(unread) > 5 else "")
        click.echo(f"note: {len(unread)} paper(s) were ingested before ddsearch read reference "
                   f"lists ({shown}); run 'ddsearch ingest' to read them", err=True)  # fmt: skip


def _wrap(text: str, indent: str) -> str:
    width = max(40, min(100, shutil.get_terminal_size((100, 24)).columns))
    return textwrap.fill(" ".join(text.split()), width, initial_indent=indent,
                         subsequent_indent=indent)  # fmt: skip


def _print_edge(graph, edge, head: str) -> None:
    click.echo(_wrap(f"{head} {edge.reference}", ""))
    for s in edge.citations:
        where = graph.citation(edge, s)["page_label"] or "page unknown"
        click.echo(_wrap(f'{where}: "{s.text}"', "    "))
    if not edge.citations:
        click.echo("    (no sentence citing it was found)")


def _json_out(doc) -> None:
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False))


@main.command()
@click.argument("paper_id")
@click.option("--all", "everything", is_flag=True,
              help="List every entry, the ones naming no known paper too.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of entries.")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def refs(ctx, paper_id, everything, as_json, catalog_path):
    """What a paper cites that is in the collection or the catalog, with the sentences citing
    each and their pages. A paper without a reference list that can be found is an error."""
    graph = _graph(ctx, catalog_path)
    try:
        edges = graph.refs(paper_id, everything=everything)
        if as_json:
            _json_out([graph.edge_json(e) for e in edges])
            return
        pid = graph.paper_id(paper_id)
        total = graph.read[pid]
        known = sum(e.id is not None for e in edges)
        said = f"{pid} cites {known} known paper(s) of the {total} entries of its reference list"
        click.echo(said + ("" if everything or known == total else "; --all lists every entry"))
        for edge in edges:
            name = edge.id or "(not in the catalog)"
            if edge.id and edge.id not in graph.records:
                name += " (catalog, not ingested)"
            click.echo("")
            _print_edge(graph, edge, f"{edge.label} {name}:")
    finally:
        graph.close()


@main.command("cited-by")
@click.argument("paper_id")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the citing papers.")
@click.option("--export", "exports", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Write the citing sentences as citations (.md for Pandoc, .json) or their "
                   "papers' bibliography (.bib, .csl.json, .ris); repeatable.")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite an existing export file.")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def cited_by(ctx, paper_id, as_json, exports, force, catalog_path):
    """Which papers of the collection cite a paper, with the sentences saying what they take
    from it, as citations (page, quote, link)."""
    from ddsearch.search.export import PAGE_FORMATS, export

    _check_exports(exports, None, force, refuse=PAGE_FORMATS,  # before any work
                   why="cited-by exports .md, .json, .bib, .csl.json or .ris")  # fmt: skip
    graph = _graph(ctx, catalog_path)
    try:
        edges = graph.cited_by(paper_id)
        pid = graph.paper_id(paper_id, indexed=False)
        _note_unread(graph)
        cited = [(e, s) for e in edges for s in e.citations]
        hits = [graph.hit(e, s, rank) for rank, (e, s) in enumerate(cited, 1)]
        title = graph.known[pid].title
        for export_path in exports:
            try:
                export(export_path, None, title, hits, graph.keys, force=force,
                       heading="Cited by")  # fmt: skip
            except OSError as e:
                raise click.ClickException(f"cannot write {export_path}: {e}") from None
            click.echo(f"wrote {export_path}", err=True)
        if as_json:
            _json_out([graph.edge_json(e) for e in edges])
            return
        if not edges:
            click.echo(f"no paper of the collection cites {pid}")
            return
        click.echo(f"{pid} is cited by {len(edges)} paper(s) of the collection")
        for edge in edges:
            click.echo("")
            _print_edge(graph, edge, f"{edge.id} {edge.label}:")
    finally:
        graph.close()


@main.command()
@click.argument("paper_ids", nargs=-1, required=True)
@click.option(
    "--depth",
    type=click.IntRange(min=1, max=_default(QuerySettings, "max_depth")),
    default=1,
    show_default=True,
    help="Follow references this many steps: 1 is what the papers cite, 2 what those cite too.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the order as a JSON list.")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def path(ctx, paper_ids, depth, as_json, catalog_path):
    """A reading order for these papers: the papers of the collection they build on,
    prerequisites first, each with the sentence saying why it matters."""
    graph = _graph(ctx, catalog_path)
    try:
        steps = graph.path(paper_ids, depth)
        _note_unread(graph)
        if as_json:
            _json_out([graph.step_json(s) for s in steps])
            return
        width = len(str(len(steps)))
        for n, step in enumerate(steps, 1):
            p = step.paper
            if step.target:
                why = "what you asked for"
            else:
                why = f"{len(step.dependents)} of these build on it"
            click.echo(f"{n:>{width}}. {p.id} ({p.year or 'n.d.'}) {p.title} [{why}]")
            for e in step.reasons[:1]:  # the target's own sentence first (--json: all)
                s = e.citations[0] if e.citations else None
                if s is None:
                    click.echo(_wrap(f"{e.id} cites it {e.label}", " " * (width + 4)))
                    continue
                where = graph.citation(e, s)["page_label"] or "page unknown"
                click.echo(_wrap(f'{e.id}, {where}: "{s.text}"', " " * (width + 4)))
    finally:
        graph.close()


@main.command("graph")
@click.option("--format", "fmt", type=_choices(GraphFormat), default=GraphFormat.DOT.value,
              show_default=True)  # fmt: skip
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def graph_(ctx, fmt, catalog_path):
    """The collection's citation graph (citing -> cited), for Graphviz or other tools."""
    from ddsearch.search.graph import render_graph

    graph = _graph(ctx, catalog_path)
    try:
        _note_unread(graph)
        click.echo(render_graph(graph, fmt), nl=False)
    finally:
        graph.close()


# ------------------------------------------------------------------------------ doctor
@main.command()
@click.option("--fix", is_flag=True, help="Repair what is safe to repair (see the report).")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def doctor(ctx, fix, as_json, catalog_path):
    """Check the index against itself, the catalog and the PDF cache; exit 1 on a problem."""
    from ddsearch.doctor import diagnose

    result = diagnose(_settings(ctx), _catalog(catalog_path), fix=fix)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        for line in result.fixed:
            click.echo(f"fixed    {line}")
        for f in result.findings:
            tag = f.kind  # problem, note or ok
            click.echo(
                f"{tag:<8} {f.check}: {f.message}" + (f"\n         -> {f.fix}" if f.fix else "")
            )
        n = len(result.problems)
        fixable = sum(f.fixable for f in result.problems)
        click.echo(
            "no problems found"
            if not n
            else f"{n} problem(s)"
            + (f", {fixable} fixable with 'ddsearch doctor --fix'" if fixable else "")
        )
    if not result.ok:
        ctx.exit(1)


# ------------------------------------------------------------------------------ serve
@main.command()
@click.option("--host", default=_default(ServeSettings, "host"), show_default=True,
              help="Address to listen on.")  # fmt: skip
@click.option("--port", default=_default(ServeSettings, "port"), show_default=True, type=int,
              help="Port (0: any free port; the URL is printed).")  # fmt: skip
@click.option("--max-pending", default=_default(ServeSettings, "max_pending"), type=int,
              show_default=True,
              help="Requests in flight at once (running or queued); more get 503.")  # fmt: skip
@click.option(
    "--workers",
    type=int,
    help="Searches run at once, each on its own Searcher "
    f"(default: the number of cores, at most {_default(ServeSettings, 'max_workers')}).",
)
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--quiet", is_flag=True, help="No access log on stderr.")
@click.option("--token", help="Require 'Authorization: Bearer TOKEN' "
              "(required to listen beyond loopback). Default: $DDSEARCH_TOKEN.")  # fmt: skip
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Let scripts of this site read the API (repeatable, e.g. "
              "https://wiki.example.org). Default: none.")  # fmt: skip
@click.pass_context
def serve(ctx, host, port, max_pending, workers, catalog_path, quiet, token, cors_origins):
    """Serve the index over HTTP: a JSON API (/search, /papers, /cite/ID, /openapi.json),
    a search page at /, and MCP at /mcp. Listens on 127.0.0.1 unless --host says otherwise."""
    import dataclasses

    from ddsearch.serve import Server
    from ddsearch.service import Service

    settings = _settings(ctx)
    serve = dataclasses.replace(settings.serve, host=host, port=port, max_pending=max_pending,
                                workers=workers, token=token or settings.serve.token)  # fmt: skip
    settings = dataclasses.replace(settings, serve=serve)
    for origin in cors_origins:
        if not origin.startswith(("http://", "https://")) or origin.rstrip("/") != origin:
            raise click.BadParameter(f"{origin!r} is not an origin like https://example.org",
                                     param_hint="--cors-origin")  # fmt: skip
    Server.check(serve.host, serve.token)  # before the model loads
    service = Service(settings, _catalog(catalog_path))
    try:
        service.start()
        server = Server(service, serve.host, serve.port, token=serve.token,
                        cors_origins=cors_origins, quiet=quiet)  # fmt: skip
    except OSError as e:
        service.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    except BaseException:
        service.close()
        raise
    click.echo(f"serving {service.settings.home} on {server.url}/ (Ctrl-C stops)")
    sys.stdout.flush()
    try:
        server.run()
    finally:
        service.close()


# ------------------------------------------------------------------------------ mcp
@main.command()
@click.option("--catalog", "catalog_path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def mcp(ctx, catalog_path):
    """Serve the index to an assistant over MCP (stdio): tools search, cite, papers, page,
    refs, cited_by, path."""
    from ddsearch.mcp_server import run_stdio

    run_stdio(_settings(ctx), _catalog(catalog_path))


# ------------------------------------------------------------------------------ eval
@main.command("eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-k", "k", default=_default(EvalSettings, "k"), show_default=True,
              help="Cut-off for hit@k.")  # fmt: skip
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=_choices(Mode),
    help="Ranking mode(s) to score (repeatable; default hybrid).",
)
@click.option(
    "--split",
    "split_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='A split file ({"tune": [ids], "held": [ids]}), for --part.',
)
@click.option(
    "--part",
    type=_choices(Part),
    default=Part.ALL.value,
    show_default=True,
    help="Which part of the split to score.",
)
@click.option("--intervals", is_flag=True, help="Bootstrap 95% intervals for the overall figures.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def eval_(ctx, file, k, modes, split_path, part, intervals, as_json):
    """Score retrieval and citations on questions with gold (paper, pages, quote): hit@k,
    MRR@10, paper@1, multi-paper recall, quote accuracy, exact@1, single-page, link page."""
    from ddsearch.search.evaluate import evaluate, load_questions, load_split, select

    limit = _default(EvalSettings, "max_k")
    if not 1 <= k <= limit:
        raise click.UsageError(f"-k must be between 1 and {limit}")
    if part != Part.ALL and split_path is None:
        raise click.UsageError("--part goes with --split FILE")
    questions = select(load_questions(file), load_split(split_path) if split_path else {}, part)
    searcher = _searcher(ctx)
    searcher.warm()
    absent = sorted({p for q in questions for p in q.gold} - set(searcher.records))
    if absent:  # a typo in the gold file, or a paper not ingested: a miss, not an error
        asking = sum(1 for q in questions if set(q.gold) & set(absent))
        click.echo(
            f"warning: {asking} question(s) name papers not in the index, scored as misses: "
            + ", ".join(absent),
            err=True,
        )
    results = [
        evaluate(searcher, questions, k=k, mode=m, part=part).as_dict(intervals)
        for m in modes or (Mode.HYBRID,)
    ]
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return
    for r in results:
        _print_eval(r)


_EVAL_COLUMNS = [  # (heading, field, width)
    ("n", "questions", 5), ("hit@{k}", "hit@{k}", 8), ("MRR@10", "mrr@10", 8),
    ("paper@1", "paper@1", 8), ("multi@10", "multi_recall@10", 9), ("every@{k}", "every@{k}", 9),
    ("quote", "quote_acc", 7),
    ("exact@1", "exact@1", 8), ("1-page", "single_page", 7), ("link", "link=quote_page", 7),
]  # fmt: skip


def _print_eval(r: dict) -> None:
    k = r["k"]
    part = f" · {r['part']} part" if r["part"] != "all" else ""
    click.echo(click.style(f"mode {r['mode']}{part}", bold=True))
    cols = [(h.format(k=k), f.format(k=k), w) for h, f, w in _EVAL_COLUMNS]
    click.echo(f"{'':<10}" + "".join(f"{h:>{w}}" for h, _, w in cols))
    rows = [("overall", r["overall"])] + list(r["styles"].items())
    for name, s in rows:
        cells = []
        for _, f, w in cols:
            v = s.get(f)
            cells.append(f"{'-' if v is None else (v if f == 'questions' else f'{v:.3f}'):>{w}}")
        click.echo(f"{name:<10}" + "".join(cells))
    cis = {f: s for f, s in r["overall"].items() if f.endswith("_ci")}
    if cis:
        click.echo(
            "95% intervals: "
            + ", ".join(f"{f[:-3]} {lo:.3f}-{hi:.3f}" for f, (lo, hi) in cis.items())
        )
    if r["missed"]:
        click.echo(f"missed at {k} ({len(r['missed'])}):")
        for m in r["missed"]:
            gold = ", ".join(f"{p} p.{','.join(map(str, pg))}" for p, pg in m["gold"].items())
            got = ", ".join(f"{p} p.{','.join(map(str, pg))}" for p, pg in m["got"][:3])
            click.echo(f"  {m['id']}: {m['question']}\n     gold {gold}; got {got}")
    click.echo()


if __name__ == "__main__":  # pragma: no cover
    main()
