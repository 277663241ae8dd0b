"""Run an ingest in a child process for the crash tests, optionally killing itself at a set point.

    python tests/_crashdriver.py cli ARGS...         ddsearch's CLI, with the stub embedder
    python tests/_crashdriver.py kill-in-txn N ARGS...    SIGKILL inside paper N's SQLite txn
    python tests/_crashdriver.py kill-after-commit N ARGS...  SIGKILL after paper N commits

The stub embedder uses the real tokenizer (chunking is real) but makes vectors from a hash of
the text, so a child starts in a second or two instead of loading torch; ``STUB_DELAY`` seconds
of sleep per paper give the tests time to act while a paper is in flight.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from ddsearch.index.embed import Embedder

STUB_DELAY = float(os.environ.get("STUB_DELAY", "0"))


class StubEmbedder(Embedder):
    dimension = 384

    backend = "stub"

    def encode(self, texts, batch_size: int = 32, on_batch=None):
        time.sleep(STUB_DELAY)
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out


def stub_home(tmp_path, seeds) -> Path:
    """TMP/home with one two-page made-up paper per seed (doc-0, doc-1, ... in TMP/src),
    ingested with the stub embedder."""
    from _faultpdfs import paper_pdf

    from ddsearch.catalog import Catalog
    from ddsearch.config import Settings
    from ddsearch.ingest.pipeline import ingest

    src = Path(tmp_path) / "src"
    src.mkdir()
    for i, seed in enumerate(seeds):
        (src / f"doc-{i}.pdf").write_bytes(paper_pdf(seed, pages=2, lines=10))
    home = Path(tmp_path) / "home"
    assert ingest(Settings(home=home), Catalog(None), [src], embedder=StubEmbedder()).ok
    return home


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    from ddsearch.index import store
    from ddsearch.ingest import pipeline

    pipeline.Embedder = StubEmbedder
    # Ctrl-C as a terminal sends it, even where pytest itself was started in the background
    # (a shell's background job inherits SIGINT ignored, and Python then keeps it ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mode = argv[0]
    if mode != "cli":
        target, args = int(argv[1]), argv[2:]
        calls = {"n": 0}
        if mode == "kill-in-txn":  # committed to Chroma, the cache's transaction open
            original = store.Store._delete_rows

            def hook(self, paper_id):
                calls["n"] += 1
                if calls["n"] == target:
                    _die()
                return original(self, paper_id)

            store.Store._delete_rows = hook
        elif mode == "kill-after-commit":  # committed to Chroma: old rows and the cache behind
            from ddsearch.index import chroma

            original_call = chroma.Chroma.call

            def hook_call(self, what, fn, *a, **kw):
                if what.startswith("delete the old rows of") and fn.__self__.name.startswith(
                    chroma.CHUNKS
                ):
                    calls["n"] += 1
                    if calls["n"] == target:
                        _die()
                return original_call(self, what, fn, *a, **kw)

            chroma.Chroma.call = hook_call
        else:
            raise SystemExit(f"unknown mode {mode}")
    else:
        args = argv[1:]
    from ddsearch.cli import main as cli

    cli(args, prog_name="ddsearch")


if __name__ == "__main__":
    main(sys.argv[1:])
