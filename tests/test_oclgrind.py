"""Every kernel under Oclgrind, a simulator that reports out-of-bounds accesses and data races; any report
fails the test (Oclgrind itself exits 0 when it finds errors, so its log is what counts)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from sparsecl.codegen.generate import write_bundle
from sparsecl.codegen.plan import plan

from conftest import needs_gcc, run

ICD = "/usr/lib/oclgrind/liboclgrind-rt-icd.so"
pytestmark = pytest.mark.skipif(not os.path.exists(ICD), reason="no Oclgrind (make test installs it)")


def oclgrind_env(tmp_path):
    (tmp_path / "oclgrind.icd").write_text(ICD + "\n")
    log = tmp_path / "oclgrind.log"
    return dict(os.environ, OCL_ICD_VENDORS=str(tmp_path / "oclgrind.icd"), OCLGRIND_DATA_RACES="1",
                OCLGRIND_LOG=str(log), SPARSECL_NO_CACHE="1"), log


def test_training_kernels(tmp_path):
    env, log = oclgrind_env(tmp_path)
    script = os.path.join(os.path.dirname(__file__), "oclgrind_workload.py")
    result = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Oclgrind")            # the simulator really ran the kernels
    assert log.exists() and log.read_text() == ""


@needs_gcc
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_bundle_kernels(small_model, small_cnn_model, tmp_path, precision):
    env, log = oclgrind_env(tmp_path)
    raw = np.random.default_rng(5).integers(0, 17, (13, 8, 8)).astype(np.uint8)   # a vector of 8 and a tail
    np.save(tmp_path / "in.npy", raw)
    for name, model in (("mlp", small_model), ("cnn", small_cnn_model)):
        bundle = tmp_path / name
        write_bundle(plan(model, "mali", precision=precision), bundle)
        assert run(["make", "-C", str(bundle)]).returncode == 0
        result = run([str(bundle / "infer"), "--info"], env=env)
        assert "backend opencl on Oclgrind" in result.stdout, result.stdout + result.stderr
        result = run([str(bundle / "infer"), str(tmp_path / "in.npy"), str(tmp_path / "out.npy")], env=env)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert log.read_text() == "", name
