"""Lowering a model to a bundle plan: every decision about the generated code is made here, so the
templates only loop over the plan."""

import dataclasses
from dataclasses import dataclass

import numpy as np

from sparsecl import SparseclError
from sparsecl.reference import logits as reference_logits
from sparsecl.render import c_ident
from sparsecl.tiling import CONV_ROW, VECTOR

GOLDEN_SAMPLES = 8


@dataclass(frozen=True)
class Target:
    name: str
    opencl: bool          # bundle carries OpenCL kernels (and the plain C path as fallback)
    runtime: tuple        # files copied from runtime_c/


_COMMON = ("main.c", "sc_model.h", "sc_cpu.c", "sc_cpu.h", "sc_half.h", "sc_npy.c", "sc_npy.h", "sc_time.h",
           "sc_tune.c", "sc_tune.h")
_OPENCL = _COMMON + ("sc_cl.c", "sc_cl.h", "sc_clnet.c", "sc_clnet.h")
TARGETS = {
    "c": Target("c", False, _COMMON),
    "opencl": Target("opencl", True, _OPENCL),
    # OpenCL 1.2 embedded-profile-safe kernels for Mali GPUs; every OpenCL target is linted the same way.
    "mali": Target("mali", True, _OPENCL),
}
PRECISIONS = {"fp32": "float", "fp16": "half"}


def index_type(columns: int) -> str:
    """The narrowest OpenCL type that holds every column index of a layer with this many columns.

    >>> index_type(200), index_type(800), index_type(70000)
    ('uchar', 'ushort', 'int')
    """
    return "uchar" if columns <= 256 else "ushort" if columns <= 65536 else "int"


INDEX_BYTES = {"uchar": 1, "ushort": 2, "int": 4}
NUMPY_INDEX = {"uchar": np.uint8, "ushort": np.uint16, "int": np.int32}


# Fully connected layers come in three variants, all rendered from templates/kernels/csr.cl.j2 (and the
# same loops in runtime_c/sc_cpu.c), all summing the bias and then the nonzeros of a row in order:
#   csr       the CSR loop: values, narrow column indices, row pointers;
#   dense     every weight stored, no indices: where that takes no more bytes than CSR (high density);
#   unrolled  every nonzero a literal in the code, one multiply-add each: no index or value loads, for
#             layers small enough that the code stays in the instruction cache.
VARIANTS = ("csr", "dense", "unrolled")
UNROLL_MAX_NNZ = 512
# Unrolling more nonzeros than this makes compile times and binaries explode (14,400 nonzeros: 8 s of gcc
# and a 393 KB binary, slower than the CSR loop), so larger layers are never tried unrolled.
UNROLL_CANDIDATE_MAX = 8192


