"""ONNX export: the graph takes raw pixels like a bundle and gives the trainer's logits."""

import numpy as np
import pytest

from sparsecl import reference

onnx = pytest.importorskip("onnx", reason="make test installs the onnx extra")
pytest.importorskip("onnxruntime", reason="make test installs the onnx extra")

from sparsecl.codegen import onnx_export  # noqa: E402


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_exported_model_matches_the_reference(small_model, small_cnn_model, tmp_path, which):
    model = small_model if which == "mlp" else small_cnn_model
    path = tmp_path / "m.onnx"
    onnx_export.export(model, path)
    onnx.checker.check_model(str(path))
    raw = np.random.default_rng(9).integers(0, 17, (33, 8, 8)).astype(np.float32)
    got = onnx_export.run(str(path), raw)
    want = reference.logits(model, raw)
    assert got.shape == (33, 10)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.array_equal(got.argmax(1), want.argmax(1))
