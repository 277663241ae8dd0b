"""Regenerate the README's console examples from a real run, or check them (--check).

Each generated example sits between marker comments that name the papers its index holds:

    <!-- example: papers=dynamo,gfs,raft,paxos-simple -->
    ```console
    $ ddsearch query "how does Dynamo handle temporary node failures?" -k 1
    (what that command prints)
    ```
    <!-- /example -->

The command after "$ " is kept as written; the lines below it are replaced with what ddsearch
prints for it, over a fresh data home into which ``ddsearch ingest --from`` put the named PDFs
of --papers (default: ../shared/papers), with the defaults a user gets. Terminal width: 100.

    python tools/readme_examples.py            # rewrite README.md
    python tools/readme_examples.py --check    # exit 1, with a diff, when README.md drifted
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHARED_PAPERS = ROOT.parent / "shared" / "papers"
COLUMNS = "100"

_EXAMPLE = re.compile(
    r"(?P<open><!-- example: papers=(?P<papers>[a-z0-9,-]+) -->\n```console\n)"
    r"\$ ddsearch (?P<command>[^\n]+)\n(?P<output>.*?)"
    r"(?P<close>```\n<!-- /example -->)",
    re.S,
)


class ExampleError(Exception):
    """A README example that cannot be run as written."""


@dataclass(frozen=True)
class Example:
    papers: tuple[str, ...]
    command: str  # after "ddsearch "
    output: str
    start: int  # where the output stands in the README
    end: int


def find_examples(text: str) -> list[Example]:
    """The generated examples of a README, in order."""
    found = [
        Example(tuple(m["papers"].split(",")), m["command"], m["output"], m.start("output"),
                m.end("output"))
        for m in _EXAMPLE.finditer(text)
    ]  # fmt: skip
    if len(found) != text.count("<!-- example: "):
        raise ExampleError("an example marker without a '$ ddsearch' block and its closing marker")
    return found


def _invoke(args: list[str]) -> str:
    """What ``ddsearch ARGS`` prints on stdout; a failed command is an ExampleError."""
    from click.testing import CliRunner

    from ddsearch.cli import main

    result = CliRunner(env={"COLUMNS": COLUMNS}).invoke(main, args)
    if result.exit_code != 0:
        raise ExampleError(f"ddsearch {shlex.join(args)} exited {result.exit_code}: "
                           f"{result.output.strip()[-500:]}")  # fmt: skip
    return result.stdout


def regenerate(text: str, papers_dir: Path, work: Path) -> str:
    """The README with every example's output replaced by a real run's."""
    out, last = [], 0
    homes: dict[tuple[str, ...], Path] = {}
    for ex in find_examples(text):
        home = homes.get(ex.papers)
        if home is None:
            home = homes[ex.papers] = work / f"home-{len(homes)}"
            missing = [p for p in ex.papers if not (papers_dir / f"{p}.pdf").is_file()]
            if missing:
                raise ExampleError(f"no PDF for {', '.join(missing)} in {papers_dir}")
            sources = [a for p in ex.papers for a in ("--from", str(papers_dir / f"{p}.pdf"))]
            _invoke(["--home", str(home), "ingest", "--no-progress", *sources])
        output = _invoke(["--home", str(home), *shlex.split(ex.command)])
        out += [text[last : ex.start], output.rstrip("\n") + "\n"]
        last = ex.end
    return "".join(out) + text[last:]


def drift(old: str, new: str) -> str:
    """A unified diff of README.md as it is and as a real run would have it ('' when equal)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), "README.md", "real run"
    )
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=Path, default=SHARED_PAPERS, help="folder of PDFs")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--check", action="store_true", help="exit 1 when the README drifted")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # this checkout's ddsearch, whatever is installed
    text = args.readme.read_text(encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory(prefix="readme-examples-") as work:
            fresh = regenerate(text, args.papers, Path(work))
    except ExampleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    diff = drift(text, fresh)
    if args.check:
        sys.stdout.write(diff or "README examples match a real run\n")
        return 1 if diff else 0
    if diff:
        args.readme.write_text(fresh, encoding="utf-8")
    print(f"{args.readme}: {len(find_examples(text))} example(s), "
          f"{'rewritten' if diff else 'unchanged'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
