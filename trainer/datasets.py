"""Data sets as raw pixel values (the model file carries the normalisation, so bundles take raw input)."""

from dataclasses import dataclass

import numpy as np

from sparsecl import SparseclError


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


LOADERS = {"digits": load_digits}


def load(name: str) -> Dataset:
    loader = LOADERS.get(name)
    if loader is None:
        raise SparseclError(f"unknown dataset {name!r} (known: {', '.join(LOADERS)})")
    return loader()
