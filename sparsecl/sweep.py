"""`sparsecl sweep`: compression against accuracy, method by method, with one trainer and one epoch budget.

Every method is a set of TrainConfig overrides (see trainer/train.py), so the baselines run on the same
kernels, data, augmentation and learning rate as ours:

    dense        no l1                                     (all epochs, cosine finish)
    pruning      iterative magnitude pruning to a density, retraining in between and at the end
    subgradient  l1 by plain subgradient steps             (all epochs, cosine finish)
    prox         proximal l1, no debiasing                 (all epochs, cosine finish)
    prox-debias  proximal l1, then debiasing on the support (ours)

The methods with a final retraining spend a third of the budget on it. Each run leaves its model file
(and, while it runs, a checkpoint) in the models folder; a sweep started again reuses finished models
and resumes interrupted ones, so nothing is trained twice; a model or checkpoint of the same name trained
with another configuration (another epoch budget, say) is never overwritten: the sweep stops and says so.
Results go to a CSV table, one row per (arch, dataset, method, setting, epochs), which renders into
Markdown with a Pareto plot per architecture and data set.
"""

import csv
import io
import os
import re
import shlex
import tempfile
from dataclasses import asdict, replace

import numpy as np

from sparsecl import SparseclError
from sparsecl.modelfile import atomic_write

METHODS = ("dense", "pruning", "subgradient", "prox", "prox-debias")
COLUMNS = ("arch", "dataset", "method", "setting", "epochs", "test_error", "nonzeros", "params", "density",
           "compression", "weight_bytes", "layer_density", "train_seconds", "bundle_error", "command")
MARKER = "<!-- Everything below is written by `sparsecl sweep`; edit above this line. -->"


def method_overrides(method: str, setting: float, epochs: int) -> dict:
    """TrainConfig fields for one method; setting is lam for the l1 methods, a density for pruning."""
    retrain = epochs // 3
    table = {
        "dense": dict(lam=0.0, lam_warmup=0, epochs=epochs, debias_epochs=0),
        "pruning": dict(lam=0.0, lam_warmup=0, prune_to=setting, epochs=epochs - retrain, debias_epochs=retrain),
        "subgradient": dict(lam=setting, l1="subgradient", epochs=epochs, debias_epochs=0),
        "prox": dict(lam=setting, epochs=epochs, debias_epochs=0),
        "prox-debias": dict(lam=setting, epochs=epochs - retrain, debias_epochs=retrain),
    }
    if method not in table:
        raise SparseclError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    return table[method]


def grid(methods, lams, densities):
    """[(method, setting)] in a fixed order: dense once, pruning per density, l1 methods per lam."""
    runs = []
    for method in methods:
        settings = [0.0] if method == "dense" else densities if method == "pruning" else lams
        runs += [(method, s) for s in settings]
    return runs


def setting_label(method, setting, config) -> str:
    """The setting column: what varies within a method (an l1 warm-up is part of it, and a seed other than
    0, so that runs repeated with other seeds get rows of their own)."""
    seed = f" seed={config.seed}" if config.seed else ""
    if method == "dense":
        return seed.strip() or "-"
    if method == "pruning":
        return f"density={setting:g}{seed}"
    return f"lam={setting:g}" + (f" warmup={config.lam_warmup}" if config.lam_warmup else "") + seed


def run_name(config, method, setting) -> str:
    """A file-name-safe name for one run."""
    raw = f"{config.dataset}-{config.arch}-{method}" + ("" if method == "dense" else f"-{setting:g}")
    if config.lam_warmup and method not in ("dense", "pruning"):
        raw += f"-warmup{config.lam_warmup}"
    if config.seed:
        raw += f"-seed{config.seed}"
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", raw)


