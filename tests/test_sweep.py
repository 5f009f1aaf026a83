import csv

import pytest

from sparsecl import SparseclError, sweep
from sparsecl.trainer.train import TrainConfig

from conftest import needs_opencl


def test_pareto_keeps_the_rows_nothing_beats_on_both_axes():
    rows = [{"test_error": e, "nonzeros": n} for e, n in [(0.02, 100), (0.03, 50), (0.025, 120), (0.02, 100),
                                                          (0.05, 50)]]
    front = sweep.pareto(rows)
    assert [(r["test_error"], r["nonzeros"]) for r in front] == [(0.02, 100), (0.03, 50), (0.02, 100)]


def test_every_method_has_the_same_epoch_budget():
    for method in sweep.METHODS:
        o = sweep.method_overrides(method, 0.01, 30)
        assert o["epochs"] + o["debias_epochs"] == 30
        TrainConfig(**o).validate()
    with pytest.raises(SparseclError, match="unknown method"):
        sweep.method_overrides("lottery", 0.1, 30)


def test_train_command_names_the_method_and_what_differs_from_the_defaults():
    config = TrainConfig(dataset="mnist", arch="lenet-5", lam=0.0, epochs=20, debias_epochs=10, prune_to=0.05)
    assert sweep.train_command(config, "m.npz") == ("sparsecl train --dataset mnist --arch lenet-5 --lam 0 "
                                                    "--epochs 20 --debias-epochs 10 --prune-to 0.05 -o m.npz")


@needs_opencl
def test_sweep_writes_rows_verifies_bundles_reuses_runs_and_keeps_the_notes(tmp_path):
    results, md, models = tmp_path / "r.csv", tmp_path / "r.md", tmp_path / "models"
    base = TrainConfig(dataset="digits", arch="mlp:16", batch_size=64)
    said = []
    sweep.sweep(base, ["dense", "pruning", "prox-debias"], [0.05], [0.3], 3, str(results), str(models),
                verify=True, log=said.append)
    with open(results) as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == ["dense", "pruning", "prox-debias"]
    assert set(sweep.COLUMNS) <= set(rows[0])
    for r in rows:
        assert r["bundle_error"] == r["test_error"]         # the built bundle reproduces the trainer
        assert float(r["density"]) == pytest.approx(int(r["nonzeros"]) / int(r["params"]), abs=1e-5)
        assert int(r["weight_bytes"]) >= 4 * int(r["nonzeros"])
    assert rows[0]["density"] == "1.00000"
    assert float(rows[1]["density"]) == pytest.approx(0.3, abs=1e-3)
    assert float(rows[2]["density"]) < 1
    assert all((models / f"{n}.npz").exists() for n in ("digits-mlp-16-dense", "digits-mlp-16-prox-debias-0.05"))

    said.clear()
    sweep.sweep(base, ["dense"], [], [], 3, str(results), str(models), log=said.append)
    assert "finished earlier" in said[0] and len(said) == 2          # reused, not trained again
    before = (models / "digits-mlp-16-dense.npz").read_bytes()
    with pytest.raises(SparseclError, match="epochs 3 here, 4 wanted.*another --models folder"):
        sweep.sweep(base, ["dense"], [], [], 4, str(results), str(models), log=said.append)
    assert (models / "digits-mlp-16-dense.npz").read_bytes() == before   # another budget overwrites nothing

    md.write_text("# Results\n\nOur notes.\n")
    sweep.render(str(results), str(md), str(tmp_path / "plots"))
    sweep.render(str(results), str(md), str(tmp_path / "plots"))     # idempotent: notes kept once
    text = md.read_text()
    assert text.count("Our notes.") == 1 and text.count(sweep.MARKER) == 1
    assert "## mlp:16 on digits" in text and "--prune-to 0.3" in text
    assert (tmp_path / "plots" / "pareto-mlp-16-digits.png").read_bytes()[:4] == b"\x89PNG"


def test_an_l1_warmup_is_part_of_the_setting_and_the_run_name():
    warm = TrainConfig(dataset="mnist", arch="mlp:300,100", lam_warmup=5)
    assert sweep.setting_label("prox-debias", 0.005, warm) == "lam=0.005 warmup=5"
    assert sweep.run_name(warm, "prox-debias", 0.005) == "mnist-mlp-300-100-prox-debias-0.005-warmup5"
    assert sweep.setting_label("pruning", 0.05, warm) == "density=0.05"
    assert sweep.run_name(warm, "dense", 0) == "mnist-mlp-300-100-dense"


def test_another_seed_is_another_run():
    seeded = TrainConfig(dataset="mnist", arch="lenet-5", seed=2)
    assert sweep.setting_label("prox", 0.0015, seeded) == "lam=0.0015 seed=2"
    assert sweep.setting_label("dense", 0, seeded) == "seed=2"
    assert sweep.run_name(seeded, "prox", 0.0015) == "mnist-lenet-5-prox-0.0015-seed2"


def test_a_longer_budget_adds_a_row_and_the_same_run_replaces_its_row():
    row = dict(arch="lenet-5", dataset="mnist", method="prox", setting="lam=0.002", epochs="20", test_error="0.01")
    longer = dict(row, epochs=40, test_error="0.009")
    rows = sweep.merge(sweep.merge([row], longer), dict(longer, test_error="0.008"))
    assert [(str(r["epochs"]), r["test_error"]) for r in rows] == [("20", "0.01"), ("40", "0.008")]
