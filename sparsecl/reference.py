"""The network in plain numpy/scipy (float32): the reference every kernel and bundle is checked against."""

import numpy as np


def preprocess(model, raw) -> np.ndarray:
    x = np.asarray(raw, dtype=np.float32).reshape(len(raw), model.input_size)
    return (x - np.float32(model.preprocess["mean"])) * np.float32(model.preprocess["scale"])


def logits(model, raw) -> np.ndarray:
    """(n, classes) float32 logits for raw inputs (n, ...)."""
    x = preprocess(model, raw)
    for layer in model.layers:
        x = np.asarray(layer.weights.dot(x.T).T, dtype=np.float32) + layer.bias
        if layer.relu:
            x = np.maximum(x, np.float32(0))
    return x
