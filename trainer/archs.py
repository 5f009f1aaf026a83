"""Architectures: named ones, `mlp:H1,H2,...` and `cnn:...`, as lists of (name, geometry, relu).

`cnn:` takes comma-separated layers: `NcK` is a convolution with N filters of KxK (valid padding; `NcKs`
keeps the size), `pool` a 2x2 max-pooling, and a plain number a dense layer of that width. The classifier
layer (as many outputs as classes, no ReLU) is always added at the end.
"""

import re

import numpy as np

from sparsecl import SparseclError
from sparsecl.geometry import Conv2d, Dense, MaxPool2d, image_shape

NAMED = {"lenet-300-100": "mlp:300,100", "lenet-5": "cnn:20c5,pool,50c5,pool,500"}


def layer_specs(arch: str, input_shape, classes: int):
    spec = NAMED.get(arch, arch)
    if spec.startswith("mlp:"):
        tokens = spec[4:].split(",")
        if not all(re.fullmatch(r"\s*\d+\s*", t) for t in tokens):
            raise SparseclError(f"bad architecture {arch!r}: mlp: takes hidden widths, e.g. mlp:300,100")
    elif spec.startswith("cnn:"):
        tokens = spec[4:].split(",")
    else:
        raise SparseclError(f"unknown architecture {arch!r} (use mlp:H1,H2,..., cnn:..., or one of "
                            f"{', '.join(NAMED)})")
    layers, shape = [], tuple(input_shape)
    counts = {"conv": 0, "pool": 0, "fc": 0}

    def name(kind):
        counts[kind] += 1
        return f"{kind}{counts[kind]}"

    for token in (t.strip() for t in tokens):
        conv = re.fullmatch(r"(\d+)c(\d+)(s?)", token)
        if conv or token == "pool":
            try:
                image = image_shape(shape)
            except ValueError:
                raise SparseclError(f"bad architecture {arch!r}: {token} needs image input, not {shape}") from None
            if conv:
                filters, kernel, same = int(conv.group(1)), int(conv.group(2)), conv.group(3) == "s"
                geometry = Conv2d(image, filters, kernel, "same" if same else "valid")
                if filters < 1 or kernel < 1 or (same and kernel % 2 == 0) or min(geometry.out_shape) < 1:
                    raise SparseclError(f"bad architecture {arch!r}: {token} does not fit input {image}")
                layers.append((name("conv"), geometry, True))
            else:
                geometry = MaxPool2d(image)
                if min(geometry.out_shape) < 1:
                    raise SparseclError(f"bad architecture {arch!r}: pool does not fit input {image}")
                layers.append((name("pool"), geometry, False))
            shape = geometry.out_shape
        elif re.fullmatch(r"\d+", token) and 1 <= int(token) <= 65536:
            geometry = Dense(int(np.prod(shape)), int(token))
            layers.append((name("fc"), geometry, True))
            shape = (geometry.n_out,)
        else:
            raise SparseclError(f"bad architecture {arch!r}: cannot read layer {token!r}")
    layers.append((name("fc"), Dense(int(np.prod(shape)), classes), False))
    return layers
