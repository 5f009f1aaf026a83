"""A bounded libFuzzer run on the bundle's .npy reader, seeded with valid and broken files. A longer run:
see docs/robustness.md."""

import os
import shutil
import subprocess
from importlib import resources

import numpy as np
import pytest

from conftest import run
from test_bundle import bad_inputs

CLANG = shutil.which("clang-15") or shutil.which("clang")
FUZZ_SECONDS = int(os.environ.get("SPARSECL_FUZZ_SECONDS", "30"))


@pytest.mark.skipif(CLANG is None, reason="no clang (PoCL's clang-15 provides it)")
def test_npy_reader_survives_fuzzing(tmp_path):
    runtime = resources.files("sparsecl.runtime_c")
    for name in ("sc_npy.c", "sc_npy.h"):
        (tmp_path / name).write_text(runtime.joinpath(name).read_text())
    harness = os.path.join(os.path.dirname(__file__), "fuzz", "fuzz_npy.c")
    result = run([CLANG, "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
                  "-I", str(tmp_path), harness, str(tmp_path / "sc_npy.c"), "-o", str(tmp_path / "fuzz")])
    if result.returncode != 0 and "fuzzer" in result.stderr:
        pytest.skip("this clang has no libFuzzer runtime")
    assert result.returncode == 0, result.stderr
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in bad_inputs(tmp_path).values():
        if path.exists():
            shutil.copy(path, corpus / path.name)
    for shape, dtype in (((3, 64), np.float32), ((2, 8, 8), np.uint8), ((1, 784), np.float32), ((64,), np.float32)):
        np.save(corpus / f"good-{len(shape)}-{np.dtype(dtype).name}.npy", np.ones(shape, dtype))
    result = run([str(tmp_path / "fuzz"), str(corpus), f"-max_total_time={FUZZ_SECONDS}", "-max_len=4096",
                  f"-artifact_prefix={tmp_path}/"], cwd=tmp_path)
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert result.returncode == 0 and not crashes, (crashes, result.stderr[-3000:])
    executed = [line for line in result.stderr.splitlines() if "Done" in line and "runs" in line]
    assert executed, result.stderr[-2000:]
    print(executed[-1])


@pytest.mark.skipif(CLANG is None, reason="no clang (PoCL's clang-15 provides it)")
def test_command_line_survives_fuzzing(small_model, tmp_path):
    from sparsecl.codegen.generate import write_bundle
    from sparsecl.codegen.plan import plan
    bundle = tmp_path / "b"
    write_bundle(plan(small_model, "c", tunable=True), bundle)      # tunable: --autotune and tune files too
    sources = [str(bundle / n) for n in ("main.c", "model.c", "sc_cpu.c", "sc_npy.c", "sc_tune.c")]
    harness = os.path.join(os.path.dirname(__file__), "fuzz", "fuzz_args.c")
    result = run([CLANG, "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
                  "-D_POSIX_C_SOURCE=200809L", "-Dmain=sc_main", "-DSC_MAX_RUNS=20", "-DSC_MAX_BATCH=64",
                  "-I", str(bundle), harness, *sources, "-lm", "-o", str(tmp_path / "fuzz")])
    if result.returncode != 0 and "fuzzer" in result.stderr:
        pytest.skip("this clang has no libFuzzer runtime")
    assert result.returncode == 0, result.stderr
    work, corpus = tmp_path / "work", tmp_path / "corpus"
    work.mkdir()
    corpus.mkdir()
    np.save(work / "in.npy", np.ones((2, 64), np.float32))
    seeds = [b"--selftest", b"--info\0--cpu", b"--bench\0" + b"5\0--batch\0" + b"3",
             b"--bench\0" + b"164\0--batch\0" + b"65536", b"in.npy\0out.npy", b"in.npy\0out.npy\0--cpu",
             b"--nope", b"in.npy", b"--autotune\0--bench\0" + b"3", b"--autotune\0--cpu"]
    for i, seed in enumerate(seeds):
        (corpus / f"seed{i}").write_bytes(seed)
    result = subprocess.run([str(tmp_path / "fuzz"), str(corpus), f"-max_total_time={max(10, FUZZ_SECONDS // 2)}",
                             "-timeout=20", f"-artifact_prefix={tmp_path}/"], cwd=work, capture_output=True,
                            text=True, errors="replace", timeout=600)     # messages quote random bytes
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "timeout-", "oom-"))]
    assert result.returncode == 0 and not crashes, (crashes, result.stderr[-3000:])
    executed = [line for line in result.stderr.splitlines() if "Done" in line and "runs" in line]
    assert executed, result.stderr[-2000:]
    print(executed[-1])
