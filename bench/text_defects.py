"""Count the sentences of the shared papers that carry each text defect, read against the PDF.

    python bench/text_defects.py [--papers ../shared/papers] [--code DIR] [--examples N]
    python bench/text_defects.py --time-against DIR [--rounds 3]

The first form runs a checkout's own extract -> clean -> sentences (``--code DIR``: that
checkout's ddsearch, default this one) on every paper and counts, per defect class, the
sentences that carry one. Where a defect is seen is read from the PDF here, with pdfium and
rules of this script's own, not from the code under test:

- glued: two words pdfium read without a space although the page sets them apart (a gap
  between their glyphs at least half the page's typical word gap, on a page whose glyphs
  inside words sit close), and the sentence holds them as one word ("algorithmis", "isthe").
- hyphen-glued: a compound broken at a line end ("high-" / "priority") read as one word
  ("highpriority") where the paper writes it with its hyphen elsewhere and never without.
- dropped: a glyph pdfium gives no Unicode for (a control code, or no character at all) or
  a symbol drawn as a picture inside a line (PBFT's "3f+1"), and the sentence holds the words
  on either side of it with nothing between ("how bad does get?", "3 1 is the").
- figure text: a run of two or more short label lines (no sentence end, six words at most)
  next to a "Figure N" caption on the cleaned page, found inside a sentence that is not a
  caption ("... chunk placement Legend: Data messages Control messages ...").
- cut heading: a section heading whose title goes on over the next line (bold like it, or a
  short lowercase run), and the section's name lacks that part ("4.7 Handling permanent
  failures: Replica" + "synchronization"); counted as headings, and as the sentences filed
  under them.

The second form times extract+clean of every paper (CPU seconds) with this checkout and with
DIR in alternating child processes, and prints the medians per paper and the ratio.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["glued", "hyphen-glued", "dropped", "figure text", "cut heading"]
_LETTERS = re.compile(r"[^\W\d_]+")


# --- what the PDF shows (pdfium, read here) ---------------------------------------------------


def _page_chars(textpage, raw) -> tuple[list[str], list[tuple[float, float, float, float]]]:
    """Every char's text (unicode 0 as NUL) and loose box, by pdfium char index."""
    rect = raw.FS_RECTF()
    chars, boxes = [], []
    for i in range(raw.FPDFText_CountChars(textpage)):
        chars.append(chr(raw.FPDFText_GetUnicode(textpage, i)))
        raw.FPDFText_GetLooseCharBox(textpage, i, rect)
        boxes.append((rect.left, rect.right, rect.bottom, rect.top))
    return chars, boxes


def _same_line(a, b) -> bool:
    height = max(a[3] - a[2], b[3] - b[2], 1e-6)
    return abs(a[2] - b[2]) < 0.25 * height


def _run(chars: list[str], i: int, step: int, ok) -> str:
    out = []
    while 0 <= i < len(chars) and ok(chars[i]):
        out.append(chars[i])
        i += step
    return "".join(out[::-1] if step < 0 else out)


def _unmapped(ch: str) -> bool:
    o = ord(ch)
    return o < 0x20 and ch not in "\r\n" or 0x7F <= o <= 0x9F


def _word(ch: str) -> bool:
    return ch.isalnum() and not _unmapped(ch)


def _glue_sites(chars, boxes) -> list[tuple[str, str]]:
    inner, spaces = [], []
    pairs = []
    for i in range(1, len(chars) - 1):
        a, b = chars[i - 1], chars[i]
        nxt = i + 1 if b == " " else i
        if a.isspace() or chars[nxt].isspace() or not _same_line(boxes[i - 1], boxes[nxt]):
            continue
        height = boxes[nxt][3] - boxes[nxt][2]
        if height <= 0:
            continue
        if b == " ":
            spaces.append((boxes[i + 1][0] - boxes[i - 1][1]) / height)
        else:
            gap = (boxes[i][0] - boxes[i - 1][1]) / height
            inner.append(gap)
            if a.isalpha() and b.isalpha():
                pairs.append((gap, i))
    if len(spaces) < 20 or len(inner) < 100:
        return []
    inner.sort()
    word_gap = statistics.median(spaces)
    if inner[int(0.99 * len(inner))] > 0.25 * word_gap:
        return []  # glyph boxes too loose to tell a word gap from a letter's
    sites = []
    for gap, i in pairs:
        if gap >= 0.5 * word_gap:
            left = _run(chars, i - 1, -1, str.isalpha)
            right = _run(chars, i, 1, str.isalpha)
            if len(left) >= 2 and len(right) >= 2:
                sites.append((left, right))
    return sites


