"""The `sparsecl` command line."""

import argparse
import json
import os
import sys
from dataclasses import fields

import numpy as np

from sparsecl import SparseclError, __version__


def _table(rows, headers) -> str:
    cells = [[str(c) for c in row] for row in [headers] + rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_devices(args):
    from sparsecl.trainer.device import choose_device, list_devices
    devices = list_devices()
    if not devices:
        choose_device(args.device)   # raises the install hint
    chosen = choose_device(args.device)[0]
    rows = [["*" if info == chosen else "", info.key, info.platform, info.name, info.kind, info.version]
            for info, _ in devices]
    print(_table(rows, ["", "id", "platform", "device", "type", "version"]))
    print(f"\nused: {chosen.key} {chosen.name} (choose with --device or SPARSECL_DEVICE)")


def cmd_train(args):
    from sparsecl import modelfile
    from sparsecl.trainer.train import Interrupted, TrainConfig, train
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name != "name"},
                         name=args.name or "")
    ckpt = args.resume or checkpoint_path(args.output)
    try:
        model = train(config, device=args.device, progress=not args.quiet, checkpoint_path=ckpt,
                      resume=args.resume)
    except Interrupted as e:
        print(f"sparsecl: {e} -o {args.output}" if "resume" in str(e) else f"sparsecl: {e}", file=sys.stderr)
        return 130
    modelfile.save(model, args.output)
    if os.path.exists(ckpt):
        os.unlink(ckpt)                  # the model file now holds the finished run
    s = model.training["summary"]
    print(f"saved {args.output}: test accuracy {s['test_acc']:.4f}, {s['nnz']} of {s['params']} weights "
          f"nonzero ({s['nnz'] / s['params']:.2%}), trained in {s['seconds']:.1f} s")


def checkpoint_path(output: str) -> str:
    """model.npz -> model.ckpt.npz, beside the model."""
    root, ext = os.path.splitext(output)
    return f"{root}.ckpt{ext or '.npz'}"


def _golden_input(model, count=8):
    from sparsecl.trainer import datasets
    try:
        return datasets.load(model.dataset).x_test[:count]
    except SparseclError:
        return None   # the plan falls back to fixed pseudo-random inputs


def _floats(text):
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def cmd_sweep(args):
    from sparsecl import sweep
    from sparsecl.trainer.train import TrainConfig
    methods = sweep.METHODS if args.methods == "all" else args.methods.split(",")
    for method in methods:
        sweep.method_overrides(method, 0.1, 3)      # an unknown method fails before any training
    base = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})
    if not args.render_only:
        sweep.sweep(base, methods, args.lams, args.densities, args.epochs, args.results, args.models,
                    verify=args.verify, device=args.device)
    sweep.render(args.results, args.markdown, args.plots)
    print(f"results: {args.results}; table and plots: {args.markdown}")


def _variant_spec(spec, model) -> dict:
    """--variant: "csr" (every fully connected layer) or "fc1=csr,fc2=unrolled"."""
    if not spec:
        return {}
    if "=" not in spec:
        return {"*": spec}
    names = {l.name for l in model.layers}
    out = {}
    for item in spec.split(","):
        name, _, variant = item.partition("=")
        if name not in names:
            raise SparseclError(f"--variant: the model has no layer {name!r} (layers: {', '.join(sorted(names))})")
        out[name] = variant
    return out


