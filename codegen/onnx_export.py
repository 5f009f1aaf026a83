"""Exporting a model to ONNX, preprocessing included: the graph takes the same raw pixels as a bundle
(float32, shaped (N, *input_shape)) and gives logits (N, classes). Weights are exported dense, as every
ONNX runtime expects them; `sparsecl report` counts what that costs in bytes."""

import numpy as np

from sparsecl import SparseclError


def _onnx():
    try:
        import onnx
        return onnx
    except ImportError:
        raise SparseclError("ONNX export needs the onnx package: pip install 'sparsecl[onnx]'") from None


def build(model, opset: int = 13):
    """The onnx.ModelProto of a loaded model file."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    batch_flat = const("flat_shape", np.array([-1, model.input_size], np.int64))
    x = node("Reshape", ["raw", batch_flat], "flat")
    x = node("Sub", [x, const("mean", np.array(model.preprocess["mean"], np.float32))], "centred")
    x = node("Mul", [x, const("scale", np.array(model.preprocess["scale"], np.float32))], "normalised")
    for i, layer in enumerate(model.layers):
        g, p = layer.geometry, f"l{i}_"
        if layer.kind == "dense":
            x = node("Gemm", [x, const(p + "W", layer.weights.toarray().astype(np.float32)),
                              const(p + "b", layer.bias.astype(np.float32))], p + "gemm", transB=1)
        else:
            image = node("Reshape", [x, const(p + "image_shape", np.array([-1, *g.in_shape], np.int64))],
                         p + "image")
            if layer.kind == "conv2d":
                k, pad = g.kernel, g.pad
                w = layer.weights.toarray().astype(np.float32).reshape(g.out_channels, g.in_shape[0], k, k)
                out = node("Conv", [image, const(p + "W", w), const(p + "b", layer.bias.astype(np.float32))],
                           p + "conv", kernel_shape=[k, k], pads=[pad] * 4)
            else:
                out = node("MaxPool", [image], p + "pool", kernel_shape=[2, 2], strides=[2, 2])
            x = node("Reshape", [out, const(p + "flat_shape", np.array([-1, g.n_out], np.int64))], p + "flat")
        if layer.relu:
            x = node("Relu", [x], p + "relu")
    nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        nodes, "".join(ch if ch.isalnum() else "_" for ch in model.name) or "model",
        [helper.make_tensor_value_info("raw", TensorProto.FLOAT, ["N", *model.input_shape])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", model.classes])], inits)
    proto = helper.make_model(graph, producer_name="sparsecl", opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 8      # readable by every onnxruntime since 1.10
    onnx.checker.check_model(proto)
    return proto


def export(model, path) -> None:
    from sparsecl.modelfile import atomic_write
    proto = build(model)
    atomic_write(path, lambda f: f.write(proto.SerializeToString()))


def run(path_or_proto, raw, threads: int = 1) -> np.ndarray:
    """Logits from onnxruntime for raw inputs."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise SparseclError("running ONNX needs onnxruntime: pip install 'sparsecl[onnx]'") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    source = path_or_proto if isinstance(path_or_proto, str) else path_or_proto.SerializeToString()
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"raw": np.asarray(raw, np.float32)})[0]
