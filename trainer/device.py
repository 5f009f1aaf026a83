"""OpenCL platform and device choice.

A device is chosen by `--device` or `SPARSECL_DEVICE`: either `P:D` (platform and device index, as
`sparsecl devices` lists them) or a case-insensitive substring of the platform or device name. Without a
choice, the first GPU is taken, else the first device of any type.
"""

import os
from dataclasses import dataclass

from sparsecl import SparseclError

INSTALL_HINT = ("install an OpenCL driver, e.g. on Debian/Ubuntu: "
                "apt-get install pocl-opencl-icd ocl-icd-libopencl1")


@dataclass(frozen=True)
class DeviceInfo:
    platform_index: int
    device_index: int
    platform: str
    name: str
    kind: str
    version: str

    @property
    def key(self) -> str:
        return f"{self.platform_index}:{self.device_index}"


def _cl():
    import pyopencl as cl
    return cl


def list_devices():
    """Every (platform, device) pair the ICD loader sees, as (DeviceInfo, cl.Device)."""
    cl = _cl()
    try:
        platforms = cl.get_platforms()
    except cl.LogicError:  # PLATFORM_NOT_FOUND_KHR: an ICD loader with no driver registered
        platforms = []
    found = []
    for p_index, platform in enumerate(platforms):
        try:
            devices = platform.get_devices()
        except cl.Error:
            continue
        for d_index, device in enumerate(devices):
            info = DeviceInfo(p_index, d_index, platform.name.strip(), device.name.strip(),
                              cl.device_type.to_string(device.type), device.version.strip())
            found.append((info, device))
    return found


def choose_device(spec: str | None = None):
    """The (DeviceInfo, cl.Device) to use; spec falls back to $SPARSECL_DEVICE."""
    spec = spec if spec is not None else os.environ.get("SPARSECL_DEVICE") or None
    devices = list_devices()
    if not devices:
        raise SparseclError(f"no OpenCL platform found: {INSTALL_HINT}")
    if spec is None:
        gpus = [d for d in devices if "GPU" in d[0].kind]
        return (gpus or devices)[0]
    for pair in devices:
        if pair[0].key == spec.strip():
            return pair
    wanted = spec.lower()
    for pair in devices:
        if wanted in pair[0].name.lower() or wanted in pair[0].platform.lower():
            return pair
    known = ", ".join(f"{i.key} {i.name}" for i, _ in devices)
    raise SparseclError(f"no OpenCL device matches {spec!r} (have: {known})")


def create_context(spec: str | None = None):
    """(context, queue, DeviceInfo) for the chosen device."""
    cl = _cl()
    info, device = choose_device(spec)
    context = cl.Context([device])
    return context, cl.CommandQueue(context), info
