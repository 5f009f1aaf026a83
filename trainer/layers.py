"""Fully connected layers on the device, in dense or CSR form, with their forward and backward passes.

Every layer owns its weights, gradients and optimiser state as device arrays, its output buffer for up to
`capacity` samples, and its kernel objects (created once and reused). `dy` passed to `backward` is the
gradient w.r.t. this layer's pre-activation output; `backward` returns the gradient w.r.t. its input,
already masked by the previous layer's ReLU.
"""

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
import scipy.sparse as sp

from sparsecl.trainer.csr import CsrIndex

_F32 = np.float32


class _Layer:
    def __init__(self, queue, name, n_in, n_out, relu, bias, capacity):
        self.queue, self.name = queue, name
        self.n_in, self.n_out, self.relu = n_in, n_out, relu
        self.bias = cla.to_device(queue, np.asarray(bias, dtype=_F32))
        self.dbias = cla.zeros_like(self.bias)
        self.vbias = cla.zeros_like(self.bias)
        self.y = cla.empty(queue, (capacity, n_out), _F32)
        self.dx = cla.empty(queue, (capacity, n_in), _F32)

    def _run(self, kernel, shape, *args):
        kernel(self.queue, shape, None, *args)

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


class DenseLayer(_Layer):
    """Dense weights (n_out, n_in): the l1 phase, where zeros may still regrow."""

    kind = "dense"

    def __init__(self, queue, programs, name, weights, bias, relu, capacity):
        n_out, n_in = weights.shape
        super().__init__(queue, name, n_in, n_out, relu, bias, capacity)
        self.values = cla.to_device(queue, np.ascontiguousarray(weights, dtype=_F32))
        self.dvalues = cla.zeros_like(self.values)
        self.vvalues = cla.zeros_like(self.values)
        self.k = programs.kernels("dense.cl.j2", ["%s_forward" % name, "%s_grad_input" % name,
                                                  "%s_grad_weight" % name],
                                  p=name, n_in=n_in, n_out=n_out, relu=relu, training=True)

    def forward(self, x, batch):
        self._run(self.k[f"{self.name}_forward"], (self.n_out, batch),
                  x.data, self.values.data, self.bias.data, self.y.data, np.int32(batch))
        return self.y

    def _input_grad(self, dy, x, batch, mask_relu):
        self._run(self.k[f"{self.name}_grad_input"], (self.n_in, batch),
                  dy.data, self.values.data, x.data, self.dx.data, np.int32(batch), np.int32(mask_relu))

    def _weight_grad(self, dy, x, batch):
        self._run(self.k[f"{self.name}_grad_weight"], (self.n_in, self.n_out),
                  dy.data, x.data, self.dvalues.data, np.int32(batch))

    def weights(self) -> sp.csr_matrix:
        from sparsecl.modelfile import to_csr
        return to_csr(self.values.get())

    def state(self):
        return {"values": self.values.get(), "velocity": self.vvalues.get(),
                "bias": self.bias.get(), "vbias": self.vbias.get()}


class CsrLayer(_Layer):
    """Weights in CSR form on a frozen support: memory and work grow with the nonzeros only."""

    kind = "csr"

    def __init__(self, queue, programs, name, weights: sp.csr_matrix, bias, relu, capacity, training=True):
        n_out, n_in = weights.shape
        super().__init__(queue, name, n_in, n_out, relu, bias, capacity)
        self.index = CsrIndex.of(weights)
        self.nnz = int(weights.nnz)
        up = lambda a: cla.to_device(queue, a if len(a) else np.zeros(1, a.dtype))  # noqa: E731 (no 0-byte buffers)
        self.rowptr, self.cols = up(self.index.rowptr), up(self.index.cols)
        self.values = up(weights.data.astype(_F32))
        names = [f"{name}_forward"]
        if training:
            self.rows, self.colptr = up(self.index.rows), up(self.index.colptr)
            self.rows_t, self.perm_t = up(self.index.rows_t), up(self.index.perm_t)
            self.dvalues = cla.zeros_like(self.values)
            self.vvalues = cla.zeros_like(self.values)
            names += [f"{name}_grad_input", f"{name}_grad_weight"]
        self.k = programs.kernels("csr.cl.j2", names, p=name, n_in=n_in, n_out=n_out, relu=relu,
                                  training=training)

    def forward(self, x, batch):
        self._run(self.k[f"{self.name}_forward"], (self.n_out, batch), x.data, self.rowptr.data,
                  self.cols.data, self.values.data, self.bias.data, self.y.data, np.int32(batch))
        return self.y

    def _input_grad(self, dy, x, batch, mask_relu):
        self._run(self.k[f"{self.name}_grad_input"], (self.n_in, batch), dy.data, self.colptr.data,
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
        data = self.values.get()[:self.nnz]
        return sp.csr_matrix((data, self.index.cols, self.index.rowptr), shape=(self.n_out, self.n_in))

    def state(self):
        return {"values": self.values.get()[:self.nnz], "velocity": self.vvalues.get()[:self.nnz],
                "bias": self.bias.get(), "vbias": self.vbias.get()}
