"""A sentence-transformers model as an ONNX graph: queries without torch, ingest at twice the speed.

The graph (transformer + pooling + L2 normalisation) is exported once with torch, checked
against the torch model on probe sentences, and stored under the data home. After that,
encoding needs only onnxruntime and tokenizers, which load in a fraction of torch's time.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

_PROBES = [
    "Paxos reaches consensus when a majority of acceptors agree.",
    "GFS uses a single master that keeps all file system metadata in memory.",
    "Dynamo",
    "Why does Bigtable compress crawled pages ten to one? " * 8,
]
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
MIN_COSINE = 0.999  # the export must match the torch model this closely on every probe


class OnnxUnsupported(Exception):
    """This model cannot be served by the ONNX path; the torch path is used instead."""


def pooling_mode(model_dir: Path) -> str:
    """'mean' or 'cls' for a plain transformer + pooling (+ normalize) model; else unsupported."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
    except (OSError, ValueError) as e:
        raise OnnxUnsupported(f"no readable modules.json in {model_dir}") from e
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxUnsupported(f"modules {kinds} are not transformer + pooling")
    cfg = json.loads((model_dir / modules[1]["path"] / "config.json").read_text())
    modes = [k for k, v in cfg.items() if k.startswith("pooling_mode") and v]
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    raise OnnxUnsupported(f"pooling {modes} is not supported")


def export(st, model_dir: Path, target: Path) -> None:
    """Export the loaded SentenceTransformer ``st`` to ``target`` (atomically), checked."""
    import warnings

    import torch

    mode = pooling_mode(model_dir)
    transformer = st[0].auto_model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.transformer(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            if mode == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1), hidden

    dummy = torch.ones(2, 16, dtype=torch.long)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in _INPUTS}
    dynamic["embedding"] = {0: "batch"}
    dynamic["tokens"] = {0: "batch", 1: "sequence"}

    def build(tmp: str) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter; the probes are the check
            torch.onnx.export(
                Encoder(), (dummy, dummy, torch.zeros_like(dummy)), tmp,
                input_names=list(_INPUTS), output_names=["embedding", "tokens"],
                dynamic_axes=dynamic, opset_version=17, dynamo=False,
            )  # fmt: skip

    want = st.encode(_PROBES, normalize_embeddings=True, convert_to_numpy=True)
    _publish(target, build, want, model_dir, st.max_seq_length, MIN_COSINE, "exported graph")


def _publish(target: Path, build, want, model_dir: Path, max_seq_length: int,
             minimum: float, what: str) -> None:  # fmt: skip
    """Build a graph into a temporary file, check it on the probes, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".onnx.part")
    os.close(fd)
    try:
        build(tmp)
        got = OnnxEncoder(Path(tmp), model_dir, max_seq_length).encode(_PROBES)
        worst = float(np.min(np.sum(got * want, axis=1)))
        if worst < minimum:
            raise OnnxUnsupported(f"{what} drifts from the model (cosine {worst:.4f})")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


MIN_COSINE_INT8 = 0.98  # int8 weights drift more; measured mean 0.995, min 0.988 on 300 chunks


def quantize(fp32: Path, model_dir: Path, target: Path, max_seq_length: int) -> None:
    """Dynamic int8 quantization of the MatMul weights (per channel), checked against fp32."""
    import logging

    from onnxruntime.quantization import quantize_dynamic

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its advice
    want = OnnxEncoder(fp32, model_dir, max_seq_length).encode(_PROBES)

    def build(tmp: str) -> None:
        quantize_dynamic(str(fp32), tmp, per_channel=True, op_types_to_quantize=["MatMul"])

    _publish(target, build, want, model_dir, max_seq_length, MIN_COSINE_INT8, "int8 graph")


def optimized_path(graph: Path) -> Path:
    """Where ``graph``'s pre-optimised copy for this onnxruntime version lives."""
    import onnxruntime as ort

    return graph.with_name(f"{graph.stem}.ort{ort.__version__}") / "model.onnx"


