"""Lowering a model to a bundle plan: every decision about the generated code is made here, so the
templates only loop over the plan."""

from dataclasses import dataclass

import numpy as np

from sparsecl import SparseclError
from sparsecl.reference import logits as reference_logits
from sparsecl.render import c_ident
from sparsecl.tiling import VECTOR

GOLDEN_SAMPLES = 8


@dataclass(frozen=True)
class Target:
    name: str
    opencl: bool          # bundle carries OpenCL kernels (and the plain C path as fallback)
    runtime: tuple        # files copied from runtime_c/


_COMMON = ("main.c", "sc_model.h", "sc_cpu.c", "sc_cpu.h", "sc_npy.c", "sc_npy.h", "sc_time.h")
TARGETS = {
    "c": Target("c", False, _COMMON),
    "opencl": Target("opencl", True, _COMMON + ("sc_cl.c", "sc_cl.h", "sc_clnet.c", "sc_clnet.h")),
}


@dataclass
class LayerPlan:
    ident: str            # C identifier and kernel prefix
    name: str             # the name in the model file
    kind: str             # "csr"
    n_in: int
    n_out: int
    relu: bool
    rowptr: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    bias: np.ndarray

    @property
    def nnz(self) -> int:
        return int(len(self.vals))

    @property
    def density(self) -> float:
        return self.nnz / (self.n_in * self.n_out)

    @property
    def value_bytes(self) -> int:
        return 4 * self.nnz

    @property
    def index_bytes(self) -> int:
        return 4 * (len(self.rowptr) + self.nnz)

    def stored(self, array):
        """C forbids empty arrays: an empty layer stores one unused zero."""
        return array if len(array) else np.zeros(1, array.dtype)


@dataclass
class BundlePlan:
    name: str
    target: Target
    precision: str
    input_shape: tuple
    input_size: int
    classes: int
    max_width: int
    mean: float
    scale: float
    layers: list
    golden_input: np.ndarray
    golden_logits: np.ndarray
    vector_width: int = VECTOR    # samples per work-item in the OpenCL kernels


def plan(model, target: str, precision: str = "fp32", golden_input=None) -> BundlePlan:
    if target not in TARGETS:
        raise SparseclError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    if precision != "fp32":
        raise SparseclError(f"precision {precision!r} is not supported by target {target!r} (use fp32)")
    layers, idents = [], set()
    for index, layer in enumerate(model.layers):
        ident = c_ident(layer.name, prefix="layer")
        if ident in idents:
            ident = f"{ident}_{index}"
        idents.add(ident)
        w = layer.weights
        layers.append(LayerPlan(ident, layer.name, "csr", layer.n_in, layer.n_out, layer.relu,
                                w.indptr.astype(np.int32), w.indices.astype(np.int32),
                                w.data.astype(np.float32), layer.bias.astype(np.float32)))
    if golden_input is None:
        golden_input = np.random.default_rng(0).uniform(0, 1, (GOLDEN_SAMPLES, model.input_size))
    golden_input = np.asarray(golden_input, np.float32).reshape(-1, model.input_size)
    return BundlePlan(
        name=model.name, target=TARGETS[target], precision=precision, input_shape=tuple(model.input_shape),
        input_size=model.input_size, classes=model.classes,
        max_width=max([model.input_size] + [l.n_out for l in model.layers]),
        mean=model.preprocess["mean"], scale=model.preprocess["scale"], layers=layers,
        golden_input=golden_input, golden_logits=reference_logits(model, golden_input))
