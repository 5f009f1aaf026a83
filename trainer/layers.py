"""Layers on the device: fully connected and convolutional layers in dense or CSR form, and max-pooling.

Activations are feature-major: a batch of b samples of n features is n rows of b values, so that every
kernel reads contiguous vectors of samples. Every layer owns its weights, gradients and optimiser state
(momentum) as device arrays, its output and input-gradient buffers for up to `capacity` samples, and its
kernel objects (created once). `dy` passed to `backward` is the gradient w.r.t. this layer's pre-activation
output; `backward` returns the gradient w.r.t. its input, already masked by the previous layer's ReLU.
"""

import numpy as np
import pyopencl.array as cla
import scipy.sparse as sp

from sparsecl.geometry import Conv2d, Dense
from sparsecl.modelfile import to_csr
from sparsecl.tiling import CONV, CONV_ROW, DENSE, VECTOR, blocks, conv_rows
from sparsecl.trainer.csr import CsrIndex

_F32 = np.float32


def _device(queue, array, dtype):
    """A device copy; OpenCL buffers cannot be empty, so an empty array becomes one unused zero."""
    array = np.ascontiguousarray(array, dtype=dtype)
    return cla.to_device(queue, array if array.size else np.zeros(1, dtype))


def kernel_params(geometry, relu, form, training):
    """(template, parameters) rendering the kernels of a layer."""
    if isinstance(geometry, Conv2d):
        c, h, w = geometry.in_shape
        c_out, oh, ow = geometry.out_shape
        shape = dict(c_in=c, h=h, w=w, c_out=c_out, oh=oh, ow=ow, k=geometry.kernel, pad=geometry.pad, relu=relu,
                     training=training)
        if form == "csr":
            return "conv.cl.j2", dict(shape, vw=VECTOR, tx=CONV_ROW)
        return "conv_dense.cl.j2", dict(shape, **CONV)
    if form == "csr":
        return "csr.cl.j2", dict(n_in=geometry.n_in, n_out=geometry.n_out, relu=relu, training=training, vw=VECTOR)
    return "dense.cl.j2", dict(n_in=geometry.n_in, n_out=geometry.n_out, relu=relu, training=training, **DENSE)


class _Layer:
    def __init__(self, launcher, name, geometry, relu, capacity):
        self.launch, self.queue, self.name = launcher, launcher.queue, name
        self.geometry, self.relu = geometry, relu
        self.n_in, self.n_out = geometry.n_in, geometry.n_out
        self.y = cla.empty(self.queue, (self.n_out, capacity), _F32)
        self.dx = cla.empty(self.queue, (self.n_in, capacity), _F32)

    def _run(self, kernel, shape, *args):
        self.launch(kernel, shape, *args)

    def _kernels(self, programs, form, training, names):
        template, params = kernel_params(self.geometry, self.relu, form, training)
        return programs.kernels(template, [f"{self.name}_{n}" for n in names], p=self.name, **params)


class _WeightLayer(_Layer):
    def __init__(self, launcher, name, geometry, relu, bias, vbias, capacity):
        super().__init__(launcher, name, geometry, relu, capacity)
        self.bias = _device(self.queue, bias, _F32)
        self.dbias = cla.zeros_like(self.bias)
        self.vbias = _device(self.queue, np.zeros(geometry.bias_size) if vbias is None else vbias, _F32)

    def backward(self, dy, x, batch, bias_grad, need_dx, mask_relu):
        self._weight_grad(dy, x, batch)
        # A channel's outputs are contiguous rows: its bias gradient sums positions x batch values.
        positions = batch * self.geometry.positions
        self._run(bias_grad, (self.geometry.bias_size,), dy.data, self.dbias.data,
                  np.int32(self.geometry.bias_size), np.int32(positions))
        if need_dx:
            self._input_grad(dy, x, batch, mask_relu)
            return self.dx
        return None

    def parameters(self):
        """(values, gradient, velocity, is_weight) per parameter array; l1 applies to weights only."""
        return [(self.values, self.dvalues, self.vvalues, True), (self.bias, self.dbias, self.vbias, False)]

    @property
    def params(self) -> int:
        rows, cols = self.geometry.weight_shape
        return rows * cols


