"""Reading IDX files (the MNIST format), plain or gzipped, with every header field checked."""

import gzip
import os

import numpy as np

from sparsecl import SparseclError

_TYPES = {0x08: np.uint8}
MAX_ITEMS = 1 << 31


def read_idx(path) -> np.ndarray:
    """The array in an IDX file (unsigned bytes only, as MNIST-style data sets use)."""
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as f:
            blob = f.read()
    except OSError as e:           # includes gzip's BadGzipFile
        raise SparseclError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    except EOFError:
        raise SparseclError(f"{path}: truncated gzip stream") from None
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] not in _TYPES or not 1 <= blob[3] <= 4:
        raise SparseclError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = blob[3]
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise SparseclError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(blob[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    count = int(np.prod(dims, dtype=np.int64))
    if count > MAX_ITEMS:
        raise SparseclError(f"{path}: IDX dimensions {dims} are too large")
    if len(blob) - header != count:
        raise SparseclError(f"{path}: IDX data holds {len(blob) - header} bytes, the header says {count} "
                            "(truncated or corrupt)")
    return np.frombuffer(blob, dtype=_TYPES[blob[2]], offset=header).reshape(dims)


def find(folder, stem) -> str:
    """folder/stem or folder/stem.gz, whichever exists (the usual names use '-' or '.' before 'idx')."""
    for name in (stem, stem.replace("-idx", ".idx")):
        for candidate in (name, name + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.exists(path):
                return path
    raise SparseclError(f"{folder}: no {stem} or {stem}.gz")


def load_split(folder, prefix):
    """(images, labels) of one split ('train' or 't10k'), checked against each other."""
    images = read_idx(find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find(folder, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1:
        raise SparseclError(f"{folder}: {prefix} images must be 3-D and labels 1-D")
    if len(images) != len(labels):
        raise SparseclError(f"{folder}: {len(images)} {prefix} images but {len(labels)} labels")
    return images, labels.astype(np.int32)
