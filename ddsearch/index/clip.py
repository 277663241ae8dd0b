"""Text a PDF draws and then clips away (a figure's older version under the new one, a page
drawn twice and one copy cut off): no reader sees it, so it is neither indexed nor highlighted.

A character counts as hidden when its centre lies outside the box of one of its text object's
clip paths (pdfium's own coordinates for both, page space).
"""

from __future__ import annotations

import ctypes

Box = tuple[float, float, float, float]  # left, bottom, right, top
SLACK = 1.0  # points: a glyph on a clip's very edge still shows


def clip_boxes(obj) -> list[Box]:
    """The boxes of a page object's clip paths (raw FPDF_PAGEOBJECT), each widened by SLACK;
    [] when it has no clip path."""
    import pypdfium2.raw as raw

    clip = raw.FPDFPageObj_GetClipPath(obj) if obj else None
    if not clip:
        return []
    boxes = []
    x, y = ctypes.c_float(), ctypes.c_float()
    for path in range(raw.FPDFClipPath_CountPaths(clip)):
        xs, ys = [], []
        for k in range(raw.FPDFClipPath_CountPathSegments(clip, path)):
            if raw.FPDFPathSegment_GetPoint(raw.FPDFClipPath_GetPathSegment(clip, path, k), x, y):
                xs.append(x.value)
                ys.append(y.value)
        if xs:
            boxes.append((min(xs) - SLACK, min(ys) - SLACK, max(xs) + SLACK, max(ys) + SLACK))
    return boxes


def outside(boxes: list[Box], x: float, y: float) -> bool:
    """Whether the point lies outside one of the boxes (so its clip shows nothing there)."""
    return any(not (x0 <= x <= x1 and y0 <= y <= y1) for x0, y0, x1, y1 in boxes)


def char_hidden(textpage, index: int, boxes: list[Box] | None = None) -> bool:
    """Whether the character at pdfium ``index`` of a PdfTextPage is clipped away (``boxes``:
    its text object's clip boxes, when already read)."""
    import pypdfium2.raw as raw

    if boxes is None:
        boxes = clip_boxes(raw.FPDFText_GetTextObject(textpage, index))
    if not boxes:
        return False
    x0, y0, x1, y1 = textpage.get_charbox(index)
    return outside(boxes, (x0 + x1) / 2, (y0 + y1) / 2)


def hidden_chars(page, textpage) -> list[int]:
    """pdfium indexes of a page's clipped-away characters (a PdfPage and its PdfTextPage).
    A page none of whose text objects leaves its clip costs a walk over its text objects;
    on one that has such an object every clipped character is looked at (an object inside a
    form may state its bounds in the form's own space, so the walk may miss it)."""
    import pypdfium2.raw as raw

    clips: dict[int | None, list[Box]] = {}
    leaving = False
    for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_TEXT], max_depth=15):
        boxes = clip_boxes(obj.raw)
        clips[ctypes.cast(obj.raw, ctypes.c_void_p).value] = boxes
        if boxes and not leaving:
            left, bottom, right, top = obj.get_bounds()
            leaving = outside(boxes, left, bottom) or outside(boxes, right, top)
    if not leaving:
        return []
    out = []
    for i in range(textpage.count_chars()):
        obj = raw.FPDFText_GetTextObject(textpage, i)
        if not obj:
            continue
        owner = ctypes.cast(obj, ctypes.c_void_p).value
        if owner not in clips:  # an object the walk did not reach (inside a form)
            clips[owner] = clip_boxes(obj)
        if char_hidden(textpage, i, clips[owner]):
            out.append(i)
    return out
