"""Bundles of both targets built with AddressSanitizer and UndefinedBehaviorSanitizer, and run under
valgrind, on good and malformed input: any finding fails."""

import os
import shutil

import numpy as np
import pytest

from sparsecl.codegen.generate import write_bundle
from sparsecl.codegen.plan import plan

from conftest import needs_gcc, run
from test_bundle import bad_inputs

pytestmark = needs_gcc
SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"


def built(model, target, tmp_path, **make):
    bundle = tmp_path / target
    write_bundle(plan(model, target, tunable=True), bundle)    # tunable: the tune file code runs too
    args = [f"{k}={v}" for k, v in make.items()]
    result = run(["make", "-C", str(bundle), *args])
    assert result.returncode == 0, result.stderr
    return bundle / make.get("BIN", "infer")


@pytest.mark.parametrize("target", ["c", "opencl"])
def test_asan_and_ubsan_find_nothing(small_cnn_model, tmp_path, target):
    binary = built(small_cnn_model, target, tmp_path, BIN="infer-san", CFLAGS=f"-O1 -g {SANITIZE}",
                   LDFLAGS=SANITIZE)
    # PoCL itself is not built with the sanitizer and keeps memory until exit: leak checks for our code only.
    env = dict(os.environ, ASAN_OPTIONS=f"detect_leaks={1 if target == 'c' else 0}:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1")
    raw = np.random.default_rng(0).integers(0, 17, (21, 8, 8)).astype(np.uint8)
    np.save(tmp_path / "good.npy", raw)
    cases = [(["--selftest"], 0), ([tmp_path / "good.npy", tmp_path / "out.npy"], 0),
             (["--bench", "3", "--batch", "17"], 0), (["--autotune", "--bench", "3"], 0), (["--selftest"], 0)]
    cases += [([path, tmp_path / "out.npy"], 1) for path in bad_inputs(tmp_path).values()]
    for args, expected in cases:
        result = run([str(binary), *map(str, args)], env=env)
        assert "Sanitizer" not in result.stderr and "runtime error" not in result.stderr, result.stderr
        assert result.returncode == expected, (args, result.stderr)


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="no valgrind (make test installs it)")
@pytest.mark.parametrize("target", ["c", "opencl"])
def test_valgrind_finds_nothing(small_cnn_model, tmp_path, target):
    binary = built(small_cnn_model, target, tmp_path, CFLAGS="-O1 -g")
    raw = np.random.default_rng(1).integers(0, 17, (11, 8, 8)).astype(np.float32)
    np.save(tmp_path / "in.npy", raw)
    supp = os.path.join(os.path.dirname(__file__), "valgrind.supp")
    leaks = ["--leak-check=full", "--errors-for-leak-kinds=definite"] if target == "c" else []
    for args in (["--selftest"], [tmp_path / "in.npy", tmp_path / "out.npy"], [tmp_path / "in.npy"]):
        result = run(["valgrind", "-q", "--error-exitcode=99", f"--suppressions={supp}", *leaks, str(binary),
                      *map(str, args)])
        assert result.returncode in (0, 2), result.stderr            # 2: the usage error of the last case
        assert "Invalid" not in result.stderr and "uninitialised" not in result.stderr, result.stderr
