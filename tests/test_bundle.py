"""Generated bundles: built warning-free, run for real, compared with the numpy reference."""

import json
import re
import os
import struct

import numpy as np
import pytest

from sparsecl import SparseclError, reference
from sparsecl.codegen.generate import write_bundle
from sparsecl.codegen.plan import plan

from conftest import HAS_OPENCL, needs_gcc, run

pytestmark = needs_gcc
STRICT = ["CFLAGS=-O2 -Werror"]


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def model(request, small_model, small_cnn_model):
    return small_model if request.param == "mlp" else small_cnn_model


@pytest.fixture(scope="module")
def bundles(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    golden = np.random.default_rng(0).integers(0, 17, (5, 8, 8)).astype(np.float32)
    out = {}
    for target in ("c", "opencl"):
        path = root / target
        write_bundle(plan(model, target, golden_input=golden), path)
        result = run(["make", "-C", str(path), *STRICT])
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr.lower()
        out[target] = path
    return out


def infer(bundle, *args):
    return run([str(bundle / "infer"), *map(str, args)])


@pytest.mark.parametrize("target", ["c", "opencl"])
def test_selftest(bundles, target):
    result = infer(bundles[target], "--selftest")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "selftest passed" in result.stdout
    if target == "opencl":
        assert ("(opencl)" in result.stdout) == HAS_OPENCL


@pytest.mark.parametrize("target", ["c", "opencl"])
@pytest.mark.parametrize("shape,dtype", [((13, 64), np.float32), ((13, 8, 8), np.float32),
                                         ((13, 1, 8, 8), np.uint8), ((300, 8, 8), np.uint8), ((64,), np.float32)])
def test_outputs_match_reference(bundles, model, tmp_path, target, shape, dtype):
    raw = np.random.default_rng(1).integers(0, 17, shape).astype(dtype)
    np.save(tmp_path / "in.npy", raw)
    result = infer(bundles[target], tmp_path / "in.npy", tmp_path / "out.npy")
    assert result.returncode == 0, result.stderr
    got = np.load(tmp_path / "out.npy")
    n = shape[0] if len(shape) > 1 else 1
    want = reference.logits(model, raw.reshape(n, 64))
    assert got.shape == (n, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_opencl_and_c_agree(bundles, tmp_path):
    raw = np.random.default_rng(2).uniform(0, 16, (50, 64)).astype(np.float32)
    np.save(tmp_path / "in.npy", raw)
    outs = []
    for target in ("c", "opencl"):
        assert infer(bundles[target], tmp_path / "in.npy", tmp_path / f"{target}.npy").returncode == 0
        outs.append(np.load(tmp_path / f"{target}.npy"))
    assert np.array_equal(outs[0].argmax(1), outs[1].argmax(1))
    assert np.abs(outs[0] - outs[1]).max() <= 1e-4


def _npy_header(descr, shape, fortran=False):
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode()


def bad_inputs(tmp_path):
    good = np.ones((4, 64), np.float32)
    nan = good.copy()
    nan[2, 7] = np.nan
    cases = {
        "wrong shape": np.ones((4, 63), np.float32),
        "wrong dtype": good.astype(np.float64),
        "int32": good.astype(np.int32),
        "nan": nan,
        "inf": np.full((1, 64), np.inf, np.float32),
        "no samples": np.zeros((0, 64), np.float32),
        "scalar": np.float32(1.0),
    }
    files = {}
    for name, array in cases.items():
        path = tmp_path / (name.replace(" ", "_") + ".npy")
        np.save(path, array)
        files[name] = path
    raw = (tmp_path / "wrong_shape.npy").read_bytes()
    extra = {
        "truncated data": _npy_header("<f4", (4, 64)) + b"\0" * 100,
        "truncated header": raw[:20],
        "not npy": b"P5\n28 28\n255\n" + b"\0" * 784,
        "empty file": b"",
        "huge shape": _npy_header("<f4", (2**62, 64)) + b"\0" * 256,
        "overflowing shape": _npy_header("<f4", (2**40, 2**40, 64)),
        "fortran order": _npy_header("<f4", (4, 64), fortran=True) + b"\0" * 1024,
        "big endian": _npy_header(">f4", (4, 64)) + b"\0" * 1024,
        "bad version": b"\x93NUMPY\x09\x00" + raw[8:],
        "header past end": b"\x93NUMPY\x01\x00\xff\xff{'descr'",
        "garbage shape": _npy_header("<f4", "(4, x)") + b"\0" * 1024,
    }
    for name, content in extra.items():
        path = tmp_path / (name.replace(" ", "_") + ".npy")
        path.write_bytes(content)
        files[name] = path
    files["missing file"] = tmp_path / "does-not-exist.npy"
    return files


@pytest.mark.parametrize("target", ["c", "opencl"])
def test_bad_input_gives_one_line_and_nonzero_exit(bundles, tmp_path, target):
    for name, path in bad_inputs(tmp_path).items():
        out = tmp_path / "out.npy"
        result = infer(bundles[target], path, out)
        assert result.returncode == 1, (name, result.returncode, result.stderr)   # not a signal
        lines = [l for l in result.stderr.splitlines() if not l.endswith("using the plain C path")]
        assert len(lines) == 1 and lines[0].startswith("infer: "), (name, result.stderr)
        assert not out.exists(), name


@pytest.mark.parametrize("args", [[], ["a.npy"], ["a", "b", "c"], ["--bench", "x"], ["--bench", "0"], ["--nope"],
                                  ["--selftest", "--info"]])
def test_bad_arguments_print_usage(bundles, args):
    result = infer(bundles["c"], *args)
    assert result.returncode == 2 and result.stderr.startswith("usage:")


def test_bench_and_info(bundles, model):
    result = infer(bundles["opencl"], "--bench", "20", "--batch", "4")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["runs"] == 20 and row["batch"] == 4 and 0 < row["min_s"] <= row["median_s"] <= row["p90_s"]
    info = infer(bundles["opencl"], "--info")
    first = model.layers[0]
    assert first.name in info.stdout and f"{first.n_in} -> {first.n_out}" in info.stdout


def test_manifest_counts_what_is_stored(bundles, model):
    manifest = json.loads((bundles["c"] / "manifest.json").read_text())
    totals = manifest["totals"]
    assert totals["params"] == model.params and totals["nnz"] == model.nnz
    weighted = [l for l in model.layers if l.weights is not None]
    assert totals["biases"] == sum(len(l.bias) for l in weighted)
    width = lambda cols: 1 if cols <= 256 else 2 if cols <= 65536 else 4  # noqa: E731 (narrowest index type)
    variants = {l["name"]: l["variant"] for l in manifest["layers"]}
    assert set(variants.values()) - {"pool"} <= {"csr", "dense", "unrolled", "conv"}
    indexed = [l for l in weighted if variants[l.name] in ("csr", "conv")]      # dense, unrolled: no indices
    index_bytes = sum(4 * (l.weights.shape[0] + 1) + width(l.weights.shape[1]) * l.nnz for l in indexed)
    value_bytes = sum(4 * (l.params if variants[l.name] == "dense" else l.nnz) for l in weighted)
    assert totals["weight_bytes"] == value_bytes + index_bytes
    assert [l["nnz"] for l in manifest["layers"]] == [l.nnz for l in model.layers]


NASTY = ['ev"il\n*/ #include <stdlib.h>', "back\\slash ??/", "naïve — net", "*/ int x; /*"]


@pytest.mark.parametrize("nasty", NASTY)
def test_names_cannot_inject_code(small_model, tmp_path, nasty):
    import copy
    model = copy.deepcopy(small_model)
    model.name = nasty
    model.layers[0].name = nasty
    model.layers[1].name = nasty + "2"
    write_bundle(plan(model, "opencl"), tmp_path / "b")
    for name in ("model.c", "kernels.cl", "Makefile"):
        text = (tmp_path / "b" / name).read_text()
        assert text.isascii()
        code = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)   # string literals may hold anything escaped
        assert "#include <stdlib.h>" not in code and "int x;" not in code
    result = run(["make", "-C", str(tmp_path / "b"), *STRICT])
    assert result.returncode == 0, result.stderr
    info = run([str(tmp_path / "b" / "infer"), "--info", "--cpu"])
    assert info.returncode == 0 and info.stdout.count("\n") == 6   # header, arithmetic, 3 layers, backend


def test_existing_folders_are_replaced_only_if_bundles(small_model, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    with pytest.raises(SparseclError, match="not a bundle"):
        write_bundle(plan(small_model, "c"), precious)
    assert (precious / "thesis.tex").read_text() == "keep me"
    target = tmp_path / "bundle"
    write_bundle(plan(small_model, "c"), target)
    (target / "stale.txt").write_text("old")
    write_bundle(plan(small_model, "opencl"), target)
    assert not (target / "stale.txt").exists() and (target / "kernels.cl").exists()
    assert sorted(os.listdir(tmp_path)) == ["bundle", "precious"]   # no temporary folders left


def test_unknown_target_and_precision(small_model):
    with pytest.raises(SparseclError, match="unknown target"):
        plan(small_model, "cuda")
    with pytest.raises(SparseclError, match="precision"):
        plan(small_model, "c", precision="int4")
    big = small_model.layers[0].weights.copy()
    big.data[0] = 1e6                                   # beyond the fp16 range
    import dataclasses
    huge = dataclasses.replace(small_model, layers=[dataclasses.replace(small_model.layers[0], weights=big),
                                                    *small_model.layers[1:]])
    with pytest.raises(SparseclError, match="fp16 range"):
        plan(huge, "c", precision="fp16")


@pytest.mark.parametrize("target", ["c", "mali"])
def test_fp16_bundle_computes_what_it_stores(small_cnn_model, tmp_path, target):
    write_bundle(plan(small_cnn_model, target, precision="fp16"), tmp_path / "b")
    assert run(["make", "-C", str(tmp_path / "b"), *STRICT]).returncode == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["precision"] == "fp16"
    for layer, entry in zip(small_cnn_model.layers, manifest["layers"]):
        assert entry["value_bytes"] == 2 * layer.nnz
        if layer.weights is not None:
            assert entry["value_type"] == "half" and entry["index_type"] == "uchar"
    raw = np.random.default_rng(3).integers(0, 17, (20, 8, 8)).astype(np.uint8)
    np.save(tmp_path / "in.npy", raw)
    assert infer(tmp_path / "b", tmp_path / "in.npy", tmp_path / "out.npy").returncode == 0
    from sparsecl.codegen.plan import as_stored
    rounded = as_stored(small_cnn_model, np.float16)
    assert not np.array_equal(rounded.layers[0].weights.data, small_cnn_model.layers[0].weights.data)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), reference.logits(rounded, raw.reshape(20, 64)),
                               rtol=1e-5, atol=1e-5)
    assert infer(tmp_path / "b", "--selftest").returncode == 0


