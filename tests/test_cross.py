"""Bundles cross-compile warning-free for ARM boards, and the binaries run under qemu-user (plain C path)."""

import shutil

import pytest

from sparsecl.codegen.generate import write_bundle
from sparsecl.codegen.plan import plan

from conftest import run

ARCHES = {"aarch64": ("aarch64-linux-gnu-", "qemu-aarch64", "/usr/aarch64-linux-gnu"),
          "armhf": ("arm-linux-gnueabihf-", "qemu-arm", "/usr/arm-linux-gnueabihf")}


@pytest.mark.parametrize("arch", sorted(ARCHES))
@pytest.mark.parametrize("target", ["c", "opencl"])
def test_cross_build_and_run_under_qemu(small_cnn_model, tmp_path, arch, target):
    prefix, qemu, sysroot = ARCHES[arch]
    if shutil.which(prefix + "gcc") is None:
        pytest.skip(f"no {prefix}gcc (make test installs it)")
    write_bundle(plan(small_cnn_model, target), tmp_path / "b")
    result = run(["make", "-C", str(tmp_path / "b"), f"CROSS_COMPILE={prefix}", "CFLAGS=-O2 -Werror"])
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr.lower()
    if shutil.which(qemu) is None:
        pytest.skip(f"no {qemu} (make test installs qemu-user)")
    result = run([qemu, "-L", sysroot, str(tmp_path / "b" / "infer"), "--selftest", "--cpu"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "selftest passed" in result.stdout
