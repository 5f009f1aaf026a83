"""The shapes of layers: what a layer takes, what it gives, and how its weights form a matrix.

Activations are flat feature vectors; an image's features are ordered (channel, row, column), so a
convolution's output feeds a dense layer without any reordering ("flatten" is free).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Dense:
    n_in: int
    n_out: int
    kind = "dense"

    @property
    def weight_shape(self):
        """(rows, columns) of the weight matrix: one row per output unit."""
        return (self.n_out, self.n_in)

    @property
    def bias_size(self) -> int:
        return self.n_out

    @property
    def positions(self) -> int:
        """Output positions sharing one bias (and one weight row)."""
        return 1

    @property
    def out_shape(self):
        return (self.n_out,)

    def describe(self) -> dict:
        return {}


class _Image:
    """Feature counts of a layer that maps an image (in_shape) to an image (out_shape)."""

    @property
    def n_in(self) -> int:
        c, h, w = self.in_shape
        return c * h * w

    @property
    def n_out(self) -> int:
        c, h, w = self.out_shape
        return c * h * w


@dataclass(frozen=True)
class Conv2d(_Image):
    in_shape: tuple          # (channels, height, width)
    out_channels: int
    kernel: int
    padding: str = "valid"   # or "same" (odd kernels; the output keeps the input's size)
    kind = "conv2d"

    @property
    def pad(self) -> int:
        return self.kernel // 2 if self.padding == "same" else 0

    @property
    def out_shape(self):
        c, h, w = self.in_shape
        shrink = 0 if self.padding == "same" else self.kernel - 1
        return (self.out_channels, h - shrink, w - shrink)

    @property
    def weight_shape(self):
        """One row per filter; column (ci * k + ky) * k + kx."""
        return (self.out_channels, self.in_shape[0] * self.kernel * self.kernel)

    @property
    def bias_size(self) -> int:
        return self.out_channels

    @property
    def positions(self) -> int:
        _, oh, ow = self.out_shape
        return oh * ow

    def describe(self) -> dict:
        return {"in_shape": list(self.in_shape), "out_channels": self.out_channels, "kernel": self.kernel,
                "padding": self.padding}


@dataclass(frozen=True)
class MaxPool2d(_Image):
    in_shape: tuple          # (channels, height, width); 2x2 windows, stride 2
    kind = "maxpool2d"

    @property
    def out_shape(self):
        c, h, w = self.in_shape
        return (c, h // 2, w // 2)

    weight_shape = None
    bias_size = 0

    def describe(self) -> dict:
        return {"in_shape": list(self.in_shape)}


def image_shape(shape) -> tuple:
    """(channels, height, width) of a sample shape: (h, w) is one channel; (c, h, w) as is."""
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3:
        return tuple(shape)
    raise ValueError(f"an image input needs 2 or 3 dimensions, not {tuple(shape)}")
