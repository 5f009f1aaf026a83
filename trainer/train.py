"""Training from scratch: proximal l1 phase (dense, zeros may regrow), then debiasing on the frozen
support in CSR form without the l1 term.

The whole epoch stays on the device: batches are gathered by a kernel from a device copy of the data set,
per-sample losses land in an epoch-long buffer, and the host waits once per epoch.
"""

import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import pyopencl as cl
import pyopencl.array as cla
from tqdm import tqdm

from sparsecl import SparseclError
from sparsecl.modelfile import Layer, Model, to_csr
from sparsecl.trainer import archs, datasets
from sparsecl.trainer.device import create_context
from sparsecl.trainer.network import Network


@dataclass
class TrainConfig:
    dataset: str = "digits"
    arch: str = "lenet-300-100"
    lam: float = 0.01          # l1 strength: loss = mean cross-entropy + lam * sum |w|
    epochs: int = 100          # proximal l1 phase
    debias_epochs: int = 50    # frozen support, no l1 term, CSR form
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    augment: int = 1           # random shifts of up to this many pixels (images only; 0 disables)
    seed: int = 0
    name: str = ""

    def validate(self):
        checks = [(self.lam >= 0, "--lam must be >= 0"), (self.epochs >= 0, "--epochs must be >= 0"),
                  (self.debias_epochs >= 0, "--debias-epochs must be >= 0"),
                  (self.batch_size >= 1, "--batch-size must be >= 1"), (self.lr > 0, "--lr must be > 0"),
                  (0 <= self.momentum < 1, "--momentum must be in [0, 1)"),
                  (self.augment >= 0, "--augment must be >= 0")]
        for ok, message in checks:
            if not ok:
                raise SparseclError(message)


def init_layers(specs, rng):
    """He-initialised dense weights and zero biases: [(name, weights, bias, relu)]."""
    return [(name, (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32),
             np.zeros(n_out, np.float32), relu) for name, _kind, n_in, n_out, relu in specs]


def lr_at(config, phase, epoch):
    """Constant rate in the l1 phase; cosine decay to zero over debiasing (a clean finish on the support)."""
    if phase == "l1":
        return config.lr
    return config.lr * 0.5 * (1 + np.cos(np.pi * epoch / max(config.debias_epochs, 1)))


