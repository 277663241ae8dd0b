"""Exports drawn from the papers' own PDFs, read back by third-party readers: pdfannots
(pdfminer) finds one highlight per hit whose text is the quote, in the reading packet and in
the annotated copies; poppler's pdftotext reads an annotated copy exactly as the original;
Pillow decodes the PNGs. Existing files are never overwritten without --force, and nothing is
written when a PDF went missing."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from ddsearch.cli import main
from ddsearch.search.pdfs import letters

QUESTION = "how do keepers detect dark stations"


def invoke(*args: str):
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def pdfannots(path: Path) -> list[dict]:
    exe = shutil.which("pdfannots", path=str(Path(sys.executable).parent)) or shutil.which(
        "pdfannots"
    )
    if exe is None:
        pytest.skip("pdfannots is not installed (pip install -e '.[test]')")
    out = subprocess.run([exe, "-f", "json", str(path)], capture_output=True, text=True,
                         timeout=300, check=True)  # fmt: skip
    return json.loads(out.stdout)


def pdftotext(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler's pdftotext is not installed (apt-get install poppler-utils)")
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          check=True, timeout=300).stdout.decode()  # fmt: skip


def same_words(a: str, b: str) -> bool:
    return letters(a)[0] == letters(b)[0]


def by_hit(annotations: list[dict]) -> dict[int, dict]:
    """The highlights of each hit (named ddsearch-RANK-PAGE), their text joined in order."""
    out: dict[int, dict] = {}
    for a in sorted(annotations, key=lambda a: a["name"]):
        if a["type"] != "Highlight":
            continue
        rank = int(re.fullmatch(r"ddsearch-(\d+)-\d+", a["name"]).group(1))
        seen = out.setdefault(rank, {"text": "", "contents": a["contents"], "pages": []})
        seen["text"] += " " + a["text"]
        seen["pages"].append(a["page"])
    return out


@pytest.fixture(scope="module")
def results(indexed_home):
    out = invoke("--home", indexed_home, "query", QUESTION, "-k", "4", "--json")
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)["results"]


def test_the_reading_packet(indexed_home, tmp_path, results):
    packet = tmp_path / "packet.pdf"
    out = invoke("--home", indexed_home, "query", QUESTION, "-k", "4", "--export", packet)
    assert out.exit_code == 0, out.output
    found = by_hit(pdfannots(packet))
    assert sorted(found) == [r["rank"] for r in results]
    for r in results:
        assert same_words(found[r["rank"]]["text"], r["quote"]), (found[r["rank"]], r["quote"])
        note = found[r["rank"]]["contents"]
        assert f"Question: {QUESTION}" in note and r["page_label"] in note
        assert r["title"] in note
    from pypdf import PdfReader

    reader = PdfReader(packet)
    titles = [item.title for item in reader.outline]
    assert titles == [f"{r['rank']}. {r['title']}, {r['page_label']}" for r in results]
    pages = [reader.get_destination_page_number(item) for item in reader.outline]
    assert pages == sorted(pages) and len(reader.pages) == sum(len(r["pages"]) for r in results)


def test_annotated_copies_keep_the_papers_text_and_bytes(indexed_home, tmp_path, results):
    copies = tmp_path / "annotated"
    out = invoke("--home", indexed_home, "query", QUESTION, "-k", "4", "--annotate", copies)
    assert out.exit_code == 0, out.output
    papers = sorted({r["paper"] for r in results})
    assert sorted(p.stem for p in copies.iterdir()) == papers
    sources = indexed_home.parent / "pdfs"
    for pid in papers:
        original = sources / f"{pid}.pdf"
        before = hashlib.sha256(original.read_bytes()).hexdigest()
        copy = copies / f"{pid}.pdf"
        assert copy.read_bytes().startswith(original.read_bytes())  # an incremental update
        assert pdftotext(copy) == pdftotext(original)
        found = by_hit(pdfannots(copy))
        mine = [r for r in results if r["paper"] == pid]
        assert sorted(found) == [r["rank"] for r in mine]
        for r in mine:
            assert same_words(found[r["rank"]]["text"], r["quote"])
            assert found[r["rank"]]["pages"] == r["pages"]  # the paper's own page numbers
        assert hashlib.sha256(original.read_bytes()).hexdigest() == before  # untouched

    again = invoke("--home", indexed_home, "query", QUESTION, "-k", "4", "--annotate", copies)
    assert again.exit_code == 1 and "already exists; pass --force" in again.output
    forced = invoke("--home", indexed_home, "query", QUESTION, "-k", "4", "--annotate", copies,
                    "--force")  # fmt: skip
    assert forced.exit_code == 0


def test_pngs_of_the_highlighted_pages(indexed_home, tmp_path, results):
    top, folder = tmp_path / "top.png", tmp_path / "pages"
    out = invoke("--home", indexed_home, "query", QUESTION, "-k", "4", "--export", top,
                 "--pages", folder)  # fmt: skip
    assert out.exit_code == 0, out.output
    image = Image.open(top)
    assert image.format == "PNG" and image.size == (1224, 1584)  # a letter page at 144 dpi
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{r['rank']}-{r['paper']}-p{r['pages'][0]}.png" for r in results]
    first = Image.open(folder / names[0])
    assert first.tobytes() == image.tobytes()
    import numpy as np

    assert np.all(np.asarray(image) == (255, 221, 0), axis=-1).sum() > 1000


def test_an_existing_file_is_kept_and_nothing_is_written_half(indexed_home, tmp_path):
    folder = tmp_path / "annotated"
    folder.mkdir()
    (folder / "lighthouse.pdf").write_bytes(b"mine")
    packet = tmp_path / "packet.pdf"
    out = invoke("--home", indexed_home, "query", QUESTION, "-k", "4", "--export", packet,
                 "--annotate", folder)  # fmt: skip
    assert out.exit_code == 1 and "lighthouse.pdf already exists" in out.output
    assert not packet.exists() and sorted(p.name for p in folder.iterdir()) == ["lighthouse.pdf"]
    assert (folder / "lighthouse.pdf").read_bytes() == b"mine"
    out = invoke("--home", indexed_home, "query", QUESTION, "--annotate", tmp_path / "a" / "b")
    assert out.exit_code == 1 and "does not exist" in out.output


def test_a_pdf_gone_since_ingest_is_a_one_line_error(tmp_path, embedder):
    from conftest import write_small_papers

    from ddsearch.catalog import load_catalog
    from ddsearch.config import Settings
    from ddsearch.ingest.pipeline import ingest

    write_small_papers(tmp_path / "pdfs", ["ledger"])
    home = tmp_path / "home"
    assert ingest(Settings(home=home), load_catalog(), [tmp_path / "pdfs"], embedder=embedder).ok
    shutil.rmtree(tmp_path / "pdfs")
    packet = tmp_path / "out.pdf"
    out = invoke("--home", home, "query", "hinted entries of clerks", "--export", packet)
    assert out.exit_code == 1
    (line,) = out.output.strip().splitlines()
    assert line.startswith("Error: the PDF of ledger is gone from") and not packet.exists()


def test_the_png_of_a_quote_across_a_page_break_shows_both_pages(tmp_path):
    import numpy as np
    from pdfmaker import make_pdf

    from ddsearch.index.records import PaperRecord
    from ddsearch.models import Chunk, Hit, Paper
    from ddsearch.search.highlight import Highlighter
    from ddsearch.search.packet import page_images
    from ddsearch.search.pdfs import Pdfs

    path = make_pdf(tmp_path / "x.pdf", [["Intro.", "Each keeper lights a beacon every"],
                                          ["ninety seconds to show it is alive."]])  # fmt: skip
    paper = Paper(id="x", title="X")
    quote = "Each keeper lights a beacon every ninety seconds to show it is alive."
    record = PaperRecord(paper, hashlib.sha256(path.read_bytes()).hexdigest(), "", 1,
                         str(path), 0.0)  # fmt: skip
    hit = Hit(1, Chunk("c", "x", 0, quote, (1, 2)), paper, 1.0, quote=quote, quote_pages=(1, 2))
    pdfs = Pdfs(tmp_path)
    Highlighter(pdfs).add([hit], {"x": record})
    assert [h.page for h in hit.highlight] == [1, 2]
    (image,) = page_images([hit], pdfs, {"x": record})
    pixels = np.asarray(Image.open(io.BytesIO(image)))
    assert pixels.shape == (2 * 1584, 1224, 3)
    yellow = np.all(pixels == (255, 221, 0), axis=-1)
    assert yellow[:1584].any() and yellow[1584:].any()
    pdfs.close()
