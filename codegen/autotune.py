"""`generate --autotune`: each fully connected layer's kernel variant chosen by timing all of them on the
machine at hand, in the bundle's own runtime (`infer --bench N --layers`), instead of by the cost model."""

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
    fc = [l for l in plan(model, target, precision).layers if l.kind == "csr"]
    timings = {l.name: {} for l in fc}
    backend = "?"
    with tempfile.TemporaryDirectory(prefix="sparsecl-autotune-") as tmp:
        for variant in VARIANTS:
            tried = {l.name: variant for l in fc if variant in l.candidates}
            if not tried:
                continue
            bundle = os.path.join(tmp, variant)
            bundle_plan = plan(model, target, precision, variants={**{l.name: "csr" for l in fc}, **tried})
            write_bundle(bundle_plan, bundle)
            binary = build(bundle)
            args = [binary, "--bench", str(runs), "--batch", str(batch), "--layers"] + (["--cpu"] if target == "c" else [])
            result = subprocess.run(args, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                raise SparseclError(f"autotuning the {variant} variant failed: {result.stderr.strip()}")
            row = json.loads(result.stdout)
            backend = row["backend"]
            by_ident = {l["name"]: l["median_s"] for l in row["layers"]}
            for l in bundle_plan.layers:
                if l.name in tried:
                    timings[l.name][variant] = by_ident[l.ident]
            log(f"autotune: {variant}: " + ", ".join(f"{name} {t[variant] * 1e6:.1f} us"
                                                     for name, t in timings.items() if variant in t))
    chosen = {}
    for name, times in timings.items():
        best = min(times, key=times.get)
        measured = ", ".join(f"{v} {s * 1e6:.1f} us" for v, s in times.items())
        chosen[name] = (best, f"autotune on this machine ({backend}, batch {batch}, median of {runs}): {measured}")
    return chosen
