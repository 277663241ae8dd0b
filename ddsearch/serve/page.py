"""The search page: rendered on the server, every text escaped, no external asset; searching
works without JavaScript (the one script only copies citations)."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from ddsearch import __version__
from ddsearch.config import PageSettings, QuerySettings
from ddsearch.models import respelled

MAX_CHARS = QuerySettings().max_chars  # the input's maxlength; longer is refused anyway

_CSS = """
body{font:15px/1.4 system-ui,sans-serif;max-width:76rem;margin:.8rem auto;padding:0 1rem;color:#222}
header{display:flex;gap:1rem;align-items:center;margin-bottom:.6rem}header b{font-size:1.2rem}
form{display:flex;gap:.5rem;flex:1}input[type=search]{flex:1;font-size:1rem;padding:.3rem}
ol{list-style:none;padding:0;margin:0}
li.hit{border:1px solid #ddd;border-radius:4px;padding:.35rem .6rem;margin-bottom:.4rem}
.head{font-size:.9rem;color:#555}.head .title{font-weight:600;color:#222}
blockquote{margin:.2rem 0;padding-left:.6rem;border-left:3px solid #c90;
 display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden}
.foot{display:flex;gap:.6rem;align-items:baseline;font-size:.82rem;color:#035}
.citation{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.foot button{font-size:.78rem;padding:0 .4rem}.where{color:#555;font-size:.85rem}
.reading{color:#555;font-size:.9rem}
.respelled{color:#8a5a00;font-size:.9rem}
.error{color:#a00}.weak{background:#fff3cd;border:1px solid #e0c36a;padding:.3rem .6rem}
li.hit{display:grid;grid-template-columns:minmax(0,1fr) auto;column-gap:.8rem}
li.hit>:not(.view){grid-column:1}li.hit>.view{grid-column:2;grid-row:1/span 3;align-self:start}
.view{display:block;width:22rem;max-height:6.6rem;overflow:hidden;border:1px solid #ddd;
 background:#fff}.view img{display:block;width:100%;height:auto}
.pages{font-size:.8rem}
@media (max-width:40rem){li.hit{display:block}.view{width:auto;max-height:9rem;margin:.3rem 0}}
"""
CROP_SCALE = PageSettings.crop_scale  # PageSettings says why
# copy buttons: the only script, allowed by its hash in the CSP; searching needs none
_SCRIPT = (
    "document.addEventListener('click',function(ev){var b=ev.target.closest('button[data-copy]');"
    "if(!b)return;var t=b.getAttribute('data-copy'),done=function(){b.textContent='Copied'};"
    "if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(t).then(done)"
    "}else{var a=document.createElement('textarea');a.value=t;document.body.appendChild(a);"
    "a.select();document.execCommand('copy');a.remove();done()}});"
)
_SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
PAGE_CSP = (
    f"default-src 'none'; style-src 'unsafe-inline'; script-src '{_SCRIPT_HASH}'; "
    "img-src 'self'; "  # the pages drawn by /page
    "form-action 'self'; frame-ancestors 'none'"  # no other site frames the page
)


def _safe_href(url: str | None) -> str | None:
    """Only http(s) and file links: a catalog URL must never become a javascript: link."""
    if not url:
        return None
    scheme = urlsplit(url).scheme.lower()
    return url if scheme in ("http", "https", "file") else None


def _page_view(hit) -> str:
    """The cited part of the page, the quote highlighted (a crop, drawn by /page when the
    browser comes to it), linked to the whole page; "" when the quote's place is not known."""
    from ddsearch.search.pdfs import ImageError, PageError
    from ddsearch.search.render import Geometry, crop_box

    if not hit.highlight:
        return ""
    e = html.escape
    first = hit.highlight[0]
    try:
        geometry = Geometry(crop_box(first.box, first.rects), CROP_SCALE)
    except (ImageError, PageError):
        return ""
    links = []
    for h in hit.highlight:
        marks = "&".join("mark=" + ",".join(f"{v:g}" for v in r) for r in h.rects)
        links.append((h.page, f"/page/{quote(hit.paper.id, safe='')}/{h.page}.png?{marks}"))
    width, height = geometry.size
    boxes = ";".join(",".join(map(str, geometry.pixels(r))) for r in first.rects)
    more = "".join(
        f' <a href="{e(href)}">p. {page}</a>' for page, href in links[1:]
    )  # the quote goes on over a page break: the other pages, whole
    return (
        f'<div class="view"><a href="{e(links[0][1])}" title="PDF page {first.page}, whole">'
        f'<img src="{e(links[0][1])}&amp;crop=1&amp;scale={CROP_SCALE:g}" width="{width}" '
        f'height="{height}" loading="lazy" data-marks="{boxes}" '
        f'alt="PDF page {first.page} of {e(hit.paper.title)}, the quote highlighted"></a>'
        + (f'<div class="pages">Also on{more}</div>' if more else "")
        + "</div>"
    )


def render_page(
    q: str, hits, keys: dict[str, str], error: str | None = None, weak: bool = False,
    filters: Sequence[tuple[str, str]] = (),
) -> str:  # fmt: skip
    """The search page; every piece of text from the query or the index is escaped.
    ``weak``: the search JSON's ``weak_match``, shown as a notice above the results; how the
    question was read (``hits.reading``, as ``query --explain`` prints it) and the words
    searched for typing slips (``hits.respelled``) are shown above them.
    ``filters``: the other parameters (k, paper, mode), shown and kept by the next search."""
    from ddsearch.search.cite import format_citation, make_citation
    from ddsearch.search.export import bibtex_entry, md_escape

    e = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(q + ' – ') if q else ''}ddsearch</title><style>{_CSS}</style></head><body>",
        "<header><b>ddsearch</b>",
        '<form method="get" action="/" role="search">',
        f'<input type="search" name="q" value="{e(q)}" maxlength="{MAX_CHARS}" '
        'placeholder="Why does Raft use randomized election timeouts?" autofocus required>',
        *(f'<input type="hidden" name="{e(n)}" value="{e(v)}">' for n, v in filters),
        '<button type="submit">Search</button></form></header>',
    ]
    if filters:
        shown = " · ".join(f"{n} {v}" for n, v in filters)
        out.append(f'<p class="filters" id="filters">Filters: {e(shown)} · <a href="/?q='
                   f'{e(quote(q, safe=""))}">clear</a></p>')  # fmt: skip
    if weak and hits:
        out.append(
            '<p class="weak" id="weak-match">These passages match the question only weakly: '
            "the papers may not answer it. Try other words.</p>"
        )
    slips = getattr(hits, "respelled", ())
    if slips and hits and not error:
        out.append(f'<p class="respelled" id="respelled">Searched {e(respelled(slips))}.</p>')
    reading = getattr(hits, "reading", None)  # hybrid search with the fitted models only
    if reading is not None and hits and not error:
        out.append(f'<p class="reading" id="reading">Read as: {e(str(reading))}</p>')
    if error:
        out.append(f'<p class="error" id="error">{e(error)}</p>')
    elif hits is not None and not hits:
        out.append('<p id="no-results">No results.</p>')
    elif hits:
        out.append('<ol id="results">')
        for hit in hits:
            key = keys.get(hit.paper.id, hit.paper.id)
            c = make_citation(hit, key)
            head = e(hit.paper.title) + (f" ({hit.paper.year})" if hit.paper.year else "")
            where = [c.pages or "", f"§ {hit.chunk.section}" if hit.chunk.section else ""]
            quote_text = hit.quote or hit.chunk.text
            href = _safe_href(c.link)
            md = (
                f"> {md_escape(quote_text)}\n\n"
                + (f"[@{key}, {c.pages}]" if c.pages else f"[@{key}]")
                + (f" <{c.link}>" if href else "")
            )
            out.append(
                f'<li class="hit" data-paper="{e(hit.paper.id)}" data-rank="{hit.rank}">'
                + _page_view(hit)
                + f'<div class="head"><span class="title">{head}</span>'
                f"{' · ' + e(' · '.join(w for w in where if w)) if any(where) else ''}</div>"
                f'<blockquote class="quote" title="{e(quote_text)}">{e(quote_text)}</blockquote>'
                f'<div class="foot"><span class="citation">{e(format_citation(c))}</span>'
            )
            if href:
                label = f"Open {c.pages}" if c.pages else "Open the paper"
                out.append(f'<a class="page-link" href="{e(href)}">{e(label)}</a>')
            pid = quote(hit.paper.id, safe="")
            cite = f"/cite/{pid}"
            out.append(  # the paper in the citation graph: what it cites, who cites it
                f'<a class="refs-link" href="/refs/{e(pid)}">References</a>'
                f'<a class="cited-by-link" href="/cited-by/{e(pid)}">Cited by</a>'
            )
            out.append(
                f'<a class="bib-link" href="{e(cite)}?format=bib">BibTeX</a>'
                f'<button type="button" class="copy-md" data-copy="{e(md)}">Copy Markdown</button>'
                f'<button type="button" class="copy-bib" '
                f'data-copy="{e(bibtex_entry(hit.paper, key))}">Copy BibTeX</button></div></li>'
            )
        out.append("</ol>")
    out.append(
        '<p class="where">JSON API: <a href="/openapi.json">/openapi.json</a> · '
        f'<a href="/papers">/papers</a> · ddsearch {e(__version__)}</p>'
        f"<script>{_SCRIPT}</script></body></html>"
    )
    return "\n".join(out) + "\n"
