"""Papers for fault tests: deterministic prose on pdfmaker's PDFs, an encrypted one, the model.

pdfmaker writes the bytes by hand (one content stream per page, a cross-reference table and a
trailer), so a test can also break any of those on purpose.
"""

from __future__ import annotations

import io

from pdfmaker import pdf_bytes

_WORDS = [
    "replica",
    "leader",
    "quorum",
    "consensus",
    "log",
    "commit",
    "lease",
    "epoch",
    "vote",
    "snapshot",
    "partition",
    "clock",
    "message",
    "failure",
    "recovery",
    "shard",
    "membership",
    "heartbeat",
    "timeout",
    "proposal",
    "ballot",
    "acceptor",
]


def prose(seed: int, lines: int = 40, words: int = 11) -> list[str]:
    """Deterministic sentence-like lines, different for each seed."""
    out = []
    for i in range(lines):
        ws = [_WORDS[(seed * 7 + i * 3 + j * 5) % len(_WORDS)] for j in range(words)]
        out.append(f"Paper {seed} line {i}: the " + " ".join(ws) + ".")
    return out


def paper_pdf(seed: int, pages: int = 3, title: str | None = None, lines: int = 40) -> bytes:
    """A small multi-page text paper."""
    title = title or f"A Study of Replicated State Machines Number {seed}"
    return pdf_bytes(
        [
            [title if p == 0 else f"Section {p}"] + prose(seed * 100 + p, lines)
            for p in range(pages)
        ],
        title=title,
    )


def encrypted_pdf(user_password: str, owner_password: str = "owner-secret") -> bytes:
    """A text PDF encrypted with pypdf (RC4, needs no extra crypto package)."""
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(paper_pdf(7, pages=2)))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


_EMBEDDER = None


def shared_embedder():
    """The real bundled model, loaded once per test process (fixtures in each module use it)."""
    global _EMBEDDER
    if _EMBEDDER is None:
        from ddsearch.index.embed import Embedder

        _EMBEDDER = Embedder()
        _EMBEDDER.encode(["warm up"])
    return _EMBEDDER
