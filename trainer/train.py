"""Training from scratch: a proximal l1 phase, then debiasing on the frozen support in CSR form without
the l1 term. The baselines it is measured against train here too, with the same kernels: dense (lam 0),
l1 by plain subgradient steps (l1="subgradient"), and iterative magnitude pruning with retraining
(prune_to: the l1 phase trains without l1 and prunes in rounds; debiasing then retrains).

A checkpoint is written after every epoch (atomically), and a run continues from one with exactly the
weights an uninterrupted run would have had.
"""

import os
import sys
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
from tqdm import tqdm

from sparsecl import SparseclError
from sparsecl.modelfile import Layer, Model
from sparsecl.trainer import archs, checkpoint, datasets
from sparsecl.trainer.device import create_context
from sparsecl.trainer.epochs import EpochRunner
from sparsecl.trainer.network import Network

PHASES = ("l1", "debias")
L1_SOLVERS = ("prox", "subgradient")


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
    csr_below: float = 0.0     # in the l1 phase, a layer moves to CSR form once its density is at most this
    l1: str = "prox"           # "prox": proximal steps (exact zeros); "subgradient": lam * sign(w) in the gradient
    lam_warmup: int = 0        # lam ramps linearly from lam/N to lam over the first N epochs
    prune_to: float = 0.0      # magnitude pruning (with lam 0) down to this density, in prune_rounds rounds
    prune_rounds: int = 3
    seed: int = 0
    name: str = ""

    def validate(self):
        checks = [(self.lam >= 0, "--lam must be >= 0"), (self.epochs >= 0, "--epochs must be >= 0"),
                  (self.debias_epochs >= 0, "--debias-epochs must be >= 0"),
                  (self.batch_size >= 1, "--batch-size must be >= 1"), (self.lr > 0, "--lr must be > 0"),
                  (0 <= self.momentum < 1, "--momentum must be in [0, 1)"),
                  (self.augment >= 0, "--augment must be >= 0"),
                  (0 <= self.csr_below <= 1, "--csr-below must be in [0, 1]"),
                  (self.l1 in L1_SOLVERS, f"--l1 must be one of {', '.join(L1_SOLVERS)}"),
                  (self.lam_warmup >= 0, "--lam-warmup must be >= 0"),
                  (0 <= self.prune_to < 1, "--prune-to must be in [0, 1)"),
                  (self.prune_rounds >= 1, "--prune-rounds must be >= 1"),
                  (not self.prune_to or self.lam == 0, "magnitude pruning trains without l1: add --lam 0"),
                  (not self.prune_to or self.epochs >= 1, "magnitude pruning needs --epochs >= 1")]
        for ok, message in checks:
            if not ok:
                raise SparseclError(message)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class Interrupted(SparseclError):
    """Training stopped by Ctrl-C; the last completed epoch is in the checkpoint (if any)."""


