"""The network in plain numpy/scipy (float32): the reference every kernel and bundle is checked against."""

import numpy as np


def preprocess(model, raw) -> np.ndarray:
    x = np.asarray(raw, dtype=np.float32).reshape(len(raw), model.input_size)
    return (x - np.float32(model.preprocess["mean"])) * np.float32(model.preprocess["scale"])


def conv2d(x, weights, bias, geometry):
    """x (n, c*h*w) -> (n, c_out*oh*ow): a direct convolution written as one product per kernel tap."""
    c, h, w = geometry.in_shape
    k, pad = geometry.kernel, geometry.pad
    co, oh, ow = geometry.out_shape
    images = np.pad(x.reshape(len(x), c, h, w), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    filters = weights.toarray().reshape(co, c, k, k)
    out = np.zeros((len(x), co, oh, ow), x.dtype)
    for ky in range(k):
        for kx in range(k):
            patch = images[:, :, ky:ky + oh, kx:kx + ow]
            out += np.einsum("nchw,oc->nohw", patch, filters[:, :, ky, kx].astype(x.dtype))
    return (out + bias[None, :, None, None]).reshape(len(x), -1)


def maxpool2d(x, geometry):
    c, h, w = geometry.in_shape
    _, oh, ow = geometry.out_shape
    images = x.reshape(len(x), c, h, w)[:, :, :2 * oh, :2 * ow]
    return images.reshape(len(x), c, oh, 2, ow, 2).max(axis=(3, 5)).reshape(len(x), -1)


def logits(model, raw) -> np.ndarray:
    """(n, classes) float32 logits for raw inputs (n, ...)."""
    return forward(model.layers, preprocess(model, raw))


def forward(layers, x) -> np.ndarray:
    """The layers applied to network inputs x (n, features), in x's precision."""
    for layer in layers:
        if layer.kind == "maxpool2d":
            x = maxpool2d(x, layer.geometry)
        elif layer.kind == "conv2d":
            x = conv2d(x, layer.weights, layer.bias, layer.geometry)
        else:
            x = np.asarray(layer.weights.dot(x.T).T, dtype=x.dtype) + layer.bias.astype(x.dtype)
        if layer.relu:
            x = np.maximum(x, x.dtype.type(0))
    return x
