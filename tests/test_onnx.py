"""The bundled model's ONNX export: it must serve (no silent fall back to torch) and agree."""

from __future__ import annotations

import numpy as np

from ddsearch.index.embed import Embedder
from ddsearch.index.onnx_model import _PROBES


def test_the_export_serves_and_matches_the_torch_model(tmp_path, embedder):
    onnx = Embedder(stamp_dir=tmp_path, backend="onnx")
    assert onnx.backend == "onnx"
    want = Embedder(backend="torch").encode(_PROBES)
    got = onnx.encode(_PROBES)
    assert got.shape == want.shape
    assert np.min(np.sum(got * want, axis=1)) > 0.999


def test_late_chunked_sentence_vectors_pool_the_passage_tokens(tmp_path):
    onnx = Embedder(stamp_dir=tmp_path, backend="onnx", int8=True)
    texts = [
        "Paxos reaches consensus when a majority agrees. Leases bound clock skew.",
        "A short one.",
    ]
    spans = [[(0, 47), (48, 72)], [(0, 12)]]
    vectors, sentences = onnx.encode_passages(texts, spans)
    assert vectors.shape == (2, 384) and [s.shape for s in sentences] == [(2, 384), (1, 384)]
    assert np.allclose(np.linalg.norm(sentences[0], axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, onnx.encode(texts), atol=1e-5)  # the same pass as passages
    assert float(sentences[0][0] @ sentences[0][1]) < 0.99  # each span pools its own tokens


def test_a_cold_start_maps_the_pre_optimised_graph_and_it_agrees(tmp_path):
    first = Embedder(stamp_dir=tmp_path, backend="onnx")
    want = first.encode(_PROBES)
    # one graph is kept: the pre-optimised one (the export it was made from is gone)
    [folder] = (tmp_path / "models").iterdir()
    fast = folder / "model.onnx"
    assert fast.is_file() and (fast.parent / "model.weights").stat().st_size > 50e6
    assert fast.stat().st_size < 1e6  # the weights are mapped from their own file, not parsed
    assert first.onnx.session._sess_options.graph_optimization_level.name == "ORT_DISABLE_ALL"
    assert not list((tmp_path / "models").glob("*.part-*"))  # built aside, renamed into place
    again = Embedder(stamp_dir=tmp_path, backend="onnx").encode(_PROBES)
    assert np.allclose(again, want, atol=1e-6)
    model = first.model.encode(_PROBES, normalize_embeddings=True, convert_to_numpy=True)
    assert np.min(np.sum(model * want, axis=1)) > 0.999  # the graph is the model
