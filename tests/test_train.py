import numpy as np
import pytest

from sparsecl.trainer.train import TrainConfig, train

from conftest import needs_opencl

pytestmark = needs_opencl


def quick(**kw):
    base = dict(arch="mlp:32", epochs=3, debias_epochs=2, lam=0.01, batch_size=32)
    base.update(kw)
    return train(TrainConfig(**base), progress=False, log=lambda *a: None)


def test_same_seed_same_weights_and_other_seed_differs():
    a, b, c = quick(seed=5), quick(seed=5), quick(seed=6)
    for la, lb, lc in zip(a.layers, b.layers, c.layers):
        assert np.array_equal(la.weights.toarray(), lb.weights.toarray())
        assert np.array_equal(la.bias, lb.bias)
    assert not np.array_equal(a.layers[0].weights.toarray(), c.layers[0].weights.toarray())


def test_debiasing_freezes_the_support_and_changes_the_values():
    after_l1 = quick(debias_epochs=0)
    debiased = quick(debias_epochs=2)
    for a, b in zip(after_l1.layers, debiased.layers):
        assert np.array_equal(a.weights.indptr, b.weights.indptr)
        assert np.array_equal(a.weights.indices, b.weights.indices)
        assert not np.array_equal(a.weights.data, b.weights.data)
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
