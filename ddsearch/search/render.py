"""A PDF page drawn as a PNG, the quote's rectangles highlighted over it.

pdfium draws the page; the highlight is laid over the bitmap as a highlighter does, by
multiplying (white paper turns yellow, the ink stays black); the PNG is written here with
zlib (stdlib): a PNG is a few chunks around zlib data, and writing it directly takes a third
of the time Pillow's encoder does on a page, with no imaging library to install.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from ddsearch.config import PageSettings
from ddsearch.search.pdfs import LOCK, ImageError, Pdfs

HIGHLIGHT = (255, 221, 0)  # the highlighter's yellow; white paper under it turns this colour
# for callers without settings: PageSettings' own defaults (why: there)
DEFAULT_SCALE, MIN_SCALE, MAX_SCALE = (
    PageSettings.scale,
    PageSettings.min_scale,
    PageSettings.max_scale,
)
MIN_WIDTH, MAX_WIDTH = PageSettings.min_width, PageSettings.max_width
MAX_SIDE, MAX_MARKS, PAD = PageSettings.max_side, PageSettings.max_marks, PageSettings.crop_pad

Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class Geometry:
    """How a page (or a crop of it) maps onto the image: PDF points to pixels."""

    box: Rect  # the part of the page drawn, in PDF points (x0, y0, x1, y1)
    scale: float  # pixels per point
    rotation: int = 0  # the page's /Rotate, clockwise degrees

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image in pixels."""
        w = round((self.box[2] - self.box[0]) * self.scale)
        h = round((self.box[3] - self.box[1]) * self.scale)
        return (h, w) if self.rotation in (90, 270) else (w, h)

    def pixels(self, rect: Rect) -> tuple[int, int, int, int]:
        """A rectangle in PDF points as (left, top, right, bottom) pixels of the image."""
        x0, y0, x1, y1 = rect
        bx0, by0, bx1, by1 = self.box
        s = self.scale
        left, right = (x0 - bx0) * s, (x1 - bx0) * s  # from the box's left edge
        top, bottom = (by1 - y1) * s, (by1 - y0) * s  # from its top edge
        w, h = (bx1 - bx0) * s, (by1 - by0) * s
        if self.rotation == 90:
            left, top, right, bottom = h - bottom, left, h - top, right
        elif self.rotation == 180:
            left, top, right, bottom = w - right, h - bottom, w - left, h - top
        elif self.rotation == 270:
            left, top, right, bottom = top, w - right, bottom, w - left
        return (int(left), int(top), -int(-right), -int(-bottom))


def scale_for(page_size: tuple[float, float], scale: float | None, width: int | None) -> float:
    """The scale a request asks for: an image ``width`` in pixels (which decides, when given),
    else ``scale``, within bounds; ImageError past them."""
    w, h = page_size
    if width is not None:
        if not MIN_WIDTH <= width <= MAX_WIDTH:
            raise ImageError(f"width must be from {MIN_WIDTH} to {MAX_WIDTH} pixels")
        scale = width / w
    elif scale is None:
        scale = DEFAULT_SCALE
    elif not MIN_SCALE <= scale <= MAX_SCALE:
        raise ImageError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}")
    if max(w, h) * scale > MAX_SIDE:
        raise ImageError(
            f"the image would be {round(w * scale)}x{round(h * scale)} pixels, more than "
            f"{MAX_SIDE} on a side: ask for a smaller scale or width"
        )
    return scale


def crop_box(box: Rect, marks: Sequence[Rect], pad: float = PAD) -> Rect:
    """The part of the page around the first marks (those that stand together, one line
    under the other: the quote's start, when it goes on in another column), a line's height
    more, within the page's box; the whole page when there are none."""
    if not marks:
        return box  # nothing to crop around: the whole page
    x0, y0, x1, y1 = marks[0]
    for m in marks[1:]:
        line = m[3] - m[1]
        beside = m[0] < x1 and m[2] > x0  # in the same column as what is taken
        below = y0 - 2.5 * line <= m[3] and m[1] <= y1 + line  # the next line, or this one
        if not (beside and below):
            break
        x0, y0, x1, y1 = min(x0, m[0]), min(y0, m[1]), max(x1, m[2]), max(y1, m[3])
    x0, y0 = max(box[0], x0 - pad), max(box[1], y0 - pad)
    x1, y1 = min(box[2], x1 + pad), min(box[3], y1 + pad)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return box  # the marks are off the page: nothing of it to crop around
    return (x0, y0, x1, y1)