class DenseLayer(_WeightLayer):
    """All weights stored: the l1 phase, where zeros may still regrow. With a mask (0/1 per weight), the
    weights are kept on the mask's support after every step: dense masked training."""

    form = "dense"

    def __init__(self, launcher, programs, name, geometry, weights, bias, relu, capacity, velocity=None,
                 vbias=None, mask=None):
        super().__init__(launcher, name, geometry, relu, bias, vbias, capacity)
        shape = geometry.weight_shape
        self.values = _device(self.queue, np.reshape(weights, shape), _F32)
        self.dvalues = cla.zeros_like(self.values)
        self.vvalues = _device(self.queue, np.zeros(shape) if velocity is None else np.reshape(velocity, shape), _F32)
        self.mask = None if mask is None else _device(self.queue, mask, _F32)
        self.k = self._kernels(programs, "dense", True, ["forward", "grad_input", "grad_weight"])
        if isinstance(geometry, Dense):     # register-blocked products
            cols = DENSE["vw"] * DENSE["nv"]
            self._shapes = {"forward": lambda b: (blocks(b, cols), blocks(self.n_out, DENSE["tm"])),
                            "grad_input": lambda b: (blocks(b, cols), blocks(self.n_in, DENSE["tm"])),
                            "grad_weight": lambda b: (blocks(self.n_in, DENSE["tj"]), blocks(self.n_out, DENSE["to"]))}
        else:                               # register-blocked convolutions: (samples, position, channels)
            cols, (c_in, h, w), (c_out, oh, ow) = CONV["vw"] * CONV["nv"], geometry.in_shape, geometry.out_shape
            self._shapes = {"forward": lambda b: (blocks(b, cols), oh * ow, blocks(c_out, CONV["tm"])),
                            "grad_input": lambda b: (blocks(b, cols), h * w, blocks(c_in, CONV["tm"])),
                            "grad_weight": lambda b: (geometry.kernel, c_in, blocks(c_out, CONV["to"]))}

    def forward(self, x, batch):
        self._run(self.k[f"{self.name}_forward"], self._shapes["forward"](batch),
                  x.data, self.values.data, self.bias.data, self.y.data, np.int32(batch))
        return self.y

    def _input_grad(self, dy, x, batch, mask_relu):
        self._run(self.k[f"{self.name}_grad_input"], self._shapes["grad_input"](batch),
                  dy.data, self.values.data, x.data, self.dx.data, np.int32(mask_relu), np.int32(batch))

    def _weight_grad(self, dy, x, batch):
        self._run(self.k[f"{self.name}_grad_weight"], self._shapes["grad_weight"](batch),
                  dy.data, x.data, self.dvalues.data, np.int32(batch))

    def weights(self) -> sp.csr_matrix:
        return to_csr(self.values.get())

    def state(self) -> dict:
        return {"values": self.values.get(), "velocity": self.vvalues.get(), "bias": self.bias.get(),
                "vbias": self.vbias.get()}