def _graphics(page, raw) -> list[tuple[float, float, float, float]]:
    """Bounds of the page's small pictures and paths (glyph-sized)."""
    import ctypes

    out = []
    x0, y0, x1, y1 = (ctypes.c_float() for _ in range(4))
    for i in range(raw.FPDFPage_CountObjects(page)):
        obj = raw.FPDFPage_GetObject(page, i)
        if raw.FPDFPageObj_GetType(obj) not in (raw.FPDF_PAGEOBJ_IMAGE, raw.FPDF_PAGEOBJ_PATH):
            continue
        raw.FPDFPageObj_GetBounds(obj, *(ctypes.byref(v) for v in (x0, y0, x1, y1)))
        if 2 < x1.value - x0.value < 20 and 2 < y1.value - y0.value < 14:  # no rule or tick
            out.append((x0.value, x1.value, y0.value, y1.value))
    return out


def _drop_sites(chars, boxes, graphics) -> list[tuple[str, str]]:
    sites = []
    for i, ch in enumerate(chars):
        if not (_unmapped(ch) or ch == "\0"):
            continue
        if i and _unmapped(chars[i - 1]) or chars[i - 1] == "\0":
            continue  # one site per run
        j = i
        while j < len(chars) and (_unmapped(chars[j]) or chars[j] in "\0 "):
            j += 1
        a = i - 1
        while a >= 0 and chars[a] == " ":
            a -= 1
        if a < 0 or j >= len(chars) or not (_word(chars[a]) and _word(chars[j])):
            continue
        if not _same_line(boxes[a], boxes[j]):
            continue
        sites.append((_run(chars, a, -1, _word), _run(chars, j, 1, _word)))
    for gl, gr, gb, gt in graphics:
        left = right = None
        for i, box in enumerate(boxes):
            height = box[3] - box[2]
            if not _word(chars[i]) or gb < box[2] - height / 2 or gt > box[3] + height / 2:
                continue  # a glyph-sized picture stands inside the line's height
            if gl - 1.5 * height <= box[1] <= gl + 1 and (left is None or box[1] > boxes[left][1]):
                left = i
            if gr - 1 <= box[0] <= gr + 1.5 * height and (
                right is None or box[0] < boxes[right][0]
            ):
                right = i
        if left is not None and right is not None and _same_line(boxes[left], boxes[right]):
            sites.append((_run(chars, left, -1, _word), _run(chars, right, 1, _word)))
    return sites


