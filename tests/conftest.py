import os
import shutil
import subprocess

import numpy as np
import pytest

# A cache of compiled kernels shared by the whole run keeps the suite fast on PoCL.
os.environ.setdefault("POCL_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "sparsecl-test-pocl"))


def _has_opencl() -> bool:
    try:
        import pyopencl as cl
        return any(p.get_devices() for p in cl.get_platforms())
    except Exception:
        return False


HAS_OPENCL = _has_opencl()
needs_opencl = pytest.mark.skipif(not HAS_OPENCL, reason="no OpenCL platform (CI installs PoCL)")
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                               reason="gcc and make are needed to build bundles")


@pytest.fixture(scope="session")
def cl_env():
    if not HAS_OPENCL:
        pytest.skip("no OpenCL platform (CI installs PoCL)")
    from sparsecl.trainer.device import create_context
    context, queue, _ = create_context()
    return context, queue


@pytest.fixture(scope="session")
def programs(cl_env):
    from sparsecl.trainer.programs import ProgramCache
    return ProgramCache(cl_env[0])


@pytest.fixture(scope="session")
def small_model():
    """A small trained-looking model (random sparse weights) on the digits input shape, no training needed."""

    from sparsecl.modelfile import Layer, Model, to_csr
    rng = np.random.default_rng(7)
    widths = [64, 40, 20, 10]
    layers = []
    for i in range(3):
        w = rng.standard_normal((widths[i + 1], widths[i])).astype(np.float32) * 0.3
        w[rng.random(w.shape) < 0.8] = 0
        if i == 0:
            w[3] = 0          # an empty row
            w[:, 5] = 0       # an empty column
        layers.append(Layer(f"fc{i + 1}", "dense", widths[i], widths[i + 1], i < 2, to_csr(w),
                            rng.standard_normal(widths[i + 1]).astype(np.float32) * 0.1))
    return Model("small", "mlp:40,20", "digits", (8, 8), 10, {"mean": 4.9, "scale": 0.16}, layers,
                 {"summary": {}, "log": []})


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)


@pytest.fixture(scope="session")
def small_cnn_model():
    """A small convolutional model on the digits input shape: conv (same) -> pool -> conv (valid) -> dense."""
    from sparsecl.geometry import Conv2d, Dense, MaxPool2d
    from sparsecl.modelfile import Layer, Model, to_csr
    rng = np.random.default_rng(8)
    c1 = Conv2d((1, 8, 8), 4, 3, "same")
    p1 = MaxPool2d(c1.out_shape)
    c2 = Conv2d(p1.out_shape, 6, 3, "valid")
    fc = Dense(c2.n_out, 10)
    layers = []
    for name, g, relu in (("conv1", c1, True), ("pool1", p1, False), ("conv2", c2, True), ("fc1", fc, False)):
        if g.weight_shape is None:
            layers.append(Layer(name, g.kind, g.n_in, g.n_out, False, None, None, g))
            continue
        w = (rng.standard_normal(g.weight_shape) * 0.4).astype(np.float32)
        w[rng.random(w.shape) < 0.5] = 0
        layers.append(Layer(name, g.kind, g.n_in, g.n_out, relu, to_csr(w),
                            (rng.standard_normal(g.bias_size) * 0.1).astype(np.float32), g))
    return Model("small-cnn", "cnn:4c3s,pool,6c3", "digits", (8, 8), 10, {"mean": 4.9, "scale": 0.16}, layers,
                 {"summary": {}, "log": []})
