"""The command line end to end: train for a few seconds, generate both targets, build, run, verify."""

import copy
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sparsecl import modelfile
from sparsecl.cli import main

from conftest import needs_gcc, needs_opencl

SPARSECL = shutil.which("sparsecl") or os.path.join(os.path.dirname(sys.executable), "sparsecl")


def cli(*args, env=None):
    return subprocess.run([SPARSECL, *map(str, args)], capture_output=True, text=True, timeout=600, env=env)


@needs_opencl
@needs_gcc
def test_train_generate_verify_end_to_end(tmp_path):
    model_path = tmp_path / "m.npz"
    result = cli("train", "--arch", "mlp:48", "--epochs", "4", "--debias-epochs", "2", "--lam", "0.02",
                 "--quiet", "-o", model_path)
    assert result.returncode == 0, result.stderr
    assert "saved" in result.stdout and model_path.exists()
    model = modelfile.load(model_path)
    assert 0 < model.nnz < model.params
    outputs = {}
    for target in ("opencl", "c"):
        bundle = tmp_path / target
        result = cli("generate", model_path, "--target", target, "-o", bundle)
        assert result.returncode == 0, result.stderr
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["target"] == target and manifest["totals"]["nnz"] == model.nnz
        result = cli("verify", model_path, bundle)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "100.00%" in result.stdout and "verify passed" in result.stdout
        np.save(tmp_path / "x.npy", np.arange(64 * 3, dtype=np.uint8).reshape(3, 8, 8) % 17)
        assert subprocess.run([bundle / "infer", tmp_path / "x.npy", tmp_path / f"{target}.npy"]).returncode == 0
        outputs[target] = np.load(tmp_path / f"{target}.npy")
    assert np.abs(outputs["c"] - outputs["opencl"]).max() <= 1e-4


@needs_opencl
@needs_gcc
def test_verify_fails_on_a_bundle_of_another_model(tmp_path, small_model):
    from sparsecl.codegen.generate import write_bundle
    from sparsecl.codegen.plan import plan
    modelfile.save(small_model, tmp_path / "a.npz")
    changed = copy.deepcopy(small_model)
    changed.layers[2].bias = changed.layers[2].bias + 1.0
    modelfile.save(changed, tmp_path / "b.npz")
    write_bundle(plan(modelfile.load(tmp_path / "a.npz"), "c"), tmp_path / "bundle")
    result = cli("verify", tmp_path / "b.npz", tmp_path / "bundle", "--limit", "50")
    assert result.returncode == 1
    assert "verify FAILED" in result.stderr


@needs_opencl
def test_devices_lists_and_marks_the_used_one():
    result = cli("devices")
    assert result.returncode == 0, result.stderr
    assert "*" in result.stdout and "used: 0:0" in result.stdout


@needs_opencl
def test_unknown_device_is_a_one_line_error():
    result = cli("devices", "--device", "no-such-gpu")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "no OpenCL device matches" in result.stderr


def test_no_opencl_platform_says_what_to_install(tmp_path):
    env = dict(os.environ, OCL_ICD_VENDORS=str(tmp_path), OCL_ICD_FILENAMES="")
    result = cli("devices", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("sparsecl: error: no OpenCL platform found") and "apt-get install" in result.stderr


@pytest.mark.parametrize("args,fragment", [
    (["generate", "missing.npz", "-o", "x"], "cannot read model"),
    (["train", "--dataset", "cifar", "-o", "x.npz"], "unknown dataset"),
    (["train", "--arch", "resnet", "-o", "x.npz"], "unknown architecture"),
    (["train", "--arch", "mlp:0", "-o", "x.npz"], "bad architecture"),
    (["train", "--batch-size", "0", "-o", "x.npz"], "--batch-size"),
])
def test_bad_input_is_a_one_line_error(tmp_path, args, fragment, capsys):
    os.chdir(tmp_path)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err


@pytest.mark.parametrize("args", [[], ["train"], ["generate"], ["generate", "m.npz", "--target", "cuda", "-o", "x"],
                                  ["train", "--epochs", "many", "-o", "x"], ["frobnicate"]])
def test_bad_arguments_give_usage_not_traceback(args):
    result = cli(*args)
    assert result.returncode == 2
    assert "usage:" in result.stderr and "Traceback" not in result.stderr


def test_generate_rejects_a_malformed_model_and_writes_nothing(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    result = cli("generate", tmp_path / "bad.npz", "-o", tmp_path / "out")
    assert result.returncode == 1 and "not a sparsecl model file" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["bad.npz"]


@needs_opencl
def test_ctrl_c_saves_a_checkpoint_and_resume_ends_with_the_same_weights(tmp_path):
    import signal
    import time
    args = ["train", "--arch", "mlp:32", "--epochs", "60", "--debias-epochs", "5", "--lam", "0.02", "--quiet"]
    assert cli(*args, "-o", tmp_path / "full.npz").returncode == 0
    assert not (tmp_path / "full.ckpt.npz").exists()          # removed once the model is saved
    ckpt = tmp_path / "cut.ckpt.npz"
    proc = subprocess.Popen([SPARSECL, *args, "-o", str(tmp_path / "cut.npz")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"--resume {ckpt}" in err and not (tmp_path / "cut.npz").exists()
    result = cli("train", "--resume", ckpt, "--quiet", "-o", tmp_path / "cut.npz")
    assert result.returncode == 0, result.stderr
    full, cut = modelfile.load(tmp_path / "full.npz"), modelfile.load(tmp_path / "cut.npz")
    for a, b in zip(full.layers, cut.layers):
        assert np.array_equal(a.weights.toarray(), b.weights.toarray()) and np.array_equal(a.bias, b.bias)


@needs_opencl
@needs_gcc
def test_bench_reports_every_implementation_side_by_side(tmp_path, small_model):
    modelfile.save(small_model, tmp_path / "m.npz")
    result = cli("bench", tmp_path / "m.npz", "--runs", "5", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    impls = {r["impl"] for r in rows}
    assert {"c bundle (c)", "opencl bundle (opencl)", "scipy CSR"} <= impls
    assert {r["batch"] for r in rows} == {1, 256} and len({r["threads"] for r in rows}) == 2
    for r in rows:
        assert 0 < r["median_s"] <= r["p90_s"]


def test_generate_variant_option(tmp_path, small_model):
    small_model_file = tmp_path / "m.npz"
    modelfile.save(small_model, small_model_file)
    result = cli("generate", small_model_file, "--target", "c", "--variant", "fc1=dense,fc3=unrolled",
                      "-o", tmp_path / "b")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    variants = [(l["variant"], l["why"]) for l in manifest["layers"]]
    assert variants[0] == ("dense", "chosen by the user") and variants[2] == ("unrolled", "chosen by the user")
    assert variants[1][1].startswith("cost model")
    bad = cli("generate", small_model_file, "--variant", "fc9=csr", "-o", tmp_path / "c")
    assert bad.returncode != 0 and "no layer 'fc9'" in bad.stderr
