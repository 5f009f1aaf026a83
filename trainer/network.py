"""A stack of fully connected layers on one OpenCL queue: forward, backward, optimiser step."""

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
from pyopencl.reduction import ReductionKernel

from sparsecl.trainer.layers import CsrLayer, DenseLayer
from sparsecl.trainer.programs import ProgramCache


class Network:
    def __init__(self, context, queue, layers, classes, preprocess, capacity):
        """layers: [(name, weights (dense ndarray or scipy CSR), bias, relu)]; CSR weights give CSR layers.
        preprocess: {"mean", "scale"} turning raw input into network input."""
        self.context, self.queue, self.capacity = context, queue, capacity
        self.programs = ProgramCache(context)
        self.layers = [self._make_layer(*spec) for spec in layers]
        self.n_in = self.layers[0].n_in
        self._preprocess = self.programs.kernels("preprocess.cl.j2", ["preprocess"], **preprocess)["preprocess"]
        self._raw = cla.empty(queue, (capacity, self.n_in), np.float32)
        self._x = cla.empty(queue, (capacity, self.n_in), np.float32)
        self.shared = self.programs.kernels("train.cl.j2", ["gather_batch", "softmax_xent", "bias_grad",
                                                             "sgd_prox"], classes=classes)
        self._count_nonzero = ReductionKernel(context, np.int32, neutral="0", reduce_expr="a+b",
                                              map_expr="x[i] != 0.0f ? 1 : 0",
                                              arguments="__global const float *x")

    def _make_layer(self, name, weights, bias, relu):
        if hasattr(weights, "tocsr"):
            return CsrLayer(self.queue, self.programs, name, weights.tocsr(), bias, relu, self.capacity)
        return DenseLayer(self.queue, self.programs, name, weights, bias, relu, self.capacity)

    def to_csr(self):
        """Freeze each layer's current support: switch every dense layer to CSR form (biases kept)."""
        self.layers = [CsrLayer(self.queue, self.programs, l.name, l.weights(), l.bias.get(), l.relu,
                                self.capacity) if isinstance(l, DenseLayer) else l for l in self.layers]

    def forward(self, x, batch):
        for layer in self.layers:
            x = layer.forward(x, batch)
        return x

    def backward(self, dlogits, x, batch):
        dy = dlogits
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            below = self.layers[index - 1] if index else None
            layer_in = below.y if below else x
            dy = layer.backward(dy, layer_in, batch, self.shared["bias_grad"], need_dx=below is not None,
                                mask_relu=bool(below and below.relu))

    def step(self, lr, momentum, lam):
        """SGD with momentum on every parameter; weights then go through the l1 proximal operator."""
        for layer in self.layers:
            for values, grad, velocity, is_weight in layer.parameters():
                threshold = lr * lam if is_weight else 0.0
                self.shared["sgd_prox"](self.queue, (values.size,), None, values.data, grad.data,
                                        velocity.data, np.int32(values.size), np.float32(lr),
                                        np.float32(momentum), np.float32(threshold))

    def nonzeros(self):
        """Nonzero weights per layer (one small reduction each on the device)."""
        counts = []
        for layer in self.layers:
            if isinstance(layer, CsrLayer):
                counts.append(int(self._count_nonzero(layer.values[:max(layer.nnz, 1)]).get())
                              if layer.nnz else 0)
            else:
                counts.append(int(self._count_nonzero(layer.values.ravel()).get()))
        return counts

    def preprocess(self, raw, x, count):
        """x = (raw - mean) * scale over the first `count` values of two device arrays."""
        self._preprocess(self.queue, (count,), None, raw.data, x.data, np.int32(count))

    def predict(self, raw):
        """Logits (n, classes) for raw inputs (n, ...) given as a host array, computed in chunks."""
        raw = np.ascontiguousarray(raw, dtype=np.float32).reshape(len(raw), self.n_in)
        logits = np.empty((len(raw), self.layers[-1].n_out), np.float32)
        for start in range(0, len(raw), self.capacity):
            chunk = raw[start:start + self.capacity]
            cl.enqueue_copy(self.queue, self._raw.data, chunk)
            self.preprocess(self._raw, self._x, chunk.size)
            y = self.forward(self._x, len(chunk))
            cl.enqueue_copy(self.queue, logits[start:start + len(chunk)], y.data)
        self.queue.finish()
        return logits
