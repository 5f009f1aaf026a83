"""Cross-built OpenCL bundles running real kernels under qemu-user, on PoCL for arm64 and armhf."""

import numpy as np
import pytest

from sparsecl import SparseclError, qemu, reference
from sparsecl.codegen.generate import write_bundle
from sparsecl.codegen.plan import as_stored, plan
from sparsecl.codegen.verify import FALLBACK, build, run_infer


# aarch64 with fp32 weights runs as a tunable bundle below
@pytest.mark.parametrize("arch,precision", [("aarch64", "fp16"), ("armhf", "fp32"), ("armhf", "fp16")])
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


def test_a_tunable_bundle_tunes_itself_on_the_board(small_cnn_model, tmp_path):
    """What a user does on an aarch64 board: build, `infer --autotune` once, then run with the tuned kernels
    (fp32 weights: the other precision and architecture run above)."""
    import json
    import subprocess
    try:
        prefix, env = qemu.runner("aarch64")
    except SparseclError as e:
        pytest.skip(str(e))
    write_bundle(plan(small_cnn_model, "mali", tunable=True), tmp_path / "b")
    binary = build(str(tmp_path / "b"), ["CROSS_COMPILE=" + qemu.CROSS["aarch64"], "CFLAGS=-O2 -Werror"],
                   binary="infer-aarch64")
    result = subprocess.run([*prefix, binary, "--autotune", "--bench", "3"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    timed = json.loads(result.stdout)
    assert timed["backend"] == "opencl" and {"csr_s", "dense_s", "unrolled_s"} <= set(timed["layers"][0])
    assert f"opencl 1 {timed['layers'][0]['name']}={timed['layers'][0]['variant']}" in open(binary + ".tune").read()
    raw = np.random.default_rng(5).integers(0, 17, (9, 8, 8)).astype(np.uint8)
    messages = []
    got = run_infer(binary, raw, runner=prefix, env=env, messages=messages)
    assert not any(FALLBACK in m or "tune" in m for m in messages), messages
    np.testing.assert_allclose(got, reference.logits(small_cnn_model, raw.reshape(9, 64)), rtol=1e-5, atol=1e-5)