def train(config: TrainConfig, device=None, progress=True, log=print) -> Model:
    config.validate()
    data = datasets.load(config.dataset)
    n_in = int(np.prod(data.input_shape))
    specs = archs.layer_specs(config.arch, n_in, data.classes)
    raw_train = data.x_train.reshape(len(data.x_train), n_in).astype(np.float32)
    std = float(raw_train.std())
    preprocess = {"mean": float(raw_train.mean()), "scale": 1.0 / std if std > 0 else 1.0}

    rng = np.random.default_rng(config.seed)
    context, queue, info = create_context(device)
    log(f"device: {info.name} ({info.platform})")
    n_train, batch = len(raw_train), min(config.batch_size, len(raw_train))
    net = Network(context, queue, init_layers(specs, rng), data.classes, preprocess, capacity=batch)

    # The data set lives on the device, normalised once.
    x_all = cla.to_device(queue, raw_train)
    net.preprocess(x_all, x_all, x_all.size)
    y_all = cla.to_device(queue, data.y_train.astype(np.int32))
    x_batch = cla.empty(queue, (batch, n_in), np.float32)
    y_batch = cla.empty(queue, (batch,), np.int32)
    dlogits = cla.empty(queue, (batch, data.classes), np.float32)
    steps = n_train // batch                     # the last partial batch is dropped; shuffling varies it
    losses = cla.empty(queue, (steps * batch,), np.float32)
    correct = cla.empty(queue, (steps * batch,), np.int32)
    perm_dev = cla.empty(queue, (n_train,), np.int32)
    shift_dev = cla.empty(queue, (n_train, 2), np.int32)
    height, cols = data.input_shape[-2:] if len(data.input_shape) >= 2 else (1, n_in)
    max_shift = config.augment if len(data.input_shape) >= 2 else 0
    fill = np.float32((np.float32(0.0) - np.float32(preprocess["mean"])) * np.float32(preprocess["scale"]))
    k = net.shared

    history, started = [], time.perf_counter()
    for phase, epochs, lam in (("l1", config.epochs, config.lam), ("debias", config.debias_epochs, 0.0)):
        if phase == "debias":
            net.to_csr()
        # A live bar on a terminal; in a log, a line every tenth of the phase instead.
        live = progress and sys.stderr.isatty()
        bar = tqdm(total=epochs * steps, desc=f"{phase:>6}", disable=not live, unit="step", dynamic_ncols=True)
        for epoch in range(epochs):
            t0 = time.perf_counter()
            lr = lr_at(config, phase, epoch)
            # Each epoch's order depends only on (seed, phase, epoch): a resumed run sees the same batches.
            epoch_rng = np.random.default_rng([config.seed, phase == "debias", epoch])
            perm_dev.set(epoch_rng.permutation(n_train).astype(np.int32))
            shift_dev.set(epoch_rng.integers(-max_shift, max_shift + 1, (n_train, 2), dtype=np.int32))
            for step in range(steps):
                k["gather_batch"](queue, (n_in, batch), None, x_all.data, y_all.data, perm_dev.data,
                                  shift_dev.data, x_batch.data, y_batch.data, np.int32(step * batch),
                                  np.int32(n_in), np.int32(height), np.int32(cols), fill)
                logits = net.forward(x_batch, batch)
                k["softmax_xent"](queue, (batch,), None, logits.data, y_batch.data, dlogits.data,
                                  losses.data, correct.data, np.int32(batch), np.int32(step * batch))
                net.backward(dlogits, x_batch, batch)
                net.step(lr, config.momentum, lam)
                if live and step % 16 == 15:
                    bar.update(16)
            loss = float(losses.get().mean())
            if not np.isfinite(loss):
                raise SparseclError(f"training diverged in {phase} epoch {epoch + 1} (loss {loss}); "
                                    "lower --lr or --lam")
            train_acc = float(correct.get().mean())
            test_acc = float(np.mean(net.predict(data.x_test).argmax(1) == data.y_test))
            nnz = net.nonzeros()
            density = [n / (l.n_in * l.n_out) for n, l in zip(nnz, net.layers)]
            total_density = sum(nnz) / sum(l.n_in * l.n_out for l in net.layers)
            history.append({"phase": phase, "epoch": epoch + 1, "lr": float(lr), "loss": loss,
                            "train_acc": train_acc, "test_acc": test_acc, "nnz": nnz, "density": density,
                            "seconds": time.perf_counter() - t0})
            bar.n = (epoch + 1) * steps
            bar.set_postfix(loss=f"{loss:.3f}", acc=f"{train_acc:.3f}", test=f"{test_acc:.3f}",
                            density=f"{total_density:.3f}")
            if progress and not live and ((epoch + 1) % max(1, epochs // 10) == 0 or epoch + 1 == epochs):
                log(f"{phase} epoch {epoch + 1}/{epochs}: loss {loss:.4f}, train accuracy {train_acc:.4f}, "
                    f"test accuracy {test_acc:.4f}, density {total_density:.4f}")
        bar.close()

    layers = [Layer(l.name, "dense", l.n_in, l.n_out, l.relu, l.weights(), l.bias.get()) for l in net.layers]
    final = history[-1] if history else {}
    summary = {"config": asdict(config), "device": info.name, "seconds": time.perf_counter() - started,
               "test_acc": final.get("test_acc"), "train_acc": final.get("train_acc"),
               "nnz": sum(l.nnz for l in layers), "params": sum(l.params for l in layers)}
    name = config.name or f"{config.dataset}-{config.arch}".replace(":", "-").replace(",", "-")
    return Model(name, config.arch, config.dataset, data.input_shape, data.classes, preprocess, layers,
                 {"summary": summary, "log": history})
