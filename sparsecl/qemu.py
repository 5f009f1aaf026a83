"""Running cross-built bundles, OpenCL included, under qemu-user on this machine.

The OpenCL driver for the guest is Debian's PoCL for that architecture, unpacked into a sysroot from its
.deb files (installing it with multiarch would remove the host's compilers). Three things make PoCL work
under qemu: the sysroot's /lib merged into /usr/lib; an ICD file naming the sysroot's libpocl by its host
path (qemu's -L prefix does not cover every file lookup); and an `ld` wrapper that PoCL's clang finds on
COMPILER_PATH, since qemu-user runs the linker PoCL calls natively: it must be the cross linker, with
guest paths mapped into the sysroot.
"""

import os
import shutil
import subprocess
import tempfile

from sparsecl import SparseclError

ARCHES = {  # sparsecl name: (Debian architecture, GNU triplet, qemu binary)
    "aarch64": ("arm64", "aarch64-linux-gnu", "qemu-aarch64"),
    "armhf": ("armhf", "arm-linux-gnueabihf", "qemu-arm"),
}

LD_WRAPPER = """#!/bin/bash
# PoCL under qemu-user links each kernel with ld, which qemu runs natively: use the cross linker, with
# paths inside the guest mapped into the sysroot.
sysroot={sysroot}
args=()
for a in "$@"; do
  if [[ $a == /* && -e $sysroot$a ]]; then a=$sysroot$a
  elif [[ $a == -L/* && -e $sysroot${{a#-L}} ]]; then a=-L$sysroot${{a#-L}}
  fi
  args+=("$a")
done
exec {triplet}-ld --sysroot="$sysroot" "${{args[@]}}"
"""


def default_sysroot(arch: str) -> str:
    return os.environ.get("SPARSECL_QEMU_SYSROOT") or os.path.join(
        os.path.expanduser("~"), ".cache", "sparsecl", f"sysroot-{arch}")


def _arch(arch):
    if arch not in ARCHES:
        raise SparseclError(f"unknown architecture {arch!r} (known: {', '.join(ARCHES)})")
    return ARCHES[arch]


def _run(cmd, **kwargs):
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SparseclError(f"{' '.join(cmd[:3])} failed: {(result.stderr.strip() or '?').splitlines()[-1]}")
    return result.stdout


def build_sysroot(arch: str, sysroot: str) -> str:
    """Download the guest's PoCL and its dependencies with apt and unpack them into sysroot (needs root)."""
    debian, triplet, _ = _arch(arch)
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SparseclError("building a qemu sysroot needs Debian's apt-get and dpkg-deb")
    _run(["dpkg", "--add-architecture", debian])
    _run(["apt-get", "update", "-qq"])
    deps = _run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                 "--no-breaks", "--no-replaces", "--no-enhances", f"pocl-opencl-icd:{debian}"])
    names = sorted({line for line in deps.splitlines() if line and line[0].isalnum()})
    common = ("libpocl2-common", "libtirpc-common", "gcc-12-base")    # architecture-independent parts
    wanted = [n for n in names if n.endswith(f":{debian}") or n in common] + [f"ocl-icd-libopencl1:{debian}"]
    sysroot = os.path.abspath(sysroot)
    staging = sysroot + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    with tempfile.TemporaryDirectory(prefix="sparsecl-debs-") as debs:
        _run(["apt-get", "download", *wanted], cwd=debs)
        for deb in sorted(os.listdir(debs)):
            _run(["dpkg-deb", "-x", os.path.join(debs, deb), staging])
    lib = os.path.join(staging, "lib")            # merge /lib into /usr/lib, as merged-/usr systems do
    if os.path.isdir(lib) and not os.path.islink(lib):
        shutil.copytree(lib, os.path.join(staging, "usr", "lib"), symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(lib)
        os.symlink("usr/lib", lib)
    with open(os.path.join(staging, "pocl.icd"), "w") as f:
        f.write(os.path.join(sysroot, "usr", "lib", triplet, "libpocl.so.2") + "\n")
    os.makedirs(os.path.join(staging, "host-bin"), exist_ok=True)
    wrapper = os.path.join(staging, "host-bin", "ld")
    with open(wrapper, "w") as f:
        f.write(LD_WRAPPER.format(sysroot=sysroot, triplet=triplet))
    os.chmod(wrapper, 0o755)
    shutil.rmtree(sysroot, ignore_errors=True)
    os.replace(staging, sysroot)
    return sysroot


def runner(arch: str, sysroot: str = None):
    """(command prefix, environment) running a binary of arch under qemu with the sysroot's OpenCL."""
    _, triplet, qemu = _arch(arch)
    sysroot = os.path.abspath(sysroot or default_sysroot(arch))
    if not os.path.exists(os.path.join(sysroot, "pocl.icd")):
        raise SparseclError(f"no qemu sysroot for {arch} at {sysroot}; build it with: "
                            f"sparsecl qemu-sysroot {arch}")
    if shutil.which(qemu) is None:
        raise SparseclError(f"{qemu} is not installed: apt-get install qemu-user")
    if shutil.which(f"{triplet}-ld") is None:
        raise SparseclError(f"{triplet}-ld is not installed: apt-get install binutils-{triplet}")
    env = dict(os.environ, QEMU_LD_PREFIX=sysroot, OCL_ICD_VENDORS=os.path.join(sysroot, "pocl.icd"),
               COMPILER_PATH=os.path.join(sysroot, "host-bin"),
               POCL_CACHE_DIR=os.path.join(sysroot, "pocl-cache"))
    return [qemu], env


CROSS = {"aarch64": "aarch64-linux-gnu-", "armhf": "arm-linux-gnueabihf-"}
