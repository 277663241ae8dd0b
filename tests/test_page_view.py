"""Pages drawn: the renderer on made PDFs (PNG read back by Pillow, an independent decoder),
and ``GET /page/{paper}/{n}.png`` and the search page's crops in the serve app, with the
refusals (not indexed, no such page, a huge image, bad marks, a PDF gone since ingest)."""

from __future__ import annotations

import io
import shutil
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from ddsearch.catalog import load_catalog
from ddsearch.config import Settings
from ddsearch.errors import Problem
from ddsearch.search.pdfs import ImageError, PageError, Pdfs
from ddsearch.search.render import HIGHLIGHT, Geometry, crop_box, draw, png, scale_for
from ddsearch.serve.api import create_app
from ddsearch.service import Service


def decode(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.mode == "RGB"
    return np.asarray(image)


def is_highlight(pixels: np.ndarray) -> np.ndarray:
    return np.all(pixels == np.array(HIGHLIGHT, dtype=np.uint8), axis=-1)


# ---------------------------------------------------------------- the renderer


def test_png_round_trips_through_pillow():
    image = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert np.array_equal(decode(png(image)), image)


def test_geometry_maps_points_to_pixels_on_turned_pages():
    box, rect = (0, 0, 600, 800), (100, 700, 200, 750)
    assert Geometry(box, 1.0).pixels(rect) == (100, 50, 200, 100)
    assert Geometry(box, 2.0).size == (1200, 1600)
    assert Geometry(box, 1.0, 90).size == (800, 600)
    assert Geometry(box, 1.0, 90).pixels(rect) == (700, 100, 750, 200)
    assert Geometry(box, 1.0, 180).pixels(rect) == (400, 700, 500, 750)
    assert Geometry(box, 1.0, 270).pixels(rect) == (50, 400, 100, 500)
    assert Geometry((10, 20, 610, 820), 1.0).pixels((110, 720, 210, 770)) == (100, 50, 200, 100)


def test_scale_and_width_are_bounded():
    assert scale_for((612, 792), None, None) == 1.5
    assert scale_for((612, 792), None, 306) == 0.5
    assert scale_for((612, 792), 2.0, 306) == 0.5  # the width decides
    for size, scale, width, words in (
        ((612, 792), 5.0, None, "between 0.1 and 2.5"),
        ((612, 792), None, 0, "from 16 to 2000"),
        ((612, 792), None, 3999, "from 16 to 2000"),
        ((300, 2000), 2.5, None, "750x5000 pixels, more than 4000"),  # a long, narrow page
    ):
        with pytest.raises(ImageError, match=words) as e:
            scale_for(size, scale, width)
        assert e.value.problem is Problem.INPUT  # 400 over HTTP


def test_a_crop_is_the_first_lines_around_the_marks():
    box = (0, 0, 612, 792)
    lines = [(300, 700, 540, 710), (72, 686, 540, 696), (72, 672, 200, 682)]
    assert crop_box(box, lines) == (58.0, 658.0, 554.0, 724.0)
    other_column = [(72, 100, 290, 110), (320, 700, 540, 710)]  # goes on at the next column's top
    assert crop_box(box, [(700, 900, 800, 950)]) == box  # off the page: the whole page
    assert crop_box(box, other_column) == (58.0, 86.0, 304.0, 124.0)
    assert crop_box(box, []) == box  # nothing to crop around


def test_a_page_drawn_with_its_quote_highlighted(tmp_path):
    from pdfmaker import make_pdf

    path = make_pdf(tmp_path / "p.pdf", [["A first line of text.", "The line to mark."]])
    pdfs = Pdfs(tmp_path)
    mark = (72.0, 700.0, 160.0, 711.0)  # the second line (its baseline at y=706)
    image, geometry = draw(pdfs, path, 1, scale=1.0, marks=[mark])
    assert image.shape == (792, 612, 3) and geometry.size == (612, 792)
    left, top, right, bottom = geometry.pixels(mark)
    inside = image[top:bottom, left:right]
    assert is_highlight(inside).mean() > 0.5  # the paper under the mark, yellow
    assert inside.min() < 60  # and the ink still dark over it
    outside = np.ones(image.shape[:2], dtype=bool)
    outside[top:bottom, left:right] = False
    assert not is_highlight(image[outside]).any()
    crop, cropped = draw(pdfs, path, 1, scale=2.0, marks=[mark], crop=True)
    assert crop.shape[:2] == cropped.size[::-1] and crop.shape[0] < 120
    assert is_highlight(crop).any()
    with pytest.raises(PageError, match="page 3 is not in the PDF"):
        draw(pdfs, path, 3)
    pdfs.close()


# ---------------------------------------------------------------- /page and the search page


@pytest.fixture(scope="module")
def client(indexed_home):
    service = Service(Settings(home=indexed_home), load_catalog(), workers=2)
    with TestClient(create_app(service, mcp=False)) as c:
        yield c
    service.close()


def test_search_results_carry_their_highlight(client):
    results = client.get("/search", params={"q": "how often does a keeper light a beacon"}).json()
    first = results["results"][0]
    assert first["paper"] == "lighthouse" and first["quote"]
    (h,) = first["highlight"]
    assert h["page"] in first["pages"] and h["box"] == [0, 0, 612, 792]
    assert h["rects"] and all(x0 < x1 and y0 < y1 for x0, y0, x1, y1 in h["rects"])


def test_a_page_image_with_its_marks(client):
    hit = client.get("/search", params={"q": "beacon every ninety seconds", "k": 1}).json()
    h = hit["results"][0]["highlight"][0]
    marks = [("mark", ",".join(map(str, r))) for r in h["rects"]]
    url = f"/page/lighthouse/{h['page']}.png"
    r = client.get(url, params=[*marks, ("scale", "1")])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"].startswith("private")
    image = decode(r.content)
    assert image.shape == (792, 612, 3)
    x0, y0, x1, y1 = h["rects"][0]
    assert is_highlight(image[round(792 - y1) : round(792 - y0), round(x0) : round(x1)]).any()
    crop = decode(client.get(url, params=[*marks, ("crop", "true")]).content)
    assert crop.shape[0] < 200 and is_highlight(crop).any()
    plain = decode(client.get(url, params={"width": 306, "scale": 2}).content)  # width decides
    assert plain.shape == (396, 306, 3) and not is_highlight(plain).any()
    assert client.get("/page/Lighthouse/1.png").status_code == 200  # any case, as elsewhere
    whole = decode(client.get(url, params={"crop": "true", "scale": "1"}).content)
    assert whole.shape == (792, 612, 3)  # no marks: nothing to crop around


@pytest.mark.parametrize(
    "url, status, words",
    [
        ("/page/nope/1.png", 404, "paper id not in the index: nope"),
        ("/page/lighthouse/9.png", 404, "page 9 is not in the PDF (3 pages)"),
        ("/page/lighthouse/0.png", 400, "page number must be a whole number"),
        ("/page/lighthouse/x.png", 400, "page number must be a whole number"),
        ("/page/lighthouse/1.png?scale=40", 400, "'scale' must be a number from 0.1 to 2.5"),
        ("/page/lighthouse/1.png?width=9000", 400, "'width' must be a whole number"),
        ("/page/lighthouse/1.png?mark=1,2,3", 400, "'mark' must be x0,y0,x1,y1"),
        ("/page/lighthouse/1.png?mark=a,b,c,d", 400, "'mark' must be x0,y0,x1,y1"),
        ("/page/lighthouse/1.png?zoom=2", 400, "unknown parameter(s): zoom"),
        ("/page/lighthouse/1.png?" + "&".join(["mark=1,1,2,2"] * 65), 400, "at most 64"),
    ],
)
def test_bad_page_requests_get_one_line_errors(client, url, status, words):
    r = client.get(url)
    assert r.status_code == status, r.text
    message = r.json()["error"]["message"]
    assert words in message and "\n" not in message


def test_the_search_page_shows_each_quote_on_its_page(client):
    r = client.get("/", params={"q": "how do keepers detect dark stations", "k": 3})
    assert "img-src 'self'" in r.headers["content-security-policy"]
    images = [part.split('"')[0] for part in r.text.split('<img src="')[1:]]
    assert len(images) == r.text.count('class="hit"') == 3
    for src in images:
        url = urlsplit(src.replace("&amp;", "&"))
        query = parse_qs(url.query)
        assert url.path.startswith("/page/") and query["crop"] == ["1"] and query["mark"]
        image = decode(client.get(src.replace("&amp;", "&")).content)
        assert is_highlight(image).any()
    assert 'loading="lazy"' in r.text and 'data-marks="' in r.text


def test_a_pdf_gone_since_ingest(tmp_path, embedder):
    from conftest import write_small_papers

    from ddsearch.ingest.pipeline import ingest

    pdfs = write_small_papers(tmp_path / "pdfs", ["orchard"])
    home = tmp_path / "home"
    assert ingest(Settings(home=home), load_catalog(), [tmp_path / "pdfs"], embedder=embedder).ok
    shutil.rmtree(tmp_path / "pdfs")
    service = Service(Settings(home=home), load_catalog(), workers=1)
    try:
        with TestClient(create_app(service, mcp=False)) as c:
            r = c.get("/page/orchard/1.png")
            assert r.status_code == 404
            message = r.json()["error"]["message"]
            assert f"gone from {pdfs['orchard'].resolve()}" in message
            assert "ddsearch ingest orchard" in message
            found = c.get("/search", params={"q": "apple trees pickers"}).json()
            assert found["results"] and found["results"][0]["highlight"] == []  # still searches
    finally:
        service.close()
