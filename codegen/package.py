"""Shipping a built bundle: a .tar.gz with the binary, manifest.json and SHA-256 sums, ready to copy to a
board and run (`./infer --selftest` there)."""

import hashlib
import io
import json
import os
import tarfile

from sparsecl import SparseclError
from sparsecl.modelfile import atomic_write

# ELF e_machine values of the architectures bundles are built for.
MACHINES = {0x3E: "x86_64", 0xB7: "aarch64", 0x28: "armhf", 0x03: "x86"}


def architecture(binary: str) -> str:
    with open(binary, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise SparseclError(f"{binary} is not an ELF executable")
    return MACHINES.get(int.from_bytes(header[18:20], "little" if header[5] == 1 else "big"), "unknown")


def package(bundle_dir, output=None) -> str:
    """Write the archive (default: beside the bundle, named after model, target and architecture)."""
    bundle_dir = os.fspath(bundle_dir)
    binary = os.path.join(bundle_dir, "infer")
    manifest_path = os.path.join(bundle_dir, "manifest.json")
    if not os.path.exists(manifest_path):
        raise SparseclError(f"{bundle_dir} is not a bundle (no manifest.json)")
    if not os.path.exists(binary):
        raise SparseclError(f"{bundle_dir} has no built ./infer; build it first: make -C {bundle_dir} "
                            "[CROSS_COMPILE=aarch64-linux-gnu-]")
    with open(manifest_path) as f:
        manifest = json.load(f)
    arch = architecture(binary)
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in f"{manifest['name']}-{manifest['target']}-{arch}")
    output = os.fspath(output) if output else os.path.join(os.path.dirname(os.path.abspath(bundle_dir)), stem + ".tar.gz")
    members = {"infer": open(binary, "rb").read(), "manifest.json": open(manifest_path, "rb").read()}
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members.items())
    members["SHA256SUMS"] = sums.encode()

    def write(f):
        with tarfile.open(fileobj=f, mode="w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(f"{stem}/{name}")
                info.size, info.mode = len(data), 0o755 if name == "infer" else 0o644
                tar.addfile(info, io.BytesIO(data))
    atomic_write(output, write)
    return output
