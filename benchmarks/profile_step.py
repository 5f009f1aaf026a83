"""Where a training step's time goes: every kernel of one epoch timed with OpenCL profiling events.

LeNet-300-100 or LeNet-5 on MNIST-shaped random data, dense (the l1 phase) or with --density D in CSR
form (debiasing, D of every layer's weights kept at random); prints the wall time per step, the time the
device was busy, launches per step, and the kernels by total time per step.

    python benchmarks/profile_step.py [--arch lenet-300-100] [--density 0.05] [--batch 64] [--samples 3200] [--json]
"""

import argparse
import collections
import json
import time

import numpy as np
import pyopencl as cl
import scipy.sparse as sp

from sparsecl.trainer import archs
from sparsecl.trainer.device import choose_device
from sparsecl.trainer.epochs import EpochRunner
from sparsecl.trainer.network import Network
from sparsecl.trainer.train import init_layers

SHAPE = (28, 28)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="lenet-300-100")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--density", type=float, help="CSR form with this fraction of each layer's weights kept")
    p.add_argument("--samples", type=int, default=3200, help="samples in the profiled epoch (default: 3200)")
    p.add_argument("--device", help="OpenCL device (P:D or a name substring)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args()

    _info, device = choose_device(args.device)
    context = cl.Context([device])
    queue = cl.CommandQueue(context, properties=cl.command_queue_properties.PROFILING_ENABLE)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.samples, SHAPE[0] * SHAPE[1])).astype(np.float32)
    y = rng.integers(0, 10, args.samples).astype(np.int32)
    layers = init_layers(archs.layer_specs(args.arch, SHAPE, 10), rng)
    if args.density is not None:
        layers = [(name, g, None if w is None else sp.csr_matrix(w * (rng.random(w.shape) < args.density)), b, relu)
                  for name, g, w, b, relu in layers]
    net = Network(context, queue, layers, 10, {"mean": 127.5, "scale": 1 / 64}, args.batch, input_shape=SHAPE)
    phase, lam = (0, 1e-4) if args.density is None else (1, 0.0)
    events = []

    def replay(launches):         # what Launcher.replay does, keeping each launch's event
        for kernel, shape, local, _args in launches:
            events.append((kernel.function_name, cl.enqueue_nd_range_kernel(queue, kernel, shape, local)))
    net.launch.replay = replay    # the one launcher the network and its layers share
    runner = EpochRunner(net, x, y, SHAPE, args.batch)
    runner.run(phase, 0, 0.01, 0.9, lam)                 # warm-up: kernel builds, first launches
    events.clear()
    t0 = time.perf_counter()
    runner.run(phase, 1, 0.01, 0.9, lam)
    wall = time.perf_counter() - t0
    per_kernel = collections.Counter()
    for name, event in events:
        per_kernel[name] += (event.profile.end - event.profile.start) * 1e-9
    steps = runner.steps
    result = {"arch": args.arch, "density": args.density, "batch": args.batch, "wall_ms_per_step": 1e3 * wall / steps,
              "busy_ms_per_step": 1e3 * sum(per_kernel.values()) / steps,
              "launches_per_step": len(events) / steps,
              "kernels_ms_per_step": {k: round(1e3 * t / steps, 4) for k, t in per_kernel.most_common()}}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.arch}{'' if args.density is None else f' at {args.density:g} (CSR)'}, batch {args.batch}: {result['wall_ms_per_step']:.2f} ms a step, device busy "
          f"{result['busy_ms_per_step']:.2f} ms, {result['launches_per_step']:.0f} launches a step")
    for name, ms in result["kernels_ms_per_step"].items():
        print(f"  {name:28s} {ms:8.3f} ms")


if __name__ == "__main__":
    main()