@dataclass
class LayerPlan:
    ident: str            # C identifier and kernel prefix
    name: str             # the name in the model file
    kind: str             # "csr" (fully connected), "conv" (convolution, CSR filters) or "pool"
    geometry: object      # sparsecl.geometry: Dense, Conv2d or MaxPool2d
    relu: bool
    rowptr: np.ndarray = None
    cols: np.ndarray = None
    vals: np.ndarray = None        # float32 (fp32) or float16 (fp16), as stored
    bias: np.ndarray = None
    variant: str = ""              # fully connected: one of VARIANTS; else the kind
    why: str = ""                  # how the variant was chosen, for manifest.json
    tunable: bool = False          # the bundle carries every variant; the board picks (infer --autotune)

    @property
    def candidates(self) -> tuple:
        """The variants worth trying for a fully connected layer (unrolled too where it was chosen)."""
        return VARIANTS if self.nnz <= UNROLL_CANDIDATE_MAX or self.variant == "unrolled" else VARIANTS[:2]

    @property
    def index_type(self) -> str:
        return index_type(self.geometry.weight_shape[1])

    @property
    def value_type(self) -> str:
        return "half" if self.vals.dtype == np.float16 else "float"

    @property
    def stored_cols(self) -> np.ndarray:
        return self.stored(self.cols.astype(NUMPY_INDEX[self.index_type]))

    @property
    def stored_vals(self) -> np.ndarray:
        """Values as C will hold them: floats, or the bit patterns of halves."""
        vals = self.stored(self.vals)
        return vals.view(np.uint16) if vals.dtype == np.float16 else vals

    @property
    def n_in(self) -> int:
        return self.geometry.n_in

    @property
    def n_out(self) -> int:
        return self.geometry.n_out

    @property
    def params(self) -> int:
        shape = self.geometry.weight_shape
        return shape[0] * shape[1] if shape else 0

    @property
    def nnz(self) -> int:
        return 0 if self.vals is None else int(len(self.vals))

    @property
    def density(self) -> float:
        return self.nnz / self.params if self.params else 0.0

    @property
    def storage(self) -> str:
        """The weight arrays model.c holds: "csr" (convolutions, CSR layers, and every tunable layer, whose
        dense form the runtime builds), "dense" (every weight, no indices) or "unrolled" (none: code)."""
        return "csr" if self.tunable or self.variant in ("csr", "conv") else self.variant

    @property
    def unrolled_code(self) -> bool:
        """model.c has the layer's unrolled function: its variant, or a candidate of a tunable layer."""
        return self.variant == "unrolled" or (self.tunable and "unrolled" in self.candidates)

    @property
    def value_bytes(self) -> int:
        """Bytes of weight values (for unrolled layers, as literals in the code)."""
        if self.vals is None:
            return 0
        return self.vals.itemsize * (self.params if self.storage == "dense" else self.nnz)

    @property
    def index_bytes(self) -> int:
        if self.rowptr is None or self.storage != "csr":
            return 0
        return 4 * len(self.rowptr) + INDEX_BYTES[self.index_type] * self.nnz

    @property
    def dense_vals(self) -> np.ndarray:
        """Every weight, row-major, as C holds them (the dense variant)."""
        rows, cols = self.geometry.weight_shape
        full = np.zeros(rows * cols, self.vals.dtype)
        full[np.repeat(np.arange(rows), np.diff(self.rowptr)) * cols + self.cols] = self.vals
        return full.view(np.uint16) if full.dtype == np.float16 else full

    @property
    def rows(self) -> list:
        """[(bias, [(column, value as float32), ...]) per row]: what an unrolled layer spells out."""
        vals = self.vals.astype(np.float32)
        return [(self.bias[i], list(zip(self.cols[self.rowptr[i]:self.rowptr[i + 1]].tolist(),
                                        vals[self.rowptr[i]:self.rowptr[i + 1]])))
                for i in range(len(self.rowptr) - 1)]

    @property
    def conv(self) -> dict:
        """The convolution or pooling shape as the C layer table and kernels want it."""
        g = self.geometry
        if self.kind == "csr":
            return dict(c_in=0, h=0, w=0, c_out=0, oh=0, ow=0, k=0, pad=0, tile=0)
        c, h, w = g.in_shape
        c_out, oh, ow = g.out_shape
        k, pad = (g.kernel, g.pad) if self.kind == "conv" else (2, 0)
        return dict(c_in=c, h=h, w=w, c_out=c_out, oh=oh, ow=ow, k=k, pad=pad,
                    tile=CONV_ROW if self.kind == "conv" else 0)

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

    @property
    def tunable(self) -> bool:
        return any(l.tunable for l in self.layers)

    @property
    def fused(self) -> bool:
        """OpenCL bundles also carry the whole network as one kernel, which the runtime launches for
        batches below vector_width (one launch instead of one per layer)."""
        return self.target.opencl


