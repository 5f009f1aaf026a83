import numpy as np
import pytest

from sparsecl.trainer.train import TrainConfig, train

from conftest import needs_opencl

pytestmark = needs_opencl


def quick(checkpoint_path=None, **kw):
    base = dict(arch="mlp:32", epochs=3, debias_epochs=2, lam=0.01, batch_size=32)
    base.update(kw)
    return train(TrainConfig(**base), progress=False, log=lambda *a: None, checkpoint_path=checkpoint_path)


def test_same_seed_same_weights_and_other_seed_differs():
    a, b, c = quick(seed=5), quick(seed=5), quick(seed=6)
    for la, lb, lc in zip(a.layers, b.layers, c.layers):
        assert np.array_equal(la.weights.toarray(), lb.weights.toarray())
        assert np.array_equal(la.bias, lb.bias)
    assert not np.array_equal(a.layers[0].weights.toarray(), c.layers[0].weights.toarray())


def test_debiasing_freezes_the_support_and_changes_the_values(tmp_path):
    from sparsecl.trainer import checkpoint
    ckpt, after_l1 = tmp_path / "run.ckpt.npz", {}

    def at_end_of_l1(message):             # the checkpoint of the epoch is written before its log line
        if message.startswith("l1 epoch 3/3"):
            after_l1.update(checkpoint.load(ckpt).layers)

    debiased = train(TrainConfig(arch="mlp:32", epochs=3, debias_epochs=2, lam=0.01), log=at_end_of_l1,
                     checkpoint_path=ckpt)
    assert after_l1
    for layer in debiased.layers:
        before = after_l1[layer.name][0]
        support = before != 0
        assert np.array_equal(layer.weights.toarray() != 0, support)
        assert not np.allclose(layer.weights.toarray()[support], before[support])
    log = debiased.training["log"]
    debias_nnz = [h["nnz"] for h in log if h["phase"] == "debias"]
    assert all(n == debias_nnz[0] for n in debias_nnz)


def test_l1_makes_weights_exactly_zero_and_stronger_l1_gives_fewer():
    weak, strong = quick(lam=0.0, debias_epochs=0), quick(lam=0.1, debias_epochs=0)
    assert weak.nnz == weak.params             # no l1: nothing is exactly zero
    assert strong.nnz < 0.5 * strong.params
    densities = [h["density"] for h in strong.training["log"]]
    assert len(densities) == 3 and all(len(d) == 2 for d in densities)


def test_training_learns_digits():
    model = quick(epochs=10, debias_epochs=5, lam=0.003)
    log = model.training["log"]
    assert log[-1]["test_acc"] > 0.85
    assert log[-1]["loss"] < log[0]["loss"]


def test_layers_move_to_csr_during_l1_and_their_support_only_shrinks():
    model = quick(lam=0.05, epochs=6, debias_epochs=1, csr_below=0.6)
    l1 = [h for h in model.training["log"] if h["phase"] == "l1"]
    assert l1[-1]["forms"][0] == "csr" and l1[0]["forms"][1] == "dense"
    for layer in range(2):
        moved = [i for i, h in enumerate(l1) if h["forms"][layer] == "csr"]
        if not moved:
            continue
        counts = [l1[i]["nnz"][layer] for i in moved]
        assert counts == sorted(counts, reverse=True)     # no regrowth once in CSR form
        assert l1[moved[0]]["density"][layer] <= 0.6


@pytest.mark.parametrize("stop_at", [2, 5])           # inside the l1 phase, inside debiasing
@pytest.mark.parametrize("csr_below", [0.0, 0.6])
def test_resume_after_interrupt_gives_the_same_weights(tmp_path, monkeypatch, stop_at, csr_below):
    from sparsecl.trainer import train as train_module
    from sparsecl.trainer.epochs import EpochRunner
    settings = dict(lam=0.05, epochs=4, debias_epochs=3, csr_below=csr_below)
    reference = quick(**settings)

    calls, original = [], EpochRunner.run

    def interrupting(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == stop_at + 1:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    ckpt = tmp_path / "run.ckpt.npz"
    monkeypatch.setattr(EpochRunner, "run", interrupting)
    with pytest.raises(train_module.Interrupted, match="--resume"):
        quick(checkpoint_path=ckpt, **settings)
    monkeypatch.setattr(EpochRunner, "run", original)
    resumed = train(None, progress=False, log=lambda *a: None, checkpoint_path=ckpt, resume=ckpt)
    for a, b in zip(reference.layers, resumed.layers):
        assert np.array_equal(a.weights.indptr, b.weights.indptr)
        assert np.array_equal(a.weights.indices, b.weights.indices)
        assert np.array_equal(a.weights.data, b.weights.data)
        assert np.array_equal(a.bias, b.bias)
    assert [h["epoch"] for h in resumed.training["log"]] == [1, 2, 3, 4, 1, 2, 3]


def test_damaged_checkpoint_is_refused(tmp_path):
    from sparsecl import SparseclError
    bad = tmp_path / "bad.ckpt.npz"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SparseclError, match="not a sparsecl checkpoint"):
        train(None, resume=bad)


def test_subgradient_l1_shrinks_weights_but_leaves_no_exact_zeros():
    plain, sub = quick(lam=0.0, debias_epochs=0), quick(lam=0.02, l1="subgradient", debias_epochs=0)
    assert sub.nnz == sub.params
    assert np.abs(sub.layers[0].weights.data).mean() < 0.8 * np.abs(plain.layers[0].weights.data).mean()


def test_magnitude_pruning_cuts_in_geometric_rounds_and_retrains_on_the_support():
    model = quick(lam=0.0, epochs=6, debias_epochs=2, prune_to=0.1, prune_rounds=3)
    log = model.training["log"]
    totals = [sum(h["nnz"]) / model.params for h in log]
    assert totals[0] == 1.0                                    # epoch 1: no round yet
    for epoch, target in ((2, 0.1 ** (1 / 3)), (4, 0.1 ** (2 / 3)), (6, 0.1)):
        assert abs(totals[epoch - 1] - target) < 1e-3, (epoch, totals)
    assert all(t == totals[5] for t in totals[5:])             # retraining keeps the support
    assert log[-1]["forms"] == ["csr", "csr"]
    assert abs(model.nnz / model.params - 0.1) < 1e-3


def test_lam_warmup_ramps_linearly():
    log = quick(lam=0.04, epochs=4, debias_epochs=1, lam_warmup=2).training["log"]
    assert [h["lam"] for h in log] == pytest.approx([0.02, 0.04, 0.04, 0.04, 0.0])


@pytest.mark.parametrize("bad, message", [(dict(l1="admm"), "--l1"), (dict(prune_to=0.1), "--lam 0"),
                                          (dict(lam=0, prune_to=1.5), "--prune-to"),
                                          (dict(lam_warmup=-1), "--lam-warmup")])
def test_bad_method_settings_are_refused(bad, message):
    from sparsecl import SparseclError
    with pytest.raises(SparseclError, match=message):
        quick(**bad)


def test_a_collapse_to_chance_level_is_reported():
    said = []
    train(TrainConfig(arch="mlp:32", epochs=3, debias_epochs=0, lr=5.0), log=said.append)
    assert any("chance level" in s and "--lr" in s for s in said)
    said.clear()
    train(TrainConfig(arch="mlp:32", epochs=3, debias_epochs=0), log=said.append)
    assert not any("chance level" in s for s in said)