def cmd_generate(args):
    from sparsecl import modelfile
    from sparsecl.codegen.generate import write_bundle
    from sparsecl.codegen.plan import plan
    model = modelfile.load(args.model)
    variants = _variant_spec(args.variant, model)
    if args.autotune:
        from sparsecl.codegen.autotune import autotune
        variants = {**autotune(model, args.target, args.precision, batch=args.autotune_batch), **variants}
    bundle_plan = plan(model, args.target, args.precision, golden_input=_golden_input(model), variants=variants,
                       tunable=args.tunable)
    manifest = write_bundle(bundle_plan, args.output)
    rows = [[l["name"], l["kind"], f"{l['in']}->{l['out']}", l["variant"], l["nnz"],
             f"{l['density']:.2%}" if l["variant"] != "pool" else "", l["bytes"]] for l in manifest["layers"]]
    t = manifest["totals"]
    rows.append(["total", "", "", "", t["nnz"], f"{t['density']:.2%}", t["weight_bytes"]])
    print(_table(rows, ["layer", "kind", "features", "kernel", "nnz", "density", "bytes"]))
    print(f"\nwrote {args.output} (target {args.target}); build it with: make -C {args.output}")
    if args.tunable:
        print(f"tunable: on the board, run `{args.output}/infer --autotune` once; later runs use the fastest variants")


