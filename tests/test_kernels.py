"""Every kernel against a plain numpy reference."""

import numpy as np
import pyopencl.array as cla
import pytest
import scipy.sparse as sp

from sparsecl.geometry import Dense
from sparsecl.modelfile import to_csr
from sparsecl.trainer.launch import Launcher
from sparsecl.trainer.layers import CsrLayer, DenseLayer

from conftest import needs_opencl

pytestmark = needs_opencl

F32 = np.float32


def random_weights(rng, n_out, n_in, density, empty_row=False, empty_col=False):
    w = rng.standard_normal((n_out, n_in)).astype(F32)
    w[rng.random(w.shape) >= density] = 0
    if empty_row:
        w[n_out // 2] = 0
    if empty_col:
        w[:, n_in // 3] = 0
    return w


CASES = [  # (n_out, n_in, density, empty row, empty column)
    (7, 5, 0.5, False, False),
    (33, 17, 0.2, True, True),
    (64, 100, 0.05, True, True),
    (10, 12, 0.0, False, False),    # a fully empty layer
    (9, 6, 1.0, False, False),      # a fully dense one
]


def make_layer(kind, queue, programs, w, b, relu, batch):
    geometry = Dense(w.shape[1], w.shape[0])
    if kind == "csr":
        return CsrLayer(Launcher(queue), programs, "t", geometry, to_csr(w), b, relu, batch)
    return DenseLayer(Launcher(queue), programs, "t", geometry, w, b, relu, batch)


def feature_major(array, rows, batch):
    """The (rows, batch) block of a feature-major device buffer whose capacity may exceed batch."""
    return array.get().ravel()[:rows * batch].reshape(rows, batch)


@pytest.mark.parametrize("kind", ["dense", "csr"])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("batch", [5, 37])         # a partial vector block only; full blocks and a tail
def test_forward_and_gradients_match_numpy(cl_env, programs, kind, case, relu, batch):
    _, queue = cl_env
    n_out, n_in, density, empty_row, empty_col = case
    rng = np.random.default_rng(n_out * 100 + n_in)
    w = random_weights(rng, n_out, n_in, density, empty_row, empty_col)
    b = rng.standard_normal(n_out).astype(F32)
    x = rng.standard_normal((batch, n_in)).astype(F32)
    x[x < -0.5] = 0     # some zero inputs, as after a ReLU, to exercise the mask
    dy = rng.standard_normal((batch, n_out)).astype(F32)
    layer = make_layer(kind, queue, programs, w, b, relu, batch + 3)

    x_dev = cla.to_device(queue, np.ascontiguousarray(x.T))
    y = feature_major(layer.forward(x_dev, batch), n_out, batch).T
    ref = x @ w.T + b
    if relu:
        ref = np.maximum(ref, 0)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)

    bias_grad = shared(programs)["bias_grad"]
    dx = layer.backward(cla.to_device(queue, np.ascontiguousarray(dy.T)), x_dev, batch, bias_grad,
                        need_dx=True, mask_relu=True)
    np.testing.assert_allclose(feature_major(dx, n_in, batch).T, (dy @ w) * (x > 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.dbias.get(), dy.sum(0), rtol=1e-5, atol=1e-5)
    dw = dy.T @ x
    if kind == "csr":
        mask = w != 0           # the sampled product: only the support
        got = sp.csr_matrix((layer.dvalues.get()[:layer.nnz], layer.index.cols, layer.index.rowptr),
                            shape=w.shape).toarray()
        np.testing.assert_allclose(got, dw * mask, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(layer.dvalues.get(), dw, rtol=1e-5, atol=1e-5)


def test_csr_layer_memory_grows_with_nonzeros(cl_env, programs):
    _, queue = cl_env
    rng = np.random.default_rng(1)
    sizes = []
    for density in (0.01, 0.1):
        layer = CsrLayer(Launcher(queue), programs, "m", Dense(784, 300), to_csr(random_weights(rng, 300, 784, density)),
                         np.zeros(300, F32), True, 1)
        sizes.append(sum(a.nbytes for a in (layer.values, layer.dvalues, layer.vvalues, layer.cols, layer.rows,
                                            layer.rows_t, layer.perm_t)))
    assert sizes[1] > 8 * sizes[0]
    assert sizes[0] < 300 * 784 * 4   # far below one dense float copy


def shared(programs, classes=4, width=30, height=5, cols=6):
    return programs.kernels("train.cl.j2", ["gather_batch", "softmax_xent", "bias_grad"],
                            classes=classes, width=width, height=height, cols=cols)


def sgd_step(programs, queue, w_dev, g, v_dev, lr, momentum, threshold, l1_grad):
    """The optimiser the trainer runs (sgd_all) on one parameter array."""
    kernel = programs.kernels("train.cl.j2", ["sgd_all"], classes=4, width=30, height=5, cols=6, arrays=1)["sgd_all"]
    n = w_dev.size
    kernel(queue, (-(-n // 256) * 256,), (256,), w_dev.data, cla.to_device(queue, g).data, v_dev.data, np.int32(n),
           F32(threshold), F32(l1_grad), np.int32(0), F32(lr), F32(momentum))


def test_softmax_cross_entropy(cl_env, programs):
    _, queue = cl_env
    rng = np.random.default_rng(2)
    batch, classes = 9, 4
    z = (rng.standard_normal((batch, classes)) * 5).astype(F32)
    labels = rng.integers(0, classes, batch).astype(np.int32)
    dz, loss, correct = (cla.empty(queue, (batch, classes), F32), cla.zeros(queue, (batch + 3,), F32),
                         cla.zeros(queue, (batch + 3,), np.int32))
    shared(programs)["softmax_xent"](queue, (batch,), None, cla.to_device(queue, np.ascontiguousarray(z.T)).data,
                                     cla.to_device(queue, labels).data, dz.data, loss.data, correct.data,
                                     np.int32(batch), np.int32(3))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(classes, dtype=F32)[labels]
    np.testing.assert_allclose(dz.get().reshape(classes, batch).T, (p - onehot) / batch, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss.get()[3:], -np.log(p[np.arange(batch), labels]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(correct.get()[3:], z.argmax(1) == labels)
    assert loss.get()[:3].tolist() == [0, 0, 0]   # the offset is respected


def test_prox_step_gives_exact_zeros_at_the_threshold(cl_env, programs):
    _, queue = cl_env
    rng = np.random.default_rng(3)
    n, lr, momentum, lam = 1000, 0.1, 0.9, 0.5
    w = rng.standard_normal(n).astype(F32)
    g = rng.standard_normal(n).astype(F32)
    v = rng.standard_normal(n).astype(F32)
    w_dev, v_dev = cla.to_device(queue, w), cla.to_device(queue, v)
    sgd_step(programs, queue, w_dev, g, v_dev, lr, momentum, lr * lam, 0)
    v_ref = momentum * v + g
    u = w - F32(lr) * v_ref
    t = F32(lr * lam)
    w_ref = np.where(np.abs(u) > t, u - np.sign(u) * t, 0).astype(F32)
    got = w_dev.get()
    np.testing.assert_allclose(v_dev.get(), v_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got, w_ref, rtol=1e-5, atol=1e-6)
    assert np.array_equal(got == 0, np.abs(u) <= t)           # exactly the small ones are zero...
    assert not np.any(np.signbit(got[got == 0]))                 # ...and positive zeros
    assert np.all(np.abs(got[got != 0]) > 0)


def test_prox_step_without_threshold_is_plain_momentum_sgd(cl_env, programs):
    _, queue = cl_env
    w = np.array([1e-8, -2.0, 0.0, 3.0], F32)
    g = np.array([0.0, 1.0, 0.0, -1.0], F32)
    w_dev = cla.to_device(queue, w)
    v_dev = cla.zeros(queue, 4, F32)
    sgd_step(programs, queue, w_dev, g, v_dev, 0.5, 0.9, 0.0, 0.0)
    np.testing.assert_array_equal(w_dev.get(), w - F32(0.5) * g)


def test_subgradient_step_adds_lam_sign_and_gives_no_exact_zeros(cl_env, programs):
    _, queue = cl_env
    rng = np.random.default_rng(5)
    n, lr, momentum, lam = 1000, 0.1, 0.9, 0.3
    w = rng.standard_normal(n).astype(F32)
    w[:10] = 0                                   # sign(0) = 0: a zero weight gets no l1 push
    g = rng.standard_normal(n).astype(F32)
    v = rng.standard_normal(n).astype(F32)
    w_dev, v_dev = cla.to_device(queue, w), cla.to_device(queue, v)
    sgd_step(programs, queue, w_dev, g, v_dev, lr, momentum, 0, lam)
    v_ref = momentum * v + g + F32(lam) * np.sign(w)
    np.testing.assert_allclose(v_dev.get(), v_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_dev.get(), w - F32(lr) * v_ref, rtol=1e-5, atol=1e-6)


def test_gather_with_shifts(cl_env, programs):
    _, queue = cl_env
    rng = np.random.default_rng(4)
    n, h, wd, batch = 10, 5, 6, 4
    data = rng.standard_normal((n, h * wd)).astype(F32)
    labels = np.arange(n, dtype=np.int32)
    perm = rng.permutation(n).astype(np.int32)
    shifts = rng.integers(-2, 3, (n, 2)).astype(np.int32)
    x, y = cla.empty(queue, (h * wd, batch), F32), cla.empty(queue, (batch,), np.int32)
    start, fill = 3, F32(-7.0)
    shared(programs)["gather_batch"](queue, (h * wd, batch), None, cla.to_device(queue, data).data,
                                     cla.to_device(queue, labels).data, cla.to_device(queue, perm).data,
                                     cla.to_device(queue, shifts).data, x.data, y.data, np.int32(start),
                                     np.int32(batch), fill)
    got = x.get().T
    for b in range(batch):
        src = perm[start + b]
        sx, sy = shifts[start + b]
        img = np.pad(data[src].reshape(h, wd), 3, constant_values=fill)
        ref = img[3 + sy:3 + sy + h, 3 + sx:3 + sx + wd]
        np.testing.assert_array_equal(got[b].reshape(h, wd), ref)
        assert y.get()[b] == src


def test_preprocess_kernel_normalises_and_transposes(cl_env, programs):
    _, queue = cl_env
    raw = np.arange(0, 256 * 3, dtype=F32).reshape(3, 256) % 256
    k = programs.kernels("preprocess.cl.j2", ["preprocess", "normalise"], n_in=256, mean=33.3, scale=0.0125,
                         training=True)
    out = cla.empty(queue, (256, 3), F32)
    k["preprocess"](queue, (256, 3), None, cla.to_device(queue, raw).data, out.data, np.int32(3))
    ref = (raw - F32(33.3)) * F32(0.0125)
    np.testing.assert_array_equal(out.get(), ref.T)
    data = cla.to_device(queue, raw)
    k["normalise"](queue, (raw.size,), None, data.data, np.int32(raw.size))
    np.testing.assert_array_equal(data.get(), ref)


def test_dense_masked_step_keeps_the_support(cl_env):
    from sparsecl.trainer.network import Network
    context, queue = cl_env
    rng = np.random.default_rng(6)
    w = random_weights(rng, 6, 9, 0.4)
    mask = (w != 0).astype(F32)
    net = Network(context, queue, [("m", Dense(9, 6), w, np.zeros(6, F32), False)], 6, {"mean": 0.0, "scale": 1.0},
                  4, masks=[mask])
    layer = net.layers[0]
    layer.dvalues.set(rng.standard_normal((6, 9)).astype(F32))      # a gradient everywhere
    net.step(0.1, 0.0, 0.0)
    got = layer.values.get()
    assert np.all(got[mask == 0] == 0)
    np.testing.assert_allclose(got[mask == 1], (w - F32(0.1) * layer.dvalues.get())[mask == 1], rtol=1e-6)


def test_one_launch_steps_every_array_like_separate_ones(cl_env, programs):
    _, queue = cl_env
    rng = np.random.default_rng(6)
    sizes, thresholds, l1_grads = [1000, 3, 300, 257], [0.05, 0.0, 0.0, 0.01], [0.0, 0.0, 0.2, 0.0]
    kernel = programs.kernels("train.cl.j2", ["sgd_all"], classes=10, width=16, height=4, cols=4,
                              arrays=len(sizes))["sgd_all"]
    args, want, devices, groups = [], [], [], 0
    lr, momentum = F32(0.1), F32(0.9)
    for n, t, l1 in zip(sizes, thresholds, l1_grads):
        w, g, v = (rng.standard_normal(n).astype(F32) for _ in range(3))
        vr = momentum * v + g + F32(l1) * np.sign(w)
        u = w - lr * vr
        want.append((np.where(np.abs(u) > t, u - np.sign(u) * F32(t), 0), vr))
        arrays = [cla.to_device(queue, a) for a in (w, g, v)]
        devices.append(arrays)
        args += [a.data for a in arrays] + [np.int32(n), F32(t), F32(l1), np.int32(groups)]
        groups += -(-n // 256)
    kernel(queue, (groups * 256,), (256,), *args, lr, momentum)
    for (w_ref, v_ref), (w_dev, _, v_dev) in zip(want, devices):
        np.testing.assert_allclose(w_dev.get(), w_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(v_dev.get(), v_ref, rtol=1e-5, atol=1e-6)
