"""Named architectures and `mlp:H1,H2,...`, as lists of layer specifications."""

from sparsecl import SparseclError

NAMED = {"lenet-300-100": "mlp:300,100"}


def layer_specs(arch: str, n_in: int, classes: int):
    """[(name, kind, n_in, n_out, relu)] for an architecture string."""
    spec = NAMED.get(arch, arch)
    if not spec.startswith("mlp:"):
        raise SparseclError(f"unknown architecture {arch!r} (use mlp:H1,H2,... or one of {', '.join(NAMED)})")
    try:
        hidden = [int(h) for h in spec[4:].split(",") if h.strip()]
    except ValueError:
        raise SparseclError(f"bad architecture {arch!r}: hidden widths must be integers") from None
    if not hidden or any(h < 1 or h > 65536 for h in hidden):
        raise SparseclError(f"bad architecture {arch!r}: give 1 or more widths in 1..65536")
    widths = [n_in] + hidden + [classes]
    return [(f"fc{i + 1}", "dense", widths[i], widths[i + 1], i + 1 < len(widths) - 1)
            for i in range(len(widths) - 1)]