def optimize(graph: Path, model_dir: Path, max_seq_length: int,
             target: Path | None = None) -> Path:  # fmt: skip
    """Save ``graph`` with onnxruntime's portable (extended) rewrites applied and its weights in
    a file of their own, which a session maps instead of parsing: a cold query's session starts
    in about a third of the time. Checked against ``graph`` before it is renamed into place."""
    import shutil

    import onnxruntime as ort

    target = target or optimized_path(graph)
    want = OnnxEncoder(graph, model_dir, max_seq_length).encode(_PROBES)
    folder = target.parent.parent
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f"{target.parent.name}.part-"))
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(tmp / target.name)
        options.log_severity_level = 3
        for key, value in (
            ("session.optimized_model_external_initializers_file_name", "model.weights"),
            ("session.optimized_model_external_initializers_min_size_in_bytes", "1024"),
        ):
            options.add_session_config_entry(key, value)
        ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        got = OnnxEncoder(tmp / target.name, model_dir, max_seq_length, optimized=True)
        worst = float(np.min(np.sum(got.encode(_PROBES) * want, axis=1)))
        if worst < MIN_COSINE:
            raise OnnxUnsupported(f"optimised graph drifts from the model (cosine {worst:.4f})")
        os.chmod(tmp, 0o755)
        try:
            os.replace(tmp, target.parent)
        except OSError:
            if not target.is_file():  # else another process published the same graph first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


PAD_SLACK = 1.25  # a batch's longest text is at most this much longer than its shortest


def _batches(lengths: list[int], batch_size: int) -> list[np.ndarray]:
    """Indexes grouped by similar length, so padding wastes little work."""
    order = np.argsort(lengths, kind="stable")
    batches: list[np.ndarray] = []
    current: list[int] = []
    for i in order:
        if current and (
            len(current) == batch_size or lengths[i] > PAD_SLACK * lengths[current[0]] + 8
        ):
            batches.append(np.array(current))
            current = []
        current.append(i)
    if current:
        batches.append(np.array(current))
    return batches


class OnnxEncoder:
    """Encode texts with onnxruntime: L2-normalised float32 rows, batches sorted by length."""

    def __init__(
        self,
        path: Path,
        model_dir: Path,
        max_seq_length: int,
        threads: int | None = None,
        optimized: bool = False,  # the graph was saved by optimize(): skip the rewrites
    ):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            if optimized
            else ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        options.log_severity_level = 3
        # no busy-waiting between ops: on a shared 2-core machine spinning threads steal the CPU
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_seq_length)
        self._inputs = {i.name for i in self.session.get_inputs()}
        self.dimension = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts, batch_size: int = 32, on_batch=None) -> np.ndarray:
        return self.encode_spans(texts, None, batch_size, on_batch)[0]

    def encode_spans(self, texts, spans=None, batch_size: int = 32, on_batch=None):
        """(one vector per text, and per text one vector per (start, end) character span).

        A span's vector pools the text's own token states over the span's tokens ("late
        chunking"): each sentence is seen in its passage's context, at no extra model cost."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        pooled = [np.zeros((len(s), self.dimension), dtype=np.float32) for s in spans or ()]
        if not texts:
            return out, pooled
        encodings = self.tokenizer.encode_batch(texts)
        outputs = ["embedding", "tokens"] if spans is not None else ["embedding"]
        lengths = [len(e.ids) for e in encodings]
        for rows in _batches(lengths, batch_size):
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            got = self.session.run(outputs, {k: v for k, v in feed.items() if k in self._inputs})
            out[rows] = got[0]
            for r, i in enumerate(rows) if spans is not None else ():
                pooled[i] = pool_spans(got[1][r], encodings[i].offsets, spans[i])
            if on_batch:
                on_batch(len(rows))
        return out, pooled


def pool_spans(states: np.ndarray, offsets, spans) -> np.ndarray:
    """L2-normalised mean of the token states whose characters fall in each span."""
    starts = np.array([a for a, b in offsets])
    ends = np.array([b for a, b in offsets])
    real = ends > starts  # special tokens ([CLS], [SEP], padding) cover no characters
    out = np.zeros((len(spans), states.shape[-1]), dtype=np.float32)
    for j, (a, b) in enumerate(spans):
        inside = real & (starts < b) & (ends > a)
        if inside.any():
            v = states[: len(offsets)][inside].mean(axis=0)
            out[j] = v / (np.linalg.norm(v) or 1.0)
    return out
