"""Debiasing speed: CSR form against dense masked form, side by side in one run.

LeNet-300-100 on MNIST-sized inputs (784 features, 10 classes; random pixels, since only time is measured),
with a random support of each density in every layer. For each density, both forms train on the same data,
the same support and the same batches; the time per epoch is the median over --epochs timed epochs, after
one untimed warm-up epoch (kernel builds). Times are scaled to 60,000 samples when --samples is smaller.

    python benchmarks/train_csr.py [--samples 60000] [--epochs 3] [--json]
"""

import argparse
import json
import time

import numpy as np
import scipy.sparse as sp

from sparsecl.geometry import Dense
from sparsecl.trainer.device import create_context
from sparsecl.trainer.epochs import EpochRunner
from sparsecl.trainer.network import Network

WIDTHS = [784, 300, 100, 10]
FULL = 60000


def random_layers(density, rng):
    """[(name, dense weights, bias, relu)] with exactly round(density * size) nonzeros per layer."""
    layers = []
    for i in range(3):
        n_out, n_in = WIDTHS[i + 1], WIDTHS[i]
        w = np.zeros(n_out * n_in, np.float32)
        keep = rng.choice(w.size, max(1, round(density * w.size)), replace=False)
        w[keep] = rng.standard_normal(len(keep)) * np.sqrt(2.0 / (density * n_in))
        layers.append((f"fc{i + 1}", Dense(n_in, n_out), w.reshape(n_out, n_in), np.zeros(n_out, np.float32), i < 2))
    return layers


def epoch_seconds(context, queue, layers, form, x, y, batch, epochs):
    if form == "csr":
        specs = [(name, g, sp.csr_matrix(w), b, relu) for name, g, w, b, relu in layers]
        net = Network(context, queue, specs, 10, {"mean": 0.0, "scale": 1 / 255}, batch)
    else:
        masks = [(w != 0).astype(np.float32) for _, _, w, _, _ in layers]
        net = Network(context, queue, layers, 10, {"mean": 0.0, "scale": 1 / 255}, batch, masks=masks)
    runner = EpochRunner(net, x, y, (784,), batch)
    runner.run(1, 0, 0.01, 0.9, 0.0)                       # warm-up: builds and first launches
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        runner.run(1, epoch + 1, 0.01, 0.9, 0.0)           # .run waits for the device at its end
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * FULL / len(x)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=FULL, help="training samples per epoch (default: 60000)")
    p.add_argument("--batch", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per form and density (default: 3)")
    p.add_argument("--densities", default="0.5,0.2,0.1,0.05,0.02,0.01")
    p.add_argument("--device", help="OpenCL device (P:D or a name substring)")
    p.add_argument("--json", action="store_true", help="print one JSON list instead of a table")
    args = p.parse_args()

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.samples, 784)).astype(np.float32)
    y = rng.integers(0, 10, args.samples).astype(np.int32)
    context, queue, info = create_context(args.device)
    rows = []
    for density in (float(d) for d in args.densities.split(",")):
        layers = random_layers(density, rng)
        csr = epoch_seconds(context, queue, layers, "csr", x, y, args.batch, args.epochs)
        dense = epoch_seconds(context, queue, layers, "dense", x, y, args.batch, args.epochs)
        rows.append({"density": density, "csr_s": round(csr, 3), "dense_s": round(dense, 3),
                     "speedup": round(dense / csr, 2)})
        if not args.json:
            print(f"density {density:5.1%}: CSR {csr:7.2f} s/epoch, dense masked {dense:7.2f} s/epoch, "
                  f"speed-up {dense / csr:5.2f}x", flush=True)
    if args.json:
        print(json.dumps(rows))
    else:
        print(f"(LeNet-300-100, batch {args.batch}, {args.samples} samples scaled to {FULL}, on {info.name})")


if __name__ == "__main__":
    main()
