"""Convolution and pooling layers on OpenCL against numpy: outputs, and every gradient against finite
differences, in dense and CSR form, valid and same padding."""

import numpy as np
import pyopencl.array as cla
import pytest
import scipy.sparse as sp

from sparsecl import reference
from sparsecl.geometry import Conv2d, Dense, MaxPool2d
from sparsecl.modelfile import Layer, to_csr
from sparsecl.trainer.launch import Launcher
from sparsecl.trainer.layers import CsrLayer, DenseLayer
from sparsecl.trainer.network import Network

from conftest import needs_opencl

pytestmark = needs_opencl


def small_cnn(rng, padding, density):
    conv = Conv2d((2, 6, 6), 3, 3, padding)
    pool = MaxPool2d(conv.out_shape)
    fc = Dense(pool.n_out, 4)
    w_conv = (rng.standard_normal(conv.weight_shape) * 0.5).astype(np.float32)
    w_fc = (rng.standard_normal(fc.weight_shape) * 0.3).astype(np.float32)
    for w in (w_conv, w_fc):
        w[rng.random(w.shape) >= density] = 0
    b_conv = (rng.standard_normal(3) * 0.1).astype(np.float32)
    b_fc = (rng.standard_normal(4) * 0.1).astype(np.float32)
    layers = [Layer("conv1", "conv2d", conv.n_in, conv.n_out, True, to_csr(w_conv), b_conv, conv),
              Layer("pool1", "maxpool2d", pool.n_in, pool.n_out, False, None, None, pool),
              Layer("fc1", "dense", fc.n_in, fc.n_out, False, to_csr(w_fc), b_fc, fc)]
    return layers, (w_conv, b_conv, w_fc, b_fc)


def build(cl_env, layers, form, batch):
    context, queue = cl_env
    specs = [(l.name, l.geometry, None if l.weights is None else (l.weights if form == "csr" else l.weights.toarray()),
              l.bias, l.relu) for l in layers]
    return Network(context, queue, specs, 4, {"mean": 0.0, "scale": 1.0}, batch, input_shape=(2, 6, 6))


def loss64(layers, params, x, labels):
    w_conv, b_conv, w_fc, b_fc = params
    tmp = [Layer(l.name, l.kind, l.n_in, l.n_out, l.relu, None if w is None else sp.csr_matrix(w), b, l.geometry)
           for l, w, b in zip(layers, [w_conv, None, w_fc], [b_conv, None, b_fc])]
    z = reference.forward(tmp, x)
    z = z - z.max(1, keepdims=True)
    return -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(len(labels)), labels].mean()


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("form", ["dense", "csr"])
def test_cnn_forward_and_gradients(cl_env, padding, form):
    _, queue = cl_env
    rng = np.random.default_rng(5)
    batch = 11                                      # one full vector of 8 samples and a tail of 3
    layers, params = small_cnn(rng, padding, density=0.6)
    x = rng.standard_normal((batch, 72)).astype(np.float32)
    labels = rng.integers(0, 4, batch).astype(np.int32)
    net = build(cl_env, layers, form, batch)

    np.testing.assert_allclose(net.predict(x), reference.forward(layers, x), rtol=1e-5, atol=1e-5)

    x_dev = cla.to_device(queue, np.ascontiguousarray(x.T))
    logits = net.forward(x_dev, batch)
    dlogits = cla.empty(queue, (4, batch), np.float32)
    loss, correct = cla.empty(queue, (batch,), np.float32), cla.empty(queue, (batch,), np.int32)
    net.shared["softmax_xent"](queue, (batch,), None, logits.data, cla.to_device(queue, labels).data,
                               dlogits.data, loss.data, correct.data, np.int32(batch), np.int32(0))
    net.backward(dlogits, x_dev, batch)

    p64 = [None if p is None else p.astype(np.float64) for p in params]
    x64 = x.astype(np.float64)
    assert abs(loss.get().mean() - loss64(layers, p64, x64, labels)) < 1e-5
    eps = 1e-4

    def fd(array, index):
        array[index] += eps
        up = loss64(layers, p64, x64, labels)
        array[index] -= 2 * eps
        down = loss64(layers, p64, x64, labels)
        array[index] += eps
        return (up - down) / (2 * eps)

    for layer, w_index, b_index in ((net.layers[0], 0, 1), (net.layers[2], 2, 3)):
        w = p64[w_index]
        if form == "csr":
            grad = np.zeros_like(w)
            grad[layer.index.rows, layer.index.cols] = layer.dvalues.get()[:layer.nnz]
            entries = list(zip(layer.index.rows, layer.index.cols))
        else:
            grad = layer.dvalues.get().reshape(w.shape)
            entries = [tuple(i) for i in np.argwhere(np.ones_like(w))]
        assert entries
        for e in entries:
            assert grad[e] == pytest.approx(fd(w, e), rel=2e-3, abs=2e-5), (layer.name, e)
        dbias = layer.dbias.get()
        for i in range(len(p64[b_index])):
            assert dbias[i] == pytest.approx(fd(p64[b_index], i), rel=2e-3, abs=2e-5)