def read_pdf(path: Path, heading) -> dict:
    """Per page (1-based): glue sites and dropped-glyph sites; the paper's hyphen sites."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    doc = pdfium.PdfDocument(str(path))
    glued, dropped, cuts, breaks, texts = {}, {}, [], [], []
    try:
        for n in range(len(doc)):
            page = doc[n]
            textpage = page.get_textpage()
            chars, boxes = _page_chars(textpage, raw)
            glued[n + 1] = _glue_sites(chars, boxes)
            dropped[n + 1] = _drop_sites(chars, boxes, _graphics(page, raw))
            text = textpage.get_text_range()
            texts.append(text)
            if len(text) == len(chars):
                cuts += _cut_headings(text.replace("\r", " "), textpage, raw, heading)
            for m in re.finditer(r"([^\W\d_]+)[\ufffe\u00ad](?:\r?\n)?([^\W\d_]+)", text):
                breaks.append((n + 1, m.group(1), m.group(2)))
            textpage.close()
            page.close()
    finally:
        doc.close()
    whole = "\n".join(re.sub(r"[\ufffe\u00ad]\s*", "", t) for t in texts)
    hyphen = {}
    for page, head, tail in breaks:
        hyphenated = re.search(rf"\b{head}-{tail}\b", whole, re.I)
        rest = re.sub(rf"\b{head}{tail}\b", "", whole, count=1)
        joined = re.search(rf"\b{head}{tail}\b", rest, re.I)
        if hyphenated and not joined:
            hyphen.setdefault(page, []).append((head, tail))
    return {"glued": glued, "dropped": dropped, "hyphen": hyphen, "cuts": cuts}


# --- what the code under test made of it ------------------------------------------------------


def _is_label(line: str, width: float) -> bool:
    s = line.strip().lstrip("\ue000")
    return (
        0 < len(s) < 0.7 * width
        and not s.endswith((".", "?", "!", ";", ","))
        and len(s.split()) <= 6
        and sum(c.isalpha() for c in s) >= 3
    )


def _figure_runs(lines: list[str], heading) -> list[list[str]]:
    """Runs of 2+ label lines right above a 'Figure N' caption or right after it."""
    widths = sorted(len(x) for x in lines if len(x.split()) >= 4)
    width = widths[len(widths) // 2] if widths else 60
    caption = re.compile(r"^\W?(?:Figure|Fig\.)\s*\d+")
    runs, run = [], []
    for i, line in enumerate(lines + [""]):
        if _is_label(line, width) and not heading(line) and not caption.match(line):
            run.append(i)
            continue
        if len(run) >= 2:  # right above the caption, or after its (up to four) lines
            near = [run[-1] + 1, *range(max(0, run[0] - 4), run[0])]
            if any(k < len(lines) and caption.match(lines[k].lstrip("\ue000")) for k in near):
                runs.append([lines[k].lstrip("\ue000").strip() for k in run])
        run = []
    return runs


def _cut_headings(text: str, textpage, raw, heading) -> list[tuple[str, str]]:
    """(a heading as read from its line, the rest of its title on the next line): the next
    line is short, not a heading, and set in the same face and size (bold both, or starting
    lowercase), so it goes on with the title ("4.7 Handling permanent failures: Replica" +
    "synchronization"), unlike a run-in paragraph title, which goes on with text."""
    rect = raw.FS_RECTF()

    def face(i: int) -> tuple[float, bool]:
        raw.FPDFText_GetLooseCharBox(textpage, i, rect)
        return round(rect.top - rect.bottom, 1), raw.FPDFText_GetFontWeight(textpage, i) >= 600

    starts, at = [], 0
    for line in text.split("\n"):
        starts.append((at, line.strip()))
        at += len(line) + 1
    out = []
    for (i, line), (j, nxt) in zip(starts, starts[1:]):
        title = heading(line)
        if not title or not nxt or heading(nxt) or len(nxt.split()) > 6 or nxt.endswith(":"):
            continue
        (size, bold), (size2, bold2) = face(i + len(text[i:]) - len(text[i:].lstrip())), face(j)
        if size != size2 or bold != bold2 or not (bold or nxt[0].islower()):
            continue
        out.append((title, nxt))
    return out


def count(papers: Path, examples: int) -> dict:
    from ddsearch.config import Limits
    from ddsearch.ingest.chunk import _sentences, heading
    from ddsearch.ingest.clean import clean_pages
    from ddsearch.ingest.extract import extract

    limits = Limits(isolate=False)
    totals: Counter[str] = Counter()
    per_paper: dict[str, Counter] = defaultdict(Counter)
    shown: dict[str, list] = defaultdict(list)
    cut_sections: Counter[str] = Counter()
    sentence_total = 0
    for pdf in sorted(papers.glob("*.pdf")):
        pid = pdf.stem
        seen = read_pdf(pdf, heading)
        pages = clean_pages(extract(pdf, limits).pages, heading)
        sentences = _sentences(pages)
        sentence_total += len(sentences)
        runs = {p.number: _figure_runs(p.text.split("\n"), heading) for p in pages}
        cuts = seen["cuts"]
        sections = {s.section for s in sentences}
        for title, rest in cuts:
            if not any(f"{title} {rest}".rstrip(".") in (sec or "") for sec in sections):
                cut_sections[pid] += 1
                if len(shown["cut heading"]) < examples:
                    shown["cut heading"].append(f"{pid}: {title!r} + {rest!r}")
        cut_titles = {t for t, r in cuts} - {t for t, r in cuts if f"{t} {r}" in sections}
        for s in sentences:
            text, found = s.text, set()
            for page in s.pages:
                for left, right in seen["glued"].get(page, []):
                    if re.search(rf"(?<![^\W\d_]){re.escape(left + right)}(?![^\W\d_])", text):
                        found.add(("glued", left + right))
                for head, tail in seen["hyphen"].get(page, []):
                    if re.search(rf"\b{re.escape(head + tail)}\b", text):
                        found.add(("hyphen-glued", head + tail))
                for left, right in seen["dropped"].get(page, []):
                    pat = rf"(?<!\w){re.escape(left)}\s*{re.escape(right)}(?!\w)"
                    if re.search(pat, text):
                        found.add(("dropped", f"{left} _ {right}"))
                if not s.caption:
                    for run in runs.get(page, []):
                        for a, b in zip(run, run[1:]):
                            if f"{a} {b}" in text:
                                found.add(("figure text", f"{a} | {b}"))
            if s.section in cut_titles:
                found.add(("cut heading", s.section))
            for kind in {k for k, _ in found}:
                totals[kind] += 1
                per_paper[pid][kind] += 1
            for kind, what in sorted(found):
                if kind != "cut heading" and len(shown[kind]) < examples:
                    shown[kind].append(f"{pid}: {what!r} in {text[:140]!r}")
    return {
        "sentences": sentence_total,
        "totals": {k: totals[k] for k in CLASSES},
        "cut_headings": sum(cut_sections.values()),
        "papers": {p: dict(c) for p, c in sorted(per_paper.items())},
        "examples": dict(shown),
    }


# --- timing -------------------------------------------------------------------------------------

_TIME_ONE = """
import json, sys, time
from pathlib import Path
from ddsearch.config import Limits
from ddsearch.ingest.chunk import heading
from ddsearch.ingest.clean import clean_pages
from ddsearch.ingest.extract import extract
out = {}
for pdf in sorted(Path(sys.argv[1]).glob("*.pdf")):
    started = time.process_time()  # CPU seconds: other work on a shared machine adds none
    clean_pages(extract(pdf, Limits(isolate=False)).pages, heading)
    out[pdf.stem] = time.process_time() - started
