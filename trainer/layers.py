"""Fully connected layers on the device, in dense or CSR form, with their forward and backward passes.

Activations are feature-major: a batch of b samples of n features is n rows of b values, so that every
kernel reads contiguous vectors of samples.

Every layer owns its weights, gradients and optimiser state (momentum) as device arrays, its output buffer
for up to `capacity` samples, and its kernel objects (created once and reused). `dy` passed to `backward`
is the gradient w.r.t. this layer's pre-activation output; `backward` returns the gradient w.r.t. its
input, already masked by the previous layer's ReLU.
"""

import numpy as np
import pyopencl.array as cla
import scipy.sparse as sp

from sparsecl.modelfile import to_csr
from sparsecl.tiling import DENSE, VECTOR, blocks
from sparsecl.trainer.csr import CsrIndex

_F32 = np.float32


def _device(queue, array, dtype):
    """A device copy; OpenCL buffers cannot be empty, so an empty array becomes one unused zero."""
    array = np.ascontiguousarray(array, dtype=dtype)
    return cla.to_device(queue, array if array.size else np.zeros(1, dtype))


class _Layer:
    def __init__(self, launcher, name, n_in, n_out, relu, bias, vbias, capacity):
        self.launch, self.queue, self.name = launcher, launcher.queue, name
        queue = self.queue
        self.n_in, self.n_out, self.relu = n_in, n_out, relu
        self.bias = _device(queue, bias, _F32)
        self.dbias = cla.zeros_like(self.bias)
        self.vbias = _device(queue, np.zeros(n_out) if vbias is None else vbias, _F32)
        self.y = cla.empty(queue, (n_out, capacity), _F32)
        self.dx = cla.empty(queue, (n_in, capacity), _F32)

    def _run(self, kernel, shape, *args):
        self.launch(kernel, shape, *args)

    def backward(self, dy, x, batch, bias_grad, need_dx, mask_relu):
        self._weight_grad(dy, x, batch)
        self._run(bias_grad, (self.n_out,), dy.data, self.dbias.data, np.int32(self.n_out), np.int32(batch))
        if need_dx:
            self._input_grad(dy, x, batch, mask_relu)
            return self.dx
        return None

    def parameters(self):
        """(values, gradient, velocity, is_weight) per parameter array; l1 applies to weights only."""
        return [(self.values, self.dvalues, self.vvalues, True), (self.bias, self.dbias, self.vbias, False)]

    @property
    def params(self) -> int:
        return self.n_in * self.n_out


class DenseLayer(_Layer):
    """Dense weights (n_out, n_in): the l1 phase, where zeros may still regrow. With a mask (0/1 per
    weight), the weights are kept on the mask's support after every step: dense masked training."""

    form = "dense"

    def __init__(self, launcher, programs, name, weights, bias, relu, capacity, velocity=None, vbias=None,
                 mask=None):
        n_out, n_in = weights.shape
        super().__init__(launcher, name, n_in, n_out, relu, bias, vbias, capacity)
        queue = self.queue
        self.values = _device(queue, weights, _F32)
        self.dvalues = cla.zeros_like(self.values)
        self.vvalues = _device(queue, np.zeros_like(weights) if velocity is None else velocity, _F32)
        self.mask = None if mask is None else _device(queue, mask, _F32)
        self.k = programs.kernels("dense.cl.j2", [f"{name}_forward", f"{name}_grad_input", f"{name}_grad_weight"],
                                  p=name, n_in=n_in, n_out=n_out, relu=relu, training=True, **DENSE)

    def forward(self, x, batch):
        cols = blocks(batch, DENSE["vw"] * DENSE["nv"])
        self._run(self.k[f"{self.name}_forward"], (cols, blocks(self.n_out, DENSE["tm"])),
                  x.data, self.values.data, self.bias.data, self.y.data, np.int32(batch))
        return self.y

    def _input_grad(self, dy, x, batch, mask_relu):
        cols = blocks(batch, DENSE["vw"] * DENSE["nv"])
        self._run(self.k[f"{self.name}_grad_input"], (cols, blocks(self.n_in, DENSE["tm"])),
                  dy.data, self.values.data, x.data, self.dx.data, np.int32(mask_relu), np.int32(batch))

    def _weight_grad(self, dy, x, batch):
        self._run(self.k[f"{self.name}_grad_weight"], (blocks(self.n_in, DENSE["tj"]), blocks(self.n_out, DENSE["to"])),
                  dy.data, x.data, self.dvalues.data, np.int32(batch))

    def weights(self) -> sp.csr_matrix:
        return to_csr(self.values.get())

    def state(self) -> dict:
        return {"values": self.values.get(), "velocity": self.vvalues.get(), "bias": self.bias.get(),
                "vbias": self.vbias.get()}


