"""Trainer throughput against PyTorch on the CPU, side by side in one run: time per training epoch.

For LeNet-300-100 and LeNet-5 on MNIST-shaped inputs (random pixels and labels: only time is measured),
the same batch size and momentum SGD on both sides:

    dense        our l1 phase (dense layers, proximal step) against PyTorch's dense training;
    csr 5%       our debiasing phase in CSR form with 5% of the weights of every layer kept, against the
                 same dense PyTorch epoch (the goal: faster than training the dense network).

PyTorch uses as many threads as PoCL (all cores). Each side runs one untimed warm-up pass, then --repeats
timed passes over --samples samples; the median is scaled to a 60,000-sample epoch.
ratio = sparsecl / torch (below 1: we are faster).

    pip install torch==2.13.0        # a CPU build
    python benchmarks/trainer_vs_torch.py [--samples 6000] [--batch 64] [--repeats 3] [--json]
"""

import argparse
import json
import os
import time

import numpy as np
import scipy.sparse as sp

from sparsecl.trainer import archs
from sparsecl.trainer.device import create_context
from sparsecl.trainer.epochs import EpochRunner
from sparsecl.trainer.network import Network
from sparsecl.trainer.train import init_layers

FULL = 60000
SHAPE = (28, 28)


def median_seconds(fn, repeats):
    fn()                                      # warm-up: kernel builds, first launches, allocations
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def sparsecl_epoch(arch, phase, x, y, batch, repeats, context, queue):
    rng = np.random.default_rng(0)
    layers = init_layers(archs.layer_specs(arch, SHAPE, 10), rng)
    if phase == "csr 5%":
        sparse = []
        for name, g, w, b, relu in layers:
            if w is not None:
                w = w * (rng.random(w.shape) < 0.05)
                w = sp.csr_matrix(w)
            sparse.append((name, g, w, b, relu))
        layers = sparse
    net = Network(context, queue, layers, 10, {"mean": 127.5, "scale": 1 / 64}, batch, input_shape=SHAPE)
    runner = EpochRunner(net, x, y, SHAPE, batch)
    phase_index, lam = (0, 1e-4) if phase == "dense" else (1, 0.0)
    epoch = iter(range(1000))
    return median_seconds(lambda: runner.run(phase_index, next(epoch), 0.01, 0.9, lam), repeats)


def torch_model(arch):
    import torch.nn as nn
    modules, shape = [], (1, *SHAPE)
    for name, g, relu in archs.layer_specs(arch, SHAPE, 10):
        if g.kind == "conv2d":
            modules.append(nn.Conv2d(g.in_shape[0], g.out_channels, g.kernel, padding=g.pad))
        elif g.kind == "maxpool2d":
            modules.append(nn.MaxPool2d(2))
        else:
            if len(shape) > 1:
                modules.append(nn.Flatten())
            modules.append(nn.Linear(g.n_in, g.n_out))
        if relu:
            modules.append(nn.ReLU())
        shape = g.out_shape
    return nn.Sequential(*modules)


def torch_epoch(arch, x, y, batch, repeats):
    import torch
    torch.manual_seed(0)
    model = torch_model(arch)
    data = torch.from_numpy(((x - 127.5) / 64).reshape(len(x), 1, *SHAPE).astype(np.float32))
    labels = torch.from_numpy(y.astype(np.int64))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def epoch():
        order = torch.randperm(len(data))
        for start in range(0, len(data) - batch + 1, batch):
            idx = order[start:start + batch]
            optimiser.zero_grad(set_to_none=True)
            loss_fn(model(data[idx]), labels[idx]).backward()
            optimiser.step()
    return median_seconds(epoch, repeats)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=6000, help="samples per timed pass (default: 6000)")
    p.add_argument("--batch", type=int, default=64, help="batch size, both sides (default: 64)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per measurement (default: 3)")
    p.add_argument("--archs", default="lenet-300-100,lenet-5")
    p.add_argument("--device", help="OpenCL device (P:D or a name substring)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = p.parse_args()

    import torch
    torch.set_num_threads(os.cpu_count())
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.samples, SHAPE[0] * SHAPE[1])).astype(np.float32)
    y = rng.integers(0, 10, args.samples).astype(np.int32)
    context, queue, _info = create_context(args.device)
    scale = FULL / args.samples
    rows = []
    for arch in args.archs.split(","):
        reference = torch_epoch(arch, x, y, args.batch, args.repeats) * scale
        for phase in ("dense", "csr 5%"):
            ours = sparsecl_epoch(arch, phase, x, y, args.batch, args.repeats, context, queue) * scale
            rows.append({"arch": arch, "phase": phase, "sparsecl_s": round(ours, 2), "torch_s": round(reference, 2),
                         "ratio": round(ours / reference, 2)})
            if not args.json:
                print(f"{arch:14s} {phase:7s} sparsecl {ours:7.2f} s/epoch, PyTorch dense {reference:7.2f} s/epoch, "
                      f"ratio {ours / reference:5.2f}", flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
