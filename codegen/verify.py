"""Build a bundle, run it on the test split, and compare it with the trainer's own inference."""

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from sparsecl import SparseclError


@dataclass
class Comparison:
    samples: int
    agreement: float        # top-1 agreement, bundle vs reference
    max_abs_diff: float     # max |logit difference|
    bundle_acc: float
    reference_acc: float

    def ok(self, tolerance: float) -> bool:
        return self.agreement == 1.0 and self.max_abs_diff <= tolerance


def compare(bundle_logits, reference_logits, labels) -> Comparison:
    diff = np.abs(bundle_logits.astype(np.float64) - reference_logits.astype(np.float64))
    return Comparison(len(labels),
                      float(np.mean(bundle_logits.argmax(1) == reference_logits.argmax(1))),
                      float(diff.max()) if diff.size else 0.0,
                      float(np.mean(bundle_logits.argmax(1) == labels)),
                      float(np.mean(reference_logits.argmax(1) == labels)))


def build(bundle_dir, make_args=(), timeout=600, binary="infer") -> str:
    """Run make in the bundle; the path of the binary built."""
    if not os.path.exists(os.path.join(bundle_dir, "manifest.json")):
        raise SparseclError(f"{bundle_dir} is not a bundle (no manifest.json)")
    try:
        result = subprocess.run(["make", "-C", bundle_dir, f"BIN={binary}", *make_args], capture_output=True,
                                text=True, timeout=timeout)
    except FileNotFoundError:
        raise SparseclError("make is not installed (apt-get install make gcc)") from None
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["?"]
        raise SparseclError(f"building {bundle_dir} failed: {last[0]}")
    return os.path.join(bundle_dir, binary)


FALLBACK = "using the plain C path"


def run_infer(binary, raw, extra_args=(), runner=(), env=None, timeout=600, messages=None) -> np.ndarray:
    """Logits from ./infer for raw inputs, through .npy files in a temporary folder. What the bundle
    said on stderr is appended to `messages` when given (an OpenCL bundle says when it fell back to C)."""
    with tempfile.TemporaryDirectory(prefix="sparsecl-verify-") as tmp:
        inp, out = os.path.join(tmp, "input.npy"), os.path.join(tmp, "logits.npy")
        np.save(inp, raw)
        result = subprocess.run([*runner, binary, inp, out, *extra_args], capture_output=True, text=True,
                                timeout=timeout, env=env)
        if result.returncode != 0:
            raise SparseclError(f"{binary} failed: {result.stderr.strip() or result.returncode}")
        if messages is not None:
            messages.extend(result.stderr.splitlines())
        return np.load(out, allow_pickle=False)


def manifest_of(bundle_dir) -> dict:
    try:
        with open(os.path.join(bundle_dir, "manifest.json")) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise SparseclError(f"{bundle_dir}: cannot read manifest.json ({e})") from None
