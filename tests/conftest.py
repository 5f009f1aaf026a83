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
    import scipy.sparse as sp

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
