"""`generate --autotune`: each fully connected layer's kernel variant chosen by timing all of them on the
machine at hand instead of by the cost model. It builds one tunable bundle and lets its runtime do what it
does on a board (`infer --autotune`), so the generator and the board choose by the same measurement."""

import json
import os
import subprocess
import tempfile

from sparsecl import SparseclError
from sparsecl.codegen.plan import VARIANTS, plan


def autotune(model, target, precision="fp32", batch=1, runs=200, log=print) -> dict:
    """{layer name: (variant, why)} for plan(..., variants=...), from per-layer medians of each variant."""
    from sparsecl.codegen.generate import write_bundle
    from sparsecl.codegen.verify import build
    bundle_plan = plan(model, target, precision, tunable=True)
    names = {l.ident: l.name for l in bundle_plan.layers}
    with tempfile.TemporaryDirectory(prefix="sparsecl-autotune-") as tmp:
        write_bundle(bundle_plan, os.path.join(tmp, "b"))
        binary = build(os.path.join(tmp, "b"))
        args = [binary, "--autotune", "--bench", str(runs), "--batch", str(batch)] + (["--cpu"] if target == "c" else [])
        env = dict(os.environ, SPARSECL_TUNE_FILE=os.path.join(tmp, "tune"))
        result = subprocess.run(args, capture_output=True, text=True, timeout=1200, env=env)
        if result.returncode != 0:
            raise SparseclError(f"autotuning failed: {result.stderr.strip()}")
    timed = json.loads(result.stdout)
    chosen = {}
    for layer in timed["layers"]:
        times = {v: layer[f"{v}_s"] for v in VARIANTS if f"{v}_s" in layer}
        measured = ", ".join(f"{v} {s * 1e6:.1f} us" for v, s in times.items())
        log(f"autotune: {layer['name']}: {measured}")
        chosen[names[layer["name"]]] = (layer["variant"], f"autotune on this machine ({timed['backend']}, batch {batch}, "
                                                         f"median of {runs}): {measured}")
    return chosen
