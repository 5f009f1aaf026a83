"""When should a layer move from dense to CSR form during the l1 phase?

Trains the same network with the same seed for each --csr-below setting (0: dense until debiasing) and
reports test accuracy, density and time, side by side in one run.

    python benchmarks/csr_switch.py --dataset mnist --epochs 10 --debias-epochs 5 --lam 1e-3 [--json]
"""

import argparse
import json

from sparsecl.trainer.train import TrainConfig, train


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--arch", default="lenet-300-100")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--debias-epochs", type=int, default=5)
    p.add_argument("--lam", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--settings", default="0,0.5,0.2,0.1,0.05")
    p.add_argument("--seeds", default="0")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for below in (float(s) for s in args.settings.split(",")):
            config = TrainConfig(dataset=args.dataset, arch=args.arch, lam=args.lam, epochs=args.epochs,
                                 debias_epochs=args.debias_epochs, batch_size=args.batch_size, csr_below=below,
                                 seed=seed)
            model = train(config, progress=False, log=lambda *a: None)
            log = model.training["log"]
            l1 = [h for h in log if h["phase"] == "l1"]
            row = {"csr_below": below, "seed": seed, "test_error": round(1 - log[-1]["test_acc"], 4),
                   "density": round(model.nnz / model.params, 4),
                   "l1_s": round(sum(h["seconds"] for h in l1), 1),
                   "total_s": round(model.training["summary"]["seconds"], 1),
                   "switch_epochs": [next((h["epoch"] for h in l1 if h["forms"][i] == "csr"), None)
                                     for i in range(len(model.layers))]}
            rows.append(row)
            if not args.json:
                print(row, flush=True)
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