def conv_operator(geometry, weights):
    """The (n_out, n_in) matrix of a convolution without bias, by the reference applied to unit images."""
    return reference.conv2d(np.eye(geometry.n_in), sp.csr_matrix(weights), np.zeros(geometry.out_channels),
                            geometry).T


@pytest.mark.parametrize("form", ["dense", "csr"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("shape", [(3, 7, 6, 5, 3), (1, 9, 9, 4, 5), (2, 12, 11, 3, 3)])   # c_in, h, w, c_out, k
@pytest.mark.parametrize("batch", [1, 5, 37])    # one sample; a partial vector block only; full blocks and a tail
def test_conv_layer_forward_input_and_weight_gradients_match_numpy(cl_env, programs, form, padding, shape, batch):
    """Every kernel of a convolution layer against the convolution as a matrix: y = M x + b (ReLU),
    dx = M^T dy masked where x <= 0, dW[e] = dy . (M_e x) for the unit filter e."""
    _, queue = cl_env
    c_in, h, w, c_out, k = shape
    geometry = Conv2d((c_in, h, w), c_out, k, padding)
    rng = np.random.default_rng(batch + k)
    weights = rng.standard_normal(geometry.weight_shape).astype(np.float32)
    weights[rng.random(weights.shape) < 0.4] = 0
    bias = rng.standard_normal(c_out).astype(np.float32)
    x = rng.standard_normal((batch, geometry.n_in)).astype(np.float32)
    x[x < -0.5] = 0
    dy = rng.standard_normal((batch, geometry.n_out)).astype(np.float32)
    layer = (CsrLayer(Launcher(queue), programs, "c", geometry, to_csr(weights), bias, True, batch + 2)
             if form == "csr" else DenseLayer(Launcher(queue), programs, "c", geometry, weights, bias, True, batch + 2))
    m = conv_operator(geometry, weights)

    x_dev = cla.to_device(queue, np.ascontiguousarray(x.T))
    y = layer.forward(x_dev, batch).get().ravel()[:geometry.n_out * batch].reshape(-1, batch).T
    np.testing.assert_allclose(y, np.maximum(x @ m.T + np.repeat(bias, geometry.positions), 0), rtol=1e-4, atol=1e-4)

    bias_grad = programs.kernels("train.cl.j2", ["bias_grad"], classes=2, width=1, height=1, cols=1)["bias_grad"]
    dx = layer.backward(cla.to_device(queue, np.ascontiguousarray(dy.T)), x_dev, batch, bias_grad, need_dx=True,
                        mask_relu=True)
    dx = dx.get().ravel()[:geometry.n_in * batch].reshape(-1, batch).T
    np.testing.assert_allclose(dx, (dy @ m) * (x > 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.dbias.get(), dy.reshape(batch, c_out, -1).sum((0, 2)), rtol=1e-4, atol=1e-4)
    units = np.eye(weights.size, dtype=np.float32).reshape(weights.size, *weights.shape)
    dw = np.array([np.sum(dy * (x @ conv_operator(geometry, unit).T)) for unit in units]).reshape(weights.shape)
    if form == "csr":
        got = sp.csr_matrix((layer.dvalues.get()[:layer.nnz], layer.index.cols, layer.index.rowptr),
                            shape=weights.shape).toarray()
        np.testing.assert_allclose(got, dw * (weights != 0), rtol=1e-4, atol=1e-4)
    else:
        np.testing.assert_allclose(layer.dvalues.get().reshape(weights.shape), dw, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [1, 9])      # sample by sample; a vector of 8 and a tail
def test_pool_gradient_goes_to_the_first_maximum(cl_env, batch):
    context, queue = cl_env
    pool = MaxPool2d((1, 2, 4))
    net = Network(context, queue, [("p", pool, None, None, False)], 2, {"mean": 0.0, "scale": 1.0}, batch,
                  input_shape=(1, 2, 4))
    x = np.array([[3, 1, 0, 0], [3, 2, 0, -1]], np.float32).reshape(8, 1)   # ties: 3 twice, 0 three times
    x = np.repeat(x, batch, axis=1)
    layer = net.layers[0]
    layer.forward(cla.to_device(queue, x), batch)
    np.testing.assert_array_equal(layer.y.get().ravel()[:2 * batch], np.repeat([3, 0], batch))
    dy = cla.to_device(queue, np.repeat(np.array([[5.0], [7.0]], np.float32), batch, axis=1))
    for mask_relu, want in ((False, [5, 0, 7, 0, 0, 0, 0, 0]), (True, [5, 0, 0, 0, 0, 0, 0, 0])):
        dx = layer.backward(dy, cla.to_device(queue, x), batch, None, need_dx=True, mask_relu=mask_relu)
        np.testing.assert_array_equal(dx.get().ravel()[:8 * batch], np.repeat(np.array(want, np.float32), batch))
