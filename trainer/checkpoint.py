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
    layers: dict              # name -> (weights: ndarray or csr_matrix, bias, velocity, vbias), weight layers
    elapsed: float


def save(path, config: dict, phase_index: int, epoch: int, history, preprocess, net, elapsed) -> None:
    meta = {"format": FORMAT, "version": VERSION, "config": config, "phase_index": phase_index, "epoch": epoch,
            "history": history, "preprocess": preprocess, "elapsed": elapsed,
            "layers": [{"name": l.name, "form": l.form, "rows": l.geometry.weight_shape[0],
                        "cols": l.geometry.weight_shape[1]} for l in net.weight_layers]}
    arrays = {"meta.json": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    for l in net.weight_layers:
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
        layers = {}
        for spec in meta["layers"]:
            name, shape = spec["name"], (int(spec["rows"]), int(spec["cols"]))
            values, velocity = arrays[f"{name}.values"], arrays[f"{name}.velocity"]
            if spec["form"] == "csr":
                weights = sp.csr_matrix((values, arrays[f"{name}.indices"], arrays[f"{name}.indptr"]), shape=shape)
                weights.check_format(full_check=True)
            else:
                weights = values.reshape(shape)
                velocity = velocity.reshape(shape)
            if values.shape != velocity.shape or not np.all(np.isfinite(values)):
                raise ValueError("values")
            layers[name] = (weights, arrays[f"{name}.bias"], velocity, arrays[f"{name}.vbias"])
        return Checkpoint(meta["config"], int(meta["phase_index"]), int(meta["epoch"]), meta["history"],
                          meta["preprocess"], layers, float(meta["elapsed"]))
    except (KeyError, ValueError, TypeError) as e:
        raise SparseclError(f"{path}: damaged checkpoint ({e})") from None