class CsrLayer(_WeightLayer):
    """Weights in CSR form on a fixed support: memory and work grow with the nonzeros only.

    velocity, when given, holds the momentum of each stored weight (in CSR order)."""

    form = "csr"

    def __init__(self, launcher, programs, name, geometry, weights: sp.csr_matrix, bias, relu, capacity,
                 training=True, velocity=None, vbias=None):
        super().__init__(launcher, name, geometry, relu, bias, vbias, capacity)
        queue = self.queue
        self.index = CsrIndex.of(weights)
        self.nnz = int(weights.nnz)
        self.rowptr, self.cols = _device(queue, self.index.rowptr, np.int32), _device(queue, self.index.cols, np.int32)
        self.values = _device(queue, weights.data, _F32)
        names = ["forward"]
        if training:
            ix = self.index
            self.rows, self.colptr = _device(queue, ix.rows, np.int32), _device(queue, ix.colptr, np.int32)
            self.rows_t, self.perm_t = _device(queue, ix.rows_t, np.int32), _device(queue, ix.perm_t, np.int32)
            self.dvalues = cla.zeros_like(self.values)
            self.vvalues = _device(queue, np.zeros(self.nnz) if velocity is None else velocity, _F32)
            names += ["grad_input", "grad_weight"]
        self.k = self._kernels(programs, "csr", training, names)

    @classmethod
    def from_layer(cls, layer, programs, capacity, keep_velocity):
        """The CSR form of a layer on its current nonzeros, with their momentum if keep_velocity."""
        state = layer.state()
        if layer.form == "dense":
            weights = to_csr(state["values"])
            velocity = state["velocity"][CsrIndex.of(weights).rows, weights.indices]
        else:
            keep = state["values"] != 0
            per_row = np.bincount(layer.index.rows[keep], minlength=layer.geometry.weight_shape[0])
            rowptr = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
            weights = sp.csr_matrix((state["values"][keep], layer.index.cols[keep], rowptr),
                                    shape=layer.geometry.weight_shape)
            velocity = state["velocity"][keep]
        return cls(layer.launch, programs, layer.name, layer.geometry, weights, state["bias"], layer.relu, capacity,
                   velocity=velocity if keep_velocity else None, vbias=state["vbias"] if keep_velocity else None)

    def forward(self, x, batch):
        units = conv_rows(self.geometry.out_shape) if isinstance(self.geometry, Conv2d) else self.n_out
        self._run(self.k[f"{self.name}_forward"], (units, blocks(batch, VECTOR)), x.data, self.rowptr.data,
                  self.cols.data, self.values.data, self.bias.data, self.y.data, np.int32(batch))
        return self.y

    def _input_grad(self, dy, x, batch, mask_relu):
        self._run(self.k[f"{self.name}_grad_input"], (self.n_in, blocks(batch, VECTOR)), dy.data,
                  self.colptr.data, self.rows_t.data, self.perm_t.data, self.values.data, x.data, self.dx.data,
                  np.int32(batch), np.int32(mask_relu))

    def _weight_grad(self, dy, x, batch):
        if self.nnz:
            self._run(self.k[f"{self.name}_grad_weight"], (self.nnz,), dy.data, x.data, self.rows.data,
                      self.cols.data, self.dvalues.data, np.int32(self.nnz), np.int32(batch))

    def parameters(self):
        params = super().parameters()
        return params if self.nnz else params[1:]

    def weights(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.values.get()[:self.nnz], self.index.cols, self.index.rowptr),
                             shape=self.geometry.weight_shape)

    def state(self) -> dict:
        return {"values": self.values.get()[:self.nnz], "velocity": self.vvalues.get()[:self.nnz],
                "bias": self.bias.get(), "vbias": self.vbias.get(), "indptr": self.index.rowptr,
                "indices": self.index.cols}


class PoolLayer(_Layer):
    """2x2 max-pooling. Its outputs are maxima of the previous layer's outputs, so they carry that layer's
    ReLU for the purpose of masking gradients (relu here means: inputs of the next layer are ReLU outputs)."""

    form = "pool"

    def __init__(self, launcher, programs, name, geometry, relu, capacity, training=True):
        super().__init__(launcher, name, geometry, relu, capacity)
        c, h, w = geometry.in_shape
        _, oh, ow = geometry.out_shape
        names = [f"{name}_forward"] + ([f"{name}_grad_input"] if training else [])
        self.k = programs.kernels("pool.cl.j2", names, p=name, c=c, h=h, w=w, oh=oh, ow=ow, vw=VECTOR,
                                  training=training)

    def forward(self, x, batch):
        self._run(self.k[f"{self.name}_forward"], (self.n_out, blocks(batch, VECTOR)), x.data, self.y.data,
                  np.int32(batch))
        return self.y

    def backward(self, dy, x, batch, bias_grad, need_dx, mask_relu):
        if not need_dx:
            return None
        self._run(self.k[f"{self.name}_grad_input"], (self.n_in, blocks(batch, VECTOR)), dy.data, x.data,
                  self.dx.data, np.int32(mask_relu), np.int32(batch))
        return self.dx

    def parameters(self):
        return []

    params = 0
    nnz = 0

    def state(self) -> dict:
        return {}
