"""Work-item tiling of the kernels, shared by the trainer and the code generator.

Measured on PoCL's CPU device (2 cores, AVX2): float8 vectors over the samples of a batch, and for dense
layers a block of 4 units x 16 samples per work-item in the forward pass and input gradient, and 2 x 4
weights in the weight gradient, keep the accumulators in registers.
"""

VECTOR = 8
DENSE = {"vw": VECTOR, "nv": 2, "tm": 4, "to": 2, "tj": 4}
CONV = {"vw": VECTOR, "nv": 2, "tm": 4, "to": 2}    # dense convolutions: as DENSE, a filter row per weight block
CONV_ROW = 8    # CSR convolutions: neighbouring outputs of a row per work-item (a tap decoded once for all;
                # on PoCL 8 beat 4 by 1.1-1.3x for LeNet-5 at batch 256)


def blocks(count: int, size: int) -> int:
    """Work-items needed to cover count elements in blocks of size."""
    return -(-count // size)


def conv_rows(out_shape) -> int:
    """Work-items of a CSR convolution's forward kernel per block of samples: CONV_ROW outputs of a row each."""
    c_out, oh, ow = out_shape
    return c_out * oh * blocks(ow, CONV_ROW)
