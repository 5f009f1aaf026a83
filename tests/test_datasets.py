"""Data set loaders against the published fingerprints, and their rejections of damaged files."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from sparsecl import SparseclError
from sparsecl.trainer import datasets, idx


def test_digits_split():
    d = datasets.load("digits")
    assert d.x_train.shape == (1437, 8, 8) and d.x_test.shape == (360, 8, 8) and d.classes == 10
    assert d.x_train.max() == 16 and d.x_train.min() == 0


def test_mnist_fingerprints():
    d = datasets.load("mnist")
    assert d.x_train.shape == (60000, 28, 28) and d.x_train.dtype == np.uint8 and d.x_test.shape == (10000, 28, 28)
    assert int(d.x_train.sum(dtype=np.int64)) == 1_567_298_545
    assert int(d.x_test.sum(dtype=np.int64)) == 264_923_200
    assert np.bincount(d.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(d.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist_splits():
    d = datasets.load("fashion-mnist")
    assert d.x_train.shape == (60000, 28, 28) and d.x_test.shape == (10000, 28, 28) and d.classes == 10
    assert np.bincount(d.y_train).tolist() == [6000] * 10 and np.bincount(d.y_test).tolist() == [1000] * 10


def write_idx(path, array, magic_type=0x08, gz=False):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if gz else blob)


def make_idx_folder(folder, n_train=12, n_test=5, gz=False):
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{ext}", rng.integers(0, 256, (n_train, 6, 5)), gz=gz)
    write_idx(folder / f"train-labels-idx1-ubyte{ext}", np.arange(n_train) % 3, gz=gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{ext}", rng.integers(0, 256, (n_test, 6, 5)), gz=gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{ext}", np.arange(n_test) % 3, gz=gz)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder(tmp_path, gz):
    make_idx_folder(tmp_path / "d", gz=gz)
    d = datasets.load(f"idx:{tmp_path / 'd'}")
    assert d.x_train.shape == (12, 6, 5) and d.x_test.shape == (5, 6, 5) and d.classes == 3


def test_corrupt_idx_files_give_one_line_errors(tmp_path):
    folder = tmp_path / "d"
    make_idx_folder(folder)
    images = folder / "train-images-idx3-ubyte"
    good = images.read_bytes()
    cases = {
        "bad magic": (b"\x01\x02" + good[2:], "magic"),
        "float type": (good[:2] + b"\x0d" + good[3:], "magic"),
        "truncated data": (good[:-7], "truncated"),
        "truncated header": (good[:9], "truncated IDX header"),
        "padded": (good + b"\0", "header says"),
        "empty": (b"", "magic"),
    }
    for desc, (content, fragment) in cases.items():
        images.write_bytes(content)
        with pytest.raises(SparseclError) as info:
            datasets.load(f"idx:{folder}")
        assert fragment in str(info.value) and "\n" not in str(info.value), desc
    images.write_bytes(good)
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(11) % 3)      # one label short
    with pytest.raises(SparseclError, match="12 train images but 11 labels"):
        datasets.load(f"idx:{folder}")
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(12) % 3)
    (folder / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(SparseclError, match="no t10k-images"):
        datasets.load(f"idx:{folder}")
    (folder / "bad.gz").write_bytes(b"\x1f\x8b not gzip")
    with pytest.raises(SparseclError):
        idx.read_idx(folder / "bad.gz")


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_tampered_mnist_pickle_is_refused_without_running_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(((_Evil(), 1), 2, 3), protocol=2)))
    with pytest.raises(SparseclError, match="refusing posix.system|refusing os.system"):
        datasets.read_mnist_pickle(path)
    assert not (tmp_path / "pwned").exists()
    # well-formed numpy content of the wrong shape is refused too
    x = np.zeros((3, 10), np.float32)
    path.write_bytes(gzip.compress(pickle.dumps(((x, np.zeros(3, np.int64)),) * 3, protocol=4)))
    with pytest.raises(SparseclError, match="unexpected content"):
        datasets.read_mnist_pickle(path)
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(SparseclError, match="not a valid MNIST pickle"):
        datasets.read_mnist_pickle(path)


def test_unknown_dataset():
    with pytest.raises(SparseclError, match="unknown dataset"):
        datasets.load("cifar-10")
