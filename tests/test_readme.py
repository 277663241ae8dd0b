"""The README's console examples are what ddsearch prints: tools/readme_examples.py reruns
them over an index of the papers each names (real PDFs from ../shared, the real model)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import readme_examples  # noqa: E402

README = ROOT / "README.md"


def test_the_readme_has_generated_examples():
    examples = readme_examples.find_examples(README.read_text(encoding="utf-8"))
    assert examples
    commands = ("query ", "refs ", "cited-by ", "path ")
    assert all(ex.command.startswith(commands) and ex.output.strip() for ex in examples)


def test_a_marker_without_its_block_is_an_error():
    with pytest.raises(readme_examples.ExampleError, match="example marker"):
        readme_examples.find_examples("<!-- example: papers=raft -->\nno block here\n")


@pytest.fixture(scope="module")
def real_run(shared_papers, tmp_path_factory) -> str:
    """The README as a real run has it: each example's output printed anew."""
    work = tmp_path_factory.mktemp("readme")
    return readme_examples.regenerate(README.read_text(encoding="utf-8"), shared_papers, work)


@pytest.mark.integration
def test_readme_examples_match_a_real_run(real_run):
    diff = readme_examples.drift(README.read_text(encoding="utf-8"), real_run)
    assert not diff, f"the README's examples drifted; run python tools/readme_examples.py\n{diff}"


@pytest.mark.integration
def test_drift_is_caught(real_run):
    """An output edited by a little (the score) is told as drift, with its line."""
    text = README.read_text(encoding="utf-8")
    ex = readme_examples.find_examples(text)[0]
    score = re.search(r"score (\d)", ex.output)
    other = f"score {(int(score.group(1)) + 1) % 10}"
    edited = text[: ex.start] + ex.output.replace(score.group(0), other, 1) + text[ex.end :]
    assert edited != text
    diff = readme_examples.drift(edited, real_run)
    assert other in diff and diff.count("\n-") == 1


def test_the_set_up_is_the_two_make_commands_and_ci_runs_the_test_one():
    """The README's set-up block is `make ingest` and `make test`, verbatim; both are targets
    of the Makefile that make the environment first, and .ci/run runs the same test command."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Set up, run, test", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    assert block.splitlines() == ["make ingest", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("ingest", "test"):
        rule = re.search(rf"^{target}:(.*)$", makefile, re.M)
        assert rule and "$(VENV)/installed" in rule.group(1), target
    assert "tests/js/node_modules/installed" in re.search(r"^test:(.*)$", makefile, re.M)[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "\nmake test\n" in ci and "\nmake check\n" in ci
