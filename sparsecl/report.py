"""`sparsecl report`: PNG plots and a one-page HTML summary of a trained model (and its bundle).

- training.png: loss, accuracy and per-layer density against epoch, from the log in the model file;
- sparsity.png: where each layer's nonzero weights are;
- bytes.png: what storing the weights costs: dense fp32, the ONNX file, plain CSR (fp32 values, int32
  indices) and the bundle's own storage (values and indices from manifest.json, code = the built binary);
- pareto.png: test error against nonzeros, when a sweep's results.csv is given.
"""

import html
import json
import os

import numpy as np

from sparsecl import SparseclError


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        raise SparseclError("reports need matplotlib: pip install 'sparsecl[report]'") from None


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    _plt().close(fig)


def training_plot(model, path):
    plt = _plt()
    log = model.training.get("log", [])
    if not log:
        raise SparseclError("the model file has no training log to plot")
    epochs = np.arange(1, len(log) + 1)
    weighted = [l.name for l in model.layers if l.weights is not None]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot(epochs, [h["loss"] for h in log], label="training loss")
    axes[0].set_yscale("log")
    axes[1].plot(epochs, [h["train_acc"] for h in log], label="training (augmented batches)")
    axes[1].plot(epochs, [h["test_acc"] for h in log], label="test")
    for i, name in enumerate(weighted):
        axes[2].plot(epochs, [100 * h["density"][i] for h in log], label=name)
    axes[2].set_yscale("log")
    debias = next((i + 1 for i, h in enumerate(log) if h["phase"] == "debias"), None)
    titles = ["loss", "accuracy", "weights nonzero (%)"]
    for ax, title in zip(axes, titles):
        if debias:
            ax.axvline(debias - 0.5, color="grey", linestyle=":", label="debiasing starts")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{model.name}: training")
    _save(fig, path)


def sparsity_plot(model, path):
    plt = _plt()
    layers = [l for l in model.layers if l.weights is not None]
    fig, axes = plt.subplots(1, len(layers), figsize=(4.2 * len(layers), 4.2))
    for ax, layer in zip(np.atleast_1d(axes), layers):
        rows, cols = layer.weights.shape
        # The share of nonzeros in cells of at most 300 x 300, so single weights stay visible when a large
        # matrix is drawn small.
        r_edges = np.linspace(0, rows, min(rows, 300) + 1).astype(int)
        c_edges = np.linspace(0, cols, min(cols, 300) + 1).astype(int)
        coo = layer.weights.tocoo()
        cells, _, _ = np.histogram2d(coo.row, coo.col, bins=[r_edges, c_edges])
        area = np.outer(np.diff(r_edges), np.diff(c_edges))
        ax.imshow(cells / area, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest",
                  extent=(0, cols, rows, 0))
        unit = "filter" if layer.kind == "conv2d" else "unit"
        ax.set_title(f"{layer.name}: {layer.nnz} of {layer.params} ({100 * layer.nnz / layer.params:.1f}%)", fontsize=9)
        ax.set_xlabel("input" if layer.kind == "dense" else "(channel, ky, kx)")
        ax.set_ylabel(f"output {unit}")
    fig.suptitle(f"{model.name}: nonzero weights")
    _save(fig, path)


def byte_sizes(model, manifest=None, binary=None) -> dict:
    """{label: {part: bytes}} for the bar chart and the summary."""
    layers = [l for l in model.layers if l.weights is not None]
    sizes = {"dense fp32": {"values": 4 * model.params},
             "CSR fp32/int32": {"values": 4 * model.nnz,
                                "indices": sum(4 * (l.weights.shape[0] + 1 + l.nnz) for l in layers)}}
    try:
        from sparsecl.codegen.onnx_export import build
        sizes["ONNX file"] = {"values": len(build(model).SerializeToString())}
    except SparseclError:
        pass
    if manifest:
        values = sum(l["value_bytes"] for l in manifest["layers"])
        indices = sum(l["index_bytes"] for l in manifest["layers"])
        bundle = {"values": values, "indices": indices}
        if binary and os.path.exists(binary):     # the binary holds the weights: code is the rest of it
            bundle["code"] = max(0, os.path.getsize(binary) - values - indices)
        sizes[f"bundle ({manifest['target']}, {manifest['precision']})"] = bundle
    return sizes