def test_half_to_float_is_exact_for_every_half(tmp_path):
    from importlib import resources
    runtime = resources.files("sparsecl.runtime_c")
    (tmp_path / "sc_half.h").write_text(runtime.joinpath("sc_half.h").read_text())
    (tmp_path / "t.c").write_text(
        '#include <stdio.h>\n#include "sc_half.h"\nint main(void) { for (unsigned h = 0; h < 65536; ++h) {'
        ' float f = sc_half_to_float((uint16_t)h); uint32_t b; memcpy(&b, &f, 4); printf("%u\\n", b); } return 0; }\n')
    assert run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(tmp_path / "t"), str(tmp_path / "t.c")],
               cwd=tmp_path).returncode == 0
    got = np.array(run([str(tmp_path / "t")]).stdout.split(), dtype=np.uint32)
    want = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(np.float32).view(np.uint32)
    assert np.array_equal(got, want)


def test_lint_refuses_kernels_a_mali_driver_would_not_build():
    from sparsecl.codegen.lint import lint
    for bad in ["float x = 1.0;", "double y = 0.5f;", "y = 2.5e-3 * x;", "work_group_barrier(0);",
                "#pragma OPENCL EXTENSION cl_khr_fp64 : enable", "printf(\"%d\", 1);"]:
        with pytest.raises(SparseclError, match="line 2"):
            lint("/* fine */\n" + bad)
    assert lint("x = 1.0f * y; /* 1.0 in a comment */\nz = 3;") .startswith("x = 1.0f")


