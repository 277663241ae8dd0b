"""Small PDFs for fault tests, written by hand: no dependencies, exact control over the bytes.

``make_pdf`` writes one text line per item (Helvetica), one content stream per page, a
cross-reference table and a trailer, so a test can also break any of those on purpose.
"""

from __future__ import annotations

import io
import zlib

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


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def text_stream(lines: list[str]) -> bytes:
    """A content stream showing each line on its own line, top down."""
    ops = ["BT", "/F1 10 Tf", "12 TL", "50 760 Td"]
    for line in lines:
        ops.append(f"({_escape(line)}) Tj T*")
    ops.append("ET")
    return "\n".join(ops).encode("latin-1", "replace")


def make_pdf(
    pages: list[list[str]] | list[bytes],
    *,
    title: str | None = None,
    compress: bool = False,
) -> bytes:
    """A PDF with one page per item: a list of text lines, or a raw content stream (bytes)."""
    objects: list[bytes] = []  # object n is objects[n - 1]
    n_pages = len(pages)
    font = 3 + 2 * n_pages
    info = font + 1
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, page in enumerate(pages):
        content = page if isinstance(page, bytes) else text_stream(page)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * i} 0 R >>".encode()
        )
        if compress:
            data = zlib.compress(content, 9)
            head = f"<< /Length {len(data)} /Filter /FlateDecode >>".encode()
        else:
            data = content
            head = f"<< /Length {len(data)} >>".encode()
        objects.append(head + b"\nstream\n" + data + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(f"<< /Title ({_escape(title or '')}) /Producer (faultpdfs) >>".encode())

    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{n} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for off in offsets:
        out.write(f"{off:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


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
    return make_pdf(
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