def draw(pdfs: Pdfs, path, number: int, *, scale: float | None = None, width: int | None = None,
         marks: Sequence[Rect] = (), crop: bool = False):  # fmt: skip
    """Page ``number`` of ``path`` as an RGB array (height, width, 3), the marks highlighted,
    and its :class:`Geometry`."""
    import numpy as np

    if len(marks) > MAX_MARKS:
        raise ImageError(f"at most {MAX_MARKS} rectangles (mark) may be highlighted")
    with LOCK:
        page = pdfs.page(path, number)
        box = page.box
        rotation = page.pdf_page.get_rotation()
        shown = (box[2] - box[0], box[3] - box[1])  # as a viewer shows it: turned, if so
        scale = scale_for(shown[::-1] if rotation in (90, 270) else shown, scale, width)
        geometry = Geometry(crop_box(box, marks) if crop else box, scale, rotation)
        if min(geometry.size) < 2:  # a crop too small to draw at this scale: the whole page
            geometry, crop = Geometry(box, scale, rotation), False
        full = Geometry(box, scale, rotation)
        left, top, right, bottom = full.pixels(geometry.box) if crop else (0, 0, *full.size)
        bitmap = page.pdf_page.render(
            scale=scale, crop=_crop_margins(full, (left, top, right, bottom)), rev_byteorder=True
        )
        image = np.array(bitmap.to_numpy()[:, :, :3])  # a copy: the bitmap is pdfium's
        bitmap.close()
    highlight(image, [geometry.pixels(m) for m in marks])
    return image, geometry


def _crop_margins(full: Geometry, area: tuple[int, int, int, int]) -> tuple[float, ...]:
    """pypdfium2's crop (left, bottom, right, top, in points cut off each side) that leaves
    ``area``, given in pixels of the whole rendered page."""
    if area == (0, 0, *full.size):
        return (0, 0, 0, 0)
    w, h = full.size
    left, top, right, bottom = area
    s = full.scale
    return (left / s, (h - bottom) / s, (w - right) / s, top / s)


def highlight(image, boxes: Sequence[tuple[int, int, int, int]]) -> None:
    """Lay the highlighter's colour over the pixel boxes (left, top, right, bottom) of an RGB
    image, multiplying, once where boxes overlap."""
    import numpy as np

    if not boxes:
        return
    h, w = image.shape[:2]
    boxes = [(max(0, left), max(0, top), min(w, right), min(h, bottom))
             for left, top, right, bottom in boxes]  # fmt: skip
    boxes = [b for b in boxes if b[0] < b[2] and b[1] < b[3]]
    if not boxes:
        return
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)  # only the part they cover
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for left, top, right, bottom in boxes:
        mask[top - y0 : bottom - y0, left - x0 : right - x0] = True
    area = image[y0:y1, x0:x1]
    colour = np.array(HIGHLIGHT, dtype=np.uint16)
    area[mask] = (area[mask].astype(np.uint16) * colour // 255).astype(np.uint8)


def png(image, level: int = 1) -> bytes:
    """An RGB array (height, width, 3) as PNG bytes: 8 bits a channel, no filter, zlib at
    ``level`` (1: pages of text and white compress almost as well as at 9, several times
    faster)."""
    import numpy as np

    h, w = image.shape[:2]
    rows = np.empty((h, 1 + 3 * w), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None on every row
    rows[:, 1:] = np.ascontiguousarray(image[:, :, :3]).reshape(h, 3 * w)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + chunk(b"IEND", b"")
    )


def page_png(pdfs: Pdfs, record, number: int, **options) -> bytes:
    """Page ``number`` of the record's PDF as PNG bytes (see :func:`draw` for the options)."""
    image, _ = draw(pdfs, pdfs.path(record), number, **options)
    return png(image)
