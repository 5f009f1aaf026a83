"""A stack of layers on one OpenCL queue: forward, backward, optimiser step."""

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
from pyopencl.reduction import ReductionKernel

from sparsecl.trainer.launch import Launcher
from sparsecl.trainer.layers import CsrLayer, DenseLayer, PoolLayer
from sparsecl.trainer.programs import ProgramCache
from sparsecl.tiling import blocks


class Network:
    def __init__(self, context, queue, layers, classes, preprocess, capacity, masks=None, input_shape=None):
        """layers: [(name, geometry, weights, bias, relu)]: dense ndarray weights give dense layers, scipy
        sparse ones CSR layers, None (with a MaxPool2d geometry) a pooling layer. preprocess: {"mean",
        "scale"} turning raw input into network input. masks: optional 0/1 arrays per layer keeping dense
        layers on a fixed support (dense masked training). input_shape: the shape of one sample; images
        (2 or more dimensions) can be shifted while gathering batches."""
        # Buffers hold at least 512 samples so that evaluation runs in large chunks.
        self.context, self.queue, self.capacity = context, queue, max(capacity, 512)
        self.programs = ProgramCache(context)
        self.launch = Launcher(queue)
        masks = masks or [None] * len(layers)
        self.layers = []
        for spec, mask in zip(layers, masks):
            self.layers.append(self._make_layer(*spec, mask=mask))
        self.n_in = self.layers[0].n_in
        self.preprocess_params = dict(preprocess)
        self._pre = self.programs.kernels("preprocess.cl.j2", ["preprocess", "normalise"], n_in=self.n_in,
                                          training=True, **preprocess)
        self._raw = cla.empty(queue, (self.capacity, self.n_in), np.float32)
        self._x = cla.empty(queue, (self.n_in, self.capacity), np.float32)
        image = input_shape is not None and len(input_shape) >= 2
        height, cols = input_shape[-2:] if image else (1, self.n_in)
        self._train_params = dict(classes=classes, width=self.n_in, height=height, cols=cols)
        self.shared = self.programs.kernels("train.cl.j2", ["gather_batch", "softmax_xent", "bias_grad",
                                                             "apply_mask"], **self._train_params)
        self._sgd_all = {}
        self._count_nonzero = ReductionKernel(context, np.int32, neutral="0", reduce_expr="a+b",
                                              map_expr="x[i] != 0.0f ? 1 : 0",
                                              arguments="__global const float *x")

    def _make_layer(self, name, geometry, weights, bias, relu, mask=None):
        if weights is None:         # pooling passes its input's ReLU on (see PoolLayer)
            below = bool(self.layers and self.layers[-1].relu)
            return PoolLayer(self.launch, self.programs, name, geometry, below, self.capacity)
        if hasattr(weights, "tocsr"):
            return CsrLayer(self.launch, self.programs, name, geometry, weights.tocsr(), bias, relu, self.capacity)
        return DenseLayer(self.launch, self.programs, name, geometry, weights, bias, relu, self.capacity, mask=mask)

    @property
    def weight_layers(self):
        return [l for l in self.layers if l.form != "pool"]

    def to_csr(self, below_density=1.0, keep_velocity=False):
        """Move dense layers whose density is at most below_density to CSR form, on their current nonzeros
        (a frozen support: zeros can no longer regrow). Returns the names of the layers moved."""
        moved = []
        for index, (layer, nnz) in enumerate(zip(self.layers, self._counts())):
            if layer.form == "dense" and nnz <= below_density * layer.params:
                self.layers[index] = CsrLayer.from_layer(layer, self.programs, self.capacity, keep_velocity)
                moved.append(layer.name)
        return moved

    def compact(self):
        """Drop weights that became exactly zero from CSR layers (l1 phase: the support only shrinks)."""
        for index, (layer, nnz) in enumerate(zip(self.layers, self._counts())):
            if layer.form == "csr" and nnz < layer.nnz:
                self.layers[index] = CsrLayer.from_layer(layer, self.programs, self.capacity, keep_velocity=True)

    def reset_momentum(self):
        for layer in self.layers:
            for _values, _grad, velocity, _is_weight in layer.parameters():
                velocity.fill(0)

    def forward(self, x, batch):
        for layer in self.layers:
            x = layer.forward(x, batch)
        return x

    def backward(self, dlogits, x, batch):
        dy = dlogits
        for index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[index]
            below = self.layers[index - 1] if index else None
            dy = layer.backward(dy, below.y if below else x, batch, self.shared["bias_grad"],
                                need_dx=below is not None, mask_relu=bool(below and below.relu))

    def step(self, lr, momentum, lam, proximal=True):
        """SGD with momentum on every parameter, all arrays in one launch; the l1 term on the weights goes
        through the proximal operator (or, with proximal=False, into the gradient as a subgradient), then
        the mask of a dense masked layer applies. A plain function of (weights, gradients, state) on the
        device, so an all-reduce of the gradients could sit right before it."""
        arrays = [(values, grad, velocity, lam if is_weight else 0.0)
                  for layer in self.layers for values, grad, velocity, is_weight in layer.parameters()]
        if len(arrays) not in self._sgd_all:
            self._sgd_all[len(arrays)] = self.programs.kernels("train.cl.j2", ["sgd_all"], arrays=len(arrays),
                                                               **self._train_params)["sgd_all"]
        args, groups = [], 0
        for values, grad, velocity, l1 in arrays:
            threshold, l1_grad = (lr * l1, 0.0) if proximal else (0.0, l1)
            args += [values.data, grad.data, velocity.data, np.int32(values.size), np.float32(threshold),
                     np.float32(l1_grad), np.int32(groups)]
            groups += blocks(values.size, 256)
        self.launch(self._sgd_all[len(arrays)], (groups * 256,), *args, np.float32(lr), np.float32(momentum),
                    local=(256,))
        for layer in self.layers:
            if getattr(layer, "mask", None) is not None:
                self.launch(self.shared["apply_mask"], (layer.values.size,), layer.values.data, layer.mask.data,
                            np.int32(layer.values.size))

    def prune(self, density):
        """Magnitude pruning: zero the smallest weights, one threshold over all layers, so that about
        `density` of all weights stay; then freeze that support (CSR form, momentum kept)."""
        layers = self.weight_layers
        values = [l.values.get() for l in layers]
        live = [v.ravel()[:l.nnz] if l.form == "csr" else v.ravel() for v, l in zip(values, layers)]
        magnitudes = np.sort(np.abs(np.concatenate(live)))
        keep = int(round(density * sum(l.params for l in layers)))
        if keep < magnitudes.size:
            threshold = magnitudes[magnitudes.size - keep] if keep else np.inf
            for v, kept, layer in zip(values, live, layers):
                kept[np.abs(kept) < threshold] = 0      # views into values
                layer.values.set(v)
        self.to_csr(1.0, keep_velocity=True)
        self.compact()

    def _counts(self):
        """Nonzero weights of every layer (0 for pooling), one small reduction each on the device."""
        counts = []
        for layer in self.layers:
            if layer.form == "pool" or (layer.form == "csr" and not layer.nnz):
                counts.append(0)
                continue
            values = layer.values.ravel()[:layer.nnz] if layer.form == "csr" else layer.values.ravel()
            counts.append(int(self._count_nonzero(values).get()))
        return counts

    def nonzeros(self):
        """Nonzero weights per layer with weights."""
        return [n for n, layer in zip(self._counts(), self.layers) if layer.form != "pool"]

    def preprocess(self, raw, x, batch):
        """x = (raw - mean) * scale for `batch` raw samples (sample-major) into x (feature-major)."""
        self._pre["preprocess"](self.queue, (self.n_in, batch), None, raw.data, x.data, np.int32(batch))

    def normalise(self, data):
        """The same normalisation, in place, on a sample-major device array (a whole data set)."""
        self._pre["normalise"](self.queue, (data.size,), None, data.data, np.int32(data.size))

    def predict(self, raw):
        """Logits (n, classes) for raw inputs (n, ...) given as a host array, computed in chunks."""
        raw = np.ascontiguousarray(raw, dtype=np.float32).reshape(len(raw), self.n_in)
        logits = np.empty((len(raw), self.layers[-1].n_out), np.float32)
        for start in range(0, len(raw), self.capacity):
            chunk = raw[start:start + self.capacity]
            n = len(chunk)
            cl.enqueue_copy(self.queue, self._raw.data, chunk)
            self.preprocess(self._raw, self._x, n)
            y = self.forward(self._x, n)
            out = np.empty((logits.shape[1], n), np.float32)       # feature-major on the device
            cl.enqueue_copy(self.queue, out, y.data)
            logits[start:start + n] = out.T
        return logits