def test_every_generated_kernel_passes_the_lint(small_model, small_cnn_model):
    from sparsecl.codegen.generate import kernel_source
    from sparsecl.codegen.lint import lint
    for m in (small_model, small_cnn_model):
        for precision in ("fp32", "fp16"):
            lint(kernel_source(plan(m, "mali", precision=precision)))


@pytest.mark.skipif(not HAS_OPENCL, reason="no OpenCL platform (CI installs PoCL)")
def test_kernel_binaries_are_cached_and_a_damaged_cache_is_rebuilt(small_cnn_model, tmp_path):
    import os
    write_bundle(plan(small_cnn_model, "mali"), tmp_path / "b")
    assert run(["make", "-C", str(tmp_path / "b"), *STRICT]).returncode == 0
    env = dict(os.environ, SPARSECL_CACHE_DIR=str(tmp_path / "cache"))
    infer_env = lambda *a: run([str(tmp_path / "b" / "infer"), *a], env=env)  # noqa: E731
    assert "kernels compiled" in infer_env("--info").stdout
    assert "loaded from the cache" in infer_env("--info").stdout
    assert infer_env("--selftest").returncode == 0
    (cached,) = (tmp_path / "cache").iterdir()
    cached.write_bytes(b"garbage")
    assert "kernels compiled" in infer_env("--info").stdout
    assert "loaded from the cache" in infer_env("--info").stdout