def bytes_plot(sizes, name, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    labels = list(sizes)
    left = np.zeros(len(labels))
    for part, color in (("values", "tab:blue"), ("indices", "tab:orange"), ("code", "tab:grey")):
        widths = np.array([sizes[l].get(part, 0) for l in labels], float) / 1024
        ax.barh(labels, widths, left=left, color=color, label=part)
        left += widths
    for y, total in enumerate(left):
        ax.text(total, y, f" {total:,.0f} KiB", va="center", fontsize=8)
    ax.set_xlabel("KiB")
    ax.set_xlim(0, left.max() * 1.25)
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{name}: bytes of weights")
    _save(fig, path)


# The same colour for a method in every plot.
COLORS = {"prox-debias": "tab:blue", "prox-debias + l1 warm-up": "tab:cyan", "prox": "tab:green",
          "prox + l1 warm-up": "tab:olive", "pruning": "tab:red", "subgradient": "tab:purple",
          "dense": "tab:gray"}


def pareto_plot(rows, path, title=""):
    """Test error against nonzeros from results rows (see sparsecl.sweep), both on log scales: every run
    as a point, each method's own Pareto front as a line (runs with an l1 warm-up form their own series)."""
    from sparsecl.sweep import pareto
    plt = _plt()

    def series(row):
        return row["method"] + (" + l1 warm-up" if "warmup=" in row["setting"] else "")

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name in sorted({series(r) for r in rows}, key=lambda m: (not m.startswith("prox-debias"), m)):
        runs = [r for r in rows if series(r) == name]
        points = sorted((int(r["nonzeros"]), 100 * float(r["test_error"])) for r in runs)
        front = sorted((int(r["nonzeros"]), 100 * float(r["test_error"])) for r in pareto(runs))
        color = COLORS.get(name, None)
        line, = ax.plot(*zip(*front), marker="o", label=name, color=color,
                        linewidth=2 if name.startswith("prox-debias") else 1)
        ax.plot(*zip(*points), marker="o", linestyle="none", color=line.get_color(), alpha=0.4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import FormatStrFormatter
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("nonzero weights")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(title or "test error against nonzero weights")
    _save(fig, path)


def write(model, out_dir, bundle_dir=None, results_csv=None) -> str:
    """Write the plots and index.html into out_dir; returns the HTML path."""
    os.makedirs(out_dir, exist_ok=True)
    manifest = binary = None
    if bundle_dir:
        from sparsecl.codegen.verify import manifest_of
        manifest, binary = manifest_of(bundle_dir), os.path.join(bundle_dir, "infer")
    training_plot(model, os.path.join(out_dir, "training.png"))
    sparsity_plot(model, os.path.join(out_dir, "sparsity.png"))
    sizes = byte_sizes(model, manifest, binary)
    bytes_plot(sizes, model.name, os.path.join(out_dir, "bytes.png"))
    images = ["training.png", "sparsity.png", "bytes.png"]
    if results_csv:
        from sparsecl.sweep import read_results
        rows = read_results(results_csv)
        if not rows:
            raise SparseclError(f"{results_csv}: no results")
        pareto_plot(rows, os.path.join(out_dir, "pareto.png"))
        images.append("pareto.png")
    summary = model.training.get("summary", {})
    rows = [("model", model.name), ("architecture", model.arch), ("data set", model.dataset),
            ("test accuracy", f"{summary.get('test_acc', float('nan')):.4f}"),
            ("nonzero weights", f"{model.nnz:,} of {model.params:,} ({100 * model.nnz / model.params:.2f}%)"),
            ("training time", f"{summary.get('seconds', 0):.0f} s on {summary.get('device', '?')}")]
    rows += [(f"bytes: {label}", f"{sum(parts.values()):,}") for label, parts in sizes.items()]
    table = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    body = "\n".join(f'<img src="{name}" alt="{name}">' for name in images)
    page = (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(model.name)}</title>\n"
            "<style>body{font-family:sans-serif;max-width:1400px;margin:2em auto}th{text-align:left;padding-right:"
            "2em}img{max-width:100%;display:block;margin:1em 0}</style></head>\n"
            f"<body><h1>{html.escape(model.name)}</h1>\n<table>\n{table}\n</table>\n{body}\n"
            f"<pre>{html.escape(json.dumps(sizes, indent=1))}</pre>\n</body></html>\n")
    path = os.path.join(out_dir, "index.html")
    with open(path, "w") as f:
        f.write(page)
    return path
