"""Inference latency of the bundles against onnxruntime running the same network dense, side by side in
one run, single thread (PoCL on one thread; onnxruntime with one intra-op thread).

Models: the files given with --model, else LeNet-300-100 with random weights at 2% and 5% density (a
random support per layer; speed depends on the nonzeros, not their values) and LeNet-5 at 1%. For each
model, the `c` and `opencl` bundles (variants from the cost model; --autotune to time them first) at batch
1 and 256, timed inside the bundle (`infer --bench`: no process start, no kernel build), median of --runs.

Each row also says how close the kernel comes to a memory-bandwidth bound for the bytes it reads (weights
and indices once per pass, activations in and out): the fraction of this machine's bandwidth it reaches,
for bandwidth measured by copying a buffer of that size (cache-resident, like the weights of these small
networks) and a 256 MiB one (DRAM).

    python benchmarks/inference.py [--model M.npz ...] [--runs 300] [--json]
"""

import argparse
import json
import os
import tempfile
import time

import numpy as np
import scipy.sparse as sp

from sparsecl import bench
from sparsecl.modelfile import Layer, Model
from sparsecl.trainer import archs


def random_model(arch, density, input_shape=(28, 28), seed=0) -> Model:
    rng = np.random.default_rng(seed)
    layers = []
    for name, g, relu in archs.layer_specs(arch, input_shape, 10):
        if g.weight_shape is None:
            layers.append(Layer(name, g.kind, g.n_in, g.n_out, False, None, None, g))
            continue
        rows, cols = g.weight_shape
        w = np.zeros(rows * cols, np.float32)
        keep = rng.choice(w.size, max(1, round(density * w.size)), replace=False)
        w[keep] = rng.standard_normal(len(keep)) * np.sqrt(2.0 / max(1.0, density * cols))
        layers.append(Layer(name, g.kind, g.n_in, g.n_out, relu, sp.csr_matrix(w.reshape(rows, cols)),
                            rng.standard_normal(g.bias_size).astype(np.float32) * 0.1, g))
    return Model(f"{arch}-{density:g}", arch, "mnist", input_shape, 10, {"mean": 33.3, "scale": 1 / 78.6}, layers,
                 {"summary": {}, "log": []})


def copy_bandwidth(nbytes, min_seconds=0.2) -> float:
    """Bytes per second read (and written) by copying a buffer of nbytes, single thread, median of passes."""
    a = np.ones(max(1, nbytes // 4), np.float32)
    b = np.empty_like(a)
    repeats = max(1, int(2e6 // a.size))
    times, t_end = [], time.perf_counter() + min_seconds
    while time.perf_counter() < t_end or len(times) < 5:
        t0 = time.perf_counter()
        for _ in range(repeats):
            np.copyto(b, a)
        times.append((time.perf_counter() - t0) / repeats)
    return 2 * a.nbytes / float(np.median(times))


def bytes_read(manifest, batch) -> int:
    """Weights, indices and biases once, and every layer's input and output activations."""
    weights = sum(l["bytes"] + 4 * (l["out"] if l["variant"] != "pool" else 0) for l in manifest["layers"])
    activations = sum(4 * batch * (l["in"] + l["out"]) for l in manifest["layers"])
    return weights + activations


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="a model file (repeatable; default: random models)")
    p.add_argument("--runs", type=int, default=300, help="timed passes at batch 1 (a tenth at batch 256)")
    p.add_argument("--autotune", action="store_true", help="autotune each bundle's variants first")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = p.parse_args()

    from sparsecl import modelfile
    from sparsecl.codegen.generate import write_bundle
    from sparsecl.codegen.plan import plan
    from sparsecl.codegen.verify import build
    models = ([modelfile.load(m) for m in args.model] if args.model else
              [random_model("lenet-300-100", 0.02), random_model("lenet-300-100", 0.05), random_model("lenet-5", 0.01)])
    dram = copy_bandwidth(256 << 20)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sparsecl-inference-") as tmp:
        for model in models:
            bundles, manifests = {}, {}
            for target in ("c", "opencl"):
                variants = None
                if args.autotune:
                    from sparsecl.codegen.autotune import autotune
                    variants = autotune(model, target, log=lambda *a: None)
                folder = os.path.join(tmp, f"{model.name}-{target}")
                manifests[target] = write_bundle(plan(model, target, variants=variants), folder)
                bundles[target] = build(folder)
            for batch in (1, 256):
                found = bench.run(model, bundles, batches=(batch,), runs=args.runs if batch == 1 else args.runs // 10,
                                  thread_settings=(1,))
                ort = next(r["median_s"] for r in found if r["impl"] == "onnxruntime dense")
                for target in ("c", "opencl"):
                    r = next(r for r in found if r["impl"].startswith(f"{target} bundle"))
                    moved = bytes_read(manifests[target], batch)
                    rate = moved / r["median_s"]
                    rows.append({"arch": model.arch, "density": round(model.nnz / model.params, 4), "target": target,
                                 "batch": batch, "median_s": r["median_s"], "ort_median_s": ort,
                                 "speedup": round(ort / r["median_s"], 2), "backend": r["impl"].split("(")[1][:-1],
                                 "bytes_read": moved, "cache_bw_fraction": round(rate / copy_bandwidth(moved), 3),
                                 "dram_bw_fraction": round(rate / dram, 3),
                                 "variants": [l["variant"] for l in manifests[target]["layers"]]})
                    if not args.json:
                        row = rows[-1]
                        print(f"{row['arch']:14s} {row['density']:6.2%} {target:6s} batch {batch:3d}: "
                              f"{row['median_s'] * 1e6:9.1f} us, onnxruntime {ort * 1e6:9.1f} us, "
                              f"speed-up {row['speedup']:6.2f}x, {moved:,} bytes at "
                              f"{row['cache_bw_fraction']:.1%} of cache / {row['dram_bw_fraction']:.1%} of DRAM "
                              f"bandwidth ({row['backend']}; {'/'.join(row['variants'])})", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