def test_cost_model_picks_a_variant_per_layer_and_says_why(small_model):
    layers = plan(small_model, "c").layers        # 20% dense: CSR takes more bytes than the dense form? no
    for l in layers:
        assert l.variant in ("csr", "dense", "unrolled") and l.why.startswith("cost model")
    fc3 = layers[2]                                # 10 x 20 at ~20%: few enough nonzeros to unroll
    assert fc3.variant == "unrolled" and str(fc3.nnz) in fc3.why
    dense = small_model.layers[0].weights.toarray()
    dense[dense == 0] = 0.5                        # every weight nonzero: the dense form is smaller
    from dataclasses import replace
    from sparsecl.modelfile import to_csr
    full = replace(small_model, layers=[replace(small_model.layers[0], weights=to_csr(dense))] + small_model.layers[1:])
    assert plan(full, "c").layers[0].variant == "dense"
    with pytest.raises(SparseclError, match="unknown kernel variant"):
        plan(small_model, "c", variants={"*": "magic"})


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_every_variant_computes_the_same_logits(small_model, tmp_path, precision):
    raw = np.random.default_rng(2).integers(0, 17, (21, 64)).astype(np.float32)
    np.save(tmp_path / "in.npy", raw)
    from sparsecl.codegen.plan import as_stored
    want = reference.logits(as_stored(small_model, np.float16 if precision == "fp16" else np.float32), raw)
    outputs = {}
    for target in ("c", "opencl"):
        for variant in ("csr", "dense", "unrolled"):
            path = tmp_path / f"{target}-{variant}"
            manifest = write_bundle(plan(small_model, target, precision, variants={"*": variant}), path)
            assert {l["variant"] for l in manifest["layers"]} == {variant}
            result = run(["make", "-C", str(path), *STRICT])
            assert result.returncode == 0, result.stderr
            out = tmp_path / f"{target}-{variant}.npy"
            assert infer(path, tmp_path / "in.npy", out).returncode == 0
            outputs[target, variant] = np.load(out)
            np.testing.assert_allclose(outputs[target, variant], want, rtol=1e-5, atol=1e-5)
            assert infer(path, "--selftest").returncode == 0
    for variant in ("dense", "unrolled"):      # the plain C path: the same sums in the same order, bit for bit
        np.testing.assert_array_equal(outputs["c", variant], outputs["c", "csr"])


