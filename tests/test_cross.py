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


@pytest.mark.parametrize("arch", ["native", "aarch64"])
def test_cmake_builds_natively_and_with_the_toolchain_files(small_model, tmp_path, arch):
    if shutil.which("cmake") is None:
        pytest.skip("no cmake")
    if arch != "native" and shutil.which(ARCHES[arch][0] + "gcc") is None:
        pytest.skip("no cross compiler (make test installs it)")
    bundle = tmp_path / "b"
    write_bundle(plan(small_model, "mali"), bundle)
    toolchain = [] if arch == "native" else [f"-DCMAKE_TOOLCHAIN_FILE={bundle / 'toolchain-aarch64.cmake'}"]
    configure = run(["cmake", "-S", str(bundle), "-B", str(tmp_path / "build"), "-DCMAKE_C_FLAGS=-Werror", *toolchain])
    assert configure.returncode == 0, configure.stderr
    build = run(["cmake", "--build", str(tmp_path / "build")])
    assert build.returncode == 0, build.stdout + build.stderr
    from sparsecl.codegen.package import architecture
    assert architecture(str(tmp_path / "build" / "infer")) == ("x86_64" if arch == "native" else "aarch64")


def test_package_holds_binary_manifest_and_sums(small_model, tmp_path):
    import hashlib
    import tarfile

    from sparsecl import SparseclError
    from sparsecl.codegen.package import package
    bundle = tmp_path / "b"
    write_bundle(plan(small_model, "c"), bundle)
    with pytest.raises(SparseclError, match="build it first"):
        package(bundle)
    assert run(["make", "-C", str(bundle)]).returncode == 0
    archive = package(bundle)
    assert archive.endswith("small-c-x86_64.tar.gz")
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        assert names == ["small-c-x86_64/SHA256SUMS", "small-c-x86_64/infer", "small-c-x86_64/manifest.json"]
        sums = tar.extractfile("small-c-x86_64/SHA256SUMS").read().decode().splitlines()
        for line in sums:
            digest, name = line.split("  ")
            assert hashlib.sha256(tar.extractfile(f"small-c-x86_64/{name}").read()).hexdigest() == digest
        assert tar.getmember("small-c-x86_64/infer").mode & 0o111
