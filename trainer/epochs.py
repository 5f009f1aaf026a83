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
        net.normalise(self.x_all)      # sample-major: a batch gathers whole contiguous rows
        self.y_all = cla.to_device(queue, np.asarray(labels, np.int32))
        self.x = cla.empty(queue, (self.n_in, self.batch), np.float32)
        self.y = cla.empty(queue, (self.batch,), np.int32)
        self.dlogits = cla.empty(queue, (net.layers[-1].n_out, self.batch), np.float32)
        self.losses = cla.empty(queue, (self.steps * self.batch,), np.float32)
        self.correct = cla.empty(queue, (self.steps * self.batch,), np.int32)
        self.perm = cla.empty(queue, (self.n,), np.int32)
        self.shift = cla.empty(queue, (self.n, 2), np.int32)
        self.max_shift = augment if len(input_shape) >= 2 else 0
        mean, scale = (np.float32(net.preprocess_params[k]) for k in ("mean", "scale"))
        self.fill = np.float32((np.float32(0) - mean) * scale)   # a raw 0, normalised

    def run(self, phase_index, epoch, lr, momentum, lam, proximal=True, on_steps=None):
        """One epoch; returns (mean loss, training accuracy). The batch order and shifts depend only on
        (seed, phase, epoch), so a resumed run sees exactly the batches an uninterrupted one would."""
        rng = np.random.default_rng([self.seed, phase_index, epoch])
        self.perm.set(rng.permutation(self.n).astype(np.int32))
        self.shift.set(rng.integers(-self.max_shift, self.max_shift + 1, (self.n, 2), dtype=np.int32))
        k, b, net, launch = self.net.shared, self.batch, self.net, self.net.launch
        with launch.record() as plan:       # one step, replayed for every batch
            launch(k["gather_batch"], (self.n_in, b), self.x_all.data, self.y_all.data, self.perm.data,
                   self.shift.data, self.x.data, self.y.data, np.int32(0), np.int32(b), self.fill)
            logits = net.forward(self.x, b)
            launch(k["softmax_xent"], (b,), logits.data, self.y.data, self.dlogits.data, self.losses.data,
                   self.correct.data, np.int32(b), np.int32(0))
            net.backward(self.dlogits, self.x, b)
            net.step(lr, momentum, lam, proximal)
        gather, loss = plan[0][0], next(kernel for kernel, *_ in plan if kernel.function_name == "softmax_xent")
        for step in range(self.steps):
            gather.set_arg(6, np.int32(step * b))   # the batch's first position in perm
            loss.set_arg(6, np.int32(step * b))     # and in the epoch's loss buffers
            launch.replay(plan)
            if on_steps and step % 16 == 15:
                on_steps(16)
        return float(self.losses.get().mean()), float(self.correct.get().mean())