def check_fused_against_per_layer(model, bundle_plan, tmp_path, batches):
    """The one-launch kernel (SPARSECL_FUSED=1) against per-layer launches: the same logits, bit for bit."""
    path = tmp_path / "b"
    write_bundle(bundle_plan, path)
    assert run(["make", "-C", str(path), *STRICT]).returncode == 0
    for batch in batches:
        raw = np.random.default_rng(batch).integers(0, 17, (batch, 8, 8)).astype(np.float32)
        np.save(tmp_path / "in.npy", raw)
        outs = {}
        for fused in ("1", "0"):
            result = run([str(path / "infer"), str(tmp_path / "in.npy"), str(tmp_path / f"{fused}.npy")],
                         env={**os.environ, "SPARSECL_FUSED": fused})
            assert result.returncode == 0 and "plain C" not in result.stderr, result.stderr
            outs[fused] = np.load(tmp_path / f"{fused}.npy")
        np.testing.assert_allclose(outs["1"], reference.logits(model, raw), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(outs["1"], outs["0"])
    return path


@pytest.mark.skipif(not HAS_OPENCL, reason="no OpenCL platform")
@pytest.mark.parametrize("variant", ["csr", "dense", "unrolled"])
def test_fused_network_kernel_matches_the_per_layer_launches(small_model, tmp_path, variant):
    bundle_plan = plan(small_model, "opencl", variants={"*": variant})
    path = check_fused_against_per_layer(small_model, bundle_plan, tmp_path, (1, 3, 7))
    assert json.loads((path / "manifest.json").read_text())["fused_below_batch"] == 8
    assert "__kernel void network(" in (path / "kernels.cl").read_text()


@pytest.mark.skipif(not HAS_OPENCL, reason="no OpenCL platform")
def test_fused_network_kernel_with_convolutions_and_pooling(small_cnn_model, tmp_path):
    assert not plan(small_cnn_model, "c").fused
    check_fused_against_per_layer(small_cnn_model, plan(small_cnn_model, "opencl"), tmp_path, (1, 5))


def test_autotune_times_every_variant_and_keeps_the_fastest(small_model):
    from sparsecl.codegen.autotune import autotune
    said = []
    chosen = autotune(small_model, "c", runs=20, log=said.append)
    assert set(chosen) == {"fc1", "fc2", "fc3"} and len(said) == 3      # a line per layer
    for variant, why in chosen.values():
        times = dict(part.rsplit(" ", 2)[:2] for part in why.split(": ", 1)[1].split(", "))
        assert set(times) == {"csr", "dense", "unrolled"}
        assert float(times[variant]) == min(float(t) for t in times.values())
    assert {l.variant for l in plan(small_model, "c", variants=chosen).layers} <= {"csr", "dense", "unrolled"}


def tunable_bundle(model, target, tmp_path, precision="fp32"):
    path = tmp_path / f"tunable-{target}-{precision}"
    manifest = write_bundle(plan(model, target, precision, tunable=True), path)
    result = run(["make", "-C", str(path), *STRICT])
    assert result.returncode == 0, result.stderr
    return path, manifest


@pytest.mark.parametrize("target,precision", [("c", "fp32"), ("opencl", "fp32"), ("opencl", "fp16")])
def test_a_tunable_bundle_runs_every_variant_and_remembers_the_fastest(small_model, tmp_path, target, precision):
    path, manifest = tunable_bundle(small_model, target, tmp_path, precision)
    fc = [l for l in manifest["layers"] if "tunable" in l]
    assert [l["tunable"] for l in fc] == [["csr", "dense", "unrolled"]] * 3
    assert all(l["index_bytes"] > 0 for l in fc)           # CSR stored whatever the default variant
    backend = "opencl" if target == "opencl" and HAS_OPENCL else "c"
    raw = np.random.default_rng(3).integers(0, 17, (21, 64)).astype(np.float32)
    np.save(tmp_path / "in.npy", raw)
    from sparsecl.codegen.plan import as_stored
    want = reference.logits(as_stored(small_model, np.float16 if precision == "fp16" else np.float32), raw)
    tune = path / "infer.tune"
    header = None
    for variant in ("csr", "dense", "unrolled"):           # every variant, forced through a tune file
        if header:
            tune.write_text(header + f"{backend} 1 " + " ".join(f"{l['name']}={variant}" for l in fc) + "\n")
        result = infer(path, tmp_path / "in.npy", tmp_path / "out.npy")
        assert result.returncode == 0 and result.stderr == "", result.stderr
        np.testing.assert_allclose(np.load(tmp_path / "out.npy"), want, rtol=1e-5, atol=1e-5)
        info = infer(path, "--info").stdout
        if header:
            assert info.count(f"{variant} kernel (tunable)") == 3 and "variants from the tune file" in info
        else:                                                # no tune file yet: the defaults
            assert "the bundle's defaults" in info
            result = infer(path, "--autotune", "--bench", 5)
            assert result.returncode == 0, result.stderr
            timed = json.loads(result.stdout)
            assert timed["backend"] == backend and [l["name"] for l in timed["layers"]] == [l["name"] for l in fc]
            for layer in timed["layers"]:
                times = {v: layer[f"{v}_s"] for v in ("csr", "dense", "unrolled")}
                assert times[layer["variant"]] == min(times.values())
            lines = [line for line in tune.read_text().splitlines() if not line.startswith("#")]
            assert lines[1] == f"{backend} 1 " + " ".join(f"{l['name']}={l['variant']}" for l in timed["layers"])
            assert "variants from the tune file" in infer(path, "--info").stdout
            header = lines[0] + "\n"


def test_a_tune_file_that_does_not_fit_costs_a_warning_not_a_result(small_model, tmp_path):
    path, _ = tunable_bundle(small_model, "c", tmp_path)
    assert infer(path, "--autotune", "--bench", 3).returncode == 0
    header = (path / "infer.tune").read_text().splitlines()[2]
    cases = {"sparsecl-tune 1 0123456789abcdef\nc 1 fc1=dense\n": "tuned for another model",
             header + "\nc 1 fc1=sparse\n": "fc1=sparse, which this bundle does not have",
             header + "\nc 1 fc9=csr\n": "fc9=csr, which this bundle does not have",
             "\x00\x01garbage": "is not a tune file", "": "is empty"}
    for text, problem in cases.items():
        (path / "infer.tune").write_text(text)
        result = infer(path, "--selftest")
        assert result.returncode == 0 and "selftest passed" in result.stdout
        assert problem in result.stderr and "using the default kernel variants" in result.stderr
    other = tmp_path / "elsewhere.tune"         # $SPARSECL_TUNE_FILE, and the other backend's line is kept
    other.write_text(header + "\nopencl 8 fc1=dense\n")
    result = run([str(path / "infer"), "--autotune", "--bench", "3"], env={**os.environ, "SPARSECL_TUNE_FILE": str(other)})
    assert result.returncode == 0, result.stderr
    assert "opencl 8 fc1=dense" in other.read_text() and "\nc 1 fc1=" in other.read_text()


def test_autotune_needs_a_tunable_bundle(bundles):
    result = infer(bundles["c"], "--autotune")
    assert result.returncode == 1 and "generate it with --tunable" in result.stderr
    assert not (bundles["c"] / "infer.tune").exists()
