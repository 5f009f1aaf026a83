"""The backward pass of a whole network on OpenCL against central finite differences in float64."""

import numpy as np
import pyopencl.array as cla
import pytest

from sparsecl.geometry import Dense
from sparsecl.modelfile import to_csr
from sparsecl.trainer.network import Network

from conftest import needs_opencl

pytestmark = needs_opencl


def numpy_loss(weights, biases, x, labels):
    h = x
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = h @ w.T + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0)
    h = h - h.max(1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(1, keepdims=True))
    return -logp[np.arange(len(labels)), labels].mean()


@pytest.mark.parametrize("form", ["dense", "csr"])
def test_gradients_match_finite_differences(cl_env, form):
    context, queue = cl_env
    rng = np.random.default_rng(11)
    widths, batch, classes = [12, 9, 7, 5], 19, 5
    weights = [(rng.standard_normal((widths[i + 1], widths[i])) * 0.6).astype(np.float32) for i in range(3)]
    if form == "csr":
        for w in weights:
            w[rng.random(w.shape) < 0.5] = 0
    biases = [(rng.standard_normal(widths[i + 1]) * 0.1).astype(np.float32) for i in range(3)]
    x = rng.standard_normal((batch, widths[0])).astype(np.float32)
    labels = rng.integers(0, classes, batch).astype(np.int32)

    specs = [(f"g{i}", Dense(w.shape[1], w.shape[0]), to_csr(w) if form == "csr" else w, b, i < 2)
             for i, (w, b) in enumerate(zip(weights, biases))]
    net = Network(context, queue, specs, classes, {"mean": 0.0, "scale": 1.0}, capacity=batch)
    x_dev = cla.to_device(queue, np.ascontiguousarray(x.T))          # feature-major
    dlogits = cla.empty(queue, (classes, batch), np.float32)
    loss, correct = cla.empty(queue, (batch,), np.float32), cla.empty(queue, (batch,), np.int32)
    logits = net.forward(x_dev, batch)
    net.shared["softmax_xent"](queue, (batch,), None, logits.data, cla.to_device(queue, labels).data,
                               dlogits.data, loss.data, correct.data, np.int32(batch), np.int32(0))
    net.backward(dlogits, x_dev, batch)

    w64 = [w.astype(np.float64) for w in weights]
    b64 = [b.astype(np.float64) for b in biases]
    x64 = x.astype(np.float64)
    assert abs(loss.get().mean() - numpy_loss(w64, b64, x64, labels)) < 1e-5
    eps = 1e-4
    for li, layer in enumerate(net.layers):
        if form == "csr":
            grad = np.zeros_like(w64[li])
            grad[layer.index.rows, layer.index.cols] = layer.dvalues.get()[:layer.nnz]
            entries = list(zip(layer.index.rows, layer.index.cols))
        else:
            grad = layer.dvalues.get().reshape(w64[li].shape)
            entries = [(i, j) for i in range(grad.shape[0]) for j in range(grad.shape[1])]
        for i, j in entries:
            w64[li][i, j] += eps
            up = numpy_loss(w64, b64, x64, labels)
            w64[li][i, j] -= 2 * eps
            down = numpy_loss(w64, b64, x64, labels)
            w64[li][i, j] += eps
            assert grad[i, j] == pytest.approx((up - down) / (2 * eps), rel=1e-3, abs=1e-5)
        dbias = layer.dbias.get()
        for i in range(len(b64[li])):
            b64[li][i] += eps
            up = numpy_loss(w64, b64, x64, labels)
            b64[li][i] -= 2 * eps
            down = numpy_loss(w64, b64, x64, labels)
            b64[li][i] += eps
            assert dbias[i] == pytest.approx((up - down) / (2 * eps), rel=1e-3, abs=1e-5)
