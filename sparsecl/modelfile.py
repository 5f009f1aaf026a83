"""The model file: the one interface between the trainer and the code generator.

A model file is an uncompressed `.npz` (a zip of `.npy` arrays, loaded with `allow_pickle=False`, so
loading never executes anything). It holds:

- `meta.json`: a uint8 array of UTF-8 JSON: format name and version, model name, architecture, dataset,
  input shape, classes, preprocessing (`x = (raw - mean) * scale`), the layer list and a training record;
- per layer with weights, `<name>.indptr`, `<name>.indices` (int32), `<name>.data` (float32): the weights
  in CSR form (rows = output units or filters; a filter's columns are (channel, row, column) of its
  kernel), and `<name>.bias` (float32). Max-pooling layers have no arrays.

Everything is validated on load; a malformed or foreign file raises a SparseclError naming the problem.
"""

import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from sparsecl import SparseclError
from sparsecl.geometry import Conv2d, Dense, MaxPool2d

FORMAT = "sparsecl-model"
VERSION = 1
LAYER_KINDS = ("dense", "conv2d", "maxpool2d")
MAX_FEATURES = 1 << 24      # one dimension of a layer
MAX_PARAMS = 1 << 28        # dense weight entries of one layer (1 GiB as float32)


@dataclass
class Layer:
    name: str
    kind: str                    # "dense", "conv2d" or "maxpool2d"
    n_in: int                    # features in and out
    n_out: int
    relu: bool
    weights: sp.csr_matrix       # geometry.weight_shape, float32 values, int32 sorted indices; None for pooling
    bias: np.ndarray             # (geometry.bias_size,) float32; None for pooling
    geometry: object = None      # Dense, Conv2d or MaxPool2d; Dense(n_in, n_out) when not given

    def __post_init__(self):
        if self.geometry is None:
            self.geometry = Dense(self.n_in, self.n_out)

    @property
    def nnz(self) -> int:
        return 0 if self.weights is None else int(self.weights.nnz)

    @property
    def params(self) -> int:
        shape = self.geometry.weight_shape
        return 0 if shape is None else shape[0] * shape[1]


@dataclass
class Model:
    name: str
    arch: str
    dataset: str
    input_shape: tuple
    classes: int
    preprocess: dict             # {"mean": float, "scale": float}
    layers: list
    training: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def nnz(self) -> int:
        return sum(layer.nnz for layer in self.layers)


def to_csr(dense: np.ndarray) -> sp.csr_matrix:
    """The canonical CSR form of a dense weight matrix: exact zeros dropped, int32 sorted indices."""
    matrix = sp.csr_matrix(np.asarray(dense, dtype=np.float32))
    matrix.eliminate_zeros()
    matrix.sort_indices()
    matrix.indptr = matrix.indptr.astype(np.int32)
    matrix.indices = matrix.indices.astype(np.int32)
    return matrix


