"""Cross-built OpenCL bundles running real kernels under qemu-user, on PoCL for arm64 and armhf."""

import numpy as np
import pytest

from sparsecl import SparseclError, qemu, reference
from sparsecl.codegen.generate import write_bundle
from sparsecl.codegen.plan import as_stored, plan
from sparsecl.codegen.verify import FALLBACK, build, run_infer


@pytest.mark.parametrize("arch", ["aarch64", "armhf"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_mali_bundle_runs_opencl_under_qemu(small_cnn_model, tmp_path, arch, precision):
    try:
        prefix, env = qemu.runner(arch)
    except SparseclError as e:
        pytest.skip(str(e))      # make test builds the sysroots
    write_bundle(plan(small_cnn_model, "mali", precision=precision), tmp_path / "b")
    binary = build(str(tmp_path / "b"), [f"CROSS_COMPILE={qemu.CROSS[arch]}", "CFLAGS=-O2 -Werror"],
                   binary=f"infer-{arch}")
    raw = np.random.default_rng(4).integers(0, 17, (21, 8, 8)).astype(np.uint8)
    messages = []
    got = run_infer(binary, raw, runner=prefix, env=env, messages=messages)
    assert not any(FALLBACK in m for m in messages), messages          # the kernels really ran
    want = reference.logits(as_stored(small_cnn_model, np.float16 if precision == "fp16" else np.float32),
                            raw.reshape(21, 64))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_missing_sysroot_says_how_to_build_it(tmp_path):
    with pytest.raises(SparseclError, match="sparsecl qemu-sysroot aarch64"):
        qemu.runner("aarch64", str(tmp_path / "none"))