def choose_variant(layer: LayerPlan):
    """The cost model: (variant, why) for a fully connected layer, from the bytes each variant reads."""
    dense_bytes = layer.vals.itemsize * layer.params
    csr_bytes = (layer.vals.itemsize + INDEX_BYTES[layer.index_type]) * layer.nnz + 4 * len(layer.rowptr)
    if dense_bytes <= csr_bytes:
        return "dense", f"cost model: dense weights take {dense_bytes} bytes, CSR {csr_bytes}"
    if layer.nnz <= UNROLL_MAX_NNZ:
        return "unrolled", f"cost model: {layer.nnz} nonzeros (at most {UNROLL_MAX_NNZ}) fit the code as literals"
    return "csr", f"cost model: CSR takes {csr_bytes} bytes, dense {dense_bytes}; {layer.nnz} nonzeros are " \
                  f"too many to unroll"


def plan(model, target: str, precision: str = "fp32", golden_input=None, variants=None,
         tunable=False) -> BundlePlan:
    """variants: {layer name: variant, or (variant, why)} overrides the cost model for fully connected
    layers (autotuning, --variant); the name "*" applies to all of them. tunable: every fully connected
    layer carries all its candidate variants, the chosen one being the default until the board tunes."""
    if target not in TARGETS:
        raise SparseclError(f"unknown target {target!r} (known: {', '.join(TARGETS)})")
    if precision not in PRECISIONS:
        raise SparseclError(f"unknown precision {precision!r} (use fp32 or fp16)")
    value_dtype = np.float16 if precision == "fp16" else np.float32
    layers, idents = [], set()
    for index, layer in enumerate(model.layers):
        ident = c_ident(layer.name, prefix="layer")
        if ident in idents:
            ident = f"{ident}_{index}"
        idents.add(ident)
        if layer.kind == "maxpool2d":
            layers.append(LayerPlan(ident, layer.name, "pool", layer.geometry, False, variant="pool"))
            continue
        w = layer.weights
        if value_dtype == np.float16 and np.abs(w.data).max(initial=0) > np.finfo(np.float16).max:
            raise SparseclError(f"layer {layer.name!r} has weights beyond the fp16 range; use --precision fp32")
        lp = LayerPlan(ident, layer.name, "conv" if layer.kind == "conv2d" else "csr", layer.geometry, layer.relu,
                       w.indptr.astype(np.int32), w.indices.astype(np.int32), w.data.astype(value_dtype),
                       layer.bias.astype(np.float32), variant="conv")
        if lp.kind == "csr":
            lp.variant, lp.why = choose_variant(lp)
            choice = (variants or {}).get(layer.name, (variants or {}).get("*"))
            if choice:
                lp.variant, lp.why = choice if isinstance(choice, tuple) else (choice, "chosen by the user")
                if lp.variant not in VARIANTS:
                    raise SparseclError(f"unknown kernel variant {lp.variant!r} (known: {', '.join(VARIANTS)})")
            lp.tunable = tunable
        layers.append(lp)
    if golden_input is None:
        golden_input = np.random.default_rng(0).uniform(0, 1, (GOLDEN_SAMPLES, model.input_size))
    golden_input = np.asarray(golden_input, np.float32).reshape(-1, model.input_size)
    return BundlePlan(
        name=model.name, target=TARGETS[target], precision=precision, input_shape=tuple(model.input_shape),
        input_size=model.input_size, classes=model.classes,
        max_width=max([model.input_size] + [l.n_out for l in model.layers]),
        mean=model.preprocess["mean"], scale=model.preprocess["scale"], layers=layers,
        golden_input=golden_input, golden_logits=reference_logits(as_stored(model, value_dtype), golden_input))


def as_stored(model, value_dtype):
    """The model with its weights rounded as the bundle stores them, for the golden logits."""
    if value_dtype == np.float32:
        return model
    layers = []
    for layer in model.layers:
        if layer.weights is not None:
            w = layer.weights.copy()
            w.data = w.data.astype(value_dtype).astype(np.float32)
            layer = dataclasses.replace(layer, weights=w)
        layers.append(layer)
    return dataclasses.replace(model, layers=layers)