def train_command(config, output) -> str:
    """The `sparsecl train` command line that repeats a run: the method's options, and every other option
    that differs from its default."""
    from sparsecl.trainer.train import TrainConfig
    defaults = asdict(TrainConfig())
    always = ("dataset", "arch", "lam", "epochs", "debias_epochs")
    args = ["sparsecl", "train"]
    for key, value in asdict(config).items():
        if key in always or (key != "name" and value != defaults[key]):
            args += [f"--{key.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(args + ["-o", output])


def bundle_error(model, bundle_plan) -> float:
    """Test error of the built bundle on the whole test split (the bundle's own logits, not the trainer's)."""
    from sparsecl.codegen.generate import write_bundle
    from sparsecl.codegen.verify import build, run_infer
    from sparsecl.trainer import datasets
    data = datasets.load(model.dataset)
    with tempfile.TemporaryDirectory(prefix="sparsecl-sweep-") as tmp:
        write_bundle(bundle_plan, os.path.join(tmp, "b"))
        logits = run_infer(build(os.path.join(tmp, "b")), data.x_test)
    return float(np.mean(logits.argmax(1) != data.y_test))


def result_row(model, method, setting, command, verify=False) -> dict:
    """One row of the results table; weight bytes are those of the model's `c` bundle."""
    from sparsecl.codegen.generate import manifest
    from sparsecl.codegen.plan import plan
    from sparsecl.trainer.train import TrainConfig
    summary = model.training["summary"]
    bundle_plan = plan(model, "c")
    totals = manifest(bundle_plan)["totals"]
    config = TrainConfig.from_dict(summary["config"])
    return {
        "arch": model.arch, "dataset": model.dataset, "method": method,
        "setting": setting_label(method, setting, config), "epochs": config.epochs + config.debias_epochs,
        "test_error": f"{1 - summary['test_acc']:.4f}", "nonzeros": model.nnz, "params": model.params,
        "density": f"{model.nnz / model.params:.5f}", "compression": f"{model.params / max(model.nnz, 1):.1f}",
        "weight_bytes": totals["weight_bytes"],
        "layer_density": "/".join(f"{l.nnz / l.params:.4f}" for l in model.layers if l.weights is not None),
        "train_seconds": f"{summary['seconds']:.0f}",
        "bundle_error": f"{bundle_error(model, bundle_plan):.4f}" if verify else "",
        "command": command,
    }


def read_results(path) -> list:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"arch", "dataset", "method", "setting", "test_error", "nonzeros"} <= set(rows[0]):
        raise SparseclError(f"{path}: not a results table (columns: {', '.join(COLUMNS)})")
    return rows


def write_results(path, rows) -> None:
    text = io.StringIO()
    out = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    out.writeheader()
    out.writerows(rows)
    atomic_write(path, lambda f: f.write(text.getvalue().encode()))


def merge(rows, new) -> list:
    """rows with `new` replacing the row of the same run: arch, dataset, method, setting and epoch budget
    (a longer budget adds rows beside the shorter one's)."""
    def key(row):
        return tuple(str(row[k]) for k in ("arch", "dataset", "method", "setting", "epochs"))
    return [r for r in rows if key(r) != key(new)] + [new]


def pareto(rows) -> list:
    """The rows no other row beats on both test error and nonzeros."""
    points = [(float(r["test_error"]), int(r["nonzeros"])) for r in rows]
    return [r for r, (e, n) in zip(rows, points)
            if not any(e2 <= e and n2 <= n and (e2, n2) != (e, n) for e2, n2 in points)]