print(json.dumps(out))
"""


def time_against(papers: Path, baseline: Path, rounds: int) -> dict:
    """extract+clean seconds per paper, this checkout and ``baseline`` taking turns."""
    runs: dict[str, list[dict]] = {"this": [], "baseline": []}
    for _ in range(rounds):
        for name, where in (("baseline", baseline), ("this", ROOT)):
            proc = subprocess.run(
                [sys.executable, "-c", _TIME_ONE, str(papers)],
                cwd=where, capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs[name].append(json.loads(proc.stdout))
    papers_ = sorted(runs["this"][0])
    med = {n: {p: statistics.median(r[p] for r in rs) for p in papers_} for n, rs in runs.items()}
    total = {n: sum(m.values()) for n, m in med.items()}
    ratios = sorted(med["this"][p] / med["baseline"][p] for p in papers_)
    return {
        "rounds": rounds,
        "total_s": total,
        "ratio_total": total["this"] / total["baseline"],
        "ratio_per_paper_median": statistics.median(ratios),
        "slowest": sorted(papers_, key=lambda p: -med["this"][p] / med["baseline"][p])[:5],
        "per_paper_s": med,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--papers", type=Path, default=ROOT.parent / "shared" / "papers")
    ap.add_argument("--code", type=Path, default=ROOT, help="the checkout whose ddsearch to count")
    ap.add_argument("--examples", type=int, default=0, help="print this many examples per class")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--time-against", type=Path, help="time extract+clean against this checkout")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.time_against:
        result = time_against(args.papers.resolve(), args.time_against.resolve(), args.rounds)
        t = result["total_s"]
        print(f"extract+clean, {len(result['per_paper_s']['this'])} papers, median of "
              f"{args.rounds} alternating rounds: baseline {t['baseline']:.2f}s, this "
              f"{t['this']:.2f}s, ratio {result['ratio_total']:.3f} (per paper, median "
              f"{result['ratio_per_paper_median']:.3f}); most grown: {', '.join(result['slowest'])}")  # fmt: skip
    else:
        sys.path.insert(0, str(args.code.resolve()))
        result = count(args.papers, args.examples)
        print(f"{result['sentences']} sentences in {len(list(args.papers.glob('*.pdf')))} papers")
        for kind in CLASSES:
            print(f"  {kind:13} {result['totals'][kind]:5d} sentences")
        print(f"  {'':13} {result['cut_headings']:5d} headings cut")
        for kind, lines in result["examples"].items():
            print(f"\n{kind}:")
            for line in lines:
                print("  " + line)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
