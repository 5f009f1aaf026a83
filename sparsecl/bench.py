"""Latency side by side, in one run: the bundle's `c` and `opencl` targets (timed inside `infer --bench`,
so process start and kernel builds are excluded and reported apart), the same network dense in
onnxruntime, and scipy CSR; batch 1 and 256, one thread and all threads; median and p90."""

import json
import os
import subprocess
import tempfile
import time

import numpy as np

from sparsecl import SparseclError


def _timed(fn, runs):
    fn()                                     # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"median_s": times[len(times) // 2], "p90_s": times[min(len(times) - 1, (len(times) * 9) // 10)]}


def _scipy_csr(model):
    """A forward pass with scipy.sparse CSR products, for fully connected models; None otherwise."""
    if any(l.kind != "dense" for l in model.layers):
        return None
    mean, scale = np.float32(model.preprocess["mean"]), np.float32(model.preprocess["scale"])
    layers = [(l.weights.tocsr(), l.bias, l.relu) for l in model.layers]

    def forward(raw):
        x = ((raw - mean) * scale).T
        for w, b, relu in layers:
            x = w @ x + b[:, None]
            if relu:
                np.maximum(x, 0, out=x)
        return x
    return forward


def run(model, bundles: dict, batches=(1, 256), runs=None, thread_settings=(1, 0)) -> list:
    """Rows {impl, threads, batch, median_s, p90_s, build_s, ratio} (ratio: onnxruntime dense / this)."""
    from sparsecl.codegen.onnx_export import build
    raw_all = np.random.default_rng(0).uniform(0, 1, (max(batches), model.input_size)).astype(np.float32)
    try:
        import onnxruntime as ort
        proto = build(model).SerializeToString()
    except (ImportError, SparseclError):
        ort = None
    scipy_forward = _scipy_csr(model)
    rows = []
    for threads in thread_settings:
        label = "1" if threads == 1 else f"all ({os.cpu_count()})"
        for batch in batches:
            n = runs or (300 if batch == 1 else 30)
            raw = raw_all[:batch]
            found = []
            if ort:
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                session = ort.InferenceSession(proto, options, providers=["CPUExecutionProvider"])
                feed = {"raw": raw.reshape(batch, *model.input_shape)}
                found.append({"impl": "onnxruntime dense", **_timed(lambda: session.run(None, feed), n)})
            if scipy_forward:
                found.append({"impl": "scipy CSR", **_timed(lambda: scipy_forward(raw), n)})
            for target, binary in bundles.items():
                env = dict(os.environ)
                if threads == 1:
                    env["POCL_MAX_PTHREAD_COUNT"] = "1"        # PoCL's CPU device on one thread
                args = [binary, "--bench", str(n), "--batch", str(batch)] + (["--cpu"] if target == "c" else [])
                result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
                if result.returncode != 0:
                    raise SparseclError(f"{binary} --bench failed: {result.stderr.strip()}")
                row = json.loads(result.stdout)
                found.append({"impl": f"{target} bundle ({row['backend']})", "median_s": row["median_s"],
                              "p90_s": row["p90_s"], "build_s": row["build_s"]})
            base = next((r["median_s"] for r in found if r["impl"] == "onnxruntime dense"), None)
            for r in found:
                r.update(threads=label, batch=batch, ratio=round(base / r["median_s"], 2) if base else None)
                rows.append(r)
    return rows


def bundles_for(model, bundle_dir=None) -> dict:
    """{target: built ./infer}: the given bundle, or fresh c and opencl bundles in a temporary folder."""
    from sparsecl.codegen.generate import write_bundle
    from sparsecl.codegen.plan import plan
    from sparsecl.codegen.verify import build, manifest_of
    if bundle_dir:
        return {manifest_of(bundle_dir)["target"]: build(bundle_dir)}
    root = tempfile.mkdtemp(prefix="sparsecl-bench-")
    out = {}
    for target in ("c", "opencl"):
        write_bundle(plan(model, target), os.path.join(root, target))
        out[target] = build(os.path.join(root, target))
    return out
