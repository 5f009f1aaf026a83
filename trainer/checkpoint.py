"""Training checkpoints: everything needed to continue a run exactly where it stopped.

Same container as the model file (an `.npz` read without pickle): `meta.json` holds the configuration,
the position (phase and epoch to run next), the training log and the layer forms; per layer the arrays
`values`, `velocity`, `bias`, `vbias`, and for CSR layers `indptr` and `indices`.
"""

import io
import json
import zipfile
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from sparsecl import SparseclError
from sparsecl.modelfile import atomic_write

FORMAT = "sparsecl-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    config: dict
    phase_index: int          # the phase and epoch to run next
    epoch: int
    history: list
    preprocess: dict
    layers: list              # [(name, relu, weights: ndarray or csr_matrix, bias, velocity, vbias)]
    elapsed: float


def save(path, config: dict, phase_index: int, epoch: int, history, preprocess, net, elapsed) -> None:
    meta = {"format": FORMAT, "version": VERSION, "config": config, "phase_index": phase_index, "epoch": epoch,
            "history": history, "preprocess": preprocess, "elapsed": elapsed,
            "layers": [{"name": l.name, "form": l.form, "relu": l.relu, "in": l.n_in, "out": l.n_out}
                       for l in net.layers]}
    arrays = {"meta.json": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    for l in net.layers:
        for key, value in l.state().items():
            arrays[f"{l.name}.{key}"] = value
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path) -> Checkpoint:
    try:
        with open(path, "rb") as f, np.load(io.BytesIO(f.read()), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(arrays["meta.json"].tobytes())
    except OSError as e:
        raise SparseclError(f"cannot read checkpoint {path}: {e.strerror}") from None
    except (ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError):
        raise SparseclError(f"{path}: not a sparsecl checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SparseclError(f"{path}: not a sparsecl checkpoint")
    if meta.get("version") != VERSION:
        raise SparseclError(f"{path}: unsupported checkpoint version {meta.get('version')!r}")
    try:
        layers = []
        for spec in meta["layers"]:
            name, n_in, n_out = spec["name"], int(spec["in"]), int(spec["out"])
            values, velocity = arrays[f"{name}.values"], arrays[f"{name}.velocity"]
            if spec["form"] == "csr":
                weights = sp.csr_matrix((values, arrays[f"{name}.indices"], arrays[f"{name}.indptr"]),
                                        shape=(n_out, n_in))
                weights.check_format(full_check=True)
            else:
                weights = values.reshape(n_out, n_in)
                velocity = velocity.reshape(n_out, n_in)
            if values.shape != velocity.shape[:1] + velocity.shape[1:] or not np.all(np.isfinite(values)):
                raise ValueError("values")
            layers.append((name, bool(spec["relu"]), weights, arrays[f"{name}.bias"], velocity,
                           arrays[f"{name}.vbias"]))
        return Checkpoint(meta["config"], int(meta["phase_index"]), int(meta["epoch"]), meta["history"],
                          meta["preprocess"], layers, float(meta["elapsed"]))
    except (KeyError, ValueError, TypeError) as e:
        raise SparseclError(f"{path}: damaged checkpoint ({e})") from None