def _onnx_comparison(model, raw, trainer, labels):
    """The exported ONNX model in onnxruntime against the trainer, when onnx and onnxruntime are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    from sparsecl.codegen.onnx_export import build, run
    from sparsecl.codegen.verify import compare
    return compare(run(build(model), raw), trainer, labels)


def cmd_verify(args):
    from sparsecl import modelfile
    from sparsecl.codegen.verify import FALLBACK, build, compare, manifest_of, run_infer
    from sparsecl.trainer import datasets
    from sparsecl.trainer.inference import model_logits
    model = modelfile.load(args.model)
    manifest = manifest_of(args.bundle)
    if manifest.get("name") != model.name:
        raise SparseclError(f"{args.bundle} was generated from model {manifest.get('name')!r}, not {model.name!r}")
    data = datasets.load(model.dataset)
    raw, labels = data.x_test, data.y_test
    if args.limit:
        raw, labels = raw[:args.limit], labels[:args.limit]
    messages = []
    if args.qemu:
        from sparsecl import qemu
        prefix, env = qemu.runner(args.qemu)
        binary = build(args.bundle, [f"CROSS_COMPILE={qemu.CROSS[args.qemu]}"], binary=f"infer-{args.qemu}")
        bundle = run_infer(binary, raw, runner=prefix, env=env, timeout=3600, messages=messages)
    else:
        bundle = run_infer(build(args.bundle), raw, messages=messages)
    for line in messages:                   # e.g. an OpenCL bundle that found no device and ran plain C
        print(f"bundle: {line}", file=sys.stderr)
    trainer = model_logits(model, raw, device=args.device)
    result = compare(bundle, trainer, labels)
    backend = "c" if manifest["target"] == "c" or any(FALLBACK in m for m in messages) else "opencl"
    label = f"{manifest['target']} bundle, {backend}" + (f" ({args.qemu}, qemu)" if args.qemu else "")
    rows = [[label, result.samples, f"{result.bundle_acc:.4f}",
             f"{result.agreement:.2%}", f"{result.max_abs_diff:.2e}"],
            ["trainer (OpenCL)", result.samples, f"{result.reference_acc:.4f}", "", ""]]
    if manifest.get("precision") == "fp16":
        # The bundle must compute exactly what it stores; rounding the weights is reported, not judged.
        from sparsecl.codegen.plan import as_stored
        stored = model_logits(as_stored(model, np.float16), raw, device=args.device)
        quantised, result = result, compare(bundle, stored, labels)
        rows[0][3:] = [f"{quantised.agreement:.2%}", f"{quantised.max_abs_diff:.2e}"]
        rows.append(["trainer, fp16 weights", result.samples, f"{result.reference_acc:.4f}",
                     f"{result.agreement:.2%}", f"{result.max_abs_diff:.2e}"])
    onnx_result = _onnx_comparison(model, raw, trainer, labels)
    if onnx_result:
        rows.append(["onnxruntime (exported)", onnx_result.samples, f"{onnx_result.bundle_acc:.4f}",
                     f"{onnx_result.agreement:.2%}", f"{onnx_result.max_abs_diff:.2e}"])
    print(_table(rows, ["model", "samples", "top-1 acc", "agreement", "max |diff|"]))
    t = manifest["totals"]
    print(f"weights: {t['nnz']} of {t['params']} nonzero ({t['density']:.2%}), {t['weight_bytes']} bytes "
          f"with indices")
    for name, r in (("bundle", result), ("onnxruntime", onnx_result)):
        if r and not r.ok(args.tolerance):
            print(f"verify FAILED: {name} agreement {r.agreement:.2%}, max |diff| {r.max_abs_diff:.3g} "
                  f"(tolerance {args.tolerance:g})", file=sys.stderr)
            return 1
    print("verify passed")
    return 0


def cmd_bench(args):
    from sparsecl import bench, modelfile
    model = modelfile.load(args.model)
    rows = bench.run(model, bench.bundles_for(model, args.bundle), runs=args.runs)
    if args.json:
        print(json.dumps(rows))
        return
    table = [[r["impl"], r["threads"], r["batch"], f"{r['median_s'] * 1e6:.1f}", f"{r['p90_s'] * 1e6:.1f}",
              f"{r['ratio']:.2f}x" if r["ratio"] else "", f"{r['build_s']:.3f}" if "build_s" in r else ""]
             for r in rows]
    print(_table(table, ["implementation", "threads", "batch", "median us", "p90 us", "vs ORT dense", "build s"]))


def cmd_report(args):
    from sparsecl import modelfile, report
    path = report.write(modelfile.load(args.model), args.output, args.bundle, args.sweep)
    print(f"wrote {path} and its plots")


def cmd_export_onnx(args):
    from sparsecl import modelfile
    from sparsecl.codegen.onnx_export import export
    model = modelfile.load(args.model)
    export(model, args.output)
    print(f"wrote {args.output}: input 'raw' float32 (N, {', '.join(map(str, model.input_shape))}) as in the "
          f"data set, output 'logits' (N, {model.classes})")


def cmd_qemu_sysroot(args):
    from sparsecl import qemu
    path = qemu.build_sysroot(args.arch, args.output or qemu.default_sysroot(args.arch))
    print(f"wrote {path}; use it with: sparsecl verify MODEL BUNDLE --qemu {args.arch}")


def cmd_package(args):
    from sparsecl.codegen.package import architecture, package
    path = package(args.bundle, args.output)
    name = os.path.basename(path)
    print(f"wrote {path} ({architecture(os.path.join(args.bundle, 'infer'))}); on the board: tar xzf {name} && "
          f"cd {name[:-len('.tar.gz')]} && sha256sum -c SHA256SUMS && ./infer --selftest")


def sweep_methods():
    from sparsecl.sweep import METHODS
    return METHODS


def _training_options(t, method_options=True):
    """The TrainConfig options, shared by train and sweep (where the method and its epochs come from the
    grid, and --epochs is every run's budget)."""
    from sparsecl.trainer.train import L1_SOLVERS, TrainConfig
    c = TrainConfig()
    t.add_argument("--dataset", default=c.dataset, help=f"data set (default: {c.dataset})")
    t.add_argument("--arch", default=c.arch, help=f"lenet-300-100, lenet-5, mlp:H1,H2,... or cnn:... "
                                                  f"(default: {c.arch})")
    if method_options:
        t.add_argument("--lam", type=float, default=c.lam, help=f"l1 strength (default: {c.lam})")
        t.add_argument("--epochs", type=int, default=c.epochs, help=f"epochs of the l1 phase (default: {c.epochs})")
        t.add_argument("--debias-epochs", type=int, default=c.debias_epochs,
                       help=f"epochs on the frozen support, CSR form (default: {c.debias_epochs})")
    else:
        t.add_argument("--epochs", type=int, default=30,
                       help="epochs of every run; a third of them retrain where a method retrains (default: 30)")
    t.add_argument("--batch-size", type=int, default=c.batch_size, help=f"minibatch size (default: {c.batch_size})")
    t.add_argument("--lr", type=float, default=c.lr, help=f"learning rate (default: {c.lr})")
    t.add_argument("--momentum", type=float, default=c.momentum, help=f"momentum (default: {c.momentum})")
    t.add_argument("--augment", type=int, default=c.augment,
                   help=f"random image shifts of up to N pixels while training (default: {c.augment}; 0: off)")
    t.add_argument("--csr-below", type=float, default=c.csr_below,
                   help="in the l1 phase, move a layer to CSR form once its density is at most this "
                        f"(its zeros can then no longer regrow; default: {c.csr_below}, only at debiasing)")
    if method_options:
        t.add_argument("--l1", default=c.l1, choices=L1_SOLVERS,
                       help="how the l1 term is solved: proximal steps (exact zeros) or plain subgradient steps "
                            f"(a baseline; default: {c.l1})")
        t.add_argument("--prune-to", type=float, default=c.prune_to, metavar="DENSITY",
                       help="magnitude pruning with retraining instead of l1 (a baseline; needs --lam 0): prune "
                            "the smallest weights down to this density in rounds during the l1 phase")
    t.add_argument("--lam-warmup", type=int, default=c.lam_warmup, metavar="N",
                   help=f"ramp the l1 strength up linearly over the first N epochs (default: {c.lam_warmup})")
    t.add_argument("--prune-rounds", type=int, default=c.prune_rounds,
                   help=f"pruning rounds (default: {c.prune_rounds})")
    t.add_argument("--seed", type=int, default=c.seed, help=f"random seed (default: {c.seed})")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sparsecl", description=__doc__)
    p.add_argument("--version", action="version", version=f"sparsecl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("devices", help="list OpenCL platforms and devices, and the one used")
    d.add_argument("--device", help="device to mark as used (P:D or a name substring)")
    d.set_defaults(func=cmd_devices)

    t = sub.add_parser("train", help="train a sparse network from scratch")
    _training_options(t)
    t.add_argument("--resume", metavar="CKPT", help="continue the run in this checkpoint (other settings "
                                                    "come from it); one is written beside -o every epoch")
    t.add_argument("--name", help="model name (default: from data set and architecture)")
    t.add_argument("--device", help="OpenCL device (P:D or a name substring; default: $SPARSECL_DEVICE)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("-o", "--output", required=True, help="model file to write (.npz)")
    t.set_defaults(func=cmd_train)

    w = sub.add_parser("sweep", help="train a grid of compression methods and settings; a results table and "
                                     "Pareto plots",
                       description="Trains each method (dense, magnitude pruning, l1 by subgradient, proximal l1, "
                                   "proximal l1 with debiasing) on the same epoch budget, and adds one row per "
                                   "run to a CSV table rendered into Markdown with a Pareto plot. Finished runs "
                                   "are reused and interrupted ones resumed when the sweep is started again.")
    _training_options(w, method_options=False)
    w.add_argument("--methods", default="all", help=f"comma-separated, from {', '.join(sweep_methods())} "
                                                    "(default: all)")
    w.add_argument("--lams", type=_floats, default=[0.005, 0.01, 0.02],
                   help="l1 strengths for subgradient, prox and prox-debias (default: 0.005,0.01,0.02)")
    w.add_argument("--densities", type=_floats, default=[0.1, 0.05, 0.02],
                   help="target densities for pruning (default: 0.1,0.05,0.02)")
    w.add_argument("--results", default="docs/results.csv", help="results table (default: docs/results.csv)")
    w.add_argument("--markdown", default="docs/results.md", help="rendered table (default: docs/results.md)")
    w.add_argument("--plots", default="docs/plots", help="folder for Pareto plots (default: docs/plots)")
    w.add_argument("--models", default="sweep-models", help="folder for model files (default: sweep-models)")
    w.add_argument("--verify", action="store_true",
                   help="also build each model's c bundle and measure its test error on the whole test split")
    w.add_argument("--render-only", action="store_true", help="only render the results table and plots")
    w.add_argument("--device", help="OpenCL device (P:D or a name substring; default: $SPARSECL_DEVICE)")
    w.set_defaults(func=cmd_sweep)

    g = sub.add_parser("generate", help="write a standalone inference bundle for a model")
    g.add_argument("model", help="model file")
    g.add_argument("--target", default="opencl", choices=["opencl", "mali", "c"],
                   help="bundle target (default: opencl)")
    g.add_argument("--precision", default="fp32", choices=["fp32", "fp16"],
                   help="weight storage (default: fp32; fp16 halves the value bytes)")
    g.add_argument("--variant", metavar="SPEC",
                   help="kernel variant of the fully connected layers instead of the cost model's choice: "
                        "csr, dense or unrolled for all, or per layer as fc1=csr,fc2=unrolled")
    g.add_argument("--autotune", action="store_true",
                   help="choose each layer's variant by timing all of them on this machine (builds a tunable "
                        "bundle and runs its infer --autotune; --variant still wins for the layers it names)")
    g.add_argument("--autotune-batch", type=int, default=1, metavar="B",
                   help="batch size the autotuning times (default: 1)")
    g.add_argument("--tunable", action="store_true",
                   help="carry every kernel variant of the fully connected layers (in CSR form, the dense one "
                        "built at run time), so that `infer --autotune` can choose them on the board and "
                        "remember; the planned variants are the defaults until then")
    g.add_argument("-o", "--output", required=True, help="bundle folder")
    g.set_defaults(func=cmd_generate)

    v = sub.add_parser("verify", help="build a bundle, run it on the test split, compare with the trainer")
    v.add_argument("model", help="model file")
    v.add_argument("bundle", help="bundle folder")
    v.add_argument("--limit", type=int, help="use only the first N test samples")
    v.add_argument("--tolerance", type=float, default=1e-4, help="max |logit difference| (default: 1e-4)")
    v.add_argument("--device", help="OpenCL device for the trainer's inference")
    v.add_argument("--qemu", choices=["aarch64", "armhf"],
                   help="cross-compile and run the bundle under qemu-user, OpenCL included (see qemu-sysroot)")
    v.set_defaults(func=cmd_verify)

    b = sub.add_parser("bench", help="latency of the bundles, onnxruntime dense and scipy CSR, side by side")
    b.add_argument("model", help="model file")
    b.add_argument("--bundle", help="time this bundle only (default: fresh c and opencl bundles)")
    b.add_argument("--runs", type=int, help="timed runs per row (default: 300 at batch 1, 30 at batch 256)")
    b.add_argument("--json", action="store_true", help="print one JSON list")
    b.set_defaults(func=cmd_bench)

    r = sub.add_parser("report", help="plots and a one-page HTML summary of a model (and its bundle)")
    r.add_argument("model", help="model file")
    r.add_argument("--bundle", help="bundle folder, for its stored bytes (and code size, once built)")
    r.add_argument("--sweep", help="results.csv of a sweep, for test error against nonzeros")
    r.add_argument("-o", "--output", required=True, help="folder for index.html and the PNGs")
    r.set_defaults(func=cmd_report)

    o = sub.add_parser("export-onnx", help="write the model, preprocessing included, as ONNX")
    o.add_argument("model", help="model file")
    o.add_argument("-o", "--output", required=True, help="ONNX file to write")
    o.set_defaults(func=cmd_export_onnx)

    q = sub.add_parser("qemu-sysroot", help="unpack the guest's PoCL for verify --qemu (Debian, root)")
    q.add_argument("arch", choices=["aarch64", "armhf"])
    q.add_argument("-o", "--output", help="folder (default: $SPARSECL_QEMU_SYSROOT or ~/.cache/sparsecl/sysroot-ARCH)")
    q.set_defaults(func=cmd_qemu_sysroot)

    k = sub.add_parser("package", help="archive a built bundle (binary, manifest, SHA-256 sums) for a board")
    k.add_argument("bundle", help="bundle folder with a built ./infer")
    k.add_argument("-o", "--output", help="archive to write (default: NAME-TARGET-ARCH.tar.gz beside the bundle)")
    k.set_defaults(func=cmd_package)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except SparseclError as e:
        print(f"sparsecl: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sparsecl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
