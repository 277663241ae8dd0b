"""Settings decide: every knob is checked against its bounds when made, the environment is read
in one place, the CLI takes its defaults from the settings, and what shapes an index is in
each paper's fingerprint."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ddsearch.catalog import load_catalog
from ddsearch.cli import main
from ddsearch.config import (
    ENVIRONMENT,
    Checked,
    EvalSettings,
    FetchPolicy,
    Limits,
    PageSettings,
    QuerySettings,
    SearchSettings,
    ServeSettings,
    Settings,
    StoreSettings,
    fingerprint,
)
from ddsearch.errors import SettingsError, UserError
from ddsearch.ingest.pipeline import ingest
from ddsearch.models import Paper

CLASSES = [Settings, SearchSettings, QuerySettings, Limits, FetchPolicy, StoreSettings,
           ServeSettings, EvalSettings, PageSettings]  # fmt: skip
PACKAGE = Path(__file__).resolve().parents[1] / "ddsearch"


def test_every_settings_class_is_checked_and_every_number_has_bounds():
    assert {c for c in CLASSES} == {c for c in _subclasses(Checked)}
    for cls in CLASSES:
        for f in dataclasses.fields(cls):
            kind = str(f.type)
            if kind.startswith(("int", "float")) and "bool" not in kind:
                assert f.name in cls.bounds, f"{cls.__name__}.{f.name} has no bounds"


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: Settings(chunk_tokens=5), "Settings.chunk_tokens"),
        (lambda: Settings(chunk_tokens=64, overlap_tokens=64), "Settings.overlap_tokens"),
        (lambda: SearchSettings(dense_weight=1.5), "SearchSettings.dense_weight"),
        (lambda: SearchSettings(candidates=0), "SearchSettings.candidates"),
        (lambda: QuerySettings(max_k=5, k=10), "QuerySettings.k"),
        (lambda: ServeSettings(port=70000), "ServeSettings.port"),
        (lambda: Limits(max_pages=0), "Limits.max_pages"),
        (lambda: EvalSettings(quote_share=2), "EvalSettings.quote_share"),
        (lambda: StoreSettings(batch="many"), "StoreSettings.batch"),
    ],
)
def test_a_value_outside_its_bounds_is_refused_naming_the_field(make, field):
    with pytest.raises(SettingsError, match=re.escape(field)) as e:
        make()
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)


def test_the_cli_says_a_bad_setting_in_one_line(tmp_path):
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "serve", "--port", "70000"])
    assert result.exit_code == 1
    assert "Error: ServeSettings.port must be from 0 to 65535, not 70000" in result.output


def test_the_environment_is_read_in_one_place(monkeypatch, tmp_path):
    monkeypatch.setenv("DDSEARCH_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("DDSEARCH_CHROMA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("DDSEARCH_CHROMA_TOKEN", "secret-1")
    monkeypatch.setenv("DDSEARCH_TOKEN", "secret-2")
    s = Settings()
    assert (s.home, s.chroma_url, s.chroma_token, s.serve.token) == (
        tmp_path / "h", "http://127.0.0.1:9", "secret-1", "secret-2")  # fmt: skip
    assert "secret" not in repr(s)  # tokens stay out of logs and tracebacks
    readers = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
               if re.search(r"environ(?:\.get)?\(?\[?[\"']DDSEARCH_", p.read_text())}  # fmt: skip
    assert readers <= {"config.py"} and set(ENVIRONMENT) == {
        "DDSEARCH_HOME",
        "DDSEARCH_CHROMA_URL",
        "DDSEARCH_CHROMA_TOKEN",
        "DDSEARCH_TOKEN",
    }


def test_the_cli_shows_the_settings_defaults():
    runner = CliRunner()
    query = runner.invoke(main, ["query", "--help"]).output
    assert f"[default: {QuerySettings.k}]" in query and f"(1-{QuerySettings.max_k})" in query
    serve = " ".join(runner.invoke(main, ["serve", "--help"]).output.split())
    assert f"[default: {ServeSettings.port}]" in serve
    assert f"[default: {ServeSettings.max_pending}]" in serve
    ingest_help = " ".join(runner.invoke(main, ["ingest", "--help"]).output.split())
    assert "[default: int8]" in ingest_help and Settings.int8 is True


def test_the_fingerprint_holds_what_shapes_the_index_and_nothing_else(tmp_path):
    paper = Paper("p", "A Title")
    base = Settings(home=tmp_path)
    shaping = {f.name for f in dataclasses.fields(Settings) if f.metadata.get("shapes_index")}
    assert {"model", "chunk_tokens", "overlap_tokens", "section_tokens", "section_chars"} <= shaping
    changed = {"model": "other/model", "chunk_tokens": 150, "overlap_tokens": 10,
               "section_tokens": 12, "section_chars": 40}  # fmt: skip
    assert set(changed) == shaping
    before = fingerprint(paper, base, "onnx")
    for name, value in changed.items():
        assert fingerprint(paper, dataclasses.replace(base, **{name: value}), "onnx") != before
    others = {"int8": False, "prefetch": 0, "search": SearchSettings(named_weight=0.0),
              "serve": ServeSettings(port=1)}  # fmt: skip
    for name, value in others.items():
        assert fingerprint(paper, dataclasses.replace(base, **{name: value}), "onnx") == before
    assert fingerprint(paper, base, "torch") != before  # what computed the vectors
    assert fingerprint(dataclasses.replace(paper, title="Another"), base, "onnx") != before


def test_extraction_limits_reach_ingest(tmp_path, small_pdfs, embedder):
    settings = Settings(home=tmp_path / "home", limits=Limits(max_pages=2))
    report = ingest(settings, load_catalog(), [small_pdfs["lighthouse"]], embedder=embedder)
    (outcome,) = report.outcomes
    assert outcome.status == "failed" and "3 pages, more than the limit of 2" in outcome.reason


def test_the_bundled_model_is_recorded_under_one_name():
    from ddsearch.config import DEFAULT_MODEL

    assert Settings(model="all-MiniLM-L6-v2").model == DEFAULT_MODEL
    assert Settings(model="my/other-model").model == "my/other-model"
