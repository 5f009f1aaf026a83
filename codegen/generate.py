"""Rendering a bundle: kernels, the generated C, the Makefile and manifest.json, written atomically."""

import json
import os
import shutil
import tempfile
from importlib import resources

from sparsecl import SparseclError, __version__
from sparsecl.codegen.lint import lint
from sparsecl.codegen.plan import VARIANTS, BundlePlan
from sparsecl.render import environment, render
from sparsecl.tiling import conv_rows


def c_lines(text: str) -> str:
    """A C string literal of OpenCL source, one source line per C line."""
    lines = text.splitlines()
    for line in lines:
        if not all(" " <= ch <= "~" for ch in line):
            raise SparseclError("kernel source must be printable ASCII")
    return "\n".join('    "%s\\n"' % line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)


environment().filters["clines"] = c_lines


def fully_connected_source(plan: BundlePlan, l) -> str:
    """A fully connected layer's kernels; for a tunable layer every candidate variant, one of them compiled
    as the host's build option -DSC_VARIANT_<layer> (the enum sc_variant value) selects, by default the
    planned one."""
    def variant_source(variant):
        return render("kernels/csr.cl.j2", p=l.ident, n_in=l.n_in, n_out=l.n_out, relu=l.relu, training=False,
                      vw=plan.vector_width, index_type=l.index_type, value_type=l.value_type, variant=variant,
                      rows=l.rows if variant == "unrolled" else None)
    if not l.tunable:
        return variant_source(l.variant)
    macro = f"SC_VARIANT_{l.ident}"
    parts = [f"#ifndef {macro}\n#define {macro} {VARIANTS.index(l.variant)}\n#endif"]
    for index, variant in enumerate(l.candidates):
        parts.append(f"#{'el' if index else ''}if {macro} == {VARIANTS.index(variant)}  /* {variant} */")
        parts.append(variant_source(variant))
    parts.append(f"#else\n#error \"{macro}: no such variant in this bundle\"\n#endif")
    return "\n".join(parts)


def kernel_source(plan: BundlePlan) -> str:
    """Preprocessing and every layer's forward kernel, from the templates the trainer renders."""
    parts = [render("kernels/preprocess.cl.j2", n_in=plan.input_size, mean=plan.mean, scale=plan.scale,
                    training=False)]
    for l in plan.layers:
        if l.kind == "csr":
            parts.append(fully_connected_source(plan, l))
        elif l.kind == "conv":
            c = l.conv
            parts.append(render("kernels/conv.cl.j2", p=l.ident, c_in=c["c_in"], h=c["h"], w=c["w"],
                                c_out=c["c_out"], oh=c["oh"], ow=c["ow"], k=c["k"], pad=c["pad"], tx=c["tile"],
                                relu=l.relu, training=False, vw=plan.vector_width, index_type=l.index_type,
                                value_type=l.value_type))
        else:
            c = l.conv
            parts.append(render("kernels/pool.cl.j2", p=l.ident, c=c["c_in"], h=c["h"], w=c["w"], oh=c["oh"],
                                ow=c["ow"], training=False, vw=plan.vector_width))
    if plan.fused:
        layers = [dict(p=l.ident, variant=l.variant, n_out=l.n_out, tunable=l.tunable,
                       conv_rows=conv_rows(l.geometry.out_shape) if l.kind == "conv" else 0,
                       **({} if l.kind == "pool" else dict(index_type=l.index_type, value_type=l.value_type)))
                  for l in plan.layers]
        parts.append(render("kernels/network.cl.j2", n_in=plan.input_size, layers=layers,
                            unrolled=VARIANTS.index("unrolled")))
    return "\n".join(parts)


def manifest(plan: BundlePlan) -> dict:
    layers = [{"name": l.ident, "kind": l.geometry.kind, "variant": l.variant,
               **({"why": l.why} if l.why else {}),
               **({"tunable": list(l.candidates)} if l.tunable else {}),
               "shape": list(l.geometry.weight_shape or l.geometry.out_shape), "in": l.n_in, "out": l.n_out,
               "relu": l.relu, "nnz": l.nnz, "density": l.density,
               **({"index_type": l.index_type, "value_type": l.value_type} if l.vals is not None else {}),
               "value_bytes": l.value_bytes,
               "index_bytes": l.index_bytes, "bytes": l.value_bytes + l.index_bytes}
              for l in plan.layers]
    return {
        "name": plan.name,
        "target": plan.target.name,
        "precision": plan.precision,
        "input_shape": list(plan.input_shape),
        "input_size": plan.input_size,
        "classes": plan.classes,
        **({"fused_below_batch": plan.vector_width} if plan.fused else {}),
        "generator": f"sparsecl {__version__}",
        "layers": layers,
        "totals": {
            "params": sum(l.params for l in plan.layers),
            "nnz": sum(l.nnz for l in plan.layers),
            "biases": sum(0 if l.bias is None else len(l.bias) for l in plan.layers),
            "weight_bytes": sum(x["bytes"] for x in layers),
            "density": sum(l.nnz for l in plan.layers) / sum(l.params for l in plan.layers),
        },
    }


def bundle_files(plan: BundlePlan) -> dict:
    """{file name: text} of the whole bundle."""
    runtime = resources.files("sparsecl.runtime_c")
    files = {name: runtime.joinpath(name).read_text() for name in plan.target.runtime}
    context = {"plan": plan, "version": __version__}
    if plan.target.opencl:
        context["kernel_source"] = files["kernels.cl"] = lint(kernel_source(plan))
    files["model.c"] = render("bundle/model.c.j2", **context)
    sources = sorted(n for n in files if n.endswith(".c"))
    headers = sorted(n for n in files if n.endswith(".h"))
    files["Makefile"] = render("bundle/Makefile.j2", sources=sources, headers=headers, **context)
    files["CMakeLists.txt"] = render("bundle/CMakeLists.txt.j2", sources=sources, **context)
    for arch in ("aarch64", "armhf"):
        files[f"toolchain-{arch}.cmake"] = render(f"bundle/toolchain-{arch}.cmake.j2")
    files["manifest.json"] = json.dumps(manifest(plan), indent=2) + "\n"
    return files


def write_bundle(plan: BundlePlan, out_dir) -> dict:
    """Write the bundle into out_dir through a temporary folder, so a failure leaves no half bundle.
    An existing out_dir is replaced only if it is a bundle (has manifest.json) or empty."""
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir):
        if not os.path.isdir(out_dir):
            raise SparseclError(f"{out_dir} exists and is not a folder")
        if os.listdir(out_dir) and not os.path.exists(os.path.join(out_dir, "manifest.json")):
            raise SparseclError(f"{out_dir} is not empty and not a bundle; refusing to replace it")
    files = bundle_files(plan)
    parent = os.path.dirname(out_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".bundle-", dir=parent)
    except OSError as e:
        raise SparseclError(f"cannot create {out_dir}: {e.strerror}") from None
    try:
        for name, text in files.items():
            with open(os.path.join(tmp, name), "w") as f:
                f.write(text)
        if os.path.exists(out_dir):
            old = tempfile.mkdtemp(prefix=".old-", dir=parent)
            os.replace(out_dir, os.path.join(old, "bundle"))
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SparseclError(f"cannot write bundle {out_dir}: {e.strerror}") from None
    return json.loads(files["manifest.json"])