def sweep(base, methods, lams, densities, epochs, results, models_dir, verify=False, device=None, log=print):
    """Train the grid (skipping finished runs), add each run's row to the results CSV as it finishes."""
    from sparsecl import modelfile
    from sparsecl.trainer import checkpoint
    from sparsecl.trainer.train import train
    os.makedirs(models_dir, exist_ok=True)
    runs = grid(methods, lams, densities)
    for index, (method, setting) in enumerate(runs, 1):
        config = replace(base, **method_overrides(method, setting, epochs))
        config.name = run_name(config, method, setting)
        config.validate()
        output = os.path.join(models_dir, f"{config.name}.npz")
        ckpt = os.path.join(models_dir, f"{config.name}.ckpt.npz")
        model = modelfile.load(output) if os.path.exists(output) else None
        _refuse_other_config(output, model and model.training["summary"]["config"], config)
        _refuse_other_config(ckpt, os.path.exists(ckpt) and checkpoint.load(ckpt).config, config)
        done = model is not None
        log(f"[{index}/{len(runs)}] {method} {setting_label(method, setting, config)}: "
            + ("finished earlier, reusing " + output if done else f"training -> {output}"))
        if not done:
            resume = ckpt if os.path.exists(ckpt) else None
            model = train(None if resume else config, device=device, log=log, checkpoint_path=ckpt, resume=resume)
            modelfile.save(model, output)
            os.unlink(ckpt)
        row = result_row(model, method, setting, train_command(config, output), verify=verify)
        write_results(results, merge(read_results(results), row))
        log(f"    test error {float(row['test_error']):.2%}, {row['nonzeros']} nonzeros "
            f"({float(row['density']):.2%}), {row['weight_bytes']} bytes, {row['train_seconds']} s"
            + (f", bundle error {float(row['bundle_error']):.2%}" if verify else ""))


def _refuse_other_config(path, found, config) -> None:
    """A SparseclError when the file at path (found: its training configuration, or nothing) was trained
    with another configuration than this run's: it is somebody's work, not this run's to replace."""
    if found and found != asdict(config):
        differ = ", ".join(f"{k} {found.get(k)!r} here, {v!r} wanted" for k, v in asdict(config).items()
                           if found.get(k) != v)
        raise SparseclError(f"{path} was trained with another configuration ({differ}); give this sweep "
                            "another --models folder, or move the file away")


def render(results, markdown, plots_dir) -> None:
    """Rewrite the generated part of `markdown` (below MARKER; the text above is kept) from the CSV, with
    one section, table and Pareto plot per (arch, dataset)."""
    from sparsecl.report import pareto_plot
    rows = read_results(results)
    head = ""
    if os.path.exists(markdown):
        with open(markdown) as f:
            text = f.read()
        head = text.split(MARKER)[0] if MARKER in text else text + "\n"
    os.makedirs(plots_dir, exist_ok=True)
    parts = [head.rstrip("\n") + "\n\n" + MARKER + "\n"]
    groups = sorted({(r["arch"], r["dataset"]) for r in rows})
    for arch, dataset in groups:
        group = [r for r in rows if (r["arch"], r["dataset"]) == (arch, dataset)]
        group.sort(key=lambda r: (METHODS.index(r["method"]) if r["method"] in METHODS else 99,
                                  -int(r["nonzeros"])))
        front = {id(r) for r in pareto(group)}
        plot = os.path.join(plots_dir, re.sub(r"[^A-Za-z0-9.+-]+", "-", f"pareto-{arch}-{dataset}") + ".png")
        pareto_plot(group, plot, f"{arch} on {dataset}")
        link = os.path.relpath(plot, os.path.dirname(os.path.abspath(markdown)) or ".")
        parts.append(f"\n## {arch} on {dataset}\n\n![test error against nonzeros]({link})\n\n"
                     "| method | setting | epochs | test error | nonzeros | density | compression | weight bytes "
                     "| bundle error | layer density | train s |\n"
                     "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|\n")
        for r in group:
            star = " **(Pareto)**" if id(r) in front else ""
            bundle = f"{float(r['bundle_error']):.2%}" if r.get("bundle_error") else ""
            parts.append(f"| {r['method']}{star} | {r['setting']} | {r['epochs']} | {float(r['test_error']):.2%} | "
                         f"{int(r['nonzeros']):,} | {float(r['density']):.2%} | {r['compression']}x | "
                         f"{int(r['weight_bytes']):,} | {bundle} | {r['layer_density']} | {r['train_seconds']} |\n")
        parts.append("\nCommands:\n\n```\n" + "\n".join(r["command"] for r in group) + "\n```\n")
    atomic_write(markdown, lambda f: f.write("".join(parts).encode()))