def init_layers(specs, rng):
    """He-initialised dense weights and zero biases: [(name, geometry, weights, bias, relu)]."""
    layers = []
    for name, geometry, relu in specs:
        if geometry.weight_shape is None:
            layers.append((name, geometry, None, None, relu))
            continue
        rows, fan_in = geometry.weight_shape
        weights = (rng.standard_normal((rows, fan_in)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        layers.append((name, geometry, weights, np.zeros(geometry.bias_size, np.float32), relu))
    return layers


def lr_at(config, phase, epoch):
    """Constant in the l1 phase, then cosine decay to zero over the last phase (a clean finish: on the
    frozen support when there is debiasing, else at the end of the l1 phase)."""
    if phase == "l1" and config.debias_epochs:
        return config.lr
    epochs = config.epochs if phase == "l1" else config.debias_epochs
    return config.lr * 0.5 * (1 + np.cos(np.pi * epoch / max(epochs, 1)))


def lam_at(config, epoch):
    """The l1 strength of an l1-phase epoch: a linear warm-up over lam_warmup epochs, then lam."""
    return config.lam * min(1.0, (epoch + 1) / config.lam_warmup) if config.lam_warmup else config.lam


def prune_density(config, epoch):
    """The density that magnitude pruning cuts to after l1-phase epoch `epoch` (0-based), or None. Round r of
    R ends at epoch round(epochs * r / R) and keeps prune_to ** (r / R): geometric steps, the last one at the
    end of the phase, with retraining in between and in the debias phase."""
    if not config.prune_to:
        return None
    rounds = [r for r in range(1, config.prune_rounds + 1)
              if round(config.epochs * r / config.prune_rounds) == epoch + 1]
    return config.prune_to ** (max(rounds) / config.prune_rounds) if rounds else None


def _restore(net, state: checkpoint.Checkpoint):
    for layer in net.weight_layers:
        _w, _b, velocity, vbias = state.layers[layer.name]
        if velocity.size:
            layer.vvalues.set(np.ascontiguousarray(velocity, np.float32))
        layer.vbias.set(np.ascontiguousarray(vbias, np.float32))


def train(config: TrainConfig = None, device=None, progress=True, log=print, checkpoint_path=None,
          resume=None) -> Model:
    """Train as config says, or continue the run in the checkpoint file `resume`."""
    state = checkpoint.load(resume) if resume else None
    if state:
        config = TrainConfig.from_dict(state.config)
    config.validate()
    data = datasets.load(config.dataset)
    n_in = int(np.prod(data.input_shape))
    specs = archs.layer_specs(config.arch, data.input_shape, data.classes)
    raw_train = data.x_train.reshape(len(data.x_train), n_in).astype(np.float32)
    if state:
        preprocess = state.preprocess
        try:
            layers = [(name, g, *(state.layers[name][:2] if g.weight_shape else (None, None)), relu)
                      for name, g, relu in specs]
        except KeyError as e:
            raise SparseclError(f"{resume}: damaged checkpoint (no layer {e})") from None
    else:
        std = float(raw_train.std())
        preprocess = {"mean": float(raw_train.mean()), "scale": 1.0 / std if std > 0 else 1.0}
        layers = init_layers(specs, np.random.default_rng(config.seed))

    context, queue, info = create_context(device)
    log(f"device: {info.name} ({info.platform})")
    net = Network(context, queue, layers, data.classes, preprocess, capacity=min(config.batch_size, len(raw_train)),
                  input_shape=data.input_shape)
    if state:
        _restore(net, state)
        log(f"resuming {resume}: {PHASES[state.phase_index]} phase, epoch {state.epoch + 1}")
    runner = EpochRunner(net, raw_train, data.y_train, data.input_shape, config.batch_size, config.augment,
                         config.seed)
    history = list(state.history) if state else []
    start_phase, start_epoch = (state.phase_index, state.epoch) if state else (0, 0)
    elapsed_before, started = (state.elapsed if state else 0.0), time.perf_counter()

    budgets = (config.epochs, config.debias_epochs)
    for phase_index in range(start_phase, len(PHASES)):
        phase, epochs = PHASES[phase_index], budgets[phase_index]
        first = start_epoch if phase_index == start_phase else 0
        if phase == "debias" and first == 0:
            net.to_csr()                         # freeze the support; momentum starts afresh
            net.compact()
            net.reset_momentum()
        live = progress and sys.stderr.isatty()  # a bar on a terminal; in a log, a line per tenth instead
        bar = tqdm(total=epochs * runner.steps, initial=first * runner.steps, desc=f"{phase:>6}",
                   disable=not live, unit="step", dynamic_ncols=True)
        try:
            for epoch in range(first, epochs):
                t0 = time.perf_counter()
                lr = lr_at(config, phase, epoch)
                lam = lam_at(config, epoch) if phase == "l1" else 0.0
                loss, train_acc = runner.run(phase_index, epoch, lr, config.momentum, lam, config.l1 == "prox",
                                             on_steps=bar.update if live else None)
                if not np.isfinite(loss):
                    raise SparseclError(f"training diverged in {phase} epoch {epoch + 1} (loss {loss}); "
                                        "lower --lr or --lam")
                if train_acc < 1.5 / data.classes and len(history) == 1:    # said once: after the 2nd epoch
                    # a finite loss stuck at log(classes): the network collapsed (seen with too high a rate)
                    log(f"warning: training accuracy {train_acc:.3f} after two epochs is at chance level; "
                        "the learning rate (--lr) or l1 strength (--lam) may be too high")
                if phase == "l1" and prune_density(config, epoch):
                    net.prune(prune_density(config, epoch))
                elif phase == "l1" and config.csr_below > 0:
                    net.to_csr(config.csr_below, keep_velocity=True)
                    net.compact()
                test_acc = float(np.mean(net.predict(data.x_test).argmax(1) == data.y_test))
                nnz = net.nonzeros()
                density = [n / l.params for n, l in zip(nnz, net.weight_layers)]
                total = sum(nnz) / sum(l.params for l in net.weight_layers)
                history.append({"phase": phase, "epoch": epoch + 1, "lr": float(lr), "lam": lam, "loss": loss,
                                "train_acc": train_acc, "test_acc": test_acc, "nnz": nnz, "density": density,
                                "forms": [l.form for l in net.weight_layers],
                                "seconds": time.perf_counter() - t0})
                if checkpoint_path:
                    position = (phase_index, epoch + 1) if epoch + 1 < epochs else (phase_index + 1, 0)
                    checkpoint.save(checkpoint_path, asdict(config), *position, history, preprocess, net,
                                    elapsed_before + time.perf_counter() - started)
                bar.n = (epoch + 1) * runner.steps
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{train_acc:.3f}", test=f"{test_acc:.3f}",
                                density=f"{total:.3f}")
                if progress and not live and ((epoch + 1) % max(1, epochs // 10) == 0 or epoch + 1 == epochs):
                    log(f"{phase} epoch {epoch + 1}/{epochs}: loss {loss:.4f}, train accuracy {train_acc:.4f}, "
                        f"test accuracy {test_acc:.4f}, density {total:.4f}")
        except KeyboardInterrupt:
            bar.close()
            saved = checkpoint_path and os.path.exists(checkpoint_path)
            raise Interrupted(f"interrupted; resume with: sparsecl train --resume {checkpoint_path}" if saved
                              else "interrupted before the first epoch ended; nothing to resume") from None
        bar.close()

    layers = [Layer(l.name, l.geometry.kind, l.n_in, l.n_out, False, None, None, l.geometry) if l.form == "pool"
              else Layer(l.name, l.geometry.kind, l.n_in, l.n_out, l.relu, l.weights(), l.bias.get(), l.geometry)
              for l in net.layers]
    final = history[-1] if history else {}
    summary = {"config": asdict(config), "device": info.name,
               "seconds": elapsed_before + time.perf_counter() - started,
               "test_acc": final.get("test_acc"), "train_acc": final.get("train_acc"),
               "nnz": sum(l.nnz for l in layers), "params": sum(l.params for l in layers)}
    name = config.name or f"{config.dataset}-{config.arch}".replace(":", "-").replace(",", "-")
    return Model(name, config.arch, config.dataset, data.input_shape, data.classes, preprocess, layers,
                 {"summary": summary, "log": history})
