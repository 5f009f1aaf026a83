"""sparsecl report writes its plots and a page that shows them."""

import pytest

pytest.importorskip("matplotlib", reason="make test installs the report extra")

from sparsecl import report  # noqa: E402
from sparsecl.codegen.generate import write_bundle  # noqa: E402
from sparsecl.codegen.plan import plan  # noqa: E402


def test_report_with_bundle_and_sweep(small_cnn_model, tmp_path):
    import copy
    model = copy.deepcopy(small_cnn_model)
    model.training = {"summary": {"test_acc": 0.5, "seconds": 1.0, "device": "test"},
                      "log": [{"phase": p, "epoch": e, "loss": 1.0 / (i + 1), "train_acc": 0.1 * i, "test_acc": 0.1 * i,
                               "density": [1.0 - 0.1 * i, 0.9, 0.8]}
                              for i, (p, e) in enumerate([("l1", 1), ("l1", 2), ("debias", 1)])]}
    write_bundle(plan(model, "c", precision="fp16"), tmp_path / "b")
    (tmp_path / "results.csv").write_text("arch,dataset,method,setting,test_error,nonzeros\n"
                                          "m,d,prox-debias,a,0.02,100\nm,d,prox-debias,b,0.03,50\n"
                                          "m,d,pruning,a,0.025,120\n")
    page = report.write(model, tmp_path / "r", str(tmp_path / "b"), str(tmp_path / "results.csv"))
    text = open(page).read()
    for name in ("training.png", "sparsity.png", "bytes.png", "pareto.png"):
        png = tmp_path / "r" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert f'src="{name}"' in text
    sizes = report.byte_sizes(model, {"target": "c", "precision": "fp16", "layers": [
        {"value_bytes": 2 * l.nnz, "index_bytes": 10} for l in model.layers]})
    assert sizes["dense fp32"]["values"] == 4 * model.params
    assert sizes["bundle (c, fp16)"]["values"] == 2 * model.nnz
