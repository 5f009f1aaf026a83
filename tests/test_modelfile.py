import io
import json
import os
import zipfile

import numpy as np
import pytest

from sparsecl import SparseclError, modelfile


def test_round_trip(small_model, tmp_path):
    path = tmp_path / "m.npz"
    modelfile.save(small_model, path)
    loaded = modelfile.load(path)
    assert loaded.name == small_model.name and loaded.input_shape == (8, 8) and loaded.classes == 10
    assert loaded.preprocess == pytest.approx(small_model.preprocess)
    for a, b in zip(loaded.layers, small_model.layers):
        assert (a.name, a.n_in, a.n_out, a.relu) == (b.name, b.n_in, b.n_out, b.relu)
        assert np.array_equal(a.weights.toarray(), b.weights.toarray())
        assert np.array_equal(a.bias, b.bias)
    assert not list(tmp_path.glob(".tmp-*"))     # the temporary file was renamed


def _arrays(model, tmp_path):
    path = tmp_path / "good.npz"
    modelfile.save(model, path)
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


def _meta(arrays):
    return json.loads(arrays["meta.json"].tobytes())


def _with_meta(arrays, meta):
    arrays = dict(arrays)
    arrays["meta.json"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    return arrays


def _corruptions(arrays):
    """(description, expected message fragment, arrays or raw bytes)."""
    m = _meta(arrays)
    out = []

    def meta_change(desc, fragment, fn):
        meta = json.loads(json.dumps(m))
        fn(meta)
        out.append((desc, fragment, _with_meta(arrays, meta)))

    def array_change(desc, fragment, key, value):
        changed = dict(arrays)
        if value is None:
            del changed[key]
        else:
            changed[key] = value
        out.append((desc, fragment, changed))

    meta_change("wrong version", "version", lambda d: d.update(version=99))
    meta_change("foreign format", "format", lambda d: d.update(format="other"))
    meta_change("unknown layer kind", "unknown kind", lambda d: d["layers"][0].update(kind="lstm"))
    meta_change("chain mismatch", "receives", lambda d: d["layers"][1].update({"in": 41}))
    meta_change("absurd shape", "too large", lambda d: d["layers"][0].update({"out": 1 << 24}))
    meta_change("classes mismatch", "classes", lambda d: d.update(classes=11))
    meta_change("missing key", "lacks", lambda d: d.pop("preprocess"))
    meta_change("NaN preprocessing", "finite", lambda d: d["preprocess"].update(scale=float("nan")))
    ip = arrays["fc1.indptr"].copy()
    ip[2], ip[3] = ip[3], ip[2] - 1
    array_change("non-monotone row pointers", "monotone", "fc1.indptr", ip)
    cols = arrays["fc1.indices"].copy()
    cols[0] = 64
    array_change("column out of range", "out of range", "fc1.indices", cols)
    array_change("nnz mismatch", "nnz mismatch", "fc1.data", arrays["fc1.data"][:-1])
    vals = arrays["fc2.data"].copy()
    vals[1] = np.nan
    array_change("NaN weight", "NaN", "fc2.data", vals)
    vals = arrays["fc2.data"].copy()
    vals[0] = np.inf
    array_change("infinite weight", "NaN or infinity", "fc2.data", vals)
    array_change("wrong dtype", "int32", "fc1.indices", arrays["fc1.indices"].astype(np.int64))
    array_change("missing array", "missing", "fc3.bias", None)
    array_change("bias shape", "bias", "fc3.bias", np.zeros(3, np.float32))
    array_change("pickle payload", "pickle", "fc1.bias", np.array([object()], dtype=object))
    out.append(("no meta", "meta.json", {k: v for k, v in arrays.items() if k != "meta.json"}))
    out.append(("bad json", "JSON", {**arrays, "meta.json": np.frombuffer(b"{not json", np.uint8)}))
    return out


def _write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with open(path, "wb") as f:
            np.savez(f, **content) if "pickle" not in name else _savez_pickle(f, content)
    return path


def _savez_pickle(f, arrays):
    with zipfile.ZipFile(f, "w") as z:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.save(buf, value, allow_pickle=True)
            z.writestr(key + ".npy", buf.getvalue())


def test_malformed_files_are_rejected_with_one_line(small_model, tmp_path):
    cases = _corruptions(_arrays(small_model, tmp_path))
    good = (tmp_path / "good.npz").read_bytes()
    cases += [("truncated", "not a sparsecl model", good[: len(good) // 2]),
              ("empty file", "not a sparsecl model", b""),
              ("text file", "not a sparsecl model", b"hello world\n" * 10),
              ("plain npy", "not a sparsecl model", b"\x93NUMPY\x01\x00" + b"x" * 50)]
    assert len(cases) >= 20
    for index, (desc, fragment, content) in enumerate(cases):
        name = f"bad{index}-{'pickle' if desc == 'pickle payload' else 'x'}.npz"
        path = _write(tmp_path, name, content)
        with pytest.raises(SparseclError) as info:
            modelfile.load(path)
        message = str(info.value)
        assert "\n" not in message, desc
        assert fragment.lower() in message.lower(), (desc, message)


def test_missing_file(tmp_path):
    with pytest.raises(SparseclError, match="cannot read"):
        modelfile.load(tmp_path / "nope.npz")


def test_generate_and_verify_reject_every_malformed_file_and_write_nothing(small_model, tmp_path, capsys, monkeypatch):
    from sparsecl.cli import main
    cases = _corruptions(_arrays(small_model, tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "manifest.json").write_text('{"name": "small"}')
    for index, (desc, fragment, content) in enumerate(cases):
        path = _write(tmp_path, f"bad{index}-{'pickle' if desc == 'pickle payload' else 'x'}.npz", content)
        before = sorted(os.listdir(tmp_path))
        for argv in (["generate", str(path), "-o", "out"], ["verify", str(path), "bundle"]):
            assert main(argv) == 1, (desc, argv)
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and fragment.lower() in err.lower(), (desc, err)
        assert sorted(os.listdir(tmp_path)) == before, desc


def test_unwritable_destinations_give_a_clear_error(small_model, tmp_path):
    from sparsecl import SparseclError
    from sparsecl.codegen.generate import write_bundle
    from sparsecl.codegen.plan import plan
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(SparseclError, match="cannot write"):
        modelfile.save(small_model, tmp_path / "file" / "m.npz")
    with pytest.raises(SparseclError, match="cannot create|cannot write|not a folder"):
        write_bundle(plan(small_model, "c"), tmp_path / "file" / "bundle")
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_saved_files_follow_the_umask(small_model, tmp_path):
    old = os.umask(0o027)
    try:
        modelfile.save(small_model, tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "m.npz").stat().st_mode & 0o777 == 0o640
