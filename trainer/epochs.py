"""One epoch of minibatch training, entirely on the device.

The data set lives on the device (normalised once); each batch is gathered there by a kernel (with the
random image shifts of augmentation), per-sample losses land in an epoch-long buffer, and the host waits
once per epoch.
"""

import numpy as np
import pyopencl.array as cla


class EpochRunner:
    def __init__(self, net, raw_train, labels, input_shape, batch, augment=0, seed=0):
        queue = net.queue
        self.net, self.queue, self.seed = net, queue, seed
        self.n, self.n_in = len(raw_train), net.n_in
        self.batch = min(batch, self.n)
        self.steps = self.n // self.batch     # the last partial batch is dropped; shuffling varies it
        self.x_all = cla.to_device(queue, np.ascontiguousarray(raw_train, np.float32).reshape(self.n, self.n_in))
        net.preprocess(self.x_all, self.x_all, self.x_all.size)
        self.y_all = cla.to_device(queue, np.asarray(labels, np.int32))
        self.x = cla.empty(queue, (self.batch, self.n_in), np.float32)
        self.y = cla.empty(queue, (self.batch,), np.int32)
        self.dlogits = cla.empty(queue, (self.batch, net.layers[-1].n_out), np.float32)
        self.losses = cla.empty(queue, (self.steps * self.batch,), np.float32)
        self.correct = cla.empty(queue, (self.steps * self.batch,), np.int32)
        self.perm = cla.empty(queue, (self.n,), np.int32)
        self.shift = cla.empty(queue, (self.n, 2), np.int32)
        image = len(input_shape) >= 2
        self.height, self.cols = input_shape[-2:] if image else (1, self.n_in)
        self.max_shift = augment if image else 0
        mean, scale = (np.float32(net.preprocess_params[k]) for k in ("mean", "scale"))
        self.fill = np.float32((np.float32(0) - mean) * scale)   # a raw 0, normalised

    def run(self, phase_index, epoch, lr, momentum, lam, on_steps=None):
        """One epoch; returns (mean loss, training accuracy). The batch order and shifts depend only on
        (seed, phase, epoch), so a resumed run sees exactly the batches an uninterrupted one would."""
        rng = np.random.default_rng([self.seed, phase_index, epoch])
        self.perm.set(rng.permutation(self.n).astype(np.int32))
        self.shift.set(rng.integers(-self.max_shift, self.max_shift + 1, (self.n, 2), dtype=np.int32))
        k, q, b, net = self.net.shared, self.queue, self.batch, self.net
        for step in range(self.steps):
            k["gather_batch"](q, (self.n_in, b), None, self.x_all.data, self.y_all.data, self.perm.data,
                              self.shift.data, self.x.data, self.y.data, np.int32(step * b), np.int32(self.n_in),
                              np.int32(self.height), np.int32(self.cols), self.fill)
            logits = net.forward(self.x, b)
            k["softmax_xent"](q, (b,), None, logits.data, self.y.data, self.dlogits.data, self.losses.data,
                              self.correct.data, np.int32(b), np.int32(step * b))
            net.backward(self.dlogits, self.x, b)
            net.step(lr, momentum, lam)
            if on_steps and step % 16 == 15:
                on_steps(16)
        return float(self.losses.get().mean()), float(self.correct.get().mean())