class CsrLayer(_Layer):
    """Weights in CSR form on a fixed support: memory and work grow with the nonzeros only.

    velocity, when given, holds the momentum of each stored weight (in CSR order)."""

    form = "csr"

    def __init__(self, launcher, programs, name, weights: sp.csr_matrix, bias, relu, capacity, training=True,
                 velocity=None, vbias=None):
        n_out, n_in = weights.shape
        super().__init__(launcher, name, n_in, n_out, relu, bias, vbias, capacity)
        queue = self.queue
        self.index = CsrIndex.of(weights)
        self.nnz = int(weights.nnz)
        self.rowptr, self.cols = _device(queue, self.index.rowptr, np.int32), _device(queue, self.index.cols, np.int32)
        self.values = _device(queue, weights.data, _F32)
        names = [f"{name}_forward"]
        if training:
            ix = self.index
            self.rows, self.colptr = _device(queue, ix.rows, np.int32), _device(queue, ix.colptr, np.int32)
            self.rows_t, self.perm_t = _device(queue, ix.rows_t, np.int32), _device(queue, ix.perm_t, np.int32)
            self.dvalues = cla.zeros_like(self.values)
            self.vvalues = _device(queue, np.zeros(self.nnz) if velocity is None else velocity, _F32)
            names += [f"{name}_grad_input", f"{name}_grad_weight"]
        self.k = programs.kernels("csr.cl.j2", names, p=name, n_in=n_in, n_out=n_out, relu=relu,
                                  training=training, vw=VECTOR)

    @classmethod
    def from_layer(cls, layer, programs, capacity, keep_velocity):
        """The CSR form of a layer on its current nonzeros, with their momentum if keep_velocity."""
        state = layer.state()
        if layer.form == "dense":
            weights = to_csr(state["values"])
            dense_velocity = state["velocity"]
            velocity = dense_velocity[CsrIndex.of(weights).rows, weights.indices]
        else:
            keep = state["values"] != 0
            per_row = np.bincount(layer.index.rows[keep], minlength=layer.n_out)
            rowptr = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int32)
            weights = sp.csr_matrix((state["values"][keep], layer.index.cols[keep], rowptr),
                                    shape=(layer.n_out, layer.n_in))
            velocity = state["velocity"][keep]
        return cls(layer.launch, programs, layer.name, weights, state["bias"], layer.relu, capacity,
                   velocity=velocity if keep_velocity else None, vbias=state["vbias"] if keep_velocity else None)

    def forward(self, x, batch):
        self._run(self.k[f"{self.name}_forward"], (self.n_out, blocks(batch, VECTOR)), x.data, self.rowptr.data,
                  self.cols.data, self.values.data, self.bias.data, self.y.data, np.int32(batch))
        return self.y

    def _input_grad(self, dy, x, batch, mask_relu):
        self._run(self.k[f"{self.name}_grad_input"], (self.n_in, blocks(batch, VECTOR)), dy.data, self.colptr.data,
                  self.rows_t.data, self.perm_t.data, self.values.data, x.data, self.dx.data,
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
                             shape=(self.n_out, self.n_in))

    def state(self) -> dict:
        return {"values": self.values.get()[:self.nnz], "velocity": self.vvalues.get()[:self.nnz],
                "bias": self.bias.get(), "vbias": self.vbias.get(), "indptr": self.index.rowptr,
                "indices": self.index.cols}