def save(model: Model, path) -> None:
    """Write the model file atomically: a temporary file in the same folder, then a rename."""
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "name": model.name,
        "arch": model.arch,
        "dataset": model.dataset,
        "input_shape": [int(d) for d in model.input_shape],
        "classes": int(model.classes),
        "preprocess": {k: float(v) for k, v in model.preprocess.items()},
        "layers": [{"name": l.name, "kind": l.kind, "in": l.n_in, "out": l.n_out, "relu": bool(l.relu),
                    **l.geometry.describe()} for l in model.layers],
        "training": model.training,
    }
    arrays = {"meta.json": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    for l in (l for l in model.layers if l.weights is not None):
        arrays[f"{l.name}.indptr"] = l.weights.indptr.astype(np.int32)
        arrays[f"{l.name}.indices"] = l.weights.indices.astype(np.int32)
        arrays[f"{l.name}.data"] = l.weights.data.astype(np.float32)
        arrays[f"{l.name}.bias"] = np.asarray(l.bias, dtype=np.float32)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def atomic_write(path, write) -> None:
    """Call write(file) on a temporary file beside path, then rename it over path."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)        # mkstemp's 0600 would hide the file from other users
    except OSError as e:
        raise SparseclError(f"cannot write {path}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise SparseclError(f"cannot write {path}: {e.strerror}") from None
    except BaseException:
        os.unlink(tmp)
        raise


def load(path) -> Model:
    """Read and validate a model file."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise SparseclError(f"cannot read model {path}: {e.strerror}") from None
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise SparseclError(f"{path}: refusing an array that needs pickle (not a sparsecl model)") from None
        raise SparseclError(f"{path}: not a sparsecl model file ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError, zipfile.LargeZipFile) as e:
        raise SparseclError(f"{path}: not a sparsecl model file ({type(e).__name__})") from None
    try:
        return _parse(arrays)
    except _Invalid as e:
        raise SparseclError(f"{path}: {e}") from None


class _Invalid(Exception):
    pass


def _check(condition, message):
    if not condition:
        raise _Invalid(message)


def _int(value, what, low=1, high=MAX_FEATURES):
    _check(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
           f"{what} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _parse(arrays) -> Model:
    _check("meta.json" in arrays, "not a sparsecl model file (no meta.json)")
    raw = arrays["meta.json"]
    _check(raw.dtype == np.uint8 and raw.ndim == 1, "meta.json must be a uint8 byte array")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _Invalid(f"meta.json is not valid JSON ({e})") from None
    _check(isinstance(meta, dict) and meta.get("format") == FORMAT, "not a sparsecl model file (format)")
    _check(meta.get("version") == VERSION,
           f"unsupported model format version {meta.get('version')!r} (this sparsecl reads {VERSION})")
    for key in ("name", "arch", "dataset", "input_shape", "classes", "preprocess", "layers"):
        _check(key in meta, f"meta.json lacks {key!r}")
    shape = meta["input_shape"]
    _check(isinstance(shape, list) and 1 <= len(shape) <= 4, "input_shape must be a list of 1 to 4 sizes")
    shape = tuple(_int(d, "input_shape entry") for d in shape)
    _check(int(np.prod(shape)) <= MAX_FEATURES, "input_shape is too large")
    classes = _int(meta["classes"], "classes", 2)
    pre = meta["preprocess"]
    _check(isinstance(pre, dict) and set(pre) == {"mean", "scale"}, "preprocess must have mean and scale")
    for key, value in pre.items():
        _check(isinstance(value, (int, float)) and np.isfinite(value), f"preprocess {key} must be finite")
    specs = meta["layers"]
    _check(isinstance(specs, list) and specs, "layers must be a non-empty list")
    _check(len(specs) <= 64, "too many layers")

    layers, names, width = [], set(), int(np.prod(shape))
    for index, spec in enumerate(specs):
        _check(isinstance(spec, dict), f"layer {index} is not an object")
        name = spec.get("name")
        _check(isinstance(name, str) and name and name not in names, f"layer {index} has a bad or repeated name")
        names.add(name)
        kind = spec.get("kind")
        _check(kind in LAYER_KINDS, f"layer {name!r} has unknown kind {kind!r}")
        n_in = _int(spec.get("in"), f"layer {name!r} in")
        n_out = _int(spec.get("out"), f"layer {name!r} out")
        _check(n_in == width, f"layer {name!r} takes {n_in} inputs but receives {width}")
        _check(isinstance(spec.get("relu"), bool), f"layer {name!r}: relu must be true or false")
        geometry = _geometry(spec, name, kind, n_in, n_out)
        if kind == "maxpool2d":
            _check(not spec["relu"], f"layer {name!r}: pooling has no ReLU of its own")
            layers.append(Layer(name, kind, n_in, n_out, False, None, None, geometry))
        else:
            layers.append(_parse_layer(arrays, name, kind, n_in, n_out, spec["relu"], geometry))
        width = n_out
    _check(width == classes, f"the last layer has {width} outputs but the model has {classes} classes")
    _check(not layers[-1].relu, "the last layer must output logits (no ReLU)")
    training = meta.get("training", {})
    _check(isinstance(training, dict), "training must be an object")
    return Model(str(meta["name"]), str(meta["arch"]), str(meta["dataset"]), shape, classes,
                 {k: float(v) for k, v in pre.items()}, layers, training)


def _array(arrays, key, dtype, ndim=1):
    _check(key in arrays, f"missing array {key!r}")
    a = arrays[key]
    _check(a.dtype == dtype and a.ndim == ndim, f"{key} must be {np.dtype(dtype).name} with {ndim} dimension(s)")
    return a


def _geometry(spec, name, kind, n_in, n_out):
    if kind == "dense":
        _check(n_in * n_out <= MAX_PARAMS, f"layer {name!r} is too large ({n_out}x{n_in})")
        return Dense(n_in, n_out)
    shape = spec.get("in_shape")
    _check(isinstance(shape, list) and len(shape) == 3, f"layer {name!r}: in_shape must be [channels, height, width]")
    shape = tuple(_int(d, f"layer {name!r} in_shape entry", 1, 1 << 16) for d in shape)
    _check(shape[0] * shape[1] * shape[2] == n_in, f"layer {name!r}: in_shape {list(shape)} does not hold {n_in} inputs")
    if kind == "maxpool2d":
        geometry = MaxPool2d(shape)
        _check(shape[1] >= 2 and shape[2] >= 2, f"layer {name!r}: pooling needs at least 2x2 inputs")
    else:
        kernel = _int(spec.get("kernel"), f"layer {name!r} kernel", 1, 63)
        channels = _int(spec.get("out_channels"), f"layer {name!r} out_channels", 1, 1 << 16)
        padding = spec.get("padding")
        _check(padding in ("valid", "same"), f"layer {name!r}: padding must be valid or same")
        _check(padding == "valid" or kernel % 2, f"layer {name!r}: same padding needs an odd kernel")
        _check(padding == "same" or kernel <= min(shape[1:]), f"layer {name!r}: kernel larger than its input")
        geometry = Conv2d(shape, channels, kernel, padding)
        rows, cols = geometry.weight_shape
        _check(rows * cols <= MAX_PARAMS, f"layer {name!r} is too large")
    _check(geometry.n_out == n_out, f"layer {name!r}: gives {geometry.n_out} outputs, not {n_out}")
    return geometry


def _parse_layer(arrays, name, kind, n_in, n_out, relu, geometry) -> Layer:
    rows, cols = geometry.weight_shape
    indptr = _array(arrays, f"{name}.indptr", np.int32)
    indices = _array(arrays, f"{name}.indices", np.int32)
    data = _array(arrays, f"{name}.data", np.float32)
    bias = _array(arrays, f"{name}.bias", np.float32)
    _check(len(indptr) == rows + 1, f"{name}.indptr has {len(indptr)} entries, expected {rows + 1}")
    _check(indptr[0] == 0, f"{name}.indptr must start at 0")
    _check(np.all(np.diff(indptr) >= 0), f"{name}.indptr is not monotone")
    nnz = int(indptr[-1])
    _check(len(indices) == nnz and len(data) == nnz,
           f"{name}: nnz mismatch (indptr says {nnz}, {len(indices)} indices, {len(data)} values)")
    _check(nnz <= rows * cols, f"{name}: more nonzeros than weights")
    if nnz:
        _check(indices.min() >= 0 and indices.max() < cols, f"{name}: column index out of range [0, {cols})")
    _check(np.all(np.isfinite(data)), f"{name}: weights contain NaN or infinity")
    _check(bias.shape == (rows,), f"{name}.bias has shape {bias.shape}, expected ({rows},)")
    _check(np.all(np.isfinite(bias)), f"{name}: biases contain NaN or infinity")
    weights = sp.csr_matrix((data, indices, indptr), shape=(rows, cols))
    _check(weights.has_sorted_indices and not _has_duplicates(indptr, indices),
           f"{name}: column indices must be sorted and unique within each row")
    return Layer(name, kind, n_in, n_out, relu, weights, bias, geometry)


def _has_duplicates(indptr, indices) -> bool:
    same_row = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return bool(np.any((np.diff(indices) == 0) & (np.diff(same_row) == 0)))
