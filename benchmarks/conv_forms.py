"""Sparse convolution, two ways, side by side in one run: direct (what sparsecl uses) against patch
extraction (im2col) followed by the CSR product of the fully connected layers.

LeNet-5's second convolution (20x12x12 -> 50x8x8, 5x5 filters), forward pass, random filters of each
density, batch 64; median of --runs timed launches after a warm-up, kernels only (queue finished).
With feature-major activations the patch matrix (500 rows of 64 positions x batch values) feeds the CSR
kernel unchanged, and its product lands in the convolution's own output layout.

    python benchmarks/conv_forms.py [--runs 30] [--json]
"""

import argparse
import json
import time

import numpy as np
import pyopencl as cl
import pyopencl.array as cla

from sparsecl.geometry import Conv2d, Dense
from sparsecl.modelfile import to_csr
from sparsecl.trainer.device import create_context
from sparsecl.trainer.launch import Launcher
from sparsecl.trainer.layers import CsrLayer
from sparsecl.trainer.programs import ProgramCache

# An experiment, not a product kernel: one work-item per (patch row, position, sample).
IM2COL = """
__kernel void im2col(__global const float *restrict x, __global float *restrict patches, const int batch)
{
    const int b = get_global_id(0), pos = get_global_id(1), row = get_global_id(2);
    const int ci = row / %(kk)d, ky = (row %% %(kk)d) / %(k)d, kx = row %% %(k)d;
    const int oy = pos / %(ow)d, ox = pos %% %(ow)d;
    patches[(row * %(ohw)d + pos) * batch + b] = x[(ci * %(hw)d + (oy + ky) * %(w)d + ox + kx) * batch + b];
}
"""


def median_time(queue, launch, runs):
    launch()
    queue.finish()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        launch()
        queue.finish()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--densities", default="1.0,0.5,0.2,0.1,0.05")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    context, queue, _ = create_context()
    programs, launcher = ProgramCache(context), Launcher(queue)
    g = Conv2d((20, 12, 12), 50, 5)
    c, h, w = g.in_shape
    _, oh, ow = g.out_shape
    kk, batch = g.kernel ** 2, args.batch
    rng = np.random.default_rng(0)
    x = cla.to_device(queue, rng.standard_normal((g.n_in, batch)).astype(np.float32))
    patches = cla.empty(queue, (c * kk, oh * ow * batch), np.float32)
    im2col = cl.Kernel(cl.Program(context, IM2COL % dict(kk=kk, k=g.kernel, ow=ow, ohw=oh * ow, hw=h * w, w=w))
                       .build(), "im2col")
    rows = []
    for density in (float(d) for d in args.densities.split(",")):
        weights = rng.standard_normal(g.weight_shape).astype(np.float32)
        weights[rng.random(weights.shape) >= density] = 0
        csr = to_csr(weights)
        bias = np.zeros(50, np.float32)
        direct = CsrLayer(launcher, programs, "direct", g, csr, bias, False, batch, training=False)
        product = CsrLayer(launcher, programs, "product", Dense(c * kk, 50), csr, bias, False, oh * ow * batch,
                           training=False)
        t_direct = median_time(queue, lambda: direct.forward(x, batch), args.runs)

        def patch_then_product():
            im2col(queue, (batch, oh * ow, c * kk), None, x.data, patches.data, np.int32(batch))
            product.forward(patches, oh * ow * batch)
        t_patch = median_time(queue, patch_then_product, args.runs)
        np.testing.assert_allclose(product.y.get().ravel()[:g.n_out * batch], direct.y.get().ravel()[:g.n_out * batch],
                                   rtol=1e-4, atol=1e-4)
        rows.append({"density": density, "direct_ms": round(t_direct * 1e3, 3), "patches_ms": round(t_patch * 1e3, 3),
                     "ratio": round(t_patch / t_direct, 2)})
        if not args.json:
            print(rows[-1], flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
